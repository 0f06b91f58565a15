// The whole loop on Kubernetes, every part real but the model server and the kubelet: a real
// control plane (test/helpers/kube.ts: kube-apiserver, controller manager, scheduler, etcd; kwok
// fakes the node, so pods run Ready with loopback IPs), the example vLLM Deployment
// (examples/kubernetes/vllm-deployment.yaml, 2 replicas) with a simulated vLLM on each pod's IP
// (test/helpers/pod-sims.ts, standing in for the kubelet), a real Prometheus with kubernetes_sd
// (test/real-server/build-prometheus.sh) discovering the pods from the API server and scraping the
// exporter's /probe through the chart's own ScrapeConfig relabelling, the shipped rules, the real
// Alertmanager with the shipped alertmanager.yml, and the remediator with the chart's rendered
// config and RBAC (its ServiceAccount's token: every call goes through real RBAC). All at the
// shipped settings (15 s scrape and evaluation, 14 s probe deadline, the rules' `for` as shipped).
//
// One pod's engine hangs (fault hang-generation: the listing answers, no token comes): within
// 90 s that pod is deleted, once, its ReplicaSet makes a new pod, and that pod is Ready and
// answering; the other pod is untouched, and nothing more happens afterwards.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { parseConfig } from '../../src/cmd/config.ts';
import { shippedDir, startExternal, writeAlertmanagerConfig, type ExternalProcess } from '../../src/cmd/stack/prometheus.ts';
import { startExporter, type RunningExporter } from '../../src/exporter/server.ts';
import { silentLogger } from '../../src/lib/log.ts';
import { freePort } from '../../src/lib/system.ts';
import type { ActionEntry } from '../../src/remediator/history.ts';
import { startRemediator, type RunningRemediator } from '../../src/remediator/server.ts';
import { loadToken } from '../../src/remediator/token.ts';
import { chartDir, parseObjects, requireHelm, runHelm, scrapeJobFromScrapeConfig, type KubeObject } from '../helpers/helm.ts';
import { requireKubeBinaries, serviceAccountKubeconfig, serviceAccountToken, startKubeControlPlane, waitFor, type KubeControlPlane } from '../helpers/kube.ts';
import { startPodSims, type PodSims, type PodView } from '../helpers/pod-sims.ts';
import { requirePrometheusBuild } from '../helpers/prometheus-build.ts';
import { requireBinary } from '../helpers/require-binary.ts';

const kube = requireKubeBinaries();
const helm = requireHelm();
const prometheusBin = requirePrometheusBuild();
const alertmanagerBin = requireBinary('prometheus-alertmanager');
const skip = (!kube || !helm || !prometheusBin || !alertmanagerBin) && 'a build or binary is missing (see the warning above)';

const NS = 'llm';
const MONITORING = 'monitoring';
const RELEASE = 'qs';
const SELECTOR = 'app.kubernetes.io/name=qwen3';
/** The example's container port (named http): where each pod's simulator listens. */
const POD_PORT = 8000;
/** Done when: a hung pod replaced by a Ready, answering pod within this, at the shipped settings. */
const WITHIN_MS = 90_000;

const repoFile = (path: string) => readFileSync(fileURLToPath(new URL(`../../${path}`, import.meta.url)), 'utf8');
const dir = mkdtempSync(join(tmpdir(), 'qs-kube-loop-'));

let cp: KubeControlPlane | undefined;
let sims: PodSims | undefined;
let exporter: RunningExporter | undefined;
let remediator: RunningRemediator | undefined;
let prometheus: ExternalProcess | undefined;
let alertmanager: ExternalProcess | undefined;
let promUrl = '';
let amUrl = '';
/** The two pods the loop started with, probed healthy. */
let original: PodView[] = [];

/** The chart as a user of the example installs it: one target, qwen3 in llm, restarted by deleting its pod. */
const values = {
  remediator: {
    targets: [{ name: 'qwen3', url: 'http://qwen3.llm.svc:8000/v1', server: 'vllm', namespace: NS, selector: { 'app.kubernetes.io/name': 'qwen3' }, method: 'delete' }],
    config: { alertmanager: { url: 'http://alertmanager-operated.monitoring.svc:9093' } },
  },
};

