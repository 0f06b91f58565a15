// `qwen-sentinel sim`: flags, validation and process lifecycle around startSim.
import { formatFlags, parseDurationFlag, parseFlags, parseListenAddress, UsageError, type FlagSpecs } from '../flags.ts';
import { onShutdownSignal } from '../lifecycle.ts';
import { createLogger, logLevels, parseLogLevel } from '../log.ts';
import { isSimFault, simFaultHelp, simFaults } from './faults.ts';
import { startSim } from './server.ts';

export const simFlags = {
  'web.listen-address': { type: 'string', default: '127.0.0.1:8000', placeholder: 'HOST:PORT', help: 'Address to serve the OpenAI-compatible API on.' },
  model: { type: 'string', default: 'Qwen/Qwen3-0.6B', placeholder: 'NAME', help: 'Served model name (the id in /v1/models).' },
  ttft: { type: 'string', default: '200ms', placeholder: 'DURATION', help: 'Time from request to first token.' },
  'tokens-per-second': { type: 'string', default: '50', placeholder: 'N', help: 'Decode rate after the first token.' },
  fault: { type: 'string', default: 'none', placeholder: 'NAME', help: `Fault to start with: ${simFaults.join(', ')}.` },
  'startup-delay': { type: 'string', default: '0s', placeholder: 'DURATION', help: 'Simulated model load: the port accepts connections, nothing answers until then.' },
  'log.level': { type: 'string', default: 'info', placeholder: 'LEVEL', help: `Log level: ${logLevels.join(', ')}.` },
} satisfies FlagSpecs;

export const simUsage = `Usage: qwen-sentinel sim [flags]

Runs a simulated OpenAI-compatible, vLLM-shaped Qwen3 server with known timing and injectable
faults, so probes, alert rules and the remediator can be checked against known truth. It serves
GET /v1/models, GET /health and POST /v1/chat/completions (streamed and not, with reasoning_content
unless chat_template_kwargs.enable_thinking is false). Change the fault at runtime with
POST /sim/fault {"fault":"NAME"}; GET /sim/fault shows it. Faults:
${simFaults.map((f) => `  ${f.padEnd(16)}${simFaultHelp[f]}`).join('\n')}

Flags:
${formatFlags(simFlags)}`;

/** Parses and validates argv into startSim options; throws UsageError on any mistake. */
export function parseSimArgs(argv: string[]) {
  const flags = parseFlags(argv, simFlags);
  const { host, port } = parseListenAddress(flags['web.listen-address']!);
  const fault = flags.fault!;
  if (!isSimFault(fault)) throw new UsageError(`--fault: unknown fault "${fault}" (valid: ${simFaults.join(', ')})`);
  const tokensPerSecond = Number(flags['tokens-per-second']);
  if (!(Number.isFinite(tokensPerSecond) && tokensPerSecond > 0)) {
    throw new UsageError(`--tokens-per-second: expected a positive number, got "${flags['tokens-per-second']}"`);
  }
  return {
    host,
    port,
    model: flags.model!,
    ttftMs: parseDurationFlag(flags.ttft!, 'ttft'),
    tokensPerSecond,
    fault,
    startupDelayMs: parseDurationFlag(flags['startup-delay']!, 'startup-delay'),
    logLevel: parseLogLevel(flags['log.level']!),
  };
}

/**
 * Runs the simulator until SIGTERM or SIGINT, then closes it and exits 0. The `crash` fault exits 1
 * (at once with --fault=crash, or after answering POST /sim/fault).
 */
export async function runSim(argv: string[]): Promise<void> {
  const { logLevel, ...options } = parseSimArgs(argv);
  const logger = createLogger('sim', logLevel);
  const sim = await startSim({ ...options, logger, onCrash: () => process.exit(1) });
  logger.info({ url: sim.url, model: options.model, fault: sim.fault }, 'simulator listening');
  await onShutdownSignal(logger, () => sim.close());
  process.exit(0);
}
