// The streaming chat completion the chat and thinking probes share: one request, the SSE stream
// read under byte and time limits, and the timings taken as the tokens arrive.
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { setTimeout as sleep } from 'node:timers/promises';
import { deadline, within, type Deadline } from '../../lib/deadline.ts';
import { classifyError, discard, send, statusFailure } from '../http.ts';
import { SseDecoder } from '../sse.ts';
import { gauge } from '../series.ts';
import { positiveDuration } from '../../config/fields.ts';
import type { Progress } from '../../servers/types.ts';
import { describeProgress, readProgress, readStallState } from './progress.ts';
import { fail, transportReasons, type ProbeContext, type ProbeFailure } from './types.ts';


/** Options of a generating probe; the defaults differ between chat and thinking. */
export function generationOptions(defaults: { prompt: string; max_tokens: number }) {
  return z
    .strictObject({
      prompt: z.string().min(1).default(defaults.prompt).describe('The user message.'),
      max_tokens: z.int().min(1).max(1024).default(defaults.max_tokens).describe('Completion token budget.'),
      expect: z
        .string()
        .refine((re) => compiles(re), 'not a valid regular expression')
        .optional()
        .describe('A regular expression the answer (content, not reasoning) must match; a mismatch fails with reason unexpected_answer.'),
      vary_prompt: z.boolean().default(false).describe('Start the prompt with a random tag on every probe, so a prefix cache cannot flatter TTFT.'),
      load_timeout: positiveDuration.default(300_000).describe('Deadline of a probe whose model is not loaded yet (Ollama loads on first use and aborts the load when the client gives up).'),
      stall_timeout: positiveDuration
        .default(5000)
        .describe(
          "With the server's progress signal (vLLM, SGLang, llama.cpp --metrics): a generation with no token yet is checked every this long, and ends as hung as soon as the server's own count of generated tokens has not moved since the request (or, llama.cpp, its decode loop does not answer /metrics either), rather than at the deadline. A count that moved (the server busy with others) lets the probe wait on. Longer than the deadline: judged at the deadline only.",
        ),
    })
    .default({ prompt: defaults.prompt, max_tokens: defaults.max_tokens, vary_prompt: false, load_timeout: 300_000, stall_timeout: 5000 });
}
export type GenerationOptions = z.output<ReturnType<typeof generationOptions>>;

function compiles(re: string): boolean {
  try {
    new RegExp(re);
    return true;
  } catch {
    return false;
  }
}

// Last values only, one name per quantity: with a scrape per probe run, *_over_time of a gauge sees
// every run (exactly, where a histogram's buckets would interpolate), in /probe mode too.
export const ttftGauge = gauge('llm_probe_time_to_first_token_seconds', 'Time from sending the last successful generating probe to its first content or reasoning token (TTFT).', ['probe']);
export const rateGauge = gauge('llm_probe_tokens_per_second', 'Decode rate of the last successful generating probe: (completion_tokens - 1) / (last token - first output), the first output being the stream\'s first chunk, which servers send with the first generated token even when they do not show it; the mean inter-token latency is 1 / this. Absent when the client could not time the tokens (they arrived together: a buffering proxy, a busy client); llm_probe_server_tokens_per_second then gives the server\'s own figure where it reports one.', ['probe']);
export const tokensGauge = gauge('llm_probe_completion_tokens', 'Completion tokens of the last successful generating probe (usage.completion_tokens, reasoning included).', ['probe']);
export const loadGauge = gauge('llm_probe_model_load_seconds', 'Time from sending the last probe that found its model cold (Ollama) to its first token: the load, kept apart from TTFT.', ['probe']);
export const serverRateGauge = gauge('llm_probe_server_tokens_per_second', "The server's own decode rate for the last successful probe (llama.cpp timings.predicted_per_second): the engine alone, without network and client.", ['probe']);
export const serverPromptGauge = gauge('llm_probe_server_prompt_seconds', "The server's own prompt processing time for the last successful probe (llama.cpp timings.prompt_ms).", ['probe']);

