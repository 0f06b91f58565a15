import { sumSamples, sumWithLabel } from '../lib/prom-text.ts';
import { exactMatch, templateThinking, type ServerType } from './types.ts';

/**
 * SGLang (default port 30000): refuses connections until its subprocesses run, then /health 503
 * while warming up; afterwards /health runs a 1-token generation and is 503 when none comes out.
 * Progress: /metrics with --enable-metrics (sglang:num_running_reqs, sglang:num_queue_reqs, and
 * sglang:realtime_tokens_total{mode="decode"}, which moves with every decode step; older releases
 * only have sglang:generation_tokens_total, which moves when a request finishes).
 */
export const sglang: ServerType = {
  name: 'sglang',
  description: 'SGLang: refuses connections while loading, /health 503 while warming up or when its own test generation fails; progress from /metrics',
  thinking: templateThinking,
  healthPath: '/health',
  silentWhileLoading: false,
  exampleModel: 'Qwen/Qwen3-0.6B',
  requiresModel: false,
  matchModel: exactMatch,
  defaultProbes: ['models', 'health', 'progress', 'chat'],
  progress: {
    path: '/metrics',
    parse(body) {
      const m = sumSamples(body, ['sglang:num_running_reqs', 'sglang:num_queue_reqs', 'sglang:generation_tokens_total']);
      const realtime = sumWithLabel(body, 'sglang:realtime_tokens_total', 'mode', 'decode');
      return { running: m.get('sglang:num_running_reqs'), waiting: m.get('sglang:num_queue_reqs'), generated: realtime ?? m.get('sglang:generation_tokens_total') };
    },
  },
};
