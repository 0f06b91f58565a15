import { readConfigFile } from '../config/load.ts';
import { formatFlags, parseFlags, parseListenAddress, UsageError, type FlagSpecs } from '../flags.ts';
import { onShutdownSignal, reloadOnHangup } from '../lifecycle.ts';
import { createLogger, parseLogLevel } from '../log.ts';
import { remediationTargets, startRemediator } from './server.ts';
import { loadToken } from './token.ts';

export const remediatorFlags = {
  'config.file': { type: 'string', placeholder: 'FILE', help: 'Config file (YAML): targets with their remediation, and the remediator section (auth).' },
  'web.listen-address': { type: 'string', default: '127.0.0.1:19151', placeholder: 'HOST:PORT', help: 'Address for POST /webhook, GET /api/v1/targets, /metrics, /-/healthy, /-/ready and /-/reload.' },
  'web.enable-lifecycle': { type: 'boolean', help: 'Serve POST /-/reload (as Prometheus\' flag of that name). SIGHUP reloads either way.' },
  'config.check': { type: 'boolean', help: 'Validate the config (and that the token can be read) and exit.' },
  'log.level': { type: 'string', default: 'info', placeholder: 'LEVEL', help: 'One of fatal, error, warn, info, debug, trace.' },
} satisfies FlagSpecs;

export const remediatorUsage = `Usage: qwen-sentinel remediator --config.file=FILE [flags]

Receives Alertmanager webhooks (v4) at POST /webhook, authenticated by a Bearer token, and restarts
the target named by each firing alert's "target" label: one restart at a time per target,
duplicates ignored, a cooldown after each restart, the action run in the background.
SIGHUP (or POST /-/reload, with --web.enable-lifecycle) re-reads the config and the token; an
invalid config, or one that changes a target with a "process" action (whose server this
remediator owns), is rejected and the running config kept.

${formatFlags(remediatorFlags)}`;

export async function runRemediator(argv: string[]): Promise<void> {
  const flags = parseFlags(argv, remediatorFlags);
  const path = flags['config.file'];
  if (!path) throw new UsageError('--config.file is required');
  const { config, text } = await readConfigFile(path);
  const token = await loadToken(config);
  const targets = remediationTargets(config, path);
  if (flags['config.check']) {
    process.stdout.write(`config OK: ${targets.length} target(s) with remediation\n`);
    return;
  }
  const logger = createLogger('remediator', parseLogLevel(flags['log.level']!));
  const running = await startRemediator({ config, token, listen: parseListenAddress(flags['web.listen-address']!), logger, configFile: { path, text }, enableLifecycle: flags['web.enable-lifecycle'] === true });
  reloadOnHangup(running.reloader);
  await onShutdownSignal(logger, () => running.close());
}
