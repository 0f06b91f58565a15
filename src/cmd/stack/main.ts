import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { parseConfig, readConfigFile } from '../config.ts';
import { formatFlags, parseDurationFlag, parseFlags, parseListenAddress, UsageError, type FlagSpecs, type ListenAddress } from '../../lib/flags.ts';
import { flavorNames, flavors, isFlavorName } from '../../sim/flavors/index.ts';
import { onShutdownSignal, Teardown } from '../../lib/lifecycle.ts';
import { createLogger, logFlags, parseLogFormat, parseLogLevel, type Logger, type LogLevel } from '../../lib/log.ts';
import { ListenError } from '../../lib/errors.ts';
import { bindablePort, which } from '../../lib/system.ts';
import { alertmanagerSection, hostPort, startLoop } from './loop.ts';
import { scaledStallMs } from './prometheus.ts';
import { parseLinks } from '../../lib/html.ts';

export const stackFlags = {
  'sim.listen-address': { type: 'string', placeholder: 'HOST:PORT', help: "The simulated model server; default 127.0.0.1:8000 (the seed article's port), or a free port when something (a real vLLM?) already listens there." },
  'exporter.listen-address': { type: 'string', default: '127.0.0.1:19150', placeholder: 'HOST:PORT', help: 'The exporter.' },
  'remediator.listen-address': { type: 'string', default: '127.0.0.1:19151', placeholder: 'HOST:PORT', help: 'The remediator.' },
  'prometheus.listen-address': { type: 'string', default: '127.0.0.1:19090', placeholder: 'HOST:PORT', help: 'Prometheus, when installed (not 9090, to leave an existing one alone).' },
  'alertmanager.listen-address': { type: 'string', default: '127.0.0.1:19093', placeholder: 'HOST:PORT', help: 'Alertmanager, when installed (not 9093, likewise).' },
  'sim.flavor': { type: 'string', default: 'vllm', placeholder: 'NAME', help: `Which server the simulator behaves like (${flavorNames.join(', ')}); the target gets the matching server type and module.` },
  'sim.model': { type: 'string', placeholder: 'NAME', help: "The model name the simulator serves; default: the flavor's." },
  'sim.startup-delay': { type: 'string', default: '3s', placeholder: 'DURATION', help: 'How long the simulator "loads the model" after each (re)start.' },
  'probe.interval': { type: 'string', default: '2s', placeholder: 'DURATION', help: 'Probe interval, and Prometheus scrape and evaluation interval.' },
  'web.link': { type: 'string', multiple: true, placeholder: 'NAME=URL', help: "One more link in both status pages' navigation, e.g. --web.link=grafana=http://127.0.0.1:3000/; the stack links the exporter, the remediator, Prometheus and Alertmanager to each other by itself." },
  cooldown: { type: 'string', default: '20s', placeholder: 'DURATION', help: 'Remediator cooldown after a restart; must exceed the startup delay.' },
  ...logFlags,
} satisfies FlagSpecs;

export const stackUsage = `Usage: qwen-sentinel stack [flags]

Runs the whole loop on loopback with nothing else installed: the simulator as the model server
(owned by the remediator), the exporter, the remediator, and, when the prometheus and
prometheus-alertmanager binaries are on PATH, Prometheus and Alertmanager with the shipped
configs and rules. Address port 0 picks a free port. Ctrl-C stops everything it started.

${formatFlags(stackFlags)}`;

const cliPath = fileURLToPath(new URL(import.meta.url.endsWith('.ts') ? '../../cli.ts' : '../../cli.js', import.meta.url));

export const defaultSimPort: ListenAddress = { host: '127.0.0.1', port: 8000 };

/**
 * The simulator's address when none is given: the usual port of a model server, unless something
 * (a real vLLM, most likely) listens there already; then a free port, and a note saying so.
 */
export async function defaultSimAddress(preferred: ListenAddress): Promise<{ address: ListenAddress; note: string | undefined }> {
  try {
    return { address: { ...preferred, port: await bindablePort(preferred.host, preferred.port) }, note: undefined };
  } catch {
    const port = await bindablePort(preferred.host, 0);
    return { address: { ...preferred, port }, note: `port ${preferred.port} is taken (a model server already running?): the simulator listens on ${preferred.host}:${port} instead` };
  }
}

/** Port 0 becomes a concrete free port, since the other components' configs must name it; a
 * taken port fails now, before anything starts (Prometheus would otherwise scrape a stranger). */
async function concrete(text: string, flag: string): Promise<ListenAddress> {
  const address = parseListenAddress(text, flag);
  return { ...address, port: await bindablePort(address.host, address.port) };
}

