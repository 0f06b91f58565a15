import type { Logger } from '../log.ts';
import type { Action } from './actions/types.ts';
import type { Alert, WebhookPayload } from './alert-schema.ts';
import type { Decision, RemediatorMetrics } from './metrics.ts';

export interface ManagedTarget {
  name: string;
  action: Action;
  /** After a restart, further alerts for the target are ignored this long: the server is loading. */
  cooldownMs: number;
}

export interface LastAction {
  at: string;
  alertname: string;
  outcome: 'success' | 'failure';
  message: string;
}

/** One action in the recent history the status page shows. */
export interface ActionRecord extends LastAction {
  target: string;
  action: string;
  fingerprint: string;
  started_at: string;
}

const keptActions = 50;

interface TargetState {
  target: ManagedTarget;
  inProgress: boolean;
  restarts: number;
  unexpectedExits: number;
  cooldownUntil: number;
  lastAction?: LastAction;
}

export interface AlertDecision {
  alertname: string;
  target: string | undefined;
  decision: Decision;
}

export interface RemediatorOptions {
  targets: ManagedTarget[];
  /** Labels an alert must carry (all of them, with these values) to trigger a restart. */
  match: Record<string, string>;
  logger: Logger;
  metrics: RemediatorMetrics;
  /** Unix milliseconds; a seam so cooldown and dedupe are tested without sleeping. */
  now?: () => number;
}

// Alertmanager delivers at least once (re-sends, HA pairs): one restart per alert instance.
const dedupeMemoryMs = 24 * 3600_000;

/**
 * Decides, per alert, whether to restart its target: only firing alerts that match, for a known
 * target, not seen before, not while a restart runs, not during the cooldown after one.
 * Decisions are synchronous; actions run in the background so the webhook answers at once.
 */
export class Remediator {
  readonly #o: Required<RemediatorOptions>;
  readonly #states = new Map<string, TargetState>();
  readonly #seen = new Map<string, number>();
  readonly #running = new Set<Promise<void>>();
  readonly #actions: ActionRecord[] = [];

  constructor(options: RemediatorOptions) {
    this.#o = { now: Date.now, ...options };
    for (const target of options.targets) {
      this.#states.set(target.name, { target, inProgress: false, restarts: 0, unexpectedExits: 0, cooldownUntil: 0 });
    }
  }

  handle(payload: WebhookPayload): AlertDecision[] {
    const { logger, metrics } = this.#o;
    if (payload.truncatedAlerts > 0) logger.warn({ truncated: payload.truncatedAlerts, group_key: payload.groupKey }, 'Alertmanager truncated alerts (max_alerts)');
    return payload.alerts.map((alert) => {
      const decision = this.#decide(alert);
      metrics.alerts.inc({ decision });
      const entry = { alertname: alert.labels.alertname ?? '', target: alert.labels.target, decision };
      logger[decision === 'unknown_target' ? 'warn' : 'info']({ ...entry, fingerprint: alert.fingerprint, starts_at: alert.startsAt }, 'alert received');
      return entry;
    });
  }

