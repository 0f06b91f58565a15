import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startSim } from '../../src/sim/server.ts';
import { freePort } from '../../src/lib/system.ts';

const cli = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));
const sim = await startSim({ host: '127.0.0.1', port: 0, ttftMs: 10, tokensPerSecond: 500 });
const dir = await mkdtemp(join(tmpdir(), 'qs-probe-'));
after(async () => {
  await sim.close();
  await rm(dir, { recursive: true, force: true });
});

function probe(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, 'probe', ...args], { timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

test('a healthy server: a table of every probe, HEALTHY, exit 0', async () => {
  const r = await probe([`${sim.url}/v1`, '--server=vllm']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const lines = r.stdout.split('\n');
  assert.match(lines[0]!, /^http:\/\/127\.0\.0\.1:\d+\/v1  module vllm, server vllm, model Qwen\/Qwen3-0\.6B$/);
  assert.match(r.stdout, /^probe\s+status\s+latency\s+TTFT\s+tokens\/s\s+reason$/m);
  assert.match(r.stdout, /^models\s+ok\s+[\d.]+ ms$/m);
  assert.match(r.stdout, /^health\s+ok\s+[\d.]+ ms$/m);
  assert.match(r.stdout, /^chat\s+ok\s+[\d.]+ ms\s+[\d.]+ ms\s+[\d.]+$/m);
  assert.match(r.stdout, /^HEALTHY$/m);
});

test('an unhealthy server: the reason, UNHEALTHY, exit 1; --json says the same as an object', async () => {
  const gone = `http://127.0.0.1:${await freePort('127.0.0.1')}/v1`;
  const r = await probe([gone]);
  assert.equal(r.code, 1);
  assert.match(r.stdout, /^models\s+FAIL\s+[\d.]+ ms\s+connect_refused: connection refused$/m);
  assert.match(r.stdout, /^UNHEALTHY: models failed \(connect_refused\)$/m);
  const json = await probe([gone, '--json']);
  assert.equal(json.code, 1);
  const result = JSON.parse(json.stdout) as { healthy: boolean; module: string; probes: Array<{ probe: string; success: boolean; reason?: string }> };
  assert.equal(result.healthy, false);
  assert.equal(result.module, 'openai');
  assert.deepEqual(result.probes[0], { ...result.probes[0], probe: 'models', success: false, reason: 'connect_refused' });
  const ok = JSON.parse((await probe([`${sim.url}/v1`, '--json'])).stdout) as { healthy: boolean; probes: Array<{ ttft_seconds?: number; tokens_per_second?: number }> };
  assert.equal(ok.healthy, true);
  assert.ok(ok.probes[1]!.ttft_seconds! > 0 && (ok.probes[1]!.tokens_per_second ?? 1) > 0);
});

test('a hung generation is unhealthy within the --timeout; --verbose prints the log', async () => {
  const hung = await startSim({ host: '127.0.0.1', port: 0, fault: 'hang-generation' });
  try {
    const r = await probe([`${hung.url}/v1`, '--timeout=500ms', '--verbose']);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^chat\s+FAIL\s+.*no_tokens: no token before the deadline$/m);
    assert.match(r.stdout, /chat: POST http:\/\/127\.0\.0\.1:\d+\/v1\/chat\/completions \(request id qwen-sentinel-/);
  } finally {
    await hung.close();
  }
});

test('--liveness: a server that is starting or busy exits 0 (a restart would not help); a crashed one exits 1', async () => {
  const loading = await startSim({ host: '127.0.0.1', port: 0, flavor: 'llamacpp', startupDelayMs: 60_000 });
  const busy = await startSim({ host: '127.0.0.1', port: 0, flavor: 'vllm', fault: 'saturated', slots: 1 });
  try {
    const starting = await probe([`${loading.url}/v1`, '--server=llamacpp', '--timeout=1s']);
    assert.equal(starting.code, 1, 'without --liveness: unhealthy');
    assert.match(starting.stdout, /a restart would not help/);
    assert.equal((await probe([`${loading.url}/v1`, '--server=llamacpp', '--timeout=1s', '--liveness'])).code, 0);
    const saturated = await probe([`${busy.url}/v1`, '--server=vllm', '--timeout=1s', '--liveness', '--json']);
    assert.equal(saturated.code, 0);
    assert.equal((JSON.parse(saturated.stdout) as { restart_would_help: boolean }).restart_would_help, false);
    const gone = `http://127.0.0.1:${await freePort('127.0.0.1')}/v1`;
    assert.equal((await probe([gone, '--liveness'])).code, 1);
  } finally {
    await loading.close();
    await busy.close();
  }
});

test('modules from a config file, with a canary and the thinking probe', async () => {
  const file = join(dir, 'modules.yml');
  await writeFile(file, 'modules:\n  canary:\n    server: vllm\n    probes: [models, chat, thinking]\n    chat: { expect: "^OK$" }\n');
  const r = await probe([`${sim.url}/v1`, `--config.file=${file}`, '--module=canary']);
  assert.equal(r.code, 1);
  assert.match(r.stdout, /^chat\s+FAIL.*unexpected_answer: answer "I am Qwen,/m);
  assert.match(r.stdout, /^thinking\s+ok/m);
});

test('bad invocations exit 2 and say why', async () => {
  const cases: Array<[string[], RegExp]> = [
    [[], /give the server's base URL/],
    [['ftp://x'], /"ftp:\/\/x" is not an http\(s\) URL/],
    [['http://x/v1', 'http://y/v1'], /unexpected argument "http:\/\/y\/v1"/],
    [['http://x/v1', '--server=tgi'], /--server: unknown server type "tgi"/],
    [['http://x/v1', '--module=nope'], /--module: unknown module "nope"/],
    [['http://x/v1', '--module=ollama', '--server=vllm'], /--module=ollama is for server type ollama, not vllm/],
    [['http://x/v1', '--server=ollama'], /--model is required for server type ollama/],
    [['http://x/v1', '--timeout=soon'], /--timeout: not a duration: "soon"/],
    [['http://x/v1', `--config.file=${join(dir, 'missing.yml')}`], /invalid config: .*missing\.yml: cannot read: ENOENT/],
    [['http://x/v1', '--frobnicate'], /Unknown option '--frobnicate'/],
  ];
  for (const [args, message] of cases) {
    const r = await probe(args);
    assert.equal(r.code, 2, args.join(' '));
    assert.match(r.stderr, message);
  }
});
