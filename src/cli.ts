#!/usr/bin/env node
import { ConfigError } from './config/load.ts';
import { exporterUsage, runExporter } from './exporter/main.ts';
import { probeUsage, runProbeCommand } from './exporter/probe-command.ts';
import { UsageError } from './flags.ts';
import { StartupError } from './lifecycle.ts';
import { remediatorUsage, runRemediator } from './remediator/main.ts';
import { runSim, simUsage } from './sim/main.ts';
import { runStack, stackUsage } from './stack/main.ts';
import { version } from './version.ts';
import { ListenError } from './web.ts';

const commands: Record<string, { run: (argv: string[]) => Promise<number | void>; usage: string; summary: string }> = {
  stack: { run: runStack, usage: stackUsage, summary: 'Run the whole loop on loopback: simulator, exporter, remediator, Prometheus, Alertmanager.' },
  exporter: { run: runExporter, usage: exporterUsage, summary: 'Probe model servers and publish Prometheus metrics.' },
  probe: { run: runProbeCommand, usage: probeUsage, summary: 'Probe one model server once; exit 0 when healthy, 1 when not (liveness checks, scripts).' },
  remediator: { run: runRemediator, usage: remediatorUsage, summary: 'Receive Alertmanager webhooks and restart the right model server.' },
  sim: { run: runSim, usage: simUsage, summary: 'Simulate an OpenAI-compatible Qwen3 server, with fault injection.' },
};

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
  const command = Object.hasOwn(commands, first) ? commands[first] : undefined;
  if (!command) {
    process.stderr.write(`qwen-sentinel: unknown command "${first}"\n\n${usage}`);
    return 2;
  }
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
