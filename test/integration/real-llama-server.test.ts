// The real llama.cpp llama-server (built by test/real-server/build-llama-server.sh) with the tiny
// generated Qwen3 model: what the sentinel's probes see from a genuine OpenAI-compatible server.
// The model's weights make decoding follow a fixed chain (see write-tiny-qwen3-gguf.ts), so the
// replies are known: thinking on -> reasoning "Okay, the user wants a reply." then "OK!".
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { qwen3Answer } from '../../src/sim/completion.ts';
import { startSim, type RunningSim } from '../../src/sim/server.ts';
import { requireLlamaServer, startLlamaServer } from '../helpers/llama-server.ts';

const files = requireLlamaServer();
const skip = !files && 'llama-server not built (see the warning above)';

/** The simulator as llama-server, serving the same model file (and aliases) as the real one. */
async function simLike(options: { aliases?: string[]; apiKey?: string; startupDelayMs?: number } = {}): Promise<RunningSim> {
  const s = await startSim({ host: '127.0.0.1', port: 0, flavor: 'llamacpp', model: files!.model, ttftMs: 5, tokensPerSecond: 1000, onCrash: () => {}, ...options });
  await s.ready;
  return s;
}

/** One answer, as far as the comparison goes. */
async function answer(url: string, path: string, init: RequestInit = {}) {
  const res = await fetch(url + path, { ...init, signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // an event stream, or text
  }
  return { status: res.status, headers: res.headers, text, body: body as any }; // eslint-disable-line @typescript-eslint/no-explicit-any
}
const postJson = (body: unknown): RequestInit => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) });
/** The deltas of an event stream, and its usage. */
function events(text: string) {
  const chunks = text.split('\n').filter((l) => l.startsWith('data: ') && l !== 'data: [DONE]').map((l) => JSON.parse(l.slice(6)) as Chunk);
  return { chunks, deltas: chunks.flatMap((c) => c.choices.map((choice) => choice.delta)), usage: chunks.at(-1)?.usage, finish: chunks.flatMap((c) => c.choices).find((choice) => choice.finish_reason !== null)?.finish_reason };
}

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