interface ChunkDelta {
  content?: string | null;
  reasoning_content?: string | null;
  reasoning?: string | null;
}
interface Chunk {
  choices?: Array<{ delta?: ChunkDelta; finish_reason?: string | null }>;
  usage?: { completion_tokens?: number; completion_tokens_details?: { reasoning_tokens?: number } | null } | null;
  error?: { message?: string };
  /** llama.cpp: the server's own figures, on the last chunk. */
  timings?: { predicted_per_second?: number; prompt_ms?: number };
}

export interface Generation {
  /** Monotonic ms: request sent, first token of any kind, first content token, last token. */
  started: number;
  firstToken: number;
  /**
   * The stream's first chunk (a role chunk, or the first token): every server sends it with its
   * first generated token, also when it shows no text for it. Qwen3's `<think>` is such a token:
   * reasoning parsers swallow it but usage counts it, so the decode window starts here.
   */
  firstOutput: number;
  firstContent: number | undefined;
  lastToken: number;
  /** Chunks that carried a token (text, or the EOS of a finish chunk), and the socket reads they came in. */
  tokenChunks: number;
  tokenReads: number;
  /** usage.completion_tokens, else the number of chunks that carried text. */
  tokens: number;
  /** Reasoning tokens as the server counts them, else the chunks that carried reasoning. */
  reasoningTokens: number;
  contentTokens: number;
  /** The answer, capped at a few KiB: what `expect` is matched against. */
  content: string;
  finishReason: string | undefined;
  /** The model was not loaded when the probe began (Ollama): the first token includes the load. */
  cold: boolean;
  serverTimings: Chunk['timings'];
}

const keptChars = 4096;

/** One streamed completion; thinking on or off in the server type's own dialect. */
export async function streamChat(ctx: ProbeContext<GenerationOptions>, thinking: boolean): Promise<Generation | ProbeFailure> {
  const { target, options, now, model } = ctx;
  const server = target.server;
  if (model === undefined) {
    // The listing failed: the server is down or starting, and the generation cannot even be asked for.
    const listing = ctx.round.failures.models;
    return listing ? fail(listing.reason, `not run, no model to ask for: the models probe failed (${listing.message})`) : fail('model_missing', 'no model known to ask for');
  }
  // Keep a little time to ask the server for its progress signal (before the request, when the
  // progress probe did not this round, and after a stall): whether it is busy, paused or asleep.
  const reserve = server.progress ? Math.max(1, Math.round(Math.min(2000, (ctx.deadline() - now()) / 4))) : 0;
  const quick = <T>(fn: (c: typeof ctx) => Promise<T>) => within(ctx.signal, reserve, (signal) => fn({ ...ctx, signal }));
  let before = ctx.round.progress;
  if (server.progress && before === undefined) {
    const read = await quick(readProgress);
    if (read !== undefined && !('success' in read)) before = ctx.round.progress = read;
  }
  // A cold Ollama model loads on this request, and giving up would abort the load: wait for it.
  const cold = server.loadsOnDemand === true && before?.modelLoaded === false;
  if (cold) {
    const asked = now() + options.load_timeout;
    ctx.extendDeadline(options.load_timeout);
    ctx.log(`model ${model} is not loaded: waiting up to ${options.load_timeout / 1000} s for the server to load it`);
    // A scrape's timeout may still cut this probe short (GET /probe): a load request of its own,
    // not tied to the scrape, lets the load finish anyway.
    if (ctx.deadline() < asked) warmUp(ctx, model, options.load_timeout);
  }
  const streamDeadline = deadline(ctx.signal, ctx.deadline() - reserve - now());
  // Where the server counts its own tokens, a flat count need not wait out the whole deadline.
  const watch = server.progress && !cold && before?.generated !== undefined ? watchStall(ctx, streamDeadline, before, options.stall_timeout, quick) : undefined;
  try {
    const result = await stream(ctx, { model, thinking, signal: streamDeadline.signal, cold, firstToken: watch?.stop });
    const stalled = watch?.verdict();
    if (stalled) return stalled;
    if (!('success' in result)) {
      // Answered: the model is in memory now, for the probes after this one in the round.
      if (before) before.modelLoaded = true;
      return result;
    }
    if (cold && (result.reason === 'timeout' || result.reason === 'no_tokens')) return fail('starting', `the model is still loading: ${result.message}`);
    // A stall after tokens came is a hang mid-generation; before the first token, ask the server.
    if (!result.afterTokens && (result.reason === 'no_tokens' || result.reason === 'timeout') && server.progress) return await quick((c) => classifyStall(c, before, result));
    return result;
  } finally {
    watch?.stop();
    streamDeadline.clear();
  }
}

