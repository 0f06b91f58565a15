import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, test } from 'node:test';
import { parseConfig } from '../../src/cmd/config.ts';
import { chatProbe } from '../../src/probing/probes/chat.ts';
import { healthProbe } from '../../src/probing/probes/health.ts';
import { modelsProbe } from '../../src/probing/probes/models.ts';
import { thinkingProbe } from '../../src/probing/probes/thinking.ts';
import type { AnyProbe, ProbeResult } from '../../src/probing/probes/types.ts';
import { StagedRecorder } from '../../src/probing/series.ts';
import { servers as serverTypes } from '../../src/servers/index.ts';
import { freePort } from '../../src/lib/system.ts';
import { startSim, type RunningSim } from '../../src/sim/server.ts';

const sims: RunningSim[] = [];
const servers: Server[] = [];
after(async () => {
  await Promise.all(sims.map((s) => s.close()));
  for (const s of servers) s.closeAllConnections(), s.close();
});

async function sim(options: { ttftMs?: number; tokensPerSecond?: number; startupDelayMs?: number; flavor?: 'vllm' | 'llamacpp' | 'sglang' | 'ollama'; fault?: 'slow' } = {}) {
  const s = await startSim({ host: '127.0.0.1', port: 0, ttftMs: 50, tokensPerSecond: 200, ...options });
  sims.push(s);
  return s;
}

/** A misbehaving server: whatever the handler does. */
async function rogue(handler: Parameters<typeof createServer>[1]): Promise<string> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

interface RunOptions {
  model?: string;
  timeout?: string;
  max_tokens?: number;
  max_response_bytes?: number;
  expect?: string;
  server?: keyof typeof serverTypes;
  log?: string[];
  stall_timeout?: string;
}

/** What a probe run recorded, by metric name. */
type Recorded = ProbeResult & { values: Record<string, number> };

async function run(probe: AnyProbe, origin: string, opts: RunOptions = {}): Promise<Recorded> {
  const server = opts.server ?? 'vllm';
  const chat = { max_tokens: opts.max_tokens ?? 8, ...(opts.expect ? { expect: opts.expect } : {}), ...(opts.stall_timeout ? { stall_timeout: opts.stall_timeout } : {}) };
  const config = parseConfig({ modules: { m: { server, probes: ['models', 'chat', 'thinking'], timeout: opts.timeout ?? '2s', max_response_bytes: opts.max_response_bytes ?? 1 << 20, chat, thinking: chat } } });
  const module = config.modules.m!;
  const record = new StagedRecorder();
  const started = performance.now();
  const result = await probe.run({
    target: { url: `${origin}/v1`, server: serverTypes[server], model: opts.model, maxResponseBytes: module.max_response_bytes },
    options: module.options[probe.name as 'chat'],
    model: opts.model ?? 'Qwen/Qwen3-0.6B',
    signal: AbortSignal.timeout(module.timeout),
    deadline: () => started + module.timeout,
    extendDeadline: () => {},
    round: { failures: {} },
    now: () => performance.now(),
    headers: {},
    record,
    log: (line) => opts.log?.push(line),
  });
  return { ...result, values: Object.fromEntries(record.entries.map((e) => [e.metric.name, e.value])) };
}
const reason = (r: ProbeResult) => (r.success ? 'ok' : r.reason);

test('models: finds the expected model, or the first one, or says it is missing', async () => {
  const s = await sim();
  assert.deepEqual(await run(modelsProbe, s.url), { success: true, model: 'Qwen/Qwen3-0.6B', values: {} });
  assert.deepEqual(await run(modelsProbe, s.url, { model: 'Qwen/Qwen3-0.6B' }), { success: true, model: 'Qwen/Qwen3-0.6B', values: {} });
  const missing = await run(modelsProbe, s.url, { model: 'Qwen/Qwen3-8B' });
  assert.equal(reason(missing), 'model_missing');
});

test('connection refused and timeouts are told apart', async () => {
  const port = await freePort('127.0.0.1');
  assert.equal(reason(await run(modelsProbe, `http://127.0.0.1:${port}`)), 'connect_refused');
  const s = await sim();
  s.setFault('hang');
  const started = performance.now();
  assert.equal(reason(await run(modelsProbe, s.url, { timeout: '300ms' })), 'timeout');
  assert.ok(performance.now() - started < 2000, 'the deadline holds');
  assert.equal(reason(await run(chatProbe, s.url, { timeout: '300ms' })), 'timeout');
});

