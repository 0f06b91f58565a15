import type { z } from 'zod';
import type { Progress, ServerType } from '../../servers/types.ts';
import type { GaugeDef, HistogramDef, MetricDef, Recorder } from '../series.ts';

/** Why a probe failed; each probe names the ones it can report (documented in docs/probes.md). */
export const failureReasons = [
  'connect_refused',
  'connect_error',
  'timeout',
  'http_4xx',
  'http_5xx',
  'model_missing',
  'bad_response',
  'no_tokens',
  'hung',
  'unexpected_answer',
  'no_reasoning',
  'unauthorized',
  'starting',
  'saturated',
  'slow',
  'paused',
  'asleep',
] as const;
export type FailureReason = (typeof failureReasons)[number];

/** Every HTTP probe can meet these. */
export const transportReasons = ['connect_refused', 'connect_error', 'timeout', 'http_4xx', 'http_5xx', 'bad_response', 'unauthorized', 'starting'] as const satisfies readonly FailureReason[];

/** The server a probe talks to: resolved from a configured target or from a /probe request. */
export interface ProbeTarget {
  /** The OpenAI-compatible base URL, without a trailing slash: http://127.0.0.1:8000/v1 */
  url: string;
  server: ServerType;
  /** The configured model, if any. */
  model: string | undefined;
  /** Largest body a probe reads before giving up on the server (a huge or endless answer). */
  maxResponseBytes: number;
}

/** What the probes of one round share. */
export interface RoundState {
  /** The server's progress signal, as the progress probe read it this round. */
  progress?: Progress;
  /** How the probes that ran before failed, by probe name. */
  failures: Record<string, ProbeFailure>;
}

export interface ProbeContext<Options> {
  target: ProbeTarget;
  options: Options;
  /** The configured model, else the one an earlier probe of the round (models) found. */
  model: string | undefined;
  /** Aborts at the probe's deadline (or when the exporter stops). */
  signal: AbortSignal;
  /** When the signal will abort, in the clock of now(). */
  deadline: () => number;
  /** Moves the deadline to ms from now (capped by a scrape's timeout): an Ollama model load. */
  extendDeadline: (ms: number) => void;
  round: RoundState;
  /** Monotonic milliseconds; a seam so timing maths can be tested. */
  now: () => number;
  /** Sent with every request: the headers that identify probe traffic, and the API key. */
  headers: Record<string, string>;
  /** Where the probe records its own series; applied only if it succeeds. */
  record: Recorder;
  /** One line of the probe's debug log (requests, statuses, timings). */
  log: (line: string) => void;
}

export interface ProbeSuccess {
  success: true;
  /** The model the server serves, when the probe learnt it: later probes of the round use it. */
  model?: string;
}

export interface ProbeFailure {
  success: false;
  reason: FailureReason;
  message: string;
}

export type ProbeResult = ProbeSuccess | ProbeFailure;

/**
 * One probe: one file, this one shape (blackbox_exporter's prober.ProbeFn plus its config struct).
 * Its options schema is part of the config schema; its metrics and reasons are documented from
 * here.
 */
export interface Probe<Options = unknown> {
  readonly name: string;
  /** One line for docs and --help. */
  readonly description: string;
  /** Options under modules.NAME.<probe name>, with their defaults. */
  readonly options: z.ZodType<Options>;
  /** The failure reasons it can report. */
  readonly reasons: readonly FailureReason[];
  /** It asks the server to generate, so it needs a model: the configured one or the listing's. */
  readonly generates?: boolean;
  /** The series it records through ctx.record. */
  readonly metrics: readonly (GaugeDef | HistogramDef)[];
  run(ctx: ProbeContext<Options>): Promise<ProbeResult>;
}

/** Keeps a probe's options type while it sits in a table of probes of every kind. */
export const defineProbe = <Options>(probe: Probe<Options>): Probe<Options> => probe;

export type AnyProbe = Probe<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
export type { MetricDef };

export function fail(reason: FailureReason, message: string): ProbeFailure {
  return { success: false, reason, message };
}
