// The whole loop around a real model server: llama.cpp's llama-server (tiny Qwen3 model), owned
// by the remediator's `process` action, probed by the exporter, judged by the real Prometheus,
// routed by the real Alertmanager. SIGKILL -> LLMServerDown -> webhook -> restart -> healthy,
// exactly once: its loading phase after the restart ("starting") restarts nothing.
import assert, { AssertionError } from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseConfig } from '../../src/cmd/config.ts';
import { Teardown } from '../../src/lib/lifecycle.ts';
import { silentLogger } from '../../src/lib/log.ts';
import { startLoop, type RunningLoop } from '../../src/cmd/stack/loop.ts';
import { freePort } from '../../src/lib/system.ts';
import { llamaServerCommand, requireLlamaServer } from '../helpers/llama-server.ts';
import { requireBinary } from '../helpers/require-binary.ts';
import { eventually, isAlive } from '../helpers/stack-child.ts';

const files = requireLlamaServer();
const prometheus = requireBinary('prometheus');
const alertmanager = requireBinary('prometheus-alertmanager');
const skip = (!files || !prometheus || !alertmanager) && 'llama-server, Prometheus or Alertmanager missing';

const teardown = new Teardown();
after(() => teardown.run());

interface TargetView { pid: number | null; restarts: number; unexpected_exits: number; last_action: { alertname: string; outcome: string } | null }

test('SIGKILL of a real llama-server: restarted once through Prometheus and Alertmanager, healthy again', { skip, timeout: 300_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'qs-real-loop-'));
  teardown.add(() => rm(dir, { recursive: true, force: true }));
  const tokenFile = join(dir, 'webhook-token');
  await writeFile(tokenFile, randomBytes(24).toString('hex'), { mode: 0o600 });
  const port = await freePort('127.0.0.1');
  const address = async () => ({ host: '127.0.0.1', port: await freePort('127.0.0.1') });
  const config = parseConfig({
    targets: [{
      name: 'llama',
      url: `http://127.0.0.1:${port}/v1`,
      server: 'llamacpp',
      interval: '2s',
      timeout: '2s',
      // The alert path, not the respawn on exit (the simulator's end-to-end test covers that).
      remediation: { action: 'process', command: llamaServerCommand(files!, port), grace_period: '5s', cooldown: '30s', restart_on_exit: false },
    }],
    remediator: { auth: { bearer_token_file: tokenFile } },
  });
  let loop: RunningLoop;
  try {
    loop = await startLoop({
      config,
      tokenFile,
      dir,
      exporter: await address(),
      remediator: await address(),
      prometheus: { bin: prometheus!, address: await address() },
      alertmanager: { bin: alertmanager!, address: await address() },
      interval: '2s',
      level: 'error',
      logger: silentLogger,
      teardown,
      stdio: 'ignore',
    });
  } catch (err) {
    await teardown.run();
    throw err;
  }
  const target = async () => ((await (await fetch(`${loop.urls.remediator}/api/v1/targets`)).json()) as { targets: TargetView[] }).targets[0]!;
  const up = async () => /^llm_server_up\{target="llama",[^}]*\} 1$/m.test(await (await fetch(`${loop.urls.exporter}/metrics`)).text());

  await eventually('the real server up', 60_000, async () => ((await up()) ? true : undefined));
  await eventually('Prometheus scraping the exporter', 30_000, async () => {
    const q = (await (await fetch(`${loop.urls.prometheus}/api/v1/query?query=llm_server_up`)).json()) as { data: { result: unknown[] } };
    return q.data.result.length > 0 ? true : undefined;
  });
  const before = await target();
  assert.equal(before.restarts, 0);
  assert.equal(before.last_action, null, 'a fresh state directory: no action yet');
  const started = Date.now();
  process.kill(before.pid!, 'SIGKILL');
  // `restarts` rises as soon as the action has run; `last_action` is set only after the remediator
  // has seen the new server answer (or given up), and the exporter's next probe sets
  // llm_server_up on its own schedule. Wait for all of what is asserted, together.
  let seen: TargetView | undefined;
  const healed = await eventually('one restart, its outcome recorded, a new pid and llm_server_up 1', 120_000, async () => {
    const state = (seen = await target());
    assert.ok(state.restarts <= 1, `too many restarts: ${state.restarts}`);
    // Once recorded, the outcome of the one restart is final (nothing else acts within the 30 s cooldown).
    if (state.last_action !== null) {
      assert.equal(state.restarts, 1, `an action recorded without a restart counted: ${JSON.stringify(state)}`);
      assert.deepEqual({ alertname: state.last_action.alertname, outcome: state.last_action.outcome }, { alertname: 'LLMServerDown', outcome: 'success' }, JSON.stringify(state));
    }
    return state.restarts === 1 && state.last_action !== null && state.pid !== null && state.pid !== before.pid && (await up()) ? state : undefined;
  }).catch((err: unknown) => {
    // A verdict stands as it is; a timeout tells what was seen last.
    if (err instanceof AssertionError) throw err;
    throw new Error(`${(err as Error).message}; last seen: ${JSON.stringify(seen)}`, { cause: err });
  });
  console.log(`# real llama-server, SIGKILL -> healthy in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  assert.notEqual(healed.pid, before.pid);
  assert.equal(healed.last_action?.alertname, 'LLMServerDown');
  assert.equal(healed.last_action?.outcome, 'success');
  // Its loading phase is over; nothing restarts it again while it serves.
  for (let i = 0; i < 10; i++) {
    await sleep(1000);
    assert.equal((await target()).restarts, 1);
  }
  const pid = healed.pid!;
  await teardown.run();
  assert.equal(isAlive(pid), false, 'the remediator stopped the server it owns');
});
