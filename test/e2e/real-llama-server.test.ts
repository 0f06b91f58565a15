// The whole loop around a real model server: llama.cpp's llama-server (tiny Qwen3 model), owned
// by the remediator's `process` action, probed by the exporter, judged by the real Prometheus,
// routed by the real Alertmanager. SIGKILL -> LLMServerDown -> webhook -> restart -> healthy,
// exactly once: its loading phase after the restart ("starting") restarts nothing.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseConfig } from '../../src/config/load.ts';
import { Teardown } from '../../src/lifecycle.ts';
import { silentLogger } from '../../src/log.ts';
import { startLoop, type RunningLoop } from '../../src/stack/loop.ts';
import { freePort } from '../../src/stack/system.ts';
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

test('SIGKILL of a real llama-server: restarted once through Prometheus and Alertmanager, healthy again', { skip, timeout: 180_000 }, async () => {
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
  const started = Date.now();
  process.kill(before.pid!, 'SIGKILL');
  const healed = await eventually('one restart and llm_server_up 1', 120_000, async () => {
    const state = await target();
    assert.ok(state.restarts <= 1, `too many restarts: ${state.restarts}`);
    return state.restarts === 1 && (await up()) ? state : undefined;
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
