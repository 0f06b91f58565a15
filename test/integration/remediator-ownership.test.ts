// What answers must be what was started: a restart is verified by the server answering, and a
// stranger answering on the target's port is not the server the remediator started. The `process`
// action knows its server by the listening socket its process group holds (/proc/net/tcp{,6}
// inodes against /proc/PID/fd of the group).
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseConfig, type Remediation } from '../../src/cmd/config.ts';
import { silentLogger } from '../../src/lib/log.ts';
import { freePort } from '../../src/lib/system.ts';
import { processAction as processKind } from '../../src/remediator/actions/process.ts';
import { groupLeadersRunning } from '../../src/remediator/actions/proc.ts';
import { realClock } from '../../src/remediator/clock.ts';
import { startRemediator } from '../../src/remediator/server.ts';
import { freshRecord } from '../../src/remediator/state.ts';
import { startSim } from '../../src/sim/server.ts';
import { eventually } from '../helpers/stack-child.ts';

const cli = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));
const token = 'ownership-token-0123456789';
const cleanups: Array<() => Promise<unknown> | unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

const listenOn = (port: number) =>
  new Promise<Server>((resolve, reject) => {
    const server = createServer((s) => s.destroy());
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });

test("a stranger's server on the target's port: the owned server that cannot bind is a failed restart, never `success`", { timeout: 90_000 }, async () => {
  const port = await freePort('127.0.0.1');
  // Something else answers on the port, as a model server would (the simulator, in this process).
  const stranger = await startSim({ host: '127.0.0.1', port, ttftMs: 1, tokensPerSecond: 1000 });
  cleanups.push(() => stranger.close());
  const argv = [process.execPath, cli, 'sim', `--web.listen-address=127.0.0.1:${port}`, '--log.level=error'];
  cleanups.push(() => groupLeadersRunning(argv).forEach((pid) => process.kill(-pid, 'SIGKILL')));
  const config = parseConfig({
    targets: [{ name: 'qwen3', url: `http://127.0.0.1:${port}/v1`, remediation: { action: 'process', command: argv, grace_period: '1s', startup_timeout: '30s', circuit: { max_restarts: 3, window: '15m' } } }],
  });
  const r = await startRemediator({ config, token, listen: { host: '127.0.0.1', port: 0 }, logger: silentLogger, stdio: 'ignore' });
  cleanups.push(() => r.close());
  // Its own server exits at once (EADDRINUSE); each exit is respawned until the circuit opens.
  const view = await eventually('three restarts, the last one finished', 60_000, async () => {
    const t = r.remediator.snapshot()[0]!;
    return t.restarts === 3 && t.state === 'circuit_open' ? t : undefined;
  });
  const metrics = (await (await fetch(`${r.url}/metrics`)).text()).split('\n').filter((l) => l.startsWith('llm_remediation_actions_total')).join('\n');
  assert.match(metrics, /^llm_remediation_actions_total\{target="qwen3",action="process",outcome="success"\} 0$/m, 'the stranger answering is not a successful restart');
  assert.match(metrics, /^llm_remediation_actions_total\{target="qwen3",action="process",outcome="failure"\} 3$/m, 'LLMRemediationFailed fires');
  assert.equal(view.last_action?.outcome, 'failure');
  assert.match(view.last_action!.message, /exited while starting/);
  assert.doesNotMatch(view.last_action!.message, /answering after/);
  const actions = r.remediator.recentActions();
  assert.ok(actions.every((a) => a.time_to_healthy_seconds === undefined));
});

