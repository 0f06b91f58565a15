// scale: the exporter with N targets at 15 s, beside blackbox_exporter doing the same work at the
// same rate in the same run; the same through /probe, driven as Prometheus drives it; /metrics at
// 10,000 targets on a busy machine; how many series one target adds per shipped module; whether two
// scrapes of one target at once share a round; and the idle memory of each component. CPU comes
// from /proc/PID/stat (user + system) over a window of whole intervals, probes from the exporter's
// own llm_probes_total (through /probe, and for blackbox_exporter: the answers the bench's driver
// got); memory from /proc/PID/status; series from the sample lines of the expositions.
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { startBareServer } from './lib/bare-server.ts';
import { startBurners } from './lib/burners.ts';
import { firstModel } from './lib/chat-check.ts';
import { latenessOf, type Lateness } from './lib/lateness.ts';
import { freePort, getJson, getText, parseExposition, sumOf, waitFor } from './lib/net.ts';
import { findBlackbox } from './lib/peers.ts';
import { driveProbes, type DriveResult } from './lib/probe-driver.ts';
import { cpuSeconds, memoryMB, type Child } from './lib/procs.ts';
import { startService, startSim, writeConfig, type RunningSim } from './lib/product.ts';
import { startRecordingUpstream } from './lib/recording-upstream.ts';
import { startBenchRemediator } from './lib/remediator.ts';
import { linesByName, sampleLines, targetSeries } from './lib/series-count.ts';
import { percentile, value } from './lib/stats.ts';
import type { BenchContext, Figure, Goal, Sample, Suite, SuiteResult } from './lib/types.ts';

const intervalSeconds = 15;
const T = intervalSeconds * 1000;
const stubScript = fileURLToPath(new URL('./stub-target.ts', import.meta.url));

interface Targets {
  /** Every target's base URL, markers included (spread evenly through the list). */
  urls: string[];
  markers: number;
}

/**
 * N targets: most on the simulator (told apart by name only), a few markers on the recording stub,
 * spread evenly through the list: the scheduler spreads first rounds by position, so the markers'
 * rounds sample the whole interval (a stall of the event loop shows whenever in it it happens).
 */
function targetsFor(n: number, sim: RunningSim, stub: string): Targets {
  const markers = n <= 10 ? 1 : Math.min(20, Math.floor(n / 10));
  const step = Math.floor(n / markers);
  let k = 0;
  const urls = Array.from({ length: n }, (_, i) => (i % step === step - 1 && k < markers ? `${stub}/m${k++}/v1` : sim.base));
  return { urls, markers };
}

async function startStub(ctx: BenchContext, sim: RunningSim, name: string): Promise<{ child: Child; url: string }> {
  const listing = join(ctx.dir, `${name}-listing.json`);
  await writeFile(listing, (await getText(`${sim.base}/models`))!);
  const port = await freePort();
  const child = ctx.procs.spawn(name, ctx.product.node, [stubScript, String(port), listing], { logFile: join(ctx.dir, `${name}.log`) });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(`${name} listening`, 10_000, async () => ((await getText(`${url}/arrivals`, 1000)) ? true : undefined), ctx.signal, 100);
  return { child, url };
}

interface Scrape {
  bytes: number;
  ms: number;
  probes: number;
  failures: number;
  up0: number;
  lagP99?: number | undefined;
  lagMax?: number | undefined;
  /** The exporter's main thread over the scrape: time it ran, and time it was ready but waited for a CPU. */
  mainRunMs?: number | undefined;
  mainWaitMs?: number | undefined;
}

/** The exporter's main thread: nanoseconds it ran and waited on a run queue (/proc/PID/task/PID/schedstat). */
function schedstat(pid: number | undefined): [number, number] | undefined {
  if (pid === undefined) return undefined;
  try {
    const [run, wait] = readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').split(' ').map(Number);
    return [run!, wait!];
  } catch {
    return undefined;
  }
}

async function scrape(url: string, pid?: number): Promise<Scrape> {
  const before = schedstat(pid);
  const t0 = performance.now();
  const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(60_000) });
  const text = await res.text();
  const ms = performance.now() - t0;
  const after = schedstat(pid);
  const wanted = new Set(['llm_probes_total', 'llm_probe_failures_total', 'llm_server_up', 'nodejs_eventloop_lag_p99_seconds', 'nodejs_eventloop_lag_max_seconds']);
  const samples = parseExposition(text, (n) => wanted.has(n));
  const one = (name: string) => samples.find((s) => s.name === name)?.value;
  return {
    bytes: Buffer.byteLength(text),
    ms,
    probes: sumOf(samples, 'llm_probes_total'),
    failures: sumOf(samples, 'llm_probe_failures_total'),
    up0: samples.filter((s) => s.name === 'llm_server_up' && s.value === 0).length,
    lagP99: one('nodejs_eventloop_lag_p99_seconds'),
    lagMax: one('nodejs_eventloop_lag_max_seconds'),
    mainRunMs: before && after ? (after[0] - before[0]) / 1e6 : undefined,
    mainWaitMs: before && after ? (after[1] - before[1]) / 1e6 : undefined,
  };
}

/** From the stub's arrival times: lateness of each marker's rounds within [from, to] (epoch ms). */
async function lateness(stub: string, from: number, to: number): Promise<Lateness> {
  return latenessOf((await getJson<Record<string, number[]>>(`${stub}/arrivals`)) ?? {}, from, to, T);
}

