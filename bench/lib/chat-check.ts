// "Healthy" as a user sees it, measured by the bench's own client, independent of the exporter: a
// streamed chat completion returns a token. Used to time fault -> healthy.
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';

const decoder = new TextDecoder();

/**
 * One streamed chat completion, thinking off; resolves with performance.now() at the first chunk
 * carrying content or reasoning, or undefined (error, HTTP status, no token within timeoutMs).
 */
export async function firstToken(base: string, model: string | undefined, timeoutMs: number, signal?: AbortSignal): Promise<number | undefined> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), timeoutMs);
  const onAbort = () => ac.abort();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const res = await request(`${base}/chat/completions`, {
      method: 'POST',
      // A fresh connection each time: a kept-alive socket to a killed server says nothing new.
      reset: true,
      headers: { 'content-type': 'application/json', 'user-agent': 'qwen-sentinel-bench' },
      body: JSON.stringify({ ...(model ? { model } : {}), messages: [{ role: 'user', content: 'Say OK.' }], stream: true, max_tokens: 4, chat_template_kwargs: { enable_thinking: false } }),
      signal: ac.signal,
    });
    if (res.statusCode !== 200) {
      res.body.on('error', () => {});
      res.body.destroy();
      return undefined;
    }
    let buffer = '';
    for await (const chunk of res.body) {
      buffer += decoder.decode(chunk as Buffer, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, end).trim();
        buffer = buffer.slice(end + 1);
        if (!line.startsWith('data:')) continue;
        const data = line.slice(5).trim();
        if (data === '[DONE]') return undefined;
        try {
          const delta = (JSON.parse(data) as { choices?: Array<{ delta?: { content?: string | null; reasoning_content?: string | null; reasoning?: string | null } }> }).choices?.[0]?.delta;
          if (delta && (delta.content || delta.reasoning_content || delta.reasoning)) {
            const at = performance.now();
            ac.abort();
            return at;
          }
        } catch {
          // not JSON: keep reading
        }
      }
    }
    return undefined;
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
  }
}

export interface HealthyOptions {
  model?: string | undefined;
  /** Give up after this long (performance.now() ms from the call). */
  capMs: number;
  /** A new attempt this often (attempts may overlap, at most `maxInFlight`). */
  everyMs?: number;
  attemptTimeoutMs?: number;
  maxInFlight?: number;
  signal?: AbortSignal;
}

/**
 * Polls with overlapping attempts, one started every everyMs, until one returns a token. Only
 * attempts started by this call count, so a request in flight before a fault cannot pass for
 * recovery. Resolves with performance.now() of that token, or undefined after capMs.
 */
export async function waitHealthy(base: string, o: HealthyOptions): Promise<number | undefined> {
  const every = o.everyMs ?? 500;
  const end = performance.now() + o.capMs;
  const stop = new AbortController();
  const signal = o.signal ? AbortSignal.any([o.signal, stop.signal]) : stop.signal;
  let healthyAt: number | undefined;
  let inFlight = 0;
  const attempts: Promise<void>[] = [];
  try {
    while (healthyAt === undefined && performance.now() < end) {
      o.signal?.throwIfAborted();
      if (inFlight < (o.maxInFlight ?? 8)) {
        inFlight++;
        attempts.push(
          firstToken(base, o.model, Math.min(o.attemptTimeoutMs ?? 3000, Math.max(1, end - performance.now())), signal).then((at) => {
            inFlight--;
            if (at !== undefined && (healthyAt === undefined || at < healthyAt)) healthyAt = at;
          }),
        );
      }
      await sleep(every, undefined, { signal }).catch(() => {});
    }
  } finally {
    stop.abort();
    await Promise.all(attempts);
  }
  o.signal?.throwIfAborted();
  return healthyAt;
}

/**
 * The first model id the server lists that can chat, or undefined: an embedding model (Ollama
 * lists nomic-embed-text:latest before qwen3:0.6b) answers no chat request.
 */
export async function firstModel(base: string): Promise<string | undefined> {
  try {
    const res = await fetch(`${base}/models`, { signal: AbortSignal.timeout(3000) });
    const ids = ((await res.json()) as { data?: Array<{ id?: string }> }).data?.map((m) => m.id).filter((id): id is string => typeof id === 'string') ?? [];
    return ids.find((id) => !/embed/i.test(id)) ?? ids[0];
  } catch {
    return undefined;
  }
}
