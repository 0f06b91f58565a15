// The remediator's lifecycle as an operator meets it: a second signal ends the owned server at
// once; a failed shutdown exits non-zero; a reload that removes a target while its command runs
// ends that command and leaves no series of the target behind; GET /api/v1/actions says what was
// done and why.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { readConfigFile } from '../../src/cmd/config.ts';
import { onShutdownSignal } from '../../src/lib/lifecycle.ts';
import { silentLogger } from '../../src/lib/log.ts';
import { groupLeadersRunning } from '../../src/remediator/actions/proc.ts';
import { startRemediator } from '../../src/remediator/server.ts';
import { freePort } from '../../src/lib/system.ts';
import { payload } from '../helpers/fakes.ts';
import { eventually } from '../helpers/stack-child.ts';

const cli = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));
const stubborn = fileURLToPath(new URL('../fixtures/stubborn-server.ts', import.meta.url));
const dir = await mkdtemp(join(tmpdir(), 'qs-lifecycle-'));
const token = 'lifecycle-token-0123456789';
after(() => rm(dir, { recursive: true, force: true }));

test('SIGTERM waits for the owned server\'s grace period; a second SIGTERM ends it at once and exits 1', { timeout: 60_000 }, async () => {
  const port = await freePort('127.0.0.1');
  const argv = [process.execPath, stubborn, String(port)];
  const tokenFile = join(dir, 'token');
  await writeFile(tokenFile, token);
  const config = join(dir, 'second-signal.yml');
  await writeFile(config, stringify({ targets: [{ name: 's', url: `http://127.0.0.1:${port}/v1`, remediation: { action: 'process', command: argv, grace_period: '30s' } }], remediator: { auth: { bearer_token_file: tokenFile } } }));
  const web = await freePort('127.0.0.1');
  const child = spawn(process.execPath, [cli, 'remediator', `--config.file=${config}`, `--storage.path=${join(dir, 'state-signal')}`, `--web.listen-address=127.0.0.1:${web}`, '--log.level=error'], { stdio: 'ignore' });
  try {
    await eventually('the server to run', 20_000, async () => (groupLeadersRunning(argv).length === 1 && (await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.ok, () => false)) ? true : undefined));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    await sleep(1000);
    assert.equal(child.exitCode, null, 'still waiting out the grace period of a server that ignores SIGTERM');
    const started = Date.now();
    child.kill('SIGTERM');
    assert.equal(await exited, 1);
    assert.ok(Date.now() - started < 5000);
    await eventually('the server gone', 5000, async () => (groupLeadersRunning(argv).length === 0 ? true : undefined));
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    for (const pid of groupLeadersRunning(argv)) process.kill(-pid, 'SIGKILL');
  }
});

test('a second SIGTERM during start-up, while an orphaned server that ignores SIGTERM is being ended, kills it at once and starts nothing', { timeout: 60_000 }, async () => {
  const port = await freePort('127.0.0.1');
  const marker = join(dir, 'startup-sigterm.log');
  const first = [process.execPath, stubborn, String(port), marker];
  // The same server under another command line: the new remediator may not adopt the old one.
  const second = [...first, 'changed'];
  const tokenFile = join(dir, 'token-startup');
  await writeFile(tokenFile, token);
  const storage = join(dir, 'state-startup');
  const configFor = async (command: string[], name: string) => {
    const file = join(dir, name);
    await writeFile(file, stringify({ targets: [{ name: 's', url: `http://127.0.0.1:${port}/v1`, remediation: { action: 'process', command, grace_period: '30s' } }], remediator: { auth: { bearer_token_file: tokenFile } } }));
    return file;
  };
  const start = async (config: string) => spawn(process.execPath, [cli, 'remediator', `--config.file=${config}`, `--storage.path=${storage}`, `--web.listen-address=127.0.0.1:${await freePort('127.0.0.1')}`, '--log.level=error'], { stdio: 'ignore' });
  const a = await start(await configFor(first, 'startup-a.yml'));
  let b: ReturnType<typeof spawn> | undefined;
  try {
    await eventually('the first server to run', 20_000, async () => (groupLeadersRunning(first).length === 1 && (await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.ok, () => false)) ? true : undefined));
    // The remediator dies; its server is orphaned and holds the port.
    const aGone = new Promise((resolve) => a.once('exit', resolve));
    a.kill('SIGKILL');
    await aGone;
    b = await start(await configFor(second, 'startup-b.yml'));
    const exited = new Promise<number | null>((resolve) => b!.once('exit', (code) => resolve(code)));
    // Start-up is ending the orphan: it got SIGTERM, ignores it, and has 30 s of grace.
    await eventually('the orphan to get SIGTERM', 20_000, async () => ((await readFile(marker, 'utf8').catch(() => '')).includes('SIGTERM') ? true : undefined));
    b.kill('SIGTERM');
    await sleep(500);
    assert.equal(b.exitCode, null, 'the first signal waits for start-up');
    const started = Date.now();
    b.kill('SIGTERM');
    assert.equal(await exited, 1);
    assert.ok(Date.now() - started < 5000);
    await eventually('the orphan gone', 5000, async () => (groupLeadersRunning(first).length === 0 ? true : undefined));
    assert.deepEqual(groupLeadersRunning(second), [], 'and no new server started');
  } finally {
    for (const child of [a, b]) if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    for (const pid of [...groupLeadersRunning(first), ...groupLeadersRunning(second)]) process.kill(-pid, 'SIGKILL');
  }
});

