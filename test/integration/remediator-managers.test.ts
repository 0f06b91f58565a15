// The systemd and docker actions against stand-ins of what they talk to: a `systemctl` on PATH
// that records its calls and answers `show` from a state file, and a Docker Engine API on a unix
// socket. What they report drives the `starting` stage: a server somebody else just started.
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { parseConfig } from '../../src/cmd/config.ts';
import type { Remediation } from '../../src/cmd/config.ts';
import { silentLogger } from '../../src/lib/log.ts';
import { actions } from '../../src/remediator/actions/index.ts';
import { userManagerEnv } from '../../src/remediator/actions/systemd.ts';
import { realClock } from '../../src/remediator/clock.ts';
import { freshRecord } from '../../src/remediator/state.ts';

const dir = await mkdtemp(join(tmpdir(), 'qs-managers-'));
after(() => rm(dir, { recursive: true, force: true }));

function create(r: Record<string, unknown>) {
  const remediation = parseConfig({ targets: [{ url: 'http://127.0.0.1:1/v1', remediation: r }] }).targets[0]!.remediation! as Remediation;
  const kind = actions[remediation.action];
  return kind.create(remediation as never, { target: 't', logger: silentLogger, record: freshRecord(), persist: async () => {}, clock: realClock, hooks: { running: () => {}, unexpectedExit: () => {} } });
}

