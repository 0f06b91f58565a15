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

export async function runExporter(argv: string[]): Promise<void> {
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
