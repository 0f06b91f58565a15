// Chat-completion request validation, the canned token stream and vLLM-shaped response bodies.
// Shapes follow vllm-project/vllm `entrypoints/openai/chat_completion/serving.py` and
// `engine/protocol.py` (ErrorInfo nested under "error", code = HTTP status as an int).
import { randomUUID } from 'node:crypto';

export const maxModelLen = 40960; // Qwen3-0.6B's context as vLLM reports it

// Word tokens: each word after the first carries its leading space, so the deltas concatenate to the text.
const words = (text: string) => text.split(' ').map((w, i) => (i === 0 ? w : ` ${w}`));
const reasoningText = 'Okay, the user wants a reply. I will introduce myself briefly.';
const replyText =
  'I am Qwen, a large language model created by Alibaba Cloud. I can answer questions, write text and help with code.';

export interface SimToken {
  kind: 'reasoning' | 'content' | 'eos';
  text: string;
}
export type FinishReason = 'stop' | 'length';
export interface ChatPlan {
  stream: boolean;
  includeUsage: boolean;
  promptTokens: number;
  tokens: SimToken[];
  finishReason: FinishReason;
}

export interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: number };
}
export function errorBody(message: string, type: string, code: number, param: string | null = null): ErrorBody {
  return { error: { message, type, param, code } };
}
export type PlanResult = { ok: true; plan: ChatPlan } | { ok: false; status: number; body: ErrorBody };
const badRequest = (message: string): PlanResult => ({ ok: false, status: 400, body: errorBody(message, 'BadRequestError', 400) });

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Text of a message's content, whether a string or an array of {type:'text', text} parts. */
function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content.map((part) => (isRecord(part) && typeof part.text === 'string' ? part.text : '')).join('');
}

/**
 * Validates a request body and plans the reply. The output is Qwen3-like: reasoning words first
 * unless chat_template_kwargs.enable_thinking is false, then the canned reply, then EOS (an empty
 * delta, counted as a token as vLLM counts it). max_tokens / max_completion_tokens cut it short
 * (finish_reason "length"); absent, vLLM's default applies: the rest of the context window, so the
 * reply runs to EOS ("stop"). With ignore_eos (a vLLM sampling parameter) the reply repeats up to the limit.
 */
export function planChat(body: unknown, servedModel: string): PlanResult {
  if (!isRecord(body)) return badRequest('Request body must be a JSON object');
  const { messages, model } = body;
  if (!Array.isArray(messages) || messages.length === 0 || !messages.every((m) => isRecord(m) && typeof m.role === 'string')) {
    return badRequest('messages: expected a non-empty list of {role, content} objects');
  }
  if (model !== undefined && model !== null && model !== servedModel) {
    return { ok: false, status: 404, body: errorBody(`The model \`${String(model)}\` does not exist.`, 'NotFoundError', 404) };
  }
  // A rough estimate of Qwen's chat template: ~4 characters a token, 5 template tokens per message, 3 for the generation prompt.
  const promptTokens = 3 + messages.reduce((n: number, m) => n + 5 + Math.ceil(contentText((m as Record<string, unknown>).content).length / 4), 0);
  const requested = body.max_completion_tokens ?? body.max_tokens;
  if (requested !== undefined && requested !== null && !(Number.isInteger(requested) && (requested as number) >= 1)) {
    return badRequest(`max_tokens must be at least 1, got ${JSON.stringify(requested)}.`);
  }
  const limit = (requested as number | null | undefined) ?? maxModelLen - promptTokens;
  const kwargs = isRecord(body.chat_template_kwargs) ? body.chat_template_kwargs : {};
  const thinking = kwargs.enable_thinking !== false;

  const natural: SimToken[] = [
    ...(thinking ? words(reasoningText).map((text) => ({ kind: 'reasoning' as const, text })) : []),
    ...words(replyText).map((text) => ({ kind: 'content' as const, text })),
    { kind: 'eos', text: '' },
  ];
  let tokens = natural;
  if (body.ignore_eos === true) {
    const content = natural.filter((t) => t.kind === 'content');
    tokens = natural.filter((t) => t.kind === 'reasoning');
    for (let i = 0; tokens.length < limit; i++) tokens.push(content[i % content.length]!);
  }
  const finishReason: FinishReason = tokens.length > limit || body.ignore_eos === true ? 'length' : 'stop';
  const streamOptions = isRecord(body.stream_options) ? body.stream_options : {};
  return {
    ok: true,
    plan: {
      stream: body.stream === true,
      includeUsage: streamOptions.include_usage === true,
      promptTokens,
      tokens: tokens.slice(0, limit),
      finishReason,
    },
  };
}

