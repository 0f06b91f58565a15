// The simulated engine: a fixed number of slots, a queue in front of them, and tokens produced on a
// clock. Faults are consulted at every step, so a fault switched at runtime also affects work under
// way. It keeps the counters a real server exports as its progress signal (running, waiting,
// tokens generated), so the exporter can tell a busy server from a hung one.
import type { SimToken } from './completion.ts';
import { stalls, type SimFault } from './faults.ts';

/** Time as the engine sees it; unit tests pass a virtual clock. */
export interface Timers {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realTimers: Timers = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export interface EngineOptions {
  /** Time from a slot taking a request to its first token (prefill). */
  ttftMs: number;
  tokensPerSecond: number;
  slots: number;
  /** Tokens per streamed chunk after the first (vLLM's --stream-interval). */
  streamInterval: number;
  fault: () => SimFault;
  timers?: Timers;
}

export interface JobSink {
  /** A slot took the request: prefill begins. */
  started(): void;
  /** Tokens for one chunk; `last` when the plan is done. */
  tokens(tokens: SimToken[], last: boolean): void;
  /** The error fault hit the generation. */
  error(): void;
}

/** A cumulative histogram in Prometheus's shape: what a server's own /metrics shows of latencies. */
export class LatencyHistogram {
  readonly buckets: readonly number[];
  readonly counts: number[];
  sum = 0;
  count = 0;
  constructor(buckets: readonly number[]) {
    this.buckets = buckets;
    this.counts = buckets.map(() => 0);
  }
  observe(seconds: number): void {
    this.buckets.forEach((le, i) => {
      if (seconds <= le) this.counts[i]! += 1;
    });
    this.sum += seconds;
    this.count += 1;
  }
}

// vLLM's buckets (vllm/v1/metrics/loggers.py), the server whose dashboards read these.
const ttftBuckets = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80, 160, 640, 2560];
const interTokenBuckets = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80];

interface Job {
  tokens: readonly SimToken[];
  /** When it was submitted, and when its last token came out: its latencies. */
  submitted: number;
  lastToken: number;
  sink: JobSink;
  index: number;
  pending: SimToken[];
  due: number;
  timer: unknown;
  stalled: boolean;
}

export class Engine {
  readonly #o: EngineOptions & { timers: Timers };
  readonly #queue: Job[] = [];
  readonly #active = new Set<Job>();
  #produced = 0;
  /** Tokens of requests that have finished: what counters updated at completion see. */
  #completed = 0;
  /** Tokens other (simulated) users got while the engine was saturated. */
  #phantom = 0;
  #saturatedSince: number | undefined;
  /** Time from submission to the first token, and between tokens, of every request. */
  readonly timeToFirstToken = new LatencyHistogram(ttftBuckets);
  readonly interToken = new LatencyHistogram(interTokenBuckets);

  constructor(options: EngineOptions) {
    this.#o = { timers: realTimers, ...options };
    if (options.fault() === 'saturated') this.#saturatedSince = this.#o.timers.now();
  }

  get slots(): number {
    return this.#o.slots;
  }

  /** Requests being generated: all slots while saturated. */
  get running(): number {
    return this.#o.fault() === 'saturated' ? Math.max(this.#o.slots, this.#active.size) : this.#active.size;
  }

  /** Requests waiting for a slot (or for a stalled engine). */
  get waiting(): number {
    return this.#queue.length;
  }

  /**
   * Tokens of finished requests only, as llama.cpp's tokens_predicted_total and SGLang's
   * generation_tokens_total count them: they stand still during a long generation.
   */
  get completedTokens(): number {
    return this.#completed;
  }

  /** Tokens generated since start, for every request, counted as they come: the counter that proves progress. */
  get generated(): number {
    const busy = this.#saturatedSince === undefined ? 0 : this.#o.timers.now() - this.#saturatedSince;
    return this.#produced + Math.floor(this.#phantom + (busy * this.#o.tokensPerSecond * this.#o.slots) / 1000);
  }

