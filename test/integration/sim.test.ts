// The simulator in-process over real HTTP on 127.0.0.1: each flavor's wire shapes, start-up, auth,
// health and progress endpoints, and the faults (a real crash: sim-process.test.ts). Timing is
// exact in test/unit/sim-engine.test.ts; here only order and shape are asserted.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { startSim, type RunningSim, type SimOptions } from '../../src/sim/server.ts';
import { freePort } from '../../src/lib/system.ts';
import { flavorNames } from '../../src/sim/flavors/index.ts';

const running = new Set<RunningSim>();
after(() => Promise.all([...running].map((s) => s.close())));

async function sim(options: Partial<SimOptions> = {}): Promise<RunningSim> {
  const s = await startSim({ host: '127.0.0.1', port: 0, ttftMs: 10, tokensPerSecond: 1000, onCrash: () => {}, ...options });
  running.add(s);
  await s.ready;
  return s;
}

const ask = (extra: Record<string, unknown> = {}) => ({ messages: [{ role: 'user', content: 'Who are you?' }], ...extra });
const off = { chat_template_kwargs: { enable_thinking: false } };

function post(s: RunningSim, path: string, body: unknown, init: { timeoutMs?: number; headers?: Record<string, string> } = {}) {
  return fetch(s.url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...init.headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(init.timeoutMs ?? 5000),
  });
}

/** Streams a completion and returns its SSE data payloads, [DONE] included. */
async function stream(s: RunningSim, body: Record<string, unknown>, headers: Record<string, string> = {}): Promise<string[]> {
  const res = await post(s, '/v1/chat/completions', { ...body, stream: true }, { headers });
  assert.equal(res.status, 200, await res.clone().text());
  assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
  const text = await res.text();
  return text.split('\n\n').filter((f) => f !== '').map((f) => (assert.ok(f.startsWith('data: '), f), f.slice(6)));
}
const chunksOf = (events: string[]) => events.filter((e) => e !== '[DONE]').map((e) => JSON.parse(e));
const json = async (res: Response | Promise<Response>): Promise<any> => (await res).json(); // eslint-disable-line @typescript-eslint/no-explicit-any
const get = (s: RunningSim, path: string, timeoutMs = 3000) => fetch(s.url + path, { signal: AbortSignal.timeout(timeoutMs) });
const refused = (url: string) => fetch(url, { signal: AbortSignal.timeout(2000) }).then(() => false, (err: { cause?: { code?: string } }) => err.cause?.code === 'ECONNREFUSED');