test('chat: measures TTFT and the decode rate against the simulator\'s known truth', async () => {
  const s = await sim({ ttftMs: 300, tokensPerSecond: 20 });
  const r = await run(chatProbe, s.url, { max_tokens: 12, timeout: '5s' });
  assert.ok(r.success, JSON.stringify(r));
  // Loose bands: this checks the wiring against real sockets; the timing rules have exact unit tests.
  assert.equal(r.values.llm_probe_completion_tokens, 12);
  assert.ok(r.values.llm_probe_time_to_first_token_seconds! >= 0.28 && r.values.llm_probe_time_to_first_token_seconds! < 1.5, `ttft ${r.values.llm_probe_time_to_first_token_seconds}`);
  assert.ok(r.values.llm_probe_tokens_per_second! > 10 && r.values.llm_probe_tokens_per_second! < 40, `tokens/s ${r.values.llm_probe_tokens_per_second}`);
});

test('chat: the real-world hang (listing answers, no token) is no_tokens to the client, hung once the server\'s own counter confirms it', async () => {
  const s = await sim();
  s.setFault('hang-generation');
  assert.equal(reason(await run(modelsProbe, s.url)), 'ok');
  // As a generic OpenAI server (no progress signal): what the client saw, headers and no token.
  assert.equal(reason(await run(chatProbe, s.url, { timeout: '500ms', server: 'openai' })), 'no_tokens');
  // As vLLM: its generated-token counter stood still while the probe waited.
  assert.equal(reason(await run(chatProbe, s.url, { timeout: '500ms' })), 'hung');
});

test('chat: a flat count of generated tokens ends the probe as hung at the stall check, not at the deadline; a busy server waits on', async () => {
  const s = await sim();
  s.setFault('hang-generation');
  const log: string[] = [];
  const started = performance.now();
  const hung = await run(chatProbe, s.url, { timeout: '20s', stall_timeout: '200ms', log });
  assert.equal(reason(hung), 'hung', JSON.stringify(hung));
  // The deadline is 20 s: ending far before it is the stall check's doing (its log says so).
  assert.ok(performance.now() - started < 15_000, 'cut at the stall check');
  assert.ok(log.some((l) => l.startsWith('stalled: no token in')), log.join('\n'));
  // Saturated: the server generates for others, the probe gets no token. The checks see the count
  // move, so the probe waits out its deadline and is judged there: saturated, never hung.
  s.setFault('saturated');
  const busyLog: string[] = [];
  const busy = await run(chatProbe, s.url, { timeout: '1500ms', stall_timeout: '200ms', log: busyLog });
  assert.equal(reason(busy), 'saturated', JSON.stringify(busy));
  assert.ok(!busyLog.some((l) => l.startsWith('stalled')), busyLog.join('\n'));
  // Without a progress signal (a generic OpenAI server) there is nothing to check: the deadline decides.
  s.setFault('hang-generation');
  assert.equal(reason(await run(chatProbe, s.url, { timeout: '800ms', stall_timeout: '200ms', server: 'openai' })), 'no_tokens');
});

test('chat: a deadline that cuts a stream still flowing is slow; one whose tokens stopped is a timeout (a stall mid-answer)', async () => {
  // 2 tokens/s (a tenth of 20): 32 tokens cannot come in 1.5 s, but one comes every 500 ms.
  const slowServer = await sim({ ttftMs: 20, tokensPerSecond: 20, fault: 'slow' });
  const slow = await run(chatProbe, slowServer.url, { max_tokens: 32, timeout: '1500ms', stall_timeout: '1s' });
  assert.equal(reason(slow), 'slow', JSON.stringify(slow));
  assert.match((slow as { message: string }).message, /still generating, too slowly to finish 32 tokens in time/);
  // Tokens flow, then generation hangs mid-answer: the last token is far older than stall_timeout.
  const s = await sim({ ttftMs: 20, tokensPerSecond: 20 });
  setTimeout(() => s.setFault('hang-generation'), 300).unref();
  const stalled = await run(chatProbe, s.url, { max_tokens: 32, timeout: '2500ms', stall_timeout: '1s' });
  assert.equal(reason(stalled), 'timeout', JSON.stringify(stalled));
  assert.match((stalled as { message: string }).message, /the stream stalled/);
});

