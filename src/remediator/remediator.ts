import type { Logger } from '../lib/log.ts';
import type { ActionOutcome, RestartContext, Verdict } from './actions/types.ts';
import { toWall, type Clock } from './clock.ts';
import type { ActionEntry, ActionHistory } from './history.ts';
import type { RemediatorMetrics } from './metrics.ts';
import { circuitClosesAt, dedupeKey, invalidTriggerReason, recentRestarts, stages, type Decision, type ManagedTarget, type Stage, type StageInput, type Trigger } from './stages.ts';
import type { StateStore, TargetRecord } from './state.ts';
import type { Verifier } from './verify.ts';

export interface RemediatorOptions {
  targets: ManagedTarget[];
  /** Labels an alert must carry (all of them, with these values) to be acted on. */
  match: Record<string, string>;
  staleAfterMs: number;
  logger: Logger;
  metrics: RemediatorMetrics;
  clock: Clock;
  store: StateStore;
  history: ActionHistory;
  verifier: Verifier;
  /** Told about every finished action (a chat message); must return at once and never throw. */
  notify?: ((action: Readonly<ActionEntry>) => void) | undefined;
}

export interface AlertDecision {
  alertname: string;
  target: string | undefined;
  /** The decision, or `queued` while the target's stages run. */
  decision: Decision | 'queued';
}

// How long the quick confirm check may take, and how often a restarted server is checked.
const confirmMs = 5000;
const verifyEveryMs = 1000;
// Respawns after exits (restart_on_exit): 1 s, 2 s, 4 s ... up to a minute.
const backoff = (n: number) => Math.min(60_000, 1000 * 2 ** n);
// A payload larger than this is logged as a summary, not alert by alert.
const loggedOneByOne = 20;

/**
 * Decides, trigger by trigger, whether to restart a target, through the stages in stages.ts; runs
 * the action in the background, checks that the server answers again, and records everything in
 * the target's state record, the metrics, the log and the history. Decisions of one target run
 * one at a time, so concurrent duplicates cannot both pass. All of that background work has one
 * owner (#own): whatever throws in it is logged and recorded (decision `error`, or a failed
 * action), never left to reject unhandled, which would end the process.
 */
export class Remediator {
  readonly #o: RemediatorOptions;
  #targets: Map<string, ManagedTarget>;
  #match: Record<string, string>;
  #staleAfterMs: number;
  readonly #queues = new Map<string, Promise<unknown>>();
  readonly #running = new Set<Promise<unknown>>();
  /** Each target's action under way, which a reload replacing the target waits for. */
  readonly #acting = new Map<string, Promise<void>>();
  readonly #stopping = new AbortController();
  /** Per target: aborted by a shutdown, or by a reload removing it (its work is then cut short). */
  readonly #signals = new WeakMap<ManagedTarget, { removed: AbortController; signal: AbortSignal }>();

  constructor(options: RemediatorOptions) {
    this.#o = options;
    this.#targets = new Map(options.targets.map((t) => [t.name, t]));
    this.#match = options.match;
    this.#staleAfterMs = options.staleAfterMs;
    options.metrics.onCollect(() => this.#refreshGauges());
  }

  #record(name: string): TargetRecord {
    return this.#o.store.get(name)!;
  }

  #cancel(target: ManagedTarget): { removed: AbortController; signal: AbortSignal } {
    let entry = this.#signals.get(target);
    if (!entry) {
      const removed = new AbortController();
      entry = { removed, signal: AbortSignal.any([this.#stopping.signal, removed.signal]) };
      this.#signals.set(target, entry);
    }
    return entry;
  }

  /** Aborted when the remediator stops, or a reload removes the target. */
  #signal(target: ManagedTarget): AbortSignal {
    return this.#cancel(target).signal;
  }

  /** Why a target's work was cut short. */
  #why(): string {
    return this.#stopping.signal.aborted ? 'remediator shutting down' : 'the target was removed by a reload';
  }

