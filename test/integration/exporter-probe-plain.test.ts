// The /probe handler answers on the plain node:http request and response, without Express (a
// route served before Express sees it): the same header lines as Express wrote, no body to HEAD,
// bad requests answered on a connection that stays open, and a 500 for what should not throw.
import assert from 'node:assert/strict';
import { createServer, request, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, test } from 'node:test';
import { parseConfig } from '../../src/cmd/config.ts';
import { RoundHistory } from '../../src/exporter/history.ts';
import { probeHandler } from '../../src/exporter/probe-handler.ts';
import { readApiKeys } from '../../src/probing/api-keys.ts';
import { startSim } from '../../src/sim/server.ts';

const sim = await startSim({ host: '127.0.0.1', port: 0, ttftMs: 10, tokensPerSecond: 500 });
const config = parseConfig({ modules: { listing: { server: 'vllm', probes: ['models'] } } });
const apiKeys = await readApiKeys(config);
let broken = false;
const handle = probeHandler({
  config: () => {
    if (broken) throw new Error('a config that cannot be read (test)');
    return config;
  },
  apiKeys: () => apiKeys,
  history: new RoundHistory().probes,
  timeoutOffsetSeconds: 0.5,
});
const server = createServer(handle);
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
after(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await sim.close();
});

/** One request; the answer's status, raw header lines (names as sent) and body. */
function call(method: string, path: string): Promise<{ status: number; raw: string[]; headers: IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${origin}${path}`, { method, headers: { 'x-prometheus-scrape-timeout-seconds': '10' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, raw: res.rawHeaders, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}
const probePath = (params: Record<string, string>) => `/probe?${new URLSearchParams(params)}`;

test('a probe answers the exposition with the header lines Express wrote', async () => {
  const res = await call('GET', probePath({ target: `${sim.url}/v1`, module: 'listing' }));
  assert.equal(res.status, 200);
  assert.match(res.body, /^llm_server_up\{model="Qwen\/Qwen3-0\.6B"\} 1$/m);
  const names = res.raw.filter((_, i) => i % 2 === 0);
  assert.deepEqual(names.slice(0, 2), ['Content-Type', 'Content-Length']);
  assert.equal(res.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
  assert.equal(Number(res.headers['content-length']), Buffer.byteLength(res.body));
  assert.equal(res.headers.connection, 'keep-alive');
});

test('HEAD gets the headers and no body', async () => {
  const res = await call('HEAD', probePath({ target: `${sim.url}/v1`, module: 'listing' }));
  assert.equal(res.status, 200);
  assert.ok(Number(res.headers['content-length']) > 0);
  assert.equal(res.body, '');
});

test('a repeated parameter counts as missing, as with Express; the connection stays open after a 400', async () => {
  const res = await call('GET', `/probe?target=${encodeURIComponent(`${sim.url}/v1`)}&target=${encodeURIComponent(`${sim.url}/v1`)}&module=listing`);
  assert.equal(res.status, 400);
  assert.equal(res.headers['content-type'], 'text/plain; charset=utf-8');
  assert.match(res.body, /^target parameter is missing/);
  assert.equal(res.headers.connection, 'keep-alive');
  const debug = await call('GET', probePath({ target: `${sim.url}/v1`, module: 'listing', debug: 'true' }));
  assert.equal(debug.headers['content-type'], 'text/plain; charset=utf-8');
  assert.match(debug.body, /^Logs for the probe \(round #\d+\):\nGET \/probe\?target=/);
});

test('what throws where nothing should is a 500, and the handler goes on', async (t) => {
  t.mock.method(console, 'error', () => undefined);
  broken = true;
  try {
    const res = await call('GET', probePath({ target: `${sim.url}/v1`, module: 'listing' }));
    assert.equal(res.status, 500);
    assert.equal(res.body, 'Internal Server Error\n');
  } finally {
    broken = false;
  }
  assert.equal((await call('GET', probePath({ target: `${sim.url}/v1`, module: 'listing' }))).status, 200);
});
