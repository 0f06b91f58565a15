import { z } from 'zod';
import type { ListedModel } from '../../servers/types.ts';
import { readLimited, send, statusFailure } from '../http.ts';
import { defineProbe, fail, transportReasons } from './types.ts';

/** GET {url}/models: 200, a JSON list, and the configured model in it (or, with none configured, any). */
export const modelsProbe = defineProbe({
  name: 'models',
  description: 'GET {url}/models: answers 200 with a JSON list holding the configured model (or, with none configured, any model, which later probes then use).',
  options: z.strictObject({}).default({}),
  reasons: [...transportReasons, 'model_missing'],
  metrics: [],
  async run(ctx) {
    const { target, signal } = ctx;
    const res = await send(ctx, `${target.url}/models`);
    if ('success' in res) return res;
    const bad = await statusFailure(res, signal, target.server);
    if (bad) return bad;
    const text = await readLimited(res.body, target.maxResponseBytes, signal);
    if (typeof text !== 'string') return text;
    let listing: ListedModel[];
    try {
      // An Ollama with no model at all lists `"data": null`: an empty listing, not garbage.
      const data = (JSON.parse(text) as { data?: unknown }).data ?? (/"data"\s*:\s*null/.test(text) ? [] : undefined);
      if (!Array.isArray(data)) return fail('bad_response', 'no "data" array in the model listing');
      listing = data.filter((m): m is ListedModel => typeof (m as ListedModel | null)?.id === 'string');
    } catch {
      return fail('bad_response', 'model listing is not JSON');
    }
    ctx.log(`listed: ${listing.map((m) => m.id).join(', ') || '(none)'}`);
    if (target.model !== undefined) {
      const id = target.server.matchModel(listing, target.model);
      return id === undefined ? fail('model_missing', `"${target.model}" not listed`) : { success: true, model: id };
    }
    if (target.server.requiresModel) return fail('model_missing', `server type ${target.server.name} needs the model to probe named`);
    const first = listing[0]?.id;
    return first === undefined ? fail('model_missing', 'no model listed') : { success: true, model: first };
  },
});
