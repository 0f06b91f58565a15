import { ConfigError } from '../lib/errors.ts';
import type { RemediatorConfig } from './config.ts';
import { readSecretFile } from '../config/secrets.ts';

/** Reads the webhook token named by the config; refuses to start without one. */
export async function loadToken(config: Pick<RemediatorConfig, 'remediator'>, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const auth = config.remediator.auth;
  if (!auth) throw new ConfigError('remediator.auth: required: set bearer_token_file or bearer_token_env');
  let token: string | undefined;
  if (auth.bearer_token_file !== undefined) {
    // A regular file under a size limit: a FIFO would hang start-up, /dev/zero fill memory.
    token = await readSecretFile(auth.bearer_token_file, 'remediator.auth.bearer_token_file');
  } else {
    token = env[auth.bearer_token_env!]?.trim();
    if (token === undefined) throw new ConfigError(`remediator.auth.bearer_token_env: environment variable ${auth.bearer_token_env} is not set`);
  }
  if (token.length < 16) throw new ConfigError('remediator.auth: the token must be at least 16 characters');
  return token;
}
