import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, test } from 'node:test';
import { parseConfig } from '../../src/config/load.ts';
import { chatProbe } from '../../src/exporter/probes/chat.ts';
import { healthProbe } from '../../src/exporter/probes/health.ts';
import { modelsProbe } from '../../src/exporter/probes/models.ts';
import type { ProbeFn, ProbeResult } from '../../src/exporter/probes/types.ts';
import { freePort } from '../../src/stack/system.ts';
import { startSim, type RunningSim } from '../../src/sim/server.ts';

const sims: RunningSim[] = [];
const servers: Server[] = [];
after(async () => {
  await Promise.all(sims.map((s) => s.close()));
  for (const s of servers) s.closeAllConnections(), s.close();
});

async function sim(options: { ttftMs?: number; tokensPerSecond?: number; startupDelayMs?: number } = {}) {
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

function run(probe: ProbeFn, origin: string, opts: { model?: string; timeout?: string; max_tokens?: number; max_response_bytes?: number } = {}): Promise<ProbeResult> {
  const target = parseConfig({
    targets: [{ url: `${origin}/v1`, timeout: opts.timeout ?? '2s', chat: { max_tokens: opts.max_tokens ?? 8 }, ...(opts.model ? { model: opts.model } : {}), ...(opts.max_response_bytes ? { max_response_bytes: opts.max_response_bytes } : {}) }],
  }).targets[0]!;
  return probe({ target, signal: AbortSignal.timeout(target.timeout), model: opts.model ?? 'Qwen/Qwen3-0.6B', now: () => performance.now() });
}
const reason = (r: ProbeResult) => (r.success ? 'ok' : r.reason);

test('models: finds the expected model, or the first one, or says it is missing', async () => {
  const s = await sim();
  assert.deepEqual(await run(modelsProbe, s.url), { success: true, model: 'Qwen/Qwen3-0.6B' });
  assert.deepEqual(await run(modelsProbe, s.url, { model: 'Qwen/Qwen3-0.6B' }), { success: true, model: 'Qwen/Qwen3-0.6B' });
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
  assert.equal(r.completionTokens, 12);
  assert.ok(r.ttftSeconds! >= 0.28 && r.ttftSeconds! < 0.6, `ttft ${r.ttftSeconds}`);
  assert.ok(r.tokensPerSecond! > 15 && r.tokensPerSecond! < 22, `tokens/s ${r.tokensPerSecond}`);
});

test('chat: the real-world hang (listing answers, no token) is no_tokens, not a timeout', async () => {
  const s = await sim();
  s.setFault('hang-generation');
  assert.equal(reason(await run(modelsProbe, s.url)), 'ok');
  assert.equal(reason(await run(chatProbe, s.url, { timeout: '500ms' })), 'no_tokens');
});

test('chat: 5xx, slow tokens, and the loading simulator', async () => {
  const s = await sim({ ttftMs: 20, tokensPerSecond: 100 });
  s.setFault('error');
  assert.equal(reason(await run(chatProbe, s.url)), 'http_5xx');
  s.setFault('slow');
  const slow = await run(chatProbe, s.url, { max_tokens: 4 });
  assert.ok(slow.success && slow.tokensPerSecond! < 15, JSON.stringify(slow));
  const loading = await sim({ startupDelayMs: 2000 });
  assert.equal(reason(await run(modelsProbe, loading.url, { timeout: '300ms' })), 'timeout');
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

test('chat: the EOS chunk (empty delta with finish_reason) ends the decode window, as usage counts it', async () => {
  // vLLM-shaped: "OK" and "." 100 ms apart, then EOS 100 ms later; 3 completion tokens, so 2 intervals in 200 ms.
  const url = await rogue((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    const chunk = (delta: object, finish: string | null = null) => `data: ${JSON.stringify({ choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
    res.write(chunk({ role: 'assistant', content: '' }));
    res.write(chunk({ content: 'OK' }));
    setTimeout(() => res.write(chunk({ content: '.' })), 100);
    setTimeout(() => {
      res.write(chunk({ content: '' }, 'stop'));
      res.end(`data: ${JSON.stringify({ choices: [], usage: { prompt_tokens: 12, completion_tokens: 3, total_tokens: 15 } })}\n\ndata: [DONE]\n\n`);
    }, 200);
  });
  const r = await run(chatProbe, url);
  assert.ok(r.success, JSON.stringify(r));
  assert.equal(r.completionTokens, 3);
  assert.ok(r.tokensPerSecond! > 8 && r.tokensPerSecond! < 10.5, `tokens/s ${r.tokensPerSecond}`);
});

test('a redirect is not followed: bad_response', async () => {
  const url = await rogue((_req, res) => res.writeHead(302, { location: 'http://127.0.0.1:1/' }).end());
  assert.equal(reason(await run(modelsProbe, url)), 'bad_response');
});
