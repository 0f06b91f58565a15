import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';
import type { z } from 'zod';
import { configSchema, type Config } from './schema.ts';

/** A config that cannot be used; the message names the file and every offending field. */
import { ConfigError } from '../errors.ts';
export { ConfigError } from '../errors.ts';

/** "targets[0].interval" from zod's path. */
function fieldPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((out, key) => (typeof key === 'number' ? `${out}[${key}]` : out ? `${out}.${String(key)}` : String(key)), '') || '(top level)';
}

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') return issue.keys.map((k) => `${fieldPath([...issue.path, k])}: unknown field`).join('; ');
  return `${fieldPath(issue.path)}: ${issue.message}`;
}

/** Validates already-parsed YAML/JSON data. */
export function parseConfig(data: unknown, source = 'config'): Config {
  const result = configSchema.safeParse(data ?? {});
  if (!result.success) throw new ConfigError(`${source}: ${result.error.issues.map(describeIssue).join('; ')}`);
  return result.data;
}

/** Parses YAML text into a validated config. */
export function parseConfigText(text: string, source = 'config'): Config {
  let data: unknown;
  try {
    data = parse(text);
  } catch (err) {
    // The yaml package's first line already says "at line L, column C".
    throw new ConfigError(`${source}: invalid YAML: ${(err as Error).message.split('\n')[0]!.replace(/:$/, '')}`);
  }
  return parseConfig(data, source);
}

/** Reads and validates a config file; the text comes along so a reload can tell whether it changed. */
export async function readConfigFile(path: string): Promise<{ config: Config; text: string }> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`${path}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return { config: parseConfigText(text, path), text };
}
