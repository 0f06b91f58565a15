import { parseArgs, type ParseArgsConfig } from 'node:util';
import { parseDuration } from './duration.ts';

/** A command-line mistake: the CLI prints it with the command's usage and exits 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

export interface FlagSpec {
  type: 'string' | 'boolean';
  multiple?: boolean;
  default?: string | boolean | string[];
  /** Shown in --help; every flag is documented. */
  help: string;
  placeholder?: string;
}
export type FlagSpecs = Record<string, FlagSpec>;

type FlagValues<S extends FlagSpecs> = {
  [K in keyof S]: S[K]['type'] extends 'boolean' ? boolean | undefined : S[K]['multiple'] extends true ? string[] | undefined : string | undefined;
};

/** Parses argv strictly against specs (Prometheus-style --name=value flags); unknown flags are usage errors. */
export function parseFlags<S extends FlagSpecs>(argv: string[], specs: S): FlagValues<S> {
  return parseFlagsAndArgs(argv, specs, 0).flags;
}

/** As parseFlags, with up to maxArgs positional arguments (a command's operands, such as a URL). */
export function parseFlagsAndArgs<S extends FlagSpecs>(argv: string[], specs: S, maxArgs: number): { flags: FlagValues<S>; args: string[] } {
  const options: ParseArgsConfig['options'] = {};
  for (const [name, spec] of Object.entries(specs)) {
    options[name] = { type: spec.type, ...(spec.multiple ? { multiple: true } : {}), ...(spec.default !== undefined ? { default: spec.default } : {}) };
  }
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, strict: true, allowPositionals: maxArgs > 0 });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (parsed.positionals.length > maxArgs) throw new UsageError(`unexpected argument "${parsed.positionals[maxArgs]}"`);
  return { flags: parsed.values as FlagValues<S>, args: parsed.positionals };
}

/** Renders the flag table for --help. */
export function formatFlags(specs: FlagSpecs): string {
  const rows = Object.entries(specs).map(([name, spec]) => {
    const left = `  --${name}${spec.type === 'string' ? `=${spec.placeholder ?? 'VALUE'}` : ''}`;
    const def = spec.default !== undefined && spec.default !== false ? ` (default: ${JSON.stringify(spec.default)})` : '';
    return [left, `${spec.help}${spec.multiple ? ' Repeatable.' : ''}${def}`] as const;
  });
  const width = Math.max(...rows.map(([left]) => left.length)) + 2;
  return rows.map(([left, right]) => left.padEnd(width) + right).join('\n');
}

export interface ListenAddress {
  host: string;
  port: number;
}

/** Parses "host:port" (port 0 picks a free one); a bare ":port" listens on all interfaces, as Prometheus does. */
export function parseListenAddress(text: string, flag = 'web.listen-address'): ListenAddress {
  const match = /^(\[[^\]]+\]|[^:]*):(\d{1,5})$/.exec(text);
  const port = Number(match?.[2]);
  if (!match || port > 65535) throw new UsageError(`--${flag}: expected HOST:PORT, got "${text}"`);
  const host = match[1]!.replace(/^\[|\]$/g, '');
  return { host: host === '' ? '0.0.0.0' : host, port };
}

/** Parses a duration flag into milliseconds. */
export function parseDurationFlag(text: string, flag: string): number {
  const ms = parseDuration(text);
  if (ms === undefined) throw new UsageError(`--${flag}: not a duration: "${text}" (use e.g. 500ms, 15s, 1m30s)`);
  return ms;
}
