import assert from 'node:assert/strict';
import { test } from 'node:test';
import { payload, setupRemediator } from '../helpers/fakes.ts';

const iso = (unix: number) => new Date(unix).toISOString();

test('a firing, matching alert for a known target restarts it once; the restart is verified and recorded', async () => {
  const { action, remediator, decide, history, metrics } = await setupRemediator();
  assert.deepEqual(await decide(payload({})), ['restart']);
  assert.deepEqual(action.calls, [{ alertname: 'LLMServerDown', fingerprint: 'a1b2c3d4e5f60718' }]);
  const [view] = remediator.snapshot();
  assert.equal(view!.restarts, 1);
  assert.equal(view!.last_action?.outcome, 'success');
  assert.match(view!.last_action!.message, /answering after/);
  const [entry] = history.recent();
  assert.equal(entry!.outcome, 'success');
  assert.deepEqual(entry!.decisions.map((d) => d.stage), ['stale', 'duplicate', 'starting', 'in_progress', 'cooldown', 'circuit_open', 'recovered']);
  assert.equal((await metrics.timeToHealthy.get()).values.find((v) => v.metricName === 'llm_remediation_time_to_healthy_seconds_count')?.value, 1);
  assert.deepEqual((await metrics.lastActionInfo.get()).values.map((v) => v.labels), [{ target: 'qwen3', action: 'command', alertname: 'LLMServerDown', outcome: 'success' }]);
  assert.equal((await metrics.lastTimeToHealthy.get()).values.length, 1);
});

test('the stages in order: resolved, not matching, invalid text, unknown target, stale', async () => {
  const { decide, action, clock } = await setupRemediator();
  assert.deepEqual(await decide(payload({ status: 'resolved' })), ['resolved']);
  assert.deepEqual(await decide(payload({ labels: { remediate: 'never' } })), ['not_matching']);
  assert.deepEqual(await decide(payload({ labels: { alertname: 'x'.repeat(128 * 1024) } })), ['invalid']);
  assert.deepEqual(await decide(payload({ labels: { alertname: 'Bad\u0000Name' } })), ['invalid']);
  assert.deepEqual(await decide(payload({ labels: { target: 'nope' } })), ['unknown_target']);
  // Replayed: a day old, not a date, or already ended.
  assert.deepEqual(await decide(payload({ startsAt: iso(clock.wall() - 24 * 3600_000) })), ['stale']);
  assert.deepEqual(await decide(payload({ startsAt: 'yesterday' })), ['stale']);
  assert.deepEqual(await decide(payload({ endsAt: iso(clock.wall() - 60_000) })), ['stale']);
  assert.equal(action.calls.length, 0, 'none of them ran anything, and none used up the cooldown');
  assert.deepEqual(await decide(payload({})), ['restart']);
});

test('50 concurrent copies of one alert: one restart', async () => {
  const { decide, action } = await setupRemediator();
  const copies = Array.from({ length: 50 }, () => payload({}).alerts[0]!);
  const decisions = await decide({ ...payload({}), alerts: copies });
  assert.equal(action.calls.length, 1);
  assert.equal(decisions.filter((d) => d === 'restart').length, 1);
  assert.equal(decisions.filter((d) => d === 'duplicate').length, 49);
});

test('a different alert during a running restart is in_progress; the cooldown then holds off new ones', async () => {
  const { action, remediator, decide, clock, verifier } = await setupRemediator({ cooldownMs: 60_000 });
  action.manual = true;
  remediator.handle(payload({}).alerts.map((a) => ({ source: 'webhook' as const, ...a })));
  await new Promise((r) => setImmediate(r));
  const other = payload({ labels: { alertname: 'LLMServerHung' }, fingerprint: 'ffff000011112222' });
  const pending = decide(other);
  await new Promise((r) => setTimeout(r, 10));
  action.manual = false;
  action.release();
  assert.deepEqual(await pending, ['in_progress']);
  await remediator.idle();
  assert.equal(action.calls.length, 1);
  assert.deepEqual(await decide(other), ['cooldown']);
  clock.advance(61_000);
  // Still failing after the cooldown: the same alert may restart again (the first did not help).
  verifier.answering = false;
  assert.deepEqual(await decide(other), ['restart']);
});

test('confirm: a server that answers again by now is `recovered`, nothing restarted', async () => {
  const { decide, action, verifier } = await setupRemediator();
  verifier.answering = true;
  assert.deepEqual(await decide(payload({})), ['recovered']);
  assert.equal(action.calls.length, 0);
});

test('starting: a server its manager says is starting, or started within startup_timeout, is left to load', async () => {
  const { decide, action, clock } = await setupRemediator({ startupTimeoutMs: 120_000 });
  action.seen = { starting: true, detail: 'unit vllm.service activating/start' };
  assert.deepEqual(await decide(payload({})), ['starting']);
  action.seen = { starting: false, since: clock.wall() - 30_000, detail: 'container vllm running' };
  assert.deepEqual(await decide(payload({ fingerprint: 'b' })), ['starting'], 'restarted by someone else 30 s ago, still loading');
  action.seen = { starting: false, since: clock.wall() - 300_000, detail: 'container vllm running' };
  assert.deepEqual(await decide(payload({ fingerprint: 'c' })), ['restart']);
  assert.equal(action.calls.length, 1);
});