interface OursRun {
  cpuPerProbeMs: number;
  probes: number;
  failures: number;
  up0: number;
  rssMB: number;
  peakMB: number;
  metrics: Scrape[];
  lateness: Lateness;
  readySeconds: number;
  /** Set when the window ran on a busy machine: what the busy loops got. */
  busy?: { burners: number; cpuSeconds: number; seconds: number; load: string } | undefined;
}

/**
 * The exporter with these targets and module; a window of `intervals` whole intervals after a
 * warm-up. `busy`: busy loops (one per core) run from the end of the start-up to the end of the window.
 */
async function runOurs(ctx: BenchContext, name: string, targets: Targets, module: object, intervals: number, stub: string, opts: { busy?: boolean } = {}): Promise<OursRun> {
  const config = await writeConfig(ctx.dir, `${name}.yml`, {
    modules: { bench: module },
    targets: targets.urls.map((url, i) => ({ name: `t${String(i).padStart(5, '0')}`, url, module: 'bench', interval: `${intervalSeconds}s` })),
  });
  const t0 = performance.now();
  const exporter = await startService(ctx.procs, ctx.product, name, 'exporter', [`--config.file=${config}`], join(ctx.dir, `${name}.log`), ctx.signal, 120_000);
  let burners: ReturnType<typeof startBurners> | undefined;
  try {
    // Ready: every target has completed a round (a bounded wait: at 10,000 targets it may lag).
    await waitFor(`${name} ready`, 2 * T + 60_000, async () => ((await getText(`${exporter.url}/-/ready`, 5000)) !== undefined ? true : undefined), ctx.signal, 500).catch(() => undefined);
    const readySeconds = (performance.now() - t0) / 1000;
    // Each loop ends by itself after the window (and a margin), whatever happens here.
    if (opts.busy) burners = startBurners(ctx.procs, ctx.product.node, `${name}-burner`, 5000 + (intervals + 2) * T + 60_000);
    await sleep(5000, undefined, { signal: ctx.signal });
    const pid = exporter.child.pid;
    const first = await scrape(exporter.url);
    const cpu0 = cpuSeconds(pid);
    const from = Date.now();
    const scrapes: Scrape[] = [];
    for (let i = 1; i <= intervals; i++) {
      await sleep(Math.max(0, from + i * T - Date.now()), undefined, { signal: ctx.signal });
      scrapes.push(await scrape(exporter.url, pid));
    }
    const cpu1 = cpuSeconds(pid);
    const to = Date.now();
    const busy = burners ? { burners: burners.count, ...(await burners.stop()) } : undefined;
    burners = undefined;
    const last = scrapes.at(-1)!;
    const mem = memoryMB(pid);
    const probes = last.probes - first.probes;
    return {
      cpuPerProbeMs: ((cpu1 - cpu0) * 1000) / probes,
      probes,
      failures: last.failures - first.failures,
      up0: last.up0,
      rssMB: mem.rss,
      peakMB: mem.peak,
      metrics: scrapes,
      lateness: await lateness(stub, from, to),
      readySeconds,
      busy,
    };
  } finally {
    await burners?.stop();
    await exporter.child.stop(10_000);
  }
}

async function startBlackbox(ctx: BenchContext, bin: string, name: string): Promise<{ child: Child; url: string }> {
  const config = await writeConfig(ctx.dir, `${name}.yml`, { modules: { http_2xx: { prober: 'http', timeout: '10s', http: { preferred_ip_protocol: 'ip4' } } } });
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const child = ctx.procs.spawn(name, bin, [`--config.file=${config}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'], { logFile: join(ctx.dir, `${name}.log`) });
    const url = `http://127.0.0.1:${port}`;
    try {
      await waitFor(`${name} up`, 15_000, async () => {
        if (!child.running) throw new Error(`${name} exited`);
        return (await getText(`${url}/-/healthy`, 1000)) !== undefined ? true : undefined;
      }, ctx.signal, 100);
      return { child, url };
    } catch (err) {
      await child.stop(2000);
      if (attempt >= 2) throw err;
    }
  }
}

/** What counts as a successful probe in each exporter's /probe answer. */
const blackboxOk = (status: number, body: string) => status === 200 && /^probe_success 1$/m.test(body);
const oursOk = (status: number, body: string) => status === 200 && /^llm_probe_success\{[^}]*\} 1$/m.test(body) && !/^llm_probe_success\{[^}]*\} 0$/m.test(body);

/** blackbox_exporter's /probe path for a target base URL (…/v1): http_2xx on its listing. */
const blackboxPath = (base: string) => `/probe?module=http_2xx&target=${encodeURIComponent(`${base}/models`)}`;
/** Ours: the bench's listing-only module on the same URL. */
const oursPath = (base: string) => `/probe?module=bench&target=${encodeURIComponent(base)}`;

/** blackbox_exporter probing the same URLs' /models, driven as Prometheus would (lib/probe-driver.ts). */
async function runBlackbox(ctx: BenchContext, bin: string, name: string, urls: readonly string[], warmupMs: number, windowMs: number): Promise<DriveResult> {
  const bb = await startBlackbox(ctx, bin, name);
  try {
    return await driveProbes({ origin: bb.url, paths: urls.map(blackboxPath), intervalMs: T, warmupMs, windowMs, pid: bb.child.pid, ok: blackboxOk, signal: ctx.signal });
  } finally {
    await bb.child.stop(5000);
  }
}

