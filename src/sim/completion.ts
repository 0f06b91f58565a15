// Chat-completion requests as every flavor reads them: validation, the canned Qwen3-like token
// stream, and what all chunks of one completion share. The wire shapes are each flavor's own.
import { randomUUID } from 'node:crypto';

export const maxModelLen = 40960; // Qwen3-0.6B's context as vLLM reports it

// Word tokens: each word after the first carries its leading space, so the deltas concatenate to the text.
const words = (text: string) => text.split(' ').map((w, i) => (i === 0 ? w : ` ${w}`));
const reasoningText = 'Okay, the user wants a reply. I will introduce myself briefly.';
const replyText =
  'I am Qwen, a large language model created by Alibaba Cloud. I can answer questions, write text and help with code.';

/**
 * One generated token. `hidden` tokens (Qwen3's <think>, </think> and the newlines around them) and
 * `eos` (<|im_end|>) are generated and counted in usage.completion_tokens, but no server shows them:
 * its reasoning parser swallows them, so they send no content or reasoning delta.
 */
export interface SimToken {
  kind: 'reasoning' | 'content' | 'hidden' | 'eos';
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

/** How a server reads the parts of a request every flavor shares; the defaults are vLLM's. */
export interface RequestRules {
  /** An empty `messages` list is answered (llama.cpp), not refused with 400. */
  emptyMessages?: boolean;
  /**
   * The completion budget `max_tokens` (or `max_completion_tokens`) asks for: a number of tokens,
   * undefined for the rest of the context window, or the 400 message. Default: a whole number of
   * at least 1.
   */
  tokenBudget?(requested: unknown): number | undefined | string;
}

export const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function atLeastOne(requested: unknown): number | undefined | string {
  if (requested === undefined || requested === null) return undefined;
  return Number.isInteger(requested) && (requested as number) >= 1 ? (requested as number) : `max_tokens must be at least 1, got ${JSON.stringify(requested)}.`;
}

/** Text of a message's content, whether a string or an array of {type:'text', text} parts. */
function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content.map((part) => (isRecord(part) && typeof part.text === 'string' ? part.text : '')).join('');
}

const hidden = (text: string): SimToken => ({ kind: 'hidden', text });

/**
 * Qwen3's answer, token by token, as its tokenizer cuts it (checked with llama-server's /tokenize on
 * the Qwen2 vocabulary): with thinking on, `<think>` `\n` reasoning (its last token `.\n`, the newline
 * trimmed from what is shown) `</think>` `\n\n` answer `<|im_end|>`; with thinking off (the chat
 * template already wrote the empty think block into the prompt) the answer and `<|im_end|>`. So five
 * tokens of a thinking answer, one of a plain one, are counted in usage but shown by no server.
 */
export function qwen3Answer(thinking: boolean): SimToken[] {
  return [
    ...(thinking ? [hidden('<think>'), hidden('\n'), ...words(reasoningText).map((text) => ({ kind: 'reasoning' as const, text })), hidden('</think>'), hidden('\n\n')] : []),
    ...words(replyText).map((text) => ({ kind: 'content' as const, text })),
    { kind: 'eos', text: '' },
  ];
}

/**
 * Validates a request body and plans the reply (see qwen3Answer; each flavor decides thinking from
 * its own switch, and reads the request by its own rules). max_tokens / max_completion_tokens cut it
 * short (finish_reason "length"); absent, the rest of the context window applies, so the reply runs
 * to EOS ("stop"). With ignore_eos the answer repeats up to the limit.
 */
export function planChat(body: Record<string, unknown>, thinking: boolean, rules: RequestRules = {}): PlanResult {
  const { messages } = body;
  if (!Array.isArray(messages)) return badRequest(rules.emptyMessages ? "'messages' is required" : 'messages: expected a non-empty list of {role, content} objects');
  if ((messages.length === 0 && !rules.emptyMessages) || !messages.every((m) => isRecord(m) && typeof m.role === 'string')) {
    return badRequest('messages: expected a non-empty list of {role, content} objects');
  }
  // A rough estimate of Qwen's chat template: ~4 characters a token, 5 template tokens per message, 3 for the generation prompt.
  const promptTokens = 3 + messages.reduce((n: number, m) => n + 5 + Math.ceil(contentText((m as Record<string, unknown>).content).length / 4), 0);
  const budget = (rules.tokenBudget ?? atLeastOne)(body.max_completion_tokens ?? body.max_tokens);
  if (typeof budget === 'string') return badRequest(budget);
  const limit = budget ?? maxModelLen - promptTokens;
  const natural = qwen3Answer(thinking);
  let tokens = natural;
  if (body.ignore_eos === true) {
    const start = natural.findIndex((t) => t.kind === 'content');
    const content = natural.filter((t) => t.kind === 'content');
    tokens = natural.slice(0, start);
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

/** Whether a server shows this token as a delta (reasoning or content), or only counts it. */
export const shown = (token: SimToken) => token.kind === 'reasoning' || token.kind === 'content';

/** The text of the tokens of one kind. */
export const textOf = (tokens: readonly SimToken[], kind: SimToken['kind']) => tokens.filter((t) => t.kind === kind).map((t) => t.text).join('');
