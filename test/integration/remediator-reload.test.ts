import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { stringify } from 'yaml';
import { readConfigFile } from '../../src/cmd/config.ts';
import { silentLogger } from '../../src/lib/log.ts';
import { startRemediator } from '../../src/remediator/server.ts';
import { loadToken } from '../../src/remediator/token.ts';
import { payload } from '../helpers/fakes.ts';
import { isAlive } from '../helpers/stack-child.ts';

const dir = await mkdtemp(join(tmpdir(), 'qs-remediator-reload-'));
after(() => rm(dir, { recursive: true, force: true }));

const file = join(dir, 'sentinel.yml');
const tokenFile = join(dir, 'token');
const server = [process.execPath, '-e', 'setInterval(() => {}, 1000)'];
const config = (opts: { serverCommand?: string[]; restartCommand?: string[]; bodyLimit?: number } = {}) =>
  stringify({
    targets: [
      { name: 'owned', url: 'http://127.0.0.1:1/v1', remediation: { action: 'process', command: opts.serverCommand ?? server, grace_period: '1s' } },
      { name: 'external', url: 'http://127.0.0.1:2/v1', remediation: { action: 'command', command: opts.restartCommand ?? [process.execPath, '-e', 'process.exit(0)'] } },
    ],
    remediator: { auth: { bearer_token_file: tokenFile }, max_body_bytes: opts.bodyLimit ?? 4096 },
  });

test('/-/reload applies auth and command-target changes, refuses to touch an owned server, and keeps the old config on error', { timeout: 30_000 }, async () => {
  await writeFile(tokenFile, 'first-token-0123456789');
  await writeFile(file, config());
  const { config: initial, text } = await readConfigFile(file);
  const running = await startRemediator({ config: initial, token: await loadToken(initial), listen: { host: '127.0.0.1', port: 0 }, logger: silentLogger, stdio: 'ignore', configFile: { path: file, text, read: readConfigFile }, enableLifecycle: true });
  const reload = async () => {
    const res = await fetch(`${running.url}/-/reload`, { method: 'POST' });
    return [res.status, await res.text()] as const;
  };
  const send = async (token: string) => (await fetch(`${running.url}/webhook`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify(payload({ labels: { target: 'external' } })) })).status;
  const ownedPid = () => running.remediator.snapshot().find((t) => t.name === 'owned')!.pid!;
  const pid = ownedPid();
  try {
    assert.deepEqual(await reload(), [200, 'config unchanged\n']);

    // Changing the owned server's command is refused; nothing changes, the token included.
    await writeFile(tokenFile, 'second-token-0123456789');
    await writeFile(file, config({ serverCommand: [process.execPath, '-e', 'setInterval(() => {}, 2000)'] }));
    const [status, body] = await reload();
    assert.equal(status, 500);
    assert.match(body, /targets: owned: a target whose server the remediator owns \(action process\) cannot be added, changed or removed by a reload/);
    assert.equal(await send('second-token-0123456789'), 401);
    assert.equal(ownedPid(), pid);
    assert.match(await (await fetch(`${running.url}/metrics`)).text(), /^qwen_sentinel_config_last_reload_successful 0$/m);

    // A rotated token and a changed command target are applied; the owned server runs on.
    await writeFile(file, config({ restartCommand: [process.execPath, '-e', 'process.exit(0)', '--'] }));
    assert.deepEqual(await reload(), [200, 'config reloaded\n']);
    assert.equal(await send('first-token-0123456789'), 401);
    assert.equal(await send('second-token-0123456789'), 200);
    assert.equal(ownedPid(), pid);
    assert.ok(isAlive(pid));

    // Rotating the token file alone is a change too.
    await writeFile(tokenFile, 'third-token-0123456789');
    assert.deepEqual(await reload(), [200, 'config reloaded\n']);
    assert.equal(await send('second-token-0123456789'), 401);
    assert.equal(await send('third-token-0123456789'), 200);

    // A reload that leaves nothing to remediate is refused, as start-up would be.
    await writeFile(file, stringify({ targets: [{ url: 'http://127.0.0.1:1/v1' }], remediator: { auth: { bearer_token_file: tokenFile } } }));
    const [emptyStatus, emptyBody] = await reload();
    assert.equal(emptyStatus, 500);
    assert.match(emptyBody, /targets: no target has a remediation section/);

    // An invalid file is rejected with the field named.
    await writeFile(file, config().replace('max_body_bytes: 4096', 'max_body_bytes: lots'));
    const [badStatus, badBody] = await reload();
    assert.equal(badStatus, 500);
    assert.match(badBody, /remediator\.max_body_bytes: Invalid input: expected number, received string/);
  } finally {
    await running.close();
  }
  assert.equal(isAlive(pid), false);
});

test('a reload that changes remediator.alertmanager reads the new Alertmanager, and no longer the old one', { timeout: 30_000 }, async () => {
  const { createServer } = await import('node:http');
  const fakeAlertmanager = async () => {
    let reads = 0;
    const s = createServer((_req, res) => {
      reads += 1;
      res.setHeader('content-type', 'application/json').end('[]');
    });
    await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
    const { port } = s.address() as { port: number };
    return { url: `http://127.0.0.1:${port}`, reads: () => reads, close: () => new Promise((r) => s.close(r)) };
  };
  const [a, b] = [await fakeAlertmanager(), await fakeAlertmanager()];
  const withAlertmanager = (url: string) => stringify({
    targets: [{ name: 'external', url: 'http://127.0.0.1:2/v1', remediation: { action: 'command', command: [process.execPath, '-e', 'process.exit(0)'] } }],
    remediator: { auth: { bearer_token_file: tokenFile }, alertmanager: { url, interval: '100ms' } },
  });
  await writeFile(tokenFile, 'first-token-0123456789');
  const amFile = join(dir, 'with-alertmanager.yml');
  await writeFile(amFile, withAlertmanager(a.url));
  const { config: initial, text } = await readConfigFile(amFile);
  const running = await startRemediator({ config: initial, token: await loadToken(initial), listen: { host: '127.0.0.1', port: 0 }, logger: silentLogger, stdio: 'ignore', configFile: { path: amFile, text, read: readConfigFile }, enableLifecycle: true });
  const until = async (what: string, ok: () => boolean) => {
    for (let i = 0; i < 200 && !ok(); i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(ok(), what);
  };
  try {
    await until('the first Alertmanager is read', () => a.reads() > 0);
    await writeFile(amFile, withAlertmanager(b.url));
    assert.equal((await fetch(`${running.url}/-/reload`, { method: 'POST' })).status, 200);
    const readsOfA = a.reads();
    await until('the second Alertmanager is read', () => b.reads() > 1);
    assert.equal(a.reads(), readsOfA, 'the old one is no longer read');
  } finally {
    await running.close();
    await a.close();
    await b.close();
  }
});
