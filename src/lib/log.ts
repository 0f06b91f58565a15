import { pino, type DestinationStream, type Logger } from 'pino';
import { UsageError, type FlagSpecs } from './flags.ts';

export type { Logger };

export const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;
export type LogLevel = (typeof logLevels)[number];
/** Where each format's lines go: pino's own JSON lines on stdout, or those lines rewritten as logfmt. */
const destinations = {
  json: () => pino.destination({ dest: 1, sync: true }),
  logfmt: () => logfmtDestination(),
} satisfies Record<string, () => DestinationStream>;
export type LogFormat = keyof typeof destinations;
export const logFormats = Object.keys(destinations) as LogFormat[];

/** The log flags of every command that logs, as Prometheus' own: spread into each command's flag table. */
export const logFlags = {
  'log.level': { type: 'string', default: 'info', placeholder: 'LEVEL', help: `Only log messages with at least this severity: ${logLevels.join(', ')}.` },
  'log.format': { type: 'string', default: 'json', placeholder: 'FORMAT', help: 'Output format of log messages: json (one object per line) or logfmt (key=value, as Prometheus and Alertmanager log).' },
} satisfies FlagSpecs;

/**
 * Logs on stdout, one line per message, with the component named in every line: JSON objects, or
 * logfmt lines (`ts=... level=info component=exporter msg="..." key=value`).
 */
export function createLogger(component: string, level: LogLevel = 'info', format: LogFormat = 'json'): Logger {
  const options = { level, base: { component }, timestamp: pino.stdTimeFunctions.isoTime };
  return pino(options, destinations[format]());
}

/** The logger that a command's --log.level and --log.format ask for; a bad value is a usage error naming its flag. */
export function loggerFromFlags(component: string, flags: { 'log.level'?: string | undefined; 'log.format'?: string | undefined }): Logger {
  return createLogger(component, parseLogLevel(flags['log.level'] ?? 'info'), parseLogFormat(flags['log.format'] ?? 'json'));
}

/** A logger that writes nowhere, for tests and library callers that pass none. */
export const silentLogger: Logger = pino({ level: 'silent' });

export function parseLogLevel(text: string): LogLevel {
  if ((logLevels as readonly string[]).includes(text)) return text as LogLevel;
  throw new UsageError(`--log.level: expected one of ${logLevels.join(', ')}, got "${text}"`);
}

export function parseLogFormat(text: string): LogFormat {
  if ((logFormats as readonly string[]).includes(text)) return text as LogFormat;
  throw new UsageError(`--log.format: expected one of ${logFormats.join(', ')}, got "${text}"`);
}

// pino writes each message as one JSON line to its destination, synchronously; this one rewrites
// the line as logfmt and writes it at once (sync, as a crash or process.exit() must not lose it).
function logfmtDestination(): DestinationStream {
  const out = pino.destination({ dest: 1, sync: true });
  return { write: (line: string) => void out.write(logfmtLine(line)) };
}

/**
 * One pino JSON line as a logfmt line: ts, level, component and msg first, then the other fields in
 * their order. Nested objects and arrays are flattened into dotted keys (err.message, err.stack,
 * targets.0); a value is quoted, with JSON's escapes (\n, \", \\), when it is empty or holds a
 * space, a control character, `=` or `"`.
 */
export function logfmtLine(json: string): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json.endsWith('\n') ? json : `${json}\n`;
  }
  const { time, level, component, msg, ...rest } = record;
  const pairs: string[] = [];
  const add = (key: string, value: unknown) => {
    if (value === undefined) return;
    if (value !== null && typeof value === 'object') {
      const entries = Object.entries(value);
      if (entries.length === 0) return void pairs.push(`${logfmtKey(key)}=${Array.isArray(value) ? '[]' : '{}'}`);
      for (const [k, v] of entries) add(`${key}.${k}`, v);
      return;
    }
    pairs.push(`${logfmtKey(key)}=${logfmtValue(value)}`);
  };
  add('ts', time);
  add('level', typeof level === 'number' ? (pino.levels.labels[level] ?? level) : level);
  add('component', component);
  add('msg', msg);
  for (const [key, value] of Object.entries(rest)) add(key, value);
  return `${pairs.join(' ')}\n`;
}

// A key may hold neither spaces nor `=` nor `"` (go-logfmt's rule): such characters become `_`.
const logfmtKey = (key: string) => key.replace(/[\s="\p{Cc}]/gu, '_') || '_';

function logfmtValue(value: unknown): string {
  const text = typeof value === 'string' ? value : String(value);
  return text === '' || /[\s="\p{Cc}]/u.test(text) ? JSON.stringify(text) : text;
}
