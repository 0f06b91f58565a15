// The state directory (--storage.path) when it cannot be used: read-only or full at start-up, the
// remediator says so in one line naming it and exits 1; held by another remediator, nothing in it
// (the action history included) is touched.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { parseConfig } from '../../src/cmd/config.ts';
import { silentLogger } from '../../src/lib/log.ts';
import { bootId, startTicks } from '../../src/remediator/actions/proc.ts';
import { startRemediator } from '../../src/remediator/server.ts';

const cli = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));
const dir = await mkdtemp(join(tmpdir(), 'qs-storage-'));
// Readable by the unprivileged user the read-only case runs as.
await chmod(dir, 0o755);
const token = 'storage-token-0123456789';
const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
  await rm(dir, { recursive: true, force: true });
});

const tokenFile = join(dir, 'token');
await writeFile(tokenFile, token, { mode: 0o644 });
const configFile = join(dir, 'sentinel.yml');
await writeFile(configFile, stringify({ targets: [{ name: 'qwen3', url: 'http://127.0.0.1:1/v1', remediation: { action: 'command', command: ['/bin/true'] } }], remediator: { auth: { bearer_token_file: tokenFile } } }), { mode: 0o644 });

/** Runs `qwen-sentinel remediator` on a storage path until it exits (or 20 s): its code and stderr. */
function run(storage: string, as?: { uid: number; gid: number }) {
  return new Promise<{ code: number | null | string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [cli, 'remediator', `--config.file=${configFile}`, `--storage.path=${storage}`, '--web.listen-address=127.0.0.1:0', '--log.level=error'], { stdio: ['ignore', 'ignore', 'pipe'], cwd: '/', ...as });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d));
    const timer = setTimeout(() => (child.kill('SIGKILL'), resolve({ code: 'still running', stderr })), 20_000);
    child.once('close', (code) => (clearTimeout(timer), resolve({ code, stderr })));
  });
}

const isRoot = process.getuid?.() === 0;

test('a read-only state directory at start-up: one line naming it, exit 1, no stack trace', { timeout: 30_000 }, async () => {
  const storage = join(dir, 'read-only');
  await mkdir(storage, { mode: 0o755 });
  // Root writes anywhere: it runs as nobody, for whom the directory is read-only.
  if (!isRoot) await chmod(storage, 0o555);
  const { code, stderr } = await run(storage, isRoot ? { uid: 65534, gid: 65534 } : undefined);
  assert.equal(code, 1, stderr);
  assert.ok(stderr.includes(`--storage.path ${storage}`), stderr);
  assert.match(stderr, /EACCES|permission denied|read-only/i);
  assert.doesNotMatch(stderr, /\n\s+at /, 'no stack trace');
  assert.equal(stderr.trim().split('\n').length, 1, stderr);
});

test('a full state directory at start-up: one line naming it, exit 1, no stack trace', { timeout: 30_000 }, async (t) => {
  const storage = join(dir, 'full');
  await mkdir(storage);
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', storage], { stdio: 'ignore' });
  } catch {
    return t.skip('cannot mount a small tmpfs here (needs root and CAP_SYS_ADMIN)');
  }
  cleanups.push(() => execFileSync('umount', ['-l', storage], { stdio: 'ignore' }));
  // Filled to the last byte.
  await writeFile(join(storage, 'filler'), Buffer.alloc(1 << 20)).catch((err: NodeJS.ErrnoException) => assert.equal(err.code, 'ENOSPC'));
  const { code, stderr } = await run(storage);
  assert.equal(code, 1, stderr);
  assert.ok(stderr.includes(`--storage.path ${storage}`), stderr);
  assert.match(stderr, /ENOSPC|no space left/i);
  assert.doesNotMatch(stderr, /\n\s+at /, 'no stack trace');
  assert.equal(stderr.trim().split('\n').length, 1, stderr);
});

test('a second remediator refused by the lock leaves the first one\'s action history as it was', { timeout: 30_000 }, async () => {
  const storage = join(dir, 'held');
  await mkdir(storage);
  // A live process of this boot stands in for the first remediator, holding the lock.
  const holder = spawn('sleep', ['300'], { stdio: 'ignore' });
  cleanups.push(() => holder.kill('SIGKILL'));
  while (startTicks(holder.pid!) === undefined) await sleep(10);
  await writeFile(join(storage, 'lock'), JSON.stringify({ pid: holder.pid, boot_id: bootId(), start_ticks: startTicks(holder.pid!) }));
  // Its history, with an action still running (the second must not mark it `interrupted`).
  const history = `${JSON.stringify([{ id: 3, target: 'qwen3', action: 'command', trigger: { source: 'webhook', alertname: 'LLMServerDown', fingerprint: 'f', starts_at: '' }, decisions: [], started_at: new Date().toISOString(), outcome: 'running', message: '' }], null, 1)}\n`;
  await writeFile(join(storage, 'actions.json'), history);
  const config = parseConfig({ targets: [{ name: 'qwen3', url: 'http://127.0.0.1:1/v1', remediation: { action: 'command', command: ['/bin/true'] } }] });
  await assert.rejects(startRemediator({ config, token, listen: { host: '127.0.0.1', port: 0 }, logger: silentLogger, storagePath: storage }), (err: Error) => err.name === 'StartupError' && err.message.includes('is in use by another remediator'));
  await sleep(200);
  assert.equal(await readFile(join(storage, 'actions.json'), 'utf8'), history, 'untouched');
});
