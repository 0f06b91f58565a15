import { checkStatus, classifyError, discard, readLimited, send } from '../http.ts';
import { SseDecoder } from '../sse.ts';
import { fail, type ProbeFn, type ProbeResult } from './types.ts';

interface ChunkDelta {
  content?: string | null;
  reasoning_content?: string | null;
  reasoning?: string | null;
}
interface Chunk {
  choices?: Array<{ delta?: ChunkDelta; finish_reason?: string | null }>;
  usage?: { completion_tokens?: number } | null;
  error?: { message?: string };
}

/**
 * A tiny streaming chat completion with thinking off. Only a generation proves the server works:
 * vLLM's /health and /v1/models stay green while the engine is stuck.
 * TTFT: request sent -> first chunk with non-empty content or reasoning (AIPerf's definition).
 * Decode rate: (completion_tokens - 1) / (last token - first token) (vLLM's TPOT inverse).
 */
export const chatProbe: ProbeFn = async ({ target, signal, model, now }) => {
  if (model === undefined) return fail('model_missing', 'no model known to ask for');
  const started = now();
  const res = await send(`${target.url}/chat/completions`, {
    method: 'POST',
    signal,
    body: {
      model,
      messages: [{ role: 'user', content: target.chat.prompt }],
      max_tokens: target.chat.max_tokens,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
      chat_template_kwargs: { enable_thinking: false },
    },
  });
  if ('success' in res) return res;
  const bad = checkStatus(res.statusCode);
  if (bad) {
    const text = await readLimited(res.body, 4096, signal);
    return typeof text === 'string' ? { ...bad, message: `${bad.message}: ${text.slice(0, 200)}` } : bad;
  }
  if (!String(res.headers['content-type'] ?? '').includes('text/event-stream')) {
    discard(res.body);
    return fail('bad_response', `expected an event stream, got "${res.headers['content-type'] ?? 'no content-type'}"`);
  }

  const decoder = new SseDecoder();
  let bytes = 0;
  let firstToken: number | undefined;
  let lastToken = 0;
  let tokenChunks = 0;
  let usageTokens: number | undefined;
  let done = false;
  const onPayload = (payload: string): ProbeResult | undefined => {
    if (payload === '[DONE]') {
      done = true;
      return undefined;
    }
    let chunk: Chunk;
    try {
      chunk = JSON.parse(payload) as Chunk;
    } catch {
      return fail('bad_response', `stream chunk is not JSON: ${payload.slice(0, 80)}`);
    }
    // An error after the 200 arrives as a chunk holding an error object (vLLM): not output.
    if (chunk.error) return fail('bad_response', `error in stream: ${chunk.error.message ?? 'unknown'}`);
    for (const choice of chunk.choices ?? []) {
      const d = choice.delta ?? {};
      if (d.content || d.reasoning_content || d.reasoning) {
        const t = now();
        firstToken ??= t;
        lastToken = t;
        tokenChunks += 1;
      } else if (choice.finish_reason && firstToken !== undefined) {
        // vLLM's EOS token arrives as an empty delta with finish_reason, and usage counts it.
        lastToken = now();
      }
    }
    if (typeof chunk.usage?.completion_tokens === 'number') usageTokens = chunk.usage.completion_tokens;
    return undefined;
  };

  try {
    for await (const raw of res.body) {
      bytes += (raw as Buffer).length;
      if (bytes > target.max_response_bytes) {
        discard(res.body);
        return fail('bad_response', `stream larger than ${target.max_response_bytes} bytes`);
      }
      for (const payload of decoder.push(raw as Buffer)) {
        const failed = onPayload(payload);
        if (failed) {
          discard(res.body);
          return failed;
        }
      }
      if (done) break;
    }
  } catch (err) {
    const failure = classifyError(err, signal);
    // Headers came but no token before the deadline: the engine is stuck, not the socket.
    return failure.reason === 'timeout' && firstToken === undefined ? fail('no_tokens', 'no token before the deadline') : failure;
  } finally {
    discard(res.body);
  }
  if (firstToken === undefined) return fail('no_tokens', 'stream ended without a token');
  if (!done) return fail('bad_response', 'stream ended without [DONE]');

  // usage.completion_tokens counts tokens; chunks undercount when a chunk holds several.
  const tokens = usageTokens ?? tokenChunks;
  const decodeMs = lastToken - firstToken;
  return {
    success: true,
    model,
    ttftSeconds: (firstToken - started) / 1000,
    completionTokens: tokens,
    ...(tokens > 1 && decodeMs > 0 ? { tokensPerSecond: ((tokens - 1) * 1000) / decodeMs } : {}),
  };
};
