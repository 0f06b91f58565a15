import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { parseConfig } from '../config/load.ts';
import { startExporter } from '../exporter/server.ts';
import { formatFlags, parseDurationFlag, parseFlags, parseListenAddress, type FlagSpecs, type ListenAddress } from '../flags.ts';
import { onShutdownSignal, Teardown } from '../lifecycle.ts';
import { createLogger, parseLogLevel, type Logger, type LogLevel } from '../log.ts';
import { loadToken } from '../remediator/token.ts';
import { startRemediator } from '../remediator/server.ts';
import { bindablePort, which } from './system.ts';
import { startExternal, writeAlertmanagerConfig, writePrometheusConfig } from './prometheus.ts';

export const stackFlags = {
  'sim.listen-address': { type: 'string', default: '127.0.0.1:8000', placeholder: 'HOST:PORT', help: "The simulated model server (the seed article's port)." },
  'exporter.listen-address': { type: 'string', default: '127.0.0.1:19150', placeholder: 'HOST:PORT', help: 'The exporter.' },
  'remediator.listen-address': { type: 'string', default: '127.0.0.1:19151', placeholder: 'HOST:PORT', help: 'The remediator.' },
  'prometheus.listen-address': { type: 'string', default: '127.0.0.1:19090', placeholder: 'HOST:PORT', help: 'Prometheus, when installed (not 9090, to leave an existing one alone).' },
  'alertmanager.listen-address': { type: 'string', default: '127.0.0.1:19093', placeholder: 'HOST:PORT', help: 'Alertmanager, when installed (not 9093, likewise).' },
  'sim.model': { type: 'string', default: 'Qwen/Qwen3-0.6B', placeholder: 'NAME', help: 'The model name the simulator serves.' },
  'sim.startup-delay': { type: 'string', default: '3s', placeholder: 'DURATION', help: 'How long the simulator "loads the model" after each (re)start.' },
  'probe.interval': { type: 'string', default: '2s', placeholder: 'DURATION', help: 'Probe interval, and Prometheus scrape and evaluation interval.' },
  cooldown: { type: 'string', default: '20s', placeholder: 'DURATION', help: 'Remediator cooldown after a restart; must exceed the startup delay.' },
  'log.level': { type: 'string', default: 'info', placeholder: 'LEVEL', help: 'One of fatal, error, warn, info, debug, trace.' },
} satisfies FlagSpecs;

export const stackUsage = `Usage: qwen-sentinel stack [flags]

Runs the whole loop on loopback with nothing else installed: the simulator as the model server
(owned by the remediator), the exporter, the remediator, and, when the prometheus and
prometheus-alertmanager binaries are on PATH, Prometheus and Alertmanager with the shipped
configs and rules. Address port 0 picks a free port. Ctrl-C stops everything it started.

${formatFlags(stackFlags)}`;

const cliPath = fileURLToPath(new URL(import.meta.url.endsWith('.ts') ? '../cli.ts' : '../cli.js', import.meta.url));

/** Port 0 becomes a concrete free port, since the other components' configs must name it; a
 * taken port fails now, before anything starts (Prometheus would otherwise scrape a stranger). */
async function concrete(text: string, flag: string): Promise<ListenAddress> {
  const address = parseListenAddress(text, flag);
  return { ...address, port: await bindablePort(address.host, address.port) };
}
const hostPort = (a: ListenAddress) => `${a.host}:${a.port}`;

export async function runStack(argv: string[]): Promise<void> {
  const flags = parseFlags(argv, stackFlags);
  const level = parseLogLevel(flags['log.level']!);
  const logger = createLogger('stack', level);
  // Installed first: Ctrl-C at any moment stops whatever has been started so far. SIGHUP too:
  // the simulator runs in its own session, so a closed terminal would not reach it.
  const teardown = new Teardown();
  const stopped = onShutdownSignal(logger, () => teardown.run(), ['SIGINT', 'SIGTERM', 'SIGHUP']);
  try {
    process.stdout.write(await startStack(flags, level, teardown, logger));
  } catch (err) {
    const interrupted = teardown.started;
    await teardown.run();
    // Stopped on request while starting: what failed then was only the shutdown in progress.
    if (interrupted) return;
    throw err;
  }
  await stopped;
}

type StackFlags = ReturnType<typeof parseFlags<typeof stackFlags>>;

