// The real llama.cpp llama-server (built by test/real-server/build-llama-server.sh) with the tiny
// generated Qwen3 model: what the sentinel's probes see from a genuine OpenAI-compatible server.
// The model's weights make decoding follow a fixed chain (see write-tiny-qwen3-gguf.ts), so the
// replies are known: thinking on -> reasoning "Okay, the user wants a reply." then "OK!".
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { requireLlamaServer, startLlamaServer } from '../helpers/llama-server.ts';

const files = requireLlamaServer();

interface Chunk {
  choices: Array<{ delta: { role?: string; content?: string | null; reasoning_content?: string }; finish_reason: string | null }>;
  usage?: { prompt_tokens: number; completion_tokens: number };
  timings?: { predicted_n: number; predicted_per_second: number };
}

interface StreamResult { chunks: Chunk[]; content: string; reasoning: string; order: Array<'reasoning' | 'content'>; finish: string | null; done: boolean }

/** POSTs a streamed chat completion and collects its SSE `data:` events. */
async function streamChat(url: string, body: Record<string, unknown>): Promise<StreamResult> {
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'tiny-qwen3', stream: true, stream_options: { include_usage: true }, ...body }),
    signal: AbortSignal.timeout(10_000),
  });
  assert.equal(res.status, 200, await res.clone().text());
  assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
  const result: StreamResult = { chunks: [], content: '', reasoning: '', order: [], finish: null, done: false };
  for (const line of (await res.text()).split('\n')) {
    if (!line.startsWith('data: ')) continue;
    const data = line.slice('data: '.length);
    if (data === '[DONE]') {
      result.done = true;
      continue;
    }
    const chunk = JSON.parse(data) as Chunk;
    result.chunks.push(chunk);
    for (const choice of chunk.choices) {
      if (choice.delta.reasoning_content) {
        result.reasoning += choice.delta.reasoning_content;
        if (result.order.at(-1) !== 'reasoning') result.order.push('reasoning');
      }
      if (choice.delta.content) {
        result.content += choice.delta.content;
        if (result.order.at(-1) !== 'content') result.order.push('content');
      }
      if (choice.finish_reason !== null) result.finish = choice.finish_reason;
    }
  }
  return result;
}

test('real llama-server with the tiny Qwen3 model', { skip: !files && 'llama-server not built (see the warning above)', timeout: 60_000 }, async (t) => {
  const server = await startLlamaServer();
  t.after(() => server.stop());
  t.diagnostic(`startup: ${server.startup.map((o) => `${o.status}${o.count > 1 ? `x${o.count}` : ''}@${o.atMs}ms`).join(' -> ')}`);

  await t.test('/health goes 503 "Loading model" -> 200 while starting', () => {
    const statuses = server.startup.map((o) => o.status).filter((s) => s !== 'refused');
    assert.deepEqual(statuses, [503, 200], JSON.stringify(server.startup));
    const loading = server.startup.find((o) => o.status === 503)!;
    assert.deepEqual(JSON.parse(loading.body), { error: { message: 'Loading model', type: 'unavailable_error', code: 503 } });
    assert.deepEqual(JSON.parse(server.startup.at(-1)!.body), { status: 'ok' });
  });

  await t.test('/v1/models lists the one model', async () => {
    const res = await fetch(`${server.url}/v1/models`);
    assert.equal(res.status, 200);
    const body = (await res.json()) as { object: string; data: Array<{ id: string; object: string; owned_by: string }> };
    assert.equal(body.object, 'list');
    assert.equal(body.data.length, 1);
    assert.match(body.data[0]!.id, /tiny-qwen3\.gguf$/); // the id is the model path unless --alias is given
    assert.equal(body.data[0]!.owned_by, 'llamacpp');
  });

  await t.test('thinking off: content "OK!" then stop, within max_tokens 8', async () => {
    const r = await streamChat(server.url, {
      messages: [{ role: 'user', content: 'Say OK.' }],
      max_tokens: 8,
      chat_template_kwargs: { enable_thinking: false },
    });
    assert.equal(r.content, 'OK!');
    assert.equal(r.reasoning, '');
    assert.equal(r.finish, 'stop');
    assert.ok(r.done, 'data: [DONE]');
    assert.equal(r.chunks[0]?.choices[0]?.delta.role, 'assistant');
    const last = r.chunks.at(-1)!;
    assert.equal(last.usage?.completion_tokens, 3); // "OK", "!", <|im_end|>
    assert.ok((last.timings?.predicted_per_second ?? 0) > 0, JSON.stringify(last.timings));
    t.diagnostic(`thinking off: ${JSON.stringify(r.content)}, ${last.timings?.predicted_per_second.toFixed(0)} tokens/s`);
  });

  await t.test('thinking on: reasoning_content first, then content, then stop (temperature 1)', async () => {
    const r = await streamChat(server.url, {
      messages: [{ role: 'user', content: 'Say OK.' }],
      max_tokens: 24,
      temperature: 1, // the chain's logit margin holds even when sampling
    });
    assert.deepEqual(r.order, ['reasoning', 'content']);
    assert.equal(r.reasoning, 'Okay, the user wants a reply.');
    assert.equal(r.content, 'OK!');
    assert.equal(r.finish, 'stop');
    const last = r.chunks.at(-1)!;
    assert.ok((last.usage?.completion_tokens ?? 0) <= 20, JSON.stringify(last.usage));
    assert.ok((last.timings?.predicted_per_second ?? 0) > 0, JSON.stringify(last.timings));
    t.diagnostic(`thinking on: reasoning ${JSON.stringify(r.reasoning)}, content ${JSON.stringify(r.content)}, ${last.usage?.completion_tokens} tokens, ${last.timings?.predicted_per_second.toFixed(0)} tokens/s`);
  });
});
