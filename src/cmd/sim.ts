// `qwen-sentinel sim`: flags, validation and process lifecycle around startSim.
import { formatFlags, parseDurationFlag, parseFlags, parseListenAddress, UsageError, type FlagSpecs } from '../lib/flags.ts';
import { onShutdownSignal } from '../lib/lifecycle.ts';
import { createLogger, logFlags, parseLogFormat, parseLogLevel } from '../lib/log.ts';
import { isSimFault, simFaultHelp, simFaults } from '../sim/faults.ts';
import { flavorNames, flavors, isFlavorName } from '../sim/flavors/index.ts';
import { startSim } from '../sim/server.ts';

export const simFlags = {
  'web.listen-address': { type: 'string', default: '127.0.0.1:8000', placeholder: 'HOST:PORT', help: 'Address to serve the OpenAI-compatible API on.' },
  flavor: { type: 'string', default: 'vllm', placeholder: 'NAME', help: `Which server to be, on the wire and at start-up: ${flavorNames.join(', ')}.` },
  model: { type: 'string', placeholder: 'NAME', help: `Served model name; default: the flavor's (${flavorNames.map((f) => `${f}: ${flavors[f].server.exampleModel}`).join(', ')}).` },
  ttft: { type: 'string', default: '200ms', placeholder: 'DURATION', help: 'Time from a slot taking a request to its first token.' },
  'tokens-per-second': { type: 'string', default: '50', placeholder: 'N', help: 'Decode rate after the first token.' },
  fault: { type: 'string', default: 'none', placeholder: 'NAME', help: `Fault to start with: ${simFaults.join(', ')}.` },
  'startup-delay': { type: 'string', default: '0s', placeholder: 'DURATION', help: 'Model load time: vllm and sglang refuse connections meanwhile, llamacpp answers 503 "Loading model", ollama loads on the first request.' },
  'api-key': { type: 'string', placeholder: 'KEY', help: 'Require this key (Authorization: Bearer KEY) on the paths the flavor guards; not for ollama, which has no keys.' },
  'keep-alive': { type: 'string', default: '5m', placeholder: 'DURATION', help: 'ollama: unload the model after this long idle.' },
  slots: { type: 'string', placeholder: 'N', help: 'Requests generated at once (llama.cpp --parallel); default: the flavor\'s (llamacpp and ollama 1).' },
  'stream-interval': { type: 'string', placeholder: 'N', help: "Tokens per streamed chunk after the first (vLLM's --stream-interval); default 1, as every real server streams." },
  ...logFlags,
} satisfies FlagSpecs;

export const simUsage = `Usage: qwen-sentinel sim [flags]

Runs a simulated OpenAI-compatible Qwen3 server with known timing and injectable faults, so probes,
alert rules and the remediator can be checked against known truth. --flavor picks the real server
it behaves like, on every path the probes and real clients use:
${flavorNames.map((f) => `  ${f.padEnd(10)}${flavors[f].description}`).join('\n')}
Every flavor serves POST /v1/chat/completions (streamed and not; thinking on unless the flavor's
own switch turns it off) and GET /v1/models. Change the fault at runtime with
POST /sim/fault {"fault":"NAME"}; GET /sim/fault shows it. Faults:
${simFaults.map((f) => `  ${f.padEnd(16)}${simFaultHelp[f]}`).join('\n')}

Flags:
${formatFlags(simFlags)}`;

function positiveInt(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!(Number.isInteger(n) && n >= 1)) throw new UsageError(`--${flag}: expected a positive whole number, got "${text}"`);
  return n;
}

/** Parses and validates argv into startSim options; throws UsageError on any mistake. */
export function parseSimArgs(argv: string[]) {
  const flags = parseFlags(argv, simFlags);
  const { host, port } = parseListenAddress(flags['web.listen-address']!);
  const fault = flags.fault!;
  if (!isSimFault(fault)) throw new UsageError(`--fault: unknown fault "${fault}" (valid: ${simFaults.join(', ')})`);
  const flavor = flags.flavor!;
  if (!isFlavorName(flavor)) throw new UsageError(`--flavor: unknown flavor "${flavor}" (valid: ${flavorNames.join(', ')})`);
  if (flags['api-key'] !== undefined && !flavors[flavor].apiKeys) throw new UsageError(`--api-key: ${flavors[flavor].description.split(':')[0]} has no API keys`);
  const tokensPerSecond = Number(flags['tokens-per-second']);
  if (!(Number.isFinite(tokensPerSecond) && tokensPerSecond > 0)) {
    throw new UsageError(`--tokens-per-second: expected a positive number, got "${flags['tokens-per-second']}"`);
  }
  const slots = positiveInt(flags.slots, 'slots');
  const streamInterval = positiveInt(flags['stream-interval'], 'stream-interval');
  return {
    host,
    port,
    flavor,
    ...(flags.model === undefined ? {} : { model: flags.model }),
    ttftMs: parseDurationFlag(flags.ttft!, 'ttft'),
    tokensPerSecond,
    fault,
    startupDelayMs: parseDurationFlag(flags['startup-delay']!, 'startup-delay'),
    keepAliveMs: parseDurationFlag(flags['keep-alive']!, 'keep-alive'),
    ...(flags['api-key'] === undefined ? {} : { apiKey: flags['api-key'] }),
    ...(slots === undefined ? {} : { slots }),
    ...(streamInterval === undefined ? {} : { streamInterval }),
    logLevel: parseLogLevel(flags['log.level']!),
    logFormat: parseLogFormat(flags['log.format']!),
  };
}

/**
 * Runs the simulator until SIGTERM or SIGINT, then closes it and exits 0. The `crash` fault exits 1
 * (at once with --fault=crash, or after answering POST /sim/fault).
 */
export async function runSim(argv: string[]): Promise<void> {
  const { logLevel, logFormat, ...options } = parseSimArgs(argv);
  const logger = createLogger('sim', logLevel, logFormat);
  const stopped = { sim: undefined as Awaited<ReturnType<typeof startSim>> | undefined };
  // Installed first: a signal while the model "loads" still ends the process cleanly.
  const shutdown = onShutdownSignal(logger, async () => stopped.sim?.close());
  const sim = await startSim({ ...options, logger, onCrash: () => process.exit(1) });
  stopped.sim = sim;
  void sim.ready.then(
    () => logger.info({ url: sim.url, flavor: sim.flavor, model: options.model ?? undefined, fault: sim.fault }, 'simulator listening'),
    () => process.exit(1),
  );
  await shutdown;
  process.exit(0);
}
