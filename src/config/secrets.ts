import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { ConfigError } from './load.ts';
import type { Config, Target } from './schema.ts';

const maxSecretBytes = 64 * 1024;

/**
 * Reads a secret (an API key, a token) from a file named by the config. Only a regular file of at
 * most 64 KiB: a FIFO would hang start-up and /dev/zero would fill memory. Errors name the field.
 */
export async function readSecretFile(path: string, field: string): Promise<string> {
  let file;
  try {
    // O_NONBLOCK: opening a FIFO must not wait for a writer; its type is refused below.
    file = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    throw new ConfigError(`${field}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    const stat = await file.stat();
    if (!stat.isFile()) throw new ConfigError(`${field}: ${path} is not a regular file`);
    if (stat.size > maxSecretBytes) throw new ConfigError(`${field}: ${path} is larger than ${maxSecretBytes} bytes`);
    const secret = (await file.readFile({ encoding: 'utf8' })).slice(0, maxSecretBytes).trim();
    if (secret === '') throw new ConfigError(`${field}: ${path} is empty`);
    return secret;
  } finally {
    await file.close();
  }
}

/** A secret from a file or an environment variable, whichever the config names (FIELD_file, FIELD_env). */
export async function readSecret(source: { file?: string | undefined; env?: string | undefined }, field: string, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  if (source.file !== undefined) return readSecretFile(source.file, `${field}_file`);
  if (source.env === undefined) return undefined;
  const value = env[source.env]?.trim();
  if (!value) throw new ConfigError(`${field}_env: environment variable ${source.env} is not set`);
  return value;
}

/** The API keys probes send, read once per (re)load; never logged or exported. */
export interface ApiKeys {
  forTarget(target: Target): string | undefined;
  forModule(name: string): string | undefined;
}

export async function readApiKeys(config: Config, env: NodeJS.ProcessEnv = process.env): Promise<ApiKeys> {
  const modules = new Map<string, string>();
  for (const m of Object.values(config.modules)) {
    const key = await readSecret({ file: m.api_key_file, env: m.api_key_env }, `modules.${m.name}.api_key`, env);
    if (key !== undefined) modules.set(m.name, key);
  }
  const targets = new Map<string, string>();
  for (const [i, t] of config.targets.entries()) {
    const key = await readSecret({ file: t.api_key_file, env: t.api_key_env }, `targets[${i}].api_key`, env);
    if (key !== undefined) targets.set(t.name, key);
  }
  return {
    forTarget: (t) => targets.get(t.name) ?? modules.get(t.module),
    forModule: (name) => modules.get(name),
  };
}

/** A digest of every key the config names, so a reload notices a rotated key file. */
export async function keyFingerprint(config: Config, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  try {
    const keys = await readApiKeys(config, env);
    const all = [...config.targets.map((t) => keys.forTarget(t)), ...Object.keys(config.modules).map((m) => keys.forModule(m))];
    return createHash('sha256').update(JSON.stringify(all)).digest('hex');
  } catch (err) {
    return (err as Error).message;
  }
}
