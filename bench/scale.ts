// scale: the exporter with N targets at 15 s, beside blackbox_exporter doing the same work at the
// same rate in the same run; and the idle memory of each component. CPU comes from
// /proc/PID/stat (user + system) over a window of whole intervals, probes from the exporter's own
// llm_probes_total (blackbox: the answers the bench's driver got); memory from /proc/PID/status.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'undici';
import { cpuSeconds, memoryMB, type Child } from './lib/procs.ts';
import { freePort, getJson, getText, parseExposition, sumOf, waitFor } from './lib/net.ts';
import { startBenchRemediator } from './lib/remediator.ts';
import { startService, startSim, which, writeConfig, type RunningSim } from './lib/product.ts';
import { percentile, value } from './lib/stats.ts';
import type { BenchContext, Figure, Sample, Suite, SuiteResult } from './lib/types.ts';

const intervalSeconds = 15;
const T = intervalSeconds * 1000;
const stubScript = fileURLToPath(new URL('./stub-target.ts', import.meta.url));

interface Targets {
  /** Every target's base URL, markers included (the last ones). */
  urls: string[];
  markers: number;
}

/** N targets: most on the simulator (told apart by name only), a few markers on the recording stub. */
function targetsFor(n: number, sim: RunningSim, stub: string): Targets {
  const markers = n <= 10 ? 1 : Math.min(20, Math.floor(n / 10));
  const urls = [...Array.from({ length: n - markers }, () => sim.base), ...Array.from({ length: markers }, (_, k) => `${stub}/m${k}/v1`)];
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
}

async function scrape(url: string): Promise<Scrape> {
  const t0 = performance.now();
  const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(60_000) });
  const text = await res.text();
  const ms = performance.now() - t0;
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
  };
}

interface Lateness {
  /** ms each round started after it was due (gap between two round starts minus the interval). */
  late: number[];
  /** Over how much of the interval the markers' rounds are spread (s); 0 = all at once. */
  spread: number;
  rounds: number;
}

/** From the stub's arrival times: lateness of each marker's rounds within [from, to] (epoch ms). */
async function lateness(stub: string, from: number, to: number): Promise<Lateness> {
  const arrivals = (await getJson<Record<string, number[]>>(`${stub}/arrivals`)) ?? {};
  const late: number[] = [];
  const phases: number[] = [];
  let rounds = 0;
  for (const times of Object.values(arrivals)) {
    const inWindow = times.filter((t) => t >= from && t <= to);
    rounds += inWindow.length;
    const anchor = times.filter((t) => t < from).at(-1);
    const series = anchor === undefined ? inWindow : [anchor, ...inWindow];
    for (let i = 1; i < series.length; i++) late.push(series[i]! - series[i - 1]! - T);
    if (inWindow[0] !== undefined) phases.push((inWindow[0] - from) % T);
  }
  // The smallest arc of the interval holding every marker's phase.
  phases.sort((a, b) => a - b);
  let largestGap = phases.length ? T - (phases.at(-1)! - phases[0]!) : T;
  for (let i = 1; i < phases.length; i++) largestGap = Math.max(largestGap, phases[i]! - phases[i - 1]!);
  return { late, spread: phases.length > 1 ? (T - largestGap) / 1000 : 0, rounds };
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
}

/** The exporter with these targets and module; a window of `intervals` whole intervals after a warm-up. */
async function runOurs(ctx: BenchContext, name: string, targets: Targets, module: object, intervals: number, stub: string): Promise<OursRun> {
  const config = await writeConfig(ctx.dir, `${name}.yml`, {
    modules: { bench: module },
    targets: targets.urls.map((url, i) => ({ name: `t${String(i).padStart(5, '0')}`, url, module: 'bench', interval: `${intervalSeconds}s` })),
  });
  const t0 = performance.now();
  const exporter = await startService(ctx.procs, ctx.product, name, 'exporter', [`--config.file=${config}`], join(ctx.dir, `${name}.log`), ctx.signal, 120_000);
  try {
    // Ready: every target has completed a round (a bounded wait: at 10,000 targets it may lag).
    await waitFor(`${name} ready`, 2 * T + 60_000, async () => ((await getText(`${exporter.url}/-/ready`, 5000)) !== undefined ? true : undefined), ctx.signal, 500).catch(() => undefined);
    const readySeconds = (performance.now() - t0) / 1000;
    await sleep(5000, undefined, { signal: ctx.signal });
    const pid = exporter.child.pid;
    const first = await scrape(exporter.url);
    const cpu0 = cpuSeconds(pid);
    const from = Date.now();
    const scrapes: Scrape[] = [];
    for (let i = 1; i <= intervals; i++) {
      await sleep(Math.max(0, from + i * T - Date.now()), undefined, { signal: ctx.signal });
      scrapes.push(await scrape(exporter.url));
    }
    const cpu1 = cpuSeconds(pid);
    const to = Date.now();
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
    };
  } finally {
    await exporter.child.stop(10_000);
  }
}

