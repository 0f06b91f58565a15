// The simulator in-process over real HTTP on 127.0.0.1: wire shapes (vLLM's, see
// src/sim/completion.ts), timing truth and every fault but a real crash (sim-process.test.ts).
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startSim, type RunningSim, type SimOptions } from '../../src/sim/server.ts';

const running = new Set<RunningSim>();
after(() => Promise.all([...running].map((s) => s.close())));

async function sim(options: Partial<SimOptions> = {}): Promise<RunningSim> {
  const s = await startSim({ host: '127.0.0.1', port: 0, ttftMs: 20, tokensPerSecond: 1000, onCrash: () => {}, ...options });
  running.add(s);
  return s;
}

const ask = (extra: Record<string, unknown> = {}) => ({ messages: [{ role: 'user', content: 'Who are you?' }], ...extra });

function post(s: RunningSim, path: string, body: unknown, timeoutMs = 5000) {
  return fetch(s.url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
}

interface Event {
  at: number; // ms since the request was sent
  data: string;
}
/** Streams a completion, timestamping every SSE event as it arrives. */
async function stream(s: RunningSim, body: Record<string, unknown>, timeoutMs = 10_000): Promise<Event[]> {
  const start = performance.now();
  const res = await post(s, '/v1/chat/completions', { ...body, stream: true }, timeoutMs);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
  const events: Event[] = [];
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const bytes of res.body!) {
    const at = performance.now() - start;
    buffer += decoder.decode(bytes as Uint8Array, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const frame = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      assert.ok(frame.startsWith('data: '), frame);
      events.push({ at, data: frame.slice(6) });
    }
  }
  return events;
}
/** Response bodies are untyped JSON here; the assertions check their shape. */
const jsonOf = async (res: Response | Promise<Response>): Promise<any> => (await res).json();
const chunksOf = (events: Event[]) => events.filter((e) => e.data !== '[DONE]').map((e) => JSON.parse(e.data));
const deltaText = (c: any) => c.choices[0]?.delta?.content || c.choices[0]?.delta?.reasoning_content || '';

