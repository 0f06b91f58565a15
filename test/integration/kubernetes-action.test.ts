// The kubernetes action against a real control plane (test/helpers/kube.ts: kube-apiserver,
// controller manager, scheduler, etcd, kwok), driven through the real remediator (webhook POST,
// stages, history, metrics), as a ServiceAccount under a namespaced Role, not as admin. A
// Deployment of fake pods whose IPs are in 127.1.0.0/16, a simulated vLLM listening on each pod's
// IP: the check after an action reaches the new pod at its IP, the target's URL (the Service) being
// unreachable here. The alerting pod and the other one answer with errors (fault `error`), so only
// a new pod can make a check pass.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import { parseConfig } from '../../src/cmd/config.ts';
import { silentLogger } from '../../src/lib/log.ts';
import type { ActionEntry } from '../../src/remediator/history.ts';
import { startRemediator, type RunningRemediator } from '../../src/remediator/server.ts';
import { inCluster } from '../../src/remediator/actions/kubernetes.ts';
import { startSim, type RunningSim } from '../../src/sim/server.ts';
import { requireKubeBinaries, serviceAccountKubeconfig, serviceAccountToken, startKubeControlPlane, waitFor, type KubeControlPlane } from '../helpers/kube.ts';
import { freePort } from '../helpers/llama-server.ts';

const binaries = requireKubeBinaries();
const skip = !binaries && 'Kubernetes control plane not built (see the warning above)';

const NS = 'llm';
const SELECTOR = { 'app.kubernetes.io/name': 'qwen3' };
const SELECTOR_QUERY = `labelSelector=${encodeURIComponent('app.kubernetes.io/name=qwen3')}`;
const TOKEN = 'webhook-token';
const dir = mkdtempSync(join(tmpdir(), 'qs-kube-action-'));

let cp: KubeControlPlane | undefined;
let kubeconfig = '';
// The port of the target's URL (its Service, 127.0.0.1:PORT, where nothing listens: only a pod's
// IP can answer) and of every pod's simulator: the checks reach a pod at its IP on the URL's port.
let port = 0;
/** A simulated server per pod UID, on the pod's IP. */
const sims = new Map<string, RunningSim>();
let syncing: Promise<void> | undefined;
let stopSync = false;

interface PodView {
  name: string;
  uid: string;
  ip: string | undefined;
  ready: boolean;
  deleting: boolean;
  owner: string | undefined;
}

async function pods(): Promise<PodView[]> {
  const res = await cp!.api('GET', `/api/v1/namespaces/${NS}/pods?${SELECTOR_QUERY}`);
  assert.equal(res.status, 200, res.text);
  return (res.body.items as any[]).map((p) => ({
    name: p.metadata.name,
    uid: p.metadata.uid,
    ip: p.status?.podIP,
    ready: (p.status?.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True'),
    deleting: p.metadata.deletionTimestamp !== undefined,
    owner: (p.metadata.ownerReferences ?? []).find((o: any) => o.controller)?.name,
  }));
}

/** Waits until exactly `count` pods of the Deployment run, Ready with an IP and a simulator, none terminating. */
function settled(count: number, what: string, accept: (list: PodView[]) => boolean = () => true): Promise<PodView[]> {
  return waitFor(what, async () => {
    const list = (await pods()).filter((p) => p.owner !== undefined);
    const good = list.length === count && list.every((p) => p.ready && p.ip !== undefined && !p.deleting && sims.has(p.uid));
    return good && accept(list) ? list : undefined;
  }, 90_000, 300);
}

/**
 * Keeps one simulator per running pod (on its IP), as the kubelet would keep its container; a
 * gone pod's simulator is closed. Bounded: at most 4000 rounds, and it ends with the file.
 */
async function syncSims(): Promise<void> {
  for (let round = 0; round < 4000 && !stopSync; round++) {
    try {
      const list = await pods();
      const alive = new Set(list.map((p) => p.uid));
      for (const [uid, sim] of sims) {
        if (!alive.has(uid)) {
          sims.delete(uid);
          await sim.close();
        }
      }
      for (const p of list) {
        if (p.ip === undefined || sims.has(p.uid) || p.deleting) continue;
        const sim = await startSim({ host: p.ip, port, flavor: 'vllm', ttftMs: 1, tokensPerSecond: 1000, onCrash: () => {} });
        await sim.ready;
        sims.set(p.uid, sim);
      }
    } catch {
      // the API server busy, a port still closing: next round
    }
    await sleep(250);
  }
}

const role = (withApps: boolean) => ({
  apiVersion: 'rbac.authorization.k8s.io/v1',
  kind: 'Role',
  metadata: { name: 'sentinel-remediator', namespace: NS },
  rules: [
    { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch', 'delete'] },
    { apiGroups: [''], resources: ['pods/eviction'], verbs: ['create'] },
    { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] },
    // Only for method rollout.
    ...(withApps ? [{ apiGroups: ['apps'], resources: ['deployments'], verbs: ['get', 'patch'] }] : []),
  ],
});

async function apply(objects: unknown[]): Promise<void> {
  const r = await cp!.kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }) });
  assert.equal(r.code, 0, r.stderr);
}