async function render(): Promise<KubeObject[]> {
  const home = join(dir, 'helm-home');
  const file = join(dir, 'values.yaml');
  writeFileSync(file, stringify(values));
  const res = await runHelm(helm!, ['template', RELEASE, chartDir, '--namespace', MONITORING, '-f', file], home);
  if (res.code !== 0) throw new Error(`helm template failed (${res.code}): ${res.stderr}`);
  return parseObjects(res.stdout);
}

const one = (objects: KubeObject[], kind: string, name?: string): KubeObject => {
  const found = objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  assert.equal(found.length, 1, `one ${kind}${name ? ` ${name}` : ''} in the render, found ${found.length}`);
  return found[0]!;
};

async function apply(objects: unknown[]): Promise<void> {
  const r = await cp!.kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }) });
  assert.equal(r.code, 0, r.stderr);
}

/** The Deployment's pods now, from the API server. */
async function deploymentPods(): Promise<PodView[]> {
  return (await sims!.list()).filter((p) => p.owner !== undefined);
}

/** An instant query's result vector. */
async function query(expr: string): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>> {
  const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(expr)}`, { signal: AbortSignal.timeout(10_000) });
  const body = (await res.json()) as { status: string; data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> } };
  assert.equal(body.status, 'success', JSON.stringify(body));
  return body.data.result;
}

/** The pod answers a chat completion at its IP (what the Service would send it). */
async function answersChat(ip: string): Promise<boolean> {
  try {
    const models = (await (await fetch(`http://${ip}:${POD_PORT}/v1/models`, { signal: AbortSignal.timeout(5000) })).json()) as { data: Array<{ id: string }> };
    const res = await fetch(`http://${ip}:${POD_PORT}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: models.data[0]!.id, messages: [{ role: 'user', content: 'Say OK.' }], max_tokens: 4 }),
      signal: AbortSignal.timeout(5000),
    });
    // Qwen3 thinks first: the first tokens are reasoning (vLLM's --reasoning-parser=qwen3), not content.
    const body = (await res.json()) as { choices?: Array<{ message?: { content?: string; reasoning_content?: string } }>; usage?: { completion_tokens?: number } };
    const message = body.choices?.[0]?.message;
    return res.status === 200 && (body.usage?.completion_tokens ?? 0) > 0 && `${message?.content ?? ''}${message?.reasoning_content ?? ''}`.length > 0;
  } catch {
    return false;
  }
}

async function actions(): Promise<ActionEntry[]> {
  const res = await fetch(`${remediator!.url}/api/v1/actions`, { signal: AbortSignal.timeout(5000) });
  assert.equal(res.status, 200);
  return ((await res.json()) as { actions: ActionEntry[] }).actions;
}

/** What the loop's parts said, for a failure's message. */
async function diagnostics(): Promise<string> {
  const safe = async (what: string, f: () => Promise<unknown>) => {
    try {
      const value = await f();
      return `--- ${what}\n${typeof value === 'string' ? value : JSON.stringify(value, null, 1)}`;
    } catch (error) {
      return `--- ${what}: ${(error as Error).message}`;
    }
  };
  const tail = (file: string | undefined) => async () => (file ? readFileSync(file, 'utf8').split('\n').slice(-15).join('\n') : '(none)');
  return [
    await safe('remediator actions', actions),
    await safe('Prometheus alerts', async () => (await (await fetch(`${promUrl}/api/v1/alerts`)).json())),
    await safe('Prometheus targets (active)', async () => ((await (await fetch(`${promUrl}/api/v1/targets?state=active`)).json()) as any).data.activeTargets.map((t: any) => ({ labels: t.labels, health: t.health, lastError: t.lastError }))),
    await safe('llm_probe_failure_reason == 1', async () => (await query('llm_probe_failure_reason == 1')).map((r) => r.metric)),
    await safe('pods', deploymentPods),
    await safe('prometheus.log', tail(prometheus?.logFile)),
    await safe('alertmanager.log', tail(alertmanager?.logFile)),
  ].join('\n');
}

before(async () => {
  if (skip) return;
  cp = await startKubeControlPlane(kube!, { nodes: 1 });
  const objects = await render();
  await cp.createNamespace(NS);
  await cp.createNamespace(MONITORING);

  // The remediator's ServiceAccount, Role and RoleBinding exactly as the chart renders them.
  const saName = one(objects, 'Deployment', `${RELEASE}-qwen-sentinel-remediator`).spec.template.spec.serviceAccountName as string;
  const rbac = objects.filter((o) => (o.kind === 'ServiceAccount' && o.metadata.name === saName) || o.kind === 'Role' || o.kind === 'RoleBinding');
  assert.deepEqual(rbac.map((o) => `${o.kind}/${o.metadata.namespace}/${o.metadata.name}`).sort(), [`Role/${NS}/${saName}`, `RoleBinding/${NS}/${saName}`, `ServiceAccount/${MONITORING}/${saName}`]);
  await apply(rbac);

  // Prometheus' own ServiceAccount, allowed to list and watch pods everywhere (the chart's
  // ScrapeConfig looks in all namespaces by default; kube-prometheus-stack's ClusterRole allows it).
  await apply([
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'prometheus', namespace: MONITORING } },
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: 'qs-test-prometheus' }, rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] }] },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'qs-test-prometheus' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'qs-test-prometheus' },
      subjects: [{ kind: 'ServiceAccount', name: 'prometheus', namespace: MONITORING }],
    },
  ]);

  // The example Deployment, 2 replicas; it asks for a GPU each, so the fake node has some (the
  // device plugin's job on a real node): enough for a replacement beside a terminating pod.
  const node = (await cp.api('GET', '/api/v1/nodes/kwok-node-0')).body;
  const gpu = { 'nvidia.com/gpu': '4' };
  const patched = await cp.api('PATCH', '/api/v1/nodes/kwok-node-0/status', { status: { capacity: { ...node.status.capacity, ...gpu }, allocatable: { ...node.status.allocatable, ...gpu } } }, { contentType: 'application/merge-patch+json' });
  assert.equal(patched.status, 200, patched.text);
  const deployment = parse(repoFile('examples/kubernetes/vllm-deployment.yaml')) as KubeObject;
  assert.equal(deployment.kind, 'Deployment');
  deployment.spec.replicas = 2;
  await apply([deployment]);

  // A simulated vLLM on each running pod's IP, as the kubelet would run the container.
  sims = startPodSims(cp, { namespace: NS, selector: SELECTOR, port: POD_PORT, sim: { flavor: 'vllm', ttftMs: 10, tokensPerSecond: 500 } });
  original = await waitFor('2 pods of the Deployment Ready, each with its simulator', async () => {
    const list = await deploymentPods();
    return list.length === 2 && list.every((p) => p.ready && !p.terminating && p.ip && sims!.sim(p.uid)) ? list : undefined;
  }, 90_000, 300);

  // The remediator: the chart's rendered config, with what a pod would have mounted (the token
  // file, the ServiceAccount's credentials as a kubeconfig) and the local Alertmanager's URL.
  const remediatorKubeconfig = await serviceAccountKubeconfig(cp, MONITORING, saName, join(dir, 'remediator.kubeconfig'));
  const canDelete = async () => (await cp!.kubectl(['auth', 'can-i', 'delete', 'pods', '-n', NS, `--as=system:serviceaccount:${MONITORING}:${saName}`])).stdout.trim() === 'yes';
  await waitFor('the RoleBinding to take effect', async () => ((await canDelete()) ? true : undefined), 30_000);
  const tokenFile = join(dir, 'webhook-token');
  writeFileSync(tokenFile, `${'t0ken-for-the-kubernetes-loop'}\n`, { mode: 0o600 });
  const [amPort, remediatorPort, promPort] = [await freePort('127.0.0.1'), await freePort('127.0.0.1'), await freePort('127.0.0.1')];
  const am = `127.0.0.1:${amPort}`;
  const rendered = parse(one(objects, 'ConfigMap', `${RELEASE}-qwen-sentinel-remediator`).data['sentinel.yml']);
  rendered.remediator.auth = { bearer_token_file: tokenFile };
  rendered.remediator.alertmanager.url = `http://${am}`;
  rendered.targets[0].remediation.kubeconfig = remediatorKubeconfig;
  const config = parseConfig(rendered, 'the rendered remediator config');
  remediator = await startRemediator({ config, token: await loadToken(config), listen: { host: '127.0.0.1', port: remediatorPort }, logger: silentLogger, storagePath: join(dir, 'remediator-data') });

  // The exporter as the chart runs it: no config file, the shipped modules, /probe for any host.
  exporter = await startExporter({ config: parseConfig({}), listen: { host: '127.0.0.1', port: 0 }, logger: silentLogger });
  const exporterAddress = exporter.url.replace('http://', '');

  // The real Alertmanager with the shipped alertmanager.yml, its remediator receiver rewired.
  const wiring = { exporter: exporterAddress, remediator: `127.0.0.1:${remediatorPort}`, alertmanager: am, tokenFile, interval: '15s' };
  const amConfig = await writeAlertmanagerConfig(dir, wiring);
  alertmanager = startExternal('alertmanager', alertmanagerBin!, [`--config.file=${amConfig}`, `--storage.path=${join(dir, 'alertmanager-data')}`, `--web.listen-address=${am}`, '--cluster.listen-address='], dir, silentLogger);
  amUrl = `http://${am}`;

  // The real Prometheus: the chart's ScrapeConfig as the operator turns it into a job, with
  // kubernetes_sd against this API server as Prometheus' ServiceAccount; the exporter's in-cluster
  // Service address (the job's last relabelling) swapped for the local one; the shipped rules.
  const sc = one(objects, 'ScrapeConfig').spec;
  const promToken = join(dir, 'prometheus-token');
  writeFileSync(promToken, await serviceAccountToken(cp, MONITORING, 'prometheus'), { mode: 0o600 });
  const job = scrapeJobFromScrapeConfig(sc, { apiServer: cp.apiUrl, caFile: cp.caFile, credentialsFile: promToken }) as { relabel_configs: Array<Record<string, unknown>>; scrape_interval: string };
  const toExporter = job.relabel_configs.at(-1)!;
  assert.deepEqual(toExporter, { target_label: '__address__', replacement: `${RELEASE}-qwen-sentinel-exporter.${MONITORING}.svc:19150` });
  toExporter.replacement = exporterAddress;
  const shipped = parse(readFileSync(join(shippedDir, 'prometheus.yml'), 'utf8'));
  const promConfig = {
    // The shipped intervals (15 s), which the chart's ScrapeConfig repeats.
    global: { scrape_interval: shipped.global.scrape_interval, evaluation_interval: shipped.global.evaluation_interval },
    rule_files: [join(shippedDir, 'rules', 'qwen-sentinel.rules.yml')],
    alerting: { alertmanagers: [{ static_configs: [{ targets: [am] }] }] },
    scrape_configs: [job],
  };
  assert.equal(job.scrape_interval, shipped.global.scrape_interval);
  writeFileSync(join(dir, 'prometheus.yml'), stringify(promConfig));
  prometheus = startExternal('prometheus', prometheusBin!, [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'prometheus-data')}`, `--web.listen-address=127.0.0.1:${promPort}`], dir, silentLogger);
  promUrl = `http://127.0.0.1:${promPort}`;
  await Promise.all([alertmanager.ready(amUrl), prometheus.ready(promUrl)]);

  // Both pods discovered from the API server and probed healthy through the exporter.
  await waitFor('both pods probed healthy (llm_server_up 1) with their identity labels', async () => {
    const up = await query('llm_server_up{job="qwen-sentinel-probe"} == 1');
    const uids = up.map((r) => r.metric.pod_uid).sort();
    return up.length === 2 && JSON.stringify(uids) === JSON.stringify(original.map((p) => p.uid).sort()) ? up : undefined;
  }, 90_000, 1000).catch(async (error: Error) => {
    throw new Error(`${error.message}\n${await diagnostics()}`);
  });
}, { timeout: 300_000 });