describe('vllm flavor', () => {
  test('listing as vLLM answers; /health 200 with an empty body', async () => {
    const s = await sim({ flavor: 'vllm' });
    const models = await json(get(s, '/v1/models'));
    assert.deepEqual({ ...models.data[0], created: 0, permission: [] }, { id: 'Qwen/Qwen3-0.6B', object: 'model', created: 0, owned_by: 'vllm', root: 'Qwen/Qwen3-0.6B', parent: null, max_model_len: 40960, permission: [] });
    const health = await get(s, '/health');
    assert.deepEqual([health.status, await health.text()], [200, '']);
  });

  test('stream: role chunk with the first output, reasoning with its deprecated copy, one token per chunk, usage from usage', async () => {
    const s = await sim({ flavor: 'vllm' });
    const events = await stream(s, ask({ max_tokens: 30, stream_options: { include_usage: true } }));
    assert.equal(events.at(-1), '[DONE]');
    const chunks = chunksOf(events);
    assert.deepEqual(chunks[0].choices, [{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }]);
    const deltas = chunks.slice(1, -1).map((c) => c.choices[0].delta);
    assert.ok(deltas.some((d) => d.reasoning && d.reasoning === d.reasoning_content), 'delta.reasoning with the reasoning_content copy');
    assert.ok(deltas.some((d) => d.content), 'then content');
    // --stream-interval 1: every shown token its own chunk; <think>, \n, </think> and \n\n none.
    assert.equal(deltas.length, 30 - 4, '30 tokens, 4 of them hidden');
    assert.equal(chunks.at(-2).choices[0].finish_reason, 'length');
    assert.deepEqual({ ...chunks.at(-1), usage: undefined }, { ...chunks.at(-1), choices: [], usage: undefined });
    assert.equal(chunks.at(-1).usage.completion_tokens, 30);
  });

  test('--stream-interval N: N tokens per chunk after the first', async () => {
    const s = await sim({ flavor: 'vllm', streamInterval: 4 });
    const chunks = chunksOf(await stream(s, ask({ ...off, max_tokens: 21, stream_options: { include_usage: true } })));
    const pieces = chunks.slice(1, -1).map((c) => c.choices[0].delta.content);
    assert.deepEqual(pieces.map((p) => p.split(' ').length - (p.startsWith(' ') ? 1 : 0)), [1, 4, 4, 4, 4, 4]);
    assert.equal(chunks.at(-1).usage.completion_tokens, 21);
  });

  test('non-streamed: message.reasoning (and its copy); thinking off through chat_template_kwargs', async () => {
    const s = await sim({ flavor: 'vllm' });
    const on = await json(post(s, '/v1/chat/completions', ask({ max_tokens: 14 })));
    assert.ok(on.choices[0].message.reasoning.startsWith('Okay,'));
    assert.equal(on.choices[0].message.reasoning_content, on.choices[0].message.reasoning);
    const plain = await json(post(s, '/v1/chat/completions', ask(off)));
    assert.equal(plain.choices[0].message.reasoning, null);
    assert.equal(plain.choices[0].finish_reason, 'stop');
    assert.ok(plain.choices[0].message.content.startsWith('I am Qwen'));
  });

  test('errors in vLLM shape; reasoning_effort "none" is refused as vLLM refuses it', async () => {
    const s = await sim({ flavor: 'vllm' });
    for (const [body, status, type] of [
      ['{nope', 400, 'BadRequestError'],
      [{ model: 'Qwen/Qwen3-0.6B' }, 400, 'BadRequestError'],
      [ask({ max_tokens: 0 }), 400, 'BadRequestError'],
      [ask({ reasoning_effort: 'none' }), 400, 'BadRequestError'],
      [ask({ model: 'gpt-4' }), 404, 'NotFoundError'],
    ] as const) {
      const res = await post(s, '/v1/chat/completions', body);
      assert.equal(res.status, status, JSON.stringify(body));
      const { error } = await json(res);
      assert.deepEqual([error.type, error.code, error.param, typeof error.message], [type, status, null, 'string']);
    }
    assert.deepEqual(await json(get(s, '/v1/nothing')), { detail: 'Not Found' });
  });

  test('loading: connections are refused, exactly as for a crashed server, until the model is in', async () => {
    const port = await freePort('127.0.0.1');
    const s = await startSim({ host: '127.0.0.1', port, flavor: 'vllm', startupDelayMs: 800, onCrash: () => {} });
    running.add(s);
    assert.ok(await refused(`${s.url}/health`), 'refused while loading');
    await s.ready;
    assert.equal((await get(s, '/health')).status, 200);
  });

  test('--api-key: 401 {"error":"Unauthorized"} on /v1/*, /health and /metrics stay public', async () => {
    const s = await sim({ flavor: 'vllm', apiKey: 'sk-sim-test' });
    const res = await get(s, '/v1/models');
    assert.deepEqual([res.status, await res.json()], [401, { error: 'Unauthorized' }]);
    assert.equal((await post(s, '/v1/chat/completions', ask())).status, 401);
    assert.equal((await fetch(`${s.url}/v1/models`, { headers: { authorization: 'Bearer sk-sim-test' } })).status, 200);
    assert.equal((await get(s, '/health')).status, 200);
    assert.equal((await get(s, '/metrics')).status, 200);
  });

  test('engine-dead: /health 503, chat 500 with an empty body, the listing 200', async () => {
    const s = await sim({ flavor: 'vllm', fault: 'engine-dead' });
    assert.equal((await get(s, '/health')).status, 503);
    assert.equal((await get(s, '/v1/models')).status, 200);
    const chat = await post(s, '/v1/chat/completions', ask({ stream: true }));
    assert.deepEqual([chat.status, await chat.text()], [500, '']);
  });

  test('/metrics is the progress signal: saturated keeps generating while a request waits; paused and asleep say so', async () => {
    const s = await sim({ flavor: 'vllm', slots: 2, fault: 'saturated' });
    const metric = (text: string, name: string) => Number(new RegExp(`^${name}\\{[^}]*\\} (\\S+)$`, 'm').exec(text)?.[1]);
    const waiting = post(s, '/v1/chat/completions', ask({ stream: true }), { timeoutMs: 10_000 });
    const res = await waiting;
    assert.equal(res.status, 200, 'vLLM sends the headers at once');
    const first = await (await get(s, '/metrics')).text();
    await new Promise((r) => setTimeout(r, 100));
    const second = await (await get(s, '/metrics')).text();
    assert.equal(metric(second, 'vllm:num_requests_waiting'), 1);
    assert.equal(metric(second, 'vllm:num_requests_running'), 2);
    assert.ok(metric(second, 'vllm:generation_tokens_total') > metric(first, 'vllm:generation_tokens_total'), 'the engine still generates');
    s.setFault('none');
    assert.match(await res.text(), /data: \[DONE\]/, 'the queued request is served once the load is gone');
    s.setFault('paused');
    assert.deepEqual(await json(get(s, '/is_paused')), { is_paused: true });
    assert.equal((await get(s, '/health')).status, 200);
    s.setFault('asleep');
    assert.deepEqual(await json(get(s, '/is_sleeping')), { is_sleeping: true });
    assert.match(await (await get(s, '/metrics')).text(), /^vllm:engine_sleep_state\{[^}]*sleep_state="awake"\} 0$/m);
  });
});

