import { readConfigFile } from './config.ts';
import { formatFlags, parseFlags, parseListenAddress, UsageError, type FlagSpecs } from '../lib/flags.ts';
import { onShutdownSignal, reloadOnHangup } from '../lib/lifecycle.ts';
import { logFlags, loggerFromFlags } from '../lib/log.ts';
import { readWebConfig } from '../lib/web-config.ts';
import { parseLinks } from '../lib/html.ts';
import { readDingtalk } from '../remediator/notify/dingtalk.ts';
import { remediationTargets, startRemediator, type RunningRemediator } from '../remediator/server.ts';
import { loadToken } from '../remediator/token.ts';

export const remediatorFlags = {
  'config.file': { type: 'string', placeholder: 'FILE', help: 'Config file (YAML): targets with their remediation, and the remediator section (auth, matching, Alertmanager).' },
  'web.listen-address': { type: 'string', default: '127.0.0.1:19151', placeholder: 'HOST:PORT', help: 'Address for / (status page), POST /webhook, the /api/v1 endpoints, /metrics, /-/healthy, /-/ready and /-/reload.' },
  'storage.path': { type: 'string', default: 'data/', placeholder: 'DIR', help: 'Directory for the state of each target (restarts, cooldowns, the circuit, the server it owns) and the action history; written atomically, kept across restarts.' },
  'web.config.file': { type: 'string', placeholder: 'FILE', help: 'TLS, basic auth, response headers and a rate limit, in the Prometheus exporter-toolkit web-config format (tls_server_config, http_server_config, basic_auth_users with bcrypt hashes, rate_limit).' },
  'web.enable-lifecycle': { type: 'boolean', help: 'Serve POST /-/reload (as Prometheus\' flag of that name). SIGHUP reloads either way.' },
  'web.link': { type: 'string', multiple: true, placeholder: 'NAME=URL', help: "A link in the status page's navigation to another component, e.g. --web.link=exporter=http://127.0.0.1:19150/: the remediator does not know the exporter's address (nor Prometheus' or Grafana's) otherwise." },
  'config.check': { type: 'boolean', help: 'Validate the config (and that the token, keys and DingTalk URL and secret can be read) and exit.' },
  ...logFlags,
} satisfies FlagSpecs;

export const remediatorUsage = `Usage: qwen-sentinel remediator --config.file=FILE [flags]

Receives Alertmanager webhooks (v4) at POST /webhook, authenticated by a Bearer token, and, when
the config names Alertmanager, also reads its active alerts; restarts the target named by each
firing alert's "target" label after the stages: match, target, stale, duplicate, starting,
in_progress, cooldown, circuit_open, confirm. A restart succeeds once the server answers again.
State lives under --storage.path: a remediator started again adopts the server it owns.
SIGHUP (or POST /-/reload, with --web.enable-lifecycle) re-reads the config and the token; an
invalid config, or one that changes a target whose server this remediator owns, is rejected and
the running config kept. A second SIGTERM or SIGINT ends the owned servers at once.

${formatFlags(remediatorFlags)}`;

export async function runRemediator(argv: string[]): Promise<void> {
  const flags = parseFlags(argv, remediatorFlags);
  const logger = loggerFromFlags('remediator', flags);
  const path = flags['config.file'];
  if (!path) throw new UsageError('--config.file is required');
  const { config, text } = await readConfigFile(path);
  const token = await loadToken(config);
  const targets = remediationTargets(config, path);
  await readDingtalk(config);
  const webConfig = flags['web.config.file'] ? await readWebConfig(flags['web.config.file'], logger) : undefined;
  if (flags['config.check']) {
    process.stdout.write(`config OK: ${targets.length} target(s) with remediation\n`);
    return;
  }
  // Installed before any server is started: a signal during start-up still stops what was started.
  let running: RunningRemediator | undefined;
  const kill = new AbortController();
  let started!: () => void;
  const startedOnce = new Promise<void>((resolve) => (started = resolve));
  const stopped = onShutdownSignal(
    logger,
    async () => {
      await startedOnce;
      await running?.close();
    },
    // Also during start-up, when the owned servers are being started.
    { onSecondSignal: () => kill.abort() },
  );
  try {
    running = await startRemediator({ config, token, listen: parseListenAddress(flags['web.listen-address']!), logger, storagePath: flags['storage.path']!, webConfig, configFile: { path, text, read: readConfigFile }, enableLifecycle: flags['web.enable-lifecycle'] === true, kill: kill.signal, links: parseLinks(flags['web.link']) });
  } finally {
    started();
  }
  reloadOnHangup(running.reloader);
  await stopped;
}