/** What every chunk of one completion shares. */
export interface ChunkMeta {
  id: string;
  created: number;
  model: string;
}
export function newMeta(model: string): ChunkMeta {
  return { id: `chatcmpl-${randomUUID().replaceAll('-', '')}`, created: Math.floor(Date.now() / 1000), model };
}

function deltaOf(token: SimToken): Record<string, string> {
  return token.kind === 'reasoning' ? { reasoning_content: token.text } : { content: token.text };
}

const frame = (meta: ChunkMeta, rest: object) => ({ id: meta.id, object: 'chat.completion.chunk', created: meta.created, model: meta.model, ...rest });

/** vLLM sends the role chunk together with the engine's first output. */
export function roleChunk(meta: ChunkMeta): object {
  return frame(meta, { choices: [{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }] });
}

/** One token; the last one carries finish_reason (vLLM puts the final delta and the reason in one chunk). */
export function tokenChunk(meta: ChunkMeta, token: SimToken, finish: FinishReason | null): object {
  const choice = { index: 0, delta: deltaOf(token), logprobs: null, finish_reason: finish, ...(finish ? { stop_reason: null } : {}) };
  return frame(meta, { choices: [choice] });
}

export function usageOf(plan: ChatPlan) {
  const completion = plan.tokens.length;
  return { prompt_tokens: plan.promptTokens, completion_tokens: completion, total_tokens: plan.promptTokens + completion };
}

/** Sent only with stream_options.include_usage, after the finish chunk. */
export function usageChunk(meta: ChunkMeta, plan: ChatPlan): object {
  return frame(meta, { choices: [], usage: usageOf(plan) });
}

/** The non-streamed `chat.completion` object. */
export function completionResponse(meta: ChunkMeta, plan: ChatPlan): object {
  const text = (kind: SimToken['kind']) => plan.tokens.filter((t) => t.kind === kind).map((t) => t.text).join('');
  const reasoning = plan.tokens.some((t) => t.kind === 'reasoning') ? { reasoning_content: text('reasoning') } : {};
  const message = { role: 'assistant', content: text('content'), ...reasoning, tool_calls: [] };
  return {
    id: meta.id,
    object: 'chat.completion',
    created: meta.created,
    model: meta.model,
    choices: [{ index: 0, message, logprobs: null, finish_reason: plan.finishReason, stop_reason: null }],
    usage: usageOf(plan),
    prompt_logprobs: null,
  };
}

/** GET /v1/models as vLLM answers it (one served model). */
export function modelList(model: string, created: number): object {
  const permission = {
    id: `modelperm-${randomUUID().replaceAll('-', '')}`,
    object: 'model_permission',
    created,
    allow_create_engine: false,
    allow_sampling: true,
    allow_logprobs: true,
    allow_search_indices: false,
    allow_view: true,
    allow_fine_tuning: false,
    organization: '*',
    group: null,
    is_blocking: false,
  };
  return {
    object: 'list',
    data: [{ id: model, object: 'model', created, owned_by: 'vllm', root: model, parent: null, max_model_len: maxModelLen, permission: [permission] }],
  };
}
