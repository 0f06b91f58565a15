// --web.config.file (the Prometheus exporter-toolkit format) on both components: TLS with a
// certificate and key, basic-auth users with bcrypt hashes; the webhook's own token still works;
// response headers, a rate limit, TLS versions, ciphers, curves and client SANs.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { connect, type ConnectionOptions, type EphemeralKeyInfo } from 'node:tls';
import bcrypt from 'bcryptjs';
import express from 'express';
import { pino } from 'pino';
import { Agent, request } from 'undici';
import { stringify } from 'yaml';
import { Registry } from 'prom-client';
import { ConfigError, parseConfig } from '../../src/cmd/config.ts';
import { startExporter } from '../../src/exporter/server.ts';
import { silentLogger } from '../../src/lib/log.ts';
import { startRemediator } from '../../src/remediator/server.ts';
import { basicAuth, readWebConfig, webGuard, type WebConfig } from '../../src/lib/web-config.ts';
import { createOpsApp, listen } from '../../src/lib/web.ts';
import { payload } from '../helpers/fakes.ts';
import { raw } from '../helpers/raw-http.ts';

const dir = await mkdtemp(join(tmpdir(), 'qs-webconfig-'));
const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups) await c();
  await rm(dir, { recursive: true, force: true });
});

const cert = join(dir, 'tls.crt');
const key = join(dir, 'tls.key');
execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
const trustingOurCa = new Agent({ connect: { ca: execFileSync('cat', [cert]) } });
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

async function webConfig(): Promise<string> {
  const file = join(dir, 'web.yml');
  await writeFile(file, stringify({ tls_server_config: { cert_file: cert, key_file: key }, basic_auth_users: { prometheus: await bcrypt.hash('s3cret', 4) } }));
  return file;
}

