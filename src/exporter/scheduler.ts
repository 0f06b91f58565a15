import { setTimeout as sleep } from 'node:timers/promises';
import type { Target } from '../config/schema.ts';
import type { Logger } from '../log.ts';
import { probeNames, probes, type ProbeName } from './probes/index.ts';
import type { ProbeFn, ProbeResult } from './probes/types.ts';

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

export interface RoundObserver {
  recordProbe(target: string, probe: ProbeName, result: ProbeResult, seconds: number): void;
  recordRound(target: string, model: string | undefined, up: boolean): void;
}

export interface SchedulerOptions {
  observer: RoundObserver;
  logger: Logger;
  clock?: Clock;
  probeTable?: Record<ProbeName, ProbeFn>;
}

/**
 * Probes every target in the background, decoupled from scrapes so several Prometheus replicas do
 * not multiply the load on the model. Each target has one loop, so its probes never overlap.
 */
export class Scheduler {
  readonly #options: Required<SchedulerOptions>;
  readonly #stop = new AbortController();
  readonly #models = new Map<string, string>();
  #loops: Promise<void>[] = [];
  #pendingFirstRounds: number;
  readonly #firstRounds: Promise<void>;
  #firstRoundsDone!: () => void;

  readonly targets: readonly Target[];
  readonly #lastUp = new Map<string, boolean>();

  constructor(targets: readonly Target[], options: SchedulerOptions) {
    this.targets = targets;
    this.#options = { clock: realClock, probeTable: probes, ...options };
    this.#pendingFirstRounds = targets.length;
    this.#firstRounds = new Promise((resolve) => (this.#firstRoundsDone = resolve));
    if (targets.length === 0) this.#firstRoundsDone();
  }

  start(): void {
    this.#loops = this.targets.map((target) => this.#loop(target));
  }

  /** Resolves once every target has finished one round: the exporter is then ready. */
  firstRounds(): Promise<void> {
    return this.#firstRounds;
  }

  async stop(): Promise<void> {
    this.#stop.abort();
    await Promise.all(this.#loops);
  }

  async #loop(target: Target): Promise<void> {
    const { clock } = this.#options;
    let first = true;
    while (!this.#stop.signal.aborted) {
      const started = clock.now();
      await this.runRound(target);
      if (first && --this.#pendingFirstRounds === 0) this.#firstRoundsDone();
      first = false;
      // The next round starts one interval after this one started, or at once if it overran.
      await clock.sleep(Math.max(0, target.interval - (clock.now() - started)), this.#stop.signal);
    }
  }

  /** Runs the target's probes one after another, each under its own deadline. */
  async runRound(target: Target): Promise<void> {
    const { clock, observer, logger, probeTable } = this.#options;
    const failures: Array<{ probe: ProbeName; reason: string; message: string }> = [];
    for (const name of probeNames) {
      if (!target.probes.includes(name)) continue;
      const signal = AbortSignal.any([this.#stop.signal, AbortSignal.timeout(target.timeout)]);
      const started = clock.now();
      const model = target.model ?? this.#models.get(target.name);
      let result: ProbeResult;
      try {
        result = await probeTable[name]({ target, signal, model, now: () => clock.now() });
      } catch (err) {
        result = { success: false, reason: 'bad_response', message: `probe error: ${(err as Error).message}` };
      }
      if (this.#stop.signal.aborted) return;
      if (result.success && result.model !== undefined) this.#models.set(target.name, result.model);
      observer.recordProbe(target.name, name, result, (clock.now() - started) / 1000);
      if (!result.success) failures.push({ probe: name, reason: result.reason, message: result.message });
    }
    const up = failures.length === 0;
    observer.recordRound(target.name, target.model ?? this.#models.get(target.name), up);
    // Log changes, not every round: a down server would otherwise flood the log.
    if (this.#lastUp.get(target.name) !== up) logger[up ? 'info' : 'warn']({ target: target.name, up, failures }, up ? 'target up' : 'target down');
    else if (!up) logger.debug({ target: target.name, failures }, 'target still down');
    this.#lastUp.set(target.name, up);
  }
}
