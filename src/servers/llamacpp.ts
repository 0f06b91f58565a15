import { sumSamples } from '../lib/prom-text.ts';
import { exactMatch, json, templateThinking, type ServerType } from './types.ts';

/**
 * llama.cpp's llama-server: listens at once and answers every path 503 "Loading model" until the
 * model is in. It serves one model (the request's `model` is ignored), listed by file path or
 * --alias, with further names under `aliases`. Thinking follows chat_template_kwargs (--jinja).
 * /health is answered outside the decode loop (ok even when it hangs); /metrics (--metrics) goes
 * through it: llamacpp:requests_processing, llamacpp:requests_deferred (no free slot), and
 * llamacpp:n_decode_total, which moves with every decode step (tokens_predicted_total moves only
 * when a request finishes, so it stands still during a long generation). /props says is_sleeping.
 */
export const llamacpp: ServerType = {
  name: 'llamacpp',
  description: "llama.cpp's llama-server: 503 \"Loading model\" while loading (reported as starting); /health ok even when decoding hangs; progress from /metrics (--metrics)",
  thinking: templateThinking,
  healthPath: '/health',
  silentWhileLoading: false,
  exampleModel: '/models/Qwen3-0.6B-Q8_0.gguf',
  requiresModel: false,
  matchModel: exactMatch,
  // The listing first, as every type: a frozen server's listing timeout is what the rules act on.
  defaultProbes: ['models', 'health', 'progress', 'chat'],
  starting: (status, body) => status === 503 && body.includes('Loading model'),
  progressThroughLoop: true,
  progress: {
    path: '/metrics',
    parse(body) {
      const m = sumSamples(body, ['llamacpp:requests_processing', 'llamacpp:requests_deferred', 'llamacpp:n_decode_total']);
      return { running: m.get('llamacpp:requests_processing'), waiting: m.get('llamacpp:requests_deferred'), generated: m.get('llamacpp:n_decode_total') };
    },
  },
  stallState: { path: '/props', parse: (body) => (json<{ is_sleeping?: boolean }>(body)?.is_sleeping ? 'asleep' : undefined) },
};
