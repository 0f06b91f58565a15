#!/usr/bin/env node
import { ConfigError, ListenError } from './lib/errors.ts';
import { UsageError } from './lib/flags.ts';
import { StartupError } from './lib/lifecycle.ts';
import { version } from './lib/version.ts';
import { collectOnce, limitHeapGrowth, smallYoungGeneration } from './lib/v8-memory.ts';

interface Command {
  run(argv: string[]): Promise<number | void>;
  usage: string;
}

// Each command's code is loaded only when it runs: an exporter never loads the remediator's
// process handling (execa), its HTTP client (undici) or the simulator, which costs memory.
const commands: Record<string, { load: () => Promise<Command>; summary: string }> = {
  stack: { load: () => import('./cmd/stack/main.ts').then((m) => ({ run: m.runStack, usage: m.stackUsage })), summary: 'Run the whole loop on loopback: simulator, exporter, remediator, Prometheus, Alertmanager.' },
  exporter: { load: () => import('./cmd/exporter.ts').then((m) => ({ run: m.runExporter, usage: m.exporterUsage })), summary: 'Probe model servers and publish Prometheus metrics.' },
  probe: { load: () => import('./cmd/probe.ts').then((m) => ({ run: m.runProbeCommand, usage: m.probeUsage })), summary: 'Probe one model server once; exit 0 when healthy, 1 when not (liveness checks, scripts).' },
  remediator: { load: () => import('./cmd/remediator.ts').then((m) => ({ run: m.runRemediator, usage: m.remediatorUsage })), summary: 'Receive Alertmanager webhooks and restart the right model server.' },
  fleet: { load: () => import('./cmd/fleet.ts').then((m) => ({ run: m.runFleet, usage: m.fleetUsage })), summary: 'Generate a fleet\'s configuration from an inventory of hosts (fleet alertmanager: a route and webhook per host).' },
  sim: { load: () => import('./cmd/sim.ts').then((m) => ({ run: m.runSim, usage: m.simUsage })), summary: 'Simulate an OpenAI-compatible Qwen3 server, with fault injection.' },
};

/** The commands that run for weeks: their memory is what an operator sees. */
const services = new Set(['exporter', 'remediator']);

const usage = `Usage: qwen-sentinel <command> [flags]

Keeps self-hosted OpenAI-compatible LLM servers alive, the Prometheus way.

Commands:
${Object.entries(commands).map(([name, c]) => `  ${name.padEnd(12)}${c.summary}`).join('\n')}

Flags:
  --help       Show help (also after a command: qwen-sentinel exporter --help).
  --version    Show the version.
`;

async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined || first === '--help' || first === '-h' || first === 'help') {
    process.stdout.write(usage);
    return first === undefined ? 2 : 0;
  }
  if (first === '--version' || first === '-v') {
    process.stdout.write(`qwen-sentinel ${version} (node ${process.version})\n`);
    return 0;
  }
  const entry = Object.hasOwn(commands, first) ? commands[first] : undefined;
  if (!entry) {
    process.stderr.write(`qwen-sentinel: unknown command "${first}"\n\n${usage}`);
    return 2;
  }
  const service = services.has(first);
  if (service) smallYoungGeneration();
  const command = await entry.load();
  // Once the command's code is loaded, before its config is parsed (10,000 targets' config already
  // takes a full collection, whose limit with V8's own factor let the heap reach 200 MB).
  if (service && limitHeapGrowth()) collectOnce();
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`${command.usage}\n`);
    return 0;
  }
  try {
    // A failed cleanup at shutdown leaves process.exitCode at 1.
    return (await command.run(rest)) ?? Number(process.exitCode ?? 0);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`qwen-sentinel ${first}: ${err.message}\nRun "qwen-sentinel ${first} --help" for the flags.\n`);
      return 2;
    }
    if (err instanceof ConfigError) {
      process.stderr.write(`qwen-sentinel ${first}: invalid config: ${err.message}\n`);
      return 1;
    }
    if (err instanceof ListenError || err instanceof StartupError) {
      process.stderr.write(`qwen-sentinel ${first}: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

// Exit explicitly: a finished command must not linger on idle keep-alive sockets.
process.exit(await main(process.argv.slice(2)));