async function canI(...args: string[]): Promise<boolean> {
  const r = await cp!.kubectl(['auth', 'can-i', ...args, '-n', NS, `--as=system:serviceaccount:${NS}:sentinel`]);
  return r.stdout.trim() === 'yes';
}

before(async () => {
  if (!binaries) return;
  cp = await startKubeControlPlane(binaries, { nodes: 1 });
  port = await freePort();
  await cp.createNamespace(NS);
  await apply([
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'sentinel', namespace: NS } },
    role(false),
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: 'sentinel-remediator', namespace: NS },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'sentinel-remediator' },
      subjects: [{ kind: 'ServiceAccount', name: 'sentinel', namespace: NS }],
    },
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'qwen3', namespace: NS },
      spec: {
        replicas: 2,
        selector: { matchLabels: SELECTOR },
        template: {
          metadata: { labels: SELECTOR },
          // kwok fakes the containers: the image is never pulled.
          spec: { containers: [{ name: 'vllm', image: 'registry.invalid/vllm:test', ports: [{ containerPort: 8000 }] }], terminationGracePeriodSeconds: 1 },
        },
      },
    },
  ]);
  kubeconfig = await serviceAccountKubeconfig(cp, NS, 'sentinel', join(dir, 'sentinel.kubeconfig'));
  await waitFor('the RoleBinding to take effect', async () => ((await canI('delete', 'pods')) ? true : undefined), 30_000);
  syncing = syncSims();
  await settled(2, '2 pods Ready with their simulators');
}, { timeout: 240_000 });