test('systemd: `systemctl restart UNIT`; ActiveState and ActiveEnterTimestampMonotonic say when it is starting', async () => {
  const bin = join(dir, 'bin');
  await import('node:fs/promises').then((fs) => fs.mkdir(bin));
  const calls = join(dir, 'systemctl.calls');
  const state = join(dir, 'unit.state');
  // The stand-in: logs its argv and the bus variables it got; `show` prints the state file, and
  // refuses --timestamp= as systemd before 251 does; `restart` of broken.service fails as
  // systemctl does when a unit cannot start.
  await writeFile(join(bin, 'systemctl'), `#!/bin/sh
echo "$* | XDG_RUNTIME_DIR=$XDG_RUNTIME_DIR DBUS_SESSION_BUS_ADDRESS=$DBUS_SESSION_BUS_ADDRESS" >> ${JSON.stringify(calls)}
case "$1" in
  --user) shift ;;
esac
case "$*" in
  *--timestamp=*) echo "Unknown option --timestamp" >&2; exit 1 ;;
esac
case "$1" in
  restart) [ "$2" = broken.service ] && { echo "Job for broken.service failed." >&2; exit 1; }; exit 0 ;;
  show) cat ${JSON.stringify(state)}; exit 0 ;;
esac
exit 2
`);
  await chmod(join(bin, 'systemctl'), 0o755);
  const saved = { PATH: process.env.PATH, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR, DBUS_SESSION_BUS_ADDRESS: process.env.DBUS_SESSION_BUS_ADDRESS };
  process.env.PATH = `${bin}:${saved.PATH}`;
  process.env.XDG_RUNTIME_DIR = '/run/user/4321';
  process.env.DBUS_SESSION_BUS_ADDRESS = 'unix:path=/run/user/4321/bus';
  // The unit entered its state this long ago, on systemd's clock (CLOCK_MONOTONIC, µs).
  const enteredAgo = (ms: number) => Number(process.hrtime.bigint() / 1000n) - ms * 1000;
  try {
    const action = create({ action: 'systemd', unit: 'vllm.service' });
    assert.deepEqual(await action.restart({ alertname: 'LLMServerDown', fingerprint: 'f' }), { ok: true, message: 'systemctl restart vllm.service' });
    await writeFile(state, 'ActiveState=activating\nSubState=start\nActiveEnterTimestampMonotonic=0\n');
    assert.deepEqual(await action.starting(), { starting: true, detail: 'unit vllm.service activating/start' }, 'never active yet: no start time');
    await writeFile(state, `ActiveState=active\nSubState=running\nActiveEnterTimestampMonotonic=${enteredAgo(30_000)}\n`);
    const before = Date.now();
    const running = await action.starting();
    assert.equal(running?.starting, false);
    assert.ok(running?.since !== undefined && running.since <= before - 30_000 && running.since > before - 40_000, `active since 30 s ago, read as ${before - (running?.since ?? 0)} ms ago`);
    // It failed 20 s after a start: that start no longer counts.
    await writeFile(state, `ActiveState=failed\nSubState=failed\nActiveEnterTimestampMonotonic=${enteredAgo(20_000)}\n`);
    assert.deepEqual(await action.starting(), { starting: false, detail: 'unit vllm.service failed/failed' });
    const broken = await create({ action: 'systemd', unit: 'broken.service', user: true }).restart({ alertname: 'x', fingerprint: 'f' });
    assert.equal(broken.ok, false);
    assert.match(broken.message, /exit code 1: Job for broken\.service failed\./);
    const show = 'show vllm.service --property=ActiveState,SubState,ActiveEnterTimestampMonotonic | XDG_RUNTIME_DIR= DBUS_SESSION_BUS_ADDRESS=';
    assert.deepEqual((await readFile(calls, 'utf8')).trim().split('\n'), [
      'restart vllm.service | XDG_RUNTIME_DIR= DBUS_SESSION_BUS_ADDRESS=',
      show,
      show,
      show,
      // The user's manager is reached through these; the system's needs neither.
      '--user restart broken.service | XDG_RUNTIME_DIR=/run/user/4321 DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/4321/bus',
    ]);
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
  // Run as a service, the remediator may have no XDG_RUNTIME_DIR: the user's default one.
  assert.deepEqual(userManagerEnv({}), { XDG_RUNTIME_DIR: `/run/user/${process.getuid!()}` });
});

test('docker: restarts the container through the Engine API on its unix socket; StartedAt and health say starting', async () => {
  const socket = join(dir, 'docker.sock');
  const seen: string[] = [];
  let health = 'starting';
  const recently = new Date(Date.now() - 20_000).toISOString();
  const engine = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    if (req.method === 'POST' && req.url === '/containers/vllm/restart?t=30') return void res.writeHead(204).end();
    if (req.method === 'POST' && req.url?.startsWith('/containers/gone/restart')) return void res.writeHead(404, { 'content-type': 'application/json' }).end('{"message":"No such container: gone"}');
    if (req.method === 'GET' && req.url === '/containers/dead/json') {
      return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ Id: 'def', State: { Status: 'exited', Running: false, Restarting: false, ExitCode: 1, StartedAt: recently, Health: { Status: 'unhealthy' } } }));
    }
    if (req.method === 'GET' && req.url === '/containers/vllm/json') {
      return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ Id: 'abc', State: { Status: 'running', Running: true, Restarting: false, StartedAt: '2026-11-30T03:00:00.123456789Z', Health: { Status: health } } }));
    }
    res.writeHead(404).end('{"message":"page not found"}');
  });
  await new Promise<void>((resolve) => engine.listen(socket, resolve));
  try {
    const action = create({ action: 'docker', container: 'vllm', socket });
    assert.deepEqual(await action.restart({ alertname: 'LLMServerDown', fingerprint: 'f' }), { ok: true, message: 'docker restart vllm' });
    assert.deepEqual(await action.starting(), { starting: true, since: Date.parse('2026-11-30T03:00:00.123Z'), detail: 'container vllm running (health starting)' });
    health = 'healthy';
    assert.equal((await action.starting())?.starting, false);
    const gone = await create({ action: 'docker', container: 'gone', socket }).restart({ alertname: 'x', fingerprint: 'f' });
    assert.deepEqual(gone, { ok: false, message: 'docker restart gone: HTTP 404: No such container: gone' });
    assert.deepEqual(seen.slice(0, 3), ['POST /containers/vllm/restart?t=30', 'GET /containers/vllm/json', 'GET /containers/vllm/json']);
    // It exited 20 s after it started: that start no longer counts.
    assert.deepEqual(await create({ action: 'docker', container: 'dead', socket }).starting(), { starting: false, detail: 'container dead exited (health unhealthy)' });
    // The remediator stops every action on shutdown, then once more: the second is harmless.
    await action.stop();
    await action.stop();
  } finally {
    engine.close();
  }
  // No engine at all: a failure that says why, not a hang.
  const missing = await create({ action: 'docker', container: 'vllm', socket: join(dir, 'none.sock') }).restart({ alertname: 'x', fingerprint: 'f' });
  assert.equal(missing.ok, false);
  assert.match(missing.message, /ENOENT|connect/);
});

test('every action may be stopped twice: the remediator stops them all on shutdown, then again', async () => {
  const kinds = [
    create({ action: 'systemd', unit: 'vllm.service' }),
    create({ action: 'docker', container: 'vllm', socket: join(dir, 'none.sock') }),
    create({ action: 'command', command: ['/bin/true'] }),
    create({ action: 'process', command: [process.execPath, '-e', 'setInterval(() => {}, 1000)'], grace_period: '2s' }),
  ];
  for (const action of kinds) {
    await action.start();
    await action.stop();
    await action.stop();
    assert.equal(action.pid(), undefined, `${action.kind}: nothing left running`);
  }
});

