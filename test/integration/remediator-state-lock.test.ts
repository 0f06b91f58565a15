// One remediator per --storage.path: the state store takes DIR/lock before it reads a record (so
// before any server is started), refuses a directory a live remediator holds, and takes over a
// lock whose holder is gone: dead, its pid reused by another process, or from another boot.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { silentLogger } from '../../src/lib/log.ts';
import { bootId, startTicks } from '../../src/remediator/actions/proc.ts';
import { realClock } from '../../src/remediator/clock.ts';
import { StateStore } from '../../src/remediator/state.ts';

const dir = await mkdtemp(join(tmpdir(), 'qs-lock-'));
after(() => rm(dir, { recursive: true, force: true }));

const store = (storage: string) => new StateStore({ dir: storage, clock: realClock, logger: silentLogger });

/** A live process of this boot standing in for another remediator (its pid and start time). */
async function holder() {
  const child = spawn('sleep', ['300'], { stdio: 'ignore' });
  while (startTicks(child.pid!) === undefined) await sleep(10);
  return { child, lock: { pid: child.pid!, boot_id: bootId()!, start_ticks: startTicks(child.pid!)! } };
}

test('a directory a live remediator holds is refused, with the directory named; once that one is gone, it is taken', async () => {
  const storage = join(dir, 'held');
  await mkdir(storage);
  const other = await holder();
  try {
    await writeFile(join(storage, 'lock'), JSON.stringify(other.lock));
    await assert.rejects(store(storage).load('qwen3'), (err: Error) => err.name === 'StartupError' && err.message.includes(`--storage.path ${storage} is in use by another remediator (pid ${other.child.pid},`));
    assert.deepEqual(JSON.parse(await readFile(join(storage, 'lock'), 'utf8')), other.lock, 'the holder keeps its lock');
  } finally {
    other.child.kill('SIGKILL');
    await new Promise((r) => other.child.once('exit', r));
  }
  const mine = store(storage);
  await mine.load('qwen3');
  assert.equal((JSON.parse(await readFile(join(storage, 'lock'), 'utf8')) as { pid: number }).pid, process.pid);
  await mine.close();
  await assert.rejects(readFile(join(storage, 'lock')), { code: 'ENOENT' }, 'given up on close');
});

test('a lock whose pid now names another process (another start time), or from another boot, or unreadable, is stale', async () => {
  const other = await holder();
  try {
    for (const [name, text] of [
      ['reused', JSON.stringify({ ...other.lock, start_ticks: '1' })],
      ['rebooted', JSON.stringify({ ...other.lock, boot_id: 'a-boot-long-gone' })],
      ['garbage', '{half a lo'],
    ] as const) {
      const storage = join(dir, name);
      await mkdir(storage);
      await writeFile(join(storage, 'lock'), text);
      const s = store(storage);
      await s.load('qwen3');
      assert.equal((JSON.parse(await readFile(join(storage, 'lock'), 'utf8')) as { pid: number }).pid, process.pid, name);
      await s.close();
    }
  } finally {
    other.child.kill('SIGKILL');
  }
});