export async function runStack(argv: string[]): Promise<void> {
  const flags = parseFlags(argv, stackFlags);
  const level = parseLogLevel(flags['log.level']!);
  const logger = createLogger('stack', level, parseLogFormat(flags['log.format']!));
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
  const flavor = flags['sim.flavor']!;
  if (!isFlavorName(flavor)) throw new UsageError(`--sim.flavor: unknown flavor "${flavor}" (valid: ${flavorNames.join(', ')})`);
  const model = flags['sim.model'] ?? flavors[flavor].server.exampleModel;
  const startupDelay = parseDurationFlag(flags['sim.startup-delay']!, 'sim.startup-delay');
  const cooldown = parseDurationFlag(flags.cooldown!, 'cooldown');
  const { address: sim, note: simNote } = flags['sim.listen-address'] === undefined ? await defaultSimAddress(defaultSimPort) : { address: await concrete(flags['sim.listen-address'], 'sim.listen-address'), note: undefined };
  if (simNote) logger.warn({ port: sim.port }, simNote);
  // Port 0 is resolved by binding and releasing it, and two such in a row may be handed the same
  // port: each component gets one no other has.
  const taken = new Set([sim.port]);
  const distinct = async (flag: keyof StackFlags & `${string}.listen-address`): Promise<ListenAddress> => {
    for (let attempt = 0; attempt < 20; attempt++) {
      const address = await concrete(flags[flag]!, flag);
      if (!taken.has(address.port)) return (taken.add(address.port), address);
      if (parseListenAddress(flags[flag]!, flag).port !== 0) throw new UsageError(`--${flag}: port ${address.port} is given to another component too`);
    }
    throw new ListenError(`--${flag}: no free port distinct from the other components'`);
  };
  const exporterAddress = await distinct('exporter.listen-address');
  const remediatorAddress = await distinct('remediator.listen-address');
  const prometheusBin = await which('prometheus');
  const alertmanagerBin = (await which('prometheus-alertmanager')) ?? (await which('alertmanager'));
  const withPrometheus = prometheusBin !== undefined && alertmanagerBin !== undefined;
  const prom = withPrometheus ? await distinct('prometheus.listen-address') : undefined;
  const am = withPrometheus ? await distinct('alertmanager.listen-address') : undefined;

  const dir = await mkdtemp(join(tmpdir(), 'qwen-sentinel-stack-'));
  teardown.add(() => rm(dir, { recursive: true, force: true }));
  const tokenFile = join(dir, 'webhook-token');
  await writeFile(tokenFile, randomBytes(24).toString('hex'), { mode: 0o600 });
  // The same config file format users write; saved in the temp dir for them to look at.
  const configData = {
    // The module named after the server type, as targets find theirs: its stall check in proportion.
    modules: { [flavor]: { chat: { stall_timeout: `${scaledStallMs(parseDurationFlag(flags['probe.interval']!, 'probe.interval'))}ms` } } },
    targets: [
      {
        name: 'qwen3',
        url: `http://${hostPort(sim)}/v1`,
        model,
        server: flavor,
        interval: flags['probe.interval'],
        timeout: flags['probe.interval'],
        remediation: {
          action: 'process',
          command: [process.execPath, cliPath, 'sim', `--flavor=${flavor}`, `--web.listen-address=${hostPort(sim)}`, `--model=${model}`, `--startup-delay=${flags['sim.startup-delay']}`, `--log.level=${flags['log.level']}`, `--log.format=${flags['log.format']}`],
          grace_period: '5s',
          cooldown: flags.cooldown,
        },
      },
    ],
    remediator: { auth: { bearer_token_file: tokenFile }, ...(am ? { alertmanager: alertmanagerSection(am, flags['probe.interval']!) } : {}) },
  };
  const configFile = { path: join(dir, 'sentinel.yml'), text: stringify(configData), read: readConfigFile };
  await writeFile(configFile.path, configFile.text);
  const config = parseConfig(configData, configFile.path);
  if (cooldown <= startupDelay) logger.warn({ cooldown, startup_delay: startupDelay }, 'cooldown shorter than the startup delay: a loading server may be restarted again');

  const loop = await startLoop({
    config,
    tokenFile,
    dir,
    exporter: exporterAddress,
    remediator: remediatorAddress,
    prometheus: prometheusBin && prom ? { bin: prometheusBin, address: prom } : undefined,
    alertmanager: alertmanagerBin && am ? { bin: alertmanagerBin, address: am } : undefined,
    interval: flags['probe.interval']!,
    // The model server's own metrics, where its server type has a dashboard row for them (vLLM).
    model: flavors[flavor].server.metricsJob === undefined ? undefined : { job: flavors[flavor].server.metricsJob!, address: hostPort(sim), target: 'qwen3' },
    configFile,
    links: parseLinks(flags['web.link']),
    level,
    format: parseLogFormat(flags['log.format']!),
    logger,
    teardown,
  });
  const { remediator } = loop;
  const rows: Array<[string, string]> = [['model server (simulator)', `http://${hostPort(sim)}/v1`], ...Object.entries(loop.urls)];

  const width = Math.max(...rows.map(([name]) => name.length)) + 2;
  const lines = [
    '',
    `qwen-sentinel stack is running, the simulator speaking ${flavor} (Ctrl-C stops everything it started):`,
    ...(simNote ? [`  (${simNote})`] : []),
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