  /** Queues a generation; returns a cancel function (the client went away). */
  submit(tokens: readonly SimToken[], sink: JobSink): () => void {
    const now = this.#o.timers.now();
    const job: Job = { tokens, submitted: now, lastToken: now, sink, index: 0, pending: [], due: 0, timer: undefined, stalled: false };
    this.#queue.push(job);
    this.#pump();
    return () => {
      const queued = this.#queue.indexOf(job);
      if (queued >= 0) this.#queue.splice(queued, 1);
      if (this.#active.delete(job)) {
        this.#o.timers.clearTimeout(job.timer);
        this.#pump();
      }
    };
  }

  /** Call after the fault changed: saturation is accounted, stalled work resumes. */
  faultChanged(): void {
    const { timers } = this.#o;
    const saturated = this.#o.fault() === 'saturated';
    if (saturated && this.#saturatedSince === undefined) this.#saturatedSince = timers.now();
    if (!saturated && this.#saturatedSince !== undefined) {
      this.#phantom += ((timers.now() - this.#saturatedSince) * this.#o.tokensPerSecond * this.#o.slots) / 1000;
      this.#saturatedSince = undefined;
    }
    for (const job of this.#active) {
      if (job.stalled && !stalls.has(this.#o.fault())) {
        job.stalled = false;
        job.due = timers.now();
        this.#schedule(job);
      }
    }
    this.#pump();
  }

  /** Cancels everything (the server closes). */
  stop(): void {
    for (const job of this.#active) this.#o.timers.clearTimeout(job.timer);
    this.#active.clear();
    this.#queue.length = 0;
  }

  #pump(): void {
    const fault = this.#o.fault();
    if (stalls.has(fault) || fault === 'saturated') return;
    while (this.#queue.length > 0 && this.#active.size < this.#o.slots) {
      const job = this.#queue.shift()!;
      this.#active.add(job);
      job.sink.started();
      if (job.tokens.length === 0) {
        job.sink.tokens([], true);
        this.#finish(job);
        continue;
      }
      job.due = this.#o.timers.now() + this.#o.ttftMs;
      this.#schedule(job);
    }
  }

  #schedule(job: Job): void {
    const { timers } = this.#o;
    job.timer = timers.setTimeout(() => this.#step(job), Math.max(0, job.due - timers.now()));
  }

  #step(job: Job): void {
    if (!this.#active.has(job)) return;
    const fault = this.#o.fault();
    // A stalled engine produces nothing; the connection stays open, silent, until it resumes.
    if (stalls.has(fault)) {
      job.stalled = true;
      return;
    }
    if (fault === 'error') {
      this.#active.delete(job);
      job.sink.error();
      this.#pump();
      return;
    }
    job.pending.push(job.tokens[job.index]!);
    job.index += 1;
    this.#produced += 1;
    const now = this.#o.timers.now();
    if (job.index === 1) this.timeToFirstToken.observe((now - job.submitted) / 1000);
    else this.interToken.observe((now - job.lastToken) / 1000);
    job.lastToken = now;
    const last = job.index >= job.tokens.length;
    // The first token goes out alone, then one chunk per stream interval, as vLLM does.
    if (last || job.index === 1 || job.pending.length >= this.#o.streamInterval) {
      job.sink.tokens(job.pending.splice(0), last);
    }
    if (last) {
      this.#completed += job.tokens.length;
      return this.#finish(job);
    }
    // Each step is due one token interval after the previous one was *due*, not after its timer
    // fired, so timer lateness does not accumulate into a slower rate.
    job.due += (1000 / this.#o.tokensPerSecond) * (fault === 'slow' ? 10 : 1);
    this.#schedule(job);
  }

  #finish(job: Job): void {
    this.#active.delete(job);
    this.#pump();
  }
}