test('exporter: HTTPS with the configured certificate, and basic auth on every path', async () => {
  const e = await startExporter({ config: parseConfig({}), listen: { host: '127.0.0.1', port: 0 }, logger: silentLogger, webConfig: await readWebConfig(await webConfig()) });
  cleanups.push(() => e.close());
  assert.match(e.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  const get = (path: string, auth?: string) => request(`${e.url}${path}`, { dispatcher: trustingOurCa, headers: auth ? { authorization: auth } : {} });
  assert.equal((await get('/metrics')).statusCode, 401);
  assert.equal((await get('/metrics', basic('prometheus', 'wrong'))).statusCode, 401);
  assert.equal((await get('/metrics', basic('nobody', 's3cret'))).statusCode, 401);
  const ok = await get('/metrics', basic('prometheus', 's3cret'));
  assert.equal(ok.statusCode, 200);
  assert.match(await ok.body.text(), /qwen_sentinel_build_info/);
  // Plain HTTP to a TLS port gets nowhere.
  await assert.rejects(fetch(e.url.replace('https', 'http') + '/metrics'));
});

test('remediator: basic auth guards the API; Alertmanager\'s bearer token alone still reaches the webhook', async () => {
  const config = parseConfig({
    targets: [{ name: 'qwen3', url: 'http://127.0.0.1:1/v1', remediation: { action: 'command', command: ['/bin/true'] } }],
    remediator: { auth: { bearer_token_env: 'UNUSED' } },
  });
  const token = 'web-config-token-0123456789';
  const r = await startRemediator({ config, token, listen: { host: '127.0.0.1', port: 0 }, logger: silentLogger, webConfig: await readWebConfig(await webConfig()) });
  cleanups.push(() => r.close());
  const call = (method: 'GET' | 'POST', path: string, headers: Record<string, string>, body?: string) => request(`${r.url}${path}`, { method, dispatcher: trustingOurCa, headers, ...(body ? { body } : {}) });
  assert.equal((await call('GET', '/api/v1/targets', {})).statusCode, 401);
  assert.equal((await call('GET', '/api/v1/targets', { authorization: basic('prometheus', 's3cret') })).statusCode, 200);
  const hook = await call('POST', '/webhook', { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, JSON.stringify(payload({ status: 'resolved' })));
  assert.equal(hook.statusCode, 200);
  assert.equal((await call('POST', '/webhook', { 'content-type': 'application/json' }, '{}')).statusCode, 401);
});

test('a bad web config refuses to start, naming the field', async () => {
  const bad = join(dir, 'bad.yml');
  await writeFile(bad, stringify({ basic_auth_users: { alice: 'plaintext' }, tls_server_config: { cert_file: cert } }));
  await assert.rejects(readWebConfig(bad), (err: Error) => err instanceof ConfigError && /basic_auth_users\.alice: expected a bcrypt hash/.test(err.message) && /tls_server_config\.key_file/.test(err.message));
  await writeFile(bad, stringify({ tls_server_config: { cert_file: join(dir, 'missing.crt'), key_file: key } }));
  await assert.rejects(readWebConfig(bad), /tls_server_config\.cert_file: cannot read .*missing\.crt: ENOENT/);
});

// Client certificates: a CA of our own, a client it signed, and a stranger that signed itself.
const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' });
const pki = (name: string) => ({ key: join(dir, `${name}.key`), cert: join(dir, `${name}.crt`) });
const [ca, client, stranger] = [pki('ca'), pki('client'), pki('stranger')];
openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', ca.key, '-out', ca.cert, '-days', '1', '-subj', '/CN=qs test CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign');
openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', client.key, '-out', join(dir, 'client.csr'), '-subj', '/CN=prometheus');
openssl('x509', '-req', '-in', join(dir, 'client.csr'), '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-out', client.cert, '-days', '1');
openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', stranger.key, '-out', stranger.cert, '-days', '1', '-subj', '/CN=prometheus');

/** A server under tls_server_config with this client_auth_type; answers whether each client got a 200. */
async function clientAuthOutcomes(clientAuthType: string) {
  const file = join(dir, `mtls-${clientAuthType}.yml`);
  await writeFile(file, stringify({ tls_server_config: { cert_file: cert, key_file: key, client_ca_file: ca.cert, client_auth_type: clientAuthType } }));
  const server = await listen(express().get('/', (_req, res) => void res.send('ok')), { host: '127.0.0.1', port: 0 }, (await readWebConfig(file)).tls);
  const out: Record<string, boolean> = {};
  try {
    for (const [name, identity] of Object.entries({ none: undefined, signed: client, stranger })) {
      const agent = new Agent({ connect: { ca: await readFile(cert), ...(identity ? { cert: await readFile(identity.cert), key: await readFile(identity.key) } : {}) } });
      out[name] = await request(`${server.url}/`, { dispatcher: agent }).then(
        async (res) => (await res.body.text()) === 'ok' && res.statusCode === 200,
        () => false,
      );
      await agent.close();
    }
  } finally {
    await server.close();
  }
  return out;
}

test('client_auth_type means what it means in exporter-toolkit: which clients get through', async () => {
  assert.deepEqual(await clientAuthOutcomes('RequestClientCert'), { none: true, signed: true, stranger: true });
  // A certificate is required, but not verified.
  assert.deepEqual(await clientAuthOutcomes('RequireAnyClientCert'), { none: false, signed: true, stranger: true });
  // A certificate given must verify against client_ca_file.
  assert.deepEqual(await clientAuthOutcomes('VerifyClientCertIfGiven'), { none: true, signed: true, stranger: false });
  assert.deepEqual(await clientAuthOutcomes('RequireAndVerifyClientCert'), { none: false, signed: true, stranger: false });
});

test('a verifying client_auth_type needs client_ca_file (or it would trust every public CA); a CA without one is refused too', async () => {
  const bad = join(dir, 'mtls-bad.yml');
  for (const mode of ['VerifyClientCertIfGiven', 'RequireAndVerifyClientCert']) {
    await writeFile(bad, stringify({ tls_server_config: { cert_file: cert, key_file: key, client_auth_type: mode } }));
    await assert.rejects(readWebConfig(bad), (err: Error) => err instanceof ConfigError && err.message === `${bad}: tls_server_config.client_ca_file: required when client_auth_type is ${mode}`);
  }
  await writeFile(bad, stringify({ tls_server_config: { cert_file: cert, key_file: key, client_ca_file: ca.cert } }));
  await assert.rejects(readWebConfig(bad), /tls_server_config\.client_ca_file: set without a client_auth_type that asks for a certificate/);
});

/** bcrypt.compare replaced by one that counts its calls and answers only once released. */
function holdBcrypt() {
  const real = bcrypt.compare;
  const held: Array<() => void> = [];
  const calls: string[] = [];
  let released = false;
  bcrypt.compare = ((password: string, hash: string) => {
    calls.push(hash);
    const answer = () => real(password, hash);
    return released ? answer() : new Promise<boolean>((resolve) => held.push(() => resolve(answer())));
  }) as typeof bcrypt.compare;
  return {
    calls,
    /** Answers the comparisons asked for so far, and later ones at once. */
    release() {
      released = true;
      for (const answer of held.splice(0)) answer();
    },
    restore() {
      bcrypt.compare = real;
    },
  };
}

/** Waits for a condition, for 20 s at most (a failure must not leave the run polling). */
const until = async (done: () => boolean) => {
  const deadline = Date.now() + 20_000;
  while (!done()) {
    if (Date.now() > deadline) throw new Error('gave up waiting after 20 s');
    await new Promise((r) => setTimeout(r, 10));
  }
};

async function basicAuthServer() {
  const users = { prometheus: await bcrypt.hash('s3cret', 4) };
  const app = express().use(basicAuth(users)).get('/', (_req, res) => void res.send('ok'));
  const server = await listen(app, { host: '127.0.0.1', port: 0 });
  cleanups.push(() => server.close());
  return { users, server };
}

test('basic auth: an unknown user costs a bcrypt comparison too (no user names by timing); a match is remembered', { timeout: 30_000 }, async () => {
  const { users, server } = await basicAuthServer();
  const bcryptCalls = holdBcrypt();
  try {
    const get = (auth: string) => request(`${server.url}/`, { headers: { authorization: auth } }).then((res) => (res.body.dump(), res.statusCode));
    const unknown = get(basic('nobody', 's3cret'));
    await until(() => bcryptCalls.calls.length > 0);
    bcryptCalls.release();
    assert.equal(await unknown, 401);
    assert.deepEqual(bcryptCalls.calls, [users.prometheus], 'compared against a configured hash');
    // One comparison for the right password; then it is remembered and costs none.
    assert.equal(await get(basic('prometheus', 's3cret')), 200);
    assert.deepEqual(await Promise.all([get(basic('prometheus', 's3cret')), get(basic('prometheus', 's3cret'))]), [200, 200]);
    assert.equal(bcryptCalls.calls.length, 2);
  } finally {
    bcryptCalls.restore();
  }
});

test('basic auth: one bcrypt comparison at a time, at most 16 pending; more get 429 at once', { timeout: 30_000 }, async () => {
  const { server } = await basicAuthServer();
  const held = holdBcrypt();
  try {
    const statuses: number[] = [];
    const sent = Array.from({ length: 40 }, (_, i) => request(`${server.url}/`, { headers: { authorization: basic('prometheus', `wrong-${i}`) } }).then((res) => (res.body.dump(), statuses.push(res.statusCode), res.statusCode)));
    // Nothing is compared until released, so the 24 beyond the 16 pending can only be refused.
    await until(() => statuses.length >= 24);
    assert.deepEqual(statuses, Array<number>(24).fill(429));
    assert.equal(held.calls.length, 1, 'one comparison at a time');
    held.release();
    const all = await Promise.all(sent);
    assert.equal(all.filter((s) => s === 401).length, 16);
    assert.equal(held.calls.length, 16);
  } finally {
    held.restore();
  }
});

test('a request refused by basic auth (or answered 404) while its body is still coming ends the connection', async () => {
  const users = { prometheus: await bcrypt.hash('s3cret', 4) };
  const app = createOpsApp({ registry: new Registry(), isReady: () => true, home: () => '', guard: basicAuth(users) });
  const server = await listen(app, { host: '127.0.0.1', port: 0 });
  cleanups.push(() => server.close());
  const refused = await raw(server.url, 'POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n{');
  assert.match(refused.answer, /^HTTP\/1\.1 401 /);
  assert.match(refused.answer, /connection: close/i);
  assert.ok(refused.closed, 'closed, not left reading a gigabyte');
  const notFound = await raw(server.url, `POST /nowhere HTTP/1.1\r\nHost: x\r\nAuthorization: ${basic('prometheus', 's3cret')}\r\nContent-Length: 1000000000\r\n\r\n{`);
  assert.match(notFound.answer, /^HTTP\/1\.1 404 /);
  assert.ok(notFound.closed);
});

// The rest of the exporter-toolkit format: node_exporter's shared web config carries
// http_server_config, and TLS versions, cipher suites and curves come in Go's names.

/** A server under this web config: every request passes its guard (headers, rate limit, basic auth). */
async function guarded(config: WebConfig) {
  const app = createOpsApp({ registry: new Registry(), isReady: () => true, home: () => '', guard: webGuard(config) });
  const server = await listen(app, { host: '127.0.0.1', port: 0 }, config.tls);
  cleanups.push(() => server.close());
  return server;
}
async function writeWebConfig(name: string, data: unknown): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, stringify(data));
  return file;
}
/** The lines a logger wrote, parsed. */
function capturingLogger() {
  const lines: Array<{ level: number; msg: string }> = [];
  return { lines, logger: pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) }) };
}

