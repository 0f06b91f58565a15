import type { ListedModel, ServerType } from './types.ts';

/** Ollama names models name:tag, and a bare name means name:latest. */
const withTag = (id: string) => (id.includes(':') ? id : `${id}:latest`);

/**
 * Ollama (default port 11434): no /health; /v1/models lists every model on disk, loaded or not,
 * so the model to probe must be configured (probing the first listed one could load, and pin, an
 * embedding model). It ignores chat_template_kwargs: only reasoning_effort "none" turns thinking off.
 */
export const ollama: ServerType = {
  name: 'ollama',
  description: 'Ollama: no /health, models load on first use, model required; thinking off through reasoning_effort "none"',
  thinking: (enabled) => (enabled ? {} : { reasoning_effort: 'none' }),
  healthPath: undefined,
  requiresModel: true,
  matchModel: (listing: readonly ListedModel[], wanted: string) => listing.find((m) => withTag(m.id) === withTag(wanted))?.id,
  defaultProbes: ['models', 'chat'],
};
