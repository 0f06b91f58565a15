import { json, type ListedModel, type ServerType } from './types.ts';

/** Ollama names models name:tag, and a bare name means name:latest. */
export const withTag = (id: string) => (id.includes(':') ? id : `${id}:latest`);

/**
 * Ollama (default port 11434): no /health; /v1/models lists every model on disk, loaded or not,
 * so the model to probe must be configured (the first listed one may be an embedding model, which
 * refuses chat with a 400: a false "down"). Models load on first use, headers come with the first token, and a client that
 * gives up aborts the load: a probe of a cold model (not in /api/ps) gets the longer load deadline.
 * It ignores chat_template_kwargs: only reasoning_effort "none" turns thinking off.
 */
export const ollama: ServerType = {
  name: 'ollama',
  description: 'Ollama: no /health, models load on first use (a cold model gets the load deadline), model required; thinking off through reasoning_effort "none"',
  thinking: (enabled) => (enabled ? {} : { reasoning_effort: 'none' }),
  healthPath: undefined,
  silentWhileLoading: false,
  exampleModel: 'qwen3:0.6b',
  requiresModel: true,
  matchModel: (listing: readonly ListedModel[], wanted: string) => listing.find((m) => withTag(m.id) === withTag(wanted))?.id,
  defaultProbes: ['models', 'progress', 'chat'],
  loadsOnDemand: true,
  progress: {
    path: '/api/ps',
    parse(body, model) {
      const loaded = json<{ models?: Array<{ name?: string; model?: string; expires_at?: string }> }>(body)?.models;
      if (!Array.isArray(loaded) || model === undefined) return {};
      // Just after its keep_alive ran out a model is still listed for a moment while it unloads: one
      // that expires within the next minute is taken for cold, so its probe waits for a reload.
      const soon = Date.now() + 60_000;
      const warm = (m: { expires_at?: string }) => m.expires_at === undefined || !(Date.parse(m.expires_at) < soon);
      return { modelLoaded: loaded.some((m) => withTag(m.name ?? m.model ?? '') === withTag(model) && warm(m)) };
    },
  },
};
