import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseConfig } from '../../src/cmd/config.ts';
import { silentLogger } from '../../src/lib/log.ts';
import { CommandAction } from '../../src/remediator/actions/command.ts';
import { processAction as processKind } from '../../src/remediator/actions/process.ts';
import type { Remediation } from '../../src/cmd/config.ts';
import { bootId, startTicks } from '../../src/remediator/actions/proc.ts';
import { realClock, type Clock } from '../../src/remediator/clock.ts';
import { freshRecord, StateStore, type TargetRecord } from '../../src/remediator/state.ts';

const dir = await mkdtemp(join(tmpdir(), 'qs-actions-'));
const cleanups: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
  await rm(dir, { recursive: true, force: true });
});

function remediation(r: Record<string, unknown>): Remediation {
  return parseConfig({ targets: [{ url: 'http://127.0.0.1:1/v1', remediation: r }] }).targets[0]!.remediation!;
}
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
const processGroup = async (pid: number) => Number((await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ')[2]);
async function waitFor(check: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(20);
  }
}

// A fake model server: spawns a grandchild (like vLLM's engine core) and records both pids.
const serverScript = (name: string, ignoreTerm = false) => `
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const g = spawn('sleep', ['300'], { stdio: 'ignore' });
${ignoreTerm ? "process.on('SIGTERM', () => {});" : ''}
fs.writeFileSync(${JSON.stringify(join(dir, name))}, JSON.stringify({ pid: process.pid, grandchild: g.pid }));
setInterval(() => {}, 1000);`;

type ProcessConfig = Extract<Remediation, { action: 'process' }>;

/**
 * A process action over a state record, as the remediator builds it (the record may be reused).
 * `server` is a script for `node -e`, or a whole argv.
 */
function processAction(server: string | string[], extra: Record<string, unknown> = {}, record: TargetRecord = freshRecord(), o: { persist?: () => Promise<void>; clock?: Clock } = {}) {
  const events = { exits: 0, running: [] as Array<number | undefined> };
  const command = typeof server === 'string' ? [process.execPath, '-e', server] : server;
  const config = remediation({ action: 'process', command, grace_period: '500ms', ...extra }) as ProcessConfig;
  const action = processKind.create(config, {
    target: 't',
    logger: silentLogger,
    stdio: 'ignore',
    record,
    persist: o.persist ?? (async () => {}),
    clock: o.clock ?? realClock,
    hooks: { running: (pid) => events.running.push(pid), unexpectedExit: () => (events.exits += 1) },
  });
  cleanups.push(() => action.stop());
  return { action, events, record };
}
const pidsIn = async (name: string) => {
  await waitFor(() => existsSync(join(dir, name)));
  return JSON.parse(await readFile(join(dir, name), 'utf8')) as { pid: number; grandchild: number };
};

test('process: the server leads its own process group, and a restart replaces the whole group only', async () => {
  const bystander = spawn('sleep', ['300'], { stdio: 'ignore' });
  cleanups.push(() => void bystander.kill('SIGKILL'));
  const { action } = processAction(serverScript('a.json'));
  await action.start();
  const first = await pidsIn('a.json');
  assert.equal(action.pid(), first.pid);
  assert.equal(await processGroup(first.pid), first.pid, 'the server itself is the group leader, not a wrapper');
  assert.equal(await processGroup(first.grandchild), first.pid);
  await rm(join(dir, 'a.json'));

  const outcome = await action.restart({ alertname: 'LLMServerHung', fingerprint: 'f' });
  assert.equal(outcome.ok, true);
  const second = await pidsIn('a.json');
  assert.notEqual(second.pid, first.pid);
  await waitFor(() => !alive(first.pid) && !alive(first.grandchild));
  assert.ok(alive(second.pid));
  assert.ok(alive(bystander.pid!), 'a process the remediator did not start is left alone');
});

test('process: SIGKILL follows when the server ignores SIGTERM for the grace period', async () => {
  const { action } = processAction(serverScript('b.json', true));
  await action.start();
  const first = await pidsIn('b.json');
  const started = Date.now();
  await action.restart({ alertname: 'x', fingerprint: 'f' });
  assert.ok(Date.now() - started >= 450, 'waited for the grace period');
  assert.equal(alive(first.pid), false);
  assert.equal(alive(first.grandchild), false);
});

test('process: a frozen server (SIGSTOP) gets SIGCONT after SIGTERM, as systemd sends it, and ends at once instead of sitting out the grace period', { timeout: 30_000 }, async () => {
  const marker = join(dir, 'frozen-term');
  const script = `${serverScript('frozen.json')}\nprocess.on('SIGTERM', () => { require('node:fs').writeFileSync(${JSON.stringify(marker)}, 'term'); process.exit(0); });`;
  // A grace period longer than this test's timeout: only a SIGTERM that is acted on ends it in time.
  const { action } = processAction(script, { grace_period: '60s' });
  await action.start();
  const first = await pidsIn('frozen.json');
  process.kill(first.pid, 'SIGSTOP');
  await waitFor(async () => (await readFile(`/proc/${first.pid}/stat`, 'utf8')).split(') ')[1]!.startsWith('T'));
  const outcome = await action.restart({ alertname: 'LLMServerUnresponsive', fingerprint: 'f' });
  assert.equal(outcome.ok, true, outcome.message);
  assert.equal(await readFile(marker, 'utf8'), 'term', 'the frozen server handled the SIGTERM itself');
  assert.equal(alive(first.pid), false);
});

test('process: an unexpected exit is counted and, by default, not restarted', async () => {
  const { action, events, record } = processAction('setTimeout(() => process.exit(3), 100)');
  await action.start();
  await waitFor(() => events.exits === 1);
  assert.equal(record.startedAt, undefined, 'a server that is gone is not loading: its start-up window ended with it');
  await sleep(1500);
  assert.equal(action.pid(), undefined);
  assert.equal(events.exits, 1);
  const outcome = await action.restart({ alertname: 'LLMServerDown', fingerprint: 'f' });
  assert.equal(outcome.ok, true);
  assert.ok(action.pid());
});

function commandAction(command: string[], extra: Record<string, unknown> = {}) {
  return new CommandAction({ target: 'qwen3', logger: silentLogger, config: remediation({ action: 'command', command, ...extra }) as Extract<Remediation, { action: 'command' }> });
}

test('command: runs the argv without a shell, alert details only in fixed env vars', async () => {
  const out = join(dir, 'cmd.json');
  const pwned = join(dir, 'pwned');
  const script = 'require("fs").writeFileSync(process.argv[1], JSON.stringify({ argv: process.argv.slice(2), target: process.env.QWEN_SENTINEL_TARGET, alert: process.env.QWEN_SENTINEL_ALERTNAME }))';
  const outcome = await commandAction([process.execPath, '-e', script, out, `$(touch ${pwned})`, '; touch ' + pwned]).restart({ alertname: 'LLMServerHung', fingerprint: 'f' });
  assert.deepEqual(outcome, { ok: true, message: 'exit 0' });
  assert.deepEqual(JSON.parse(await readFile(out, 'utf8')), { argv: [`$(touch ${pwned})`, `; touch ${pwned}`], target: 'qwen3', alert: 'LLMServerHung' });
  assert.equal(existsSync(pwned), false);
});

test('command: a non-zero exit and a timeout are failures', async () => {
  const failed = await commandAction([process.execPath, '-e', 'process.exit(4)']).restart({ alertname: 'x', fingerprint: 'f' });
  assert.equal(failed.ok, false);
  assert.match(failed.message, /exit code 4/);
  const slow = await commandAction([process.execPath, '-e', 'setTimeout(() => {}, 60000)'], { timeout: '300ms' }).restart({ alertname: 'x', fingerprint: 'f' });
  assert.equal(slow.ok, false);
  assert.match(slow.message, /timed out after 300 ms/);
});

test('command: the timeout ends the whole group, and a daemon left behind does not hold the action', async () => {
  const daemonPid = join(dir, 'daemon.pid');
  const logged = join(dir, 'daemon.logged');
  // Starts a long-lived background child (as `nohup server &` would) and exits 0 at once; the
  // daemon keeps the inherited stdout and logs to it later (SIGPIPE would kill it if we closed it).
  // A shell daemon, as restart scripts start them: its echo dies of SIGPIPE on a closed pipe.
  const daemon = `sleep 0.3; echo still-logging; touch '${logged}'; sleep 300`;
  const spawnsDaemon = `const c = require('child_process').spawn('sh', ['-c', ${JSON.stringify(daemon)}], { stdio: ['ignore', 'inherit', 'inherit'] }); require('fs').writeFileSync(${JSON.stringify(daemonPid)}, String(c.pid)); c.unref();`;
  const started = Date.now();
  const ok = await commandAction([process.execPath, '-e', spawnsDaemon], { timeout: '10s' }).restart({ alertname: 'x', fingerprint: 'f' });
  assert.deepEqual(ok, { ok: true, message: 'exit 0' });
  assert.ok(Date.now() - started < 5000, 'did not wait for the daemon holding stdout');
  const pid = Number(await readFile(daemonPid, 'utf8'));
  await waitFor(() => existsSync(logged));
  assert.ok(alive(pid), 'the daemon it started keeps running, and logging');
  // The daemon's group is the command's: end it all, or its `sleep` would hold this test open.
  process.kill(-(await processGroup(pid)), 'SIGKILL');

  const grandchild = join(dir, 'grandchild.pid');
  const hangs = `const c = require('child_process').spawn('sleep', ['300'], { stdio: 'inherit' }); require('fs').writeFileSync(${JSON.stringify(grandchild)}, String(c.pid)); setInterval(() => {}, 1000);`;
  const t0 = Date.now();
  const slow = await commandAction([process.execPath, '-e', hangs], { timeout: '500ms' }).restart({ alertname: 'x', fingerprint: 'f' });
  assert.deepEqual(slow, { ok: false, message: 'timed out after 500 ms' });
  assert.ok(Date.now() - t0 < 4000, `bounded by the timeout, took ${Date.now() - t0} ms`);
  await waitFor(() => !alive(Number(readFileSync(grandchild, 'utf8'))));
});

test('command: a program that does not exist is a failure, not a hang', async () => {
  const outcome = await commandAction([join(dir, 'no-such-program')]).restart({ alertname: 'x', fingerprint: 'f' });
  assert.equal(outcome.ok, false);
  assert.match(outcome.message, /ENOENT/);
});

test('process: leftovers of a crashed server are killed at once', async () => {
  const left = join(dir, 'left.pids');
  const crashes = `const c = require('child_process').spawn('sleep', ['300'], { stdio: 'ignore' }); require('fs').appendFileSync(${JSON.stringify(left)}, c.pid + '\\n'); setTimeout(() => process.exit(3), 200);`;
  const { action, events, record } = processAction(crashes);
  await action.start();
  await waitFor(() => events.exits >= 1, 8000);
  const pids = (await readFile(left, 'utf8')).trim().split('\n').map(Number);
  await waitFor(() => pids.every((p) => !alive(p)));
  assert.equal(record.owned, undefined, 'the record no longer names a server');
  await action.stop();
});

test('process: a new remediator adopts the server the old one started (same boot, pid and start time): never two', async () => {
  const first = processAction(serverScript('adopt.json'));
  await first.action.start();
  const { pid } = await pidsIn('adopt.json');
  assert.equal(first.record.owned?.pid, pid);
  assert.ok(first.record.owned!.startTicks !== '');
  // The old remediator is gone (SIGKILL: it ran no cleanup); a new one reads the same record.
  const second = processAction(serverScript('adopt.json'), {}, structuredClone(first.record));
  await second.action.start();
  assert.equal(second.action.pid(), pid, 'adopted, not started again');
  // The adopted server is watched: an exit is noticed (it is not our child: no exit event).
  process.kill(-pid, 'SIGKILL');
  await waitFor(() => second.events.exits === 1, 5000);
  assert.equal(second.record.owned, undefined);
});

test('process: a recorded server that is gone, but left its group behind, is ended before a new one starts', async () => {
  const first = processAction(serverScript('orphan.json'));
  await first.action.start();
  const { pid, grandchild } = await pidsIn('orphan.json');
  const record = structuredClone(first.record);
  // Only the leader dies (as an OOM kill would); its engine subprocess holds on in the group.
  process.kill(pid, 'SIGKILL');
  await waitFor(() => !alive(pid));
  assert.ok(alive(grandchild));
  const second = processAction(serverScript('orphan2.json'), {}, record);
  await second.action.start();
  await waitFor(() => !alive(grandchild));
  assert.notEqual(second.action.pid(), pid);
  assert.ok(alive(second.action.pid()!));
});

test('process: the server gets an explicit environment: never the webhook token or the remediator\'s own variables', async () => {
  const out = join(dir, 'env.json');
  process.env.QWEN_SENTINEL_WEBHOOK_TOKEN = 'secret-token-that-must-not-leak';
  try {
    const { action } = processAction(`require('fs').writeFileSync(${JSON.stringify(out)}, JSON.stringify(process.env)); setInterval(() => {}, 1000);`, { env: { CUDA_VISIBLE_DEVICES: '0' } });
    await action.start();
    await waitFor(() => existsSync(out));
    const env = JSON.parse(await readFile(out, 'utf8')) as Record<string, string>;
    assert.equal(env.QWEN_SENTINEL_WEBHOOK_TOKEN, undefined);
    assert.equal(env.CUDA_VISIBLE_DEVICES, '0');
    assert.equal(env.PATH, process.env.PATH);
    assert.match(env.QWEN_SENTINEL_SPAWN_ID ?? '', /^[0-9a-f-]{36}$/, 'the id it is known by, whatever its argv');
  } finally {
    delete process.env.QWEN_SENTINEL_WEBHOOK_TOKEN;
  }
});

test('process: a server that cannot start is a failed restart, not an unexpected exit', async () => {
  const events = { exits: 0 };
  const broken = processKind.create(remediation({ action: 'process', command: [join(dir, 'no-such-server')], restart_on_exit: true }) as ProcessConfig, {
    target: 't', logger: silentLogger, stdio: 'ignore', record: freshRecord(), persist: async () => {}, clock: realClock,
    hooks: { running: () => {}, unexpectedExit: () => (events.exits += 1) },
  });
  assert.equal((await broken.restart({ alertname: 'x', fingerprint: 'f' })).ok, false);
  await broken.start();
  await sleep(1500);
  assert.equal(events.exits, 0);
  assert.equal(broken.pid(), undefined);
  await broken.stop();
});

test('command: stop() (a shutdown) ends a running restart command instead of waiting for its timeout', async () => {
  const action = commandAction([process.execPath, '-e', 'setInterval(() => {}, 1000)'], { timeout: '1h' });
  const started = Date.now();
  const running = action.restart({ alertname: 'x', fingerprint: 'f' });
  await sleep(300);
  await action.stop();
  const outcome = await running;
  assert.equal(outcome.ok, false);
  assert.match(outcome.message, /killed by SIGTERM/);
  assert.ok(Date.now() - started < 5000);
});

// A server started through a script, as vLLM and SGLang are (Python entry points) and wrappers
// are: /proc shows [/bin/sh, script, ...], never the configured argv. It writes its pid and waits.
async function scriptServer(name: string): Promise<string[]> {
  const script = join(dir, `${name}.sh`);
  await writeFile(script, `#!/bin/sh\necho "{\\"pid\\": $$}" > "$1"\nsleep 300 &\nwait\n`);
  await chmod(script, 0o755);
  return [script, join(dir, `${name}.json`)];
}
const leaderOf = async (file: string) => {
  await waitFor(() => existsSync(file) && readFileSync(file, 'utf8').endsWith('\n'));
  return (JSON.parse(await readFile(file, 'utf8')) as { pid: number }).pid;
};

test('process: a server started through a script is adopted by boot, pid and start time, whatever /proc says its argv is', async () => {
  const command = await scriptServer('script-adopt');
  const first = processAction(command);
  await first.action.start();
  const pid = await leaderOf(command[1]!);
  assert.equal(first.action.pid(), pid);
  assert.deepEqual(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(0, 2), ['/bin/sh', command[0]], 'the premise: a shell runs the script');
  const second = processAction(command, {}, structuredClone(first.record));
  await second.action.start();
  assert.equal(second.action.pid(), pid, 'adopted, not killed and started again');
  await sleep(300);
  assert.ok(alive(pid));
});

test('process: a real spawn interrupted before its pid was recorded is found by its spawn id and ended, even through a script', async () => {
  const command = await scriptServer('script-spawning');
  // What reached the disk at each persist: a remediator killed right after spawning leaves the
  // record as it was written just before the spawn.
  const written: TargetRecord[] = [];
  const first = processAction(command, {}, freshRecord(), { persist: async () => void written.push(structuredClone(first.record)) });
  await first.action.start();
  const pid = await leaderOf(command[1]!);
  const onDisk = written.find((r) => r.spawning !== undefined && r.owned === undefined);
  assert.ok(onDisk?.spawning?.spawnId, 'the record written before the spawn names the spawn id it gives the server');
  await rm(command[1]!);
  const next = processAction(command, {}, structuredClone(onDisk));
  await next.action.start();
  await waitFor(() => !alive(pid));
  const replacement = await leaderOf(command[1]!);
  assert.equal(next.action.pid(), replacement);
  assert.notEqual(replacement, pid);
  assert.ok(alive(replacement), 'exactly one server: the new one');
  assert.equal(next.record.spawning, undefined);
});

test('process: a recorded pid that now leads another process (another start time) is not ours: its group is left alone', async () => {
  const bystander = spawn('sleep', ['300'], { detached: true, stdio: 'ignore' });
  cleanups.push(() => void bystander.kill('SIGKILL'));
  await waitFor(() => startTicks(bystander.pid!) !== undefined);
  const record = freshRecord();
  // The server we recorded died; its pid now names a process group leader that is not ours.
  record.owned = { pid: bystander.pid!, pgid: bystander.pid!, startTicks: '1', argv: ['vllm', 'serve'], bootId: bootId(), spawnId: 'gone-server' };
  const { action } = processAction(serverScript('reused.json'), {}, record);
  await action.start();
  const { pid } = await pidsIn('reused.json');
  assert.equal(action.pid(), pid);
  await sleep(700); // longer than the grace period an orphan group would get
  assert.ok(alive(bystander.pid!), 'the other group was not signalled');
});

test('process: a record from another boot names nothing of ours, not even a live group leader with that pid and start time', async () => {
  const bystander = spawn('sleep', ['300'], { detached: true, stdio: 'ignore' });
  cleanups.push(() => void bystander.kill('SIGKILL'));
  await waitFor(() => startTicks(bystander.pid!) !== undefined);
  const script = serverScript('reboot.json');
  const record = freshRecord();
  // After a crash and a reboot, pids, groups and start times (ticks since boot) repeat.
  record.owned = { pid: bystander.pid!, pgid: bystander.pid!, startTicks: startTicks(bystander.pid!)!, argv: [process.execPath, '-e', script], bootId: 'a-boot-long-gone', spawnId: 'x' };
  const { action } = processAction(script, {}, record);
  await action.start();
  const { pid } = await pidsIn('reboot.json');
  assert.equal(action.pid(), pid, 'started its own server');
  await sleep(700);
  assert.ok(alive(bystander.pid!), 'the group of this boot with that number was not signalled');
});

test("process: another user's process group is never signalled, and EPERM never stops start-up", { skip: process.getuid?.() !== 0 && 'needs root to run the action as another user' }, async () => {
  // A group of root's; the action runs as nobody, for whom signalling it fails with EPERM.
  const victim = spawn('sleep', ['300'], { detached: true, stdio: 'ignore' });
  cleanups.push(() => void victim.kill('SIGKILL'));
  await waitFor(() => startTicks(victim.pid!) !== undefined);
  const fixture = fileURLToPath(new URL('../fixtures/start-process-action.ts', import.meta.url));
  const command = [process.execPath, '-e', 'setInterval(() => {}, 1000)'];
  const asNobody = (record: Partial<TargetRecord>) =>
    new Promise<{ code: number | null; out: string }>((resolve) => {
      const child = spawn(process.execPath, [fixture, JSON.stringify({ record, command })], { uid: 65534, gid: 65534, cwd: '/', stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d));
      child.once('close', (code) => resolve({ code, out }));
    });
  const owned = { pid: victim.pid!, pgid: victim.pid!, argv: ['vllm', 'serve'], bootId: bootId() };
  // Its pid reused by root's process: not ours (another start time), not signalled.
  const reused = await asNobody({ owned: { ...owned, startTicks: '1' } });
  assert.equal(reused.code, 0, reused.out);
  assert.match(reused.out, /"started":\d+/);
  // Recorded with its true start time and another command: without our spawn id in its environment
  // it is not ours, so not signalled (and, were it ours, ending it would be denied); start-up goes on.
  const denied = await asNobody({ owned: { ...owned, startTicks: startTicks(victim.pid!)! } });
  assert.equal(denied.code, 0, denied.out);
  assert.match(denied.out, /"started":\d+/);
  assert.ok(alive(victim.pid!));
});

test('process: a lost state record (corrupt file) does not mean two servers: what an earlier run on the storage directory started is ended first', async () => {
  const storage = join(dir, 'storage-lost');
  const first = new StateStore({ dir: storage, clock: realClock, logger: silentLogger });
  const before = processAction(serverScript('lost.json'), {}, await first.load('t'), { persist: () => first.save('t') });
  await before.action.start();
  const { pid, grandchild } = await pidsIn('lost.json');
  await first.flush();
  // The remediator is killed; its record of the server is lost.
  await writeFile(join(storage, 'targets', 't.json'), '{not json');
  const second = new StateStore({ dir: storage, clock: realClock, logger: silentLogger });
  const record = await second.load('t');
  assert.equal(record.owned, undefined);
  const after = processAction(serverScript('lost2.json'), {}, record, { persist: () => second.save('t') });
  await after.action.start();
  await waitFor(() => !alive(pid) && !alive(grandchild));
  const { pid: replacement } = await pidsIn('lost2.json');
  assert.equal(after.action.pid(), replacement);
  assert.ok(alive(replacement));
});

test('process: a server still there after SIGKILL (stuck in the kernel) fails the restart after a bounded wait, and no second server starts', async () => {
  const first = processAction(serverScript('stuck.json', true));
  await first.action.start();
  const { pid } = await pidsIn('stuck.json');
  // The clock seam: every wait is over at once, so the grace period and the wait after SIGKILL
  // end before the exit can be seen (an adopted server's exit is polled once a second). To the
  // action the server is still there after SIGKILL, as one stuck in an uninterruptible call is.
  const instant: Clock = { now: realClock.now, wall: realClock.wall, sleep: () => new Promise((r) => setImmediate(r)) };
  const adopter = processAction(serverScript('stuck.json', true), {}, structuredClone(first.record), { clock: instant });
  await adopter.action.start();
  assert.equal(adopter.action.pid(), pid);
  const outcome = await adopter.action.restart({ alertname: 'LLMServerHung', fingerprint: 'f' });
  assert.equal(outcome.ok, false);
  assert.match(outcome.message, new RegExp(`pid ${pid}\\) did not exit within 30 s of SIGKILL; not starting another`));
  assert.deepEqual(adopter.events.running.filter((p) => p !== undefined), [pid], 'no second server was started');
  // It did get SIGKILL: once it is really gone, the watch notices, and nothing is left recorded.
  await waitFor(() => adopter.action.pid() === undefined);
  assert.equal(alive(pid), false);
});

test('process: a tampered record naming an unrelated process (its real pid, start time and boot) is neither adopted nor signalled: only the spawn id in its environment makes it ours', async () => {
  const bystander = () => {
    const child = spawn('sleep', ['300'], { detached: true, stdio: 'ignore' });
    cleanups.push(() => void child.kill('SIGKILL'));
    return child;
  };
  const script = serverScript('tampered.json');
  for (const argv of [[process.execPath, '-e', script], ['vllm', 'serve', 'Qwen/Qwen3-0.6B']]) {
    const victim = bystander();
    await waitFor(() => startTicks(victim.pid!) !== undefined);
    const record = freshRecord();
    // Everything the record can say, true of the victim: pid, group, start time, this boot; and
    // the configured argv (adopted as is) or another one (ended as a leftover of an earlier run).
    record.owned = { pid: victim.pid!, pgid: victim.pid!, startTicks: startTicks(victim.pid!)!, argv, bootId: bootId(), spawnId: 'forged-spawn-id' };
    const { action } = processAction(script, {}, record);
    await action.start();
    const { pid } = await pidsIn('tampered.json');
    assert.equal(action.pid(), pid, 'started its own server instead');
    assert.notEqual(pid, victim.pid);
    await action.restart({ alertname: 'LLMServerDown', fingerprint: 'f' });
    await sleep(700); // longer than the grace period a group of ours would get
    assert.ok(alive(victim.pid!), `the unrelated process was never signalled (record argv ${argv[0]})`);
    await action.stop();
    await rm(join(dir, 'tampered.json'), { force: true });
  }
});

test('process: a failure while handling the server\'s exit (a hook that throws) is logged, never an unhandled rejection that ends the remediator', async () => {
  const rejections: unknown[] = [];
  const listener = (reason: unknown) => void rejections.push(reason);
  process.on('unhandledRejection', listener);
  const errors: string[] = [];
  const logger = { ...silentLogger, warn: () => {}, info: () => {}, error: (_o: unknown, msg: string) => void errors.push(msg) } as unknown as typeof silentLogger;
  try {
    const action = processKind.create(remediation({ action: 'process', command: [process.execPath, '-e', 'setTimeout(() => process.exit(3), 100)'], grace_period: '500ms' }) as ProcessConfig, {
      target: 't', logger, stdio: 'ignore', record: freshRecord(), persist: async () => {}, clock: realClock,
      hooks: { running: () => {}, unexpectedExit: () => { throw new Error('the remediator could not take the exit'); } },
    });
    cleanups.push(() => action.stop());
    await action.start();
    await waitFor(() => action.pid() === undefined, 5000);
    await sleep(100);
    assert.deepEqual(rejections.map(String), []);
    assert.deepEqual(errors, ['internal error while handling the model server\'s exit']);
  } finally {
    process.off('unhandledRejection', listener);
  }
});