  #decide(alert: Alert): Decision {
    // Per alert, on its own status and labels: never the group's status or commonLabels.
    if (alert.status === 'resolved') return 'resolved';
    if (!Object.entries(this.#o.match).every(([k, v]) => alert.labels[k] === v)) return 'not_matching';
    const state = this.#states.get(alert.labels.target ?? '');
    if (!state) return 'unknown_target';
    const now = this.#o.now();
    const key = `${alert.fingerprint}@${alert.startsAt}`;
    const seenAt = this.#seen.get(key);
    if (seenAt !== undefined && now - seenAt < Math.max(state.target.cooldownMs, 1)) return 'duplicate';
    if (state.inProgress) return 'in_progress';
    if (now < state.cooldownUntil) return 'cooldown';
    this.#remember(key, now);
    this.#track(this.#restart(state, alert));
    return 'restart';
  }

  async #restart(state: TargetState, alert: Alert): Promise<void> {
    const { target } = state;
    const alertname = alert.labels.alertname ?? '';
    state.inProgress = true;
    const startedAt = new Date(this.#o.now()).toISOString();
    let outcome: LastAction['outcome'] = 'failure';
    let message: string;
    try {
      const result = await target.action.restart({ alertname, fingerprint: alert.fingerprint });
      outcome = result.ok ? 'success' : 'failure';
      message = result.message;
    } catch (err) {
      message = (err as Error).message;
    }
    const finished = this.#o.now();
    state.restarts += 1;
    state.cooldownUntil = finished + target.cooldownMs;
    state.lastAction = { at: new Date(finished).toISOString(), alertname, outcome, message };
    this.#actions.unshift({ ...state.lastAction, target: target.name, action: target.action.kind, fingerprint: alert.fingerprint, started_at: startedAt });
    this.#actions.length = Math.min(this.#actions.length, keptActions);
    state.inProgress = false;
    this.#o.metrics.actions.inc({ target: target.name, action: target.action.kind, outcome });
    this.#o.metrics.lastAction.set({ target: target.name }, finished / 1000);
    this.#o.logger[outcome === 'success' ? 'info' : 'error']({ target: target.name, alertname, outcome, message }, 'remediation finished');
  }

  #remember(key: string, now: number): void {
    for (const [k, at] of this.#seen) if (now - at > dedupeMemoryMs) this.#seen.delete(k);
    this.#seen.set(key, now);
  }

  #track(work: Promise<void>): void {
    this.#running.add(work);
    void work.finally(() => this.#running.delete(work));
  }

  /** Applies a reloaded config: targets kept by name keep their state (restarts, cooldown, a
   * restart in progress); new ones start fresh; removed ones are forgotten. */
  reconfigure(targets: ManagedTarget[], match: Record<string, string>): void {
    const states = new Map<string, TargetState>();
    for (const target of targets) {
      const old = this.#states.get(target.name);
      if (old) {
        // The same object, by name, even when its action changed: a restart running now still
        // counts as in progress, and its outcome lands in the state that stays.
        old.target = target;
        states.set(target.name, old);
      } else {
        states.set(target.name, { target, inProgress: false, restarts: 0, unexpectedExits: 0, cooldownUntil: 0 });
      }
    }
    this.#states.clear();
    for (const [name, state] of states) this.#states.set(name, state);
    this.#o.match = match;
  }

  /** Counts an unexpected exit of a managed server (the restart still waits for the alert). */
  recordUnexpectedExit(name: string): void {
    const state = this.#states.get(name);
    if (state) state.unexpectedExits += 1;
    this.#o.metrics.processExits.inc({ target: name });
  }

  /** Resolves when every action started so far has finished. */
  async idle(): Promise<void> {
    while (this.#running.size > 0) await Promise.all(this.#running);
  }

  async start(): Promise<void> {
    for (const { target } of this.#states.values()) await target.action.start();
  }

  async stop(): Promise<void> {
    // Stop first, so a running restart command is ended instead of awaited for its whole timeout;
    // then again, for a server a restart in flight may have started meanwhile.
    const stopAll = () => Promise.all([...this.#states.values()].map(({ target }) => target.action.stop()));
    await stopAll();
    await this.idle();
    await stopAll();
  }

  /** The last actions, newest first. */
  recentActions(): readonly ActionRecord[] {
    return this.#actions;
  }

  /** The state of every target, for GET /api/v1/targets. */
  snapshot() {
    const now = this.#o.now();
    return [...this.#states.values()].map((s) => ({
      name: s.target.name,
      action: s.target.action.kind,
      state: s.inProgress ? 'restarting' : now < s.cooldownUntil ? 'cooldown' : 'idle',
      pid: s.target.action.pid() ?? null,
      restarts: s.restarts,
      unexpected_exits: s.unexpectedExits,
      cooldown_until: s.cooldownUntil > now ? new Date(s.cooldownUntil).toISOString() : null,
      last_action: s.lastAction ?? null,
    }));
  }
}
