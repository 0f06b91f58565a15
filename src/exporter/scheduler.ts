import { setTimeout as sleep } from 'node:timers/promises';
import type { Module, Target } from '../probing/module.ts';
import type { ApiKeys } from '../probing/api-keys.ts';
import type { Logger } from '../lib/log.ts';
import type { ProbeName } from '../probing/probes/index.ts';
import type { AnyProbe } from '../probing/probes/types.ts';
import type { RoundHistory, StoredRound } from './history.ts';
import { initSeries, recordUp, runRound, upGauge, type RoundReport } from '../probing/round.ts';
import type { SeriesStore } from '../probing/series.ts';

/** Time as the scheduler sees it; tests pass a fake one. */
export interface Clock {
  now(): number;
  sleep(ms: number, signal: AbortSignal): Promise<void>;
}

export const realClock: Clock = {
  now: () => performance.now(),
  // timers/promises removes its abort listener when the timer fires: nothing piles up per round.
  sleep: (ms, signal) => sleep(ms, undefined, { signal }).catch(() => {}),
};

export interface SchedulerOptions {
  store: SeriesStore;
  history: RoundHistory;
  logger: Logger;
  clock?: Clock;
  probeTable?: Partial<Record<ProbeName, AnyProbe>>;
  /** Targets a previous scheduler already completed a round of, with a probing that did not change. */
  probed?: ReadonlySet<string>;
  /** What a previous scheduler knew of targets that stay: the model label llm_server_up carries
   * (so a changed one is replaced, not left behind), and for unchanged ones the last round. */
  carried?: ReadonlyMap<string, Carried>;
  apiKeys?: ApiKeys;
  /** A round skipped for a reason of the exporter's own (EMFILE, ...): counted, never the server's fault. */
  onSkipped?: (target: string, code: string) => void;
}

export interface TargetStatus {
  target: Target;
  last: StoredRound | undefined;
}

export interface Carried {
  upModel: string | undefined;
  model: string | undefined;
  last: StoredRound | undefined;
}

interface TargetState {
  target: Target;
  module: Module;
  model: string | undefined;
  upModel: string | undefined;
  last: StoredRound | undefined;
}

/** When target i of n first falls due, in ms after the start: spread evenly over its interval. */
export const firstRoundOffset = (i: number, n: number, interval: number): number => (n > 0 ? Math.floor((i * interval) / n) : 0);

/** Slot lengths a scheduler may start its rounds on, longest first: each divides 5 s, 10 s, 15 s, 30 s, 1 min. */
export const slotLengths = [1000, 500, 250, 100, 50, 25, 10, 5] as const;
/** Below this many rounds a second every round has a timer of its own. */
export const slotsFromRate = 5;
/** Rounds a slot is sized to hold. */
export const roundsPerSlot = 8;

/**
 * The slot rounds start on, in ms, or 0 for none. Waking the process costs more CPU than a small
 * probe itself (a listing probe alone on its wake-up costs 1.6-1.9 times what one started with
 * seven others does), so with many targets the rounds that fall due within one slot start
 * together, on one timer: the longest slot of `slotLengths` that holds about `roundsPerSlot`
 * rounds at the targets' rate and divides every interval, so each target's rounds stay exactly
 * one interval apart and only its first round moves, by less than a slot. Few targets, or an
 * interval no slot divides: no slots, every round on its own timer, as due.
 */
export function slotLength(intervals: readonly number[]): number {
  const rate = intervals.reduce((sum, interval) => sum + 1000 / interval, 0);
  if (rate < slotsFromRate) return 0;
  const wanted = (1000 * roundsPerSlot) / rate;
  return slotLengths.find((slot) => slot <= wanted && intervals.every((interval) => interval % slot === 0)) ?? 0;
}

/** The first slot boundary at or after `due` (slots counted from `origin`); `due` itself without slots. */
export const slotStart = (due: number, origin: number, slot: number): number => (slot > 0 ? origin + Math.ceil((due - origin) / slot) * slot : due);

/**
 * Probes every target in the background, decoupled from scrapes so several Prometheus replicas do
 * not multiply the load on the model. Each target has one loop, so its probes never overlap.
 */
export class Scheduler {
  readonly #o: SchedulerOptions & { clock: Clock };
  readonly #stop = new AbortController();
  readonly #states: TargetState[];
  readonly #probed: Set<string>;
  #loops: Promise<void>[] = [];
  /** Rounds start on slots of this length (0: each when due); see slotLength. */
  readonly #slot: number;
  /** The timer of each slot some loop waits for, by its start: one per slot, whatever the number of rounds in it. */
  readonly #wakeups = new Map<number, Promise<void>>();

