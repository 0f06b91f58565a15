// llama.cpp's llama-server (tools/server: server-http.cpp, server-context.cpp, server-task.cpp), and
// as one built from node-llama-cpp's bundled source (v0.4.0, 80fb11a) answered here: listens at once,
// 503 "Loading model" on every path while loading, before the API key is checked; /health answers
// without the task queue (ok even when the decode loop hangs) while /slots and /metrics go through
// it; one slot by default, a request beyond it waits for one before any header; timings on the last
// chunk; cpp-httplib's headers (Server: llama.cpp, no Date, Connection: close after an error).
import { shown, textOf, usageOf, type ChunkMeta, type SimToken } from '../completion.ts';
import { servers } from '../../servers/index.ts';
import { exposition, never, type Flavor, type Reply, type SimState } from './types.ts';

const fingerprint = 'b1-80fb11a';
const frame = (meta: ChunkMeta, rest: object) => ({ choices: [], created: meta.created, id: meta.id, model: meta.model, system_fingerprint: fingerprint, object: 'chat.completion.chunk', ...rest });
const errorType = (status: number) => ({ 400: 'invalid_request_error', 401: 'authentication_error', 403: 'permission_error', 404: 'not_found_error', 501: 'not_supported_error', 503: 'unavailable_error' })[status] ?? 'server_error';

/** <think>, </think>, the blank line after it and <|im_end|> send nothing (its chat parser eats them). */
function deltaOf(token: SimToken): object | undefined {
  if (!shown(token)) return undefined;
  return token.kind === 'reasoning' ? { reasoning_content: token.text } : { content: token.text };
}

/** nlohmann::json's name of a JSON value's type, as its type errors say it. */
const jsonType = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v === 'object' ? 'object' : typeof v);

// What /props and the listing say of Qwen3-0.6B-Q8_0 with the default context (4096 a slot).
const nCtx = 4096;
const ftype = 'Q8_0';
const sampling = { seed: 4294967295, temperature: 0.8, dynatemp_range: 0, dynatemp_exponent: 1, top_k: 40, top_p: 0.95, min_p: 0.05, top_n_sigma: -1, xtc_probability: 0, xtc_threshold: 0.1, typical_p: 1, repeat_last_n: 64, repeat_penalty: 1, presence_penalty: 0, frequency_penalty: 0, dry_multiplier: 0, dry_base: 1.75, dry_allowed_length: 2, dry_penalty_last_n: 64, mirostat: 0, mirostat_tau: 5, mirostat_eta: 0.1, adaptive_target: -1, adaptive_decay: 0.9, max_tokens: -1, n_predict: -1, n_keep: 0, n_discard: 0, ignore_eos: false, stream: false, n_probs: 0, min_keep: 0, chat_format: 'Content-only', reasoning_format: 'none', reasoning_in_content: false, generation_prompt: '', samplers: ['penalties', 'dry', 'top_n_sigma', 'top_k', 'typ_p', 'top_p', 'min_p', 'xtc', 'temperature'], 'speculative.types': 'none', timings_per_token: false, post_sampling_probs: false, backend_sampling: false, lora: [] };
// Qwen3-0.6B's chat template, cut to its generation prompt (the real one is 4 KB).
const chatTemplate = "{%- for message in messages %}{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- if enable_thinking is defined and enable_thinking is false %}{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}{%- endif %}";

/** GET /props: its 19 keys, as 80fb11a answers them. */
const props = (state: SimState) => ({
  default_generation_settings: { params: sampling, n_ctx: nCtx },
  total_slots: state.engine.slots,
  model_alias: state.model,
  model_ftype: ftype,
  model_path: state.modelPath,
  modalities: { vision: false, video: false, audio: false },
  media_marker: '<__media__>',
  endpoint_slots: true,
  endpoint_props: false,
  endpoint_metrics: true,
  ui: true,
  ui_settings: {},
  chat_template: chatTemplate,
  chat_template_caps: { supports_object_arguments: true, supports_parallel_tool_calls: true, supports_preserve_reasoning: false, supports_reasoning_effort: false, supports_string_content: true, supports_system_role: true, supports_tool_calls: true, supports_tools: true, supports_typed_content: false },
  bos_token: '<|endoftext|>',
  eos_token: '<|im_end|>',
  build_info: fingerprint,
  is_sleeping: state.fault() === 'asleep',
  cors_proxy_enabled: false,
});

