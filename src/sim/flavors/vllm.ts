// vLLM's OpenAI server, as its source has it (vllm/entrypoints/openai/chat_completion/serving.py,
// models/serving.py, serve/instrumentator/health.py, v1/metrics/loggers.py, server_utils.py).
import { randomUUID } from 'node:crypto';
import { maxModelLen, shown, textOf, usageOf, type ChatPlan, type ChunkMeta, type SimToken } from '../completion.ts';
import { servers } from '../../servers/index.ts';
import { exposition, type Flavor } from './types.ts';

const frame = (meta: ChunkMeta, rest: object) => ({ id: meta.id, object: 'chat.completion.chunk', created: meta.created, model: meta.model, ...rest });

/** Reasoning as `reasoning`, with the deprecated `reasoning_content` copy that releases from Nov 2025 kept. */
function delta(tokens: SimToken[]): Record<string, string> {
  const reasoning = textOf(tokens, 'reasoning');
  const content = textOf(tokens, 'content');
  return { ...(reasoning ? { reasoning, reasoning_content: reasoning } : {}), ...(content || !reasoning ? { content } : {}) };
}

const thinkingEfforts = ['low', 'medium', 'high'];

export const vllm: Flavor = {
  server: servers.vllm,
  description: 'vLLM: refuses connections while loading; /health 503 when the engine is dead; one token per chunk (--stream-interval 1); /metrics, /is_sleeping, /is_paused',
  listingPaths: ['/v1/models'],
  apiKeys: true,
  modelMissing: (model) => `The model \`${model}\` does not exist.`,
  engineDead: { status: 500 },
  startup: 'refuse',
  headers: 'at-once',
  slots: 256,
  // --stream-interval defaults to 1 (vllm/config/scheduler.py): each token its own chunk.
  streamInterval: 1,
  guarded: (path) => /^\/(v1|v2|inference|cohere)(\/|$)/.test(path),
  unauthorized: { status: 401, body: { error: 'Unauthorized' } },
  thinking(body) {
    if (body.reasoning_effort !== undefined && !thinkingEfforts.includes(body.reasoning_effort as string)) {
      return `reasoning_effort: Input should be 'low', 'medium' or 'high'`;
    }
    const kwargs = body.chat_template_kwargs as { enable_thinking?: unknown } | undefined;
    return kwargs?.enable_thinking !== false;
  },
  modelMatches: (requested, served) => requested === served,
  error: (status, message) => ({
    status,
    body: { error: { message, type: status === 404 ? 'NotFoundError' : status >= 500 ? 'InternalServerError' : 'BadRequestError', param: null, code: status } },
  }),
  notFound: { status: 404, body: { detail: 'Not Found' } },
  listing(state) {
    const permission = { id: `modelperm-${randomUUID().replaceAll('-', '')}`, object: 'model_permission', created: state.created, allow_create_engine: false, allow_sampling: true, allow_logprobs: true, allow_search_indices: false, allow_view: true, allow_fine_tuning: false, organization: '*', group: null, is_blocking: false };
    return { object: 'list', data: [{ id: state.model, object: 'model', created: state.created, owned_by: 'vllm', root: state.model, parent: null, max_model_len: maxModelLen, permission: [permission] }] };
  },
  routes(state) {
    const fault = state.fault();
    const labels = `engine="0",model_name="${state.model}"`;
    // /health only reads the engine's error flag: 200 while it lives, whatever it is doing.
    const health = () => ({ status: fault === 'engine-dead' ? 503 : 200 });
    return {
      [servers.vllm.healthPath!]: health,
      '/ping': health,
      '/version': () => ({ status: 200, body: { version: '0.16.0' } }),
      '/load': () => ({ status: 200, body: { server_load: state.engine.running + state.engine.waiting } }),
      [servers.vllm.progress!.path]: () =>
        exposition([
          { name: 'vllm:num_requests_running', type: 'gauge', labels, value: state.engine.running },
          { name: 'vllm:num_requests_waiting', type: 'gauge', labels, value: state.engine.waiting },
          { name: 'vllm:kv_cache_usage_perc', type: 'gauge', labels, value: Math.min(1, state.engine.running / state.engine.slots) },
          { name: 'vllm:generation_tokens', type: 'counter', labels, value: state.engine.generated },
          { name: 'vllm:time_to_first_token_seconds', type: 'histogram', labels, histogram: state.engine.timeToFirstToken },
          { name: 'vllm:inter_token_latency_seconds', type: 'histogram', labels, histogram: state.engine.interToken },
          ...['awake', 'weights_offloaded'].map((s) => ({ name: 'vllm:engine_sleep_state', type: 'gauge' as const, labels: `${labels},sleep_state="${s}"`, value: (fault === 'asleep') === (s !== 'awake') ? 1 : 0 })),
        ]),
      // Dev-mode endpoints (VLLM_SERVER_DEV_MODE=1), the ones a sleeping or paused server has.
      '/is_sleeping': () => ({ status: 200, body: { is_sleeping: fault === 'asleep' } }),
      [servers.vllm.stallState!.path]: () => ({ status: 200, body: { is_paused: fault === 'paused' } }),
    };
  },
  streamer(meta, plan) {
    return {
      started: () => [],
      tokens(tokens, first, last) {
        const role = first ? [frame(meta, { choices: [{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }] })] : [];
        // The qwen3 reasoning parser returns no delta for <think> and </think>: no chunk, unless it ends the stream.
        if (!last && !tokens.some(shown)) return role;
        const choice = { index: 0, delta: delta(tokens), logprobs: null, finish_reason: last ? plan.finishReason : null, ...(last ? { stop_reason: null } : {}) };
        return [...role, frame(meta, { choices: [choice] })];
      },
      ended: () => (plan.includeUsage ? [frame(meta, { choices: [], usage: usageOf(plan) })] : []),
    };
  },
  completion(meta, plan: ChatPlan) {
    const reasoning = textOf(plan.tokens, 'reasoning');
    const message = { role: 'assistant', content: textOf(plan.tokens, 'content'), ...(reasoning ? { reasoning, reasoning_content: reasoning } : { reasoning: null }), tool_calls: [] };
    return { id: meta.id, object: 'chat.completion', created: meta.created, model: meta.model, choices: [{ index: 0, message, logprobs: null, finish_reason: plan.finishReason, stop_reason: null }], usage: usageOf(plan), prompt_logprobs: null };
  },
  streamError: (message) => ({ payloads: [{ error: { message, type: 'InternalServerError', param: null, code: 500 } }], done: true }),
};
