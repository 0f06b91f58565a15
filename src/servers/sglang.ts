import { exactMatch, templateThinking, type ServerType } from './types.ts';

/** SGLang (default port 30000): /health is 503 while starting, and when a 1-token generation fails. */
export const sglang: ServerType = {
  name: 'sglang',
  description: 'SGLang: /health is 503 while starting or when its own test generation fails',
  thinking: templateThinking,
  healthPath: '/health',
  requiresModel: false,
  matchModel: exactMatch,
  defaultProbes: ['models', 'health', 'chat'],
};
