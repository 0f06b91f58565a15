import { gauge } from '../series.ts';
import { checkAnswer, generationMetrics, generationOptions, generationReasons, recordTimings, streamChat } from './stream.ts';
import { defineProbe, fail } from './types.ts';

const reasoningGauge = gauge('llm_probe_reasoning_tokens', 'Reasoning tokens of the last successful thinking probe (usage.completion_tokens_details.reasoning_tokens, else the chunks that carried reasoning).', ['probe']);
const contentGauge = gauge('llm_probe_content_tokens', 'Answer tokens of the last successful thinking probe: completion tokens minus the server\'s count of reasoning tokens, else the chunks that carried answer text (tokens no chunk shows, such as <think> and EOS, are neither reasoning nor answer).', ['probe']);
const firstContentGauge = gauge('llm_probe_time_to_first_content_seconds', 'Time from sending the last successful thinking probe to its first answer (non-reasoning) token; absent when the budget ran out while thinking.', ['probe']);

/**
 * The same completion with Qwen3's thinking on: the server must return the reasoning apart from the
 * answer (vLLM and SGLang with a reasoning parser, llama.cpp with --jinja, Ollama always), or
 * every client that shows reasoning to people gets it mixed into the answer.
 */
export const thinkingProbe = defineProbe({
  name: 'thinking',
  generates: true,
  description: 'A streamed chat completion with thinking on: reasoning tokens apart from answer tokens; no separate reasoning fails with no_reasoning.',
  options: generationOptions({ prompt: 'Count from 1 to 50, separated by spaces.', max_tokens: 64 }),
  reasons: [...generationReasons, 'no_reasoning'],
  metrics: [...generationMetrics, reasoningGauge, contentGauge, firstContentGauge],
  async run(ctx) {
    const g = await streamChat(ctx, true);
    if ('success' in g) return g;
    recordTimings(ctx, g);
    if (g.reasoningTokens === 0) return fail('no_reasoning', 'thinking on, but no reasoning came apart from the answer: is the server\'s reasoning parser on?');
    ctx.record.set(reasoningGauge, g.reasoningTokens);
    ctx.record.set(contentGauge, g.contentTokens);
    if (g.firstContent !== undefined) ctx.record.set(firstContentGauge, (g.firstContent - g.started) / 1000);
    ctx.log(`reasoning ${g.reasoningTokens} tokens, answer ${g.contentTokens} tokens`);
    return checkAnswer(ctx.options, g) ?? { success: true };
  },
});
