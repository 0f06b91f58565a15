// The remediator broken on purpose, as an operator (or an attacker) would: a seeded fuzz of hostile
// webhook requests, an announced huge body, concurrent duplicates, and a token file that is not a
// file. Nothing may crash, answer 5xx, or run an action.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Agent, request as httpRequest } from 'node:http';
import { ConfigError, parseConfig } from '../../src/cmd/config.ts';
import { silentLogger } from '../../src/lib/log.ts';
import { startRemediator, type RunningRemediator } from '../../src/remediator/server.ts';
import { loadToken } from '../../src/remediator/token.ts';
import { payload } from '../helpers/fakes.ts';
import { raw } from '../helpers/raw-http.ts';

const dir = await mkdtemp(join(tmpdir(), 'qs-hostile-'));
const token = 'hostile-test-token-0123456789';
const marker = join(dir, 'restarted');
const running: RunningRemediator[] = [];
after(async () => {
  for (const r of running) await r.close();
  await rm(dir, { recursive: true, force: true });
});

/** A remediator whose only action appends a line to a file: any line is an action that ran. */
async function remediator(o: { confirm?: boolean } = {}) {
  const config = parseConfig({
    targets: [{ name: 'qwen3', url: 'http://127.0.0.1:1/v1', remediation: { action: 'command', command: ['/bin/sh', '-c', `echo restarted >> ${marker}`], startup_timeout: '1s', confirm: o.confirm ?? true } }],
    remediator: { auth: { bearer_token_env: 'UNUSED' }, max_body_bytes: 65536 },
  });
  const r = await startRemediator({ config, token, listen: { host: '127.0.0.1', port: 0 }, logger: silentLogger });
  running.push(r);
  return r;
}
const actionsRun = () => (existsSync(marker) ? readFileSync(marker, 'utf8').trim().split('\n').length : 0);

/** mulberry32: a small seeded generator, so a failing case can be replayed. */
function rng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('a seeded fuzz of 10,000 hostile webhook requests: no crash, no 5xx, no action', { timeout: 180_000 }, async () => {
  const r = await remediator();
  const random = rng(20261130);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(random() * xs.length)]!;
  const junk = (n: number) => Array.from({ length: n }, () => String.fromCharCode(Math.floor(random() * 0x2fff))).join('');
  const old = new Date(Date.now() - 3 * 24 * 3600_000).toISOString();
  // Every request is broken in at least one way that must stop it before any action.
  const authHeaders = [undefined, 'Bearer wrong', `Bearer ${token}x`, `Basic ${Buffer.from(`a:${token}`).toString('base64')}`, 'Bearer', `bearer  ${token}`, junk(40)];
  const alerts = [
    () => payload({ labels: { remediate: 'no' } }),
    () => payload({ labels: { target: junk(20) } }),
    () => payload({ labels: { alertname: `${junk(10)}\u0000${junk(10)}` } }),
    () => payload({ labels: { alertname: 'x'.repeat(300) } }),
    () => payload({ startsAt: old }),
    () => payload({ startsAt: junk(12) }),
    () => payload({ status: 'resolved' }),
    () => payload({ endsAt: old }),
  ];
  const bodies = [
    () => JSON.stringify({ ...payload({}), version: pick(['3', 4, null, '']) }),
    () => JSON.stringify({ ...payload({}), alerts: pick(['x', 1, null, [1, 2], [{}], { a: 1 }]) }),
    () => JSON.stringify({ ...payload({}), alerts: [{ ...payload({}).alerts[0], labels: pick([null, 'x', [1], { target: 1 }]) }] }),
    () => '['.repeat(Math.floor(random() * 5000)),
    () => junk(Math.floor(random() * 2000)),
    () => JSON.stringify(payload({})).slice(0, Math.floor(random() * 400)),
    () => '{"__proto__": {"polluted": true}, "alerts": []}',
    () => JSON.stringify(alerts[Math.floor(random() * alerts.length)]!()),
    () => 'x'.repeat(70_000),
  ];
  const agent = new Agent({ keepAlive: true, maxSockets: 8 });
  const { port } = new URL(r.url);
  /** One request; a status, or 0 when the connection was closed (the 413 path does that on purpose). */
  const send = (method: string, path: string, headers: Record<string, string>, body: string) =>
    new Promise<number>((resolve) => {
      try {
        const req = httpRequest({ host: '127.0.0.1', port, method, path, headers, agent, timeout: 10_000 }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
          res.on('error', () => resolve(0));
        });
        req.on('error', () => resolve(0));
        req.on('timeout', () => (req.destroy(), resolve(-1)));
        req.end(body);
      } catch {
        resolve(0); // a header Node itself refuses to send
      }
    });
  const statuses = new Map<number, number>();
  const total = Number(process.env.FUZZ_TOTAL ?? 10_000);
  let next = 0;
  const worker = async () => {
    while (next < total) {
      next += 1;
      const validAuth = random() < 0.5;
      const body = pick(bodies)();
      const headers: Record<string, string> = { 'content-type': pick(['application/json', 'application/json', 'text/plain', 'application/json; charset=utf-8', junk(8)]) };
      const auth = validAuth ? `Bearer ${token}` : pick(authHeaders);
      if (auth !== undefined) headers.authorization = auth;
      // With a valid token the body must be broken; with a broken token anything goes.
      const sent = validAuth ? body : random() < 0.5 ? JSON.stringify(payload({})) : body;
      const status = await send(pick(['POST', 'POST', 'POST', 'PUT', 'GET']), pick(['/webhook', '/webhook', '/webhook?x=1', '/webhook/', '/api/v1/targets/qwen3/circuit/close']), headers, sent);
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  agent.destroy();
  await r.remediator.idle();
  const fiveHundreds = [...statuses].filter(([code]) => code >= 500).reduce((n, [, c]) => n + c, 0);
  assert.equal(fiveHundreds, 0, JSON.stringify(Object.fromEntries(statuses)));
  assert.equal(statuses.get(-1) ?? 0, 0, `requests the remediator never answered: ${JSON.stringify(Object.fromEntries(statuses))}`);
  assert.ok((statuses.get(401) ?? 0) > 1000 && (statuses.get(400) ?? 0) + (statuses.get(422) ?? 0) > 1000, JSON.stringify(Object.fromEntries(statuses)));
  assert.equal(actionsRun(), 0, 'no hostile request ran an action');
  assert.equal(r.remediator.snapshot()[0]!.restarts, 0);
  assert.equal((await fetch(`${r.url}/-/healthy`)).status, 200, 'still serving');
  // And a genuine alert after all that still works.
  const res = await fetch(`${r.url}/webhook`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify(payload({})) });
  assert.equal(res.status, 200);
  await r.remediator.idle();
  assert.equal(actionsRun(), 1);
});

