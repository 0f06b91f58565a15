// Chat-completion requests as every flavor reads them: validation, the canned Qwen3-like token
// stream, and what all chunks of one completion share. The wire shapes are each flavor's own.
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

export type PlanResult = { ok: true; plan: ChatPlan } | { ok: false; status: number; message: string };
const badRequest = (message: string): PlanResult => ({ ok: false, status: 400, message });

export const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Text of a message's content, whether a string or an array of {type:'text', text} parts. */
function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content.map((part) => (isRecord(part) && typeof part.text === 'string' ? part.text : '')).join('');
}

/**
 * Validates a request body and plans the reply. The output is Qwen3-like: reasoning words first when
 * thinking is on (each flavor decides that from its own switch), then the canned reply, then EOS (a
 * token that carries no text, counted as vLLM counts it). max_tokens / max_completion_tokens cut it
 * short (finish_reason "length"); absent, the rest of the context window applies, so the reply runs
 * to EOS ("stop"). With ignore_eos the reply repeats up to the limit.
 */
export function planChat(body: Record<string, unknown>, thinking: boolean): PlanResult {
  const { messages } = body;
  if (!Array.isArray(messages) || messages.length === 0 || !messages.every((m) => isRecord(m) && typeof m.role === 'string')) {
    return badRequest('messages: expected a non-empty list of {role, content} objects');
  }
  // A rough estimate of Qwen's chat template: ~4 characters a token, 5 template tokens per message, 3 for the generation prompt.
  const promptTokens = 3 + messages.reduce((n: number, m) => n + 5 + Math.ceil(contentText((m as Record<string, unknown>).content).length / 4), 0);
  const requested = body.max_completion_tokens ?? body.max_tokens;
  if (requested !== undefined && requested !== null && !(Number.isInteger(requested) && (requested as number) >= 1)) {
    return badRequest(`max_tokens must be at least 1, got ${JSON.stringify(requested)}.`);
  }
  const limit = (requested as number | null | undefined) ?? maxModelLen - promptTokens;
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
export function newMeta(model: string, id = `chatcmpl-${randomUUID().replaceAll('-', '')}`): ChunkMeta {
  return { id, created: Math.floor(Date.now() / 1000), model };
}

export function usageOf(plan: ChatPlan) {
  const completion = plan.tokens.length;
  return { prompt_tokens: plan.promptTokens, completion_tokens: completion, total_tokens: plan.promptTokens + completion };
}

/** The text of the tokens of one kind. */
export const textOf = (tokens: readonly SimToken[], kind: SimToken['kind']) => tokens.filter((t) => t.kind === kind).map((t) => t.text).join('');