  /**
   * The one owner of background work: runs it, tracked (idle() and stop() wait for it). Whatever it
   * throws goes to onError, which records it; should that throw too, it is logged. Never rejects.
   */
  #own<T>(work: () => Promise<T>, onError: (err: Error) => T | Promise<T>): Promise<T | undefined> {
    // Untracked in its own finally (a promise less per decision than .finally()); `ended` covers
    // work that ends before `run` is assigned (onError throwing at once).
    let run: Promise<T | undefined> | undefined;
    let ended = false;
    const owned = async (): Promise<T | undefined> => {
      try {
        return await work();
      } catch (thrown) {
        const err = thrown instanceof Error ? thrown : new Error(String(thrown));
        try {
          return await onError(err);
        } catch (again) {
          this.#o.logger.error({ err: err.message, stack: err.stack, then: (again as Error)?.message }, 'internal error in the remediator; cannot record it');
          return undefined;
        }
      } finally {
        ended = true;
        if (run !== undefined) this.#running.delete(run);
      }
    };
    run = owned();
    if (!ended) this.#running.add(run);
    return run;
  }

  /** Takes the alerts of one webhook payload or one reconcile pass. Answers at once. */
  handle(triggers: readonly Trigger[]): AlertDecision[] {
    const quiet = triggers.length > loggedOneByOne;
    const settled: Array<Promise<Decision | undefined>> = [];
    // The first error of a summarised payload: the summary names it.
    let firstError: string | undefined;
    const noteError = (message: string) => void (firstError ??= message);
    const answers = triggers.map((trigger): AlertDecision => {
      const alertname = trigger.labels.alertname ?? '';
      const name = trigger.labels.target;
      const early = this.#early(trigger);
      if (early) {
        this.#count(trigger, early, quiet);
        return { alertname, target: name, decision: early };
      }
      // The target is looked up when the decision runs: a reload meanwhile may have replaced it.
      settled.push(this.#enqueue(name!, trigger, quiet, () => this.#decideFor(name!, trigger, quiet), noteError));
      return { alertname, target: name, decision: 'queued' };
    });
    if (quiet) {
      const early = answers.filter((a) => a.decision !== 'queued').map((a) => a.decision as Decision);
      void this.#own(
        async () => {
          const late = await Promise.all(settled);
          const counts: Record<string, number> = {};
          for (const d of [...early, ...late]) counts[d ?? 'error'] = (counts[d ?? 'error'] ?? 0) + 1;
          const level = firstError === undefined ? 'info' : 'error';
          this.#o.logger[level]({ alerts: triggers.length, source: triggers[0]?.source, decisions: counts, ...(firstError === undefined ? {} : { err: firstError }) }, 'alerts received (summary)');
        },
        (err) => void this.#o.logger.error({ err: err.message }, 'cannot summarise the alerts received'),
      );
    }
    return answers;
  }

  /** The decisions that need no target: resolved, not matching, invalid, unknown target. */
  #early(trigger: Trigger): Decision | undefined {
    if (trigger.status === 'resolved') return 'resolved';
    for (const k in this.#match) if (trigger.labels[k] !== this.#match[k]) return 'not_matching';
    if (invalidTriggerReason(trigger, this.#o.clock.wall())) return 'invalid';
    if (!this.#targets.has(trigger.labels.target ?? '')) return 'unknown_target';
    return undefined;
  }

  #count(trigger: Trigger, decision: Decision, quiet: boolean, detail: Record<string, unknown> = {}): void {
    this.#o.metrics.alerts.inc({ decision, source: trigger.source });
    const level = decision === 'error' ? 'error' : decision === 'unknown_target' || decision === 'invalid' || decision === 'circuit_open' ? 'warn' : 'info';
    // The line is not even built when its level is off (every request of a storm is decided).
    if (quiet || !this.#o.logger.isLevelEnabled(level)) return;
    const reason = decision === 'invalid' ? invalidTriggerReason(trigger, this.#o.clock.wall()) : undefined;
    this.#o.logger[level]({ source: trigger.source, alertname: (trigger.labels.alertname ?? '').slice(0, 256), target: (trigger.labels.target ?? '').slice(0, 256), fingerprint: trigger.fingerprint.slice(0, 64), starts_at: trigger.startsAt.slice(0, 64), decision, ...(reason ? { reason } : {}), ...detail }, 'trigger decided');
  }

  /**
   * Runs the decision after every earlier one of the same target. A decision that throws is
   * decided `error`: counted, logged with the error (in the summary of a large payload), and the
   * target's next decision runs as usual. Never rejects.
   */
  #enqueue(name: string, trigger: Trigger, quiet: boolean, decide: () => Promise<Decision>, noteError?: (message: string) => void): Promise<Decision | undefined> {
    const previous = this.#queues.get(name) ?? Promise.resolve();
    const next = this.#own(
      // `return await`, here and below: a promise returned from an async function costs two
      // more microtask turns than one awaited (every alert of a storm comes this way).
      async () => {
        await previous;
        return await decide();
      },
      (err): Decision => {
        noteError?.(err.message);
        this.#count(trigger, 'error', quiet, { err: err.message, stack: err.stack });
        return 'error';
      },
    );
    this.#queues.set(name, next);
    return next;
  }

  async #decideFor(name: string, trigger: Trigger, quiet: boolean): Promise<Decision> {
    const target = this.#targets.get(name);
    // A target a reload is removing takes no new decisions.
    if (target && !this.#cancel(target).removed.signal.aborted) return await this.#decide(target, trigger, quiet);
    this.#count(trigger, 'unknown_target', quiet);
    return 'unknown_target';
  }

  async #decide(target: ManagedTarget, trigger: Trigger, quiet: boolean): Promise<Decision> {
    const record = this.#record(target.name);
    const { clock } = this.#o;
    // What the action needs of the alert and does not find (a pod's name or UID): nothing is done.
    const refused = trigger.source === 'exit' ? undefined : target.action.refuse?.(trigger.labels);
    if (refused !== undefined) {
      this.#count(trigger, 'invalid', quiet, { reason: refused });
      return 'invalid';
    }
    // One input for every stage; the clocks are read again before each.
    const input: StageInput = {
      trigger,
      target,
      record,
      now: 0,
      wall: 0,
      staleAfterMs: this.#staleAfterMs,
      answersNow: async () => (await this.#answers(target, confirmMs, { purpose: 'confirm', context: { alertname: trigger.labels.alertname ?? '', fingerprint: trigger.fingerprint, labels: trigger.labels } })).ok,
    };
    const passed: Stage[] = [];
    for (const stage of stages) {
      if (trigger.source === 'exit' && !stage.forExits) continue;
      input.now = clock.now();
      input.wall = clock.wall();
      const verdict = stage.decide(input);
      // Most stages decide at once: only an answer still to come is awaited (a microtask turn each).
      const stop = typeof verdict === 'boolean' ? verdict : await verdict;
      if (stop) {
        // A restart the circuit refused is told to people as one (LLMRemediationPerformed), once per alert.
        if (stage.name === 'circuit_open') this.#o.metrics.recordRefusal({ target: target.name, action: target.action.kind, trigger: (trigger.labels.alertname ?? '').slice(0, 256), instance: dedupeKey(trigger) });
        this.#count(trigger, stage.name, quiet);
        return stage.name;
      }
      passed.push(stage);
    }
    // Reserved now, before anything awaits: the next trigger of this target sees it in progress.
    record.inProgress = { since: clock.now(), alertname: trigger.labels.alertname ?? '' };
    record.seen[dedupeKey(trigger)] = clock.now();
    this.#forgetOld(target, record);
    this.#count(trigger, 'restart', quiet);
    const entry = this.#o.history.add({
      target: target.name,
      action: target.action.kind,
      trigger: { source: trigger.source, alertname: (trigger.labels.alertname ?? '').slice(0, 256), fingerprint: trigger.fingerprint.slice(0, 64), starts_at: trigger.startsAt.slice(0, 64) },
      decisions: passed.map((stage) => ({ stage: stage.name, result: 'pass' })),
      started_at: new Date(clock.wall()).toISOString(),
      finished_at: undefined,
      outcome: 'running',
      message: '',
      time_to_healthy_seconds: undefined,
    });
    // The action's record and entry are its own from here: a reload removing the target meanwhile
    // (its record forgotten) cannot pull them from under it. Whatever throws in it is a failure.
    const acting = this.#own(
      () => this.#remediate(target, record, trigger, entry),
      async (err) => {
        this.#o.logger.error({ target: target.name, err: err.message, stack: err.stack }, 'internal error during a remediation');
        await this.#finish(target, record, entry, { ok: false, message: `internal error: ${err.message}` }, false, undefined);
      },
    ).then(() => {});
    this.#acting.set(target.name, acting);
    return 'restart';
  }

  #forgetOld(target: ManagedTarget, record: TargetRecord): void {
    const now = this.#o.clock.now();
    const keep = Math.max(target.cooldownMs, this.#staleAfterMs);
    for (const [key, at] of Object.entries(record.seen)) if (now - at > keep) delete record.seen[key];
    record.restartTimes = record.restartTimes.filter((t) => now - t < target.circuit.windowMs);
  }

  async #remediate(target: ManagedTarget, record: TargetRecord, trigger: Trigger, entry: ActionEntry): Promise<void> {
    const { clock, history, logger, store } = this.#o;
    const signal = this.#signal(target);
    const alertname = entry.trigger.alertname;
    await store.save(target.name);
    if (trigger.source === 'exit') {
      // restart_on_exit: wait out the backoff first, so a crash loop does not spin.
      const wait = backoff(record.respawns);
      record.respawns += 1;
      logger.info({ target: target.name, wait_ms: wait, attempt: record.respawns }, 'respawning the model server after its exit');
      await clock.sleep(wait, signal);
    }
    // A shutdown (or the target's removal) before the action: nothing was done, nothing is counted.
    if (signal.aborted) {
      record.inProgress = undefined;
      await store.save(target.name);
      const message = this.#stopping.signal.aborted ? 'the remediator stopped before acting' : 'the target was removed by a reload before acting';
      history.update(entry, { finished_at: new Date(clock.wall()).toISOString(), outcome: 'interrupted', message });
      logger.info({ target: target.name, alertname, source: trigger.source }, this.#stopping.signal.aborted ? 'remediation cancelled by shutdown' : 'remediation cancelled: the target was removed');
      return;
    }
    // The intent is recorded (and on disk) before the action runs: a remediator killed between the
    // action and its verification still counts it, in the restarts and the circuit window.
    const counted = clock.now();
    record.restarts += 1;
    record.restartTimes.push(counted);
    await store.save(target.name);
    let outcome: ActionOutcome;
    let healthySeconds: number | undefined;
    let interrupted = false;
    // The labels go to an action that checks them (refuse): one acting on what the alert names.
    const context: RestartContext = { alertname, fingerprint: entry.trigger.fingerprint, ...(target.action.refuse ? { labels: trigger.labels } : {}) };
    try {
      outcome = await target.action.restart(context);
    } catch (err) {
      outcome = { ok: false, message: (err as Error).message };
    }
    if (outcome.verdict !== undefined) {
      // Nothing was done (the pod is gone, a budget said no): not a restart, so not counted.
      record.restarts -= 1;
      const at = record.restartTimes.lastIndexOf(counted);
      if (at >= 0) record.restartTimes.splice(at, 1);
      // A blocked action may be tried again by the next notification of the same alert.
      if (outcome.verdict === 'blocked') delete record.seen[dedupeKey(trigger)];
      return this.#nothingDone(target, record, entry, outcome.verdict, outcome.message);
    }
    const acted = clock.now();
    if (outcome.ok) {
      // Only an action that worked started something (an owned server's start is its action's to record).
      if (!target.owns) record.startedAt = acted;
      // The action only started it: a restart succeeds once the server answers again.
      const healthy = await this.#waitHealthy(target, record, acted, context);
      if (healthy.ok) {
        healthySeconds = (clock.now() - acted) / 1000;
        record.respawns = 0;
        outcome = { ok: true, message: `${outcome.message}; answering after ${healthySeconds.toFixed(1)} s` };
      } else {
        // A shutdown (or the removal) cut the check short: whether it worked is unknown, not a failure.
        interrupted = signal.aborted;
        outcome = { ok: false, message: `${outcome.message}; ${healthy.message}` };
      }
    }
    await this.#finish(target, record, entry, outcome, interrupted, healthySeconds);
  }

  /**
   * Records an action that did nothing (its verdict: stale, blocked, invalid): the history, the
   * record's last action, the actions counter and the log. No cooldown starts, no chat message.
   */
  async #nothingDone(target: ManagedTarget, record: TargetRecord, entry: ActionEntry, verdict: Verdict, message: string): Promise<void> {
    const { clock, history, logger, store } = this.#o;
    const finished = clock.now();
    const at = new Date(toWall(clock, finished)).toISOString();
    record.inProgress = undefined;
    record.lastAction = { at, alertname: entry.trigger.alertname, outcome: verdict, message };
    await store.save(target.name);
    history.update(entry, { finished_at: at, outcome: verdict, message, decisions: [...entry.decisions, { stage: 'action', result: verdict }] });
    if (this.#targets.get(target.name) === target) {
      this.#o.metrics.actions.inc({ target: target.name, action: target.action.kind, outcome: verdict });
      this.#o.metrics.setLastAction({ target: target.name, action: target.action.kind, alertname: entry.trigger.alertname, outcome: verdict });
    }
    logger[verdict === 'invalid' ? 'error' : 'warn']({ target: target.name, alertname: entry.trigger.alertname, source: entry.trigger.source, outcome: verdict, message }, 'remediation did nothing');
  }

  /** Records how an action ended: the record, the history, the metrics, the log, the chat. */
  async #finish(target: ManagedTarget, record: TargetRecord, entry: ActionEntry, outcome: { ok: boolean; message: string }, interrupted: boolean, healthySeconds: number | undefined): Promise<void> {
    const { clock, history, logger, store } = this.#o;
    const alertname = entry.trigger.alertname;
    const finished = clock.now();
    const outcomeName = interrupted ? 'interrupted' : outcome.ok ? 'success' : 'failure';
    record.cooldownUntil = finished + target.cooldownMs;
    record.inProgress = undefined;
    record.lastAction = { at: new Date(toWall(clock, finished)).toISOString(), alertname, outcome: outcomeName, message: outcome.message };
    await store.save(target.name);
    history.update(entry, { finished_at: record.lastAction.at, outcome: outcomeName, message: outcome.message, time_to_healthy_seconds: healthySeconds });
    // A target a reload removed meanwhile: its series are gone and stay gone.
    if (this.#targets.get(target.name) === target && !interrupted) {
      const { metrics } = this.#o;
      metrics.actions.inc({ target: target.name, action: target.action.kind, outcome: outcomeName });
      metrics.lastAction.set({ target: target.name }, toWall(clock, finished) / 1000);
      metrics.setLastAction({ target: target.name, action: target.action.kind, alertname, outcome: outcomeName });
      metrics.recordAction({ target: target.name, action: target.action.kind, trigger: alertname, outcome: outcome.ok ? 'success' : 'failure', id: String(entry.id), timeToHealthySeconds: healthySeconds });
      if (healthySeconds !== undefined) {
        metrics.timeToHealthy.observe({ target: target.name }, healthySeconds);
        metrics.lastTimeToHealthy.set({ target: target.name }, healthySeconds);
      }
    }
    logger[outcome.ok || interrupted ? 'info' : 'error']({ target: target.name, alertname, source: entry.trigger.source, outcome: outcomeName, message: outcome.message }, 'remediation finished');
    // Once the outcome is recorded, and not awaited: a chat channel can neither hold up nor fail it.
    try {
      this.#o.notify?.(structuredClone(entry));
    } catch (err) {
      logger.error({ target: target.name, err: (err as Error).message }, 'cannot report the remediation');
    }
    if (recentRestarts(target, record, clock.now()) >= target.circuit.maxRestarts) {
      logger.error({ target: target.name, restarts: record.restartTimes.length, window_ms: target.circuit.windowMs }, 'crash-loop circuit open: no more actions until the window passes or it is closed by hand');
    }
    // A server that died again while this restart waited for it: its exit came while the restart
    // was in progress, so nothing else will respawn it. Go round again (backoff, circuit).
    if (target.restartOnExit && target.owns && target.action.pid() === undefined && !this.#signal(target).aborted && this.#targets.get(target.name) === target) {
      this.#respawn(target, 'the server exited while starting');
    }
  }

  #respawn(target: ManagedTarget, why: string): void {
    const trigger: Trigger = { source: 'exit', status: 'firing', labels: { alertname: 'ModelServerExited', target: target.name }, fingerprint: `exit-${why}`, startsAt: new Date(this.#o.clock.wall()).toISOString() };
    void this.#enqueue(target.name, trigger, false, () => this.#decide(target, trigger, false));
  }

  /**
   * Polls until the server answers (listing and a one-token generation), and is what the action
   * started (see #answers), or its start-up time is up. Writes only the record it is given.
   */
  async #waitHealthy(target: ManagedTarget, record: TargetRecord, since: number, context?: RestartContext): Promise<{ ok: true } | { ok: false; message: string }> {
    const { clock } = this.#o;
    const signal = this.#signal(target);
    const deadline = since + target.startupTimeoutMs;
    let last = 'no answer';
    // Something else answering meanwhile is worth saying when ours then exits.
    let stranger: string | undefined;
    while (!signal.aborted) {
      // An owned server that exited while starting will not answer: do not wait out the timeout.
      if (target.owns && target.action.pid() === undefined) return { ok: false, message: `the server exited while starting${stranger ? ` (meanwhile ${stranger})` : ''}` };
      const left = deadline - clock.now();
      if (left <= 0) break;
      const check = await this.#answers(target, Math.min(confirmMs, left), context && { purpose: 'verify', context });
      if (signal.aborted) break;
      if (check.ok) {
        record.startedAt = undefined; // loaded: the start-up window is over
        record.healthyAt = clock.now();
        return { ok: true };
      }
      last = check.message;
      if (check.stranger) stranger = check.message;
      await clock.sleep(Math.min(verifyEveryMs, Math.max(0, deadline - clock.now())), signal);
    }
    if (signal.aborted) return { ok: false, message: this.#why() };
    return { ok: false, message: `not answering ${target.startupTimeoutMs / 1000} s after the action (${last})` };
  }

  /**
   * Does the target's server answer now? The verifier's check (listing and a one-token generation),
   * and then, where the action can tell, whether what answers is the server it started or manages:
   * another process answering on the port (a stranger, an old server) is not it.
   */
  async #answers(target: ManagedTarget, timeoutMs: number, at?: { purpose: 'confirm' | 'verify'; context: RestartContext }): Promise<{ ok: boolean; message: string; stranger?: boolean }> {
    // Where the action says the server is now (the pod the alert names, the one that replaced it).
    const where = at && target.action.probeHost ? await target.action.probeHost(at.purpose, at.context) : undefined;
    if (where && where.host === undefined) return { ok: false, message: where.message };
    const check = await this.#o.verifier.answers(target.name, timeoutMs, where?.host);
    if (!check.ok || !target.action.identify) return check;
    const address = this.#o.verifier.address?.(target.name, where?.host);
    const who = address ? await target.action.identify(address) : undefined;
    return who && !who.ok ? { ok: false, message: who.message, stranger: true } : check;
  }

  /** An owned server exited by itself: counted; with restart_on_exit, respawned through the stages. */
  recordExit(name: string, detail: { code: number | null; signal: string | null }): void {
    const target = this.#targets.get(name);
    const record = this.#o.store.get(name);
    if (!target || !record) return;
    record.unexpectedExits += 1;
    void this.#o.store.save(name);
    this.#o.metrics.processExits.inc({ target: name });
    // An exit during a restart of ours is that restart's business (it fails, then comes round again).
    if (!target.restartOnExit || this.#stopping.signal.aborted || record.inProgress) return;
    this.#respawn(target, `code ${detail.code ?? detail.signal}`);
  }

  /** Closes a target's crash-loop circuit by hand (an authenticated request). */
  closeCircuit(name: string): boolean {
    const record = this.#o.store.get(name);
    if (!record || !this.#targets.has(name)) return false;
    record.restartTimes = [];
    record.respawns = 0;
    void this.#o.store.save(name);
    this.#o.logger.warn({ target: name }, 'crash-loop circuit closed by hand');
    return true;
  }

  /** Applies a reloaded config; a target whose action changes first finishes the work under way. */
  /**
   * Applies a reloaded config. A target whose action changes first finishes the work under way; a
   * removed one has it cut short (a check of its server, a respawn backoff: its action was stopped
   * already), and its record is forgotten only once that work has ended.
   */
  async reconfigure(targets: ManagedTarget[], match: Record<string, string>, staleAfterMs: number): Promise<void> {
    const wanted = new Map(targets.map((t) => [t.name, t]));
    const leaving = [...this.#targets.values()].filter((old) => wanted.get(old.name) !== old);
    for (const old of leaving) if (!wanted.has(old.name)) this.#cancel(old).removed.abort();
    for (const old of leaving) {
      await this.#queues.get(old.name);
      await this.#acting.get(old.name);
    }
    for (const target of targets) if (!this.#o.store.get(target.name)) await this.#o.store.load(target.name);
    for (const name of this.#targets.keys()) if (!wanted.has(name)) this.#o.store.forget(name);
    this.#targets = wanted;
    this.#match = match;
    this.#staleAfterMs = staleAfterMs;
  }

  /** Loads every target's record, then lets each action adopt or start its server. */
  async start(): Promise<void> {
    for (const target of this.#targets.values()) {
      const record = await this.#o.store.load(target.name);
      // A restart under way when the previous run died: its outcome is unknown, its cooldown applies
      // (it was counted, in the restarts and the circuit window, before it ran).
      if (record.inProgress) {
        this.#o.logger.warn({ target: target.name, alertname: record.inProgress.alertname }, 'a restart was under way when the remediator last stopped');
        record.inProgress = undefined;
        record.cooldownUntil = Math.max(record.cooldownUntil, this.#o.clock.now() + target.cooldownMs);
      }
      await target.action.start();
      if (target.owns && record.startedAt !== undefined) {
        // Watch the initial load, so the start-up window ends as soon as the server answers.
        const startedAt = record.startedAt;
        void this.#own(
          () => this.#waitHealthy(target, record, startedAt),
          (err) => void this.#o.logger.error({ target: target.name, err: err.message, stack: err.stack }, 'internal error while watching the server start'),
        );
      }
    }
  }

  /** Resolves when every decision and action started so far has finished. */
  async idle(): Promise<void> {
    while (this.#running.size > 0) await Promise.all(this.#running);
  }

  async stop(): Promise<void> {
    this.#stopping.abort();
    // Stop first, so a running restart command is ended instead of awaited for its whole timeout;
    // then again, for a server a restart in flight may have started meanwhile.
    // Every action's stop() may be called twice; one failing must not keep the state unwritten.
    const stopAll = async () => {
      for (const result of await Promise.allSettled([...this.#targets.values()].map(({ action }) => action.stop()))) {
        if (result.status === 'rejected') this.#o.logger.error({ err: (result.reason as Error).message }, 'cannot stop an action');
      }
    };
    await stopAll();
    await this.idle();
    await stopAll();
    await this.#o.store.close();
    await this.#o.history.flush();
  }

  /** A second signal: every owned server and running command ends now. */
  kill(): void {
    this.#stopping.abort();
    for (const { action } of this.#targets.values()) action.kill();
  }

  #refreshGauges(): void {
    const now = this.#o.clock.now();
    for (const target of this.#targets.values()) {
      const record = this.#o.store.get(target.name);
      if (!record) continue;
      const recent = recentRestarts(target, record, now);
      this.#o.metrics.recentRestarts.set({ target: target.name }, recent);
      this.#o.metrics.circuitOpen.set({ target: target.name }, recent >= target.circuit.maxRestarts ? 1 : 0);
    }
  }

  /** The state of every target, for GET /api/v1/targets and the status page. */
  snapshot() {
    const { clock } = this.#o;
    const now = clock.now();
    const iso = (mono: number) => new Date(toWall(clock, mono)).toISOString();
    return [...this.#targets.values()].map((t) => {
      const r = this.#o.store.get(t.name);
      const recent = r ? recentRestarts(t, r, now) : 0;
      const circuitOpen = recent >= t.circuit.maxRestarts;
      const starting = r?.startedAt !== undefined && now - r.startedAt < t.startupTimeoutMs;
      const cooling = r !== undefined && now < r.cooldownUntil;
      return {
        name: t.name,
        action: t.action.kind,
        state: r?.inProgress ? 'restarting' : circuitOpen ? 'circuit_open' : starting ? 'starting' : cooling ? 'cooldown' : 'idle',
        pid: t.action.pid() ?? null,
        restarts: r?.restarts ?? 0,
        unexpected_exits: r?.unexpectedExits ?? 0,
        recent_restarts: recent,
        circuit: { open: circuitOpen, max_restarts: t.circuit.maxRestarts, window_seconds: t.circuit.windowMs / 1000, closes_at: circuitOpen ? iso(circuitClosesAt(t, r!, now)!) : null },
        cooldown_until: cooling ? iso(r!.cooldownUntil) : null,
        started_at: r?.startedAt === undefined ? null : iso(r.startedAt),
        last_action: r?.lastAction ?? null,
      };
    });
  }

  recentActions(): readonly ActionEntry[] {
    return this.#o.history.recent();
  }
}
