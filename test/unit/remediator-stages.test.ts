import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../src/lib/log.ts';
import { ActionHistory } from '../../src/remediator/history.ts';
import type { Trigger } from '../../src/remediator/stages.ts';
import { StateStore } from '../../src/remediator/state.ts';
import { decisionCounts, FakeClock, payload, setupRemediator, type RemediatorSetup } from '../helpers/fakes.ts';

const iso = (unix: number) => new Date(unix).toISOString();

/** As the fakes' decide(), for another source (the reconciler reading /api/v2/alerts). */
async function decideAs(s: RemediatorSetup, source: Trigger['source'], p: ReturnType<typeof payload>): Promise<string[]> {
  const before = await decisionCounts(s.metrics);
  s.remediator.handle(p.alerts.map((a) => ({ source, status: a.status, labels: a.labels, fingerprint: a.fingerprint, startsAt: a.startsAt, endsAt: a.endsAt })));
  await s.remediator.idle();
  const after = await decisionCounts(s.metrics);
  return Object.entries(after).flatMap(([d, n]) => Array<string>(n - (before[d] ?? 0)).fill(d)).sort();
}

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
  const one = payload({}).alerts[0]!;
  const copies = Array.from({ length: 50 }, () => structuredClone(one));
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

test('invalid: a fingerprint with a NUL or over 256 characters, or a startsAt over 64, stops the alert: nothing run, nothing used up', async () => {
  const s = await setupRemediator();
  assert.deepEqual(await s.decide(payload({ fingerprint: 'a1b2\u0000c3d4' })), ['invalid']);
  assert.deepEqual(await s.decide(payload({ fingerprint: 'f'.repeat(257) })), ['invalid']);
  assert.deepEqual(await s.decide(payload({ startsAt: `${iso(s.clock.wall() - 30_000)}${' '.repeat(64)}` })), ['invalid']);
  assert.equal(s.action.calls.length, 0);
  assert.equal(s.remediator.snapshot()[0]!.restarts, 0, 'neither the cooldown nor the circuit was used');
  assert.deepEqual(await s.decide(payload({})), ['restart']);
});

test('stale: an alert Alertmanager reports active now is never too old (it still fires); a replayed webhook is, and an ended alert is either way', async () => {
  const s = await setupRemediator();
  const twoHoursAgo = iso(s.clock.wall() - 2 * 3600_000);
  assert.deepEqual(await s.decide(payload({ startsAt: twoHoursAgo })), ['stale'], 'a webhook that old is a replay');
  assert.deepEqual(await decideAs(s, 'reconcile', payload({ startsAt: twoHoursAgo, endsAt: iso(s.clock.wall() - 60_000) })), ['stale'], 'already ended');
  assert.deepEqual(await decideAs(s, 'reconcile', payload({ startsAt: 'yesterday' })), ['stale'], 'not a date');
  assert.equal(s.action.calls.length, 0);
  // After an outage longer than stale_after, the alert still firing restarts the server.
  assert.deepEqual(await decideAs(s, 'reconcile', payload({ startsAt: twoHoursAgo })), ['restart']);
});

test('duplicate: one alert instance from the webhook and from /api/v2/alerts (startsAt written differently) is one instance', async () => {
  const s = await setupRemediator({ cooldownMs: 600_000 });
  const millis = iso(s.clock.wall() - 30_000);
  const nanos = millis.replace(/Z$/, '456789Z'); // Alertmanager's webhook: nanoseconds
  assert.deepEqual(await s.decide(payload({ startsAt: nanos })), ['restart']);
  s.verifier.answering = false;
  assert.deepEqual(await decideAs(s, 'reconcile', payload({ startsAt: millis })), ['duplicate']);
});

test('starting: a start the manager reports, which the remediator has since seen answering, is over', async () => {
  const s = await setupRemediator({ startupTimeoutMs: 300_000, cooldownMs: 60_000 });
  // A person restarted the unit 30 s ago and it is loading: left alone.
  s.action.seen = { starting: false, since: s.clock.wall() - 30_000, detail: 'unit vllm.service active/running' };
  assert.deepEqual(await s.decide(payload({ fingerprint: 'a' })), ['starting']);
  // The remediator restarts it and sees it answer; systemd reports it active since that restart.
  s.action.seen = undefined;
  s.clock.advance(300_000);
  assert.deepEqual(await s.decide(payload({ fingerprint: 'b', startsAt: iso(s.clock.wall() - 5000) })), ['restart']);
  s.action.seen = { starting: false, since: s.clock.wall() - 2000, detail: 'unit vllm.service active/running' };
  // Two minutes later it hangs again: inside startup_timeout of that start, yet not starting.
  s.clock.advance(120_000);
  s.verifier.answering = false;
  assert.deepEqual(await s.decide(payload({ fingerprint: 'c', startsAt: iso(s.clock.wall() - 5000) })), ['restart']);
  assert.equal(s.action.calls.length, 2);
});

