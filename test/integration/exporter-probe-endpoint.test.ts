import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { parseConfig } from '../../src/cmd/config.ts';
import { hostAllowed } from '../../src/exporter/probe-handler.ts';
import { startExporter, type RunningExporter } from '../../src/exporter/server.ts';
import { silentLogger } from '../../src/lib/log.ts';
import { startSim, type RunningSim } from '../../src/sim/server.ts';
import { freePort } from '../../src/lib/system.ts';

const sim = await startSim({ host: '127.0.0.1', port: 0, ttftMs: 10, tokensPerSecond: 500 });
const running: Array<RunningSim | RunningExporter> = [sim];
after(async () => {
  for (const r of running.reverse()) await r.close();
});

async function exporter(config: object = {}) {
  const e = await startExporter({ config: parseConfig(config), listen: { host: '127.0.0.1', port: 0 }, logger: silentLogger });
  running.push(e);
  return e;
}
const get = async (url: string, headers: Record<string, string> = {}) => {
  const res = await fetch(url, { headers });
  return { status: res.status, type: res.headers.get('content-type') ?? '', text: await res.text() };
};
const probeUrl = (base: string, params: Record<string, string>) => `${base}/probe?${new URLSearchParams(params)}`;

test('with no config at all the exporter starts, is ready, and serves /probe from a fresh registry', async () => {
  const e = await exporter();
  assert.equal((await get(`${e.url}/-/ready`)).status, 200);
  const res = await get(probeUrl(e.url, { target: `${sim.url}/v1`, module: 'vllm' }));
  assert.equal(res.status, 200);
  assert.match(res.type, /^text\/plain; version=0\.0\.4/);
  assert.match(res.text, /^llm_server_up\{model="Qwen\/Qwen3-0\.6B"\} 1$/m);
  assert.match(res.text, /^llm_probe_success\{probe="health"\} 1$/m);
  assert.match(res.text, /^llm_probe_time_to_first_token_seconds\{probe="chat"\} [\d.e-]+$/m);
  assert.doesNotMatch(res.text, /^llm_probe_failure_reason/m, 'no reason series when every probe succeeded');
  // No target label (relabelling sets it), no counters or histograms, none of the process metrics.
  assert.doesNotMatch(res.text, /target=|_total|_bucket|process_cpu/);
  // The exporter's own /metrics does not collect /probe results.
  assert.doesNotMatch((await get(`${e.url}/metrics`)).text, /^llm_server_up/m);
});

