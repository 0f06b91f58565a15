import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { requireBinary } from '../helpers/require-binary.ts';
import { descendants, eventually, isAlive, startStack } from '../helpers/stack-child.ts';

const cli = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));
const prometheus = requireBinary('prometheus');

// The embedded default without Prometheus and Alertmanager on PATH: it says how to get them,
// runs the rest, and stops what it started.
test('stack without Prometheus: says how to get it, runs the rest, stops everything on Ctrl-C', { timeout: 60_000 }, async () => {
  const env = { ...process.env, PATH: dirname(process.execPath) };
  const any = '127.0.0.1:0';
  const stack = await startStack([`--sim.listen-address=${any}`, `--exporter.listen-address=${any}`, `--remediator.listen-address=${any}`, '--sim.startup-delay=0s', '--probe.interval=1s', '--log.level=warn'], env);
  try {
    assert.match(stack.output(), /Prometheus and Alertmanager are not on PATH/);
    assert.match(stack.output(), /apt-get install prometheus prometheus-alertmanager/);
    assert.deepEqual(Object.keys(stack.urls).sort(), ['exporter', 'model server (simulator)', 'remediator']);
    for (const url of Object.values(stack.urls)) assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
    await eventually('the simulated server to be probed up', 30_000, async () => {
      const metrics = await (await fetch(`${stack.urls.exporter}/metrics`)).text();
      return /^llm_server_up\{target="qwen3",model="Qwen\/Qwen3-0.6B"\} 1$/m.test(metrics) ? true : undefined;
    });
    const models = await (await fetch(`${stack.urls['model server (simulator)']}/v1/models`)).json() as { data: Array<{ id: string }> };
    assert.equal(models.data[0]!.id, 'Qwen/Qwen3-0.6B');
  } finally {
    const started = descendants(stack.child.pid!);
    assert.equal(await stack.stop('SIGINT'), 0);
    assert.ok(started.length >= 1);
    assert.deepEqual(started.filter(isAlive), []);
  }
});

/** Runs the stack expecting it to fail at start-up; returns its exit code and output. */
function failingStack(args: string[], env: NodeJS.ProcessEnv = process.env) {
  const child = spawn(process.execPath, [cli, 'stack', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d));
  child.stderr.on('data', (d: Buffer) => (out += d));
  // Sample its descendants while it runs: whatever it started must be gone once it has exited.
  const seen = new Set<number>();
  const sampler = setInterval(() => descendants(child.pid!).forEach((p) => seen.add(p)), 20);
  return new Promise<{ code: number | null; out: string; started: number[] }>((resolve) =>
    child.once('exit', (code) => {
      clearInterval(sampler);
      resolve({ code, out, started: [...seen] });
    }),
  );
}

async function occupied(): Promise<{ address: string; close: () => void }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { address: `127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => server.close() };
}

test('a taken port fails the stack with a clear message and leaves nothing running', { timeout: 60_000 }, async () => {
  const busy = await occupied();
  try {
    const env = { ...process.env, PATH: dirname(process.execPath) };
    const any = '127.0.0.1:0';
    const result = await failingStack([`--sim.listen-address=${any}`, `--remediator.listen-address=${any}`, `--exporter.listen-address=${busy.address}`], env);
    assert.equal(result.code, 1, result.out);
    assert.match(result.out, new RegExp(`qwen-sentinel stack: cannot listen on ${busy.address}: address already in use`));
    // The remediator had started the simulator before the exporter failed: its log names the pid.
    const simPid = Number(/"pid":(\d+),[^\n]*"msg":"model server started"/.exec(result.out)?.[1]);
    assert.ok(simPid > 0, result.out);
    await eventually('everything it started to be gone', 10_000, async () => ([simPid, ...result.started].filter(isAlive).length === 0 ? true : undefined));
  } finally {
    busy.close();
  }
});

test('Prometheus failing to start fails the stack, with its log, and leaves nothing running', { skip: !prometheus && 'prometheus missing', timeout: 90_000 }, async () => {
  const busy = await occupied();
  try {
    const any = '127.0.0.1:0';
    const result = await failingStack([`--sim.listen-address=${any}`, `--remediator.listen-address=${any}`, `--exporter.listen-address=${any}`, `--alertmanager.listen-address=${any}`, `--prometheus.listen-address=${busy.address}`, '--log.level=error']);
    assert.equal(result.code, 1, result.out);
    assert.match(result.out, /qwen-sentinel stack: prometheus exited at start-up; the end of its log:\n.*address already in use/s);
    assert.doesNotMatch(result.out, /stack is running/);
    await eventually('everything it started to be gone', 10_000, async () => (result.started.filter(isAlive).length === 0 ? true : undefined));
  } finally {
    busy.close();
  }
});

test('the remediator refuses a taken port before starting any model server', { timeout: 30_000 }, async () => {
  const busy = await occupied();
  const dir = await mkdtemp(join(tmpdir(), 'qs-stack-'));
  try {
    await writeFile(join(dir, 'token'), 'a-token-long-enough-1234');
    const marker = join(dir, 'started');
    await writeFile(join(dir, 'sentinel.yml'), stringify({
      targets: [{ url: 'http://127.0.0.1:1/v1', remediation: { action: 'process', command: [process.execPath, '-e', `require('fs').writeFileSync(${JSON.stringify(marker)}, '1'); setInterval(() => {}, 1000)`] } }],
      remediator: { auth: { bearer_token_file: join(dir, 'token') } },
    }));
    const result = await new Promise<{ code: number | null; err: string }>((resolve) => {
      execFile(process.execPath, [cli, 'remediator', `--config.file=${join(dir, 'sentinel.yml')}`, `--web.listen-address=${busy.address}`], (error, _out, err) => resolve({ code: error ? Number(error.code) : 0, err }));
    });
    assert.equal(result.code, 1);
    assert.match(result.err, /cannot listen on .*: address already in use/);
    assert.equal(existsSync(marker), false, 'no model server was started');
  } finally {
    busy.close();
    await rm(dir, { recursive: true, force: true });
  }
});