  constructor(config: { targets: readonly Target[]; modules: Readonly<Record<string, Module>> }, options: SchedulerOptions) {
    this.#o = { clock: realClock, ...options };
    const names = new Set(config.targets.map((t) => t.name));
    this.#probed = new Set([...(options.probed ?? [])].filter((name) => names.has(name)));
    this.#states = config.targets.map((target) => {
      const carried = options.carried?.get(target.name);
      const unchanged = this.#probed.has(target.name);
      return { target, module: config.modules[target.module]!, model: unchanged ? carried?.model : undefined, upModel: carried?.upModel, last: unchanged ? carried?.last : undefined };
    });
    // Series of targets whose probing is unchanged keep their values (a reason gauge removed would
    // restart the `for` of the rules that read it); new or changed ones start afresh.
    for (const { target, module } of this.#states) if (!this.#probed.has(target.name)) initSeries(this.#o.store, target.name, module);
    this.#slot = slotLength(this.#states.map((s) => s.target.interval));
  }

  /** The slot length rounds start on (0: none). */
  get slot(): number {
    return this.#slot;
  }

  get targets(): readonly Target[] {
    return this.#states.map((s) => s.target);
  }

  /**
   * Starts one loop per target. Target i of n starts its first round i/n of its interval after the
   * start (as Prometheus spreads its scrapes): n targets are not all probed at the same instant,
   * and a single target is probed at once.
   */
  start(): void {
    const n = this.#states.length;
    const origin = this.#o.clock.now();
    this.#loops = this.#states.map((state, i) => this.#loop(state, origin, firstRoundOffset(i, n, state.target.interval)));
  }

  /** True once every target has completed a full round: its series then mean something. */
  ready(): boolean {
    return this.#probed.size === this.#states.length;
  }

  /** The targets that have completed a round, handed to the scheduler that replaces this one. */
  probed(): ReadonlySet<string> {
    return this.#probed;
  }

  /** What the scheduler that replaces this one should know of each target. */
  carry(): Map<string, Carried> {
    return new Map(this.#states.map((s) => [s.target.name, { upModel: s.upModel, model: s.model, last: s.last }]));
  }

  status(): TargetStatus[] {
    return this.#states.map(({ target, last }) => ({ target, last }));
  }

  async stop(): Promise<void> {
    this.#stop.abort();
    await Promise.all(this.#loops);
  }

  /**
   * Waits until `at`. With slots, every loop whose round starts at `at` waits on one timer (the
   * signal of the loop that set it is enough: every loop's signal aborts together, at stop).
   */
  #sleepUntil(at: number, stop: AbortSignal): Promise<void> {
    const { clock } = this.#o;
    if (this.#slot === 0) return clock.sleep(at - clock.now(), stop);
    let wakeup = this.#wakeups.get(at);
    if (wakeup === undefined) {
      wakeup = clock.sleep(at - clock.now(), stop).then(() => void this.#wakeups.delete(at));
      this.#wakeups.set(at, wakeup);
    }
    return wakeup;
  }

  async #loop(state: TargetState, origin: number, offset: number): Promise<void> {
    const { clock } = this.#o;
    // Each loop follows the scheduler's stop through a signal of its own: the listeners every
    // round adds (its sleep, its probes' deadlines) then sit on a list of one or two, not on one
    // list shared by every target, where adding and removing costs time in proportion to the
    // number of targets (a third of the exporter's CPU at 1,000 targets).
    const own = new AbortController();
    this.#stop.signal.addEventListener('abort', () => own.abort(this.#stop.signal.reason), { once: true });
    const stop = own.signal;
    // Rounds fall due on a fixed grid, one interval apart: a timer that fires late does not push
    // every later round back, so the spread between targets holds.
    // With slots (see slotLength), a round starts at the first slot boundary at or after it is due.
    let due = origin + offset;
    while (!stop.aborted) {
      const at = slotStart(due, origin, this.#slot);
      if (at - clock.now() > 0) await this.#sleepUntil(at, stop);
      if (stop.aborted) break;
      await this.#round(state, stop);
      // A round that overran its interval: the next one starts at once, and the grid moves with it
      // (no burst of rounds to catch up).
      due = Math.max(due + state.target.interval, clock.now());
    }
  }

  /** Runs one round of a target now (the loop's body; tests call it directly). */
  async runRound(name: string): Promise<RoundReport | undefined> {
    const state = this.#states.find((s) => s.target.name === name);
    return state && this.#round(state);
  }

  /** A probe failed: the server is not up, now, not when the round ends (a frozen one takes every deadline). */
  #down(state: TargetState, model: string | undefined): void {
    state.upModel ??= model ?? '';
    this.#o.store.set(state.target.name, upGauge, 0, { model: state.upModel });
  }

  async #round(state: TargetState, stop = this.#stop.signal): Promise<RoundReport | undefined> {
    const { store, history, logger, clock, probeTable, apiKeys } = this.#o;
    const { target, module } = state;
    const report = await runRound({ target: { ...target, apiKey: apiKeys?.forTarget(target) }, module, store, stop, now: () => clock.now(), knownModel: state.model, probeTable, onProbeFailed: (model) => this.#down(state, model) });
    if (stop.aborted) return undefined;
    if (report.skipped !== undefined) {
      // Nothing is known of the server: its series and last result stay as they were, and the next
      // round is due as usual. The round's log is kept, for the status page.
      history.add(report);
      this.#o.onSkipped?.(target.name, report.skipped);
      logger.warn({ target: target.name, code: report.skipped }, 'round skipped: the exporter is short of file descriptors or ports');
      return report;
    }
    state.model = report.model;
    state.upModel = recordUp(store, report, state.upModel);
    const previous = state.last;
    state.last = history.add(report);
    this.#probed.add(target.name);
    const failures = report.probes.filter((p) => !p.success).map(({ probe, reason, message }) => ({ probe, reason, message }));
    // Log changes, not every round: a down server would otherwise flood the log.
    if (previous?.up !== report.up) logger[report.up ? 'info' : 'warn']({ target: target.name, up: report.up, failures, round: state.last.id }, report.up ? 'target up' : 'target down');
    else if (!report.up) logger.debug({ target: target.name, failures, round: state.last.id }, 'target still down');
    return report;
  }
}
