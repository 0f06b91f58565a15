// llama.cpp's llama-server (tools/server: server-http.cpp, server-context.cpp, server-task.cpp), and
// as one built from node-llama-cpp's bundled source ran here: listens at once, 503 "Loading model"
// on every path while loading; /health answers without the task queue (ok even when the decode
// loop hangs) while /slots and /metrics go through it; one slot by default, a request beyond it
// waits for one before any header; timings on the last chunk.
import { textOf, usageOf, type ChunkMeta, type SimToken } from '../completion.ts';
import { servers } from '../../servers/index.ts';
import { exposition, never, type Flavor, type Reply, type SimState } from './types.ts';

const fingerprint = 'b1-80fb11a';
const frame = (meta: ChunkMeta, rest: object) => ({ choices: [], created: meta.created, id: meta.id, model: meta.model, system_fingerprint: fingerprint, object: 'chat.completion.chunk', ...rest });
const errorType = (status: number) => ({ 400: 'invalid_request_error', 401: 'authentication_error', 403: 'permission_error', 404: 'not_found_error', 501: 'not_supported_error', 503: 'unavailable_error' })[status] ?? 'server_error';

function deltaOf(token: SimToken): object | undefined {
  if (token.kind === 'eos') return undefined; // <|im_end|> decodes to nothing
  return token.kind === 'reasoning' ? { reasoning_content: token.text } : { content: token.text };
}

/** Endpoints answered by the main loop: they hang when it hangs. */
const throughLoop = (state: SimState, answer: () => Reply) => () => (['hang-generation', 'paused'].includes(state.fault()) ? never<Reply>() : answer());

export const llamacpp: Flavor = {
  server: servers.llamacpp,
  description: "llama.cpp's llama-server: 503 \"Loading model\" on every path while loading; /health ok even when the loop hangs; one slot; timings",
  listingPaths: ['/v1/models', '/models'],
  keyHeader: 'x-api-key',
  apiKeys: true,
  modelMissing: (model) => `The model \`${model}\` does not exist.`,
  startup: 'loading-503',
  headers: 'with-slot',
  slots: 1,
  streamInterval: 1,
  guarded: (path) => !['/health', '/v1/health', '/'].includes(path),
  unauthorized: { status: 401, body: { error: { message: 'Invalid API Key', type: 'authentication_error', code: 401 } } },
  thinking: (body) => (body.chat_template_kwargs as { enable_thinking?: unknown } | undefined)?.enable_thinking !== false,
  modelMatches: () => true, // one model: the request's `model` is ignored
  error: (status, message) => ({ status, body: { error: { code: status, message, type: errorType(status) } } }),
  notFound: { status: 404, body: { error: { code: 404, message: 'File Not Found', type: 'not_found_error' } } },
  listing: (state) => ({
    models: [{ name: state.model, model: state.model, modified_at: '', size: '', digest: '', type: 'model', description: '', tags: [''], capabilities: ['completion'], parameters: '', details: { parent_model: '', format: 'gguf', family: '', families: [''], parameter_size: '', quantization_level: '' } }],
    object: 'list',
    data: [{ id: state.model, aliases: [], tags: [], object: 'model', created: state.created, owned_by: 'llamacpp', meta: { vocab_type: 2, n_vocab: 151936, n_ctx_train: 40960, n_embd: 1024, n_params: 596049920, size: 639447040 } }],
  }),
  routes(state) {
    const ok = (): Reply => ({ status: 200, body: { status: 'ok' } });
    return {
      [servers.llamacpp.healthPath!]: ok,
      '/v1/health': ok,
      [servers.llamacpp.stallState!.path]: () => ({ status: 200, body: { total_slots: state.engine.slots, model_path: state.model, is_sleeping: state.fault() === 'asleep', build_info: fingerprint } }),
      '/slots': throughLoop(state, () => ({ status: 200, body: Array.from({ length: state.engine.slots }, (_, id) => ({ id, n_ctx: 4096, speculative: false, is_processing: id < state.engine.running })) })),
      [servers.llamacpp.progress!.path]: throughLoop(state, () =>
        exposition([
          { name: 'llamacpp:requests_processing', type: 'gauge', labels: '', value: state.engine.running },
          { name: 'llamacpp:requests_deferred', type: 'gauge', labels: '', value: state.engine.waiting },
          // Updated when a request finishes: it stands still while one long generation runs.
          { name: 'llamacpp:tokens_predicted', type: 'counter', labels: '', value: state.engine.completedTokens },
          // One llama_decode() call per step of every slot: it moves with every token.
          { name: 'llamacpp:n_decode', type: 'counter', labels: '', value: state.engine.generated },
        ]),
      ),
    };
  },
  streamer(meta, plan, state) {
    let started = 0;
    let firstToken = 0;
    let lastToken = 0;
    const timings = () => {
      const predictedMs = lastToken - firstToken;
      const n = plan.tokens.length;
      return { cache_n: 0, prompt_n: plan.promptTokens, prompt_ms: firstToken - started, prompt_per_token_ms: (firstToken - started) / plan.promptTokens, prompt_per_second: (plan.promptTokens * 1000) / Math.max(firstToken - started, 1e-3), predicted_n: n, predicted_ms: predictedMs, predicted_per_token_ms: predictedMs / Math.max(n - 1, 1), predicted_per_second: predictedMs > 0 ? ((n - 1) * 1000) / predictedMs : 0 };
    };
    return {
      started() {
        started = state.now();
        return [];
      },
      tokens(tokens, first) {
        const t = state.now();
        if (firstToken === 0) firstToken = t;
        lastToken = t;
        // The role chunk comes with the first generated token, not when the slot takes the request
        // (measured on the real server: its timings' decode window starts at the role chunk).
        const role = first ? [frame(meta, { choices: [{ finish_reason: null, index: 0, delta: { role: 'assistant', content: null } }] })] : [];
        return [...role, ...tokens.flatMap((token) => {
          const delta = deltaOf(token);
          return delta ? [frame(meta, { choices: [{ finish_reason: null, index: 0, delta }] })] : [];
        })];
      },
      ended() {
        const finish = frame(meta, { choices: [{ finish_reason: plan.finishReason, index: 0, delta: {} }] });
        // The last chunk carries the timings: the usage chunk when asked for, else the finish chunk.
        if (!plan.includeUsage) return [{ ...finish, timings: timings() }];
        return [finish, frame(meta, { usage: { ...usageOf(plan), prompt_tokens_details: { cached_tokens: 0 } }, timings: timings() })];
      },
    };
  },
  completion(meta, plan) {
    const reasoning = textOf(plan.tokens, 'reasoning');
    const message = { role: 'assistant', content: textOf(plan.tokens, 'content'), ...(reasoning ? { reasoning_content: reasoning } : {}) };
    return { choices: [{ finish_reason: plan.finishReason, index: 0, message }], created: meta.created, model: meta.model, system_fingerprint: fingerprint, object: 'chat.completion', usage: usageOf(plan), id: meta.id };
  },
  streamError: (message) => ({ payloads: [{ error: { code: 500, message, type: 'server_error' } }], done: true }),
};
