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
import bcrypt from 'bcryptjs';
import type { RequestHandler } from 'express';
import { parse } from 'yaml';
import { z } from 'zod';
import { ConfigError } from './errors.ts';
import { closeConnection, type TlsOptions } from './web.ts';

export type { TlsOptions };

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
  tls: TlsOptions | undefined;
  /** user -> bcrypt hash, when basic auth is configured. */
  users: Record<string, string> | undefined;
}

type ClientAuth = NonNullable<z.output<typeof schema>['tls_server_config']>['client_auth_type'];

/**
 * client_auth_type as exporter-toolkit (Go's crypto/tls) means it. Node either rejects every
 * unverified certificate or none, so the two modes between are checked after the handshake:
 * RequireAnyClientCert wants a certificate and does not verify it; VerifyClientCertIfGiven
 * verifies one when it is given.
 */
const clientAuth: Record<ClientAuth, Pick<TlsOptions, 'requestCert' | 'rejectUnauthorized' | 'acceptClient'>> = {
  NoClientCert: { requestCert: false, rejectUnauthorized: false },
  RequestClientCert: { requestCert: true, rejectUnauthorized: false },
  RequireAnyClientCert: { requestCert: true, rejectUnauthorized: false, acceptClient: (s) => s.getPeerX509Certificate() !== undefined },
  VerifyClientCertIfGiven: { requestCert: true, rejectUnauthorized: false, acceptClient: (s) => s.getPeerX509Certificate() === undefined || s.authorized },
  RequireAndVerifyClientCert: { requestCert: true, rejectUnauthorized: true, acceptClient: (s) => s.authorized },
};
const verifies = (mode: ClientAuth) => mode === 'VerifyClientCertIfGiven' || mode === 'RequireAndVerifyClientCert';

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
  let tls: TlsOptions | undefined;
  if (c.tls_server_config) {
    const t = c.tls_server_config;
    // Without a CA of its own a verifying server would trust every public CA's certificates.
    if (verifies(t.client_auth_type) && !t.client_ca_file) throw new ConfigError(`${path}: tls_server_config.client_ca_file: required when client_auth_type is ${t.client_auth_type}`);
    if (t.client_ca_file && t.client_auth_type === 'NoClientCert') throw new ConfigError(`${path}: tls_server_config.client_ca_file: set without a client_auth_type that asks for a certificate`);
    const read = async (file: string, field: string) => {
      try {
        return await readFile(file);
      } catch (err) {
        throw new ConfigError(`${path}: tls_server_config.${field}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
    };
    tls = {
      cert: await read(t.cert_file, 'cert_file'),
      key: await read(t.key_file, 'key_file'),
      ...(t.client_ca_file ? { ca: await read(t.client_ca_file, 'client_ca_file') } : {}),
      ...clientAuth[t.client_auth_type],
      minVersion: t.min_version === 'TLS13' ? 'TLSv1.3' : 'TLSv1.2',
    };
  }
  return { tls, users: c.basic_auth_users };
}

// bcrypt is slow on purpose, so: one comparison at a time (as exporter-toolkit), at most 16 pending
// (more get 429 at once), and a password that matched is remembered (by its SHA-256) so a scraper's
// requests do not cost a hash each. Wrong ones are not remembered.
const bcryptLimits = { pending: 16, remembered: 1000 };

/** Basic auth against bcrypt hashes, on every request unless `skip` says otherwise. */
export function basicAuth(users: Record<string, string>, options: { skip?: (req: Parameters<RequestHandler>[0]) => boolean } = {}): RequestHandler {
  const known = new Set<string>();
  // An unknown user is compared with a configured hash too, so the time taken tells no user names.
  const decoy = Object.values(users)[0] ?? '';
  let queue: Promise<unknown> = Promise.resolve();
  let pending = 0;
  return (req, res, next) => {
    if (options.skip?.(req)) return next();
    const match = /^Basic ([A-Za-z0-9+/=]+)$/.exec(req.get('authorization') ?? '');
    const decoded = match ? Buffer.from(match[1]!, 'base64').toString('utf8') : '';
    const colon = decoded.indexOf(':');
    const refuse = (status = 401) => {
      closeConnection(req, res);
      if (status === 401) res.set('www-authenticate', 'Basic realm="qwen-sentinel"');
      else res.set('retry-after', '1');
      res.status(status).type('text/plain').send(status === 401 ? 'Unauthorized\n' : 'Too many authentication attempts at once\n');
    };
    if (colon <= 0) return refuse();
    const [user, password] = [decoded.slice(0, colon), decoded.slice(colon + 1)];
    const hash = Object.hasOwn(users, user) ? users[user]! : undefined;
    const remembered = createHash('sha256').update(`${user}\0${password}\0${hash}`).digest('hex');
    if (hash !== undefined && known.has(remembered)) return next();
    if (pending >= bcryptLimits.pending) return refuse(429);
    pending += 1;
    const compare = queue.then(() => bcrypt.compare(password, hash ?? decoy)).catch(() => false);
    queue = compare;
    compare.then((ok) => {
      pending -= 1;
      if (!ok || hash === undefined) return refuse();
      if (known.size < bcryptLimits.remembered) known.add(remembered);
      next();
    });
  };
}

/** Constant-time string equality (for tokens compared outside bcrypt). */
export const sameSecret = (a: string, b: string) => {
  const x = createHash('sha256').update(a).digest();
  const y = createHash('sha256').update(b).digest();
  return timingSafeEqual(x, y);
};
