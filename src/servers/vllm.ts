import { sumSamples, sumWithLabel } from '../lib/prom-text.ts';
import { exactMatch, json, templateThinking, type ListedModel, type ServerType } from './types.ts';

/**
 * vLLM (default port 8000). It listens only once the engine is up, so a loading vLLM refuses
 * connections like a crashed one. /health answers 200 while the engine lives and 503 once it is
 * dead; it never runs the scheduler, so only a generation proves tokens come out. Every
 * --served-model-name is listed with the model path as `root`; a LoRA adapter is listed with its
 * base model as `parent`. A configured model matches a listed id, or the `root` of a base model
 * served under another name (requests must then use the served name). Progress: /metrics
 * (vllm:num_requests_running, vllm:num_requests_waiting, vllm:generation_tokens_total,
 * vllm:engine_sleep_state); paused: /is_paused (dev mode).
 */
export const vllm: ServerType = {
  name: 'vllm',
  description: 'vLLM: refuses connections while loading; /health is 503 when the engine is dead; progress from /metrics; thinking off through chat_template_kwargs',
  thinking: templateThinking,
  healthPath: '/health',
  silentWhileLoading: false,
  exampleModel: 'Qwen/Qwen3-0.6B',
  requiresModel: false,
  matchModel: (listing: readonly ListedModel[], wanted: string) =>
    exactMatch(listing, wanted) ?? listing.find((m) => !m.parent && m.root === wanted)?.id,
  defaultProbes: ['models', 'health', 'progress', 'chat'],
  metricsJob: 'vllm',
  progress: {
    path: '/metrics',
    parse(body) {
      const m = sumSamples(body, ['vllm:num_requests_running', 'vllm:num_requests_waiting', 'vllm:generation_tokens_total']);
      const awake = sumWithLabel(body, 'vllm:engine_sleep_state', 'sleep_state', 'awake');
      return {
        running: m.get('vllm:num_requests_running'),
        waiting: m.get('vllm:num_requests_waiting'),
        generated: m.get('vllm:generation_tokens_total'),
        ...(awake === undefined ? {} : { sleeping: awake === 0 }),
      };
    },
  },
  stallState: { path: '/is_paused', parse: (body) => (json<{ is_paused?: boolean }>(body)?.is_paused ? 'paused' : undefined) },
};