test('a body announced over the limit gets 413 at once, before a byte of it is sent, and the connection closes', async () => {
  const r = await remediator();
  const { answer, closed } = await raw(r.url, `POST /webhook HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n{`);
  assert.match(answer, /^HTTP\/1\.1 413 /);
  assert.match(answer, /connection: close/i);
  assert.ok(closed);
});

test('an unauthenticated request announcing a 1 GB body gets 401 and the connection closes at once', async () => {
  const r = await remediator();
  const { answer, closed } = await raw(r.url, 'POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n{"alerts": [');
  assert.match(answer, /^HTTP\/1\.1 401 /);
  assert.match(answer, /connection: close/i);
  assert.ok(closed, 'the server let go of the socket instead of reading the body');
});

test('a chunked body (no length announced) gets 413 as soon as it passes max_body_bytes, and the connection closes', async () => {
  const r = await remediator();
  // 70,000 bytes in one chunk against a 65,536-byte limit, and the body never ends.
  const chunk = `{"pad": "${'x'.repeat(70_000 - 11)}"}`;
  const { answer, closed } = await raw(r.url, `POST /webhook HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n${chunk.length.toString(16)}\r\n${chunk}\r\n`);
  assert.match(answer, /^HTTP\/1\.1 413 /);
  assert.match(answer, /connection: close/i);
  assert.ok(closed);
  const metrics = await (await fetch(`${r.url}/metrics`)).text();
  assert.match(metrics, /^llm_remediation_webhook_requests_total\{code="413"\} 1$/m);
});

test('50 concurrent copies of one alert over HTTP: exactly one restart', async () => {
  await rm(marker, { force: true });
  const r = await remediator();
  const alert = JSON.stringify(payload({}));
  const responses = await Promise.all(Array.from({ length: 50 }, () => fetch(`${r.url}/webhook`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: alert })));
  assert.ok(responses.every((res) => res.status === 200));
  await r.remediator.idle();
  assert.equal(actionsRun(), 1);
  const metrics = await (await fetch(`${r.url}/metrics`)).text();
  assert.match(metrics, /^llm_remediation_alerts_total\{decision="duplicate",source="webhook"\} 49$/m);
});

test('a token file must be a regular file under a size limit: a FIFO or /dev/zero is refused at once', async () => {
  const fifo = join(dir, 'token.fifo');
  execFileSync('mkfifo', [fifo]);
  for (const [file, message] of [[fifo, /is not a regular file/], ['/dev/zero', /is not a regular file/]] as const) {
    const config = parseConfig({ targets: [], remediator: { auth: { bearer_token_file: file } } });
    await assert.rejects(loadToken(config), (err: Error) => err instanceof ConfigError && message.test(err.message));
  }
});
