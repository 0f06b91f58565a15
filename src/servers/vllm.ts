import { exactMatch, templateThinking, type ListedModel, type ServerType } from './types.ts';

/**
 * vLLM (default port 8000). /health answers 200 while the engine lives and 503 once it is dead; it
 * never runs the scheduler, so only a generation proves tokens come out. Every
 * --served-model-name is listed with the model path as `root`; a LoRA adapter is listed with its
 * base model as `parent`. A configured model matches a listed id, or the `root` of a base model
 * served under another name (requests must then use the served name).
 */
export const vllm: ServerType = {
  name: 'vllm',
  description: 'vLLM: /health is 503 when the engine is dead; thinking off through chat_template_kwargs',
  thinking: templateThinking,
  healthPath: '/health',
  requiresModel: false,
  matchModel: (listing: readonly ListedModel[], wanted: string) =>
    exactMatch(listing, wanted) ?? listing.find((m) => !m.parent && m.root === wanted)?.id,
  defaultProbes: ['models', 'health', 'chat'],
};