test('starting: an owned server that is gone is not loading (it crashed while loading): an alert restarts it', async () => {
  const s = await setupRemediator({ owns: true, startupTimeoutMs: 300_000 });
  const record = s.store.get('qwen3')!;
  record.startedAt = s.clock.now() - 10_000;
  assert.deepEqual(await s.decide(payload({ fingerprint: 'a' })), ['starting'], 'running and started 10 s ago: loading');
  Object.assign(s.action, { pid: () => undefined }); // it exited
  assert.deepEqual(await s.decide(payload({ fingerprint: 'b' })), ['restart']);
});

test('cooldown: a new alert instance that began after the server was last seen answering passes it; an older one does not', async () => {
  const s = await setupRemediator({ cooldownMs: 600_000 });
  assert.deepEqual(await s.decide(payload({ startsAt: iso(s.clock.wall() - 30_000) })), ['restart']);
  const healthy = s.clock.wall(); // the restart was verified: it answered then
  s.clock.advance(60_000);
  s.verifier.answering = false;
  assert.deepEqual(await s.decide(payload({ fingerprint: 'older', startsAt: iso(healthy - 10_000) })), ['cooldown'], 'began before it answered again');
  assert.deepEqual(await s.decide(payload({ fingerprint: 'again', startsAt: iso(healthy + 30_000) })), ['restart'], 'it answered, then failed again');
  // The confirm check is a sighting too: the time it found the server answering is kept.
  s.clock.advance(600_000);
  s.verifier.answering = true;
  assert.deepEqual(await s.decide(payload({ fingerprint: 'blip', startsAt: iso(s.clock.wall() - 60_000) })), ['recovered']);
  assert.equal(s.store.get('qwen3')!.healthyAt, s.clock.now());
  assert.equal(s.action.calls.length, 2);
});

test('state: instants written before the wall clock was set back are read as if no time had passed, never later than now', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'qs-clamp-'));
  try {
    const first = await setupRemediator({ cooldownMs: 600_000 }, dir);
    assert.deepEqual(await first.decide(payload({})), ['restart']);
    await first.remediator.stop();
    // Two hours back while no remediator ran (a fixed RTC, NTP after a drift).
    const clock = new FakeClock();
    clock.unix -= 2 * 3600_000;
    const record = await new StateStore({ dir, clock, logger: silentLogger }).load('qwen3');
    const left = record.cooldownUntil - clock.now();
    assert.ok(left > 500_000 && left <= 600_000, `the cooldown is what was left of it, not two hours more: ${left} ms`);
    assert.equal(record.restartTimes.length, 1);
    assert.ok(record.restartTimes.every((t) => t <= clock.now()), 'a restart that happened is not in the future (the circuit window would not pass)');
    assert.ok(Object.values(record.seen).every((t) => t <= clock.now()));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('history: actions a killed run left running are `interrupted` when the next run loads them', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'qs-history-'));
  try {
    const entry = { id: 7, target: 'qwen3', action: 'process', trigger: { source: 'webhook', alertname: 'LLMServerDown', fingerprint: 'f', starts_at: '' }, decisions: [], started_at: new Date().toISOString(), finished_at: undefined, outcome: 'running', message: '', time_to_healthy_seconds: undefined };
    await writeFile(join(dir, 'actions.json'), JSON.stringify([entry, { ...entry, id: 6, outcome: 'success', message: 'ok' }]));
    const history = new ActionHistory({ dir, logger: silentLogger });
    await history.load();
    assert.deepEqual(history.recent().map((e) => e.outcome), ['interrupted', 'success']);
    assert.match(history.recent()[0]!.message, /stopped before/);
    await history.flush();
    const onDisk = JSON.parse(await readFile(join(dir, 'actions.json'), 'utf8')) as Array<{ outcome: string }>;
    assert.equal(onDisk[0]!.outcome, 'interrupted');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a shutdown during the respawn backoff does nothing and counts nothing; during the check, the action is interrupted, not failed', async () => {
  const s = await setupRemediator({ restartOnExit: true, owns: false, startupTimeoutMs: 30_000 });
  // The backoff sleep is where the shutdown lands: the fake clock's sleep returns at once when aborted.
  const sleep = s.clock.sleep.bind(s.clock);
  let stopping: Promise<void> | undefined;
  s.clock.sleep = async (ms, signal) => {
    stopping ??= s.remediator.stop();
    await new Promise((r) => setImmediate(r));
    return sleep(ms, signal);
  };
  s.remediator.recordExit('qwen3', { code: 1, signal: null });
  await stopping;
  await s.remediator.idle();
  assert.equal(s.action.calls.length, 0);
  const [entry] = s.history.recent();
  assert.equal(entry!.outcome, 'interrupted');
  assert.equal(s.remediator.snapshot()[0]!.restarts, 0, 'no restart counted towards the circuit');
  const actions = (await s.metrics.actions.get()).values.filter((v) => v.value > 0);
  assert.deepEqual(actions, [], 'neither success nor failure');

  // A shutdown while the restarted server is being checked: the action ran, its outcome is unknown.
  const t = await setupRemediator({ startupTimeoutMs: 30_000 });
  t.action.restart = async () => ({ ok: true, message: 'restarted' }); // never answers
  let checks = 0;
  t.verifier.answers = async () => {
    checks += 1;
    if (checks === 2) void t.remediator.stop(); // the first is the confirm check
    return { ok: false, message: 'models: connect_refused' };
  };
  t.remediator.handle([{ source: 'webhook', status: 'firing', labels: { alertname: 'LLMServerDown', target: 'qwen3', remediate: 'restart' }, fingerprint: 'f1', startsAt: new Date(t.clock.wall()).toISOString() }]);
  await t.remediator.idle();
  assert.equal(t.history.recent()[0]!.outcome, 'interrupted');
  assert.equal((await t.metrics.actions.get()).values.filter((v) => v.value > 0).length, 0, 'not counted as a failure (LLMRemediationFailed would fire)');
});

