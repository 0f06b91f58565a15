// `qwen-sentinel probe URL`: one round against one server, as a table or JSON, and an exit code a
// Kubernetes exec probe, a Docker HEALTHCHECK, cron or a script can use.
import { Registry } from '../lib/prom-client.ts';
import { ConfigError, parseConfig, readConfigFile } from './config.ts';
import type { Config } from './config.ts';
import type { Module } from '../probing/module.ts';
import { readApiKeys, type ApiKeys } from '../probing/api-keys.ts';
import { formatFlags, parseDurationFlag, parseFlagsAndArgs, UsageError, type FlagSpecs } from '../lib/flags.ts';
import { defaultServer, isServerName, serverNames, servers } from '../servers/index.ts';
import { initSeries, recordUp, runRound, type RoundReport } from '../probing/round.ts';
import { rateGauge, ttftGauge } from '../probing/probes/stream.ts';
import { SeriesStore } from '../probing/series.ts';

export const probeFlags = {
  server: { type: 'string', placeholder: 'TYPE', help: `Server type: ${serverNames.join(', ')}; picks the module named after it (default: ${defaultServer}).` },
  module: { type: 'string', placeholder: 'NAME', help: 'Module to run (a shipped one, or one from --config.file); default: the server type\'s.' },
  model: { type: 'string', placeholder: 'MODEL', help: 'Model to probe; default: the first one the server lists (required for ollama).' },
  timeout: { type: 'string', placeholder: 'DURATION', help: "Deadline of each probe; default: the module's (10s)." },
  'config.file': { type: 'string', placeholder: 'FILE', help: 'Config file whose modules to use (its targets are ignored).' },
  json: { type: 'boolean', help: 'Print the result as one JSON object instead of a table.' },
  liveness: { type: 'boolean', help: 'Exit 1 only when a restart may help: a server that is starting, busy (saturated), slow, paused, asleep, or refuses the key or lacks the model exits 0. For a Kubernetes livenessProbe.' },
  verbose: { type: 'boolean', help: "Also print the round's debug log (requests, statuses, timings)." },
} satisfies FlagSpecs;

export const probeUsage = `Usage: qwen-sentinel probe URL [flags]

Runs one round of a module's probes against the OpenAI-compatible base URL (e.g.
http://127.0.0.1:8000/v1) and prints each probe's status, latency, TTFT, decode rate and failure
reason. Exit status: 0 healthy (every probe succeeded), 1 unhealthy, 2 bad invocation (unknown
flag, module or server type, invalid config). With --liveness, 1 only when a restart may help: a
server that is starting, saturated, paused, asleep, or refuses the key or lacks the model exits
0, so a Kubernetes livenessProbe never kills a server that is loading or busy (use the plain
form as readiness or startup probe). Fit for a Docker HEALTHCHECK, cron and scripts too.

${formatFlags(probeFlags)}`;

async function resolveModule(flags: { server?: string | undefined; module?: string | undefined; 'config.file'?: string | undefined }): Promise<{ module: Module; apiKey: string | undefined }> {
  let config: Config;
  let keys: ApiKeys;
  try {
    config = flags['config.file'] ? (await readConfigFile(flags['config.file'])).config : parseConfig({});
    keys = await readApiKeys(config);
  } catch (err) {
    if (err instanceof ConfigError) throw new UsageError(`invalid config: ${err.message}`);
    throw err;
  }
  if (flags.server !== undefined && !isServerName(flags.server)) throw new UsageError(`--server: unknown server type "${flags.server}" (known: ${serverNames.join(', ')})`);
  const name = flags.module ?? flags.server ?? defaultServer;
  const module = config.modules[name];
  if (!module) throw new UsageError(`--module: unknown module "${name}" (known: ${Object.keys(config.modules).join(', ')})`);
  if (flags.server !== undefined && module.server !== flags.server) throw new UsageError(`--module=${name} is for server type ${module.server}, not ${flags.server}`);
  return { module, apiKey: keys.forModule(name) };
}

interface ProbeRow {
  probe: string;
  success: boolean;
  reason?: string;
  message?: string;
  duration_seconds: number;
  ttft_seconds?: number;
  tokens_per_second?: number;
}