test('a restart that the server does not survive is a failure, and failures open the crash-loop circuit', async () => {
  const s = await setupRemediator({ cooldownMs: 1000, startupTimeoutMs: 10_000, circuit: { maxRestarts: 3, windowMs: 900_000 } });
  s.action.restart = async () => ({ ok: true, message: 'restarted' }); // but it never answers
  for (let i = 0; i < 3; i++) {
    assert.deepEqual(await s.decide(payload({ fingerprint: `f${i}` })), ['restart']);
    s.clock.advance(2000);
  }
  const [view] = s.remediator.snapshot();
  assert.equal(view!.last_action?.outcome, 'failure');
  assert.match(view!.last_action!.message, /not answering 10 s after the action/);
  assert.equal(view!.state, 'circuit_open');
  assert.deepEqual(await s.decide(payload({ fingerprint: 'f9' })), ['circuit_open']);
  await s.metrics.registry.metrics();
  assert.equal((await s.metrics.circuitOpen.get()).values[0]?.value, 1);
  const infos = (await s.metrics.lastActionInfo.get()).values;
  assert.equal(infos.length, 1, 'only the last action of a target is kept');
  assert.equal(infos[0]!.labels.outcome, 'failure');
  // It closes by hand (an authenticated request), or once the window has passed.
  assert.equal(s.remediator.closeCircuit('qwen3'), true);
  assert.equal(s.remediator.snapshot()[0]!.state === 'circuit_open', false);
  for (let i = 0; i < 3; i++) {
    await s.decide(payload({ fingerprint: `g${i}` }));
    s.clock.advance(2000);
  }
  assert.equal(s.remediator.snapshot()[0]!.state, 'circuit_open');
  s.clock.advance(900_000);
  await s.metrics.registry.metrics();
  assert.equal((await s.metrics.circuitOpen.get()).values[0]?.value, 0);
  assert.deepEqual(await s.decide(payload({ fingerprint: 'h' })), ['restart']);
});

test('restart_on_exit: exits are respawned through the stages with exponential backoff, until the circuit opens', async () => {
  const s = await setupRemediator({ restartOnExit: true, owns: false, startupTimeoutMs: 5000, circuit: { maxRestarts: 3, windowMs: 900_000 } });
  const waits: number[] = [];
  let exitedAt = 0;
  // It dies again at once: it never answers.
  s.action.restart = async () => (waits.push(s.clock.now() - exitedAt), { ok: true, message: 'respawned' });
  for (let i = 0; i < 5; i++) {
    exitedAt = s.clock.now();
    s.remediator.recordExit('qwen3', { code: 1, signal: null });
    await s.remediator.idle();
  }
  const view = s.remediator.snapshot()[0]!;
  assert.equal(view.unexpected_exits, 5);
  assert.equal(view.restarts, 3, 'the circuit stopped the respawns');
  assert.equal(view.state, 'circuit_open');
  assert.deepEqual(waits, [1000, 2000, 4000]);
});

test('state survives the remediator: a new one reads restarts, cooldown and circuit from --storage.path', async () => {
  const { mkdtemp, readFile, rm, writeFile } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = await mkdtemp(join(tmpdir(), 'qs-state-'));
  try {
    const first = await setupRemediator({ cooldownMs: 600_000 }, dir);
    await first.decide(payload({}));
    await first.remediator.stop();
    const file = JSON.parse(await readFile(join(dir, 'targets', 'qwen3.json'), 'utf8')) as { restarts: number };
    assert.equal(file.restarts, 1);
    const second = await setupRemediator({ cooldownMs: 600_000 }, dir);
    assert.equal(second.remediator.snapshot()[0]!.restarts, 1);
    assert.deepEqual(await second.decide(payload({ fingerprint: 'other' })), ['cooldown'], 'the cooldown outlived the process');
    assert.equal(second.history.recent().length, 0, 'history is loaded by the server, not the engine');
    // A corrupt file is logged and replaced, never fatal.
    await writeFile(join(dir, 'targets', 'qwen3.json'), '{not json');
    const third = await setupRemediator({}, dir);
    assert.equal(third.remediator.snapshot()[0]!.restarts, 0);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a payload of 10,000 alerts is decided, counted, and logged as one summary line', async () => {
  const { decide, action } = await setupRemediator();
  const alerts = Array.from({ length: 10_000 }, (_, i) => payload({ fingerprint: `f${i}`, labels: i % 2 ? { target: 'nope' } : {} }).alerts[0]!);
  const decisions = await decide({ ...payload({}), alerts });
  assert.equal(decisions.length, 10_000);
  assert.equal(decisions.filter((d) => d === 'unknown_target').length, 5000);
  assert.equal(action.calls.length, 1);
});
