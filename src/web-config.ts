// --web.config.file, in the Prometheus exporter-toolkit's format, for the exporter and the
// remediator: TLS (certificate, key, optional client CA) and basic-auth users with bcrypt hashes.
//
//   tls_server_config:
//     cert_file: /etc/qwen-sentinel/tls.crt
//     key_file: /etc/qwen-sentinel/tls.key
//   basic_auth_users:
//     prometheus: $2y$10$...        # htpasswd -nBC 10 "" | tr -d ':\n'
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { ServerOptions } from 'node:https';
import bcrypt from 'bcryptjs';
import type { RequestHandler } from 'express';
import { parse } from 'yaml';
import { z } from 'zod';
import { ConfigError } from './config/load.ts';

const schema = z.strictObject({
  tls_server_config: z
    .strictObject({
      cert_file: z.string().min(1),
      key_file: z.string().min(1),
      client_ca_file: z.string().min(1).optional(),
      client_auth_type: z.enum(['NoClientCert', 'RequestClientCert', 'RequireAnyClientCert', 'VerifyClientCertIfGiven', 'RequireAndVerifyClientCert']).default('NoClientCert'),
      min_version: z.enum(['TLS12', 'TLS13']).default('TLS12'),
    })
    .optional(),
  basic_auth_users: z.record(z.string().min(1), z.string().regex(/^\$2[aby]?\$\d{2}\$.{53}$/, 'expected a bcrypt hash ($2y$...)')).optional(),
});

export interface WebConfig {
  /** Options for https.createServer, when TLS is configured. */
  tls: ServerOptions | undefined;
  /** user -> bcrypt hash, when basic auth is configured. */
  users: Record<string, string> | undefined;
}

export async function readWebConfig(path: string): Promise<WebConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`${path}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let data: unknown;
  try {
    data = parse(text) ?? {};
  } catch (err) {
    throw new ConfigError(`${path}: invalid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  const result = schema.safeParse(data);
  if (!result.success) throw new ConfigError(`${path}: ${result.error.issues.map((i) => `${i.path.join('.') || '(top level)'}: ${i.code === 'unrecognized_keys' ? `unknown field ${i.keys.join(', ')}` : i.message}`).join('; ')}`);
  const c = result.data;
  let tls: ServerOptions | undefined;
  if (c.tls_server_config) {
    const t = c.tls_server_config;
    const read = async (file: string, field: string) => {
      try {
        return await readFile(file);
      } catch (err) {
        throw new ConfigError(`${path}: tls_server_config.${field}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
    };
    const wantCert = t.client_auth_type !== 'NoClientCert';
    tls = {
      cert: await read(t.cert_file, 'cert_file'),
      key: await read(t.key_file, 'key_file'),
      ...(t.client_ca_file ? { ca: await read(t.client_ca_file, 'client_ca_file') } : {}),
      requestCert: wantCert,
      rejectUnauthorized: t.client_auth_type === 'RequireAndVerifyClientCert' || t.client_auth_type === 'RequireAnyClientCert',
      minVersion: t.min_version === 'TLS13' ? 'TLSv1.3' : 'TLSv1.2',
    };
  }
  return { tls, users: c.basic_auth_users };
}

/**
 * Basic auth against bcrypt hashes. bcrypt is slow on purpose, so a password that matched is
 * remembered (by its SHA-256) and a flood of requests does not cost a hash each; wrong ones are not.
 */
export function basicAuth(users: Record<string, string>, options: { skip?: (req: Parameters<RequestHandler>[0]) => boolean } = {}): RequestHandler {
  const known = new Set<string>();
  return (req, res, next) => {
    if (options.skip?.(req)) return next();
    const match = /^Basic ([A-Za-z0-9+/=]+)$/.exec(req.get('authorization') ?? '');
    const decoded = match ? Buffer.from(match[1]!, 'base64').toString('utf8') : '';
    const colon = decoded.indexOf(':');
    const user = colon > 0 ? decoded.slice(0, colon) : '';
    const password = colon > 0 ? decoded.slice(colon + 1) : '';
    const hash = Object.hasOwn(users, user) ? users[user]! : undefined;
    const refuse = () => res.status(401).set('www-authenticate', 'Basic realm="qwen-sentinel"').type('text/plain').send('Unauthorized\n');
    if (hash === undefined) return refuse();
    const remembered = createHash('sha256').update(`${user}\0${password}\0${hash}`).digest('hex');
    if (known.has(remembered)) return next();
    bcrypt.compare(password, hash).then(
      (ok) => {
        if (!ok) return refuse();
        if (known.size < 1000) known.add(remembered);
        next();
      },
      () => refuse(),
    );
  };
}

/** Constant-time string equality (for tokens compared outside bcrypt). */
export const sameSecret = (a: string, b: string) => {
  const x = createHash('sha256').update(a).digest();
  const y = createHash('sha256').update(b).digest();
  return timingSafeEqual(x, y);
};