/** Endpoints answered by the main loop: they hang when it hangs. */
const throughLoop = (state: SimState, answer: () => Reply) => () => (['hang-generation', 'paused'].includes(state.fault()) ? never<Reply>() : answer());

export const llamacpp: Flavor = {
  server: servers.llamacpp,
  description: "llama.cpp's llama-server: 503 \"Loading model\" on every path while loading; /health ok even when the loop hangs; one slot; timings",
  listingPaths: ['/v1/models', '/models'],
  aliases: true,
  request: {
    emptyMessages: true,
    // n_predict: negative is no limit; 0 still decodes the one token sampled after the prompt.
    tokenBudget(requested) {
      if (requested === undefined || requested === null) return undefined;
      if (typeof requested !== 'number') return `Field 'max_tokens': [json.exception.type_error.302] type must be number, but is ${jsonType(requested)}`;
      return requested < 0 ? undefined : Math.max(1, Math.trunc(requested));
    },
  },
  // The body is parsed inside the handler, whose exceptions become 500 server_error.
  invalidJson: () => ({ status: 500, body: { error: { code: 500, message: "[json.exception.parse_error.101] parse error at line 1, column 1: syntax error while parsing value - invalid literal; last read: ''", type: 'server_error' } } }),
  http: {
    headers: { server: 'llama.cpp', 'access-control-allow-origin': '' },
    jsonType: 'application/json; charset=utf-8',
    streamHeaders: { 'x-accel-buffering': 'no', 'content-type': 'text/event-stream' },
    noDate: true,
    closeOnError: true,
  },
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
  // Errors from a handler put the code first; those of the HTTP layer (loading, key, no route) last.
  error: (status, message) => ({ status, body: { error: status === 503 ? { message, type: errorType(status), code: status } : { code: status, message, type: errorType(status) } } }),
  notFound: { status: 404, body: { error: { message: 'File Not Found', type: 'not_found_error', code: 404 } } },
  // The id is the first --alias (sorted) or the model path; `aliases` lists every name, the id too.
  listing: (state) => ({
    models: [{ name: state.model, model: state.model, modified_at: '', size: '', digest: '', type: 'model', description: '', tags: [''], capabilities: ['completion'], parameters: '', details: { parent_model: '', format: 'gguf', family: '', families: [''], parameter_size: '', quantization_level: '' } }],
    object: 'list',
    data: [{ id: state.model, aliases: state.aliases.length > 0 ? state.aliases : [state.model], tags: [], object: 'model', created: state.created, owned_by: 'llamacpp', meta: { vocab_type: true, n_vocab: 151936, n_ctx: nCtx, n_ctx_train: 40960, n_embd: 1024, n_params: 596049920, size: 639447040, ftype } }],
  }),
  routes(state) {
    const ok = (): Reply => ({ status: 200, body: { status: 'ok' } });
    return {
      [servers.llamacpp.healthPath!]: ok,
      '/v1/health': ok,
      [servers.llamacpp.stallState!.path]: () => ({ status: 200, body: props(state) }),
      '/slots': throughLoop(state, () => ({ status: 200, body: Array.from({ length: state.engine.slots }, (_, id) => ({ id, n_ctx: nCtx, speculative: false, is_processing: id < state.engine.running })) })),
      [servers.llamacpp.progress!.path]: throughLoop(state, () => ({
        ...exposition([
          { name: 'llamacpp:requests_processing', type: 'gauge', labels: '', value: state.engine.running },
          { name: 'llamacpp:requests_deferred', type: 'gauge', labels: '', value: state.engine.waiting },
          // Updated when a request finishes: it stands still while one long generation runs.
          { name: 'llamacpp:tokens_predicted', type: 'counter', labels: '', value: state.engine.completedTokens },
          // One llama_decode() call per step of every slot: it moves with every token.
          { name: 'llamacpp:n_decode', type: 'counter', labels: '', value: state.engine.generated },
        ]),
        contentType: 'text/plain; version=0.0.4',
      })),
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
