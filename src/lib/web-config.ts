// --web.config.file, in the Prometheus exporter-toolkit's web-config format, for the exporter and
// the remediator. Every key of that format is accepted and applied, except HTTP/2 (Node serves
// HTTP/1.1 here), which is logged at start-up:
//
//   tls_server_config:               # cert_file/key_file or inline cert/key; client_ca_file or client_ca
//     cert_file: /etc/qwen-sentinel/tls.crt
//     key_file: /etc/qwen-sentinel/tls.key
//     min_version: TLS12            # and max_version; cipher_suites, curve_preferences in Go's names
//   http_server_config:
//     headers: { X-Frame-Options: deny, X-Content-Type-Options: nosniff }
//   basic_auth_users:
//     prometheus: $2y$10$...        # htpasswd -nBC 10 "" | tr -d ':\n'
//   rate_limit: { interval: 1s, burst: 20 }
//
// Relative file names are relative to the web config file's directory, as in exporter-toolkit.
import { createHash, createPrivateKey, timingSafeEqual, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { dirname, resolve } from 'node:path';
import type { TLSSocket } from 'node:tls';
import bcrypt from 'bcryptjs';
import type { RequestHandler } from 'express';
import { parse } from 'yaml';
import { z } from 'zod';
import { parseDuration } from './duration.ts';
import { ConfigError } from './errors.ts';
import { silentLogger, type Logger } from './log.ts';
import { closeConnection, type TlsOptions } from './web.ts';

export type { TlsOptions };

/** Go's cipher suite names (tls.CipherSuites(), the ones exporter-toolkit accepts) -> OpenSSL's. */
const cipherSuites: Record<string, string> = {
  TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA: 'ECDHE-ECDSA-AES128-SHA',
  TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA: 'ECDHE-ECDSA-AES256-SHA',
  TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA: 'ECDHE-RSA-AES128-SHA',
  TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA: 'ECDHE-RSA-AES256-SHA',
  TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256: 'ECDHE-ECDSA-AES128-GCM-SHA256',
  TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384: 'ECDHE-ECDSA-AES256-GCM-SHA384',
  TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256: 'ECDHE-RSA-AES128-GCM-SHA256',
  TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384: 'ECDHE-RSA-AES256-GCM-SHA384',
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256: 'ECDHE-RSA-CHACHA20-POLY1305',
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256: 'ECDHE-ECDSA-CHACHA20-POLY1305',
  // TLS 1.3's: the same names in OpenSSL.
  TLS_AES_128_GCM_SHA256: 'TLS_AES_128_GCM_SHA256',
  TLS_AES_256_GCM_SHA384: 'TLS_AES_256_GCM_SHA384',
  TLS_CHACHA20_POLY1305_SHA256: 'TLS_CHACHA20_POLY1305_SHA256',
};
const tls13Suites = Object.keys(cipherSuites).filter((name) => !name.startsWith('TLS_ECDHE_'));
/** Go's curve names (exporter-toolkit's list) -> OpenSSL's. */
const curves: Record<string, string> = { CurveP256: 'P-256', CurveP384: 'P-384', CurveP521: 'P-521', X25519: 'X25519' };
const tlsVersions = { TLS10: 'TLSv1', TLS11: 'TLSv1.1', TLS12: 'TLSv1.2', TLS13: 'TLSv1.3' } as const;
const oneOf = (table: Record<string, unknown>, what: string) =>
  z.string().superRefine((name, ctx) => {
    if (!Object.hasOwn(table, name)) ctx.addIssue({ code: 'custom', message: `unknown ${what} "${name}" (known: ${Object.keys(table).join(', ')})` });
  });

// RequireClientCert: exporter-toolkit's old name of RequireAnyClientCert.
const clientAuthTypes = ['NoClientCert', 'RequestClientCert', 'RequireAnyClientCert', 'RequireClientCert', 'VerifyClientCertIfGiven', 'RequireAndVerifyClientCert'] as const;
type ClientAuth = (typeof clientAuthTypes)[number];

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
  RequireClientCert: { requestCert: true, rejectUnauthorized: false, acceptClient: (s) => s.getPeerX509Certificate() !== undefined },
  VerifyClientCertIfGiven: { requestCert: true, rejectUnauthorized: false, acceptClient: (s) => s.getPeerX509Certificate() === undefined || s.authorized },
  RequireAndVerifyClientCert: { requestCert: true, rejectUnauthorized: true, acceptClient: (s) => s.authorized },
};
const verifies = (mode: ClientAuth) => mode === 'VerifyClientCertIfGiven' || mode === 'RequireAndVerifyClientCert';
const requiresCert = (mode: ClientAuth) => mode === 'RequireAnyClientCert' || mode === 'RequireClientCert' || mode === 'RequireAndVerifyClientCert';

