// --web.config.file (the Prometheus exporter-toolkit format) on both components: TLS with a
// certificate and key, basic-auth users with bcrypt hashes; the webhook's own token still works.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import bcrypt from 'bcryptjs';
import { Agent, request } from 'undici';
import { stringify } from 'yaml';
import { ConfigError, parseConfig } from '../../src/config/load.ts';
import { startExporter } from '../../src/exporter/server.ts';
import { silentLogger } from '../../src/log.ts';
import { startRemediator } from '../../src/remediator/server.ts';
import { readWebConfig } from '../../src/web-config.ts';
import { payload } from '../helpers/fakes.ts';

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
