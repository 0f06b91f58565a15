import { parseConfig, loadConfigFile } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { formatFlags, parseFlags, parseListenAddress, UsageError, type FlagSpecs, type ListenAddress } from '../flags.ts';
import { onShutdownSignal } from '../lifecycle.ts';
import { createLogger, parseLogLevel, type Logger } from '../log.ts';
import { createOpsApp, listen, type Listening } from '../web.ts';
import { ExporterMetrics } from './metrics.ts';
import { Scheduler } from './scheduler.ts';

export const exporterFlags = {
  'config.file': { type: 'string', placeholder: 'FILE', help: 'Config file (YAML) with the targets to probe.' },
  target: { type: 'string', multiple: true, placeholder: 'URL', help: 'Probe this OpenAI-compatible base URL (e.g. http://127.0.0.1:8000/v1) with default settings, no config file needed.' },
  'web.listen-address': { type: 'string', default: '127.0.0.1:19150', placeholder: 'HOST:PORT', help: 'Address for /metrics, /-/healthy and /-/ready.' },
  'config.check': { type: 'boolean', help: 'Validate the config and exit: 0 if valid, 1 if not.' },
  'log.level': { type: 'string', default: 'info', placeholder: 'LEVEL', help: 'One of fatal, error, warn, info, debug, trace.' },
} satisfies FlagSpecs;

export const exporterUsage = `Usage: qwen-sentinel exporter [flags]

Probes each model server in the background (model listing, health, a tiny streaming chat
completion) and publishes the results as Prometheus metrics at /metrics.

${formatFlags(exporterFlags)}`;

export interface ExporterOptions {
  config: Config;
  listen: ListenAddress;
  logger: Logger;
}

export interface RunningExporter extends Listening {
  scheduler: Scheduler;
}

/** Starts probing and serving; used by the CLI and by `stack`. */
export async function startExporter({ config, listen: address, logger }: ExporterOptions): Promise<RunningExporter> {
  const metrics = new ExporterMetrics(config.targets);
  const scheduler = new Scheduler(config.targets, { observer: metrics, logger });
  let ready = false;
  void scheduler.firstRounds().then(() => (ready = true));
  const app = createOpsApp({ registry: metrics.registry, isReady: () => ready, title: 'qwen-sentinel exporter' });
  const listening = await listen(app, address);
  scheduler.start();
  logger.info({ url: listening.url, targets: config.targets.map((t) => t.name) }, 'exporter listening');
  return {
    ...listening,
    scheduler,
    close: async () => {
      await scheduler.stop();
      await listening.close();
    },
  };
}

/** Reads the config from --config.file, or builds one from --target flags. */
export async function exporterConfig(file: string | undefined, targets: string[] | undefined): Promise<Config> {
  if (file && targets?.length) throw new UsageError('use either --config.file or --target, not both');
  if (file) return loadConfigFile(file);
  if (targets?.length) return parseConfig({ targets: targets.map((url) => ({ url })) }, '--target');
  throw new UsageError('give --config.file=FILE or at least one --target=URL');
}

export async function runExporter(argv: string[]): Promise<void> {
  const flags = parseFlags(argv, exporterFlags);
  const config = await exporterConfig(flags['config.file'], flags.target);
  if (flags['config.check']) {
    process.stdout.write(`config OK: ${config.targets.length} target(s)\n`);
    return;
  }
  const logger = createLogger('exporter', parseLogLevel(flags['log.level']!));
  const exporter = await startExporter({ config, listen: parseListenAddress(flags['web.listen-address']!), logger });
  await onShutdownSignal(logger, () => exporter.close());
}