test('real llama-server with the tiny Qwen3 model', { skip, timeout: 60_000 }, async (t) => {
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

  // The simulator's llamacpp flavor against the real server, request by request.
  const sim = await simLike();
  t.after(() => sim.close());

  await t.test('sim = real: without --alias the id is the model path, and aliases lists it', async () => {
    const [real, simulated] = [await answer(server.url, '/v1/models'), await answer(sim.url, '/v1/models')];
    for (const r of [real, simulated]) assert.deepEqual([r.body.data[0].id, r.body.data[0].aliases, r.body.models[0].name], [files!.model, [files!.model], files!.model]);
    assert.deepEqual(Object.keys(simulated.body.data[0]), Object.keys(real.body.data[0]));
    assert.deepEqual(Object.keys(simulated.body.data[0].meta), Object.keys(real.body.data[0].meta));
  });

  await t.test('sim = real: /props has the same 19 keys, model_alias and model_path', async () => {
    const [real, simulated] = [await answer(server.url, '/props'), await answer(sim.url, '/props')];
    assert.equal(Object.keys(real.body).length, 19);
    assert.deepEqual(Object.keys(simulated.body), Object.keys(real.body));
    assert.deepEqual(Object.keys(simulated.body.default_generation_settings), Object.keys(real.body.default_generation_settings));
    for (const r of [real, simulated]) assert.deepEqual([r.body.model_alias, r.body.model_path, r.body.total_slots, r.body.is_sleeping], [files!.model, files!.model, 1, false]);
  });

  await t.test('sim = real: invalid JSON is a 500 server_error; a wrong max_tokens type and a missing messages a 400', async () => {
    for (const [body, status] of [['{nope', 500], [{ messages: [{ role: 'user', content: 'x' }], max_tokens: 'x' }, 400], [{}, 400]] as const) {
      const [real, simulated] = [await answer(server.url, '/v1/chat/completions', postJson(body)), await answer(sim.url, '/v1/chat/completions', postJson(body))];
      assert.deepEqual([real.status, simulated.status], [status, status], JSON.stringify(body));
      assert.deepEqual(Object.keys(simulated.body.error), Object.keys(real.body.error));
      assert.deepEqual([simulated.body.error.code, simulated.body.error.type], [real.body.error.code, real.body.error.type]);
      if (status === 400) assert.equal(simulated.body.error.message, real.body.error.message);
      else assert.match(simulated.body.error.message, /^\[json\.exception\.parse_error\.101\] parse error/);
    }
  });

  await t.test('sim = real: max_tokens 0 decodes one token (thinking on: <think>, shown as nothing), finish length; empty messages 200', async () => {
    const body = { messages: [{ role: 'user', content: 'Say OK.' }], max_tokens: 0, stream: true, stream_options: { include_usage: true } };
    const [real, simulated] = [events((await answer(server.url, '/v1/chat/completions', postJson(body))).text), events((await answer(sim.url, '/v1/chat/completions', postJson(body))).text)];
    assert.deepEqual(real.deltas, [{ role: 'assistant', content: null }, {}]);
    assert.deepEqual(simulated.deltas, real.deltas);
    assert.deepEqual([simulated.finish, simulated.usage?.completion_tokens], [real.finish, real.usage?.completion_tokens]);
    assert.deepEqual([real.finish, real.usage?.completion_tokens], ['length', 1]);
    const empty = { messages: [], max_tokens: 4 };
    const [realEmpty, simEmpty] = [await answer(server.url, '/v1/chat/completions', postJson(empty)), await answer(sim.url, '/v1/chat/completions', postJson(empty))];
    assert.deepEqual([realEmpty.status, simEmpty.status], [200, 200]);
  });

  await t.test('sim = real: usage counts the tokens no delta shows (<think>, </think>, the blank line, <|im_end|>)', async () => {
    const body = { messages: [{ role: 'user', content: 'Say OK.' }], stream: true, stream_options: { include_usage: true } };
    for (const url of [server.url, sim.url]) {
      const { deltas, usage } = events((await answer(url, '/v1/chat/completions', postJson(body))).text);
      const shown = deltas.filter((d) => d.content || d.reasoning_content);
      const text = shown.map((d) => `${d.reasoning_content ?? ''}${d.content ?? ''}`).join('');
      assert.doesNotMatch(text, /<\/?think>|<\|im_end\|>/);
      // The tiny model's chain has no newline after <think>: 4 hidden tokens; Qwen3 proper (the simulator) has 5.
      assert.equal(usage!.completion_tokens - shown.length, url === server.url ? 4 : 5, `${url}: ${usage!.completion_tokens} tokens, ${shown.length} shown`);
    }
    // The simulator's hidden tokens are what Qwen's tokenizer cuts from its own answer's text.
    const answerText = qwen3Answer(true).map((tok) => (tok.kind === 'eos' ? '<|im_end|>' : tok.text)).join('');
    const pieces = (await answer(server.url, '/tokenize', postJson({ content: answerText, with_pieces: true, parse_special: true }))).body.tokens as Array<{ piece: string }>;
    const hidden = pieces.map((p) => p.piece).filter((p) => /^(<\/?think>|<\|im_end\|>|\s+)$/.test(p));
    assert.deepEqual(hidden, qwen3Answer(true).filter((tok) => tok.kind === 'hidden' || tok.kind === 'eos').map((tok) => (tok.kind === 'eos' ? '<|im_end|>' : tok.text)));
  });

  await t.test("sim = real: cpp-httplib's headers (Server, Content-Length, no Date, X-Accel-Buffering on streams, Connection: close on errors)", async () => {
    const header = (r: { headers: Headers }) => ['server', 'content-type', 'date', 'x-accel-buffering', 'connection'].map((h) => r.headers.get(h)).concat([r.headers.has('content-length') ? 'length' : 'no length']);
    const stream = postJson({ messages: [{ role: 'user', content: 'Say OK.' }], max_tokens: 2, stream: true, chat_template_kwargs: { enable_thinking: false } });
    for (const [path, init] of [['/v1/models', {}], ['/health', {}], ['/props', {}], ['/slots', {}], ['/metrics', {}], ['/nothing', {}], ['/v1/chat/completions', postJson('{nope')], ['/v1/chat/completions', stream]] as const) {
      const [real, simulated] = [await answer(server.url, path, init), await answer(sim.url, path, init)];
      const [r, s] = [header(real), header(simulated)];
      // Node says keep-alive where cpp-httplib says nothing (HTTP/1.1's default): the same meaning.
      assert.deepEqual(s.map((v) => (v === 'keep-alive' ? null : v)), r, `${path}: ${JSON.stringify({ real: r, sim: s })}`);
    }
  });
});