/**
 * Watches a generation that has no token yet: every `everyMs`, the server's progress signal. A
 * count of generated tokens that has not moved since before the request (while the server is
 * neither asleep nor paused), or a signal that the decode loop answers and that does not answer,
 * is a hang the server confirms: the stream is cut at once with that verdict. A count that moved
 * ends the watch (busy with others: the deadline and classifyStall decide).
 */
function watchStall(
  ctx: ProbeContext<GenerationOptions>,
  streamDeadline: Deadline,
  before: Progress,
  everyMs: number,
  quick: <T>(fn: (c: ProbeContext<GenerationOptions>) => Promise<T>) => Promise<T>,
): { stop: () => void; verdict: () => ProbeFailure | undefined } {
  const stopped = new AbortController();
  const started = ctx.now();
  let verdict: ProbeFailure | undefined;
  void (async () => {
    while (!stopped.signal.aborted) {
      const slept = await sleep(everyMs, undefined, { signal: stopped.signal }).then(() => true, () => false);
      if (!slept || streamDeadline.signal.aborted) return;
      const waited = ((ctx.now() - started) / 1000).toFixed(1);
      const judged = await quick((c) => classifyStall(c, before, fail('no_tokens', `no token in ${waited} s`)));
      if (stopped.signal.aborted) return;
      if (judged.reason === 'hung') {
        verdict = judged;
        ctx.log(`stalled: ${judged.message}`);
        streamDeadline.reset(0);
        return;
      }
      // Tokens for others meanwhile: busy, not hung; the deadline tells the rest.
      if (judged.reason === 'saturated') return;
    }
  })().catch(() => {});
  return { stop: () => stopped.abort(), verdict: () => verdict };
}

/** Load requests under way, by server and model: one at a time, not one per scrape. */
const warming = new Set<string>();

function warmUp(ctx: ProbeContext<GenerationOptions>, model: string, timeoutMs: number): void {
  const key = `${ctx.target.url}\0${model}`;
  if (warming.has(key)) return;
  warming.add(key);
  ctx.log(`sent a load request of its own (up to ${timeoutMs / 1000} s), so the load outlives this probe`);
  const body = { model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 1, ...ctx.target.server.thinking(false) };
  const load = deadline(new AbortController().signal, timeoutMs);
  void send({ ...ctx, log: () => {}, signal: load.signal }, `${ctx.target.url}/chat/completions`, { method: 'POST', body })
    .then((res) => ('success' in res ? undefined : res.body.resume()))
    .catch(() => {})
    .finally(() => {
      load.clear();
      warming.delete(key);
    });
}

/**
 * A generation that produced no token in time: hung, or only waiting its turn? The server's own
 * progress signal tells: asleep or paused is neither, tokens generated for others meanwhile is a
 * saturated server, a flat counter (or a signal that does not answer either) is a hang.
 */
async function classifyStall(ctx: Pick<ProbeContext<GenerationOptions>, 'target' | 'log' | 'now' | 'headers' | 'signal' | 'model'>, before: Progress | undefined, failure: ProbeFailure): Promise<ProbeFailure> {
  const after = await readProgress(ctx);
  if (after === undefined || 'success' in after) {
    ctx.log(`progress signal unreadable after the stall${after ? ` (${after.reason}: ${after.message})` : ''}: a hang`);
    // Where the decode loop itself answers the progress signal (llama.cpp's /metrics), its silence confirms the hang.
    if (ctx.target.server.progressThroughLoop && after?.reason === 'timeout') return fail('hung', `${failure.message}, and the progress signal, which the decode loop answers, does not answer either: the loop is stuck`);
    return failure;
  }
  ctx.log(`progress after the stall: ${describeProgress(after)}`);
  const state = after.sleeping ? 'asleep' : await readStallState(ctx);
  if (state === 'asleep') return fail('asleep', `${failure.message}, but the server is asleep: requests wait for it to wake`);
  if (state === 'paused') return fail('paused', `${failure.message}, but the server is paused: requests wait for it to resume`);
  const made = before?.generated !== undefined && after.generated !== undefined ? after.generated - before.generated : undefined;
  // Tokens flowed while the probe got none (it saw no token: none of them are its own), and the
  // server says it is working or queueing (a counter bumped by a request that just finished is not).
  const busy = after.running === undefined && after.waiting === undefined ? true : (after.running ?? 0) + (after.waiting ?? 0) > 0;
  if (made !== undefined && made > 0 && busy) return fail('saturated', `${failure.message}, while the server generated ${made} tokens for other requests (${describeProgress(after)}): busy, not hung`);
  // The server's own count of generated tokens stood still while the probe's request waited: a
  // hang the server itself confirms, told apart from one only the client saw.
  if (made === 0) return fail('hung', `${failure.message}, and the server's own count of generated tokens did not move (${describeProgress(after)})`);
  return { ...failure, message: `${failure.message}; the server made no progress (${describeProgress(after)})` };
}

