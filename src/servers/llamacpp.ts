import { exactMatch, templateThinking, type ServerType } from './types.ts';

/**
 * llama.cpp's llama-server: answers at once, /health 503 "Loading model" until the model is in.
 * It serves one model (the request's `model` is ignored), listed by file path or --alias, with
 * further names under `aliases`. Thinking follows chat_template_kwargs when run with --jinja.
 */
export const llamacpp: ServerType = {
  name: 'llamacpp',
  description: "llama.cpp's llama-server: /health is 503 while loading; thinking off through chat_template_kwargs (--jinja)",
  thinking: templateThinking,
  healthPath: '/health',
  requiresModel: false,
  matchModel: exactMatch,
  defaultProbes: ['health', 'models', 'chat'],
};
