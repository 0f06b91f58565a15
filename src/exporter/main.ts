import { parseConfig, readConfigFile } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { formatFlags, parseFlags, parseListenAddress, UsageError, type FlagSpecs } from '../flags.ts';
import { onShutdownSignal, reloadOnHangup } from '../lifecycle.ts';
import { createLogger, parseLogLevel } from '../log.ts';
import { startExporter } from './server.ts';

export const exporterFlags = {
  'config.file': { type: 'string', placeholder: 'FILE', help: 'Config file (YAML) with the targets to probe.' },
  target: { type: 'string', multiple: true, placeholder: 'URL', help: 'Probe this OpenAI-compatible base URL (e.g. http://127.0.0.1:8000/v1) with default settings, no config file needed.' },
  'web.listen-address': { type: 'string', default: '127.0.0.1:19150', placeholder: 'HOST:PORT', help: 'Address for /metrics, /-/healthy, /-/ready and /-/reload.' },
  'web.enable-lifecycle': { type: 'boolean', help: 'Serve POST /-/reload (as Prometheus\' flag of that name). SIGHUP reloads either way.' },
  'config.check': { type: 'boolean', help: 'Validate the config and exit: 0 if valid, 1 if not.' },
  'log.level': { type: 'string', default: 'info', placeholder: 'LEVEL', help: 'One of fatal, error, warn, info, debug, trace.' },
} satisfies FlagSpecs;

export const exporterUsage = `Usage: qwen-sentinel exporter [flags]

Probes each model server in the background (model listing, health, a tiny streaming chat
completion) and publishes the results as Prometheus metrics at /metrics. SIGHUP (or POST
/-/reload, with --web.enable-lifecycle) re-reads --config.file; an invalid file is rejected and
the running config kept.

${formatFlags(exporterFlags)}`;

/** Reads the config from --config.file, or builds one from --target flags. */
export async function exporterConfig(file: string | undefined, targets: string[] | undefined): Promise<{ config: Config; configFile?: { path: string; text: string } }> {
  if (file && targets?.length) throw new UsageError('use either --config.file or --target, not both');
  if (file) {
    const { config, text } = await readConfigFile(file);
    return { config, configFile: { path: file, text } };
  }
  if (targets?.length) return { config: parseConfig({ targets: targets.map((url) => ({ url })) }, '--target') };
  throw new UsageError('give --config.file=FILE or at least one --target=URL');
}

export async function runExporter(argv: string[]): Promise<void> {
  const flags = parseFlags(argv, exporterFlags);
  const { config, configFile } = await exporterConfig(flags['config.file'], flags.target);
  if (flags['config.check']) {
    process.stdout.write(`config OK: ${config.targets.length} target(s)\n`);
    return;
  }
  const logger = createLogger('exporter', parseLogLevel(flags['log.level']!));
  const exporter = await startExporter({ config, listen: parseListenAddress(flags['web.listen-address']!), logger, enableLifecycle: flags['web.enable-lifecycle'] === true, ...(configFile ? { configFile } : {}) });
  reloadOnHangup(exporter.reloader);
  await onShutdownSignal(logger, () => exporter.close());
}