describe('sim: vLLM wire shapes', () => {
  test('GET /v1/models lists the served model as vLLM does; /health answers 200 empty', async () => {
    const s = await sim({ model: 'Qwen/Qwen3-0.6B' });
    const models = await jsonOf(fetch(`${s.url}/v1/models`));
    assert.equal(models.object, 'list');
    assert.equal(models.data.length, 1);
    assert.deepEqual(
      { ...models.data[0], created: 0, permission: [] },
      { id: 'Qwen/Qwen3-0.6B', object: 'model', created: 0, owned_by: 'vllm', root: 'Qwen/Qwen3-0.6B', parent: null, max_model_len: 40960, permission: [] },
    );
    assert.equal(models.data[0].permission[0].object, 'model_permission');
    const health = await fetch(`${s.url}/health`);
    assert.equal(health.status, 200);
    assert.equal(await health.text(), '');
  });

  test('streamed: role chunk first, deltas, finish chunk, usage only with include_usage, [DONE] last', async () => {
    const s = await sim();
    const events = await stream(s, ask({ max_tokens: 5, chat_template_kwargs: { enable_thinking: false }, stream_options: { include_usage: true } }));
    assert.equal(events.at(-1)!.data, '[DONE]');
    const chunks = chunksOf(events);
    for (const c of chunks) {
      assert.match(c.id, /^chatcmpl-/);
      assert.equal(c.object, 'chat.completion.chunk');
      assert.equal(c.model, 'Qwen/Qwen3-0.6B');
      assert.equal(c.id, chunks[0].id);
    }
    assert.deepEqual(chunks[0].choices, [{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }]);
    const tokens = chunks.slice(1, -1);
    assert.equal(tokens.length, 5);
    assert.equal(tokens.map((c) => c.choices[0].delta.content).join(''), 'I am Qwen, a large');
    assert.deepEqual(tokens.map((c) => c.choices[0].finish_reason), [null, null, null, null, 'length']);
    assert.deepEqual(chunks.at(-1), { ...chunks.at(-1), choices: [] });
    assert.equal(chunks.at(-1).usage.completion_tokens, 5);
    assert.equal(chunks.at(-1).usage.total_tokens, chunks.at(-1).usage.prompt_tokens + 5);

    const plain = chunksOf(await stream(s, ask({ max_tokens: 3 })));
    assert.ok(plain.every((c) => c.choices.length === 1 && c.usage === undefined), 'no usage chunk without include_usage');
  });

  test('a reply that runs to its end finishes "stop"', async () => {
    const s = await sim();
    const chunks = chunksOf(await stream(s, ask({ chat_template_kwargs: { enable_thinking: false } })));
    assert.equal(chunks.at(-1).choices[0].finish_reason, 'stop');
    assert.match(chunks.map((c) => c.choices[0].delta.content ?? '').join(''), /^I am Qwen, a large language model created by Alibaba Cloud\./);
  });

  test('thinking on by default: reasoning_content deltas before content; off: none', async () => {
    const s = await sim();
    const on = chunksOf(await stream(s, ask({ max_tokens: 30 }))).slice(1);
    const kinds = on.map((c) => ('reasoning_content' in c.choices[0].delta ? 'r' : 'c')).join('');
    assert.match(kinds, /^r+c+$/);
    const off = chunksOf(await stream(s, ask({ max_tokens: 30, chat_template_kwargs: { enable_thinking: false } })));
    assert.ok(off.every((c) => !('reasoning_content' in c.choices[0].delta)));
  });

  test('non-streamed: a chat.completion with message, reasoning_content and usage', async () => {
    const s = await sim();
    const res = await post(s, '/v1/chat/completions', ask({ max_completion_tokens: 14 }));
    assert.equal(res.status, 200);
    const body = await jsonOf(res);
    assert.equal(body.object, 'chat.completion');
    assert.match(body.id, /^chatcmpl-/);
    const [choice] = body.choices;
    assert.equal(choice.message.role, 'assistant');
    assert.ok(choice.message.reasoning_content.startsWith('Okay,'));
    assert.equal(choice.finish_reason, 'length');
    assert.equal(body.usage.completion_tokens, 14);
    const off = await jsonOf(post(s, '/v1/chat/completions', ask({ chat_template_kwargs: { enable_thinking: false } })));
    assert.equal(off.choices[0].message.reasoning_content, undefined);
    assert.equal(off.choices[0].finish_reason, 'stop');
    assert.ok(off.choices[0].message.content.startsWith('I am Qwen'));
  });

  test('bad requests answer in vLLM error shape: 400 invalid JSON / no messages, 404 unknown model', async () => {
    const s = await sim();
    for (const [body, status, type] of [
      ['{nope', 400, 'BadRequestError'],
      [{ model: 'Qwen/Qwen3-0.6B' }, 400, 'BadRequestError'],
      [ask({ max_tokens: 0 }), 400, 'BadRequestError'],
      [ask({ model: 'gpt-4' }), 404, 'NotFoundError'],
    ] as const) {
      const res = await post(s, '/v1/chat/completions', body);
      assert.equal(res.status, status);
      const { error } = await jsonOf(res);
      assert.equal(error.type, type);
      assert.equal(error.code, status);
      assert.equal(error.param, null);
      assert.equal(typeof error.message, 'string');
    }
    const missing = await fetch(`${s.url}/v1/nothing`);
    assert.equal(missing.status, 404);
    assert.deepEqual(await missing.json(), { detail: 'Not Found' });
  });
});