/** The request and its stream, under the signal given. */
async function stream(ctx: ProbeContext<GenerationOptions>, o: { model: string; thinking: boolean; signal: AbortSignal; cold: boolean; firstToken?: (() => void) | undefined }): Promise<Generation | (ProbeFailure & { afterTokens?: boolean })> {
  const { target, options, now } = ctx;
  const { signal } = o;
  const prompt = options.vary_prompt ? `[${randomBytes(4).toString('hex')}] ${options.prompt}` : options.prompt;
  const started = now();
  const res = await send({ ...ctx, signal }, `${target.url}/chat/completions`, {
    method: 'POST',
    body: {
      model: o.model,
      messages: [{ role: 'user', content: prompt }],
      max_tokens: options.max_tokens,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
      ...target.server.thinking(o.thinking),
    },
  });
  if ('success' in res) return res;
  const bad = await statusFailure(res, signal, target.server);
  if (bad) return bad;
  if (!String(res.headers['content-type'] ?? '').includes('text/event-stream')) {
    discard(res.body);
    return fail('bad_response', `expected an event stream, got "${res.headers['content-type'] ?? 'no content-type'}"`);
  }

  const decoder = new SseDecoder();
  const parser = new CompletionParser(started, o.cold);
  let bytes = 0;
  let reads = 0;
  try {
    for await (const raw of res.body) {
      bytes += (raw as Buffer).length;
      if (bytes > target.maxResponseBytes) {
        discard(res.body);
        return fail('bad_response', `stream larger than ${target.maxResponseBytes} bytes`);
      }
      reads += 1;
      for (const payload of decoder.push(raw as Buffer)) {
        const failed = parser.push(payload, now(), reads);
        if (parser.sawToken) o.firstToken?.();
        if (failed) {
          discard(res.body);
          return failed;
        }
      }
      if (parser.done) break;
    }
  } catch (err) {
    const failure = classifyError(err, signal);
    // Headers came but no token before the deadline: the engine is stuck, not the socket.
    if (failure.reason === 'timeout' && !parser.sawToken) return fail('no_tokens', 'no token before the deadline');
    // Tokens were still coming when the deadline cut the answer short: a slow server, not a stalled
    // one (a stall is a stall_timeout without a token, as before the first).
    const quiet = now() - parser.lastTokenAt;
    if (failure.reason === 'timeout' && quiet < options.stall_timeout) {
      return fail('slow', `${parser.chunks} chunks came, the last ${Math.round(quiet)} ms before the deadline: still generating, too slowly to finish ${options.max_tokens} tokens in time`);
    }
    return parser.sawToken ? { ...fail(failure.reason, `${failure.message}, after ${parser.chunks} chunks: the stream stalled`), afterTokens: true } : failure;
  } finally {
    discard(res.body);
  }
  const result = parser.result();
  if (!('success' in result)) ctx.log(`stream: ${result.tokens} tokens (${parser.chunks} text chunks, ${parser.reasoningChunks} with reasoning), finish_reason ${result.finishReason ?? 'none'}`);
  return result;
}

/**
 * Reads a completion's SSE payloads, each stamped with the (monotonic) time it arrived. Pure, so
 * the timing rules are tested with exact times: TTFT ends at the first chunk with content or
 * reasoning; the decode window starts at the first chunk of any kind (see Generation.firstOutput)
 * and ends at the last token, or at the EOS chunk (an empty delta with finish_reason), which usage
 * counts as a token.
 */