test('process: identify() says whether the server it started holds the listening socket of the address', { timeout: 30_000 }, async () => {
  const port = await freePort('127.0.0.1');
  const listens = `require('node:net').createServer().listen(${port}, '127.0.0.1'); setInterval(() => {}, 1000);`;
  const remediation = (command: string[]) => parseConfig({ targets: [{ url: 'http://127.0.0.1:1/v1', remediation: { action: 'process', command, grace_period: '500ms' } }] }).targets[0]!.remediation as Extract<Remediation, { action: 'process' }>;
  const create = (command: string[]) => {
    const action = processKind.create(remediation(command), { target: 't', logger: silentLogger, stdio: 'ignore', record: freshRecord(), persist: async () => {}, clock: realClock, hooks: { running: () => {}, unexpectedExit: () => {} } });
    cleanups.push(() => action.stop());
    return action;
  };
  const address = { host: '127.0.0.1', port };

  // Its own server holds the port: it is what answers.
  const own = create([process.execPath, '-e', listens]);
  await own.start();
  const mine = await eventually('the server to listen', 10_000, async () => {
    const seen = await own.identify!(address);
    return seen?.ok ? seen : undefined;
  });
  assert.match(mine.message, new RegExp(`pid ${own.pid()}`));
  await own.stop();
  assert.equal((await own.identify!(address))?.ok, false, 'not running: nothing of it answers');

  // A server that does not listen, while a stranger (this test process) holds the port.
  const idle = create([process.execPath, '-e', 'setInterval(() => {}, 1000)']);
  await idle.start();
  assert.equal(await idle.identify!(address), undefined, 'nothing listens on the port: it cannot tell');
  const stranger = await listenOn(port);
  try {
    const seen = await idle.identify!(address);
    assert.equal(seen?.ok, false);
    assert.match(seen!.message, new RegExp(`port ${port} .*not the server the remediator started.*pid ${process.pid}`));
    // Another address of the same port is not the target's.
    assert.equal(await idle.identify!({ host: '127.0.0.2', port }), undefined);
  } finally {
    stranger.close();
  }
  await idle.stop();
});

test('process: a server started through a shell whose child holds the port is the group\'s', { timeout: 30_000 }, async () => {
  const port = await freePort('127.0.0.1');
  const child = `require('node:net').createServer().listen(${port}, '127.0.0.1'); setInterval(() => {}, 1000);`;
  const command = ['/bin/sh', '-c', `${JSON.stringify(process.execPath)} -e ${JSON.stringify(child)}; sleep 300`];
  const config = parseConfig({ targets: [{ url: 'http://127.0.0.1:1/v1', remediation: { action: 'process', command, grace_period: '500ms' } }] }).targets[0]!.remediation as Extract<Remediation, { action: 'process' }>;
  const action = processKind.create(config, { target: 't', logger: silentLogger, stdio: 'ignore', record: freshRecord(), persist: async () => {}, clock: realClock, hooks: { running: () => {}, unexpectedExit: () => {} } });
  cleanups.push(() => action.stop());
  await action.start();
  const seen = await eventually('the child to listen', 10_000, async () => ((await action.identify!({ host: 'localhost', port }))?.ok ? true : undefined));
  assert.equal(seen, true);
  await action.stop();
});

test('process: identify() reads IPv6 listeners too (/proc/net/tcp6), and a dual-stack :: listener answers for 127.0.0.1', { timeout: 30_000 }, async (t) => {
  const port = await freePort('127.0.0.1');
  const listen6 = (host: string) =>
    new Promise<Server | undefined>((resolve) => {
      const server = createServer((s) => s.destroy());
      server.once('error', () => resolve(undefined));
      server.listen(port, host, () => resolve(server));
    });
  const config = parseConfig({ targets: [{ url: 'http://127.0.0.1:1/v1', remediation: { action: 'process', command: [process.execPath, '-e', 'setInterval(() => {}, 1000)'], grace_period: '500ms' } }] }).targets[0]!.remediation as Extract<Remediation, { action: 'process' }>;
  const idle = processKind.create(config, { target: 't', logger: silentLogger, stdio: 'ignore', record: freshRecord(), persist: async () => {}, clock: realClock, hooks: { running: () => {}, unexpectedExit: () => {} } });
  cleanups.push(() => idle.stop());
  await idle.start();
  const loopback = await listen6('::1');
  if (!loopback) return t.skip('no IPv6 loopback here');
  try {
    const seen = await idle.identify!({ host: '::1', port });
    assert.equal(seen?.ok, false);
    assert.match(seen!.message, new RegExp(`pid ${process.pid}`));
    assert.equal(await idle.identify!({ host: '127.0.0.1', port }), undefined, 'an IPv6 loopback listener is not 127.0.0.1\'s');
  } finally {
    await new Promise((r) => loopback.close(r));
  }
  const any = await listen6('::');
  assert.ok(any);
  try {
    const seen = await idle.identify!({ host: '127.0.0.1', port });
    assert.equal(seen?.ok, false, 'a listener on :: takes IPv4 too');
    assert.match(seen!.message, new RegExp(`pid ${process.pid}`));
  } finally {
    any.close();
  }
  await idle.stop();
});
