// --log.format=logfmt on the commands, as every Prometheus component has it; the stack passes it on
// to the simulator it starts.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { dirname } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../src/lib/system.ts';
import { eventually, startStack } from '../helpers/stack-child.ts';

const cli = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));

test('exporter --log.format=logfmt: key=value lines on stdout', { timeout: 30_000 }, async () => {
  const port = await freePort('127.0.0.1');
  const child = spawn(process.execPath, [cli, 'exporter', `--web.listen-address=127.0.0.1:${port}`, '--log.format=logfmt'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  try {
    const line = await eventually('the listening line', 20_000, async () => out.split('\n').find((l) => l.includes('exporter listening')));
    assert.match(line, /^ts=\d{4}-\d\d-\d\dT[\d:.]+Z level=info component=exporter msg="exporter listening" url=http:\/\/127\.0\.0\.1:\d+ targets=\[\]$/);
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
});

test('a --log.format other than json or logfmt is a usage error naming the flag', async () => {
  for (const command of ['exporter', 'sim', 'stack']) {
    const result = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      execFile(process.execPath, [cli, command, '--log.format=text'], { timeout: 20_000 }, (err, _stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stderr }));
    });
    assert.equal(result.code, 2, command);
    assert.match(result.stderr, /--log\.format: expected one of json, logfmt, got "text"/, command);
  }
});

test('stack --log.format=logfmt: the simulator it starts logs logfmt too', { timeout: 60_000 }, async () => {
  const any = '127.0.0.1:0';
  // Without Prometheus on PATH: this test needs the simulator only.
  const stack = await startStack([`--sim.listen-address=${any}`, `--exporter.listen-address=${any}`, `--remediator.listen-address=${any}`, '--sim.startup-delay=0s', '--log.format=logfmt'], { ...process.env, PATH: dirname(process.execPath) });
  try {
    const line = await eventually('the simulator\'s listening line', 30_000, async () => stack.output().split('\n').find((l) => l.includes('simulator listening')));
    assert.match(line, /^ts=\S+ level=info component=sim msg="simulator listening" url=http:\/\/127\.0\.0\.1:\d+ /);
  } finally {
    assert.equal(await stack.stop('SIGINT'), 0);
  }
});