export class CompletionParser {
  readonly #started: number;
  readonly #cold: boolean;
  #timings: Chunk['timings'];
  #firstToken: number | undefined;
  #firstOutput: number | undefined;
  #firstContent: number | undefined;
  #lastToken = 0;
  #tokenChunks = 0;
  #tokenReads = 0;
  #lastRead: number | undefined;
  #content = '';
  #usage: Chunk['usage'];
  #finishReason: string | undefined;
  chunks = 0;
  reasoningChunks = 0;
  contentChunks = 0;
  done = false;

  constructor(started: number, cold = false) {
    this.#started = started;
    this.#cold = cold;
  }

  get sawToken(): boolean {
    return this.#firstToken !== undefined;
  }

  /** When the last token came (monotonic ms; 0 before the first). */
  get lastTokenAt(): number {
    return this.#lastToken;
  }

  /**
   * Takes one payload, arrived at t in socket read `read` (by default each distinct t is a read of
   * its own); returns a failure when the stream is bad.
   */
  push(payload: string, t: number, read: number = t): ProbeFailure | undefined {
    if (payload === '[DONE]') {
      this.done = true;
      return undefined;
    }
    let chunk: Chunk;
    try {
      chunk = JSON.parse(payload) as Chunk;
    } catch {
      return fail('bad_response', `stream chunk is not JSON: ${payload.slice(0, 80)}`);
    }
    // An error after the 200 arrives as a chunk holding an error object (vLLM): not output.
    if (chunk.error) return fail('bad_response', `error in stream: ${chunk.error.message ?? 'unknown'}`);
    for (const choice of chunk.choices ?? []) {
      this.#firstOutput ??= t;
      const d = choice.delta ?? {};
      // vLLM sends `reasoning` with a deprecated `reasoning_content` copy: count the chunk once.
      const reasoning = d.reasoning || d.reasoning_content;
      if (d.content || reasoning) {
        this.#firstToken ??= t;
        this.#lastToken = t;
        this.#countToken(read);
        this.chunks += 1;
        if (reasoning) this.reasoningChunks += 1;
        if (d.content) {
          this.contentChunks += 1;
          this.#firstContent ??= t;
          if (this.#content.length < keptChars) this.#content += d.content;
        }
      } else if (choice.finish_reason && this.#firstToken !== undefined) {
        this.#lastToken = t;
        this.#countToken(read);
      }
      if (choice.finish_reason) this.#finishReason = choice.finish_reason;
    }
    if (chunk.usage) this.#usage = chunk.usage;
    if (chunk.timings) this.#timings = chunk.timings;
    return undefined;
  }

  #countToken(read: number): void {
    this.#tokenChunks += 1;
    if (read !== this.#lastRead) this.#tokenReads += 1;
    this.#lastRead = read;
  }

  /** What the stream amounted to, once it ended. */
  result(): Generation | ProbeFailure {
    if (this.#firstToken === undefined) return fail('no_tokens', 'stream ended without a token');
    if (!this.done) return fail('bad_response', 'stream ended without [DONE]');
    // usage.completion_tokens counts tokens; chunks undercount when a chunk holds several.
    const tokens = typeof this.#usage?.completion_tokens === 'number' ? this.#usage.completion_tokens : this.chunks;
    // The server's own split when it gives one; else what was shown: the tokens no chunk shows
    // (Qwen3's <think>, </think>, blank lines, EOS) belong to neither the reasoning nor the answer.
    const split = this.#usage?.completion_tokens_details?.reasoning_tokens;
    const reasoningTokens = split ?? this.reasoningChunks;
    const contentTokens = split === undefined ? this.contentChunks : Math.max(0, tokens - split);
    return {
      started: this.#started,
      firstToken: this.#firstToken,
      // Set by the same chunk as the first token, or an earlier one (the fallback only satisfies the types).
      firstOutput: this.#firstOutput ?? this.#firstToken,
      firstContent: this.#firstContent,
      lastToken: this.#lastToken,
      tokenChunks: this.#tokenChunks,
      tokenReads: this.#tokenReads,
      tokens,
      reasoningTokens,
      contentTokens,
      content: this.#content,
      finishReason: this.#finishReason,
      cold: this.#cold,
      serverTimings: this.#timings,
    };
  }
}

/** Decode rate in tokens per second over the client's window, when it holds more than one token. */
export function decodeRate(g: Generation): number | undefined {
  const decodeMs = g.lastToken - g.firstOutput;
  return g.tokens > 1 && decodeMs > 0 ? ((g.tokens - 1) * 1000) / decodeMs : undefined;
}

/**
 * What the client can honestly time. Chunks the server sent apart but the client read together (a
 * proxy that buffers answers, nginx's proxy_buffering; a busy client whose socket filled while it
 * did other work) shrink the window the rate divides by: the rate then reads far above what any
 * server decodes. A window is trusted only when its tokens came in at least 4 reads (3 intervals:
 * a late first read shortens it by at most one) and at most a quarter of them shared a read;
 * beyond that, a rate above 10,000 tokens/s for one stream is no server's and is not published.
 */
export const rateRules = { minReads: 4, maxSharedFraction: 0.25, maxTokensPerSecond: 10_000 };

export type RateMeasurement = { tokensPerSecond: number } | { unmeasured: string };

export function measureDecodeRate(g: Generation): RateMeasurement {
  const rate = decodeRate(g);
  if (rate === undefined) return { unmeasured: `${g.tokens} token${g.tokens === 1 ? '' : 's'}: no interval to time` };
  const shared = g.tokenChunks - g.tokenReads;
  if (g.tokenReads < rateRules.minReads || shared > rateRules.maxSharedFraction * g.tokenChunks) {
    return { unmeasured: `the tokens arrived together (${g.tokenChunks} token chunks in ${g.tokenReads} reads: a buffering proxy or a busy client), so the client cannot time them` };
  }
  if (rate > rateRules.maxTokensPerSecond) return { unmeasured: `${Math.round(rate)} tokens/s is no server's decode rate for one stream: the arrival times do not reflect the decoding` };
  return { tokensPerSecond: rate };
}

/** Records what every generating probe shares: TTFT and the decode rate, as last values. */
export function recordTimings(ctx: ProbeContext<GenerationOptions>, g: Generation): void {
  const ttft = (g.firstToken - g.started) / 1000;
  // A cold start's first token includes the model load: published as such, not as TTFT.
  if (g.cold) ctx.record.set(loadGauge, ttft);
  else ctx.record.set(ttftGauge, ttft);
  ctx.record.set(tokensGauge, g.tokens);
  if (typeof g.serverTimings?.predicted_per_second === 'number') ctx.record.set(serverRateGauge, g.serverTimings.predicted_per_second);
  if (typeof g.serverTimings?.prompt_ms === 'number') ctx.record.set(serverPromptGauge, g.serverTimings.prompt_ms / 1000);
  const measured = measureDecodeRate(g);
  if ('tokensPerSecond' in measured) ctx.record.set(rateGauge, measured.tokensPerSecond);
  const own = g.serverTimings?.predicted_per_second;
  const rateText = 'tokensPerSecond' in measured ? `, ${measured.tokensPerSecond.toFixed(1)} tokens/s` : `, decode rate not measured: ${measured.unmeasured}`;
  ctx.log(`${g.cold ? 'cold start (load + first token)' : 'TTFT'} ${(ttft * 1000).toFixed(1)} ms${rateText}${own === undefined ? '' : ` (server's own: ${own.toFixed(1)} tokens/s)`}`);
}

/** The canary: the answer must match the configured pattern. */
export function checkAnswer(options: GenerationOptions, g: Generation): ProbeFailure | undefined {
  if (options.expect === undefined || new RegExp(options.expect).test(g.content)) return undefined;
  return fail('unexpected_answer', `answer ${JSON.stringify(g.content.slice(0, 120))} does not match /${options.expect}/`);
}

export const generationReasons = [...transportReasons, 'model_missing', 'no_tokens', 'hung', 'unexpected_answer', 'saturated', 'slow', 'paused', 'asleep'] as const;
export const generationMetrics = [ttftGauge, rateGauge, tokensGauge, loadGauge, serverRateGauge, serverPromptGauge];
