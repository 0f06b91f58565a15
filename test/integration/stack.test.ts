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
import { descendants, eventually, isAlive, startStack } from '../helpers/stack-child.ts';

const cli = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));

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

// --sim.flavor: the simulator speaks another server's dialect, and the target gets its server type.
for (const [flavor, model, health] of [['llamacpp', '/models/Qwen3-0.6B-Q8_0.gguf', '{"status":"ok"}'], ['ollama', 'qwen3:0.6b', '']] as const) {
  test(`stack --sim.flavor=${flavor}: probed up with the ${flavor} module`, { timeout: 60_000 }, async () => {
    const env = { ...process.env, PATH: dirname(process.execPath) };
    const any = '127.0.0.1:0';
    const stack = await startStack([`--sim.flavor=${flavor}`, `--sim.listen-address=${any}`, `--exporter.listen-address=${any}`, `--remediator.listen-address=${any}`, '--sim.startup-delay=1s', '--probe.interval=2s', '--log.level=warn'], env);
    try {
      assert.match(stack.output(), new RegExp(`the simulator speaking ${flavor}`));
      await eventually(`the ${flavor} simulator to be probed up`, 30_000, async () => {
        const metrics = await (await fetch(`${stack.urls.exporter}/metrics`)).text();
        return metrics.includes(`llm_server_up{target="qwen3",model="${model}"} 1`) ? true : undefined;
      });
      const sim = stack.urls['model server (simulator)']!.replace(/\/v1$/, '');
      if (health) assert.equal(await (await fetch(`${sim}/health`)).text(), health);
      else assert.equal(await (await fetch(`${sim}/`)).text(), 'Ollama is running');
    } finally {
      assert.equal(await stack.stop('SIGINT'), 0);
    }
  });
}

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

// Every address is checked before anything starts: a taken port is a clear error, never a
// stranger probed (or scraped) as if it were ours.
for (const component of ['sim', 'exporter', 'remediator', 'prometheus', 'alertmanager']) {
  test(`a taken ${component} port fails the stack before anything starts`, { timeout: 30_000 }, async () => {
    const busy = await occupied();
    try {
      const args = ['sim', 'exporter', 'remediator', 'prometheus', 'alertmanager'].map((c) => `--${c}.listen-address=${c === component ? busy.address : '127.0.0.1:0'}`);
      const result = await failingStack(args);
      assert.equal(result.code, 1, result.out);
      assert.match(result.out, new RegExp(`^qwen-sentinel stack: cannot listen on ${busy.address}: address already in use$`, 'm'));
      assert.doesNotMatch(result.out, /model server started/);
      assert.deepEqual(result.started, []);
    } finally {
      busy.close();
    }
  });
}

test('Prometheus dying at start-up fails the stack, with its log, and stops what had started', { timeout: 60_000 }, async () => {
  // Stand-ins that fail the way a broken install does; the real ones are exercised in test/e2e.
  const bin = await mkdtemp(join(tmpdir(), 'qs-fakebin-'));
  try {
    for (const name of ['prometheus', 'prometheus-alertmanager']) {
      await writeFile(join(bin, name), `#!/bin/sh\necho "${name}: boom: cannot open storage" >&2\nexit 1\n`, { mode: 0o755 });
    }
    const env = { ...process.env, PATH: `${bin}:${dirname(process.execPath)}` };
    const any = '127.0.0.1:0';
    const result = await failingStack(['sim', 'exporter', 'remediator', 'prometheus', 'alertmanager'].map((c) => `--${c}.listen-address=${any}`), env);
    assert.equal(result.code, 1, result.out);
    assert.match(result.out, /^qwen-sentinel stack: (prometheus|alertmanager) exited at start-up; the end of its log:\n(prometheus|prometheus-alertmanager): boom: cannot open storage$/m);
    assert.doesNotMatch(result.out, /stack is running/);
    const simPid = Number(/"pid":(\d+),[^\n]*"msg":"model server started"/.exec(result.out)?.[1]);
    assert.ok(simPid > 0, result.out);
    await eventually('everything it started to be gone', 10_000, async () => ([simPid, ...result.started].filter(isAlive).length === 0 ? true : undefined));
  } finally {
    await rm(bin, { recursive: true, force: true });
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
      execFile(process.execPath, [cli, 'remediator', `--config.file=${join(dir, 'sentinel.yml')}`, `--web.listen-address=${busy.address}`, `--storage.path=${join(dir, 'state')}`], (error, _out, err) => resolve({ code: error ? Number(error.code) : 0, err }));
    });
    assert.equal(result.code, 1);
    assert.match(result.err, /cannot listen on .*: address already in use/);
    assert.equal(existsSync(marker), false, 'no model server was started');
  } finally {
    busy.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('SIGHUP (a closed terminal) stops the stack and everything it started', { timeout: 60_000 }, async () => {
  const env = { ...process.env, PATH: dirname(process.execPath) };
  const any = '127.0.0.1:0';
  const stack = await startStack([`--sim.listen-address=${any}`, `--exporter.listen-address=${any}`, `--remediator.listen-address=${any}`, '--sim.startup-delay=0s', '--log.level=warn'], env);
  await eventually('the simulator to be started', 10_000, async () => (descendants(stack.child.pid!).length > 0 ? true : undefined));
  const started = descendants(stack.child.pid!);
  assert.equal(await stack.stop('SIGHUP'), 0);
  await eventually('everything it started to be gone', 10_000, async () => (started.filter(isAlive).length === 0 ? true : undefined));
});

test('the simulator does not take a port something already listens on by default: it says which one it chose', async () => {
  const { defaultSimAddress } = await import('../../src/cmd/stack/main.ts');
  const busy = await occupied();
  try {
    const [host, port] = busy.address.split(':') as [string, string];
    const taken = await defaultSimAddress({ host, port: Number(port) });
    assert.notEqual(taken.address.port, Number(port));
    assert.match(taken.note!, new RegExp(`^port ${port} is taken \\(a model server already running\\?\\): the simulator listens on 127\\.0\\.0\\.1:${taken.address.port} instead$`));
  } finally {
    busy.close();
  }
  const free = await occupied();
  const [host, port] = free.address.split(':') as [string, string];
  free.close();
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(await defaultSimAddress({ host, port: Number(port) }), { address: { host, port: Number(port) }, note: undefined });
});
