// The remediator's notice series (llm_remediation_action_info): one per remediation, so each is an
// alert, and a notification, of its own; kept long enough to be scraped, never piling up.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { noticeKeepMs, noticeKeepPerTarget, RemediatorMetrics } from '../../src/remediator/metrics.ts';

function setup() {
  let now = Date.parse('2026-03-01T10:00:00Z');
  const metrics = new RemediatorMetrics({ now: () => now });
  const series = async () => (await metrics.registry.getSingleMetricAsString('llm_remediation_action_info')).split('\n').filter((l) => l.startsWith('llm_'));
  const healthy = async () => (await metrics.registry.getSingleMetricAsString('llm_remediation_action_time_to_healthy_seconds')).split('\n').filter((l) => l.startsWith('llm_'));
  return { metrics, series, healthy, advance: (ms: number) => (now += ms) };
}

test('each action is a series of its own, with the alert behind it as `trigger`; success carries its time to healthy', async () => {
  const { metrics, series, healthy } = setup();
  metrics.recordAction({ target: 'qwen3', action: 'process', trigger: 'LLMServerHung', outcome: 'success', id: '1', timeToHealthySeconds: 12.5 });
  metrics.recordAction({ target: 'qwen3', action: 'process', trigger: 'LLMServerHung', outcome: 'success', id: '2', timeToHealthySeconds: 3 });
  metrics.recordAction({ target: 'qwen3', action: 'process', trigger: 'LLMServerDown', outcome: 'failure', id: '3' });
  assert.deepEqual(await series(), [
    'llm_remediation_action_info{target="qwen3",action="process",trigger="LLMServerHung",outcome="success",id="1"} 1',
    'llm_remediation_action_info{target="qwen3",action="process",trigger="LLMServerHung",outcome="success",id="2"} 1',
    'llm_remediation_action_info{target="qwen3",action="process",trigger="LLMServerDown",outcome="failure",id="3"} 1',
  ]);
  assert.deepEqual(await healthy(), ['llm_remediation_action_time_to_healthy_seconds{target="qwen3",id="1"} 12.5', 'llm_remediation_action_time_to_healthy_seconds{target="qwen3",id="2"} 3']);
});

test(`kept ${noticeKeepMs / 60_000} minutes, at most ${noticeKeepPerTarget} per target; gone with a removed target`, async () => {
  const { metrics, series, healthy, advance } = setup();
  metrics.recordAction({ target: 'a', action: 'process', trigger: 'LLMServerDown', outcome: 'success', id: '1', timeToHealthySeconds: 2 });
  advance(noticeKeepMs - 1);
  assert.equal((await series()).length, 1, 'still there just before its time');
  advance(1);
  assert.deepEqual(await series(), [], 'expired at the scrape');
  assert.deepEqual(await healthy(), []);
  for (let i = 1; i <= noticeKeepPerTarget + 2; i++) metrics.recordAction({ target: 'a', action: 'process', trigger: 'LLMServerDown', outcome: 'success', id: String(100 + i), timeToHealthySeconds: i });
  metrics.recordAction({ target: 'b', action: 'command', trigger: 'LLMServerHung', outcome: 'failure', id: '7' });
  const kept = await series();
  assert.equal(kept.filter((l) => l.includes('target="a"')).length, noticeKeepPerTarget, 'the newest of target a');
  assert.ok(!kept.some((l) => l.includes('id="101"') || l.includes('id="102"')), 'the oldest dropped');
  assert.equal((await healthy()).length, noticeKeepPerTarget);
  metrics.removeTarget('a', 'process');
  assert.deepEqual(await series(), ['llm_remediation_action_info{target="b",action="command",trigger="LLMServerHung",outcome="failure",id="7"} 1']);
  assert.deepEqual(await healthy(), []);
});

test('a refusal by the circuit is told once per alert instance, however often it is re-sent', async () => {
  const { metrics, series, advance } = setup();
  const refusal = { target: 'qwen3', action: 'process', trigger: 'LLMServerDown' };
  assert.equal(metrics.recordRefusal({ ...refusal, instance: 'fp1@1000' }), true);
  advance(2000);
  assert.equal(metrics.recordRefusal({ ...refusal, instance: 'fp1@1000' }), false, 'the reconciler read the same alert');
  // Still refused long after its notice expired: not told again.
  advance(noticeKeepMs + 60_000);
  assert.equal(metrics.recordRefusal({ ...refusal, instance: 'fp1@1000' }), false);
  assert.deepEqual(await series(), []);
  // The same alert firing anew (another start) is another refusal.
  assert.equal(metrics.recordRefusal({ ...refusal, instance: 'fp1@999000' }), true);
  assert.deepEqual(await series(), [`llm_remediation_action_info{target="qwen3",action="process",trigger="LLMServerDown",outcome="refused",id="2026-03-01T10:11:02.000Z"} 1`]);
});

test('the histogram of a configured target exists from the start', async () => {
  const { metrics } = setup();
  metrics.addTarget('qwen3', 'process');
  assert.match(await metrics.registry.getSingleMetricAsString('llm_remediation_time_to_healthy_seconds'), /^llm_remediation_time_to_healthy_seconds_count\{target="qwen3"\} 0$/m);
});
