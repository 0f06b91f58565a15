import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { ConfigError } from '../lib/errors.ts';

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