describe('sglang flavor', () => {
  test('refused while loading, then /health 503 while warming up, then 200', async () => {
    const port = await freePort('127.0.0.1');
    const s = await startSim({ host: '127.0.0.1', port, flavor: 'sglang', startupDelayMs: 600, onCrash: () => {} });
    running.add(s);
    assert.ok(await refused(`${s.url}/health`));
    await s.ready;
    assert.equal((await get(s, '/health')).status, 503, 'warming up');
    assert.equal((await get(s, '/v1/models')).status, 200, 'the rest already answers');
    await new Promise((r) => setTimeout(r, 700));
    assert.equal((await get(s, '/health')).status, 200);
  });

  test('reasoning_content deltas, a separate finish chunk with matched_stop, flat errors, its own metrics and key rules', async () => {
    const s = await sim({ flavor: 'sglang', apiKey: 'sk-sim-test' });
    const auth = { authorization: 'Bearer sk-sim-test' };
    const chunks = chunksOf(await stream(s, ask({ stream_options: { include_usage: true } }), auth));
    assert.ok(chunks.some((c) => c.choices[0]?.delta.reasoning_content));
    assert.ok(!chunks.some((c) => c.choices[0]?.delta.reasoning), 'no `reasoning` field');
    assert.deepEqual(chunks.at(-2).choices[0], { index: 0, delta: {}, logprobs: null, finish_reason: 'stop', matched_stop: 151645 });
    const bad = await post(s, '/v1/chat/completions', { model: 'x', messages: [] }, { headers: auth });
    assert.equal(bad.status, 404);
    assert.deepEqual({ ...((await bad.json()) as object), message: '' }, { object: 'error', message: '', type: 'NotFoundError', param: null, code: 404 });
    assert.equal((await get(s, '/v1/models')).status, 401, 'SGLang guards everything but /health* and /metrics*');
    assert.equal((await get(s, '/health_generate')).status, 200);
    assert.match(await (await get(s, '/metrics')).text(), /^sglang:generation_tokens_total\{[^}]*\} \d+$/m);
  });
});