test('a failing target answers 200 with up 0 and its reason; debug=true returns the probe log', async () => {
  const e = await exporter();
  const refused = `http://127.0.0.1:${await freePort('127.0.0.1')}/v1`;
  const res = await get(probeUrl(e.url, { target: refused, module: 'openai' }));
  assert.equal(res.status, 200);
  assert.match(res.text, /^llm_server_up\{model=""\} 0$/m);
  assert.match(res.text, /^llm_probe_failure_reason\{probe="models",reason="connect_refused"\} 1$/m);
  const debug = await get(probeUrl(e.url, { target: refused, module: 'openai', debug: 'true' }));
  assert.match(debug.type, /^text\/plain/);
  assert.match(debug.text, /^Logs for the probe \(round #\d+\):$/m);
  assert.match(debug.text, new RegExp(`models: GET ${refused}/models \\(request id qwen-sentinel-[0-9a-f]+\\)`));
  assert.match(debug.text, /models: FAILED connect_refused: connection refused/);
  assert.match(debug.text, /^Metrics that would have been returned:$/m);
  assert.match(debug.text, /^llm_server_up\{model=""\} 0$/m);
});

test('bad requests get 400 with the reason; the allow-list answers 403', async () => {
  const e = await exporter({ exporter: { allowed_probe_hosts: ['localhost', '127.0.0.1:8000', '*.gpu.internal'] } });
  const cases: Array<[Record<string, string>, number, RegExp]> = [
    [{}, 400, /target parameter is missing/],
    [{ target: 'not a url' }, 400, /is not a URL/],
    [{ target: 'file:///etc/passwd' }, 400, /is not an http\(s\) URL/],
    [{ target: `${sim.url}/v1`, module: 'nope' }, 400, /unknown module "nope" \(known: vllm, sglang, llamacpp, ollama, openai\)/],
    [{ target: 'http://localhost:8000/v1', module: 'ollama' }, 400, /needs the model parameter/],
    [{ target: `${sim.url}/v1` }, 403, /target host "127\.0\.0\.1:\d+" is not in exporter\.allowed_probe_hosts/],
    [{ target: 'http://169.254.169.254/latest/meta-data' }, 403, /not in exporter\.allowed_probe_hosts/],
  ];
  for (const [params, status, message] of cases) {
    const res = await get(probeUrl(e.url, params));
    assert.equal(res.status, status, JSON.stringify(params));
    assert.match(res.text, message);
  }
});

test('the allow-list matches host, host:port and *.domain', () => {
  const allowed = ['localhost', '127.0.0.1:8000', '*.gpu.internal', '[::1]:8000'];
  const ok = (url: string) => hostAllowed(new URL(url), allowed);
  assert.equal(ok('http://localhost:1234/v1'), true);
  assert.equal(ok('http://127.0.0.1:8000/v1'), true);
  assert.equal(ok('http://127.0.0.1:8001/v1'), false);
  assert.equal(ok('https://node3.gpu.internal/v1'), true);
  assert.equal(ok('https://gpu.internal.evil.com/v1'), false);
  assert.equal(ok('http://[::1]:8000/v1'), true);
  assert.equal(ok('http://127.0.0.1/v1'), false);
  assert.equal(hostAllowed(new URL('http://anything/'), undefined), true);
});

test('the scrape timeout bounds the whole round, less the offset', async () => {
  const hung = await startSim({ host: '127.0.0.1', port: 0, fault: 'hang' });
  running.push(hung);
  const e = await exporter();
  const started = performance.now();
  const res = await get(probeUrl(e.url, { target: `${hung.url}/v1`, module: 'vllm' }), { 'x-prometheus-scrape-timeout-seconds': '1.5' });
  const took = performance.now() - started;
  assert.equal(res.status, 200);
  // Three probes of 10 s each would take 30 s; the round ends within the 1.5 s scrape timeout.
  assert.ok(took < 5000, `took ${took} ms`);
  assert.match(res.text, /^llm_probe_failure_reason\{probe="models",reason="timeout"\} 1$/m);
  assert.match(res.text, /^llm_probe_failure_reason\{probe="chat",reason="timeout"\} 1$/m);
  const bad = await get(probeUrl(e.url, { target: `${sim.url}/v1` }), { 'x-prometheus-scrape-timeout-seconds': 'soon' });
  assert.equal(bad.status, 400);
  assert.match(bad.text, /X-Prometheus-Scrape-Timeout-Seconds: not a positive number: "soon"/);
});

test('the status page lists targets with their last result and links each round to its log', async () => {
  const refusedPort = await freePort('127.0.0.1');
  const e = await exporter({
    targets: [
      { name: 'good', url: `${sim.url}/v1`, server: 'vllm', interval: '500ms', timeout: '500ms' },
      { name: 'gone', url: `http://127.0.0.1:${refusedPort}/v1`, interval: '500ms', timeout: '500ms' },
    ],
  });
  while ((await get(`${e.url}/-/ready`)).status !== 200) await new Promise((r) => setTimeout(r, 50));
  const page = await get(`${e.url}/`);
  assert.match(page.type, /^text\/html/);
  assert.match(page.text, /<td>good<\/td>.*?class="ok">UP</s);
  assert.match(page.text, /<td>gone<\/td>.*?class="bad">DOWN</s);
  assert.match(page.text, /connect_refused<br><span class="muted">connection refused/);
  const id = /<a href="logs\?id=(\d+)">log #\d+<\/a><\/td><td>[^<]+<\/td><td>gone</.exec(page.text)?.[1];
  assert.ok(id, 'a recent round of "gone" links to its log');
  const log = await get(`${e.url}/logs?id=${id}`);
  assert.match(log.text, /^Round #\d+ of gone \(module openai\)/);
  assert.match(log.text, /models: FAILED connect_refused/);
  assert.equal((await get(`${e.url}/logs?id=999999`)).status, 404);
});

test('HTML in a server\'s answer is escaped on the status page', async () => {
  const { createServer } = await import('node:http');
  const evil = createServer((_req, res) => res.writeHead(500).end('<script>alert(1)</script>'));
  await new Promise<void>((resolve) => evil.listen(0, '127.0.0.1', resolve));
  const port = (evil.address() as { port: number }).port;
  const e = await exporter({ targets: [{ name: 'evil', url: `http://127.0.0.1:${port}/v1`, interval: '1s', timeout: '1s' }] });
  while ((await get(`${e.url}/-/ready`)).status !== 200) await new Promise((r) => setTimeout(r, 50));
  const page = (await get(`${e.url}/`)).text;
  evil.close();
  evil.closeAllConnections();
  assert.match(page, /&#60;script&#62;alert\(1\)&#60;\/script&#62;/);
  assert.doesNotMatch(page, /<script>/);
});

test('probe traffic is identifiable (User-Agent, X-Qwen-Sentinel-Probe, X-Request-Id); vary_prompt defeats a prefix cache', async () => {
  const { createServer } = await import('node:http');
  const seen: Array<{ url: string; headers: Record<string, string | string[] | undefined>; prompt?: string }> = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d));
    req.on('end', () => {
      const prompt = body ? (JSON.parse(body) as { messages: Array<{ content: string }> }).messages[0]!.content : undefined;
      seen.push({ url: req.url!, headers: req.headers, ...(prompt === undefined ? {} : { prompt }) });
      if (req.url === '/v1/models') return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"data":[{"id":"m"}]}');
      res.writeHead(200, { 'content-type': 'text/event-stream' }).end(`data: ${JSON.stringify({ choices: [{ delta: { content: 'OK' }, finish_reason: 'stop' }] })}\n\ndata: [DONE]\n\n`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const target = `http://127.0.0.1:${(server.address() as { port: number }).port}/v1`;
    const e = await exporter({ modules: { varied: { server: 'openai', probes: ['models', 'chat'], chat: { vary_prompt: true } } } });
    for (let i = 0; i < 2; i++) assert.equal((await get(probeUrl(e.url, { target, module: 'varied' }))).status, 200);
    assert.equal(seen.length, 4);
    for (const { url, headers } of seen) {
      assert.match(String(headers['user-agent']), /^qwen-sentinel\/\d+\.\d+\.\d+$/);
      assert.equal(headers['x-qwen-sentinel-probe'], url === '/v1/models' ? 'models' : 'chat');
      assert.match(String(headers['x-request-id']), /^qwen-sentinel-[0-9a-f]{16}$/);
    }
    assert.equal(new Set(seen.map((s) => s.headers['x-request-id'])).size, 4, 'a fresh request id per request');
    const prompts = seen.flatMap((s) => (s.prompt === undefined ? [] : [s.prompt]));
    assert.equal(prompts.length, 2);
    for (const p of prompts) assert.match(p, /^\[[0-9a-f]{8}\] Count from 1 to 50, separated by spaces\.$/);
    assert.notEqual(prompts[0], prompts[1]);
  } finally {
    server.closeAllConnections();
    server.close();
  }
});
