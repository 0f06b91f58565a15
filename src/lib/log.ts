import { pino, type Logger } from 'pino';
import { UsageError } from './flags.ts';

export type { Logger };

export const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;
export type LogLevel = (typeof logLevels)[number];

/** JSON logs on stdout, one object per line, with the component named in every line. */
export function createLogger(component: string, level: LogLevel = 'info'): Logger {
  return pino({ level, base: { component }, timestamp: pino.stdTimeFunctions.isoTime });
}

/** A logger that writes nowhere, for tests and library callers that pass none. */
export const silentLogger: Logger = pino({ level: 'silent' });

export function parseLogLevel(text: string): LogLevel {
  if ((logLevels as readonly string[]).includes(text)) return text as LogLevel;
  throw new UsageError(`--log.level: expected one of ${logLevels.join(', ')}, got "${text}"`);
}
