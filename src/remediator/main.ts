import { readFile } from 'node:fs/promises';
import { ConfigError, loadConfigFile } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { formatFlags, parseFlags, parseListenAddress, UsageError, type FlagSpecs } from '../flags.ts';
import { onShutdownSignal } from '../lifecycle.ts';
import { createLogger, parseLogLevel } from '../log.ts';
import { startRemediator } from './server.ts';

export const remediatorFlags = {
  'config.file': { type: 'string', placeholder: 'FILE', help: 'Config file (YAML): targets with their remediation, and the remediator section (auth).' },
  'web.listen-address': { type: 'string', default: '127.0.0.1:19151', placeholder: 'HOST:PORT', help: 'Address for POST /webhook, GET /api/v1/targets, /metrics, /-/healthy and /-/ready.' },
  'config.check': { type: 'boolean', help: 'Validate the config (and that the token can be read) and exit.' },
  'log.level': { type: 'string', default: 'info', placeholder: 'LEVEL', help: 'One of fatal, error, warn, info, debug, trace.' },
} satisfies FlagSpecs;

export const remediatorUsage = `Usage: qwen-sentinel remediator --config.file=FILE [flags]

Receives Alertmanager webhooks (v4) at POST /webhook, authenticated by a Bearer token, and restarts
the target named by each firing alert's "target" label: one restart at a time per target,
duplicates ignored, a cooldown after each restart, the action run in the background.

${formatFlags(remediatorFlags)}`;

/** Reads the webhook token named by the config; refuses to start without one. */
export async function loadToken(config: Config, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const auth = config.remediator.auth;
  if (!auth) throw new ConfigError('remediator.auth: required: set bearer_token_file or bearer_token_env');
  let token: string | undefined;
  if (auth.bearer_token_file !== undefined) {
    try {
      token = (await readFile(auth.bearer_token_file, 'utf8')).trim();
    } catch (err) {
      throw new ConfigError(`remediator.auth.bearer_token_file: cannot read ${auth.bearer_token_file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  } else {
    token = env[auth.bearer_token_env!]?.trim();
    if (token === undefined) throw new ConfigError(`remediator.auth.bearer_token_env: environment variable ${auth.bearer_token_env} is not set`);
  }
  if (token.length < 16) throw new ConfigError('remediator.auth: the token must be at least 16 characters');
  return token;
}

export async function runRemediator(argv: string[]): Promise<void> {
  const flags = parseFlags(argv, remediatorFlags);
  if (!flags['config.file']) throw new UsageError('--config.file is required');
  const config = await loadConfigFile(flags['config.file']);
  const token = await loadToken(config);
  if (!config.targets.some((t) => t.remediation)) throw new ConfigError(`${flags['config.file']}: targets: no target has a remediation section`);
  if (flags['config.check']) {
    process.stdout.write(`config OK: ${config.targets.filter((t) => t.remediation).length} target(s) with remediation\n`);
    return;
  }
  const logger = createLogger('remediator', parseLogLevel(flags['log.level']!));
  const running = await startRemediator({ config, token, listen: parseListenAddress(flags['web.listen-address']!), logger });
  await onShutdownSignal(logger, () => running.close());
}
