import assert from 'node:assert/strict';
import { test } from 'node:test';
import { silentLogger } from '../../src/log.ts';
import { RemediatorMetrics } from '../../src/remediator/metrics.ts';
import { Remediator } from '../../src/remediator/policy.ts';
import { FakeAction, payload } from '../helpers/fakes.ts';

function setup(cooldownMs = 60_000) {
  const action = new FakeAction();
  const clock = { t: Date.parse('2026-11-25T12:00:00Z') };
  const metrics = new RemediatorMetrics([{ name: 'qwen3', action: 'process' }]);
  const remediator = new Remediator({ targets: [{ name: 'qwen3', action, cooldownMs }], match: { remediate: 'restart' }, logger: silentLogger, metrics, now: () => clock.t });
  const decide = (p: ReturnType<typeof payload>) => remediator.handle(p).map((d) => d.decision);
  return { action, clock, metrics, remediator, decide };
}

test('a firing, matching alert for a known target restarts it once', async () => {
  const { action, remediator, decide } = setup();
  assert.deepEqual(decide(payload({})), ['restart']);
  await remediator.idle();
  assert.deepEqual(action.calls, [{ alertname: 'LLMServerDown', fingerprint: 'a1b2c3d4e5f60718' }]);
  const [view] = remediator.snapshot();
  assert.equal(view!.restarts, 1);
  assert.equal(view!.last_action?.outcome, 'success');
  assert.equal(view!.state, 'cooldown');
});

test('the same alert re-sent (Alertmanager retry, HA pair) is a duplicate', async () => {
  const { action, remediator, decide } = setup();
  decide(payload({}));
  await remediator.idle();
  assert.deepEqual(decide(payload({})), ['duplicate']);
  assert.deepEqual(decide(payload({})), ['duplicate']);
  assert.equal(action.calls.length, 1);
});

test('a different alert during a running restart waits: in_progress, not a second restart', async () => {
  const { action, remediator, decide } = setup();
  action.manual = true;
  assert.deepEqual(decide(payload({})), ['restart']);
  assert.deepEqual(decide(payload({ labels: { alertname: 'LLMServerHung' }, fingerprint: 'ffff000011112222' })), ['in_progress']);
  action.release();
  await remediator.idle();
  assert.equal(action.calls.length, 1);
});

test('the cooldown holds off new alerts, then lets them through', async () => {
  const { action, clock, remediator, decide } = setup(60_000);
  decide(payload({}));
  await remediator.idle();
  const later = { labels: { alertname: 'LLMServerHung' }, fingerprint: 'ffff000011112222' };
  clock.t += 59_000;
  assert.deepEqual(decide(payload(later)), ['cooldown']);
  clock.t += 2_000;
  assert.deepEqual(decide(payload(later)), ['restart']);
  await remediator.idle();
  assert.equal(action.calls.length, 2);
});

test('an alert still firing after the cooldown (the restart did not help) may restart again', async () => {
  const { action, clock, remediator, decide } = setup(60_000);
  decide(payload({}));
  await remediator.idle();
  clock.t += 10 * 60_000; // Alertmanager's repeat_interval
  assert.deepEqual(decide(payload({})), ['restart']);
  await remediator.idle();
  assert.equal(action.calls.length, 2);
});

test('resolved, non-matching and unknown-target alerts change nothing', async () => {
  const { action, remediator, decide } = setup();
  assert.deepEqual(
    decide(payload({ status: 'resolved' }, { labels: { remediate: 'no' } }, { labels: { target: 'nope' } }, { labels: { target: '' } })),
    ['resolved', 'not_matching', 'unknown_target', 'unknown_target'],
  );
  await remediator.idle();
  assert.equal(action.calls.length, 0);
  assert.equal(remediator.snapshot()[0]!.restarts, 0);
});

test('decides per alert, not on the group status: one resolved and one firing alert', async () => {
  const { action, remediator, decide } = setup();
  const p = payload({ status: 'resolved', fingerprint: '0000000000000001' }, { fingerprint: '0000000000000002' });
  assert.equal(p.status, 'firing');
  assert.deepEqual(decide(p), ['resolved', 'restart']);
  await remediator.idle();
  assert.equal(action.calls.length, 1);
});

test('a failed action is recorded as a failure and still starts the cooldown', async () => {
  const { action, remediator, metrics, decide } = setup();
  action.outcome = { ok: false, message: 'exit 1' };
  decide(payload({}));
  await remediator.idle();
  assert.equal(remediator.snapshot()[0]!.last_action?.outcome, 'failure');
  assert.match(await metrics.registry.metrics(), /llm_remediation_actions_total\{target="qwen3",action="process",outcome="failure"\} 1/);
  assert.deepEqual(decide(payload({ fingerprint: 'ffff000011112222' })), ['cooldown']);
});

test('counts every decision in llm_remediation_alerts_total', async () => {
  const { remediator, metrics, decide } = setup();
  decide(payload({}, { status: 'resolved', fingerprint: '0000000000000009' }));
  decide(payload({}));
  await remediator.idle();
  const text = await metrics.registry.metrics();
  assert.match(text, /llm_remediation_alerts_total\{decision="restart"\} 1/);
  assert.match(text, /llm_remediation_alerts_total\{decision="resolved"\} 1/);
  assert.match(text, /llm_remediation_alerts_total\{decision="duplicate"\} 1/);
  assert.match(text, /llm_remediation_alerts_total\{decision="cooldown"\} 0/);
});

test('a reconfigure keeps the state of kept targets, starts new ones fresh and forgets removed ones', async () => {
  const { action, clock, remediator, decide } = setup(60_000);
  action.manual = true;
  decide(payload({}));
  const other = new FakeAction();
  // Mid-restart: the running restart must still land in the state that stays.
  remediator.reconfigure([{ name: 'qwen3', action, cooldownMs: 60_000 }, { name: 'new', action: other, cooldownMs: 1000 }], { remediate: 'restart' });
  action.release();
  await remediator.idle();
  const [kept, added] = remediator.snapshot();
  assert.deepEqual([kept!.name, kept!.restarts, kept!.state], ['qwen3', 1, 'cooldown']);
  assert.deepEqual([added!.name, added!.restarts, added!.state], ['new', 0, 'idle']);
  assert.deepEqual(decide(payload({ labels: { target: 'new' }, fingerprint: '1111111111111111' })), ['restart']);
  await remediator.idle();
  assert.equal(other.calls.length, 1);

  remediator.reconfigure([{ name: 'new', action: other, cooldownMs: 1000 }], { remediate: 'yes' });
  clock.t += 120_000;
  assert.deepEqual(decide(payload({ fingerprint: '2222222222222222' })), ['not_matching']);
  assert.deepEqual(decide(payload({ labels: { remediate: 'yes' }, fingerprint: '3333333333333333' })), ['unknown_target']);
});

test('a target whose action a reload replaced mid-restart stays in progress: never two restarts at once', async () => {
  const { action, remediator, decide } = setup(60_000);
  action.manual = true;
  decide(payload({}));
  const replacement = new FakeAction();
  remediator.reconfigure([{ name: 'qwen3', action: replacement, cooldownMs: 60_000 }], { remediate: 'restart' });
  assert.deepEqual(decide(payload({ fingerprint: '4444444444444444' })), ['in_progress']);
  action.release();
  await remediator.idle();
  assert.equal(replacement.calls.length, 0);
  const [state] = remediator.snapshot();
  assert.deepEqual([state!.restarts, state!.state], [1, 'cooldown']);
});
