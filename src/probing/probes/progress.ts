import { z } from 'zod';
import type { Endpoint, Progress } from '../../servers/types.ts';
import { discard, readLimited, send, statusFailure } from '../http.ts';
import { gauge } from '../series.ts';
import { defineProbe, type ProbeContext, type ProbeFailure, transportReasons } from './types.ts';

const running = gauge('llm_server_requests_running', "Requests the server is generating, from its own progress signal (vLLM, SGLang, llama.cpp /metrics).", ['probe']);
const waiting = gauge('llm_server_requests_waiting', 'Requests queued in the server for a slot, from its own progress signal.', ['probe']);
const generated = gauge('llm_server_generation_tokens', "The server's own cumulative count of generated tokens, mirrored at each probe (it restarts at 0 with the server): increase() of it is the server's progress.", ['probe']);
const sleeping = gauge('llm_server_sleeping', '1 while the server says it is asleep (vLLM sleep mode, llama.cpp --sleep-idle-seconds).', ['probe']);
const loaded = gauge('llm_server_model_loaded', 'Ollama: 1 when the probed model is in memory (/api/ps); a cold one loads on the next request.', ['probe']);

type Ctx = Pick<ProbeContext<unknown>, 'target' | 'log' | 'now' | 'headers'> & { signal: AbortSignal; model: string | undefined };

/**
 * GETs one of the server type's own endpoints. Undefined when the server type has none, or the
 * server does not serve it (404, or llama.cpp's 501 without --metrics): no signal, not a failure.
 */
async function read<T>(ctx: Ctx, endpoint: Endpoint<T> | undefined): Promise<T | ProbeFailure | undefined> {
  if (!endpoint) return undefined;
  const res = await send(ctx, new URL(endpoint.path, ctx.target.url).href);
  if ('success' in res) return res;
  if (res.statusCode === 404 || res.statusCode === 501) {
    discard(res.body);
    ctx.log(`no ${endpoint.path} on this server (HTTP ${res.statusCode})${res.statusCode === 501 ? ': start llama-server with --metrics' : ''}`);
    return undefined;
  }
  const bad = await statusFailure(res, ctx.signal, ctx.target.server);
  if (bad) return bad;
  const text = await readLimited(res.body, ctx.target.maxResponseBytes, ctx.signal);
  return typeof text === 'string' ? endpoint.parse(text, ctx.model) : text;
}

export const readProgress = (ctx: Ctx) => read<Progress>(ctx, ctx.target.server.progress);
export const readStallState = (ctx: Ctx) => read(ctx, ctx.target.server.stallState);

export const describeProgress = (p: Progress) =>
  [p.running === undefined ? '' : `${p.running} running`, p.waiting === undefined ? '' : `${p.waiting} waiting`, p.generated === undefined ? '' : `${p.generated} tokens generated so far`, p.sleeping ? 'asleep' : '', p.modelLoaded === undefined ? '' : p.modelLoaded ? 'model loaded' : 'model not loaded']
    .filter(Boolean)
    .join(', ');

/**
 * The server's own account of its work: requests running and waiting, tokens generated, asleep or
 * not (Ollama: whether the model is loaded). Published as it is; a generation probe later in the
 * round compares it with a second reading to tell a busy server from a hung one.
 */
export const progressProbe = defineProbe({
  name: 'progress',
  description: "Reads the server's own progress signal (vLLM, SGLang and llama.cpp /metrics, Ollama /api/ps): requests running and waiting, tokens generated, asleep, model loaded. A server without one (404, or llama.cpp without --metrics) is not a failure.",
  options: z.strictObject({}).default({}),
  reasons: transportReasons,
  metrics: [running, waiting, generated, sleeping, loaded],
  async run(ctx) {
    const progress = await readProgress(ctx);
    if (progress === undefined) return { success: true };
    if ('success' in progress) return progress;
    ctx.round.progress = progress;
    const set = (metric: typeof running, value: number | boolean | undefined) => value !== undefined && ctx.record.set(metric, Number(value));
    set(running, progress.running);
    set(waiting, progress.waiting);
    set(generated, progress.generated);
    set(sleeping, progress.sleeping);
    set(loaded, progress.modelLoaded);
    ctx.log(`progress: ${describeProgress(progress) || 'nothing the probe knows'}`);
    return { success: true };
  },
});