test('http_server_config (as node_exporter\'s shared web config has it): its headers on every answer, 200, 401 and 404 alike', async () => {
  const headers = { 'X-Frame-Options': 'deny', 'X-Content-Type-Options': 'nosniff', 'Content-Security-Policy': "default-src 'self'", 'Strict-Transport-Security': 'max-age=31536000', 'X-XSS-Protection': '' };
  const config = await readWebConfig(await writeWebConfig('headers.yml', { http_server_config: { http2: false, headers }, basic_auth_users: { prometheus: await bcrypt.hash('s3cret', 4) } }));
  const server = await guarded(config);
  for (const [path, auth, status] of [['/metrics', basic('prometheus', 's3cret'), 200], ['/metrics', undefined, 401], ['/nowhere', basic('prometheus', 's3cret'), 404]] as const) {
    const res = await request(`${server.url}${path}`, { headers: auth ? { authorization: auth } : {} });
    await res.body.dump();
    assert.equal(res.statusCode, status, path);
    assert.deepEqual([res.headers['x-frame-options'], res.headers['x-content-type-options'], res.headers['content-security-policy'], res.headers['strict-transport-security']], ['deny', 'nosniff', "default-src 'self'", 'max-age=31536000'], `${status}`);
    assert.equal(res.headers['x-xss-protection'], undefined, 'blank means unset');
  }
});