test('real llama-server with --alias and --api-key: loading, the key, the listing', { skip, timeout: 60_000 }, async (t) => {
  const args = ['--alias', 'zeta,alpha', '--api-key', 'sk-test'];
  const server = await startLlamaServer({ args, watch: ['/v1/models'] });
  t.after(() => server.stop());
  const sim = await simLike({ aliases: ['zeta', 'alpha'], apiKey: 'sk-test' });
  t.after(() => sim.close());
  const key = { headers: { authorization: 'Bearer sk-test' } };

  await t.test('/v1/models: 503 "Loading model" while loading, the key not yet asked for; the simulator says the same', async () => {
    const loading = server.watched['/v1/models']!.find((o) => o.status === 503);
    assert.ok(loading, JSON.stringify(server.watched));
    const loadingSim = await simLike({ apiKey: 'sk-test', startupDelayMs: 2000 });
    t.after(() => loadingSim.close());
    const simulated = await answer(loadingSim.url, '/v1/models');
    assert.deepEqual([simulated.status, simulated.text], [503, loading.body]);
  });

  await t.test('401 "Invalid API Key" without the key, on the listing, /props and chat; /health open', async () => {
    for (const path of ['/v1/models', '/models', '/props', '/slots', '/metrics']) {
      const [real, simulated] = [await answer(server.url, path), await answer(sim.url, path)];
      assert.deepEqual([real.status, simulated.status], [401, 401], path);
      assert.equal(simulated.text, real.text, path);
      assert.equal(simulated.headers.get('connection'), real.headers.get('connection'));
    }
    for (const url of [server.url, sim.url]) {
      assert.equal((await answer(url, '/health')).status, 200);
      assert.equal((await answer(url, '/v1/chat/completions', postJson({ messages: [] }))).status, 401);
      assert.equal((await answer(url, '/v1/models', { headers: { 'x-api-key': 'sk-test' } })).status, 200, 'X-Api-Key works too');
    }
  });

  await t.test('--alias: the first name (sorted) is the id, aliases lists them all, and the answers name it', async () => {
    const [real, simulated] = [await answer(server.url, '/v1/models', key), await answer(sim.url, '/v1/models', key)];
    for (const r of [real, simulated]) assert.deepEqual([r.body.data[0].id, r.body.data[0].aliases, r.body.models[0].name], ['alpha', ['alpha', 'zeta'], 'alpha']);
    const [realProps, simProps] = [await answer(server.url, '/props', key), await answer(sim.url, '/props', key)];
    assert.deepEqual([simProps.body.model_alias, simProps.body.model_path], [realProps.body.model_alias, realProps.body.model_path]);
    const chat = { ...postJson({ model: 'anything', messages: [{ role: 'user', content: 'x' }], max_tokens: 1 }), headers: { 'content-type': 'application/json', authorization: 'Bearer sk-test' } };
    const [realChat, simChat] = [await answer(server.url, '/v1/chat/completions', chat), await answer(sim.url, '/v1/chat/completions', chat)];
    assert.deepEqual([realChat.body.model, simChat.body.model], ['alpha', 'alpha']);
  });
});