interface BlackboxRun {
  cpuPerProbeMs: number;
  probes: number;
  failures: number;
  rssMB: number;
  /** How far behind schedule the bench's driver fell (ms, worst): it must have kept the rate. */
  driverLagMs: number;
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

/** blackbox_exporter probing the same URLs' /models, driven as Prometheus would: each target once per interval, spread evenly. */
async function runBlackbox(ctx: BenchContext, bin: string, name: string, targets: Targets, intervals: number): Promise<BlackboxRun> {
  const bb = await startBlackbox(ctx, bin, name);
  const pool = new Pool(bb.url, { connections: 64 });
  const n = targets.urls.length;
  const paths = targets.urls.map((u) => `/probe?module=http_2xx&target=${encodeURIComponent(`${u}/models`)}`);
  const start = performance.now() + 100;
  const warmup = 3000;
  const end = start + warmup + intervals * T;
  let k = 0;
  let inFlight = 0;
  let lag = 0;
  let window: { cpu0: number; from: number } | undefined;
  let probes = 0;
  let failures = 0;
  const pending = new Set<Promise<void>>();
  try {
    while (performance.now() < end) {
      ctx.signal.throwIfAborted();
      const now = performance.now();
      if (!window && now >= start + warmup) window = { cpu0: cpuSeconds(bb.child.pid), from: now };
      const due = start + (k * T) / n;
      if (due > now) {
        await sleep(Math.min(10, due - now));
        continue;
      }
      if (inFlight >= 256) {
        await sleep(1);
        continue;
      }
      lag = Math.max(lag, now - due);
      const path = paths[k % n]!;
      k++;
      inFlight++;
      const p = pool
        .request({ path, method: 'GET' })
        .then(async (res) => {
          const body = await res.body.text();
          const ok = res.statusCode === 200 && /^probe_success 1$/m.test(body);
          if (window && performance.now() <= end) {
            probes++;
            if (!ok) failures++;
          }
        })
        .catch(() => {
          if (window) (probes++, failures++);
        })
        .finally(() => {
          inFlight--;
          pending.delete(p);
        });
      pending.add(p);
    }
    const cpu1 = cpuSeconds(bb.child.pid);
    const mem = memoryMB(bb.child.pid);
    await Promise.allSettled([...pending]);
    return { cpuPerProbeMs: ((cpu1 - window!.cpu0) * 1000) / probes, probes, failures, rssMB: mem.rss, driverLagMs: lag };
  } finally {
    await pool.close().catch(() => undefined);
    await bb.child.stop(5000);
  }
}

const mb = (label: string, id: string, samples: Sample[], goal?: Figure['goal'], note?: string): Figure => ({ id, label, unit: 'MB', samples, goal, note });

/** Idle memory: one process each, sampled every 5 s after a settling time. */
async function idleMemory(ctx: BenchContext, out: SuiteResult, blackbox: string | undefined): Promise<void> {
  const sim = await startSim(ctx.procs, ctx.product, 'idle-sim', [], join(ctx.dir, 'idle-sim.log'), ctx.signal);
  const config = await writeConfig(ctx.dir, 'idle-exporter.yml', { targets: [{ name: 'qwen3', url: sim.base, server: 'vllm', interval: '15s' }] });
  const exporter = await startService(ctx.procs, ctx.product, 'idle-exporter', 'exporter', [`--config.file=${config}`], join(ctx.dir, 'idle-exporter.log'), ctx.signal);
  const remediator = await startBenchRemediator(ctx, 'idle-remediator', sim.base);
  const bare = ctx.procs.spawn('bare-node', ctx.product.node, ['-e', 'setInterval(() => {}, 1000)']);
  const bb = blackbox ? await startBlackbox(ctx, blackbox, 'idle-blackbox') : undefined;
  const rows: Array<[string, string, Child, Figure['goal']]> = [
    ['scale.idle.exporter.rss', 'idle exporter, one target (module vllm, 15 s): RSS', exporter.child, { op: '<', value: 80, on: 'median', text: '< 80 MB' }],
    ['scale.idle.remediator.rss', 'idle remediator, one target: RSS', remediator.child, { op: '<', value: 80, on: 'median', text: '< 80 MB' }],
    ['scale.idle.node.rss', 'reference: bare node -e "setInterval(...)": RSS', bare, undefined],
    ...(bb ? [['scale.idle.blackbox.rss', 'reference: idle blackbox_exporter: RSS', bb.child, undefined] as [string, string, Child, Figure['goal']]] : []),
  ];
  const samples = new Map<string, Sample[]>(rows.map(([id]) => [id, []]));
  await sleep(ctx.mode === 'quick' ? 10_000 : 20_000, undefined, { signal: ctx.signal });
  for (let i = 0; i < 3; i++) {
    for (const [id, , child] of rows) samples.get(id)!.push(value(memoryMB(child.pid).rss));
    if (i < 2) await sleep(5000, undefined, { signal: ctx.signal });
  }
  for (const [id, label, , goal] of rows) out.figures.push(mb(label, id, samples.get(id)!, goal));
  await Promise.all([exporter.child.stop(), remediator.child.stop(), bare.stop(), bb?.child.stop(), sim.child.stop()]);
}

export const scale: Suite = {
  name: 'scale',
  summary: 'exporter at 10-10,000 targets (15 s) vs blackbox_exporter at the same rate: CPU per probe, RSS, /metrics, lateness, false failures; idle RSS',
  estimate: { quick: 190, full: 680 },
  async run(ctx: BenchContext, out: SuiteResult) {
    const quick = ctx.mode === 'quick';
    const blackbox = (await which('prometheus-blackbox-exporter')) ?? (await which('blackbox_exporter'));
    if (!blackbox) out.notes.push('blackbox_exporter is not installed, so the side-by-side figures are missing (Debian/Ubuntu: sudo apt-get install prometheus-blackbox-exporter; the service need not run).');

    ctx.log('idle memory');
    await idleMemory(ctx, out, blackbox);

    const sizes = quick ? [10, 100] : [10, 100, 1000, 10000];
    const intervals = quick ? 2 : 4;
    const modelsOnly = { server: 'vllm', probes: ['models'] };
    for (const n of sizes) {
      ctx.signal.throwIfAborted();
      ctx.log(`${n} targets: exporter, then blackbox_exporter`);
      const sim = await startSim(ctx.procs, ctx.product, `scale-sim-${n}`, [], join(ctx.dir, `scale-sim-${n}.log`), ctx.signal);
      const stub = await startStub(ctx, sim, `scale-stub-${n}`);
      const targets = targetsFor(n, sim, stub.url);
      const ours = await runOurs(ctx, `scale-exporter-${n}`, targets, modelsOnly, intervals, stub.url);
      const bb = blackbox ? await runBlackbox(ctx, blackbox, `scale-blackbox-${n}`, targets, intervals) : undefined;
      await Promise.all([sim.child.stop(), stub.child.stop()]);
      const at = `${n.toLocaleString('en')} targets`;
      out.figures.push({ id: `scale.${n}.cpu_per_probe`, label: `${at}: exporter CPU per /v1/models probe`, unit: 'ms', samples: [value(ours.cpuPerProbeMs)], note: `${ours.probes} probes in ${intervals} x 15 s; ready after ${ours.readySeconds.toFixed(1)} s` });
      if (bb) {
        out.figures.push(
          { id: `scale.${n}.blackbox_cpu_per_probe`, label: `${at}: blackbox_exporter CPU per probe (same URLs, same rate)`, unit: 'ms', samples: [value(bb.cpuPerProbeMs)], note: `${bb.probes} probes, ${bb.failures} failed; driver at most ${bb.driverLagMs.toFixed(0)} ms behind schedule; RSS ${bb.rssMB.toFixed(0)} MB` },
          { id: `scale.${n}.cpu_ratio`, label: `${at}: exporter / blackbox_exporter CPU per probe`, unit: 'x', samples: [value(ours.cpuPerProbeMs / bb.cpuPerProbeMs)], goal: { op: '<=', value: 0.5, on: 'median', text: '<= 0.5x' } },
        );
      }
      out.figures.push(
        mb(`${at}: exporter RSS (end of window)`, `scale.${n}.rss`, [value(ours.rssMB)], n === 1000 ? { op: '<', value: 150, on: 'median', text: '< 150 MB' } : undefined, `peak ${ours.peakMB.toFixed(0)} MB`),
        { id: `scale.${n}.metrics_bytes`, label: `${at}: /metrics size`, unit: 'MB', samples: ours.metrics.map((s) => value(s.bytes / 2 ** 20)) },
        { id: `scale.${n}.metrics_ms`, label: `${at}: /metrics time`, unit: 'ms', samples: ours.metrics.map((s) => value(s.ms)), goal: n === 10000 ? { op: '<', value: 1000, on: 'max', text: 'max < 1 s' } : undefined },
        { id: `scale.${n}.late_p50`, label: `${at}: round start off schedule, median`, unit: 'ms', samples: [value(percentile(ours.lateness.late.map(Math.abs), 50))], note: `|gap between two round starts - 15 s| over ${ours.lateness.late.length} intervals of ${targets.markers} marker target(s); signed median ${percentile(ours.lateness.late, 50).toFixed(1)} ms` },
        { id: `scale.${n}.late_max`, label: `${at}: round start off schedule, worst`, unit: 'ms', samples: [value(Math.max(...ours.lateness.late.map(Math.abs)))], goal: n === 1000 ? { op: '<', value: 1000, on: 'max', text: 'within 1 s' } : undefined },
        { id: `scale.${n}.spread`, label: `${at}: markers' rounds spread over the interval`, unit: 's', samples: [value(ours.lateness.spread)], note: 'of 15 s: 0 = every round starts at the same instant' },
        { id: `scale.${n}.false_failures`, label: `${at}: failed probes of healthy targets`, unit: 'count', samples: [value(ours.failures)], goal: { op: '==', value: 0, on: 'max', text: '0' }, note: `targets reading up=0 at the end: ${ours.up0}` },
      );
      const lag = ours.metrics.map((s) => s.lagMax).filter((v): v is number => v !== undefined);
      // The monitor samples once a second (src/build-info.ts) and reports each sample's whole
      // interval: the lag is what exceeds it.
      if (lag.length) out.figures.push({ id: `scale.${n}.eventloop_lag_max`, label: `${at}: event loop lag, max (nodejs_eventloop_lag_max_seconds - 1 s)`, unit: 'ms', samples: lag.map((v) => value(Math.max(0, v * 1000 - 1000))) });
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
      const ours = await runOurs(ctx, `scale-exporter-vllm-${n}`, { urls: targets.urls.slice(0, n - targets.markers), markers: 0 }, config, quick ? 1 : 2, stub.url);
      await Promise.all([sim.child.stop(), stub.child.stop()]);
      const rounds = ours.probes / 4;
      const at = `${n.toLocaleString('en')} targets, module vllm`;
      out.figures.push(
        { id: `scale.vllm.${n}.cpu_per_round`, label: `${at}: exporter CPU per round (4 probes)`, unit: 'ms', samples: [value(ours.cpuPerProbeMs * 4)], note: `${Math.round(rounds)} rounds` },
        mb(`${at}: exporter RSS (end of window)`, `scale.vllm.${n}.rss`, [value(ours.rssMB)], n === 1000 ? { op: '<', value: 150, on: 'median', text: '< 150 MB' } : undefined, `peak ${ours.peakMB.toFixed(0)} MB`),
        { id: `scale.vllm.${n}.metrics_bytes`, label: `${at}: /metrics size`, unit: 'MB', samples: ours.metrics.map((s) => value(s.bytes / 2 ** 20)) },
        { id: `scale.vllm.${n}.false_failures`, label: `${at}: failed probes of healthy targets`, unit: 'count', samples: [value(ours.failures)], goal: { op: '==', value: 0, on: 'max', text: '0' }, note: `targets reading up=0 at the end: ${ours.up0}` },
      );
    }
    out.notes.push(
      `Side by side: per size, one simulator (flavor vllm) serves every target, told apart by name only (targets differ in nothing else, so the exporter's per-origin connection pool is shared), plus marker targets on a recording stub that answers the simulator's own listing bytes and timestamps each request: their lateness is (gap between two round starts) - 15 s. The exporter runs a module of the models probe alone (GET /v1/models, 200, a JSON list), at 15 s; blackbox_exporter's http_2xx probes the same /v1/models URLs, each once per 15 s, spread evenly over the interval (as Prometheus spreads scrapes), driven by the bench through /probe over kept-alive connections. CPU is each process's own user + system time over ${intervals} whole intervals after a warm-up (the exporter's /metrics scraped once per interval within it), divided by the probes completed in it. Both run one after the other against the same simulator.`,
      'The module-vllm rows run the shipped module (models, health, progress, a 32-token streamed chat at the simulator\'s default 50 tokens/s) against one simulator; per round = per 4 probes.',
      'Idle memory: each process started alone (the exporter probing one simulator at 15 s with the shipped vllm module; the remediator with one command target), sampled 3 times 5 s apart after settling. Every product process runs compiled (dist/), as deployed.',
    );
  },
};
