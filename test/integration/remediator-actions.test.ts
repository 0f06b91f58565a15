import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseConfig } from '../../src/config/load.ts';
import { silentLogger } from '../../src/log.ts';
import { CommandAction } from '../../src/remediator/actions/command.ts';
import { processAction as processKind } from '../../src/remediator/actions/process.ts';
import type { Remediation } from '../../src/config/schema.ts';
import { realClock } from '../../src/remediator/clock.ts';
import { freshRecord, type TargetRecord } from '../../src/remediator/state.ts';

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

/** A process action over a state record, as the remediator builds it (the record may be reused). */
function processAction(script: string, extra: Record<string, unknown> = {}, record: TargetRecord = freshRecord()) {
  const events = { exits: 0, running: [] as Array<number | undefined> };
  const config = remediation({ action: 'process', command: [process.execPath, '-e', script], grace_period: '500ms', ...extra }) as ProcessConfig;
  const action = processKind.create(config, {
    target: 't',
    logger: silentLogger,
    stdio: 'ignore',
    record,
    persist: async () => {},
    clock: realClock,
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

test('process: an unexpected exit is counted and, by default, not restarted', async () => {
  const { action, events } = processAction('setTimeout(() => process.exit(3), 100)');
  await action.start();
  await waitFor(() => events.exits === 1);
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

test('process: a new remediator adopts the server the old one started (same pid, start time, argv): never two', async () => {
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

test('process: a spawn the old remediator never recorded (killed in between) is found by its argv and ended', async () => {
  const script = serverScript('unrecorded.json');
  const record = freshRecord();
  const argv = [process.execPath, '-e', script];
  // What a remediator killed between spawn and record leaves: a group leader running our argv.
  const stray = spawn(argv[0]!, argv.slice(1), { detached: true, stdio: 'ignore' });
  const { pid } = await pidsIn('unrecorded.json');
  assert.equal(stray.pid, pid);
  record.spawning = { since: 0, argv };
  const next = processAction(script, {}, record);
  await next.action.start();
  await waitFor(() => !alive(pid));
  assert.ok(next.action.pid() !== undefined && next.action.pid() !== pid);
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
