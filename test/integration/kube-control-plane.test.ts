// A real Kubernetes control plane (built by test/real-server/build-kube.sh: kube-apiserver,
// kube-controller-manager, kube-scheduler, etcd, kwok) doing what the remediator will rely on:
// a Deployment whose fake pods run with IPs inside 127.0.0.0/8, delete with preconditions.uid (409
// on a stale UID, the ReplicaSet replaces the pod), eviction refused with 429 by a
// PodDisruptionBudget, and a namespaced Role that can delete and evict pods but not read secrets.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ipInCidr, requireKubeBinaries, startKubeControlPlane, waitFor, type KubeControlPlane } from '../helpers/kube.ts';

const binaries = requireKubeBinaries();
const skip = !binaries && 'Kubernetes control plane not built (see the warning above)';

const NS = 'fleet';
const LABELS = { app: 'llm-server' };

let cp: KubeControlPlane | undefined;

before(async () => {
  if (!binaries) return;
  cp = await startKubeControlPlane(binaries, { nodes: 2 });
}, { timeout: 240_000 });

after(async () => {
  await cp?.stop();
});

interface PodView {
  name: string;
  uid: string;
  ip: string | undefined;
  node: string | undefined;
  running: boolean;
  ready: boolean;
  deleting: boolean;
}