describe('sim: timing truth', () => {
  test('ttft 300ms and 20 tok/s are what a client measures', async () => {
    const s = await sim({ ttftMs: 300, tokensPerSecond: 20 });
    const events = await stream(s, ask({ max_tokens: 21, chat_template_kwargs: { enable_thinking: false } }));
    const tokens = events.filter((e) => e.data !== '[DONE]' && deltaText(JSON.parse(e.data)) !== '');
    assert.equal(tokens.length, 21);
    const ttft = tokens[0]!.at;
    const rate = (tokens.length - 1) / ((tokens.at(-1)!.at - tokens[0]!.at) / 1000);
    assert.ok(ttft >= 290 && ttft < 700, `ttft ${ttft.toFixed(0)}ms`);
    assert.ok(rate > 14 && rate < 26, `rate ${rate.toFixed(1)} tok/s`);
    // The role chunk comes with the first output, not at once.
    assert.ok(events[0]!.at >= 290, `role chunk at ${events[0]!.at.toFixed(0)}ms`);
  });

  test('non-streamed answers after ttft + (n-1)/rate', async () => {
    const s = await sim({ ttftMs: 200, tokensPerSecond: 20 });
    const start = performance.now();
    const res = await post(s, '/v1/chat/completions', ask({ max_tokens: 11 }));
    await res.json();
    const took = performance.now() - start;
    assert.ok(took >= 680 && took < 1400, `took ${took.toFixed(0)}ms, expected ~700ms`);
  });
});