test('chat: 5xx, slow tokens, and the loading simulator', async () => {
  const s = await sim({ ttftMs: 20, tokensPerSecond: 100 });
  s.setFault('error');
  assert.equal(reason(await run(chatProbe, s.url)), 'http_5xx');
  s.setFault('slow');
  // Enough tokens, one per chunk (llama.cpp's way), for the client to time them: 8 at 10 tokens/s.
  const slowServer = await sim({ flavor: 'llamacpp', ttftMs: 20, tokensPerSecond: 100, fault: 'slow' });
  const slow = await run(chatProbe, slowServer.url, { max_tokens: 8, server: 'llamacpp', timeout: '5s' });
  assert.ok(slow.success && slow.values.llm_probe_tokens_per_second! < 15, JSON.stringify(slow));
  // A loading vLLM does not listen yet: refused, as a crashed one. A loading llama.cpp says so.
  const loading = await startSim({ host: '127.0.0.1', port: 0, startupDelayMs: 5000 });
  sims.push(loading);
  assert.equal(reason(await run(modelsProbe, loading.url, { timeout: '300ms' })), 'connect_refused');
  const llama = await sim({ flavor: 'llamacpp', startupDelayMs: 5000 });
  const starting = await run(healthProbe, llama.url, { server: 'llamacpp' });
  assert.equal(reason(starting), 'starting');
  assert.match((starting as { message: string }).message, /Loading model/);
  assert.equal(reason(await run(modelsProbe, llama.url, { server: 'llamacpp' })), 'starting');
});

test('health: 200 is success, 503 is http_5xx', async () => {
  const s = await sim();
  assert.equal(reason(await run(healthProbe, s.url)), 'ok');
  const url = await rogue((_req, res) => res.writeHead(503).end('{"error":"Loading model"}'));
  assert.equal(reason(await run(healthProbe, url)), 'http_5xx');
});