const schema = z.strictObject({
  tls_server_config: z
    .strictObject({
      cert: z.string().min(1).optional(),
      key: z.string().min(1).optional(),
      client_ca: z.string().min(1).optional(),
      cert_file: z.string().min(1).optional(),
      key_file: z.string().min(1).optional(),
      client_ca_file: z.string().min(1).optional(),
      client_auth_type: z.enum(clientAuthTypes).default('NoClientCert'),
      client_allowed_sans: z.array(z.string().min(1)).min(1).optional(),
      min_version: z.enum(['TLS10', 'TLS11', 'TLS12', 'TLS13']).default('TLS12'),
      max_version: z.enum(['TLS10', 'TLS11', 'TLS12', 'TLS13']).default('TLS13'),
      cipher_suites: z.array(oneOf(cipherSuites, 'cipher suite')).min(1).optional(),
      prefer_server_cipher_suites: z.boolean().default(true),
      curve_preferences: z.array(oneOf(curves, 'curve')).min(1).optional(),
    })
    .superRefine((t, ctx) => {
      const issue = (field: string, message: string) => ctx.addIssue({ code: 'custom', path: [field], message });
      for (const name of ['cert', 'key', 'client_ca'] as const) {
        if (t[name] !== undefined && t[`${name}_file`] !== undefined) issue(name, `set either ${name} or ${name}_file, not both`);
      }
      if (t.cert === undefined && t.cert_file === undefined) issue('cert_file', 'required (or cert, inline)');
      if (t.key === undefined && t.key_file === undefined) issue('key_file', 'required (or key, inline)');
      const mode = t.client_auth_type;
      const ca = t.client_ca ?? t.client_ca_file;
      // Without a CA of its own a verifying server would trust every public CA's certificates.
      if (verifies(mode) && ca === undefined) issue('client_ca_file', `required when client_auth_type is ${mode}`);
      if (ca !== undefined && mode === 'NoClientCert') issue(t.client_ca === undefined ? 'client_ca_file' : 'client_ca', 'set without a client_auth_type that asks for a certificate');
      if (t.client_allowed_sans && !requiresCert(mode)) issue('client_allowed_sans', `needs client_auth_type RequireAnyClientCert or RequireAndVerifyClientCert (with ${mode} a client may send no certificate)`);
      if (t.min_version > t.max_version) issue('max_version', `${t.max_version} is below min_version ${t.min_version}`);
    })
    .optional(),
  http_server_config: z
    .strictObject({
      http2: z.boolean().optional(),
      // The headers exporter-toolkit allows, with its values where it fixes them; blank means unset.
      headers: z
        .strictObject({
          'Content-Security-Policy': z.string().optional(),
          'X-Frame-Options': z.enum(['deny', 'sameorigin', '']).optional(),
          'X-Content-Type-Options': z.enum(['nosniff', '']).optional(),
          'X-XSS-Protection': z.string().optional(),
          'Strict-Transport-Security': z.string().optional(),
        })
        .optional(),
    })
    .optional(),
  basic_auth_users: z.record(z.string().min(1), z.string().regex(/^\$2[aby]?\$\d{2}\$.{53}$/, 'expected a bcrypt hash ($2y$...)')).optional(),
  rate_limit: z
    .strictObject({
      // A Go duration; 0 (the default) turns the limit off.
      interval: z.union([z.string(), z.literal(0)]).transform((text, ctx) => {
        const ms = text === 0 ? 0 : parseDuration(text);
        if (ms === undefined) ctx.addIssue({ code: 'custom', message: `not a duration: "${text}" (use e.g. 500ms, 1s)` });
        return ms ?? 0;
      }).default(0),
      burst: z.number().int().min(0).default(0),
    })
    .refine((r) => r.interval === 0 || r.burst >= 1, { path: ['burst'], message: 'must be at least 1 when interval is set (with 0 every request would be refused)' })
    .optional(),
});

