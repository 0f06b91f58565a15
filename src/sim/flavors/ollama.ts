// Ollama (openai/openai.go, middleware/openai.go, server/routes.go, llm/llama_server.go; the stream
// format of v0.32.6 and later): models load on first use and unload after keep_alive, nothing is
// written until the first token, reasoning as `reasoning`, thinking off only by reasoning_effort.
import { textOf, usageOf, type ChunkMeta } from '../completion.ts';
import { servers } from '../../servers/index.ts';
import type { Flavor, Reply, SimState } from './types.ts';

const withTag = (name: string) => (name.includes(':') ? name : `${name}:latest`);
const frame = (meta: ChunkMeta, rest: object) => ({ id: meta.id, object: 'chat.completion.chunk', created: meta.created, model: meta.model, system_fingerprint: 'fp_ollama', ...rest });
/** The models on disk, most recently modified first: an embedding model lists before the chat one. */
const onDisk = (state: SimState) => ['nomic-embed-text:latest', withTag(state.model)];
const efforts = ['none', 'minimal', 'low', 'medium', 'high', 'max', 'xhigh', 'ultra'];

export const ollama: Flavor = {
  server: servers.ollama,
  description: 'Ollama: loads the model on the first request (headers with the first token; a client that leaves aborts the load); /api/ps, /api/tags',
  listingPaths: ['/v1/models'],
  apiKeys: false,
  modelMissing: (model) => `model '${model}' not found`,
  startup: 'on-first-request',
  headers: 'with-first-token',
  slots: 1,
  streamInterval: 1,
  guarded: () => false, // Ollama has no API keys
  unauthorized: { status: 401, body: { error: 'unauthorized' } },
  thinking(body) {
    const effort = body.reasoning_effort ?? (body.reasoning as { effort?: unknown } | undefined)?.effort;
    if (effort !== undefined && !efforts.includes(effort as string)) return `invalid reasoning value: '${String(effort)}' (must be "minimal", "low", "medium", "high", "max", or "none")`;
    // chat_template_kwargs is not a field here: only reasoning_effort (or think: false natively) turns it off.
    return effort !== 'none' && body.think !== false;
  },
  modelMatches: (requested, served) => withTag(requested) === withTag(served),
  error: (status, message) => ({ status, body: { error: { message, type: status === 400 ? 'invalid_request_error' : status === 404 ? 'not_found_error' : 'api_error', param: null, code: null } } }),
  completionId: () => `chatcmpl-${Math.floor(Math.random() * 999)}`,
  notFound: { status: 404, body: '404 page not found', contentType: 'text/plain' },
  listing: (state) => ({ object: 'list', data: onDisk(state).map((id) => ({ id, object: 'model', created: state.created, owned_by: 'library' })) }),
  routes(state) {
    const model = (name: string) => ({ name, model: name, size: 522653767, digest: 'a'.repeat(64), details: { parent_model: '', format: 'gguf', family: 'qwen3', families: ['qwen3'], parameter_size: '751.63M', quantization_level: 'Q4_K_M' } });
    return {
      '/': (): Reply => ({ status: 200, body: 'Ollama is running', contentType: 'text/plain; charset=utf-8' }),
      '/api/version': () => ({ status: 200, body: { version: '0.33.0' } }),
      '/api/tags': () => ({ status: 200, body: { models: onDisk(state).map((name) => ({ ...model(name), modified_at: new Date(state.created * 1000).toISOString() })) } }),
      [servers.ollama.progress!.path]: () => {
        const loaded = state.loadedUntil !== undefined && state.loadedUntil > Date.now();
        return { status: 200, body: { models: loaded ? [{ ...model(withTag(state.model)), expires_at: new Date(state.loadedUntil!).toISOString(), size_vram: 522653767, context_length: 4096 }] : [] } };
      },
    };
  },
  streamer(meta, plan) {
    let roleSent = false;
    return {
      started: () => [],
      tokens(tokens) {
        // One chunk per kind: a piece holding thinking and content is split, reasoning first. A
        // piece with neither (its thinking parser ate <think>) is not sent; the role goes with the first.
        const reasoning = textOf(tokens, 'reasoning');
        const content = textOf(tokens, 'content');
        const out: object[] = [];
        if (reasoning) out.push({ content: '', reasoning });
        if (content) out.push({ content });
        return out.map((delta) => {
          const withRole = roleSent ? delta : { role: 'assistant', ...delta };
          roleSent = true;
          return frame(meta, { choices: [{ index: 0, delta: withRole, finish_reason: null }] });
        });
      },
      ended: () => [frame(meta, { choices: [{ index: 0, delta: {}, finish_reason: plan.finishReason }] }), ...(plan.includeUsage ? [frame(meta, { choices: [], usage: usageOf(plan) })] : [])],
    };
  },
  completion(meta, plan) {
    const reasoning = textOf(plan.tokens, 'reasoning');
    const message = { role: 'assistant', content: textOf(plan.tokens, 'content'), ...(reasoning ? { reasoning } : {}) };
    return { id: meta.id, object: 'chat.completion', created: meta.created, model: meta.model, system_fingerprint: 'fp_ollama', choices: [{ index: 0, message, finish_reason: plan.finishReason }], usage: usageOf(plan) };
  },
  // After the first write Ollama has no way to report an error: the stream just ends, no [DONE].
  streamError: () => ({ payloads: [], done: false }),
};
