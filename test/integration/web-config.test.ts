// --web.config.file (the Prometheus exporter-toolkit format) on both components: TLS with a
// certificate and key, basic-auth users with bcrypt hashes; the webhook's own token still works.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import bcrypt from 'bcryptjs';
import express from 'express';
import { Agent, request } from 'undici';
import { stringify } from 'yaml';
import { Registry } from 'prom-client';
import { ConfigError, parseConfig } from '../../src/config/load.ts';
import { startExporter } from '../../src/exporter/server.ts';
import { silentLogger } from '../../src/log.ts';
import { startRemediator } from '../../src/remediator/server.ts';
import { basicAuth, readWebConfig } from '../../src/web-config.ts';
import { createOpsApp, listen } from '../../src/web.ts';
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
