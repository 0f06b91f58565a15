// The systemd and docker actions against stand-ins of what they talk to: a `systemctl` on PATH
// that records its calls and answers `show` from a state file, and a Docker Engine API on a unix
// socket. What they report drives the `starting` stage: a server somebody else just started.
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { parseConfig } from '../../src/config/load.ts';
import type { Remediation } from '../../src/config/schema.ts';
import { silentLogger } from '../../src/log.ts';
import { actions } from '../../src/remediator/actions/index.ts';
import { realClock } from '../../src/remediator/clock.ts';
import { freshRecord } from '../../src/remediator/state.ts';

const dir = await mkdtemp(join(tmpdir(), 'qs-managers-'));
after(() => rm(dir, { recursive: true, force: true }));

function create(r: Record<string, unknown>) {
  const remediation = parseConfig({ targets: [{ url: 'http://127.0.0.1:1/v1', remediation: r }] }).targets[0]!.remediation! as Remediation;
  const kind = actions[remediation.action];
  return kind.create(remediation as never, { target: 't', logger: silentLogger, record: freshRecord(), persist: async () => {}, clock: realClock, hooks: { running: () => {}, unexpectedExit: () => {} } });
}

test('systemd: `systemctl restart UNIT`; ActiveState and ActiveEnterTimestamp say when it is starting', async () => {
  const bin = join(dir, 'bin');
  await import('node:fs/promises').then((fs) => fs.mkdir(bin));
  const calls = join(dir, 'systemctl.calls');
  const state = join(dir, 'unit.state');
  // The stand-in: logs its argv; `show` prints the state file; `restart` of a unit named
  // broken.service fails as systemctl does when a unit cannot start.
  await writeFile(join(bin, 'systemctl'), `#!/bin/sh
echo "$*" >> ${JSON.stringify(calls)}
case "$1" in
  --user) shift ;;
esac
case "$1" in
  restart) [ "$2" = broken.service ] && { echo "Job for broken.service failed." >&2; exit 1; }; exit 0 ;;
  show) cat ${JSON.stringify(state)}; exit 0 ;;
esac
exit 2
`);
  await chmod(join(bin, 'systemctl'), 0o755);
  const path = process.env.PATH;
  process.env.PATH = `${bin}:${path}`;
  try {
    const action = create({ action: 'systemd', unit: 'vllm.service' });
    assert.deepEqual(await action.restart({ alertname: 'LLMServerDown', fingerprint: 'f' }), { ok: true, message: 'systemctl restart vllm.service' });
    await writeFile(state, 'ActiveState=activating\nSubState=start\nActiveEnterTimestamp=@1796000000\n');
    assert.deepEqual(await action.starting(), { starting: true, since: 1796000000_000, detail: 'unit vllm.service activating/start' });
    await writeFile(state, 'ActiveState=active\nSubState=running\nActiveEnterTimestamp=@1796000100\n');
    assert.deepEqual(await action.starting(), { starting: false, since: 1796000100_000, detail: 'unit vllm.service active/running' });
    const broken = await create({ action: 'systemd', unit: 'broken.service', user: true }).restart({ alertname: 'x', fingerprint: 'f' });
    assert.equal(broken.ok, false);
    assert.match(broken.message, /exit code 1: Job for broken\.service failed\./);
    assert.deepEqual((await readFile(calls, 'utf8')).trim().split('\n'), [
      'restart vllm.service',
      'show vllm.service --property=ActiveState,SubState,ActiveEnterTimestamp --timestamp=unix',
      'show vllm.service --property=ActiveState,SubState,ActiveEnterTimestamp --timestamp=unix',
      '--user restart broken.service',
    ]);
  } finally {
    process.env.PATH = path;
  }
});

test('docker: restarts the container through the Engine API on its unix socket; StartedAt and health say starting', async () => {
  const socket = join(dir, 'docker.sock');
  const seen: string[] = [];
  let health = 'starting';
  const engine = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    if (req.method === 'POST' && req.url === '/containers/vllm/restart?t=30') return void res.writeHead(204).end();
    if (req.method === 'POST' && req.url?.startsWith('/containers/gone/restart')) return void res.writeHead(404, { 'content-type': 'application/json' }).end('{"message":"No such container: gone"}');
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
    await action.stop();
  } finally {
    engine.close();
  }
  // No engine at all: a failure that says why, not a hang.
  const missing = await create({ action: 'docker', container: 'vllm', socket: join(dir, 'none.sock') }).restart({ alertname: 'x', fingerprint: 'f' });
  assert.equal(missing.ok, false);
  assert.match(missing.message, /ENOENT|connect/);
});
