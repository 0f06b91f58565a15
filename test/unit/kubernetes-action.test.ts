// The kubernetes action's policy without a cluster: which alerts it refuses, what a pod's state says
// of its start-up, its config; and the remediator's side of the interfaces it brought (an action's
// verdict is no restart, refuse() is decision `invalid`, probeHost() moves the checks to a pod).
// Against a real control plane: test/integration/kubernetes-action.test.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { V1Pod } from '@kubernetes/client-node';
import { parseConfig } from '../../src/cmd/config.ts';
import { podStarting, refusal } from '../../src/remediator/actions/kubernetes.ts';
import type { Action, ProbeHost, RestartContext } from '../../src/remediator/actions/types.ts';
import { withHost } from '../../src/remediator/verify.ts';
import { payload, setupRemediator } from '../helpers/fakes.ts';

const UID = '3f1c2b9a-0d4e-4c8b-9a1f-2e3d4c5b6a70';

test('refusal: an alert must name a pod (name and UID, in Kubernetes\' formats) of the configured namespace', () => {
  assert.equal(refusal({ pod: 'qwen3-7d9f-abcde', pod_uid: UID, namespace: 'llm' }, 'llm'), undefined);
  assert.equal(refusal({ pod: 'qwen3-0', pod_uid: UID }, 'llm'), undefined, 'no namespace label: the configured one');
  assert.match(refusal({ pod_uid: UID }, 'llm')!, /label pod is missing/);
  assert.match(refusal({ pod: 'qwen3-0' }, 'llm')!, /label pod_uid is missing/);
  assert.match(refusal({ pod: 'Qwen3_0', pod_uid: UID }, 'llm')!, /not a pod name/);
  assert.match(refusal({ pod: `${'a'.repeat(254)}`, pod_uid: UID }, 'llm')!, /not a pod name/);
  assert.match(refusal({ pod: '../secrets', pod_uid: UID }, 'llm')!, /not a pod name/);
  assert.match(refusal({ pod: 'qwen3-0', pod_uid: 'abc' }, 'llm')!, /not a UID/);
  assert.match(refusal({ pod: 'qwen3-0', pod_uid: UID.toUpperCase() }, 'llm')!, /not a UID/);
  assert.match(refusal({ pod: 'qwen3-0', pod_uid: UID, namespace: 'kube-system' }, 'llm')!, /is kube-system: this target's pods are in namespace llm/);
  assert.match(refusal({ pod: 'qwen3-0', pod_uid: UID, namespace: 'a/b' }, 'llm')!, /not a namespace name/);
});

const pod = (o: { ready?: boolean; deleting?: boolean; waiting?: string; started?: string; phase?: string; startTime?: string }): V1Pod => ({
  metadata: { name: 'qwen3-0', uid: UID, creationTimestamp: new Date('2026-12-05T10:00:00Z'), ...(o.deleting ? { deletionTimestamp: new Date() } : {}) },
  status: {
    phase: o.phase ?? 'Running',
    ...(o.startTime ? { startTime: new Date(o.startTime) } : {}),
    conditions: [{ type: 'Ready', status: o.ready ? 'True' : 'False' }],
    containerStatuses: [{ name: 'vllm', image: 'x', imageID: 'x', ready: o.ready ?? false, restartCount: 0, state: o.waiting ? { waiting: { reason: o.waiting } } : o.started ? { running: { startedAt: new Date(o.started) } } : {} }],
  },
});

test('podStarting: terminating and CrashLoopBackOff are starting; not Ready counts from its newest start; Ready is up', () => {
  assert.deepEqual(podStarting(pod({ deleting: true, ready: true })), { starting: true, detail: 'pod qwen3-0 is terminating' });
  assert.deepEqual(podStarting(pod({ waiting: 'CrashLoopBackOff' })), { starting: true, detail: 'pod qwen3-0: container vllm in CrashLoopBackOff (the kubelet restarts it)' });
  assert.deepEqual(podStarting(pod({ ready: true, started: '2026-12-05T10:01:00Z' })), { starting: false, detail: 'pod qwen3-0 is Ready' });
  assert.deepEqual(podStarting(pod({ started: '2026-12-05T10:01:00Z', startTime: '2026-12-05T10:00:30Z' })), { starting: false, since: Date.parse('2026-12-05T10:01:00Z'), detail: 'pod qwen3-0 is Running, not Ready' });
  assert.deepEqual(podStarting(pod({ phase: 'Pending', startTime: '2026-12-05T10:00:30Z' })), { starting: false, since: Date.parse('2026-12-05T10:00:30Z'), detail: 'pod qwen3-0 is Pending, not Ready' });
  assert.deepEqual(podStarting(pod({ phase: 'Pending' })), { starting: false, since: Date.parse('2026-12-05T10:00:00Z'), detail: 'pod qwen3-0 is Pending, not Ready' }, 'not scheduled: since its creation');
});

test('config: method delete by default; namespace, selector and method are checked', () => {
  const parse = (r: Record<string, unknown>) => parseConfig({ targets: [{ url: 'http://qwen3.llm.svc:8000/v1', server: 'vllm', remediation: { action: 'kubernetes', namespace: 'llm', selector: { 'app.kubernetes.io/name': 'qwen3' }, ...r } }] }).targets[0]!.remediation!;
  assert.deepEqual(parse({ grace_period: '30s' }), {
    action: 'kubernetes', namespace: 'llm', selector: { 'app.kubernetes.io/name': 'qwen3' }, method: 'delete', grace_period: 30_000, timeout: 30_000, cooldown: 120_000,
    startup_timeout: 300_000, confirm: true, circuit: { max_restarts: 3, window: 900_000 },
  });
  assert.equal((parse({ method: 'evict', kubeconfig: '/etc/kube/config' }) as { method: string }).method, 'evict');
  assert.throws(() => parse({ namespace: 'LLM' }), /namespace/);
  assert.throws(() => parse({ selector: {} }), /at least one label/);
  assert.throws(() => parse({ selector: { 'app/x/y': 'a' } }), /selector\.app\/x\/y: Invalid key/);
  assert.throws(() => parse({ method: 'scale' }), /method/);
  assert.throws(() => parse({ replicas: 2 }), /replicas/);
});

test('withHost: the checks reach another host on the URL\'s port and path', () => {
  assert.equal(withHost('http://qwen3.llm.svc:8000/v1', '127.1.0.7'), 'http://127.1.0.7:8000/v1');
  assert.equal(withHost('http://qwen3.llm.svc:8000/v1', 'fd00::7'), 'http://[fd00::7]:8000/v1');
  assert.equal(withHost('http://qwen3.llm.svc/', '127.1.0.7'), 'http://127.1.0.7/');
  assert.equal(withHost('http://qwen3.llm.svc:8000/v1', undefined), 'http://qwen3.llm.svc:8000/v1');
});

const labels = { pod: 'qwen3-0', pod_uid: UID };

test('a verdict (blocked, stale) is recorded as the outcome and is not a restart: no circuit count, no cooldown; a blocked alert may try again', async () => {
  const s = await setupRemediator({ circuit: { maxRestarts: 2, windowMs: 900_000 } });
  (s.action as Action).refuse = () => undefined;
  s.action.outcome = { ok: false, verdict: 'blocked', message: 'a PodDisruptionBudget allows no disruption now' };
  // (The fakes' server answers once an action ran: it still does not, nothing was done.)
  for (let i = 0; i < 4; i++) {
    s.verifier.answering = false;
    assert.deepEqual(await s.decide(payload({ labels })), ['restart'], `attempt ${i + 1}: the same alert re-sent tries again`);
  }
  assert.equal(s.action.calls.length, 4);
  assert.deepEqual(s.action.calls[0]!.labels, { alertname: 'LLMServerDown', remediate: 'restart', target: 'qwen3', severity: 'critical', ...labels });
  const [view] = s.remediator.snapshot();
  assert.equal(view!.restarts, 0);
  assert.equal(view!.recent_restarts, 0);
  assert.equal(view!.circuit.open, false);
  assert.equal(view!.cooldown_until, null);
  assert.equal(view!.last_action?.outcome, 'blocked');
  const [entry] = s.history.recent();
  assert.equal(entry!.outcome, 'blocked');
  assert.deepEqual(entry!.decisions.at(-1), { stage: 'action', result: 'blocked' });
  assert.equal(s.verifier.checks, 4, 'the confirm checks only: nothing to verify after a verdict');
  const counted = (await s.metrics.actions.get()).values.filter((v) => v.value > 0).map((v) => [v.labels.outcome, v.value]);
  assert.deepEqual(counted, [['blocked', 4]]);

  // stale: that alert instance names a pod that is gone; re-sent, it is a duplicate.
  s.action.outcome = { ok: false, verdict: 'stale', message: 'gone' };
  const startsAt = new Date(s.clock.wall() - 1000).toISOString();
  s.verifier.answering = false;
  assert.deepEqual(await s.decide(payload({ labels, fingerprint: 'ffffffffffffff01', startsAt })), ['restart']);
  s.verifier.answering = false;
  assert.deepEqual(await s.decide(payload({ labels, fingerprint: 'ffffffffffffff01', startsAt })), ['duplicate']);
  assert.equal(s.remediator.snapshot()[0]!.restarts, 0);
  // And an action that did act still counts.
  s.action.outcome = { ok: true, message: 'deleted' };
  s.verifier.answering = false;
  assert.deepEqual(await s.decide(payload({ labels, fingerprint: 'ffffffffffffff02' })), ['restart']);
  assert.equal(s.remediator.snapshot()[0]!.restarts, 1);
  assert.equal(s.history.recent()[0]!.outcome, 'success');
});

test('refuse(): an alert the action cannot act on is `invalid` before any stage, with its reason; nothing runs', async () => {
  const s = await setupRemediator();
  (s.action as Action).refuse = (l) => refusal(l, 'llm');
  assert.deepEqual(await s.decide(payload({ labels: { pod: 'qwen3-0' } })), ['invalid']);
  assert.deepEqual(await s.decide(payload({ labels: { ...labels, namespace: 'other' } })), ['invalid']);
  assert.equal(s.action.calls.length, 0);
  assert.equal(s.verifier.checks, 0);
  assert.equal(s.history.recent().length, 0);
  assert.deepEqual(await s.decide(payload({ labels })), ['restart']);
});

test('probeHost(): the confirm check reaches the pod the alert names, the verification the one that replaced it; no host: not answering', async () => {
  const s = await setupRemediator();
  const hosts: Array<string | undefined> = [];
  const answers = s.verifier.answers.bind(s.verifier);
  s.verifier.answers = async (...args: unknown[]) => {
    hosts.push(args[2] as string | undefined);
    return answers();
  };
  const asked: Array<[string, RestartContext]> = [];
  let replacement: ProbeHost = { message: 'no new Ready pod replacing qwen3-0 yet' };
  const action: Action = s.action;
  action.refuse = () => undefined;
  action.probeHost = async (purpose, context) => {
    asked.push([purpose, context]);
    if (purpose === 'confirm') return { host: '127.1.0.5' };
    const now = replacement;
    replacement = { host: '127.1.0.9' };
    return now;
  };
  assert.deepEqual(await s.decide(payload({ labels })), ['restart']);
  assert.equal(s.history.recent()[0]!.outcome, 'success');
  // Confirm at the alerting pod; the first verification finds no new pod (not asked of the verifier), the next one reaches it.
  assert.deepEqual(hosts, ['127.1.0.5', '127.1.0.9']);
  assert.deepEqual(asked.map(([p, c]) => [p, c.labels?.pod_uid]), [['confirm', UID], ['verify', UID], ['verify', UID]]);
});