describe('sglang flavor: --api-key', () => {
  test('/health*, /ready* and /metrics* stay open; the rest wants the key; an admin-only path wants an admin key it does not have', async () => {
    const s = await sim({ flavor: 'sglang', apiKey: 'sk-sim-test' });
    const auth = { headers: { authorization: 'Bearer sk-sim-test' }, signal: AbortSignal.timeout(3000) };
    assert.deepEqual([(await get(s, '/health')).status, (await get(s, '/health_generate')).status, (await get(s, '/metrics')).status], [200, 200, 200]);
    // Open by prefix (utils/auth.py): no 401, and no route either.
    assert.deepEqual(await json(get(s, '/ready')), { detail: 'Not Found' });
    for (const path of ['/v1/models', '/get_model_info', '/hicache/storage-backend']) {
      const res = await get(s, path);
      assert.deepEqual([path, res.status, await res.json()], [path, 401, { error: 'Unauthorized' }]);
    }
    assert.equal((await fetch(`${s.url}/v1/models`, auth)).status, 200);
    const admin = await fetch(`${s.url}/hicache/storage-backend`, auth);
    assert.equal(admin.status, 400, 'the key opens the door, the handler wants --admin-api-key');
    assert.match((await json(admin)).error, /requires admin API key/);
  });
});

