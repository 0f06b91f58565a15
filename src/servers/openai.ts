import { exactMatch, templateThinking, type ServerType } from './types.ts';

/**
 * Any other OpenAI-compatible server, and the type of a target that names none: the listing and a
 * generation, no health endpoint assumed. chat_template_kwargs is sent (vLLM, SGLang and llama.cpp
 * honour it; servers that do not know it ignore it).
 */
export const openai: ServerType = {
  name: 'openai',
  description: 'any OpenAI-compatible server (the default): listing and a generation, no /health assumed',
  thinking: templateThinking,
  healthPath: undefined,
  silentWhileLoading: true,
  exampleModel: 'Qwen/Qwen3-0.6B',
  requiresModel: false,
  matchModel: exactMatch,
  defaultProbes: ['models', 'chat'],
};