after(async () => {
  await prometheus?.stop();
  await alertmanager?.stop();
  await remediator?.close();
  await exporter?.close();
  await sims?.stop();
  await cp?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('a hung pod is deleted exactly once and replaced by a Ready, answering pod within 90 s, at the shipped settings', { skip, timeout: 240_000 }, async (t) => {
  const [victim, other] = original as [PodView, PodView];
  // Each pod is probed with its identity labels, and the labels the remediator needs.
  const up = await query('llm_server_up{job="qwen-sentinel-probe"}');
  const labels = up.find((r) => r.metric.pod_uid === victim.uid)!.metric;
  assert.deepEqual({ target: labels.target, namespace: labels.namespace, pod: labels.pod, controller_kind: labels.controller_kind, controller_name: labels.controller_name, module: labels.module }, { target: 'qwen3', namespace: NS, pod: victim.name, controller_kind: 'ReplicaSet', controller_name: victim.owner, module: 'vllm' });
  assert.equal(labels.instance, `http://${victim.ip}:${POD_PORT}/v1`);
  assert.deepEqual(await actions(), [], 'nothing acted on before the fault');

  sims!.sim(victim.uid)!.setFault('hang-generation');
  const faultAt = performance.now();

  // A new pod of the Deployment (a UID not seen before), Ready, its simulator answering a chat.
  const fresh = await waitFor('a new pod Ready and answering, the hung one gone', async () => {
    const list = await deploymentPods();
    const replacement = list.find((p) => !original.some((o) => o.uid === p.uid) && p.ready && !p.terminating && p.ip !== undefined);
    if (!replacement || list.some((p) => p.uid === victim.uid && !p.terminating)) return undefined;
    return (await answersChat(replacement.ip!)) ? replacement : undefined;
  }, WITHIN_MS + 60_000, 500).catch(async (error: Error) => {
    throw new Error(`${error.message}\n${await diagnostics()}`);
  });
  const healedMs = performance.now() - faultAt;
  assert.equal(fresh.owner, victim.owner, 'the replacement is the same ReplicaSet\'s');
  t.diagnostic(`hung pod ${victim.name} -> new pod ${fresh.name} Ready and answering: ${(healedMs / 1000).toFixed(1)} s after the fault`);
  assert.ok(healedMs <= WITHIN_MS, `replaced in ${(healedMs / 1000).toFixed(1)} s, more than ${WITHIN_MS / 1000} s\n${await diagnostics()}`);

  // The remediator deleted that pod, once, and saw the new one answer.
  const done = await waitFor('the action recorded', async () => {
    const list = await actions();
    return list.some((a) => a.outcome !== 'running') ? list : undefined;
  }, 60_000, 500);
  const acted = done.filter((a) => a.outcome === 'success' || a.outcome === 'failure' || a.outcome === 'running');
  assert.equal(acted.length, 1, `one action:\n${JSON.stringify(done, null, 1)}`);
  const [action] = acted as [ActionEntry];
  assert.equal(action.outcome, 'success', action.message);
  assert.equal(action.trigger.alertname, 'LLMServerHung');
  assert.match(action.message, new RegExp(`^deleted pod ${NS}/${victim.name} \\(uid ${victim.uid}\\) of ReplicaSet ${victim.owner}`));
  t.diagnostic(`remediator: ${action.message} (trigger ${action.trigger.source}, time to healthy ${action.time_to_healthy_seconds} s)`);

  // The other pod is the same pod; the Deployment has its 2 replicas.
  const now = await deploymentPods();
  assert.ok(now.some((p) => p.uid === other.uid && !p.terminating), 'the other pod is untouched');
  assert.ok(!now.some((p) => p.uid === victim.uid), 'the hung pod is gone');
  const deploy = (await cp!.api('GET', `/apis/apps/v1/namespaces/${NS}/deployments/qwen3`)).body;
  assert.equal(deploy.spec.replicas, 2);

  // Exactly once: over the next probe rounds nothing else is deleted, no other action is taken,
  // and both pods are probed healthy again. (The hung pod's alert resolves once its target is gone;
  // a late notification about it is at most a `stale` decision, which deletes nothing.)
  const quietUntil = performance.now() + 30_000;
  while (performance.now() < quietUntil) {
    await sleep(3000);
    const list = (await deploymentPods()).filter((p) => !p.terminating);
    assert.deepEqual(list.map((p) => p.uid).sort(), [other.uid, fresh.uid].sort(), 'no further pod replaced');
  }
  const later = await actions();
  assert.deepEqual(later.filter((a) => a.id !== action.id && a.outcome !== 'stale'), [], 'no other action (a late alert about the gone pod is at most `stale`)');
  assert.equal(sims!.started, 3, 'three pods ran in all: the two first and one replacement');
  // Prometheus probes both current pods healthy, and the gone pod's series end (Prometheus marks
  // them stale about two intervals after the target left discovery).
  await waitFor('llm_server_up 1 for exactly the two current pods', async () => {
    const healthy = await query('llm_server_up{job="qwen-sentinel-probe"} == 1');
    return JSON.stringify(healthy.map((r) => r.metric.pod_uid).sort()) === JSON.stringify([other.uid, fresh.uid].sort()) ? true : undefined;
  }, 60_000, 1000).catch(async (error: Error) => {
    throw new Error(`${error.message}\n${await diagnostics()}`);
  });
  const deletions = (await cp!.api('GET', `/api/v1/namespaces/${NS}/events?fieldSelector=${encodeURIComponent('reason=Remediated')}`)).body.items as unknown[];
  assert.equal(deletions.length, 1, 'one Remediated event: one delete');
});
