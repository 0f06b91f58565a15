import type { Target } from '../../config/schema.ts';

/** Why a probe failed; every value is pre-initialised as a label of llm_probe_failures_total. */
export const failureReasons = [
  'connect_refused',
  'connect_error',
  'timeout',
  'http_4xx',
  'http_5xx',
  'model_missing',
  'bad_response',
  'no_tokens',
] as const;
export type FailureReason = (typeof failureReasons)[number];

export interface ProbeContext {
  target: Target;
  /** Aborts at the probe's deadline (or when the exporter stops). */
  signal: AbortSignal;
  /** The configured model, else the one the models probe found earlier; chat needs one. */
  model: string | undefined;
  /** Monotonic milliseconds; a seam so timing maths can be tested. */
  now: () => number;
}

export interface ProbeSuccess {
  success: true;
  /** The model the server serves, when the probe learnt it. */
  model?: string;
  /** Request sent -> first content or reasoning token. */
  ttftSeconds?: number;
  /** Decode rate: (completion_tokens - 1) / (last token - first token). */
  tokensPerSecond?: number;
  completionTokens?: number;
}

export interface ProbeFailure {
  success: false;
  reason: FailureReason;
  message: string;
}

export type ProbeResult = ProbeSuccess | ProbeFailure;

/** Every probe has this one signature, as blackbox_exporter's prober.ProbeFn. */
export type ProbeFn = (ctx: ProbeContext) => Promise<ProbeResult>;

export function fail(reason: FailureReason, message: string): ProbeFailure {
  return { success: false, reason, message };
}