describe('llamacpp flavor', () => {
  test('503 "Loading model" on every path while loading, before the key is checked', async () => {
    const s = await sim({ flavor: 'llamacpp', startupDelayMs: 800, apiKey: 'sk-sim-test' });
    for (const path of ['/health', '/v1/models']) {
      const res = await get(s, path);
      assert.deepEqual([res.status, await res.json()], [503, { error: { code: 503, message: 'Loading model', type: 'unavailable_error' } }]);
    }
    await new Promise((r) => setTimeout(r, 900));
    assert.deepEqual(await json(get(s, '/health')), { status: 'ok' });
    const denied = await get(s, '/v1/models');
    assert.deepEqual([denied.status, await denied.json()], [401, { error: { message: 'Invalid API Key', type: 'authentication_error', code: 401 } }]);
    assert.equal((await fetch(`${s.url}/v1/models`, { headers: { 'x-api-key': 'sk-sim-test' } })).status, 200);
  });

  test('stream: role chunk with content null, no delta for EOS, a finish chunk, timings and system_fingerprint', async () => {
    const s = await sim({ flavor: 'llamacpp' });
    const chunks = chunksOf(await stream(s, ask(off)));
    assert.ok(chunks.every((c) => c.system_fingerprint === 'b1-80fb11a'));
    assert.deepEqual(chunks[0].choices, [{ finish_reason: null, index: 0, delta: { role: 'assistant', content: null } }]);
    assert.deepEqual(chunks.at(-1).choices, [{ finish_reason: 'stop', index: 0, delta: {} }]);
    assert.ok(chunks.at(-1).timings.predicted_per_second > 0);
    assert.equal(chunks.at(-1).timings.predicted_n, chunks.slice(1, -1).length + 1, 'EOS is counted, not sent');
    const withUsage = chunksOf(await stream(s, ask({ ...off, stream_options: { include_usage: true } })));
    assert.deepEqual(withUsage.at(-1).choices, []);
    assert.ok(withUsage.at(-1).timings && withUsage.at(-1).usage.prompt_tokens_details, 'usage then carries the timings');
  });

  test('stream: the role chunk comes with the first token, not when the slot takes the request (as the real server sends it)', async () => {
    const s = await sim({ flavor: 'llamacpp', ttftMs: 300 });
    const sent = performance.now();
    const res = await post(s, '/v1/chat/completions', ask({ ...off, stream: true }));
    const reader = res.body!.getReader();
    const first = await reader.read();
    const firstAt = performance.now() - sent;
    await reader.cancel();
    assert.match(new TextDecoder().decode(first.value), /"role":"assistant"/);
    // A lower bound only: a busy machine delays the chunk further, never earlier.
    assert.ok(firstAt >= 250, `the role chunk came ${firstAt.toFixed(0)} ms after the request, before the first token (TTFT 300 ms)`);
  });

  test('one slot: a second request gets no headers until a slot frees; /metrics says it is deferred', async () => {
    const s = await sim({ flavor: 'llamacpp', tokensPerSecond: 20 });
    const first = post(s, '/v1/chat/completions', ask({ stream: true, max_tokens: 10 }), { timeoutMs: 10_000 });
    await new Promise((r) => setTimeout(r, 50));
    const second = post(s, '/v1/chat/completions', ask({ stream: true, max_tokens: 1 }), { timeoutMs: 10_000 });
    const early = await Promise.race([second.then(() => 'headers'), new Promise((r) => setTimeout(r, 150, 'waiting'))]);
    assert.equal(early, 'waiting');
    assert.match(await (await get(s, '/metrics')).text(), /^llamacpp:requests_deferred\{\} 1$/m);
    await (await first).text();
    assert.equal((await second).status, 200);
  });

  test('a hung decode loop: /health still ok, /slots and /metrics hang with it', async () => {
    const s = await sim({ flavor: 'llamacpp', fault: 'hang-generation' });
    assert.deepEqual(await json(get(s, '/health')), { status: 'ok' });
    await assert.rejects(get(s, '/metrics', 300), { name: 'TimeoutError' });
    await assert.rejects(get(s, '/slots', 300), { name: 'TimeoutError' });
    assert.equal((await json(get(s, '/props'))).total_slots, 1);
  });

  test('the listing: the model path as id, listed under aliases too; --alias names it (the first, sorted)', async () => {
    const plain = await sim({ flavor: 'llamacpp', model: '/models/tiny.gguf' });
    const one = (await json(get(plain, '/v1/models'))).data[0];
    assert.deepEqual([one.id, one.aliases, one.owned_by], ['/models/tiny.gguf', ['/models/tiny.gguf'], 'llamacpp']);
    assert.deepEqual(Object.keys(one.meta), ['vocab_type', 'n_vocab', 'n_ctx', 'n_ctx_train', 'n_embd', 'n_params', 'size', 'ftype']);
    const named = await sim({ flavor: 'llamacpp', model: '/models/tiny.gguf', aliases: ['zeta', 'alpha', 'zeta'] });
    const listing = await json(get(named, '/v1/models'));
    assert.deepEqual([listing.data[0].id, listing.data[0].aliases, listing.models[0].name], ['alpha', ['alpha', 'zeta'], 'alpha']);
    const props = await json(get(named, '/props'));
    assert.deepEqual([props.model_alias, props.model_path], ['alpha', '/models/tiny.gguf']);
    const reply = await json(post(named, '/v1/chat/completions', ask({ ...off, model: 'anything', max_tokens: 2 })));
    assert.equal(reply.model, 'alpha', 'the request\'s model is ignored; the answer names the id');
  });

  test('/props: the 19 keys of llama-server 80fb11a', async () => {
    const s = await sim({ flavor: 'llamacpp' });
    const props = await json(get(s, '/props'));
    assert.deepEqual(Object.keys(props), ['default_generation_settings', 'total_slots', 'model_alias', 'model_ftype', 'model_path', 'modalities', 'media_marker', 'endpoint_slots', 'endpoint_props', 'endpoint_metrics', 'ui', 'ui_settings', 'chat_template', 'chat_template_caps', 'bos_token', 'eos_token', 'build_info', 'is_sleeping', 'cors_proxy_enabled']);
    assert.deepEqual([props.model_path, props.model_alias, props.is_sleeping, props.default_generation_settings.n_ctx], ['/models/Qwen3-0.6B-Q8_0.gguf', '/models/Qwen3-0.6B-Q8_0.gguf', false, 4096]);
  });

  test('requests as llama-server reads them: invalid JSON 500, max_tokens 0 one token, empty messages 200, a bad max_tokens 400', async () => {
    const s = await sim({ flavor: 'llamacpp' });
    const broken = await post(s, '/v1/chat/completions', '{nope');
    const error = (await json(broken)).error;
    assert.deepEqual([broken.status, error.code, error.type], [500, 500, 'server_error']);
    assert.match(error.message, /^\[json\.exception\.parse_error\.101\] parse error/);
    // max_tokens 0: the token sampled after the prompt is still decoded; with thinking on it is <think>.
    const zero = chunksOf(await stream(s, ask({ max_tokens: 0, stream_options: { include_usage: true } })));
    assert.deepEqual(zero.map((c) => c.choices[0]?.delta ?? 'usage'), [{ role: 'assistant', content: null }, {}, 'usage']);
    assert.deepEqual([zero.at(-2).choices[0].finish_reason, zero.at(-1).usage.completion_tokens], ['length', 1]);
    const plainZero = await json(post(s, '/v1/chat/completions', ask({ ...off, max_tokens: 0 })));
    assert.deepEqual([plainZero.choices[0].message.content, plainZero.choices[0].finish_reason, plainZero.usage.completion_tokens], ['I', 'length', 1]);
    assert.equal((await json(post(s, '/v1/chat/completions', { messages: [], ...off }))).choices[0].finish_reason, 'stop');
    for (const [body, message] of [[ask({ max_tokens: 'x' }), "Field 'max_tokens': [json.exception.type_error.302] type must be number, but is string"], [{}, "'messages' is required"], [[1], "'messages' is required"]] as const) {
      const res = await post(s, '/v1/chat/completions', body);
      assert.deepEqual([res.status, await res.json()], [400, { error: { code: 400, message, type: 'invalid_request_error' } }]);
    }
    assert.equal((await json(post(s, '/v1/chat/completions', ask({ ...off, max_tokens: -1 })))).choices[0].finish_reason, 'stop', 'negative: no limit');
  });

  test("cpp-httplib's headers: Server, Content-Length, no Date; streams unbuffered; errors close the connection", async () => {
    const s = await sim({ flavor: 'llamacpp' });
    const models = await get(s, '/v1/models');
    const body = await models.text();
    assert.deepEqual([models.headers.get('server'), models.headers.get('content-type'), models.headers.get('content-length'), models.headers.get('date')], ['llama.cpp', 'application/json; charset=utf-8', String(Buffer.byteLength(body)), null]);
    const streamed = await post(s, '/v1/chat/completions', ask({ ...off, stream: true, max_tokens: 2 }));
    assert.deepEqual([streamed.headers.get('content-type'), streamed.headers.get('x-accel-buffering'), streamed.headers.get('content-length'), streamed.headers.get('server')], ['text/event-stream', 'no', null, 'llama.cpp']);
    await streamed.text();
    const missing = await get(s, '/nothing');
    assert.deepEqual([missing.status, missing.headers.get('connection'), await missing.json()], [404, 'close', { error: { message: 'File Not Found', type: 'not_found_error', code: 404 } }]);
  });
});