test('a shutdown whose cleanup fails is logged and leaves exit code 1', async () => {
  const saved = process.exitCode;
  const logged: string[] = [];
  const logger = { ...silentLogger, info: () => {}, error: (_o: unknown, msg: string) => void logged.push(msg) } as unknown as typeof silentLogger;
  const done = onShutdownSignal(logger, async () => { throw new Error('disk gone'); }, { signals: ['SIGWINCH'] });
  process.kill(process.pid, 'SIGWINCH');
  await done;
  assert.equal(process.exitCode, 1);
  assert.deepEqual(logged, ['shutdown failed']);
  process.exitCode = saved;
});

test('a reload removing a target whose command runs ends the command, and the target\'s series stay gone', { timeout: 30_000 }, async () => {
  const file = join(dir, 'reload.yml');
  const marker = join(dir, 'slow-command-started');
  const targets = (withSlow: boolean) => ({
    targets: [
      { name: 'keep', url: 'http://127.0.0.1:1/v1', remediation: { action: 'command', command: ['/bin/true'], startup_timeout: '1s' } },
      ...(withSlow ? [{ name: 'slow', url: 'http://127.0.0.1:2/v1', remediation: { action: 'command', command: ['/bin/sh', '-c', `touch ${marker}; sleep 60`], timeout: '1m', startup_timeout: '1s' } }] : []),
    ],
    remediator: { auth: { bearer_token_env: 'UNUSED' } },
  });
  await writeFile(file, stringify(targets(true)));
  const { config, text } = await readConfigFile(file);
  process.env.UNUSED = token;
  const r = await startRemediator({ config, token, listen: { host: '127.0.0.1', port: 0 }, logger: silentLogger, configFile: { path: file, text, read: readConfigFile } });
  try {
    const send = (target: string) => fetch(`${r.url}/webhook`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify(payload({ labels: { target } })) });
    assert.equal((await send('slow')).status, 200);
    await eventually('the slow command to run', 10_000, async () => (await import('node:fs')).existsSync(marker) || undefined);
    await writeFile(file, stringify(targets(false)));
    const started = Date.now();
    assert.equal(await r.reloader!.reload(), 'reloaded');
    assert.ok(Date.now() - started < 10_000, 'the reload ended the command instead of waiting out its minute');
    await r.remediator.idle();
    const metrics = await (await fetch(`${r.url}/metrics`)).text();
    assert.doesNotMatch(metrics, /target="slow"/);
    assert.match(metrics, /target="keep"/);
    // What was done and why: the history keeps the ended action with its trail.
    const actions = ((await (await fetch(`${r.url}/api/v1/actions`)).json()) as { actions: Array<{ target: string; outcome: string; message: string; trigger: { alertname: string; source: string }; decisions: Array<{ stage: string }> }> }).actions;
    const slow = actions.find((a) => a.target === 'slow')!;
    assert.equal(slow.outcome, 'failure');
    assert.match(slow.message, /killed by SIGTERM/);
    assert.deepEqual(slow.trigger.source, 'webhook');
    assert.deepEqual(slow.decisions.map((d) => d.stage), ['stale', 'duplicate', 'starting', 'in_progress', 'cooldown', 'circuit_open', 'recovered']);
  } finally {
    await r.close();
    delete process.env.UNUSED;
  }
});