/** Starts every component, registering each one's stop in teardown; returns the banner to print. */
async function startStack(flags: StackFlags, level: LogLevel, teardown: Teardown, logger: Logger): Promise<string> {
  parseDurationFlag(flags['probe.interval']!, 'probe.interval'); // validated here; the components take the text
  const startupDelay = parseDurationFlag(flags['sim.startup-delay']!, 'sim.startup-delay');
  const cooldown = parseDurationFlag(flags.cooldown!, 'cooldown');
  const sim = await concrete(flags['sim.listen-address']!, 'sim.listen-address');
  const exporterAddress = await concrete(flags['exporter.listen-address']!, 'exporter.listen-address');
  const remediatorAddress = await concrete(flags['remediator.listen-address']!, 'remediator.listen-address');
  const prometheusBin = await which('prometheus');
  const alertmanagerBin = (await which('prometheus-alertmanager')) ?? (await which('alertmanager'));
  const withPrometheus = prometheusBin !== undefined && alertmanagerBin !== undefined;
  const prom = withPrometheus ? await concrete(flags['prometheus.listen-address']!, 'prometheus.listen-address') : undefined;
  const am = withPrometheus ? await concrete(flags['alertmanager.listen-address']!, 'alertmanager.listen-address') : undefined;

  const dir = await mkdtemp(join(tmpdir(), 'qwen-sentinel-stack-'));
  teardown.add(() => rm(dir, { recursive: true, force: true }));
  const tokenFile = join(dir, 'webhook-token');
  await writeFile(tokenFile, randomBytes(24).toString('hex'), { mode: 0o600 });
  // The same config file format users write; saved in the temp dir for them to look at.
  const configData = {
    targets: [
      {
        name: 'qwen3',
        url: `http://${hostPort(sim)}/v1`,
        model: flags['sim.model'],
        server: 'vllm',
        interval: flags['probe.interval'],
        timeout: flags['probe.interval'],
        remediation: {
          action: 'process',
          command: [process.execPath, cliPath, 'sim', `--web.listen-address=${hostPort(sim)}`, `--model=${flags['sim.model']}`, `--startup-delay=${flags['sim.startup-delay']}`, `--log.level=${flags['log.level']}`],
          grace_period: '5s',
          cooldown: flags.cooldown,
        },
      },
    ],
    remediator: { auth: { bearer_token_file: tokenFile } },
  };
  await writeFile(join(dir, 'sentinel.yml'), stringify(configData));
  const config = parseConfig(configData, 'stack config');
  if (cooldown <= startupDelay) logger.warn({ cooldown, startup_delay: startupDelay }, 'cooldown shorter than the startup delay: a loading server may be restarted again');

  const remediator = await startRemediator({ config, token: await loadToken(config), listen: remediatorAddress, logger: createLogger('remediator', level) });
  teardown.add(() => remediator.close());
  const exporter = await startExporter({ config, listen: exporterAddress, logger: createLogger('exporter', level) });
  teardown.add(() => exporter.close());
  const rows: Array<[string, string]> = [
    ['model server (simulator)', `http://${hostPort(sim)}/v1`],
    ['exporter', exporter.url],
    ['remediator', remediator.url],
  ];

  if (prometheusBin && alertmanagerBin && prom && am) {
    const wiring = { exporter: hostPort(exporterAddress), remediator: hostPort(remediatorAddress), alertmanager: hostPort(am), tokenFile, interval: flags['probe.interval']! };
    const promConfig = await writePrometheusConfig(dir, wiring);
    const amConfig = await writeAlertmanagerConfig(dir, wiring);
    const alertmanager = startExternal('alertmanager', alertmanagerBin, [`--config.file=${amConfig}`, `--storage.path=${join(dir, 'alertmanager-data')}`, `--web.listen-address=${hostPort(am)}`, '--cluster.listen-address='], dir, logger);
    teardown.add(() => alertmanager.stop());
    const prometheus = startExternal('prometheus', prometheusBin, [`--config.file=${promConfig}`, `--storage.tsdb.path=${join(dir, 'prometheus-data')}`, `--web.listen-address=${hostPort(prom)}`], dir, logger);
    teardown.add(() => prometheus.stop());
    // Print their URLs only once they serve: a taken port must fail the stack, not be shown as ours.
    await Promise.all([alertmanager.ready(`http://${hostPort(am)}`), prometheus.ready(`http://${hostPort(prom)}`)]);
    rows.push(['prometheus', `http://${hostPort(prom)}`], ['alertmanager', `http://${hostPort(am)}`]);
  }

  const width = Math.max(...rows.map(([name]) => name.length)) + 2;
  const lines = [
    '',
    'qwen-sentinel stack is running (Ctrl-C stops everything it started):',
    ...rows.map(([name, url]) => `  ${name.padEnd(width)}${url}`),
    `  ${'files'.padEnd(width)}${dir}`,
    '',
    withPrometheus
      ? `Break the model and watch the loop heal it:\n  curl -X POST -H 'content-type: application/json' -d '{"fault":"hang-generation"}' http://${hostPort(sim)}/sim/fault\n  kill -9 $(curl -s ${remediator.url}/api/v1/targets | grep -o '"pid":[0-9]*' | cut -d: -f2)`
      : 'Prometheus and Alertmanager are not on PATH, so alerts cannot fire and the loop does not close.\n' +
        'Install them (Debian/Ubuntu: sudo apt-get install prometheus prometheus-alertmanager; else https://prometheus.io/download/) and run this again.',
    '',
  ];
  return `${lines.join('\n')}\n`;
}
