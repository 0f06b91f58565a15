import { checkAnswer, generationMetrics, generationOptions, generationReasons, recordTimings, streamChat } from './stream.ts';
import { defineProbe } from './types.ts';

/**
 * A tiny streaming chat completion with thinking off. Only a generation proves the server works:
 * vLLM's /health and /v1/models stay green while the engine is stuck.
 * TTFT: request sent -> first chunk with non-empty content or reasoning (AIPerf's definition).
 * Decode rate: (completion_tokens - 1) / (last token - first token) (vLLM's TPOT inverse).
 */
export const chatProbe = defineProbe({
  name: 'chat',
  generates: true,
  description: 'A streamed chat completion with thinking off: TTFT, decode rate and token count; headers but no token before the deadline is no_tokens.',
  options: generationOptions({ prompt: 'Count from 1 to 50, separated by spaces.', max_tokens: 32 }),
  reasons: generationReasons,
  metrics: generationMetrics,
  async run(ctx) {
    const g = await streamChat(ctx, false);
    if ('success' in g) return g;
    recordTimings(ctx, g);
    return checkAnswer(ctx.options, g) ?? { success: true };
  },
});