/** The per-probe figures, read back from the registry the round recorded into. */
async function rows(report: RoundReport, registry: Registry): Promise<ProbeRow[]> {
  const metrics = await registry.getMetricsAsJSON();
  const value = (name: string, probe: string) => metrics.find((m) => m.name === name)?.values.find((v) => v.labels.probe === probe)?.value;
  return report.probes.map((p) => {
    const ttft = value(ttftGauge.name, p.probe);
    const rate = value(rateGauge.name, p.probe);
    return {
      probe: p.probe,
      success: p.success,
      ...(p.success ? {} : { reason: p.reason!, message: p.message! }),
      duration_seconds: p.durationSeconds,
      ...(ttft === undefined ? {} : { ttft_seconds: ttft }),
      ...(rate === undefined ? {} : { tokens_per_second: rate }),
    };
  });
}

const msText = (s: number | undefined) => (s === undefined ? '' : `${(s * 1000).toFixed(1)} ms`);

function table(report: RoundReport, probeRows: ProbeRow[]): string {
  const header = ['probe', 'status', 'latency', 'TTFT', 'tokens/s', 'reason'];
  const cells = probeRows.map((r) => [r.probe, r.success ? 'ok' : 'FAIL', msText(r.duration_seconds), msText(r.ttft_seconds), r.tokens_per_second?.toFixed(1) ?? '', r.success ? '' : `${r.reason}: ${r.message}`]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => c.map((v, i) => (i === c.length - 1 ? v : v.padEnd(widths[i]!))).join('  ').trimEnd();
  const failed = probeRows.find((r) => !r.success);
  return [
    `${report.url}  module ${report.module}, server ${report.server}, model ${report.model ?? '(unknown)'}`,
    '',
    line(header),
    ...cells.map(line),
    '',
    report.up ? 'HEALTHY' : report.skipped ? `UNKNOWN: the round could not run (${report.skipped}, on this machine, not the server's)` : `UNHEALTHY: ${failed ? `${failed.probe} failed (${failed.reason})` : 'round cut short'}`,
    '',
  ].join('\n');
}

/** Failures a restart does not fix: the server is loading, busy, paused, asleep, or misconfigured. */
export const notRestartable: ReadonlySet<string> = new Set(['starting', 'saturated', 'slow', 'paused', 'asleep', 'unauthorized', 'model_missing']);

/** Returns the exit status: 0 healthy, 1 not. */
export async function runProbeCommand(argv: string[]): Promise<number> {
  const { flags, args } = parseFlagsAndArgs(argv, probeFlags, 1);
  const url = args[0];
  if (url === undefined) throw new UsageError('give the server\'s base URL, e.g. qwen-sentinel probe http://127.0.0.1:8000/v1');
  if (!/^https?:\/\/[^/]/.test(url) || !URL.canParse(url)) throw new UsageError(`"${url}" is not an http(s) URL`);
  const { module, apiKey } = await resolveModule(flags);
  const server = servers[module.server];
  if (server.requiresModel && flags.model === undefined) throw new UsageError(`--model is required for server type ${server.name} (e.g. --model=${server.exampleModel})`);
  const timeout = flags.timeout === undefined ? module.timeout : parseDurationFlag(flags.timeout, 'timeout');
  const target = url.replace(/\/+$/, '');
  const store = new SeriesStore(new Registry(), { targetLabel: false, cumulative: false });
  initSeries(store, target, module);
  const stop = new AbortController();
  const report = await runRound({ target: { name: target, url: target, model: flags.model, timeout, apiKey }, module, store, stop: stop.signal, now: () => performance.now() });
  recordUp(store, report);
  const probeRows = await rows(report, store.registry);
  const failed = probeRows.filter((r) => !r.success);
  const restartWouldHelp = failed.some((r) => !notRestartable.has(r.reason!));
  if (flags.json) {
    const result = { target, module: report.module, server: report.server, model: report.model ?? null, healthy: report.up, ...(report.skipped ? { exporter_error: report.skipped } : {}), restart_would_help: restartWouldHelp, duration_seconds: report.durationSeconds, probes: probeRows, ...(flags.verbose ? { log: report.log } : {}) };
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } else {
    process.stdout.write(table(report, probeRows));
    if (!report.up && !restartWouldHelp) process.stdout.write('(a restart would not help: the server is starting, busy, paused, asleep or misconfigured)\n');
    if (flags.verbose) process.stdout.write(`\n${report.log.join('\n')}\n`);
  }
  if (report.up) return 0;
  return flags.liveness && !restartWouldHelp ? 0 : 1;
}