after(async () => {
  stopSync = true;
  await syncing;
  for (const sim of sims.values()) await sim.close();
  await cp?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** A remediator with one kubernetes target, its remediation's fields overridden. */
async function remediator(fields: Record<string, unknown> = {}): Promise<RunningRemediator> {
  const config = parseConfig({
    targets: [{ name: 'qwen3', url: `http://127.0.0.1:${port}/v1`, server: 'vllm', remediation: { action: 'kubernetes', namespace: NS, selector: SELECTOR, kubeconfig, grace_period: '1s', startup_timeout: '60s', cooldown: '1s', ...fields } }],
    remediator: { auth: { bearer_token_env: 'UNUSED' } },
  });
  return startRemediator({ config, token: TOKEN, listen: { host: '127.0.0.1', port: 0 }, logger: silentLogger });
}

/** Posts one firing alert about a pod; answers the webhook's decisions. */
async function alert(r: RunningRemediator, labels: Record<string, string>): Promise<unknown> {
  const body = {
    version: '4',
    status: 'firing',
    receiver: 'sentinel',
    groupKey: '{}:{}',
    alerts: [{ status: 'firing', labels: { alertname: 'LLMServerDown', remediate: 'restart', target: 'qwen3', namespace: NS, ...labels }, annotations: {}, startsAt: new Date().toISOString(), fingerprint: randomUUID().slice(0, 16) }],
  };
  const res = await fetch(`${r.url}/webhook`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` }, body: JSON.stringify(body) });
  assert.equal(res.status, 200);
  const answer = (await res.json()) as { decisions: unknown };
  await r.remediator.idle();
  return answer.decisions;
}

const history = (r: RunningRemediator): readonly ActionEntry[] => r.remediator.recentActions();
const restartsOf = (r: RunningRemediator) => r.remediator.snapshot()[0]!;
async function metric(r: RunningRemediator, pattern: RegExp): Promise<number> {
  const text = await (await fetch(`${r.url}/metrics`)).text();
  const line = text.split('\n').find((l) => pattern.test(l));
  return line === undefined ? 0 : Number(line.split(' ').at(-1));
}

/** Both current pods answer with errors: only a pod created after this can pass a check. */
function breakAll(list: PodView[]): void {
  for (const p of list) sims.get(p.uid)!.setFault('error');
}

async function remediatedEvents(pod: string): Promise<number> {
  const res = await cp!.api('GET', `/api/v1/namespaces/${NS}/events?fieldSelector=${encodeURIComponent(`involvedObject.name=${pod},reason=Remediated`)}`);
  assert.equal(res.status, 200, res.text);
  return res.body.items.length;
}

test('delete: the pod the alert names (by UID) is deleted once, its controller replaces it, and the check reaches the new pod at its IP', { skip, timeout: 120_000 }, async () => {
  const before = await settled(2, '2 pods');
  breakAll(before);
  const [victim, other] = before as [PodView, PodView];
  const r = await remediator({ method: 'delete' });
  try {
    assert.deepEqual(await alert(r, { pod: victim.name, pod_uid: victim.uid }), [{ alertname: 'LLMServerDown', target: 'qwen3', decision: 'queued' }]);
    const [entry] = history(r);
    assert.equal(entry?.outcome, 'success', entry?.message);
    assert.match(entry.message, new RegExp(`^deleted pod ${NS}/${victim.name} \\(uid ${victim.uid}\\) of ReplicaSet ${victim.owner}; answering after`));
    assert.equal(restartsOf(r).restarts, 1);
    assert.equal(await metric(r, /^llm_remediation_actions_total\{.*outcome="success"/), 1);
  } finally {
    await r.close();
  }
  const after = await settled(2, 'the replacement pod', (list) => !list.some((p) => p.uid === victim.uid));
  assert.ok(after.some((p) => p.uid === other.uid), 'the other pod was not touched');
  assert.equal(await remediatedEvents(victim.name), 1, 'one Remediated event: one delete');
  assert.equal(await remediatedEvents(other.name), 0);
  for (const p of after) sims.get(p.uid)!.setFault('none');
});

test('a stale alert (a UID that is not the pod\'s any more, a pod that is gone) deletes nothing and is not counted; a malformed one is refused', { skip, timeout: 120_000 }, async () => {
  const before = await settled(2, '2 pods');
  breakAll(before);
  const [a, b] = before as [PodView, PodView];
  const r = await remediator({ method: 'delete' });
  try {
    // The name of a running pod with another pod's UID: its replacement must never be touched.
    await alert(r, { pod: a.name, pod_uid: b.uid });
    // A pod that is gone.
    await alert(r, { pod: `${a.name}x`, pod_uid: randomUUID() });
    const entries = history(r);
    assert.deepEqual(entries.map((e) => e.outcome), ['stale', 'stale']);
    assert.match(entries[1]!.message, /the pod named by the alert \(uid [0-9a-f-]+\) is gone; its replacement is not touched/);
    assert.deepEqual(entries[0]!.decisions.at(-1), { stage: 'action', result: 'stale' });
    const state = restartsOf(r);
    assert.equal(state.restarts, 0, 'not a restart');
    assert.equal(state.recent_restarts, 0, 'not in the circuit window');
    assert.equal(state.cooldown_until, null, 'no cooldown');
    assert.equal(await metric(r, /^llm_remediation_actions_total\{.*outcome="stale"/), 2);
    // Refused before any stage: no pod_uid, a UID that is not one, another namespace.
    await alert(r, { pod: a.name });
    await alert(r, { pod: a.name, pod_uid: 'not-a-uid' });
    await alert(r, { pod: a.name, pod_uid: a.uid, namespace: 'kube-system' });
    assert.equal(await metric(r, /^llm_remediation_alerts_total\{decision="invalid",source="webhook"\}/), 3);
    assert.equal(history(r).length, 2, 'no action for a refused alert');
  } finally {
    await r.close();
  }
  assert.deepEqual((await pods()).map((p) => p.uid).sort(), [a.uid, b.uid].sort(), 'nothing was deleted');
  for (const p of before) sims.get(p.uid)!.setFault('none');
});

test('evict: a PodDisruptionBudget allowing no disruption blocks it (nothing deleted, not a failure nor a restart); without it the pod is evicted and replaced', { skip, timeout: 150_000 }, async () => {
  const before = await settled(2, '2 pods');
  breakAll(before);
  const victim = before[0]!;
  const pdb = { apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', metadata: { name: 'qwen3', namespace: NS }, spec: { minAvailable: 2, selector: { matchLabels: SELECTOR } } };
  assert.equal((await cp!.api('POST', `/apis/policy/v1/namespaces/${NS}/poddisruptionbudgets`, pdb)).status, 201);
  await waitFor('the disruption controller to allow no disruption', async () => {
    const s = (await cp!.api('GET', `/apis/policy/v1/namespaces/${NS}/poddisruptionbudgets/qwen3`)).body?.status;
    return s && s.observedGeneration >= 1 && s.currentHealthy === 2 && s.disruptionsAllowed === 0 ? true : undefined;
  }, 60_000);
  const r = await remediator({ method: 'evict' });
  try {
    await alert(r, { pod: victim.name, pod_uid: victim.uid });
    const [blocked] = history(r);
    assert.equal(blocked?.outcome, 'blocked', blocked?.message);
    assert.match(blocked.message, /a PodDisruptionBudget allows no disruption now/);
    assert.equal(restartsOf(r).restarts, 0);
    assert.equal(restartsOf(r).recent_restarts, 0);
    assert.equal(restartsOf(r).last_action?.outcome, 'blocked');
    assert.equal(await metric(r, /^llm_remediation_actions_total\{.*outcome="failure"/), 0, 'not a failure');
    assert.equal(await metric(r, /^llm_remediation_actions_total\{.*outcome="blocked"/), 1);
    assert.deepEqual((await pods()).filter((p) => !p.deleting).map((p) => p.uid).sort(), before.map((p) => p.uid).sort(), 'nothing was evicted');

    assert.equal((await cp!.api('DELETE', `/apis/policy/v1/namespaces/${NS}/poddisruptionbudgets/qwen3`)).status, 200);
    await alert(r, { pod: victim.name, pod_uid: victim.uid });
    const [evicted] = history(r);
    assert.equal(evicted?.outcome, 'success', evicted?.message);
    assert.match(evicted.message, new RegExp(`^evicted pod ${NS}/${victim.name} `));
    assert.equal(restartsOf(r).restarts, 1);
  } finally {
    await r.close();
  }
  const after = await settled(2, 'the replacement of the evicted pod', (list) => !list.some((p) => p.uid === victim.uid));
  for (const p of after) sims.get(p.uid)!.setFault('none');
});

test('rollout: refused by RBAC until the Role allows deployments get/patch; then the Deployment is restarted as kubectl rollout restart does', { skip, timeout: 150_000 }, async () => {
  const before = await settled(2, '2 pods');
  breakAll(before);
  const victim = before[0]!;
  // No cooldown to wait out after the refused attempt (a failure).
  const r = await remediator({ method: 'rollout', cooldown: '1ms' });
  try {
    await alert(r, { pod: victim.name, pod_uid: victim.uid });
    const [forbidden] = history(r);
    assert.equal(forbidden?.outcome, 'failure');
    assert.match(forbidden.message, /forbidden \(RBAC\).*cannot get resource "deployments"/);

    await apply([role(true)]);
    await waitFor('the Role to allow patching deployments', async () => ((await canI('patch', 'deployments.apps')) ? true : undefined), 30_000);
    await alert(r, { pod: victim.name, pod_uid: victim.uid });
    assert.equal(history(r).length, 2, 'a second action');
    const [restarted] = history(r);
    assert.equal(restarted?.outcome, 'success', restarted?.message);
    assert.match(restarted.message, new RegExp(`^rollout restart Deployment ${NS}/qwen3; answering after`));
  } finally {
    await r.close();
  }
  const deployment = (await cp!.api('GET', `/apis/apps/v1/namespaces/${NS}/deployments/qwen3`)).body;
  const restartedAt = deployment.spec.template.metadata.annotations?.['kubectl.kubernetes.io/restartedAt'];
  assert.ok(restartedAt && Number.isFinite(Date.parse(restartedAt)), `restartedAt ${restartedAt}`);
  const managers = (deployment.metadata.managedFields as any[]).map((f) => f.manager);
  assert.ok(managers.includes('qwen-sentinel'), `field managers: ${managers.join(', ')}`);
  // Every pod replaced, by a new ReplicaSet.
  const after = await settled(2, 'the rollout to finish', (list) => list.every((p) => !before.some((b) => b.uid === p.uid)));
  assert.ok(after.every((p) => p.owner !== victim.owner));
  for (const p of after) sims.get(p.uid)!.setFault('none');
});

test('starting: a pod of the target not Ready within the start-up window, and a terminating one, are left alone (credentials from $KUBECONFIG)', { skip, timeout: 120_000 }, async () => {
  // A pod of the selector that no node takes (Pending, never Ready), held by a finalizer once deleted.
  const pending = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'qwen3-pending', namespace: NS, labels: SELECTOR, finalizers: ['example.com/hold'] }, spec: { nodeSelector: { nowhere: 'true' }, containers: [{ name: 'vllm', image: 'registry.invalid/vllm:test' }] } };
  const created = await cp!.api('POST', `/api/v1/namespaces/${NS}/pods`, pending);
  assert.equal(created.status, 201, created.text);
  const uid = created.body.metadata.uid as string;
  // Credentials from $KUBECONFIG this time (no kubeconfig in the config, not in a cluster).
  process.env.KUBECONFIG = kubeconfig;
  const r = await remediator({ method: 'delete', kubeconfig: undefined });
  try {
    await alert(r, { pod: 'qwen3-pending', pod_uid: uid });
    assert.equal(await metric(r, /^llm_remediation_alerts_total\{decision="starting",source="webhook"\}/), 1);
    assert.equal(await cp!.api('DELETE', `/api/v1/namespaces/${NS}/pods/qwen3-pending`).then((x) => x.status), 200);
    await alert(r, { pod: 'qwen3-pending', pod_uid: uid });
    assert.equal(await metric(r, /^llm_remediation_alerts_total\{decision="starting",source="webhook"\}/), 2, 'terminating');
    assert.equal(history(r).length, 0, 'nothing done');
  } finally {
    await r.close();
    await cp!.api('PATCH', `/api/v1/namespaces/${NS}/pods/qwen3-pending`, { metadata: { finalizers: null } }, { contentType: 'application/merge-patch+json' });
  }
  await waitFor('the pending pod to be gone', async () => ((await cp!.api('GET', `/api/v1/namespaces/${NS}/pods/qwen3-pending`)).status === 404 ? true : undefined), 30_000);
});

test('in-cluster credentials: the pod\'s service account (KUBERNETES_SERVICE_HOST and the mounted token and CA), no kubeconfig', { skip, timeout: 120_000 }, async () => {
  // The files a pod of the ServiceAccount has mounted, under a root of the test's own.
  const root = join(dir, 'in-cluster');
  const mounted = join(root, 'var/run/secrets/kubernetes.io/serviceaccount');
  mkdirSync(mounted, { recursive: true });
  writeFileSync(join(mounted, 'token'), await serviceAccountToken(cp!, NS, 'sentinel'));
  copyFileSync(cp!.caFile, join(mounted, 'ca.crt'));
  writeFileSync(join(mounted, 'namespace'), NS);
  const api = new URL(cp!.apiUrl);
  const saved = { host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT, kubeconfig: process.env.KUBECONFIG };
  process.env.KUBERNETES_SERVICE_HOST = api.hostname;
  process.env.KUBERNETES_SERVICE_PORT = api.port;
  // No other way in: a $KUBECONFIG would be admin's.
  delete process.env.KUBECONFIG;
  inCluster.root = root;
  const before = await settled(2, '2 pods');
  breakAll(before);
  const [victim] = before as [PodView, PodView];
  const r = await remediator({ method: 'delete', kubeconfig: undefined });
  try {
    await alert(r, { pod: victim.name, pod_uid: victim.uid });
    const [entry] = history(r);
    assert.equal(entry?.outcome, 'success', entry?.message);
    assert.match(entry.message, new RegExp(`^deleted pod ${NS}/${victim.name} \\(uid ${victim.uid}\\)`));
  } finally {
    await r.close();
    inCluster.root = '';
    for (const [key, value] of [['KUBERNETES_SERVICE_HOST', saved.host], ['KUBERNETES_SERVICE_PORT', saved.port], ['KUBECONFIG', saved.kubeconfig]] as const) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  }
  const after = await settled(2, 'the replacement pod', (list) => !list.some((p) => p.uid === victim.uid));
  for (const p of after) sims.get(p.uid)!.setFault('none');
});
