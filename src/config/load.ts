// Reading a YAML config against a schema: one pass that parses, validates, fills defaults and
// names every offending field. Which schema is the caller's: the commands compose it.
import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from '../lib/errors.ts';

export { ConfigError };

/** "targets[0].interval" from zod's path. */
function fieldPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((out, key) => (typeof key === 'number' ? `${out}[${key}]` : out ? `${out}.${String(key)}` : String(key)), '') || '(top level)';
}

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') return issue.keys.map((k) => `${fieldPath([...issue.path, k])}: unknown field`).join('; ');
  return `${fieldPath(issue.path)}: ${issue.message}`;
}

/** Validates already-parsed YAML/JSON data; a ConfigError names the source and every field. */
export function parseWith<S extends z.ZodType>(schema: S, data: unknown, source = 'config'): z.output<S> {
  const result = schema.safeParse(data ?? {});
  if (!result.success) throw new ConfigError(`${source}: ${result.error.issues.map(describeIssue).join('; ')}`);
  return result.data;
}

/** Parses YAML text, then validates it. */
export function parseYamlWith<S extends z.ZodType>(schema: S, text: string, source = 'config'): z.output<S> {
  let data: unknown;
  try {
    data = parse(text);
  } catch (err) {
    // The yaml package's first line already says "at line L, column C".
    throw new ConfigError(`${source}: invalid YAML: ${(err as Error).message.split('\n')[0]!.replace(/:$/, '')}`);
  }
  return parseWith(schema, data, source);
}

/** Reads and validates a file; the text comes along so a reload can tell whether it changed. */
export async function readYamlFileWith<S extends z.ZodType>(schema: S, path: string): Promise<{ config: z.output<S>; text: string }> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`${path}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return { config: parseYamlWith(schema, text, path), text };
}