describe('ollama flavor', () => {
  test('native endpoints; the listing is every model on disk, an embedding model first', async () => {
    const s = await sim({ flavor: 'ollama' });
    assert.equal(await (await get(s, '/')).text(), 'Ollama is running');
    assert.deepEqual((await json(get(s, '/v1/models'))).data.map((m: { id: string }) => m.id), ['nomic-embed-text:latest', 'qwen3:0.6b']);
    assert.deepEqual(await json(get(s, '/api/ps')), { models: [] }, 'nothing loaded yet');
    assert.equal((await json(get(s, '/api/tags'))).models.length, 2);
  });

  test('loads on the first request: no headers until the first token; /api/ps lists it afterwards', async () => {
    const s = await sim({ flavor: 'ollama', startupDelayMs: 600 });
    const started = performance.now();
    const res = await post(s, '/v1/chat/completions', ask({ model: 'qwen3:0.6b', stream: true, reasoning_effort: 'none' }), { timeoutMs: 10_000 });
    assert.ok(performance.now() - started >= 590, 'the headers waited for the load and the first token');
    const chunks = chunksOf((await res.text()).split('\n\n').filter((f) => f.startsWith('data: ')).map((f) => f.slice(6)));
    assert.deepEqual(chunks[0].choices[0].delta, { role: 'assistant', content: 'I' });
    assert.ok(chunks.every((c) => c.system_fingerprint === 'fp_ollama' && /^chatcmpl-\d{1,3}$/.test(c.id)));
    assert.ok(!chunks.some((c) => c.choices[0]?.delta.reasoning), 'reasoning_effort "none" turns thinking off');
    assert.equal((await json(get(s, '/api/ps'))).models[0].name, 'qwen3:0.6b');
    // Warm now, and `qwen3` means qwen3:latest... which is not this model: a 404, not a load.
    assert.equal((await post(s, '/v1/chat/completions', ask({ model: 'qwen3', stream: true, max_tokens: 1 }))).status, 404);
  });

  test('a client that gives up while the model loads aborts the load', async () => {
    const s = await sim({ flavor: 'ollama', startupDelayMs: 1000 });
    await assert.rejects(post(s, '/v1/chat/completions', ask({ model: 'qwen3:0.6b', stream: true }), { timeoutMs: 300 }), { name: 'TimeoutError' });
    await new Promise((r) => setTimeout(r, 900));
    assert.deepEqual(await json(get(s, '/api/ps')), { models: [] }, 'the load was aborted, not finished');
  });

  test('thinking stays on with chat_template_kwargs (Ollama ignores it); an unknown model is a 404 in its shape', async () => {
    const s = await sim({ flavor: 'ollama' });
    const chunks = chunksOf(await stream(s, ask({ model: 'qwen3:0.6b', ...off, max_tokens: 4 })));
    assert.ok(chunks.some((c) => c.choices[0]?.delta.reasoning), 'reasoning, not reasoning_content');
    const missing = await post(s, '/v1/chat/completions', ask({ model: 'llama3' }));
    assert.deepEqual([missing.status, await missing.json()], [404, { error: { message: "model 'llama3' not found", type: 'not_found_error', param: null, code: null } }]);
  });
});

