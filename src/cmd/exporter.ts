import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { ConfigSource } from '../lib/reloader.ts';
import { parseConfig, readConfigFile } from './config.ts';
import { readApiKeys } from '../probing/api-keys.ts';
import type { Config } from './config.ts';
import { formatFlags, parseFlags, parseListenAddress, UsageError, type FlagSpecs } from '../lib/flags.ts';
import { onShutdownSignal, reloadOnHangup } from '../lib/lifecycle.ts';
import { logFlags, loggerFromFlags } from '../lib/log.ts';
import { readWebConfig } from '../lib/web-config.ts';
import { parseLinks } from '../lib/html.ts';
import { startExporter } from '../exporter/server.ts';

export const exporterFlags = {
  'config.file': { type: 'string', placeholder: 'FILE', help: 'Config file (YAML): targets to probe in the background, modules, /probe allow-list. Without it (and without --target) only /probe is served.' },
  target: { type: 'string', multiple: true, placeholder: 'URL', help: 'Probe this OpenAI-compatible base URL (e.g. http://127.0.0.1:8000/v1) in the background with the openai module, no config file needed.' },
  'web.listen-address': { type: 'string', default: '127.0.0.1:19150', placeholder: 'HOST:PORT', help: 'Address for /, /metrics, /probe, /logs, /-/healthy, /-/ready and /-/reload.' },
  'web.enable-lifecycle': { type: 'boolean', help: 'Serve POST /-/reload (as Prometheus\' flag of that name). SIGHUP reloads either way.' },
  'web.config.file': { type: 'string', placeholder: 'FILE', help: 'TLS, basic auth, response headers and a rate limit, in the Prometheus exporter-toolkit web-config format (tls_server_config, http_server_config, basic_auth_users with bcrypt hashes, rate_limit).' },
  'web.link': { type: 'string', multiple: true, placeholder: 'NAME=URL', help: "A link in the status page's navigation to another component, e.g. --web.link=remediator=http://127.0.0.1:19151/: the exporter does not know the remediator's address (nor Prometheus' or Grafana's) otherwise." },
  'probe.timeout-offset': { type: 'string', default: '0.5', placeholder: 'SECONDS', help: "Seconds /probe keeps back from Prometheus' scrape timeout (X-Prometheus-Scrape-Timeout-Seconds), as blackbox_exporter's --timeout-offset." },
  'config.check': { type: 'boolean', help: 'Validate the config and exit: 0 if valid, 1 if not.' },
  ...logFlags,
} satisfies FlagSpecs;

export const exporterUsage = `Usage: qwen-sentinel exporter [flags]

Probes each configured model server in the background (a module's probes: model listing, health,
a tiny streaming chat completion, ...) and publishes the results at /metrics. GET
/probe?target=URL&module=NAME runs a module against any server on demand, as blackbox_exporter
does; / shows every target's last result and the recent probe logs. SIGHUP (or POST /-/reload,
with --web.enable-lifecycle) re-reads --config.file; an invalid file is rejected and the running
config kept.

${formatFlags(exporterFlags)}`;

/** Reads the config from --config.file, or builds one from --target flags, or none at all (/probe only). */
export async function exporterConfig(file: string | undefined, targets: string[] | undefined): Promise<{ config: Config; configFile?: ConfigSource<Config> }> {
  if (file && targets?.length) throw new UsageError('use either --config.file or --target, not both');
  if (file) {
    const { config, text } = await readConfigFile(file);
    return { config, configFile: { path: file, text, read: readConfigFile } };
  }
  return { config: parseConfig({ targets: (targets ?? []).map((url) => ({ url })) }, '--target') };
}

export function parseTimeoutOffset(text: string): number {
  const seconds = Number(text);
  if (!(text.trim() !== '' && seconds >= 0)) throw new UsageError(`--probe.timeout-offset: expected seconds, e.g. 0.5, got "${text}"`);
  return seconds;
}

/**
 * How far V8 lets the old generation grow past what the last full collection kept, in percent:
 * V8's own choice (up to 4 times the live heap when collections are cheap) made a 10,000-target
 * exporter with some 80 MB live sit at 300-470 MB RSS, most of it garbage awaiting the next
 * collection; at 50 % it holds 220-250 MB, with a full collection every few seconds instead of
 * every half minute and no more CPU per probe (measured). An explicit --heap-growing-percent on
 * node's command line wins.
 */
export const heapGrowingPercent = 50;

/**
 * Sets V8's heap growing factor, unless node was started with one. V8 reads it whenever a full
 * collection sets the next limit, so setting it at start-up, before the targets' heap is built,
 * acts as the command-line flag would. `setFlags` is a seam for tests.
 */
export function limitHeapGrowth(execArgv: readonly string[] = process.execArgv, setFlags: (flags: string) => void = setFlagsFromString): boolean {
  if (execArgv.some((a) => /^--heap[-_]growing[-_]percent(=|$)/.test(a))) return false;
  setFlags(`--heap-growing-percent=${heapGrowingPercent}`);
  return true;
}

/**
 * One full collection now, so the factor set above applies from here on. The last one (while the
 * modules loaded) set the old generation's next limit with V8's own factor, up to 4 times the
 * 13 MB then live: the heap would reach some 50 MB before the next, and V8 keeps those pages
 * (1,000 targets: 121 MB RSS without this, 110 with it). Uses V8's gc function, exposed for this
 * one call.
 */
export function collectOnce(): void {
  setFlagsFromString('--expose-gc');
  try {
    (runInNewContext('gc') as () => void)();
  } finally {
    setFlagsFromString('--no-expose-gc');
  }
}

export async function runExporter(argv: string[]): Promise<void> {
  // First, before the config is parsed (10,000 targets' config already takes a full collection,
  // whose limit, with V8's own factor, let the heap reach 200 MB at start-up).
  if (limitHeapGrowth()) collectOnce();
  const flags = parseFlags(argv, exporterFlags);
  const logger = loggerFromFlags('exporter', flags);
  const { config, configFile } = await exporterConfig(flags['config.file'], flags.target);
  const timeoutOffsetSeconds = parseTimeoutOffset(flags['probe.timeout-offset']!);
  const webConfig = flags['web.config.file'] ? await readWebConfig(flags['web.config.file'], logger) : undefined;
  if (flags['config.check']) {
    await readApiKeys(config); // the keys it names must be readable too
    process.stdout.write(`config OK: ${config.targets.length} target(s), ${Object.keys(config.modules).length} module(s)\n`);
    return;
  }
  const exporter = await startExporter({ config, listen: parseListenAddress(flags['web.listen-address']!), logger, enableLifecycle: flags['web.enable-lifecycle'] === true, timeoutOffsetSeconds, webConfig, links: parseLinks(flags['web.link']), ...(configFile ? { configFile } : {}) });
  reloadOnHangup(exporter.reloader);
  await onShutdownSignal(logger, () => exporter.close());
}
