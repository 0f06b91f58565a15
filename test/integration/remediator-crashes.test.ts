// The remediator's process handling broken on purpose: killed with SIGKILL in the middle of a
// restart and started again (exactly one server afterwards, answering), and a server that
// crashes as it starts (respawns stop at the circuit's limit, and the circuit metric says so).
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { groupLeadersRunning } from '../../src/remediator/actions/proc.ts';
import { freePort } from '../../src/lib/system.ts';
import { payload } from '../helpers/fakes.ts';
import { eventually, isAlive } from '../helpers/stack-child.ts';

const cli = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));
const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url));
const dir = await mkdtemp(join(tmpdir(), 'qs-crashes-'));
const token = 'crash-test-token-0123456789';
const children: ChildProcess[] = [];
const leaders: string[][] = [];
after(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  // Whatever server groups the tests left (they are ours: their argv names our fixtures).
  for (const argv of leaders) for (const pid of groupLeadersRunning(argv)) process.kill(-pid, 'SIGKILL');
  await rm(dir, { recursive: true, force: true });
});

interface View { pid: number | null; restarts: number; state: string; recent_restarts: number; last_action: { outcome: string; message: string } | null }

/** Starts `qwen-sentinel remediator` as a real process over a config and a storage directory. */
async function remediator(name: string, remediation: Record<string, unknown>, storage: string) {
  const config = join(dir, `${name}.yml`);
  const tokenFile = join(dir, 'token');
  await writeFile(tokenFile, token, { mode: 0o600 });
  const port = await freePort('127.0.0.1');
  await writeFile(config, stringify({ targets: [{ name, url: `http://127.0.0.1:${remediation.port}/v1`, remediation: { ...remediation, port: undefined } }], remediator: { auth: { bearer_token_file: tokenFile } } }));
  const child = spawn(process.execPath, [cli, 'remediator', `--config.file=${config}`, `--storage.path=${storage}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=error'], { stdio: 'ignore' });
  children.push(child);
  const url = `http://127.0.0.1:${port}`;
  const view = async (): Promise<View> => ((await (await fetch(`${url}/api/v1/targets`)).json()) as { targets: View[] }).targets[0]!;
  await eventually('the remediator to serve', 20_000, async () => ((await fetch(`${url}/-/ready`).then((r) => r.ok, () => false)) ? true : undefined));
  return { child, url, view };
}

test('SIGKILL of the remediator in the middle of a restart, then a new one: exactly one server, answering', { timeout: 90_000 }, async () => {
  const port = await freePort('127.0.0.1');
  const marker = join(dir, 'stubborn.sigterm');
  const argv = [process.execPath, fixture('stubborn-server.ts'), String(port), marker];
  leaders.push(argv);
  const storage = join(dir, 'state-kill');
  // The server ignores SIGTERM, so a restart spends its grace period waiting: time to strike.
  const remediation = { action: 'process', command: argv, grace_period: '8s', cooldown: '1m', confirm: false, port };
  const first = await remediator('stubborn', remediation, storage);
  await eventually('the first server answering, its start-up over', 20_000, async () => ((await first.view()).state === 'idle' ? true : undefined));
  const original = (await first.view()).pid!;
  const res = await fetch(`${first.url}/webhook`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify(payload({ labels: { target: 'stubborn' } })) });
  assert.equal(res.status, 200);
  await eventually('the restart under way', 10_000, async () => ((await first.view()).state === 'restarting' ? true : undefined));
  // Struck once the old server has its SIGTERM (the fixture says so), inside the grace period.
  await eventually('the old server to get SIGTERM', 20_000, async () => (existsSync(marker) ? true : undefined));
  first.child.kill('SIGKILL');
  await new Promise((r) => first.child.once('exit', r));
  assert.ok(isAlive(original), 'the old server outlived its remediator (it ignored SIGTERM)');

  const second = await remediator('stubborn', remediation, storage);
  const view = await eventually('a server answering under the new remediator', 30_000, async () => {
    const v = await second.view();
    const answers = await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.ok, () => false);
    return v.pid && answers ? v : undefined;
  });
  assert.deepEqual(groupLeadersRunning(argv), [view.pid], 'exactly one server, and it is the one the remediator names');
  second.child.kill('SIGTERM');
  await new Promise((r) => second.child.once('exit', r));
  await eventually('the owned server stopped with its remediator', 10_000, async () => (groupLeadersRunning(argv).length === 0 ? true : undefined));
});

test('a server that crashes as it starts: respawns back off and stop at the circuit\'s limit', { timeout: 90_000 }, async () => {
  const port = await freePort('127.0.0.1');
  const argv = [process.execPath, fixture('crash-on-start.ts')];
  const r = await remediator('crashy', { action: 'process', command: argv, restart_on_exit: true, startup_timeout: '30s', circuit: { max_restarts: 3, window: '15m' }, port }, join(dir, 'state-crashy'));
  const view = await eventually('the circuit to open', 60_000, async () => {
    const v = await r.view();
    return v.state === 'circuit_open' ? v : undefined;
  });
  assert.equal(view.restarts, 3);
  assert.equal(view.last_action?.outcome, 'failure');
  assert.match(view.last_action!.message, /exited while starting/);
  // It stays open: no more respawns, however long we wait, and the metric the alert reads says so.
  await sleep(3000);
  assert.equal((await r.view()).restarts, 3);
  const metrics = await (await fetch(`${r.url}/metrics`)).text();
  assert.match(metrics, /^llm_remediation_circuit_open\{target="crashy"\} 1$/m);
  assert.match(metrics, /^llm_remediation_actions_total\{target="crashy",action="process",outcome="failure"\} 3$/m);
  assert.match(metrics, /^llm_remediation_alerts_total\{decision="circuit_open",source="exit"\} 1$/m);
  // Closed by hand with the token; without it, refused.
  assert.equal((await fetch(`${r.url}/api/v1/targets/crashy/circuit/close`, { method: 'POST' })).status, 401);
  const closed = await fetch(`${r.url}/api/v1/targets/crashy/circuit/close`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
  assert.deepEqual(await closed.json(), { status: 'closed', target: 'crashy' });
  assert.equal((await r.view()).recent_restarts, 0);
  r.child.kill('SIGTERM');
  await new Promise((done) => r.child.once('exit', done));
});

test('two remediators on one --storage.path: the second refuses to start, naming the directory; a lock left by a killed one is stale', { timeout: 90_000 }, async () => {
  const storage = join(dir, 'state-shared');
  // A command target: nothing to spawn, the lock alone is at stake.
  const remediation = { action: 'command', command: ['/bin/true'], port: 1 };
  const first = await remediator('shared', remediation, storage);
  const port = await freePort('127.0.0.1');
  const second = spawn(process.execPath, [cli, 'remediator', `--config.file=${join(dir, 'shared.yml')}`, `--storage.path=${storage}`, `--web.listen-address=127.0.0.1:${port}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(second);
  let err = '';
  second.stderr!.on('data', (d: Buffer) => (err += d));
  const code = await Promise.race([new Promise<number | null>((resolve) => second.once('close', resolve)), sleep(20_000).then(() => 'still running')]);
  assert.equal(code, 1, err);
  assert.ok(err.includes(`--storage.path ${storage} is in use by another remediator (pid ${first.child.pid}`), err);
  first.child.kill('SIGKILL');
  await new Promise((r) => first.child.once('exit', r));
  const third = await remediator('shared', remediation, storage);
  third.child.kill('SIGTERM');
  assert.equal(await new Promise((r) => third.child.once('exit', r)), 0);
});