test('http_server_config refuses what exporter-toolkit refuses, naming the field', async () => {
  await assert.rejects(readWebConfig(await writeWebConfig('bad-frame.yml', { http_server_config: { headers: { 'X-Frame-Options': 'allow' } } })), /http_server_config\.headers\.X-Frame-Options: /);
  await assert.rejects(readWebConfig(await writeWebConfig('bad-header.yml', { http_server_config: { headers: { 'X-Powered-By': 'me' } } })), /http_server_config\.headers: unknown field X-Powered-By/);
  await assert.rejects(readWebConfig(await writeWebConfig('bad-http.yml', { http_server_config: { http3: true } })), /http_server_config: unknown field http3/);
});

test('http2: true is accepted, and a warning naming the field says Node serves HTTP/1.1 here', async () => {
  const on = capturingLogger();
  const config = await readWebConfig(await writeWebConfig('http2.yml', { http_server_config: { http2: true } }), on.logger);
  assert.deepEqual(config.headers, {});
  assert.deepEqual(on.lines.map((l) => [l.level, l.msg]), [[40, 'http_server_config.http2 is accepted but not applied: Node serves HTTP/1.1 here']]);
  const off = capturingLogger();
  await readWebConfig(await writeWebConfig('http2-off.yml', { http_server_config: { http2: false } }), off.logger);
  assert.deepEqual(off.lines, []);
});

test('rate_limit: burst requests at once, then 429 until the interval refills one; interval 0 turns it off', async () => {
  const server = await guarded(await readWebConfig(await writeWebConfig('rate.yml', { rate_limit: { interval: '1h', burst: 2 } })));
  const statuses = [];
  for (let i = 0; i < 3; i++) {
    const res = await request(`${server.url}/-/healthy`);
    await res.body.dump();
    statuses.push([res.statusCode, res.headers['retry-after']]);
  }
  assert.deepEqual(statuses, [[200, undefined], [200, undefined], [429, '3600']]);
  assert.equal((await readWebConfig(await writeWebConfig('rate-off.yml', { rate_limit: { interval: 0, burst: 5 } }))).rateLimit, undefined);
  await assert.rejects(readWebConfig(await writeWebConfig('rate-zero.yml', { rate_limit: { interval: '1s', burst: 0 } })), /rate_limit\.burst: must be at least 1 when interval is set/);
  await assert.rejects(readWebConfig(await writeWebConfig('rate-bad.yml', { rate_limit: { interval: 'soon', burst: 1 } })), /rate_limit\.interval: not a duration: "soon"/);
});

