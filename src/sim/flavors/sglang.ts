// SGLang's server (python/sglang/srt/entrypoints/http_server.py, openai/serving_chat.py,
// metrics/collector.py, utils/auth.py): listens only once its subprocesses run, then /health 503
// until the warm-up generation is done; reasoning as reasoning_content; flat OpenAI errors.
import { maxModelLen, shown, textOf, usageOf, type ChunkMeta } from '../completion.ts';
import { servers } from '../../servers/index.ts';
import { exposition, type Flavor, type Reply } from './types.ts';

const frame = (meta: ChunkMeta, rest: object) => ({ id: meta.id, object: 'chat.completion.chunk', created: meta.created, model: meta.model, ...rest });
const eosTokenId = 151645; // <|im_end|>, what matched_stop names when the reply ends on EOS

export const sglang: Flavor = {
  server: servers.sglang,
  description: 'SGLang: refuses connections while loading, then /health 503 while warming up; /health 503 when its test generation fails; /metrics',
  listingPaths: ['/v1/models'],
  apiKeys: true,
  modelMissing: (model) => `The model \`${model}\` does not exist.`,
  engineDead: { status: 500 },
  warmsUp: true,
  startup: 'refuse',
  headers: 'at-once',
  slots: 64,
  streamInterval: 1,
  // utils/auth.py decide_request_auth: /health*, /ready* and /metrics* stay open under --api-key
  // (prefix matches), every other path wants the key. Admin paths (ADMIN_OPTIONAL) take the same
  // key when no --admin-api-key is set; ADMIN_FORCE would answer 403, but http_server.py marks no
  // path so (its FIXME): the admin-only ones check for the admin key themselves and answer 400.
  guarded: (path) => !/^\/(health|ready|metrics)/.test(path),
  unauthorized: { status: 401, body: { error: 'Unauthorized' } },
  thinking: (body) => (body.chat_template_kwargs as { enable_thinking?: unknown } | undefined)?.enable_thinking !== false,
  modelMatches: (requested, served) => requested === served,
  error: (status, message) => ({ status, body: { object: 'error', message, type: status === 404 ? 'NotFoundError' : status >= 500 ? 'InternalServerError' : 'BadRequestError', param: null, code: status } }),
  notFound: { status: 404, body: { detail: 'Not Found' } },
  listing: (state) => ({ object: 'list', data: [{ id: state.model, object: 'model', created: state.created, owned_by: 'sglang', root: state.model, parent: null, max_model_len: maxModelLen }] }),
  routes(state) {
    const fault = state.fault();
    // /health runs a 1-token generation: any output (from any request) within 20 s
    // (SGLANG_HEALTH_CHECK_TIMEOUT) is healthy; an engine that produces none gets 503 only then.
    // (SGLang has no pause or sleep: those faults stall it like a hang.)
    const stuck = fault === 'engine-dead' || fault === 'hang-generation' || fault === 'paused' || fault === 'asleep';
    const health = (): Reply | Promise<Reply> => {
      if (state.warming) return { status: 503 };
      if (!stuck) return { status: 200 };
      return new Promise((resolve) => setTimeout(() => resolve({ status: 503 }), state.healthTimeoutMs).unref());
    };
    const labels = `model_name="${state.model}",engine_type="unified",tp_rank="0",pp_rank="0"`;
    return {
      [servers.sglang.healthPath!]: health,
      '/health_generate': health,
      // An admin path that wants --admin-api-key, which the simulator never has.
      '/hicache/storage-backend': () => ({ status: 400, body: { error: 'This endpoint requires admin API key, but this server was started without one (admin-api-key). Restart with --admin-api-key to enable.' } }),
      '/get_model_info': () => ({ status: 200, body: { model_path: state.model, tokenizer_path: state.model, is_generation: true, preferred_sampling_params: null, weight_version: 'default' } }),
      [servers.sglang.progress!.path]: () =>
        exposition([
          { name: 'sglang:num_running_reqs', type: 'gauge', labels, value: state.engine.running },
          { name: 'sglang:num_queue_reqs', type: 'gauge', labels, value: state.engine.waiting },
          // Updated when a request finishes (observe_one_finished_request)...
          { name: 'sglang:generation_tokens', type: 'counter', labels: `model_name="${state.model}",engine_type="unified"`, value: state.engine.completedTokens },
          // ...while this one moves with every decode step.
          { name: 'sglang:realtime_tokens', type: 'counter', labels: `model_name="${state.model}",engine_type="unified",mode="decode"`, value: state.engine.generated },
        ]),
    };
  },
  streamer(meta, plan) {
    return {
      started: () => [],
      tokens(tokens, first) {
        const role = first ? [frame(meta, { choices: [{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null, matched_stop: null }] })] : [];
        const deltas = tokens
          .filter(shown)
          .map((t) => frame(meta, { choices: [{ index: 0, delta: t.kind === 'reasoning' ? { reasoning_content: t.text } : { content: t.text }, logprobs: null, finish_reason: null, matched_stop: null }] }));
        return [...role, ...deltas];
      },
      ended() {
        const stop = plan.finishReason === 'stop' ? eosTokenId : null;
        return [frame(meta, { choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: plan.finishReason, matched_stop: stop }] }), ...(plan.includeUsage ? [frame(meta, { choices: [], usage: usageOf(plan) })] : [])];
      },
    };
  },
  completion(meta, plan) {
    const reasoning = textOf(plan.tokens, 'reasoning');
    const message = { role: 'assistant', content: textOf(plan.tokens, 'content'), reasoning_content: reasoning || null, tool_calls: null };
    return { id: meta.id, object: 'chat.completion', created: meta.created, model: meta.model, choices: [{ index: 0, message, logprobs: null, finish_reason: plan.finishReason, matched_stop: plan.finishReason === 'stop' ? eosTokenId : null }], usage: usageOf(plan) };
  },
  streamError: (message) => ({ payloads: [{ error: { message, type: 'InternalServerError', param: null, code: 500 } }], done: true }),
};