test('garbage answers are bad_response, 4xx is http_4xx', async () => {
  const notJson = await rogue((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('<html>'));
  assert.equal(reason(await run(modelsProbe, notJson)), 'bad_response');
  const notList = await rogue((_req, res) => res.writeHead(200).end('{"models":[]}'));
  assert.equal(reason(await run(modelsProbe, notList)), 'bad_response');
  const notFound = await rogue((_req, res) => res.writeHead(404).end());
  assert.equal(reason(await run(chatProbe, notFound)), 'http_4xx');
  const notStream = await rogue((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
  assert.equal(reason(await run(chatProbe, notStream)), 'bad_response');
  const garbageStream = await rogue((_req, res) => res.writeHead(200, { 'content-type': 'text/event-stream' }).end('data: {not json\n\n'));
  assert.equal(reason(await run(chatProbe, garbageStream)), 'bad_response');
  const errorInStream = await rogue((_req, res) => res.writeHead(200, { 'content-type': 'text/event-stream' }).end('data: {"error":{"message":"engine dead"}}\n\ndata: [DONE]\n\n'));
  assert.equal(reason(await run(chatProbe, errorInStream)), 'bad_response');
  const noDone = await rogue((_req, res) => res.writeHead(200, { 'content-type': 'text/event-stream' }).end('data: {"choices":[{"delta":{"content":"hi"}}]}\n\n'));
  assert.equal(reason(await run(chatProbe, noDone)), 'bad_response');
  const emptyStream = await rogue((_req, res) => res.writeHead(200, { 'content-type': 'text/event-stream' }).end('data: [DONE]\n\n'));
  assert.equal(reason(await run(chatProbe, emptyStream)), 'no_tokens');
});

test('a huge body or an endless stream cannot stall or bloat the probe', async () => {
  const huge = await rogue((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    const chunk = Buffer.alloc(64 * 1024, 'x');
    const pump = () => { while (res.write(chunk)); };
    res.on('drain', pump);
    pump();
  });
  const started = performance.now();
  const big = await run(modelsProbe, huge, { max_response_bytes: 256 * 1024, timeout: '5s' });
  assert.equal(reason(big), 'bad_response');
  assert.match((big as { message: string }).message, /larger than 262144 bytes/);
  const endless = await rogue((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    const timer = setInterval(() => res.write('data: {"choices":[{"delta":{"content":"x"}}]}\n\n'), 1);
    res.on('close', () => clearInterval(timer));
  });
  const r = await run(chatProbe, endless, { timeout: '5s', max_response_bytes: 64 * 1024 });
  assert.equal(reason(r), 'bad_response');
  assert.ok(performance.now() - started < 5000, 'stopped by the byte cap, long before the deadline');
  const trickle = await rogue((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    const timer = setInterval(() => res.write(': ping\n\n'), 50);
    res.on('close', () => clearInterval(timer));
  });
  assert.equal(reason(await run(chatProbe, trickle, { timeout: '400ms' })), 'no_tokens');
});

test('a redirect is not followed: bad_response', async () => {
  const url = await rogue((_req, res) => res.writeHead(302, { location: 'http://127.0.0.1:1/' }).end());
  assert.equal(reason(await run(modelsProbe, url)), 'bad_response');
});

test('models: each server type matches model ids its own way', async () => {
  const listing = (data: object[]) => rogue((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ object: 'list', data })));
  // vLLM: a served name whose root is the configured model; the served name is what chat must ask for.
  const vllm = await listing([{ id: 'qwen3', root: 'Qwen/Qwen3-0.6B', parent: null }, { id: 'sql-lora', root: '/adapters/sql', parent: 'qwen3' }]);
  assert.equal((await run(modelsProbe, vllm, { model: 'Qwen/Qwen3-0.6B' }) as { model?: string }).model, 'qwen3');
  assert.equal((await run(modelsProbe, vllm, { model: 'sql-lora' }) as { model?: string }).model, 'sql-lora');
  // Ollama: name:tag, a bare name meaning :latest; and no guessing of the model to load.
  const ollama = await listing([{ id: 'nomic-embed-text:latest' }, { id: 'qwen3:latest' }, { id: 'qwen3:0.6b' }]);
  assert.equal((await run(modelsProbe, ollama, { server: 'ollama', model: 'qwen3' }) as { model?: string }).model, 'qwen3:latest');
  assert.equal((await run(modelsProbe, ollama, { server: 'ollama', model: 'qwen3:0.6b' }) as { model?: string }).model, 'qwen3:0.6b');
  assert.equal(reason(await run(modelsProbe, ollama, { server: 'ollama', model: 'qwen3:8b' })), 'model_missing');
  const noModel = await run(modelsProbe, ollama, { server: 'ollama' });
  assert.equal(reason(noModel), 'model_missing');
  // llama.cpp: one model, listed by path, with aliases.
  const llama = await listing([{ id: '/models/qwen3-0.6b.gguf', aliases: ['qwen3'] }]);
  assert.equal((await run(modelsProbe, llama, { server: 'llamacpp', model: 'qwen3' }) as { model?: string }).model, '/models/qwen3-0.6b.gguf');
});

test('chat: each server type gets its own thinking switch; probe traffic carries identifying headers', async () => {
  const seen: Array<{ body: Record<string, unknown>; headers: Record<string, unknown> }> = [];
  const url = await rogue((req, res) => {
    if (req.method === 'GET') return void res.writeHead(404).end(); // no progress signal here
    let text = '';
    req.on('data', (d: Buffer) => (text += d));
    req.on('end', () => {
      seen.push({ body: JSON.parse(text) as Record<string, unknown>, headers: req.headers });
      res.writeHead(200, { 'content-type': 'text/event-stream' }).end(`data: ${JSON.stringify({ choices: [{ delta: { content: 'OK' }, finish_reason: 'stop' }] })}\n\ndata: [DONE]\n\n`);
    });
  });
  for (const server of ['vllm', 'ollama'] as const) assert.equal(reason(await run(chatProbe, url, { server })), 'ok');
  assert.deepEqual(seen[0]!.body.chat_template_kwargs, { enable_thinking: false });
  assert.equal(seen[0]!.body.reasoning_effort, undefined, 'vLLM answers 400 to reasoning_effort "none"');
  assert.equal(seen[1]!.body.reasoning_effort, 'none');
  assert.equal(seen[1]!.body.chat_template_kwargs, undefined);
});

test('thinking: reasoning apart from the answer; the canary regex; no reasoning is its own failure', async () => {
  const s = await sim({ ttftMs: 20, tokensPerSecond: 500 });
  const r = await run(thinkingProbe, s.url, { max_tokens: 40, timeout: '5s' });
  assert.ok(r.success, JSON.stringify(r));
  assert.ok(r.values.llm_probe_reasoning_tokens! > 0 && r.values.llm_probe_content_tokens! > 0, JSON.stringify(r.values));
  assert.ok(r.values.llm_probe_time_to_first_content_seconds! > r.values.llm_probe_time_to_first_token_seconds!, 'the answer comes after the reasoning');
  const canary = await run(chatProbe, s.url, { expect: '^I am Qwen', max_tokens: 8 });
  assert.equal(reason(canary), 'ok');
  const wrong = await run(chatProbe, s.url, { expect: '^OK', max_tokens: 8 });
  assert.equal(reason(wrong), 'unexpected_answer');
  assert.match((wrong as { message: string }).message, /does not match \/\^OK\//);
  const mixed = await rogue((_req, res) => res.writeHead(200, { 'content-type': 'text/event-stream' }).end(`data: ${JSON.stringify({ choices: [{ delta: { content: '<think>hm</think>OK' }, finish_reason: 'stop' }] })}\n\ndata: [DONE]\n\n`));
  assert.equal(reason(await run(thinkingProbe, mixed)), 'no_reasoning');
});

test('the probe log tells what happened: requests, statuses, timings, reasons', async () => {
  const s = await sim({ ttftMs: 10, tokensPerSecond: 500 });
  const log: string[] = [];
  await run(chatProbe, s.url, { log });
  const text = log.join('\n');
  assert.match(text, /^POST http:\/\/127\.0\.0\.1:\d+\/v1\/chat\/completions \(request id qwen-sentinel-[0-9a-f]{16}\)$/m);
  assert.match(text, /^-> HTTP 200 text\/event-stream/m);
  // The rate, or why the client could not time it (500 tokens/s: on a busy machine chunks share reads).
  assert.match(text, /^TTFT [\d.]+ ms, ([\d.]+ tokens\/s|decode rate not measured: .+)$/m);
});

test('every probe request opens a connection of its own and closes it: no socket the server may have closed is reused', async () => {
  let connections = 0;
  const seen: Array<string | undefined> = [];
  const origin = await rogue((req, res) => {
    seen.push(req.headers.connection);
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ object: 'list', data: [{ id: 'Qwen/Qwen3-0.6B', object: 'model' }] }));
  });
  servers.at(-1)!.on('connection', () => (connections += 1));
  for (let i = 0; i < 3; i++) assert.equal(reason(await run(modelsProbe, origin)), 'ok');
  assert.equal(connections, 3);
  assert.deepEqual(seen, ['close', 'close', 'close']);
});

test('out of file descriptors is the exporter\'s own error, never the server\'s failure', async () => {
  const { localError, classifyError } = await import('../../src/probing/http.ts');
  const emfile = Object.assign(new Error('connect EMFILE 127.0.0.1:8000 - Local (undefined:undefined)'), { code: 'EMFILE' });
  assert.equal(localError(emfile)?.code, 'EMFILE');
  assert.equal(localError(Object.assign(new Error('x'), { code: 'ECONNREFUSED' })), undefined);
  assert.equal(classifyError(Object.assign(new Error('x'), { code: 'ECONNREFUSED' }), new AbortController().signal).reason, 'connect_refused');
});

test('models: an Ollama with no model at all lists "data": null: an empty listing (model_missing), not garbage', async () => {
  const empty = await rogue((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"object":"list","data":null}'));
  assert.equal(reason(await run(modelsProbe, empty, { server: 'ollama', model: 'qwen3:0.6b' })), 'model_missing');
  const garbage = await rogue((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"object":"list"}'));
  assert.equal(reason(await run(modelsProbe, garbage, { server: 'ollama', model: 'qwen3:0.6b' })), 'bad_response');
});
