// /metrics off the probing path: the exposition is written in slices with a turn of the event loop
// between them, concurrent scrapes share one rendering, and probes stay on schedule while scraped.
// The exporter runs in this process, so the tests watch its slices through the metricsWrite seam.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, test } from 'node:test';
import { parseConfig } from '../../src/cmd/config.ts';
import { startExporter, type RunningExporter } from '../../src/exporter/server.ts';
import { silentLogger } from '../../src/lib/log.ts';
import { startSim, type RunningSim } from '../../src/sim/server.ts';
import { eventually } from '../helpers/stack-child.ts';

const running: Array<{ close(): Promise<void> }> = [];
after(async () => {
  for (const r of running.reverse()) await r.close();
});

const renders = (text: string) => Number(/^qwen_sentinel_exporter_metrics_renders_total (\d+)$/m.exec(text)?.[1]);

test('two scrapes at once get the same body from one rendering; the next scrape renders anew', { timeout: 30_000 }, async () => {
  const sim: RunningSim = await startSim({ host: '127.0.0.1', port: 0 });
  running.push(sim);
  // Between slices, a held rendering waits for the gate: the second scrape then surely arrives mid-way.
  let hold = false;
  let held: () => void = () => {};
  const heldNow = new Promise<void>((resolve) => (held = resolve));
  let release: () => void = () => {};
  const gate = new Promise<void>((resolve) => (release = resolve));
  const yieldTurn = async () => {
    if (!hold) return new Promise<void>((resolve) => setImmediate(resolve));
    held();
    await gate;
  };
  const config = parseConfig({ targets: [{ name: 'one', url: `${sim.url}/v1`, server: 'vllm', interval: '500ms', timeout: '500ms' }] });
  const exporter: RunningExporter = await startExporter({ config, listen: { host: '127.0.0.1', port: 0 }, logger: silentLogger, metricsWrite: { sliceSeries: 1, turnMs: 0, yieldTurn } });
  running.push(exporter);
  const scrape = async () => (await fetch(`${exporter.url}/metrics`)).text();
  await eventually('a first round', 10_000, async () => ((await scrape()).includes('llm_server_up{target="one"') ? true : undefined));
  const before = renders(await scrape());

  let requests = 0;
  exporter.server.on('request', () => (requests += 1));
  hold = true;
  const first = scrape();
  await heldNow;
  const second = scrape();
  await eventually('the second scrape to reach the exporter', 5_000, async () => (requests >= 2 ? true : undefined));
  hold = false;
  release();
  const [a, b] = await Promise.all([first, second]);
  assert.equal(a, b, 'one rendering, two identical bodies');
  assert.equal(renders(a), before + 1, 'one rendering for the two scrapes');
  assert.match(a, /^llm_server_up\{target="one"/m);
  assert.equal(renders(await scrape()), before + 2, 'a scrape after it ended renders again');
});

test('1,000 targets stay on schedule while /metrics is scraped back to back', { timeout: 90_000 }, async (t) => {
  // A recording target: every target's listing request, with when it arrived.
  const listing = JSON.stringify({ object: 'list', data: [{ id: 'Qwen/Qwen3-0.6B', object: 'model', root: 'Qwen/Qwen3-0.6B' }] });
  const arrivals = new Map<string, number[]>();
  const stub: Server = createServer((req, res) => {
    const name = /^\/(t\d+)\/v1\/models$/.exec(req.url ?? '')?.[1];
    if (name === undefined) return void res.writeHead(404).end();
    let list = arrivals.get(name);
    if (!list) arrivals.set(name, (list = []));
    list.push(performance.now());
    res.writeHead(200, { 'content-type': 'application/json' }).end(listing);
  });
  await new Promise<void>((resolve) => stub.listen(0, '127.0.0.1', resolve));
  running.push({ close: () => new Promise<void>((resolve) => (stub.closeAllConnections(), stub.close(() => resolve()))) });
  const base = `http://127.0.0.1:${(stub.address() as AddressInfo).port}`;
  const n = 1000;
  const intervalMs = 5000;
  const config = parseConfig({
    modules: { listing: { server: 'vllm', probes: ['models'], timeout: '4s' } },
    targets: Array.from({ length: n }, (_, i) => ({ name: `t${i}`, url: `${base}/t${i}/v1`, module: 'listing', interval: `${intervalMs}ms`, timeout: '4s' })),
  });
  // The real turn between slices, counted, with how many probe requests had arrived by each. 1,000
  // targets render in a few ms, within the default 25 ms before a turn: here a turn comes after
  // every slice of 1,000 series, so each scrape has several.
  let arrived = 0;
  stub.on('request', () => (arrived += 1));
  const turns: number[] = [];
  const yieldTurn = () => new Promise<void>((resolve) => setImmediate(() => (turns.push(arrived), resolve())));
  const exporter = await startExporter({ config, listen: { host: '127.0.0.1', port: 0 }, logger: silentLogger, metricsWrite: { sliceSeries: 1000, turnMs: 0, yieldTurn } });
  running.push(exporter);
  await eventually('a first round of every target', 20_000, async () => (arrivals.size === n ? true : undefined));

  // Back-to-back scrapes over two intervals; per rendering, the probe requests that arrived between its first and last turn.
  const start = performance.now();
  let scrapes = 0;
  let duringRenders = 0;
  let slices = 0;
  while (performance.now() - start < 2 * intervalMs) {
    turns.length = 0;
    const text = await (await fetch(`${exporter.url}/metrics`)).text();
    assert.match(text, /^llm_probe_success\{target="t999",probe="models"\} 1$/m);
    scrapes += 1;
    slices += turns.length + 1;
    if (turns.length > 0) duringRenders += turns.at(-1)! - turns[0]!;
  }
  const end = performance.now();
  // Every round due in the window came, each within half an interval of its grid (the target's
  // first request and then one interval apart: the scheduler's fixed grid).
  let late = 0;
  let rounds = 0;
  for (const [name, list] of arrivals) {
    const inWindow = list.filter((at) => at >= start && at <= end);
    assert.ok(inWindow.length >= 1, `${name}: no round during the scrapes`);
    for (let k = 1; k < list.length; k++) {
      if (list[k]! < start || list[k]! > end) continue;
      rounds += 1;
      late = Math.max(late, list[k]! - (list[0]! + k * intervalMs));
    }
  }
  t.diagnostic(`${scrapes} scrapes, ${(slices / scrapes).toFixed(1)} slices each; ${duringRenders} probe requests arrived while a rendering was under way; ${rounds} rounds, latest ${late.toFixed(0)} ms after its grid`);
  assert.ok(scrapes >= 5);
  assert.ok(slices / scrapes >= 4, 'a rendering of 1,000 targets spans several turns of the event loop');
  assert.ok(duringRenders > 0, 'probes ran while renderings were under way');
  assert.ok(late < intervalMs / 2, `a round ${late.toFixed(0)} ms behind its grid`);
});
