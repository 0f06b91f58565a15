// The simulated engine: emits a planned token list on a clock, consulting the current fault at every
// step, so a fault switched at runtime also affects generations already under way.
import type { SimFault } from './faults.ts';
import type { SimToken } from './completion.ts';

export interface GenerationTiming {
  ttftMs: number;
  tokensPerSecond: number;
  fault: () => SimFault;
}

export interface GenerationSink {
  /** Token `index` of `count` is out (the first one at ttft). */
  token(token: SimToken, index: number, count: number): void;
  /** The fault switched to `error` mid-generation. */
  error(): void;
}

/**
 * Starts a generation; returns a cancel function (call it when the client goes away or the server
 * closes). Each step is scheduled from the previous step's *planned* time, not from when its timer
 * fired, so timer lateness does not accumulate into a slower measured rate.
 */
export function generate(tokens: readonly SimToken[], timing: GenerationTiming, sink: GenerationSink): () => void {
  let timer: NodeJS.Timeout | undefined;
  let index = 0;
  let due = performance.now() + timing.ttftMs;

  const step = () => {
    timer = undefined;
    const fault = timing.fault();
    // A hung engine stops producing and never resumes: the connection stays open, silent.
    if (fault === 'hang' || fault === 'hang-generation') return;
    if (fault === 'error') return sink.error();
    sink.token(tokens[index]!, index, tokens.length);
    index += 1;
    if (index >= tokens.length) return;
    due += (1000 / timing.tokensPerSecond) * (timing.fault() === 'slow' ? 10 : 1);
    timer = setTimeout(step, Math.max(0, due - performance.now()));
  };
  if (tokens.length > 0) timer = setTimeout(step, timing.ttftMs);
  return () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
  };
}