describe('sim: faults', () => {
  test('hang: /v1/* and /health never answer; /sim/fault still does; back to none answers again', async () => {
    const s = await sim({ fault: 'hang' });
    for (const path of ['/health', '/v1/models']) {
      await assert.rejects(fetch(s.url + path, { signal: AbortSignal.timeout(500) }), { name: 'TimeoutError' });
    }
    await assert.rejects(post(s, '/v1/chat/completions', ask({ stream: true }), 500), { name: 'TimeoutError' });
    assert.deepEqual(await (await fetch(`${s.url}/sim/fault`)).json(), { fault: 'hang' });
    const reset = await post(s, '/sim/fault', { fault: 'none' });
    assert.deepEqual(await reset.json(), { fault: 'none' });
    assert.equal((await fetch(`${s.url}/health`, { signal: AbortSignal.timeout(2000) })).status, 200);
  });

  test('hang-generation: models and health 200, stream headers 200 then silence, non-streamed never answers', async () => {
    const s = await sim({ fault: 'hang-generation' });
    assert.equal((await fetch(`${s.url}/v1/models`, { signal: AbortSignal.timeout(2000) })).status, 200);
    assert.equal((await fetch(`${s.url}/health`, { signal: AbortSignal.timeout(2000) })).status, 200);
    const controller = new AbortController();
    const res = await fetch(`${s.url}/v1/chat/completions`, {
      method: 'POST',
      body: JSON.stringify(ask({ stream: true })),
      signal: AbortSignal.any([controller.signal, AbortSignal.timeout(5000)]),
    });
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    const silent = await Promise.race([reader.read().then(() => false), new Promise<boolean>((r) => setTimeout(r, 600, true))]);
    assert.ok(silent, 'no data expected from a hung generation');
    controller.abort();
    await assert.rejects(post(s, '/v1/chat/completions', ask(), 500), { name: 'TimeoutError' });
  });

  test('hang-generation set mid-stream stalls a generation under way', async () => {
    const s = await sim({ ttftMs: 10, tokensPerSecond: 20 });
    const res = await post(s, '/v1/chat/completions', ask({ stream: true }));
    const reader = res.body!.getReader();
    await reader.read(); // first output is out
    s.setFault('hang-generation');
    const drain = async () => {
      for (;;) if ((await reader.read()).done) return 'ended';
    };
    const outcome = await Promise.race([drain(), new Promise((r) => setTimeout(r, 800, 'stalled'))]);
    assert.equal(outcome, 'stalled');
    await reader.cancel();
  });

  test('error: completions answer 500 in vLLM shape, health stays 200; mid-stream it arrives as a data chunk', async () => {
    const s = await sim({ fault: 'error' });
    for (const stream of [false, true]) {
      const res = await post(s, '/v1/chat/completions', ask({ stream }));
      assert.equal(res.status, 500);
      const { error } = await jsonOf(res);
      assert.deepEqual({ ...error, message: '' }, { message: '', type: 'InternalServerError', param: null, code: 500 });
    }
    assert.equal((await fetch(`${s.url}/health`)).status, 200);

    s.setFault('none');
    const res = await post(s, '/v1/chat/completions', ask({ stream: true }));
    const reader = res.body!.getReader();
    await reader.read();
    s.setFault('error');
    let text = '';
    for (let r = await reader.read(); !r.done; r = await reader.read()) text += new TextDecoder().decode(r.value);
    assert.match(text, /data: \{"error":\{"message":".*","type":"InternalServerError","param":null,"code":500\}\}\n\ndata: \[DONE\]\n\n$/);
  });

  test('slow: tokens come at a tenth of the rate', async () => {
    const s = await sim({ ttftMs: 50, tokensPerSecond: 20, fault: 'slow' });
    const events = await stream(s, ask({ max_tokens: 4, chat_template_kwargs: { enable_thinking: false } }));
    const tokens = events.filter((e) => e.data !== '[DONE]' && deltaText(JSON.parse(e.data)) !== '');
    const rate = (tokens.length - 1) / ((tokens.at(-1)!.at - tokens[0]!.at) / 1000);
    assert.ok(rate > 1.5 && rate < 2.6, `rate ${rate.toFixed(2)} tok/s, expected ~2`);
  });

  test('runtime switch via POST /sim/fault; an unknown fault is a 400 and changes nothing', async () => {
    const s = await sim();
    assert.equal((await post(s, '/sim/fault', { fault: 'error' })).status, 200);
    assert.equal(s.fault, 'error');
    assert.equal((await post(s, '/v1/chat/completions', ask())).status, 500);
    const bad = await post(s, '/sim/fault', { fault: 'explode' });
    assert.equal(bad.status, 400);
    assert.match((await jsonOf(bad)).error.message, /hang-generation/);
    assert.equal((await post(s, '/sim/fault', '{oops')).status, 400);
    assert.deepEqual(await (await fetch(`${s.url}/sim/fault`)).json(), { fault: 'error' });
    await post(s, '/sim/fault', { fault: 'none' });
    assert.equal((await post(s, '/v1/chat/completions', ask())).status, 200);
  });

  test('crash: onCrash runs at start, after setFault, and after answering POST /sim/fault', async () => {
    let crashes = 0;
    await sim({ fault: 'crash', onCrash: () => crashes++ });
    assert.equal(crashes, 1);
    const s = await sim({ onCrash: () => crashes++ });
    s.setFault('crash');
    await new Promise((r) => setImmediate(r));
    assert.equal(crashes, 2);
    s.setFault('none');
    const res = await post(s, '/sim/fault', { fault: 'crash' });
    assert.equal(res.status, 200);
    await res.json();
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(crashes, 3);
  });

  test('startup-delay: accepted during loading, answered only once loaded', async () => {
    const start = performance.now();
    const s = await sim({ startupDelayMs: 800 });
    const early = fetch(`${s.url}/health`, { signal: AbortSignal.timeout(5000) });
    await assert.rejects(fetch(`${s.url}/v1/models`, { signal: AbortSignal.timeout(300) }), { name: 'TimeoutError' });
    assert.equal((await early).status, 200);
    const waited = performance.now() - start;
    assert.ok(waited >= 780 && waited < 3000, `answered after ${waited.toFixed(0)}ms`);
  });

  test('close() is prompt with hung connections open', async () => {
    const s = await sim({ fault: 'hang' });
    running.delete(s);
    const hung = fetch(`${s.url}/health`).catch(() => 'closed');
    await new Promise((r) => setTimeout(r, 100));
    const start = performance.now();
    await s.close();
    assert.ok(performance.now() - start < 1000);
    assert.equal(await hung, 'closed');
  });
});

test('a request body over 1 MiB is refused by closing the connection; the simulator keeps serving', async () => {
  const s = await sim();
  const huge = JSON.stringify(ask({ padding: 'x'.repeat(2 << 20) }));
  await assert.rejects(post(s, '/v1/chat/completions', huge));
  const res = await fetch(`${s.url}/v1/models`);
  assert.equal(res.status, 200);
});
