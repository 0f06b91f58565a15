import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { request } from 'node:http';
import { after, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { parseConfig } from '../../src/cmd/config.ts';
import { startExporter, type RunningExporter } from '../../src/exporter/server.ts';
import { silentLogger } from '../../src/lib/log.ts';
import { startSim, type RunningSim } from '../../src/sim/server.ts';
import { eventually } from '../helpers/stack-child.ts';
import { requireBinary } from '../helpers/require-binary.ts';

const promtool = requireBinary('promtool');
const running: Array<RunningSim | RunningExporter> = [];
after(async () => {
  for (const r of running.reverse()) await r.close();
});

async function setup() {
  const healthy = await startSim({ host: '127.0.0.1', port: 0, ttftMs: 20, tokensPerSecond: 200 });
  const hung = await startSim({ host: '127.0.0.1', port: 0, fault: 'hang' });
  running.push(healthy, hung);
  const config = parseConfig({
    targets: [
      { name: 'healthy', url: `${healthy.url}/v1`, server: 'vllm', interval: '500ms', timeout: '500ms' },
      { name: 'hung', url: `${hung.url}/v1`, interval: '1s', timeout: '1s' },
    ],
  });
  const exporter = await startExporter({ config, listen: { host: '127.0.0.1', port: 0 }, logger: silentLogger });
  running.push(exporter);
  const scrape = async () => (await fetch(`${exporter.url}/metrics`)).text();
  return { healthy, exporter, scrape };
}

const value = (text: string, series: string) => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

test('serves probe results as metrics; a hung target does not hold up a healthy one', { timeout: 30_000 }, async () => {
  const { healthy, exporter, scrape } = await setup();
  assert.equal((await fetch(`${exporter.url}/-/healthy`)).status, 200);
  // Rounds of the healthy target keep coming while the hung one sits out its 1 s deadlines.
  const text = await eventually('three rounds of the healthy target', 10_000, async () => {
    const t = await scrape();
    return (value(t, 'llm_probes_total{target="healthy",probe="chat"}') ?? 0) >= 3 ? t : undefined;
  });
  assert.equal(value(text, 'llm_server_up{target="healthy",model="Qwen/Qwen3-0.6B"}'), 1);
  assert.equal(value(text, 'llm_probe_success{target="healthy",probe="chat"}'), 1);
  assert.ok(value(text, 'llm_probe_time_to_first_token_seconds{target="healthy",probe="chat"}')! > 0.015);
  // Published when the client could time the tokens (chunks in reads of their own), and then right.
  const rate = value(text, 'llm_probe_tokens_per_second{target="healthy",probe="chat"}');
  assert.ok(rate === undefined || rate > 50, `tokens/s ${rate}`);
  assert.equal(value(text, 'llm_probe_success{target="healthy",probe="health"}'), 1, 'the vllm module probes /health too');
  assert.equal(value(text, 'llm_probe_failures_total{target="healthy",probe="models",reason="connect_refused"}'), undefined, 'created at the first failure of its reason');
  assert.doesNotMatch(text, /^llm_probe_failure_reason\{target="healthy"/m, 'no reason series while the probes succeed');
  assert.match(text, /^qwen_sentinel_build_info\{version="[^"]+",nodejs="v\d+/m);
  assert.match(text, /^process_cpu_seconds_total /m);

  const hung = await eventually('the hung target to time out', 10_000, async () => {
    const t = await scrape();
    return (value(t, 'llm_probe_failures_total{target="hung",probe="models",reason="timeout"}') ?? 0) >= 1 && t.includes('llm_server_up{target="hung"') ? t : undefined;
  });
  assert.equal(value(hung, 'llm_server_up{target="hung",model=""}'), 0);
  assert.equal((await fetch(`${exporter.url}/-/ready`)).status, 200);

  // The server goes away: refused connections, up 0, and no stale TTFT or rate.
  await healthy.close();
  const down = await eventually('connect_refused', 10_000, async () => {
    const t = await scrape();
    return (value(t, 'llm_probe_failures_total{target="healthy",probe="models",reason="connect_refused"}') ?? 0) >= 1 ? t : undefined;
  });
  assert.equal(value(down, 'llm_server_up{target="healthy",model="Qwen/Qwen3-0.6B"}'), 0);
  assert.equal(value(down, 'llm_probe_failure_reason{target="healthy",probe="models",reason="connect_refused"}'), 1);
  assert.equal(value(down, 'llm_probe_failure_reason{target="healthy",probe="models",reason="timeout"}'), undefined, 'only the reason of the last run');
  await eventually('the chat gauges to be dropped', 10_000, async () => {
    const t = await scrape();
    return value(t, 'llm_probe_time_to_first_token_seconds{target="healthy",probe="chat"}') === undefined && value(t, 'llm_probe_tokens_per_second{target="healthy",probe="chat"}') === undefined ? true : undefined;
  });
});

test('the whole exposition, default process metrics included, passes promtool check metrics', { skip: !promtool && 'promtool missing', timeout: 30_000 }, async () => {
  const { scrape } = await setup();
  await eventually('a first round', 10_000, async () => ((await scrape()).includes('llm_server_up{target="healthy"') ? true : undefined));
  const text = await scrape();
  assert.match(text, /^nodejs_active_handles\{/m, 'the handle counts are still there, under their gauge name');
  const result = await new Promise<{ code: number; out: string }>((resolve) => {
    const child = execFile(promtool!, ['check', 'metrics'], (err, stdout, stderr) => resolve({ code: err ? 1 : 0, out: stdout + stderr }));
    child.stdin!.end(text);
  });
  assert.equal(result.code, 0, result.out);
  assert.equal(result.out.trim(), '', 'no lint warnings either');
});

test('gzip when the scraper accepts it (as Prometheus does): the same exposition, and it passes promtool check metrics', { skip: !promtool && 'promtool missing', timeout: 30_000 }, async () => {
  const { exporter, scrape } = await setup();
  await eventually('a first round', 10_000, async () => ((await scrape()).includes('llm_server_up{target="healthy"') ? true : undefined));
  // node:http, so the body arrives as sent (fetch would decompress it unasked).
  const get = (headers: Record<string, string>) =>
    new Promise<{ headers: Record<string, unknown>; body: Buffer }>((resolve, reject) => {
      request(`${exporter.url}/metrics`, { headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ headers: res.headers, body: Buffer.concat(chunks) }));
      }).on('error', reject).end();
    });
  const zipped = await get({ 'accept-encoding': 'gzip' });
  assert.equal(zipped.headers['content-encoding'], 'gzip');
  assert.match(String(zipped.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  const text = gunzipSync(zipped.body).toString();
  assert.match(text, /^llm_server_up\{target="healthy"/m);
  assert.match(text, /^process_cpu_seconds_total /m);
  const plain = await get({ 'accept-encoding': 'gzip;q=0, identity' });
  assert.equal(plain.headers['content-encoding'], undefined, 'q=0 refuses gzip');
  assert.match(plain.body.toString(), /^# HELP /);
  const result = await new Promise<{ code: number; out: string }>((resolve) => {
    const child = execFile(promtool!, ['check', 'metrics'], (err, stdout, stderr) => resolve({ code: err ? 1 : 0, out: stdout + stderr }));
    child.stdin!.end(text);
  });
  assert.equal(result.code, 0, result.out);
  assert.equal(result.out.trim(), '', 'no lint warnings either');
});