/** An exporter with no targets of its own and the listing-only module: Prometheus drives it through /probe. */
async function startProbeExporter(ctx: BenchContext, name: string, module: object) {
  const config = await writeConfig(ctx.dir, `${name}.yml`, { modules: { bench: module }, targets: [] });
  return startService(ctx.procs, ctx.product, name, 'exporter', [`--config.file=${config}`], join(ctx.dir, `${name}.log`), ctx.signal);
}

/**
 * The floor of any Node HTTP service that probes: an ES module with a node:http server and one GET
 * of the listing every 15 s through node:http, nothing else (no framework, schema, logger or
 * metrics library). Node's own HTTP, stream and ESM code, compiled when first used, is most of the
 * difference to a bare `node -e`. Bounded: it exits by itself after an hour, and is stopped by pid.
 */
const bareProber = (url: string) => `
import http from 'node:http';
http.createServer((req, res) => res.end('ok')).listen(0, '127.0.0.1');
const get = () => http.get(${JSON.stringify(url)}, (res) => res.resume()).on('error', () => {});
get();
setInterval(get, 15_000);
setTimeout(() => process.exit(0), 3_600_000).unref();
`;

const mb = (label: string, id: string, samples: Sample[], goal?: Figure['goal'], note?: string): Figure => ({ id, label, unit: 'MB', samples, goal, note });
const count = (label: string, id: string, samples: Sample[], goal?: Goal, note?: string): Figure => ({ id, label, unit: 'count', samples, goal, note });

/** Idle memory: one process each, sampled every 5 s after a settling time. */
async function idleMemory(ctx: BenchContext, out: SuiteResult, blackbox: string | undefined): Promise<void> {
  const sim = await startSim(ctx.procs, ctx.product, 'idle-sim', [], join(ctx.dir, 'idle-sim.log'), ctx.signal);
  const config = await writeConfig(ctx.dir, 'idle-exporter.yml', { targets: [{ name: 'qwen3', url: sim.base, server: 'vllm', interval: '15s' }] });
  const exporter = await startService(ctx.procs, ctx.product, 'idle-exporter', 'exporter', [`--config.file=${config}`], join(ctx.dir, 'idle-exporter.log'), ctx.signal);
  const remediator = await startBenchRemediator(ctx, 'idle-remediator', sim.base);
  const bare = ctx.procs.spawn('bare-node', ctx.product.node, ['-e', 'setInterval(() => {}, 1000)']);
  const bareHttp = ctx.procs.spawn('bare-node-http', ctx.product.node, ['--input-type=module', '-e', bareProber(`${sim.base}/v1/models`)]);
  const bb = blackbox ? await startBlackbox(ctx, blackbox, 'idle-blackbox') : undefined;
  const idleGoal: Goal = { op: '<=', value: 65, on: 'median', text: '<= 65 MB (issue 18)' };
  const rows: Array<[string, string, Child, Figure['goal']]> = [
    ['scale.idle.exporter.rss', 'idle exporter, one target (module vllm, 15 s): RSS', exporter.child, idleGoal],
    ['scale.idle.remediator.rss', 'idle remediator, one target: RSS', remediator.child, idleGoal],
    ['scale.idle.node.rss', 'reference: bare node -e "setInterval(...)": RSS', bare, undefined],
    ['scale.idle.node_http.rss', 'reference: bare node:http server in ESM, GETting the same listing every 15 s: RSS', bareHttp, undefined],
    ...(bb ? [['scale.idle.blackbox.rss', 'reference: idle blackbox_exporter: RSS', bb.child, undefined] as [string, string, Child, Figure['goal']]] : []),
  ];
  const samples = new Map<string, Sample[]>(rows.map(([id]) => [id, []]));
  const split = new Map<string, { anon: number; file: number }>();
  await sleep(ctx.mode === 'quick' ? 10_000 : 20_000, undefined, { signal: ctx.signal });
  for (let i = 0; i < 3; i++) {
    for (const [id, , child] of rows) {
      const m = memoryMB(child.pid);
      samples.get(id)!.push(value(m.rss));
      split.set(id, m);
    }
    if (i < 2) await sleep(5000, undefined, { signal: ctx.signal });
  }
  for (const [id, label, , goal] of rows) {
    const m = split.get(id)!;
    out.figures.push(mb(label, id, samples.get(id)!, goal, `last sample: ${m.anon.toFixed(1)} MB anonymous (heaps, stacks) + ${m.file.toFixed(1)} MB file-backed (pages of the binary and libraries it touched, shared with other processes running them)`));
  }
  await Promise.all([exporter.child.stop(), remediator.child.stop(), bare.stop(), bareHttp.stop(), bb?.child.stop(), sim.child.stop()]);
}

/**
 * The simulator flavor that speaks each shipped module's server API. The shipped modules are the
 * server types (src/servers); `openai` is any OpenAI-compatible server: vLLM's flavor serves it.
 * A module the exporter knows and this table does not is reported in the notes, not measured.
 */
const flavorFor: Record<string, string> = { vllm: 'vllm', sglang: 'sglang', llamacpp: 'llamacpp', ollama: 'ollama', openai: 'vllm' };

/** The modules an exporter knows, read from its own answer to a /probe for one it does not. */
async function knownModules(url: string): Promise<string[] | undefined> {
  try {
    const res = await fetch(`${url}/probe?module=bench-no-such-module&target=${encodeURIComponent('http://127.0.0.1:9/v1')}`, { signal: AbortSignal.timeout(5000) });
    const m = /known: ([^)\n]*)\)/.exec(await res.text());
    return m?.[1]!.split(',').map((s) => s.trim()).filter(Boolean);
  } catch {
    return undefined;
  }
}

