import { checkStatus, discard, readLimited, send } from '../http.ts';
import { fail, type ProbeFn } from './types.ts';

/** GET {url}/models: 200, a JSON list, and the expected model in it (or, with none configured, any). */
export const modelsProbe: ProbeFn = async ({ target, signal }) => {
  const res = await send(`${target.url}/models`, { signal });
  if ('success' in res) return res;
  const bad = checkStatus(res.statusCode);
  if (bad) {
    discard(res.body);
    return bad;
  }
  const text = await readLimited(res.body, target.max_response_bytes, signal);
  if (typeof text !== 'string') return text;
  let ids: string[];
  try {
    const listing = JSON.parse(text) as { data?: Array<{ id?: unknown }> };
    if (!Array.isArray(listing.data)) return fail('bad_response', 'no "data" array in the model listing');
    ids = listing.data.map((m) => m.id).filter((id): id is string => typeof id === 'string');
  } catch {
    return fail('bad_response', 'model listing is not JSON');
  }
  if (target.model !== undefined) {
    return ids.includes(target.model) ? { success: true, model: target.model } : fail('model_missing', `"${target.model}" not listed`);
  }
  const first = ids[0];
  return first === undefined ? fail('model_missing', 'no model listed') : { success: true, model: first };
};