test('tls_server_config: inline cert and key; files relative to the web config\'s directory; a key not the certificate\'s is refused', async () => {
  const [certPem, keyPem] = [await readFile(cert, 'utf8'), await readFile(key, 'utf8')];
  const inline = await guarded(await readWebConfig(await writeWebConfig('inline.yml', { tls_server_config: { cert: certPem, key: keyPem } })));
  assert.equal((await request(`${inline.url}/-/healthy`, { dispatcher: trustingOurCa })).statusCode, 200);
  await mkdir(join(dir, 'sub'), { recursive: true });
  const relative = await guarded(await readWebConfig(await writeWebConfig('sub/relative.yml', { tls_server_config: { cert_file: '../tls.crt', key_file: '../tls.key' } })));
  assert.equal((await request(`${relative.url}/-/healthy`, { dispatcher: trustingOurCa })).statusCode, 200);
  await assert.rejects(readWebConfig(await writeWebConfig('both.yml', { tls_server_config: { cert: certPem, cert_file: cert, key_file: key } })), /tls_server_config\.cert: set either cert or cert_file, not both/);
  await assert.rejects(readWebConfig(await writeWebConfig('wrong-key.yml', { tls_server_config: { cert_file: cert, key_file: stranger.key } })), /tls_server_config\.key_file: not the certificate's private key/);
  await assert.rejects(readWebConfig(await writeWebConfig('not-pem.yml', { tls_server_config: { cert: 'hello', key_file: key } })), /tls_server_config\.cert: not a PEM certificate/);
});

/** One TLS handshake with the server: what was agreed, or 'refused'. */
async function handshake(server: { url: string }, options: ConnectionOptions = {}) {
  return new Promise<{ protocol: string | null; cipher: string | undefined; curve: string | undefined } | 'refused'>((resolve) => {
    const socket = connect({ host: '127.0.0.1', port: Number(new URL(server.url).port), ca: execFileSync('cat', [cert]), ...options }, () => {
      resolve({ protocol: socket.getProtocol(), cipher: socket.getCipher().standardName, curve: (socket.getEphemeralKeyInfo() as EphemeralKeyInfo | null)?.name });
      socket.end();
    });
    socket.once('error', () => resolve('refused'));
  });
}

test('max_version, cipher_suites (Go\'s names), prefer_server_cipher_suites and curve_preferences apply to the handshake', async () => {
  const tls12 = await guarded(await readWebConfig(await writeWebConfig('tls12.yml', { tls_server_config: { cert_file: cert, key_file: key, max_version: 'TLS12', cipher_suites: ['TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384'], curve_preferences: ['CurveP384'] } })));
  assert.deepEqual(await handshake(tls12), { protocol: 'TLSv1.2', cipher: 'TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384', curve: 'secp384r1' });
  assert.equal(await handshake(tls12, { minVersion: 'TLSv1.3' }), 'refused');
  assert.equal(await handshake(tls12, { ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' }), 'refused');
  assert.equal(await handshake(tls12, { ecdhCurve: 'P-256' }), 'refused');
  // As in Go, cipher_suites restricts TLS 1.2 and below: TLS 1.3 keeps its own suites.
  const both = await guarded(await readWebConfig(await writeWebConfig('tls13.yml', { tls_server_config: { cert_file: cert, key_file: key, cipher_suites: ['TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384'] } })));
  assert.equal((await handshake(both) as { protocol: string }).protocol, 'TLSv1.3');
  assert.equal((await handshake(both, { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' })), 'refused');
  // prefer_server_cipher_suites (default true): the server's order wins over the client's.
  const order = ['TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384', 'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256'];
  const clientPrefers128 = { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384' } as const;
  for (const [prefer, agreed] of [[true, order[0]], [false, order[1]]] as const) {
    const server = await guarded(await readWebConfig(await writeWebConfig(`prefer-${prefer}.yml`, { tls_server_config: { cert_file: cert, key_file: key, cipher_suites: order, prefer_server_cipher_suites: prefer } })));
    assert.equal((await handshake(server, clientPrefers128) as { cipher: string }).cipher, agreed, `prefer_server_cipher_suites: ${prefer}`);
  }
});

test('unknown cipher suites, curves and versions are refused, naming the field', async () => {
  const tlsConfig = (extra: Record<string, unknown>) => ({ tls_server_config: { cert_file: cert, key_file: key, ...extra } });
  await assert.rejects(readWebConfig(await writeWebConfig('bad-cipher.yml', tlsConfig({ cipher_suites: ['TLS_RSA_WITH_RC4_128_SHA'] }))), /tls_server_config\.cipher_suites\.0: unknown cipher suite "TLS_RSA_WITH_RC4_128_SHA" \(known: TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, /);
  await assert.rejects(readWebConfig(await writeWebConfig('bad-curve.yml', tlsConfig({ curve_preferences: ['CurveP224'] }))), /tls_server_config\.curve_preferences\.0: unknown curve "CurveP224"/);
  await assert.rejects(readWebConfig(await writeWebConfig('bad-version.yml', tlsConfig({ min_version: 'TLS13', max_version: 'TLS12' }))), /tls_server_config\.max_version: TLS12 is below min_version TLS13/);
  await assert.rejects(readWebConfig(await writeWebConfig('bad-version2.yml', tlsConfig({ max_version: 'TLS14' }))), /tls_server_config\.max_version: /);
});

test('client_allowed_sans: only a client certificate with one of those names gets through; it needs a mode that requires a certificate', async () => {
  const named = pki('named');
  openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', named.key, '-out', join(dir, 'named.csr'), '-subj', '/CN=scraper', '-addext', 'subjectAltName=DNS:prometheus.example,IP:10.0.0.7');
  openssl('x509', '-req', '-in', join(dir, 'named.csr'), '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-out', named.cert, '-days', '1', '-copy_extensions', 'copy');
  const outcomes = async (allowed: string[]) => {
    const server = await guarded(await readWebConfig(await writeWebConfig('sans.yml', { tls_server_config: { cert_file: cert, key_file: key, client_ca_file: ca.cert, client_auth_type: 'RequireAndVerifyClientCert', client_allowed_sans: allowed } })));
    const out: Record<string, boolean> = {};
    for (const [name, identity] of Object.entries({ named, unnamed: client })) {
      const agent = new Agent({ connect: { ca: await readFile(cert), cert: await readFile(identity.cert), key: await readFile(identity.key) } });
      out[name] = await request(`${server.url}/-/healthy`, { dispatcher: agent }).then((res) => (res.body.dump(), res.statusCode === 200), () => false);
      await agent.close();
    }
    return out;
  };
  assert.deepEqual(await outcomes(['prometheus.example']), { named: true, unnamed: false });
  assert.deepEqual(await outcomes(['10.0.0.7']), { named: true, unnamed: false });
  assert.deepEqual(await outcomes(['other.example']), { named: false, unnamed: false });
  await assert.rejects(readWebConfig(await writeWebConfig('sans-bad.yml', { tls_server_config: { cert_file: cert, key_file: key, client_ca_file: ca.cert, client_auth_type: 'VerifyClientCertIfGiven', client_allowed_sans: ['x'] } })), /tls_server_config\.client_allowed_sans: needs client_auth_type RequireAnyClientCert or RequireAndVerifyClientCert/);
});

test('the exporter and the remediator apply the whole web config on every answer: headers, then the rate limit, then auth', async () => {
  const file = join(dir, 'web-headers.yml');
  await writeFile(file, stringify({ http_server_config: { headers: { 'X-Frame-Options': 'deny' } }, rate_limit: { interval: '1h', burst: 1 } }));
  const e = await startExporter({ config: parseConfig({}), listen: { host: '127.0.0.1', port: 0 }, logger: silentLogger, webConfig: await readWebConfig(file, silentLogger) });
  cleanups.push(() => e.close());
  const first = await fetch(`${e.url}/metrics`);
  assert.equal(first.status, 200);
  assert.equal(first.headers.get('x-frame-options'), 'deny');
  assert.equal((await fetch(`${e.url}/metrics`)).status, 429);
  const config = parseConfig({ targets: [{ name: 'qwen3', url: 'http://127.0.0.1:1/v1', remediation: { action: 'command', command: ['/bin/true'] } }], remediator: { auth: { bearer_token_env: 'UNUSED' } } });
  const r = await startRemediator({ config, token: 'web-config-token-0123456789', listen: { host: '127.0.0.1', port: 0 }, logger: silentLogger, webConfig: await readWebConfig(file, silentLogger) });
  cleanups.push(() => r.close());
  const answer = await fetch(`${r.url}/api/v1/targets`);
  assert.equal(answer.status, 200);
  assert.equal(answer.headers.get('x-frame-options'), 'deny');
  assert.equal((await fetch(`${r.url}/api/v1/targets`)).status, 429);
});