/** The families with the most lines, for the note: where a target's series go. */
const topFamilies = (text: string, k = 4) => [...linesByName(text)].sort((a, b) => b[1] - a[1]).slice(0, k).map(([n, c]) => `${n} ${c}`).join(', ');

/**
 * Series one target adds, per shipped module, against a simulator of the matching flavor: the
 * sample lines of /metrics carrying target="<name>" once every target has completed a round, and
 * the sample lines of a GET /probe answer. Counted as lines, whatever the names.
 */
async function seriesPerTarget(ctx: BenchContext, out: SuiteResult, blackbox: string | undefined): Promise<void> {
  const flavors = [...new Set(Object.values(flavorFor))];
  const sims = new Map<string, RunningSim>();
  const children: Child[] = [];
  try {
    for (const sim of await Promise.all(flavors.map((f) => startSim(ctx.procs, ctx.product, `series-sim-${f}`, [`--flavor=${f}`], join(ctx.dir, `series-sim-${f}.log`), ctx.signal).then((s) => [f, s] as const)))) {
      sims.set(sim[0], sim[1]);
      children.push(sim[1].child);
    }
    const models = new Map<string, string | undefined>();
    for (const [f, sim] of sims) models.set(f, await firstModel(sim.base));
    const modules = Object.keys(flavorFor);
    const name = (m: string) => `series-${m}`;
    const config = await writeConfig(ctx.dir, 'series-exporter.yml', {
      targets: modules.map((m) => ({ name: name(m), url: sims.get(flavorFor[m]!)!.base, module: m, model: models.get(flavorFor[m]!), interval: '15s' })),
    });
    const exporter = await startService(ctx.procs, ctx.product, 'series-exporter', 'exporter', [`--config.file=${config}`], join(ctx.dir, 'series-exporter.log'), ctx.signal);
    children.push(exporter.child);
    await waitFor('series-exporter ready', 60_000, async () => ((await getText(`${exporter.url}/-/ready`, 5000)) !== undefined ? true : undefined), ctx.signal, 250);
    const known = await knownModules(exporter.url);
    const unmeasured = (known ?? []).filter((m) => !(m in flavorFor));
    if (unmeasured.length) out.notes.push(`Series per target: the exporter also ships module(s) ${unmeasured.join(', ')}, which the bench has no simulator flavor for (bench/scale.ts flavorFor): not measured.`);
    if (!known) out.notes.push('Series per target: the exporter did not name its modules in its answer to an unknown one; the bench measured its own list.');
    const metrics = (await getText(`${exporter.url}/metrics`, 30_000)) ?? '';
    const budget: Goal = { op: '<=', value: 40, on: 'max', text: '<= 40 (issue 18)' };
    for (const m of modules) {
      const sim = sims.get(flavorFor[m]!)!;
      const model = models.get(flavorFor[m]!);
      const mine = sampleLines(metrics).filter((l) => targetSeries(l, name(m)) === 1).join('\n');
      const probes = [...new Set([...mine.matchAll(/probe="([^"]*)"/g)].map((x) => x[1]!))].join(', ');
      const failing = parseExposition(mine, (n) => n === 'llm_probe_success').filter((s) => s.value !== 1).map((s) => s.labels.probe ?? '?');
      const res = await fetch(`${exporter.url}/probe?module=${m}&target=${encodeURIComponent(sim.base)}${model ? `&model=${encodeURIComponent(model)}` : ''}`, { signal: AbortSignal.timeout(30_000) });
      const probeText = await res.text();
      const probeFailing = parseExposition(probeText, (n) => n === 'llm_probe_success').filter((s) => s.value !== 1).map((s) => s.labels.probe ?? '?');
      const health = (f: string[]) => (f.length ? `; NOT healthy: probe(s) ${f.join(', ')} failed` : '; every probe succeeded');
      out.figures.push(
        count(`module ${m} (probes ${probes || '?'}), simulator ${flavorFor[m]}: series one target adds to /metrics`, `scale.series_per_target.${m}`, [value(targetSeries(metrics, name(m)))], budget, `largest: ${topFamilies(mine)}${health(failing)}`),
        count(`module ${m}: series of one GET /probe answer`, `scale.series_per_target.${m}.probe`, [value(res.status === 200 ? sampleLines(probeText).length : Number.NaN)], budget, `${res.status === 200 ? `largest: ${topFamilies(probeText)}${health(probeFailing)}` : `status ${res.status}`}`),
      );
    }
    if (blackbox) {
      const bb = await startBlackbox(ctx, blackbox, 'series-blackbox');
      children.push(bb.child);
      const text = (await getText(`${bb.url}${blackboxPath(sims.get('vllm')!.base)}`, 15_000)) ?? '';
      out.figures.push(count('reference: blackbox_exporter http_2xx, series of one /probe answer (the same listing)', 'scale.series_per_target.blackbox_http', [value(sampleLines(text).length)], undefined, `probe_success ${/^probe_success (\S+)$/m.exec(text)?.[1] ?? '?'}`));
    }
  } finally {
    await Promise.all(children.map((c) => c.stop(5000)));
  }
}

/**
 * Through /probe, as Prometheus drives a multi-target exporter: N targets, each once per 15 s,
 * spread evenly, the same driver for ours and for blackbox_exporter, the same URLs (each target its
 * own path on the recording stub, so no two scrapes name the same target).
 */
async function probeDriven(ctx: BenchContext, out: SuiteResult, blackbox: string | undefined, stubUrl: string, module: object): Promise<void> {
  const quick = ctx.mode === 'quick';
  const intervals = quick ? 1 : 4;
  for (const n of [100, 1000]) {
    ctx.signal.throwIfAborted();
    // Node compiles the probing path while it runs it: at 100 targets (6.7 requests/s) the first
    // minute is still JIT work (Go has none), so the full run warms up for 4 intervals there.
    const warmupMs = quick ? 5000 : n === 100 ? 4 * T : T;
    ctx.log(`${n} targets through /probe: exporter, then blackbox_exporter`);
    const urls = Array.from({ length: n }, (_, k) => `${stubUrl}/m${100_000 + k}/v1`);
    const exporter = await startProbeExporter(ctx, `probe-exporter-${n}`, module);
    let ours: DriveResult;
    try {
      ours = await driveProbes({ origin: exporter.url, paths: urls.map(oursPath), intervalMs: T, warmupMs, windowMs: intervals * T, pid: exporter.child.pid, ok: oursOk, signal: ctx.signal });
    } finally {
      await exporter.child.stop(10_000);
    }
    const bb = blackbox ? await runBlackbox(ctx, blackbox, `probe-blackbox-${n}`, urls, warmupMs, intervals * T) : undefined;
    const floor = await startBareServer(ctx, `probe-floor-${n}`, 30 * 60_000, 'probe');
    let bare: DriveResult;
    try {
      bare = await driveProbes({ origin: floor.url, paths: urls.map(oursPath), intervalMs: T, warmupMs, windowMs: intervals * T, pid: floor.child.pid, ok: oursOk, signal: ctx.signal });
    } finally {
      await floor.child.stop(5000);
    }
    const at = `${n.toLocaleString('en')} targets through /probe`;
    const kinds = (r: DriveResult) => Object.entries(r.failureKinds).map(([k, c]) => `${k} x${c}`).join(', ');
    const drove = (r: DriveResult) => `${r.answers} answers, ${r.failures} failed${r.failures ? ` (${kinds(r)})` : ''}, ${r.retried} sent again after a stale kept-alive socket; driver at most ${r.lagMs.toFixed(0)} ms behind schedule`;
    out.figures.push(
      { id: `scale.probe.${n}.cpu_per_probe`, label: `${at}: exporter CPU per /v1/models probe`, unit: 'ms', samples: [value(ours.cpuPerAnswerMs)], note: `${drove(ours)}; over ${intervals} x 15 s after ${warmupMs / 1000} s of warm-up` },
      mb(`${at}: exporter RSS (end of window)`, `scale.probe.${n}.rss`, [value(ours.rssMB)]),
      count(`${at}: failed probes of healthy targets`, `scale.probe.${n}.false_failures`, [value(ours.failures)], { op: '==', value: 0, on: 'max', text: '0' }),
    );
    if (bb) {
      out.figures.push(
        { id: `scale.probe.${n}.blackbox_cpu_per_probe`, label: `${at}: blackbox_exporter CPU per probe (same URLs, same driver)`, unit: 'ms', samples: [value(bb.cpuPerAnswerMs)], note: `${drove(bb)}; RSS ${bb.rssMB.toFixed(0)} MB` },
        { id: `scale.probe.${n}.cpu_ratio`, label: `${at}: exporter / blackbox_exporter CPU per probe`, unit: 'x', samples: [value(ours.cpuPerAnswerMs / bb.cpuPerAnswerMs)], goal: n === 100 ? { op: '<=', value: 1, on: 'median', text: '<= 1x (issue 18)' } : { op: '<=', value: 0.5, on: 'median', text: '<= 0.5x (issue 18)' } },
      );
    }
    out.figures.push({ id: `scale.probe.${n}.floor_cpu_per_probe`, label: `${at}: reference: bare node:http /probe (one GET of the listing per request, nothing else): CPU per answer`, unit: 'ms', samples: [value(bare.cpuPerAnswerMs)], note: `${drove(bare)}; bench/lib/bare-server.ts (probe)` });
    if (bb) out.figures.push({ id: `scale.probe.${n}.floor_ratio`, label: `${at}: reference: bare node:http /probe / blackbox_exporter CPU per answer (the floor of a Node /probe)`, unit: 'x', samples: [value(bare.cpuPerAnswerMs / bb.cpuPerAnswerMs)] });
  }
}

/**
 * Two scrapes of one target at once (an HA pair of Prometheus servers): the listing answers after
 * 500 ms, the second /probe is sent 100 ms after the first, and the row counts the requests the
 * model server saw. Shared rounds: 1; a round per scrape: 2.
 */
async function coalescing(ctx: BenchContext, out: SuiteResult, blackbox: string | undefined, listing: Buffer, module: object): Promise<void> {
  const trials = ctx.mode === 'quick' ? 3 : 5;
  const upstream = await startRecordingUpstream(listing, 500);
  const exporter = await startProbeExporter(ctx, 'coalesce-exporter', module);
  const bb = blackbox ? await startBlackbox(ctx, blackbox, 'coalesce-blackbox') : undefined;
  const twoAtOnce = async (origin: string, path: (base: string) => string, ok: (status: number, body: string) => boolean, base: string) => {
    const one = () => fetch(`${origin}${path(base)}`, { headers: { 'x-prometheus-scrape-timeout-seconds': '10' }, signal: AbortSignal.timeout(15_000) }).then(async (r) => ok(r.status, await r.text())).catch(() => false);
    const first = one();
    await sleep(100);
    return (await Promise.all([first, one()])).filter(Boolean).length;
  };
  try {
    const seen: Sample[] = [];
    let answered = 0;
    for (let i = 0; i < trials; i++) {
      ctx.signal.throwIfAborted();
      answered += await twoAtOnce(exporter.url, oursPath, oursOk, `${upstream.origin}/c${i}/v1`);
      seen.push(value(upstream.requests(`/c${i}/v1/models`)));
    }
    out.figures.push(count('two /probe of one target at once (listing module, listing answers in 500 ms): requests the model server saw', 'scale.probe.coalesce.upstream_requests', seen, { op: '==', value: 1, on: 'max', text: '1: one shared round (issue 18)' }, `${answered} of ${2 * trials} answers a successful probe; 2 = each scrape ran its own round`));
    if (bb) {
      const bbSeen: Sample[] = [];
      for (let i = 0; i < trials; i++) {
        await twoAtOnce(bb.url, blackboxPath, blackboxOk, `${upstream.origin}/b${i}/v1`);
        bbSeen.push(value(upstream.requests(`/b${i}/v1/models`)));
      }
      out.figures.push(count('reference: the same against blackbox_exporter (it shares no rounds)', 'scale.probe.coalesce.blackbox_upstream_requests', bbSeen));
    }
  } finally {
    await Promise.all([exporter.child.stop(5000), bb?.child.stop(5000), upstream.close()]);
  }
}

/** Where each scrape's time went on the exporter's side: its main thread running, or waiting for a CPU. */
function schedNote(scrapes: readonly Scrape[]): string | undefined {
  const known = scrapes.filter((s) => s.mainRunMs !== undefined && s.mainWaitMs !== undefined);
  if (known.length === 0) return undefined;
  return `per scrape, the exporter's main thread ran / waited on the run queue (ready, no free core; /proc schedstat): ${known.map((s) => `${s.ms.toFixed(0)} ms = ${s.mainRunMs!.toFixed(0)} / ${s.mainWaitMs!.toFixed(0)}`).join(', ')}; it ran rendering, gzip's hand-off and the probes due meanwhile`;
}

/** The figures of one run of N targets on the scheduler (the exporter's own 15 s schedule). */
function scheduledFigures(out: SuiteResult, key: string, at: string, n: number, ours: OursRun, markers: number, issue18: boolean): void {
  out.figures.push(
    mb(`${at}: exporter RSS (end of window)`, `${key}.rss`, [value(ours.rssMB)], n === 1000 ? { op: '<=', value: 120, on: 'median', text: '<= 120 MB (issue 18)' } : n === 10000 ? { op: '<=', value: 300, on: 'median', text: '<= 300 MB (issue 18)' } : undefined, `peak ${ours.peakMB.toFixed(0)} MB`),
    { id: `${key}.metrics_bytes`, label: `${at}: /metrics size`, unit: 'MB', samples: ours.metrics.map((s) => value(s.bytes / 2 ** 20)), goal: issue18 ? { op: '<=', value: 5, on: 'max', text: '<= 5 MB (issue 18)' } : undefined },
    { id: `${key}.metrics_ms`, label: `${at}: /metrics time (request to last byte)`, unit: 'ms', samples: ours.metrics.map((s) => value(s.ms)), goal: issue18 ? { op: '<=', value: 250, on: 'max', text: 'max <= 250 ms (issue 18)' } : undefined, note: schedNote(ours.metrics) },
    { id: `${key}.late_p50`, label: `${at}: round start off schedule, median`, unit: 'ms', samples: [value(percentile(ours.lateness.late.map(Math.abs), 50))], note: `|gap between two round starts - 15 s| over ${ours.lateness.late.length} intervals of ${markers} marker target(s); signed median ${percentile(ours.lateness.late, 50).toFixed(1)} ms` },
    { id: `${key}.late_max`, label: `${at}: round start off schedule, worst`, unit: 'ms', samples: [value(Math.max(...ours.lateness.late.map(Math.abs)))], goal: n === 1000 ? { op: '<', value: 1000, on: 'max', text: 'within 1 s' } : n === 10000 ? { op: '<=', value: 100, on: 'max', text: '<= 100 ms (issue 18)' } : undefined },
    { id: `${key}.spread`, label: `${at}: markers' rounds spread over the interval`, unit: 's', samples: [value(ours.lateness.spread)], note: 'of 15 s: 0 = every round starts at the same instant' },
    { id: `${key}.false_failures`, label: `${at}: failed probes of healthy targets`, unit: 'count', samples: [value(ours.failures)], goal: { op: '==', value: 0, on: 'max', text: '0' }, note: `targets reading up=0 at the end: ${ours.up0}` },
  );
  const lag = ours.metrics.map((s) => s.lagMax).filter((v): v is number => v !== undefined);
  // The monitor samples once a second (src/build-info.ts) and reports each sample's whole
  // interval: the lag is what exceeds it.
  if (lag.length) out.figures.push({ id: `${key}.eventloop_lag_max`, label: `${at}: event loop lag, max (nodejs_eventloop_lag_max_seconds - 1 s)`, unit: 'ms', samples: lag.map((v) => value(Math.max(0, v * 1000 - 1000))) });
}

const cpuRatioGoal = (n: number): Goal => (n === 100 ? { op: '<=', value: 1, on: 'median', text: '<= 1x (issue 18)' } : n >= 1000 ? { op: '<=', value: 0.5, on: 'median', text: '<= 0.5x (issue 18)' } : { op: '<=', value: 0.5, on: 'median', text: '<= 0.5x (issue 9)' });

export const scale: Suite = {
  name: 'scale',
  summary: 'series per target per module; exporter at 10-10,000 targets (15 s) and through /probe vs blackbox_exporter at the same rate: CPU per probe, RSS, /metrics (busy at 10,000), lateness, false failures; /probe coalescing; idle RSS',
  estimate: { quick: 330, full: 1300 },
  async run(ctx: BenchContext, out: SuiteResult) {
    const quick = ctx.mode === 'quick';
    const blackbox = await findBlackbox();
    if (!blackbox) out.notes.push('blackbox_exporter is not installed, so the side-by-side figures are missing (test/real-server/build-blackbox-exporter.sh builds 0.23.0 from the Go module proxy into ~/.cache/qwen-sentinel/, or Debian/Ubuntu: sudo apt-get install prometheus-blackbox-exporter; the service need not run).');
    else out.notes.push(`blackbox_exporter: ${blackbox}.`);

    ctx.log('idle memory');
    await idleMemory(ctx, out, blackbox);

    ctx.log('series per target, per shipped module');
    await seriesPerTarget(ctx, out, blackbox);

    const sizes = quick ? [100] : [10, 100, 1000, 10000];
    const intervals = quick ? 2 : 4;
    const modelsOnly = { server: 'vllm', probes: ['models'] };
    for (const n of sizes) {
      ctx.signal.throwIfAborted();
      ctx.log(`${n} targets: exporter, then blackbox_exporter`);
      const sim = await startSim(ctx.procs, ctx.product, `scale-sim-${n}`, [], join(ctx.dir, `scale-sim-${n}.log`), ctx.signal);
      const stub = await startStub(ctx, sim, `scale-stub-${n}`);
      const targets = targetsFor(n, sim, stub.url);
      const ours = await runOurs(ctx, `scale-exporter-${n}`, targets, modelsOnly, intervals, stub.url);
      const bb = blackbox ? await runBlackbox(ctx, blackbox, `scale-blackbox-${n}`, targets.urls, 3000, intervals * T) : undefined;
      await Promise.all([sim.child.stop(), stub.child.stop()]);
      const at = `${n.toLocaleString('en')} targets`;
      out.figures.push({ id: `scale.${n}.cpu_per_probe`, label: `${at}: exporter CPU per /v1/models probe`, unit: 'ms', samples: [value(ours.cpuPerProbeMs)], note: `${ours.probes} probes in ${intervals} x 15 s; ready after ${ours.readySeconds.toFixed(1)} s` });
      if (bb) {
        out.figures.push(
          { id: `scale.${n}.blackbox_cpu_per_probe`, label: `${at}: blackbox_exporter CPU per probe (same URLs, same rate)`, unit: 'ms', samples: [value(bb.cpuPerAnswerMs)], note: `${bb.answers} probes, ${bb.failures} failed; driver at most ${bb.lagMs.toFixed(0)} ms behind schedule; RSS ${bb.rssMB.toFixed(0)} MB` },
          { id: `scale.${n}.cpu_ratio`, label: `${at}: exporter / blackbox_exporter CPU per probe`, unit: 'x', samples: [value(ours.cpuPerProbeMs / bb.cpuPerAnswerMs)], goal: cpuRatioGoal(n) },
        );
      }
      scheduledFigures(out, `scale.${n}`, at, n, ours, targets.markers, n === 10000);
    }

    // 10,000 targets on a busy machine: does /metrics hold up the probes?
    {
      ctx.signal.throwIfAborted();
      const n = 10000;
      ctx.log(`${n} targets on a busy machine: /metrics and lateness`);
      const sim = await startSim(ctx.procs, ctx.product, 'busy-sim', [], join(ctx.dir, 'busy-sim.log'), ctx.signal);
      const stub = await startStub(ctx, sim, 'busy-stub');
      const targets = targetsFor(n, sim, stub.url);
      const ours = await runOurs(ctx, 'busy-exporter', targets, modelsOnly, intervals, stub.url, { busy: true });
      await Promise.all([sim.child.stop(), stub.child.stop()]);
      const at = `${n.toLocaleString('en')} targets, busy machine`;
      out.figures.push({ id: 'scale.busy.10000.cpu_per_probe', label: `${at}: exporter CPU per /v1/models probe`, unit: 'ms', samples: [value(ours.cpuPerProbeMs)], note: `${ours.probes} probes in ${intervals} x 15 s (${(ours.probes / (intervals * intervalSeconds)).toFixed(0)}/s of the ${(n / intervalSeconds).toFixed(0)}/s due); ready after ${ours.readySeconds.toFixed(1)} s` });
      scheduledFigures(out, 'scale.busy.10000', at, n, ours, targets.markers, true);
      if (ours.busy) out.notes.push(`Busy machine (10,000 targets): ${ours.busy.burners} \`node -e\` busy loops (one per core, at least 2; bench/lib/burners.ts, each ending by itself, stopped by pid) ran from the end of the exporter's start-up to the end of the window beside the exporter, the simulator and the stub; they got ${ours.busy.cpuSeconds.toFixed(0)} CPU-s in ${ours.busy.seconds.toFixed(0)} s (${(ours.busy.cpuSeconds / ours.busy.seconds).toFixed(2)} cores); load average at the end ${ours.busy.load}.`);
    }

    // Through /probe, and two scrapes of one target at once.
    {
      ctx.signal.throwIfAborted();
      const sim = await startSim(ctx.procs, ctx.product, 'probe-sim', [], join(ctx.dir, 'probe-sim.log'), ctx.signal);
      const stub = await startStub(ctx, sim, 'probe-stub');
      const listing = Buffer.from((await getText(`${sim.base}/models`)) ?? '{"object":"list","data":[]}');
      try {
        await probeDriven(ctx, out, blackbox, stub.url, modelsOnly);
        ctx.log('two /probe of one target at once');
        await coalescing(ctx, out, blackbox, listing, modelsOnly);
      } finally {
        await Promise.all([sim.child.stop(), stub.child.stop()]);
      }
    }

    // The shipped module (listing, health, progress, a streamed chat): what a round really costs.
    const realistic = quick ? [100] : [100, 1000];
    for (const n of realistic) {
      ctx.signal.throwIfAborted();
      ctx.log(`${n} targets with the shipped vllm module`);
      const sim = await startSim(ctx.procs, ctx.product, `scale-sim-vllm-${n}`, [], join(ctx.dir, `scale-sim-vllm-${n}.log`), ctx.signal);
      const stub = await startStub(ctx, sim, `scale-stub-vllm-${n}`);
      // The markers stay on the listing only (the stub cannot stream a chat): they time the scheduler.
      const targets = targetsFor(n, sim, stub.url);
      const config = { server: 'vllm' };
      const ours = await runOurs(ctx, `scale-exporter-vllm-${n}`, { urls: targets.urls.filter((u) => u === sim.base), markers: 0 }, config, quick ? 1 : 2, stub.url);
      await Promise.all([sim.child.stop(), stub.child.stop()]);
      const rounds = ours.probes / 4;
      const at = `${n.toLocaleString('en')} targets, module vllm`;
      out.figures.push(
        { id: `scale.vllm.${n}.cpu_per_round`, label: `${at}: exporter CPU per round (4 probes)`, unit: 'ms', samples: [value(ours.cpuPerProbeMs * 4)], note: `${Math.round(rounds)} rounds` },
        mb(`${at}: exporter RSS (end of window)`, `scale.vllm.${n}.rss`, [value(ours.rssMB)], undefined, `peak ${ours.peakMB.toFixed(0)} MB`),
        { id: `scale.vllm.${n}.metrics_bytes`, label: `${at}: /metrics size`, unit: 'MB', samples: ours.metrics.map((s) => value(s.bytes / 2 ** 20)) },
        { id: `scale.vllm.${n}.false_failures`, label: `${at}: failed probes of healthy targets`, unit: 'count', samples: [value(ours.failures)], goal: { op: '==', value: 0, on: 'max', text: '0' }, note: `targets reading up=0 at the end: ${ours.up0}` },
      );
    }
    out.notes.push(
      `Side by side: per size, one simulator (flavor vllm) serves every target, told apart by name only (targets differ in nothing else, so the exporter's per-origin connection pool is shared), plus marker targets on a recording stub that answers the simulator's own listing bytes and timestamps each request: their lateness is (gap between two round starts) - 15 s. The exporter runs a module of the models probe alone (GET /v1/models, 200, a JSON list), at 15 s; blackbox_exporter's http_2xx probes the same /v1/models URLs, each once per 15 s, spread evenly over the interval (as Prometheus spreads scrapes), driven by the bench through /probe (bench/lib/probe-driver.ts). CPU is each process's own user + system time over ${intervals} whole intervals after a warm-up (the exporter's /metrics scraped once per interval within it), divided by the probes completed in it. Both run one after the other against the same simulator.`,
      `Through /probe: the exporter with no targets of its own and the same listing-only module, and blackbox_exporter, each driven by the same driver (bench/lib/probe-driver.ts: every target once per 15 s, spread evenly, X-Prometheus-Scrape-Timeout-Seconds: 10, up to 64 kept-alive connections), one after the other, at 100 and 1,000 targets, each target its own path on the recording stub (no two scrapes of one target); CPU per answer over ${quick ? 1 : 4} x 15 s after a warm-up of ${quick ? 5 : 15} s. The driver retires a connection idle for 1 s and sends a request again once when its kept-alive socket was closed under it before any answer (Node's server closes idle sockets after 5 s: a driver artifact, not a failed probe; the count is in each footnote).`,
      'Series per target: one exporter with one target per shipped module, each against a simulator of the matching flavor (openai: the vllm flavor), counted once every target completed a round: the sample lines of /metrics carrying its target label, and the sample lines of one GET /probe answer per module (by line, whatever the metric names).',
      'The module-vllm rows run the shipped module (models, health, progress, a 32-token streamed chat at the simulator\'s default 50 tokens/s) against one simulator; per round = per 4 probes.',
      'Idle memory: each process started alone (the exporter probing one simulator at 15 s with the shipped vllm module; the remediator with one command target), sampled 3 times 5 s apart after settling. Every product process runs compiled (dist/), as deployed (bin/qwen-sentinel.js runs the same dist/cli.js with node directly, no npm exec wrapper).',
    );
  },
};
