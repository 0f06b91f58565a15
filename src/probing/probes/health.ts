import { z } from 'zod';
import { discard, send, statusFailure } from '../http.ts';
import { defineProbe, transportReasons } from './types.ts';

export const healthOptions = z
  .strictObject({
    path: z.string().regex(/^\//, 'must start with /').optional().describe("Path on the server's origin; default: the server type's health endpoint (vllm, sglang, llamacpp: /health)."),
  })
  .default({});

/** GET {origin}/health: vLLM, SGLang and llama.cpp answer 200 when ready, 503 while loading or dead. */
export const healthProbe = defineProbe({
  name: 'health',
  description: "GET the server's health endpoint on its origin (/health for vllm, sglang and llamacpp): 2xx is healthy.",
  options: healthOptions,
  reasons: transportReasons,
  metrics: [],
  async run(ctx) {
    const path = ctx.options.path ?? ctx.target.server.healthPath ?? '/health';
    const res = await send(ctx, new URL(path, ctx.target.url).href);
    if ('success' in res) return res;
    const bad = await statusFailure(res, ctx.signal, ctx.target.server);
    if (bad) return bad;
    discard(res.body);
    return { success: true };
  },
});
