// The simulator as a real child process, started through the CLI (`qwen-sentinel sim`):
// exit codes for crash, SIGTERM and usage errors.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const cli = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));
const children = new Set<ChildProcess>();
after(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

interface Sim {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Resolves with the exit code (or signal), rejects after `ms`. */
  exit: (ms?: number) => Promise<number | string>;
}

function spawnSim(args: string[]): Sim {
  const child = spawn(process.execPath, [cli, 'sim', '--web.listen-address=127.0.0.1:0', '--ttft=10ms', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exit: (ms = 10_000) => within(exited, ms, `child ${child.pid} to exit`),
  };
}

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Waits for the "simulator listening" log line and returns its url. */
async function listening(sim: Sim): Promise<string> {
  return within(
    new Promise<string>((resolve, reject) => {
      const check = () => {
        const line = sim.stdout().split('\n').find((l) => l.includes('"simulator listening"'));
        if (line) return resolve(JSON.parse(line).url);
        if (sim.child.exitCode !== null) return reject(new Error(`exited ${sim.child.exitCode}: ${sim.stderr()}`));
        setTimeout(check, 20);
      };
      check();
    }),
    10_000,
    'the simulator to listen',
  );
}

test('logs a JSON "simulator listening" line, then SIGTERM exits 0 promptly even with a hung request open', async () => {
  const sim = spawnSim(['--fault=hang']);
  const url = await listening(sim);
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
  const line = JSON.parse(sim.stdout().split('\n').find((l) => l.includes('simulator listening'))!);
  assert.equal(line.component, 'sim');
  const hung = fetch(`${url}/health`, { signal: AbortSignal.timeout(5000) }).catch(() => 'closed');
  await new Promise((r) => setTimeout(r, 100));
  sim.child.kill('SIGTERM');
  assert.equal(await sim.exit(3000), 0);
  assert.equal(await hung, 'closed');
});

test('--fault=crash exits non-zero at once, logging why', async () => {
  const sim = spawnSim(['--fault=crash']);
  assert.equal(await sim.exit(), 1);
  assert.match(sim.stdout(), /crash fault/);
});

test('POST /sim/fault crash answers 200, then the process exits non-zero', async () => {
  const sim = spawnSim([]);
  const url = await listening(sim);
  const ok = await fetch(`${url}/v1/models`, { signal: AbortSignal.timeout(5000) });
  assert.equal(ok.status, 200);
  const res = await fetch(`${url}/sim/fault`, { method: 'POST', body: '{"fault":"crash"}', signal: AbortSignal.timeout(5000) });
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { fault: 'crash' });
  assert.equal(await sim.exit(), 1);
});

for (const [flag, pattern] of [
  ['--fault=explode', /--fault.*explode.*none, hang, hang-generation, error, engine-dead, slow, saturated, paused, asleep, crash/],
  ['--ttft=soon', /--ttft.*not a duration/],
  ['--startup-delay=5 seconds', /--startup-delay/],
  ['--tokens-per-second=0', /--tokens-per-second.*positive/],
  ['--no-such-flag', /no-such-flag/],
] as const) {
  test(`bad flag ${flag} is a usage error (exit 2)`, async () => {
    const sim = spawnSim([flag]);
    assert.equal(await sim.exit(), 2);
    assert.match(sim.stderr(), /^qwen-sentinel sim: .+\nRun "qwen-sentinel sim --help" for the flags\.\n$/);
    assert.match(sim.stderr(), pattern);
  });
}