export interface WebConfig {
  /** Options for https.createServer, when TLS is configured. */
  tls: TlsOptions | undefined;
  /** user -> bcrypt hash, when basic auth is configured. */
  users: Record<string, string> | undefined;
  /** Set on every response (http_server_config.headers). */
  headers: Record<string, string>;
  /** A token bucket over all requests: `burst` at once, one more each `intervalMs`; undefined when off. */
  rateLimit: { intervalMs: number; burst: number } | undefined;
}

/**
 * client_allowed_sans: the client certificate has one of these subject alternative names, compared
 * exactly (DNS names, e-mail addresses and URIs as written; IP addresses as addresses).
 */
function hasAllowedSan(socket: TLSSocket, allowed: string[]): boolean {
  const cert = socket.getPeerX509Certificate();
  if (!cert) return false;
  // "DNS:a, IP Address:127.0.0.1, URI:..."; a value holding a comma or quote is written as a JSON string.
  const names = [...(cert.subjectAltName ?? '').matchAll(/(?:^|, )(DNS|email|URI):("(?:[^"\\]|\\.)*"|[^,]*)/g)].map((m) => (m[2]!.startsWith('"') ? (JSON.parse(m[2]!) as string) : m[2]!));
  return allowed.some((san) => (isIP(san) ? cert.checkIP(san) !== undefined : names.includes(san)));
}

export async function readWebConfig(path: string, logger: Logger = silentLogger): Promise<WebConfig> {
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
  const fail = (field: string, message: string) => new ConfigError(`${path}: ${field}: ${message}`);
  const tls = c.tls_server_config ? await tlsOptions(c.tls_server_config, dirname(path), fail) : undefined;
  if (c.http_server_config?.http2 === true) logger.warn({ web_config: path }, 'http_server_config.http2 is accepted but not applied: Node serves HTTP/1.1 here');
  const rate = c.rate_limit;
  const headers = Object.fromEntries(Object.entries(c.http_server_config?.headers ?? {}).filter(([, value]) => value !== ''));
  return { tls, users: c.basic_auth_users, headers, rateLimit: rate && rate.interval > 0 ? { intervalMs: rate.interval, burst: rate.burst } : undefined };
}

type TlsServerConfig = NonNullable<z.output<typeof schema>['tls_server_config']>;

/** tls_server_config as options for https.createServer; the certificate and key are checked now, not at the first connection. */
async function tlsOptions(t: TlsServerConfig, dir: string, fail: (field: string, message: string) => ConfigError): Promise<TlsOptions> {
  /** The PEM text of an inline field or of its _file twin (relative to the web config's directory). */
  const pem = async (name: 'cert' | 'key' | 'client_ca') => {
    const file = t[`${name}_file`];
    if (file === undefined) return t[name];
    try {
      return await readFile(resolve(dir, file), 'utf8');
    } catch (err) {
      throw fail(`tls_server_config.${name}_file`, `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  };
  // Both are there: the schema says so.
  const [cert, key, ca] = [(await pem('cert'))!, (await pem('key'))!, await pem('client_ca')];
  const source = (name: 'cert' | 'key') => `tls_server_config.${t[name] === undefined ? `${name}_file` : name}`;
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(cert);
  } catch (err) {
    throw fail(source('cert'), `not a PEM certificate: ${(err as Error).message}`);
  }
  try {
    if (!certificate.checkPrivateKey(createPrivateKey(key))) throw new Error('it does not match the certificate');
  } catch (err) {
    throw fail(source('key'), `not the certificate's private key: ${(err as Error).message}`);
  }
  const sans = t.client_allowed_sans;
  const { acceptClient: modeAccepts, ...auth } = clientAuth[t.client_auth_type];
  // cipher_suites restricts TLS 1.2 and below, as in Go; TLS 1.3's suites all stay on unless some are listed.
  const listed = t.cipher_suites ?? [];
  const tls12 = listed.filter((s) => !tls13Suites.includes(s)).map((s) => cipherSuites[s]!);
  const tls13 = listed.filter((s) => tls13Suites.includes(s));
  const ciphers = listed.length > 0 ? [...tls12, ...(tls13.length > 0 ? tls13 : tls13Suites)].join(':') : undefined;
  return {
    cert,
    key,
    ...(ca === undefined ? {} : { ca }),
    ...auth,
    acceptClient: sans ? (s) => (modeAccepts?.(s) ?? true) && hasAllowedSan(s, sans) : modeAccepts,
    minVersion: tlsVersions[t.min_version],
    maxVersion: tlsVersions[t.max_version],
    honorCipherOrder: t.prefer_server_cipher_suites,
    ...(ciphers ? { ciphers } : {}),
    ...(t.curve_preferences ? { ecdhCurve: t.curve_preferences.map((name) => curves[name]!).join(':') } : {}),
  };
}

/**
 * What the web config asks of every request: its response headers, its rate limit (429 beyond it),
 * then basic auth unless `skip` says otherwise.
 */
export function webGuard(config: WebConfig, options: BasicAuthOptions = {}): RequestHandler {
  const headers = Object.entries(config.headers);
  const allow = config.rateLimit ? tokenBucket(config.rateLimit) : () => true;
  const retryAfter = String(Math.ceil((config.rateLimit?.intervalMs ?? 0) / 1000));
  const auth = config.users ? basicAuth(config.users, options) : undefined;
  return (req, res, next) => {
    for (const [name, value] of headers) res.setHeader(name, value);
    if (!allow()) return void res.status(429).set('retry-after', retryAfter).type('text/plain').send('Too many requests (rate_limit of --web.config.file)\n');
    if (auth) return auth(req, res, next);
    next();
  };
}

/** exporter-toolkit's limiter (Go's rate.Limiter): up to `burst` requests at once, refilled one per interval. */
function tokenBucket({ intervalMs, burst }: { intervalMs: number; burst: number }): () => boolean {
  let tokens = burst;
  let last = performance.now();
  return () => {
    const now = performance.now();
    tokens = Math.min(burst, tokens + (now - last) / intervalMs);
    last = now;
    if (tokens < 1) return false;
    tokens -= 1;
    return true;
  };
}

// bcrypt is slow on purpose, so: one comparison at a time (as exporter-toolkit), at most 16 pending
// (more get 429 at once), and a password that matched is remembered (by its SHA-256) so a scraper's
// requests do not cost a hash each. Wrong ones are not remembered.
const bcryptLimits = { pending: 16, remembered: 1000 };

export interface BasicAuthOptions {
  /** Requests that pass without basic auth (the remediator's webhook, with its own token). */
  skip?: (req: Parameters<RequestHandler>[0]) => boolean;
}

/** Basic auth against bcrypt hashes, on every request unless `skip` says otherwise. */
export function basicAuth(users: Record<string, string>, options: BasicAuthOptions = {}): RequestHandler {
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