test('systemd: identify() checks that the unit\'s processes hold the listening socket; a unit that is not up is not what answers', async () => {
  const { spawn } = await import('node:child_process');
  const { createServer: listener } = await import('node:net');
  const { freePort } = await import('../../src/lib/system.ts');
  const bin = join(dir, 'bin-identify');
  await import('node:fs/promises').then((fs) => fs.mkdir(bin));
  const state = join(dir, 'identify.state');
  await writeFile(join(bin, 'systemctl'), `#!/bin/sh\n[ "$1" = show ] && cat ${JSON.stringify(state)}\nexit 0\n`);
  await chmod(join(bin, 'systemctl'), 0o755);
  const port = await freePort('127.0.0.1');
  const address = { host: '127.0.0.1', port };
  // The unit's main process: a server on the port, or one that does not listen.
  const listens = spawn(process.execPath, ['-e', `require('node:net').createServer().listen(${port}, '127.0.0.1', () => console.log('up')); setInterval(() => {}, 1000);`], { stdio: ['ignore', 'pipe', 'ignore'] });
  const idle = spawn('sleep', ['300'], { stdio: 'ignore' });
  await new Promise((r) => listens.stdout!.once('data', r));
  const action = create({ action: 'systemd', unit: 'vllm.service', systemctl: join(bin, 'systemctl') });
  try {
    await writeFile(state, `ActiveState=active\nMainPID=${listens.pid}\nControlGroup=\n`);
    const held = await action.identify!(address);
    assert.equal(held?.ok, true, held?.message);
    assert.match(held!.message, /unit vllm\.service/);
    listens.kill('SIGKILL');
    await new Promise((r) => listens.once('exit', r));
    // A stranger (this test process) holds the port; the unit's process does not.
    const stranger = await new Promise<import('node:net').Server>((resolve) => {
      const s = listener();
      s.listen(port, '127.0.0.1', () => resolve(s));
    });
    try {
      await writeFile(state, `ActiveState=active\nMainPID=${idle.pid}\nControlGroup=\n`);
      const other = await action.identify!(address);
      assert.equal(other?.ok, false);
      assert.match(other!.message, new RegExp(`port ${port} .*not unit vllm\\.service.*pid ${process.pid}`));
      await writeFile(state, 'ActiveState=failed\nMainPID=0\nControlGroup=\n');
      const failed = await action.identify!(address);
      assert.equal(failed?.ok, false);
      assert.match(failed!.message, /unit vllm\.service is failed/);
      // Active without a main process (Type=oneshot, RemainAfterExit): it cannot tell.
      await writeFile(state, 'ActiveState=active\nMainPID=0\nControlGroup=\n');
      assert.equal(await action.identify!(address), undefined);
    } finally {
      stranger.close();
    }
  } finally {
    listens.kill('SIGKILL');
    idle.kill('SIGKILL');
  }
});

test('docker: identify() accepts a running container that publishes the port; a container that is not running is not what answers', async () => {
  const socket = join(dir, 'docker-identify.sock');
  let container: object = {};
  const engine = createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/containers/vllm/json') return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(container));
    res.writeHead(404).end('{"message":"page not found"}');
  });
  await new Promise<void>((resolve) => engine.listen(socket, resolve));
  const action = create({ action: 'docker', container: 'vllm', socket });
  try {
    container = { State: { Status: 'running', Running: true, Pid: 0 }, HostConfig: { NetworkMode: 'bridge' }, NetworkSettings: { Ports: { '8000/tcp': [{ HostIp: '0.0.0.0', HostPort: '18000' }, { HostIp: '::', HostPort: '18000' }] } } };
    const published = await action.identify!({ host: '127.0.0.1', port: 18000 });
    assert.deepEqual(published, { ok: true, message: 'port 18000 is published by container vllm (8000/tcp)' });
    assert.equal(await action.identify!({ host: '127.0.0.1', port: 18001 }), undefined, 'not a port it publishes: the URL may reach it another way');
    container = { State: { Status: 'exited', Running: false, Pid: 0 }, HostConfig: { NetworkMode: 'bridge' }, NetworkSettings: { Ports: {} } };
    const exited = await action.identify!({ host: '127.0.0.1', port: 18000 });
    assert.equal(exited?.ok, false);
    assert.match(exited!.message, /container vllm is exited/);
  } finally {
    await action.stop();
    engine.close();
  }
});