describe('token accounting: usage counts every generated token, deltas show none of the hidden ones', () => {
  // Qwen3 with thinking on: <think> \n, 11 reasoning tokens, </think> \n\n, 21 answer tokens, <|im_end|>.
  const thinkingOn: Record<string, Record<string, unknown>> = { vllm: {}, sglang: {}, llamacpp: {}, ollama: { model: 'qwen3:0.6b' } };
  for (const flavor of flavorNames) {
    test(`${flavor}: 37 tokens, 32 of them shown, no think tag in any delta`, async () => {
      const s = await sim({ flavor });
      const chunks = chunksOf(await stream(s, ask({ ...thinkingOn[flavor], stream_options: { include_usage: true } })));
      const deltas = chunks.flatMap((c) => c.choices.map((choice: { delta: Record<string, unknown> }) => choice.delta));
      const reasoning = deltas.filter((d) => d.reasoning || d.reasoning_content);
      const content = deltas.filter((d) => d.content);
      assert.deepEqual([reasoning.length, content.length], [11, 21]);
      const text = deltas.map((d) => `${d.reasoning ?? d.reasoning_content ?? ''}${d.content ?? ''}`).join('');
      assert.ok(!/<\/?think>|<\|im_end\|>/.test(text), text);
      assert.ok(text.startsWith('Okay,') && text.endsWith('with code.'), text);
      assert.equal(chunks.at(-1).usage.completion_tokens, 37, 'the 5 hidden tokens are counted');
      const plain = await json(post(s, '/v1/chat/completions', ask({ ...thinkingOn[flavor] })));
      assert.equal(plain.usage.completion_tokens, 37);
      assert.ok(plain.choices[0].message.content.startsWith('I am Qwen'), plain.choices[0].message.content);
    });
  }
});

