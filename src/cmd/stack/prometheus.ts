import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { execa, type ResultPromise } from 'execa';
import { parse, stringify } from 'yaml';
import { parseDuration } from '../../lib/duration.ts';
import { StartupError } from '../../lib/lifecycle.ts';
import type { Logger } from '../../lib/log.ts';
import { servers } from '../../servers/index.ts';
import { probes } from '../../probing/probes/index.ts';

/** The shipped Prometheus and Alertmanager configs: the stack runs these very files, rewired to its ports. */
export const shippedDir = fileURLToPath(new URL('../../../prometheus/', import.meta.url));

export interface Wiring {
  exporter: string; // host:port
  remediator: string;
  alertmanager: string;
  tokenFile: string;
  /** Scrape and rule evaluation interval, short so the demo reacts in seconds. */
  interval: string;
  /** The model server's own /metrics (job vllm): its host:port and the target name it is probed as. */
  /** The model server's own /metrics, scraped as `job` (its server type's metricsJob). */
  model?: { job: string; address: string; target: string } | undefined;
}

type Yaml = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** The blackbox-style job: Prometheus names the servers, the exporter probes them at /probe. */
export const probeJob = 'qwen-sentinel-probe';

/** The interval the shipped rules' `for` windows are written for (Prometheus' scrape interval in production). */
export const rulesInterval = 15_000;

/** A shipped duration in proportion to a faster interval, never below `floor`. */
function scaled(duration: string, every: number, floor: number): string {
  const ms = Math.max(floor, Math.round((parseDuration(duration)! * every) / rulesInterval));
  return `${Math.ceil(ms / 1000)}s`;
}

/** The chat probe's shipped stall check (its stall_timeout default), written for the 15 s interval. */
const shippedStallMs = probes.chat.options.parse(undefined).stall_timeout;

/**
 * The chat probe's stall check for the stack's interval, in the same proportion as the rules'
 * `for` (a third of the interval, as 5 s is of 15 s), so the fast stack's chaos and hang runs judge
 * stalls as production does; at 15 s and slower, the shipped 5 s.
 */
export const scaledStallMs = (every: number): number => Math.min(shippedStallMs, Math.round((shippedStallMs * every) / rulesInterval));

/**
 * The shipped rules for a faster interval: every `for` shrinks in proportion (LLMServerHung's 45 s,
 * three probe rounds at 15 s, would be three rounds at the stack's interval), but never below 10 s
 * nor two evaluations, so a probe or two lost on a busy machine still fire nothing. At 15 s and
 * slower they are left as shipped.
 */
export function scaleRules(text: string, interval: string): string {
  const every = parseDuration(interval)!;
  if (every >= rulesInterval) return text;
  const doc = parse(text) as { groups: Array<{ rules: Array<{ for?: string }> }> };
  for (const rule of doc.groups.flatMap((g) => g.rules)) {
    if (rule.for !== undefined) rule.for = scaled(rule.for, every, Math.max(10_000, 2 * every));
  }
  return stringify(doc);
}

/** prometheus.yml with the stack's addresses and intervals; rules copied beside it. */
export async function writePrometheusConfig(dir: string, w: Wiring): Promise<string> {
  const config = parse(await readFile(join(shippedDir, 'prometheus.yml'), 'utf8')) as Yaml;
  config.global = { ...config.global, scrape_interval: w.interval, evaluation_interval: w.interval };
  const jobs: Record<string, string> = { 'qwen-sentinel-exporter': w.exporter, 'qwen-sentinel-remediator': w.remediator };
  // Without a model server of ours to point it at, the job would scrape a stranger on port 8000.
  // The shipped jobs of server types' own metrics: kept only for the one the stack's model server is.
  const metricsJobs = new Set(Object.values(servers).flatMap((s) => (s.metricsJob ? [s.metricsJob] : [])));
  config.scrape_configs = (config.scrape_configs as Yaml[]).filter((job) => !metricsJobs.has(job.job_name) || job.job_name === w.model?.job);
  for (const job of config.scrape_configs as Yaml[]) {
    const model = w.model;
    if (model && job.job_name === model.job) job.static_configs = [{ targets: [model.address], labels: { target: model.target } }];
    const address = jobs[job.job_name];
    if (address) job.static_configs = [{ targets: [address] }];
    if (job.job_name === probeJob) {
      // /probe is scraped at the exporter. The shipped timeout stays, unless it is longer than the
      // stack's interval (Prometheus refuses that): then the interval.
      (job.relabel_configs as Yaml[]).find((r) => r.target_label === '__address__')!.replacement = w.exporter;
      const shipped = typeof job.scrape_timeout === 'string' ? parseDuration(job.scrape_timeout) : undefined;
      if (shipped === undefined || shipped > parseDuration(w.interval)!) job.scrape_timeout = w.interval;
    }
  }
  config.alerting.alertmanagers[0].static_configs = [{ targets: [w.alertmanager] }];
  // Rule files are relative to the shipped config; copy them and point at the copies, their
  // `for` windows scaled to the stack's interval.
  const ruleFiles: string[] = [];
  for (const rel of config.rule_files as string[]) {
    const dest = join(dir, rel);
    await mkdir(dirname(dest), { recursive: true });
    await writeFile(dest, scaleRules(await readFile(join(shippedDir, rel), 'utf8'), w.interval));
    ruleFiles.push(dest);
  }
  config.rule_files = ruleFiles;
  const file = join(dir, 'prometheus.yml');
  await writeFile(file, stringify(config));
  return file;
}