test('a reload replacing a target: a decision queued before it runs on the new target, and the reload waits for the action under way', async () => {
  const s = await setupRemediator({ cooldownMs: 0, confirm: false });
  s.action.manual = true;
  const trigger = (fingerprint: string) => ({ source: 'webhook' as const, status: 'firing' as const, labels: { alertname: 'LLMServerDown', target: 'qwen3', remediate: 'restart' }, fingerprint, startsAt: new Date(s.clock.wall()).toISOString() });
  s.remediator.handle([trigger('a')]);
  await new Promise((r) => setImmediate(r));
  assert.equal(s.action.calls.length, 1, 'the first restart runs (held)');
  const replacement = new (s.action.constructor as new () => typeof s.action)();
  const target = { name: 'qwen3', action: replacement, owns: false, cooldownMs: 0, startupTimeoutMs: 30_000, confirm: false, circuit: { maxRestarts: 3, windowMs: 900_000 }, restartOnExit: false };
  let reloaded = false;
  const reload = s.remediator.reconfigure([target], { remediate: 'restart' }, 3_600_000).then(() => (reloaded = true));
  await new Promise((r) => setImmediate(r));
  assert.equal(reloaded, false, 'the reload waits for the action under way');
  s.action.release();
  await reload;
  s.remediator.handle([trigger('b')]);
  await s.remediator.idle();
  assert.equal(s.action.calls.length, 1, 'the replaced action ran nothing more');
  assert.equal(replacement.calls.length, 1, 'the new target acted');
});

test('an open circuit says when it closes by itself, and it does close then', async () => {
  const s = await setupRemediator({ cooldownMs: 1000, startupTimeoutMs: 10_000, circuit: { maxRestarts: 2, windowMs: 600_000 } });
  s.action.restart = async () => ({ ok: true, message: 'restarted' }); // but it never answers
  for (let i = 0; i < 3; i++) {
    await s.decide(payload({ fingerprint: `f${i}` }));
    s.clock.advance(20_000);
  }
  const [open] = s.remediator.snapshot();
  assert.equal(open!.state, 'circuit_open');
  assert.equal(open!.recent_restarts, 2, 'the third alert found the circuit open');
  const closesAt = Date.parse(open!.circuit.closes_at!);
  assert.ok(closesAt > s.clock.wall() && closesAt <= s.clock.wall() + 600_000, open!.circuit.closes_at!);
  // Two restarts in the window, at most 2 allowed: it closes when the first leaves the window.
  s.clock.advance(closesAt - s.clock.wall() - 1);
  assert.equal(s.remediator.snapshot()[0]!.state, 'circuit_open', 'a millisecond before closes_at');
  s.clock.advance(2);
  const [closed] = s.remediator.snapshot();
  assert.notEqual(closed!.state, 'circuit_open', 'just after closes_at');
  assert.equal(closed!.circuit.closes_at, null);
});
