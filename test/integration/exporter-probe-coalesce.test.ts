// GET /probe requests for the same round while it runs share it (an HA pair of Prometheus servers
// scraping one target at once): the model server sees one request per endpoint, every request
// answers the same text, a client that goes away takes nothing from the others, and nothing is
// kept once the round ends. A recording proxy in front of the simulator counts the requests per
// path and holds them until the test lets them through, so "at the same time" is not left to timing.
import assert from 'node:assert/strict';
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, afterEach, beforeEach, test } from 'node:test';
import { parseConfig } from '../../src/cmd/config.ts';
import { startExporter } from '../../src/exporter/server.ts';
import { silentLogger } from '../../src/lib/log.ts';
import { startSim } from '../../src/sim/server.ts';
import { eventually } from '../helpers/stack-child.ts';

/** A reverse proxy that counts requests by method and path and, while `holding`, keeps them waiting. */
class RecordingProxy {
  readonly counts = new Map<string, number>();
  holding = false;
  /** Requests kept waiting, in arrival order; `gone` once the exporter closed the connection. */
  readonly held: Array<{ path: string; gone: boolean; release: () => void }> = [];
  readonly server = createServer((req, res) => this.#serve(req, res));
  url = '';
  readonly #upstream: URL;

  constructor(upstream: string) {
    this.#upstream = new URL(upstream);
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  #serve(req: IncomingMessage, res: ServerResponse) {
    const path = `${req.method} ${new URL(req.url ?? '/', 'http://x').pathname}`;
    this.counts.set(path, (this.counts.get(path) ?? 0) + 1);
    const forward = () => {
      if (res.destroyed) return;
      const up = request({ host: this.#upstream.hostname, port: this.#upstream.port, method: req.method, path: req.url, headers: { ...req.headers, host: this.#upstream.host } }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      up.on('error', () => res.destroy());
      res.on('close', () => up.destroy());
      req.pipe(up);
    };
    if (!this.holding) return forward();
    const entry = { path, gone: false, release: forward };
    res.on('close', () => (entry.gone = !res.writableEnded));
    this.held.push(entry);
  }

  /** Lets every held request through and stops holding. */
  release(): void {
    this.holding = false;
    for (const entry of this.held.splice(0)) entry.release();
  }

  /** Requests per path since the last reset. */
  seen(): Record<string, number> {
    return Object.fromEntries([...this.counts].sort());
  }

  reset(): void {
    this.counts.clear();
    this.held.length = 0;
    this.holding = false;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

const sim = await startSim({ host: '127.0.0.1', port: 0, flavor: 'vllm', ttftMs: 10, tokensPerSecond: 500 });
const proxy = new RecordingProxy(sim.url);
await proxy.listen();
const exporter = await startExporter({ config: parseConfig({}), listen: { host: '127.0.0.1', port: 0 }, logger: silentLogger });
after(async () => {
  await exporter.close();
  await proxy.close();
  await sim.close();
});
/** Every /probe request a test made: the next test starts once they are all answered. */
const pending = new Set<Promise<unknown>>();
beforeEach(() => proxy.reset());
afterEach(async () => {
  // A test that failed half-way leaves requests held: let them through, so no round of it lives on.
  proxy.release();
  await Promise.allSettled(pending);
  pending.clear();
});

const target = () => `${proxy.url}/v1`;
/** Every endpoint the vllm module's round asks for once: listing, health, progress, chat. */
const oneRound = { 'GET /health': 1, 'GET /metrics': 1, 'GET /v1/models': 1, 'POST /v1/chat/completions': 1 };

function probe(params: Record<string, string>, options: { headers?: Record<string, string>; signal?: AbortSignal } = {}) {
  const answer = fetch(`${exporter.url}/probe?${new URLSearchParams({ target: target(), module: 'vllm', ...params })}`, options).then(async (res) => ({ status: res.status, text: await res.text() }));
  pending.add(answer);
  return answer;
}

async function joinedSoFar(): Promise<number> {
  const text = await (await fetch(`${exporter.url}/metrics`)).text();
  const m = /^qwen_sentinel_exporter_probe_requests_joined_total (\d+)$/m.exec(text);
  assert.ok(m, 'qwen_sentinel_exporter_probe_requests_joined_total is not in /metrics');
  return Number(m[1]);
}

const heldRequests = (n: number) => eventually(`${n} request(s) held at the proxy`, 10_000, async () => (proxy.held.length >= n ? true : undefined));
const joinedReaches = (n: number) => eventually(`the joined counter at ${n}`, 10_000, async () => ((await joinedSoFar()) >= n ? true : undefined));

test('concurrent /probe requests for one target share one round: one request per endpoint, the same text, the counter counts them', async () => {
  const before = await joinedSoFar();
  proxy.holding = true;
  const first = probe({});
  await heldRequests(1);
  const second = probe({});
  const debug = probe({ debug: 'true' });
  await joinedReaches(before + 2);
  assert.equal(proxy.held.length, 1, 'the joined requests sent nothing to the server');
  proxy.release();
  const [a, b, d] = await Promise.all([first, second, debug]);
  assert.equal(a.status, 200);
  assert.match(a.text, /^llm_server_up\{model="Qwen\/Qwen3-0\.6B"\} 1$/m);
  assert.equal(b.text, a.text, 'both answer the same text');
  assert.deepEqual(proxy.seen(), oneRound);
  // The debug answer shows the shared round's log, which names the requests that joined it.
  assert.match(d.text, /^Logs for the probe \(round #\d+\):$/m);
  assert.match(d.text, /^GET \/probe\?target=[^\n]*joined this round at \+[\d.]+ ms$/m);
  assert.ok(d.text.endsWith(`Metrics that would have been returned:\n${a.text}`), 'the same metrics');
  assert.equal(await joinedSoFar(), before + 2);
});

test('a client that goes away leaves the others their whole answer; the round stops only when every client has gone', async () => {
  proxy.holding = true;
  const leaving = new AbortController();
  const first = probe({}, { signal: leaving.signal }).catch((err: Error) => err);
  await heldRequests(1);
  const before = await joinedSoFar();
  const staying = probe({});
  await joinedReaches(before + 1);
  leaving.abort();
  assert.ok((await first) instanceof Error);
  // The exporter still waits for the listing: its request to the server is not cut.
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.equal(proxy.held[0]!.gone, false, 'the round went on for the request still waiting');
  proxy.release();
  const answer = await staying;
  assert.match(answer.text, /^llm_server_up\{model="Qwen\/Qwen3-0\.6B"\} 1$/m);
  assert.doesNotMatch(answer.text, /^llm_probe_success\{[^}]*\} 0$/m);
  assert.deepEqual(proxy.seen(), oneRound);

  // Alone, the request that goes away takes the round with it: the held listing is cut.
  proxy.reset();
  proxy.holding = true;
  const alone = new AbortController();
  const lone = probe({}, { signal: alone.signal }).catch((err: Error) => err);
  await heldRequests(1);
  alone.abort();
  await lone;
  await eventually('the round to stop its request to the server', 10_000, async () => (proxy.held[0]!.gone ? true : undefined));
});

test('a request after the round ended runs a new round: nothing is kept', async () => {
  const before = await joinedSoFar();
  const first = await probe({});
  const second = await probe({});
  assert.match(first.text, /^llm_server_up\{model="Qwen\/Qwen3-0\.6B"\} 1$/m);
  assert.match(second.text, /^llm_server_up\{model="Qwen\/Qwen3-0\.6B"\} 1$/m);
  assert.deepEqual(proxy.seen(), Object.fromEntries(Object.keys(oneRound).map((k) => [k, 2])));
  assert.equal(await joinedSoFar(), before);
});

test('another model or another module is another round', async () => {
  const before = await joinedSoFar();
  proxy.holding = true;
  const answers = [probe({}), probe({ model: 'Qwen/Qwen3-0.6B' }), probe({ module: 'openai' })];
  // Three rounds, each at its listing (every one of these modules starts with it).
  await heldRequests(3);
  assert.deepEqual(proxy.held.map((h) => h.path), ['GET /v1/models', 'GET /v1/models', 'GET /v1/models']);
  proxy.release();
  for (const answer of await Promise.all(answers)) assert.match(answer.text, /^llm_server_up\{model="Qwen\/Qwen3-0\.6B"\} 1$/m);
  assert.deepEqual(proxy.seen(), { 'GET /health': 2, 'GET /metrics': 2, 'GET /v1/models': 3, 'POST /v1/chat/completions': 3 });
  assert.equal(await joinedSoFar(), before);
});

test('a joined request whose scrape timeout ends first answers timeout then; the round goes on for the first', async () => {
  proxy.holding = true;
  const first = probe({}); // no scrape timeout: the round has no deadline
  await heldRequests(1);
  const started = performance.now();
  // 1 s less the exporter's 0.5 s offset: it must answer about 0.5 s after it came, with the round still held.
  const hurried = await probe({}, { headers: { 'X-Prometheus-Scrape-Timeout-Seconds': '1' } });
  const took = performance.now() - started;
  assert.ok(took < 5_000, `answered after ${took.toFixed(0)} ms`);
  assert.equal(hurried.status, 200);
  assert.match(hurried.text, /^llm_server_up\{model=""\} 0$/m);
  assert.match(hurried.text, /^llm_probe_failure_reason\{probe="models",reason="timeout"\} 1$/m);
  assert.match(hurried.text, /^llm_probe_failure_reason\{probe="chat",reason="timeout"\} 1$/m);
  assert.match(hurried.text, /^llm_probe_success\{probe="models"\} 0$/m);
  assert.equal(proxy.held.length, 1, 'still one request at the server');
  assert.equal(proxy.held[0]!.gone, false);
  proxy.release();
  const answer = await first;
  assert.match(answer.text, /^llm_server_up\{model="Qwen\/Qwen3-0\.6B"\} 1$/m);
  assert.deepEqual(proxy.seen(), oneRound);
});