/** alertmanager.yml with the remediator's webhook URL and the stack's token file. */
export async function writeAlertmanagerConfig(dir: string, w: Wiring): Promise<string> {
  const config = parse(await readFile(join(shippedDir, 'alertmanager.yml'), 'utf8')) as Yaml;
  const receiver = (config.receivers as Yaml[]).find((r) => r.name === 'qwen-sentinel-remediator');
  if (!receiver) throw new Error(`${shippedDir}alertmanager.yml has no receiver named qwen-sentinel-remediator`);
  const hook = receiver.webhook_configs[0];
  hook.url = `http://${w.remediator}/webhook`;
  hook.http_config.authorization.credentials_file = w.tokenFile;
  // The remediator's route waits in proportion to the stack's interval too, as the rules do.
  const every = parseDuration(w.interval)!;
  const route = (config.route.routes as Yaml[]).find((r) => r.receiver === 'qwen-sentinel-remediator');
  if (route && every < rulesInterval) {
    route.group_wait = scaled(route.group_wait, every, 1000);
    route.group_interval = scaled(route.group_interval, every, 5000);
  }
  const file = join(dir, 'alertmanager.yml');
  await writeFile(file, stringify(config));
  return file;
}

export interface ExternalProcess {
  name: string;
  pid: number | undefined;
  logFile: string;
  stop(): Promise<void>;
  /** Resolves once GET url/-/ready answers 200; fails if the process exits first, with its log. */
  ready(url: string, withinMs?: number): Promise<void>;
}

/** Starts a Prometheus-ecosystem binary as our child, its output in a log file; stop() ends it by pid. */
export function startExternal(name: string, file: string, args: string[], dir: string, logger: Logger): ExternalProcess {
  const logFile = join(dir, `${name}.log`);
  const output = { file: logFile, append: true } as const;
  const child: ResultPromise = execa(file, args, { reject: false, stdin: 'ignore', stdout: output, stderr: output });
  let exited = false;
  let stopping = false;
  const done = child.then((result) => {
    exited = true;
    if (stopping) return;
    // Exit code 0 is no crash: it is said (the loop is broken without the process), but not as an error.
    if (result.exitCode === 0) logger.warn({ name, code: 0, log: logFile }, `${name} exited cleanly (code 0) while the stack still needs it`);
    else logger.error({ name, code: result.exitCode, signal: result.signal, log: logFile }, `${name} exited`);
  });
  const logTail = async () => (await readFile(logFile, 'utf8').catch(() => '')).trim().split('\n').slice(-5).join('\n');
  return {
    name,
    pid: child.pid,
    logFile,
    stop: async () => {
      stopping = true;
      if (exited || child.pid === undefined) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await done;
      clearTimeout(timer);
    },
    ready: async (url, withinMs = 60_000) => {
      const end = Date.now() + withinMs;
      while (Date.now() < end) {
        if (exited) throw new StartupError(`${name} exited at start-up; the end of its log:\n${await logTail()}`);
        const ok = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(1000) }).then((r) => r.ok, () => false);
        if (ok) return;
        await sleep(200);
      }
      throw new StartupError(`${name} not ready after ${withinMs / 1000} s; the end of its log:\n${await logTail()}`);
    },
  };
}