async function pods(): Promise<PodView[]> {
  const res = await cp!.api('GET', `/api/v1/namespaces/${NS}/pods?labelSelector=app%3D${LABELS.app}`);
  assert.equal(res.status, 200, res.text);
  return (res.body.items as any[]).map((p) => ({
    name: p.metadata.name,
    uid: p.metadata.uid,
    ip: p.status?.podIP,
    node: p.spec?.nodeName,
    running: p.status?.phase === 'Running',
    ready: (p.status?.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True'),
    deleting: p.metadata.deletionTimestamp !== undefined,
  }));
}

/** Waits until exactly `count` pods exist, all Running and Ready with an IP (none terminating). */
function readyPods(count: number, what: string, accept: (list: PodView[]) => boolean = () => true): Promise<PodView[]> {
  return waitFor(what, async () => {
    const list = await pods();
    const good = list.length === count && list.every((p) => p.running && p.ready && p.ip !== undefined && !p.deleting);
    return good && accept(list) ? list : undefined;
  }, 90_000, 300);
}

test('a real control plane runs a Deployment of fake pods with loopback IPs, and delete, eviction and RBAC behave as on a cluster', { skip, timeout: 300_000 }, async (t) => {
  assert.ok(cp);
  t.diagnostic(`kube-apiserver ${cp.serverVersion} at ${cp.apiUrl}, started in ${cp.startupMs} ms; pod CIDR ${cp.podCidr}; files in ${cp.dir}`);
  const version = await cp.kubectl(['version', '-o', 'json']);
  assert.equal(version.code, 0, version.stderr);
  assert.match(JSON.parse(version.stdout).serverVersion.gitVersion, /^v1\.\d+\.\d+$/);

  await cp.createNamespace(NS);
  const deployment = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'llm', namespace: NS },
    spec: {
      replicas: 2,
      selector: { matchLabels: LABELS },
      template: {
        metadata: { labels: LABELS },
        spec: {
          // kwok fakes the containers: the image is never pulled.
          containers: [{ name: 'server', image: 'registry.invalid/llama-server:test', ports: [{ containerPort: 8080 }] }],
          terminationGracePeriodSeconds: 5,
        },
      },
    },
  };
  const applied = await cp.kubectl(['apply', '-f', '-'], { input: JSON.stringify(deployment) });
  assert.equal(applied.code, 0, applied.stderr);

  // Two pods, Running and Ready (kwok), on the fake nodes, each with its own IP inside the pod CIDR.
  const first = await readyPods(2, '2 pods Running and Ready');
  for (const p of first) {
    assert.ok(p.ip && ipInCidr(p.ip, '127.0.0.0/8'), `pod ${p.name} IP ${p.ip} inside 127.0.0.0/8`);
    assert.ok(ipInCidr(p.ip, cp.podCidr), `pod ${p.name} IP ${p.ip} inside ${cp.podCidr}`);
    assert.match(p.node ?? '', /^kwok-node-\d$/);
  }
  assert.notEqual(first[0]!.ip, first[1]!.ip);
  t.diagnostic(`pods: ${first.map((p) => `${p.name}@${p.node}=${p.ip}`).join(', ')}`);

  // Delete with a stale UID: 409 Conflict, the pod stays. With the right UID: gone, and the
  // ReplicaSet creates a replacement (new name, new UID).
  const victim = first[0]!;
  const stale = await cp.api('DELETE', `/api/v1/namespaces/${NS}/pods/${victim.name}`, { apiVersion: 'v1', kind: 'DeleteOptions', preconditions: { uid: '00000000-0000-0000-0000-000000000000' } });
  assert.equal(stale.status, 409, stale.text);
  assert.equal(stale.body?.reason, 'Conflict');
  const deleted = await cp.api('DELETE', `/api/v1/namespaces/${NS}/pods/${victim.name}`, { apiVersion: 'v1', kind: 'DeleteOptions', preconditions: { uid: victim.uid } });
  assert.equal(deleted.status, 200, deleted.text);
  const second = await readyPods(2, 'the ReplicaSet to replace the deleted pod', (list) => !list.some((p) => p.uid === victim.uid));
  const replacement = second.find((p) => p.name !== first[1]!.name);
  assert.ok(replacement && replacement.uid !== victim.uid && replacement.name !== victim.name, 'a new pod replaced the deleted one');
  assert.ok(replacement.ip && ipInCidr(replacement.ip, cp.podCidr));

  // A PodDisruptionBudget with minAvailable 2 over 2 pods: the disruption controller computes
  // disruptionsAllowed 0 and the Eviction API refuses with 429.
  const pdb = { apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', metadata: { name: 'llm', namespace: NS }, spec: { minAvailable: 2, selector: { matchLabels: LABELS } } };
  const createdPdb = await cp.api('POST', `/apis/policy/v1/namespaces/${NS}/poddisruptionbudgets`, pdb);
  assert.equal(createdPdb.status, 201, createdPdb.text);
  await waitFor('the disruption controller to count 2 healthy pods', async () => {
    const res = await cp!.api('GET', `/apis/policy/v1/namespaces/${NS}/poddisruptionbudgets/llm`);
    const s = res.body?.status;
    return s && s.observedGeneration >= 1 && s.currentHealthy === 2 && s.disruptionsAllowed === 0 ? true : undefined;
  }, 60_000);
  const target = second[0]!;
  const eviction = { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name: target.name, namespace: NS }, deleteOptions: { preconditions: { uid: target.uid } } };
  const refused = await cp.api('POST', `/api/v1/namespaces/${NS}/pods/${target.name}/eviction`, eviction);
  assert.equal(refused.status, 429, refused.text);
  assert.match(refused.text, /disruption budget/i);
  assert.equal((await pods()).filter((p) => !p.deleting).length, 2, 'the refused eviction left both pods');

  // The same eviction once the budget allows one disruption: 201, and the pod is replaced.
  const patched = await cp.api('PATCH', `/apis/policy/v1/namespaces/${NS}/poddisruptionbudgets/llm`, { spec: { minAvailable: 1 } }, { contentType: 'application/merge-patch+json' });
  assert.equal(patched.status, 200, patched.text);
  await waitFor('disruptionsAllowed 1', async () => {
    const s = (await cp!.api('GET', `/apis/policy/v1/namespaces/${NS}/poddisruptionbudgets/llm`)).body?.status;
    return s && s.observedGeneration >= 2 && s.disruptionsAllowed === 1 ? true : undefined;
  }, 60_000);
  const evicted = await cp.api('POST', `/api/v1/namespaces/${NS}/pods/${target.name}/eviction`, eviction);
  assert.equal(evicted.status, 201, evicted.text);
  await readyPods(2, 'the ReplicaSet to replace the evicted pod', (list) => !list.some((p) => p.uid === target.uid));

  // The remediator's least privilege: pods get/list/watch/delete and pods/eviction create, no secrets.
  const rbac = [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'sentinel', namespace: NS } },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name: 'sentinel-remediator', namespace: NS },
      rules: [
        { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch', 'delete'] },
        { apiGroups: [''], resources: ['pods/eviction'], verbs: ['create'] },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: 'sentinel-remediator', namespace: NS },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'sentinel-remediator' },
      subjects: [{ kind: 'ServiceAccount', name: 'sentinel', namespace: NS }],
    },
  ];
  const rbacApplied = await cp.kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: rbac }) });
  assert.equal(rbacApplied.code, 0, rbacApplied.stderr);
  const as = `--as=system:serviceaccount:${NS}:sentinel`;
  const canIn = async (namespace: string, ...args: string[]) => {
    const r = await cp!.kubectl(['auth', 'can-i', ...args, '-n', namespace, as]);
    return `${r.code} ${r.stdout.trim()}`;
  };
  const canI = (...args: string[]) => canIn(NS, ...args);
  // The RBAC authorizer reads Roles and RoleBindings from an informer: the new binding takes effect
  // a moment after it is stored.
  await waitFor('the RoleBinding to take effect', async () => ((await canI('delete', 'pods')) === '0 yes' ? true : undefined), 30_000);
  assert.equal(await canI('get', 'secrets'), '1 no');
  assert.equal(await canI('list', 'secrets'), '1 no');
  assert.equal(await canI('delete', 'pods'), '0 yes');
  assert.equal(await canI('create', 'pods', '--subresource=eviction'), '0 yes'); // not pods/eviction: that reads as the pod named eviction
  assert.equal(await canI('create', 'pods'), '1 no');
  assert.equal(await canI('patch', 'deployments.apps'), '1 no');
  assert.equal(await canIn('default', 'delete', 'pods'), '1 no', 'the Role is namespaced');

  // And for real, as the ServiceAccount with a token from the TokenRequest API (signed by the
  // service-account key the apiserver was given): secrets 403, pods 200.
  const token = await cp.kubectl(['create', 'token', 'sentinel', '-n', NS, '--duration=10m']);
  assert.equal(token.code, 0, token.stderr);
  const bearer = token.stdout.trim();
  const secrets = await cp.api('GET', `/api/v1/namespaces/${NS}/secrets`, undefined, { token: bearer });
  assert.equal(secrets.status, 403, secrets.text);
  const podList = await cp.api('GET', `/api/v1/namespaces/${NS}/pods`, undefined, { token: bearer });
  assert.equal(podList.status, 200, podList.text);
  assert.equal(podList.body.items.length, 2);
});