describe('faults', () => {
  test('hang: /v1/* and /health never answer; /sim/fault still does; back to none answers again', async () => {
    const s = await sim({ fault: 'hang' });
    for (const path of ['/health', '/v1/models']) await assert.rejects(get(s, path, 400), { name: 'TimeoutError' });
    assert.deepEqual(await json(get(s, '/sim/fault')), { fault: 'hang' });
    assert.deepEqual(await json(post(s, '/sim/fault', { fault: 'none' })), { fault: 'none' });
    assert.equal((await get(s, '/health')).status, 200);
  });

  test('hang-generation: listing and health 200, stream headers then silence', async () => {
    const s = await sim({ fault: 'hang-generation' });
    assert.equal((await get(s, '/v1/models')).status, 200);
    assert.equal((await get(s, '/health')).status, 200);
    const controller = new AbortController();
    const res = await fetch(`${s.url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify(ask({ stream: true })), signal: controller.signal });
    assert.equal(res.status, 200);
    const silent = await Promise.race([res.body!.getReader().read().then(() => false), new Promise<boolean>((r) => setTimeout(r, 400, true))]);
    assert.ok(silent, 'no data from a hung generation');
    controller.abort();
  });

  test('error: 500 in the flavor\'s shape before the stream; inside it as an error chunk after', async () => {
    const s = await sim({ fault: 'error' });
    const res = await post(s, '/v1/chat/completions', ask({ stream: true }));
    assert.equal(res.status, 500);
    assert.equal((await json(res)).error.type, 'InternalServerError');
    s.setFault('none');
    const live = await post(s, '/v1/chat/completions', ask({ stream: true, max_tokens: 200 }));
    const reader = live.body!.getReader();
    await reader.read();
    s.setFault('error');
    let text = '';
    for (let r = await reader.read(); !r.done; r = await reader.read()) text += new TextDecoder().decode(r.value);
    assert.match(text, /data: \{"error":\{"message":".*","type":"InternalServerError","param":null,"code":500\}\}\n\ndata: \[DONE\]\n\n$/);
  });

  test('runtime switch via POST /sim/fault; an unknown fault is a 400 and changes nothing', async () => {
    const s = await sim();
    assert.equal((await post(s, '/sim/fault', { fault: 'error' })).status, 200);
    const bad = await post(s, '/sim/fault', { fault: 'explode' });
    assert.equal(bad.status, 400);
    assert.match((await json(bad)).error.message as string, /engine-dead/);
    assert.equal((await post(s, '/sim/fault', '{oops')).status, 400);
    assert.deepEqual(await json(get(s, '/sim/fault')), { fault: 'error' });
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
    await (await post(s, '/sim/fault', { fault: 'crash' })).json();
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(crashes, 3);
  });

  test('close() is prompt with hung connections open; a body over 1 MiB is refused and the server keeps serving', async () => {
    const s = await sim();
    await assert.rejects(post(s, '/v1/chat/completions', JSON.stringify(ask({ padding: 'x'.repeat(2 << 20) }))));
    assert.equal((await get(s, '/v1/models')).status, 200);
    s.setFault('hang');
    running.delete(s);
    const hung = fetch(`${s.url}/health`).catch(() => 'closed');
    await new Promise((r) => setTimeout(r, 100));
    await s.close();
    assert.equal(await hung, 'closed');
  });
});
