import { checkStatus, discard, send } from '../http.ts';
import type { ProbeFn } from './types.ts';

/** GET {origin}/health: vLLM, SGLang and llama.cpp answer 200 when ready, 503 while loading or dead. */
export const healthProbe: ProbeFn = async ({ target, signal }) => {
  const res = await send(new URL('/health', target.url).href, { signal });
  if ('success' in res) return res;
  discard(res.body);
  return checkStatus(res.statusCode) ?? { success: true };
};
