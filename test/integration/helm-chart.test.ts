// The Helm chart (deploy/helm/qwen-sentinel) with the real Helm (test/real-server/build-helm.sh):
// lint, renders with several values, the remediator's config through the real config schema, the
// rules and the dashboard equal to their one source; then on the real control plane
// (build-kube.sh) with the Prometheus Operator's own CRDs: a server-side dry run of the render
// (and of a broken one, which must fail), a real `helm install`, the remediator's ServiceAccount's
// rights through `kubectl auth can-i`, and the chart's ScrapeConfig relabelling run by the real
// Prometheus against that API server: the example vLLM Deployment's pod (faked by kwok, a
// simulator listening on its loopback pod IP) is probed through the exporter's /probe with the
// labels the rules and the remediator key on.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parse, stringify } from 'yaml';
import { parseConfig } from '../../src/cmd/config.ts';
import { startExternal } from '../../src/cmd/stack/prometheus.ts';
import { startExporter } from '../../src/exporter/server.ts';
import { silentLogger } from '../../src/lib/log.ts';
import { freePort } from '../../src/lib/system.ts';
import { startSim } from '../../src/sim/server.ts';
import { chartDir, parseObjects, requireHelm, runHelm, type HelmBuild, type KubeObject } from '../helpers/helm.ts';
import { requireKubeBinaries, startKubeControlPlane, waitFor, type KubeControlPlane } from '../helpers/kube.ts';
import { requireBinary } from '../helpers/require-binary.ts';

const helm = requireHelm();
const skip = !helm && 'helm not built (see the warning above)';
const home = mkdtempSync(join(tmpdir(), 'qs-helm-'));
after(() => rmSync(home, { recursive: true, force: true }));

const repoFile = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');
/** The example model server: its Deployment and Service. */
const exampleYaml = () => ['vllm-deployment.yaml', 'vllm-service.yaml'].map((f) => repoFile(`examples/kubernetes/${f}`)).join('\n---\n');

/** Two targets in two namespaces: one restarted by deleting its pod, one by a rollout. */
const twoNamespaces = {
  monitoring: { release: 'kube-prometheus-stack' },
  remediator: {
    targets: [
      { name: 'qwen3', url: 'http://qwen3.llm.svc:8000/v1', server: 'vllm', namespace: 'llm', selector: { 'app.kubernetes.io/name': 'qwen3' }, method: 'delete', grace_period: '30s' },
      { name: 'ollama', url: 'http://ollama.llm2.svc:11434/v1', server: 'ollama', model: 'qwen3:0.6b', namespace: 'llm2', selector: { app: 'ollama' }, method: 'rollout' },
    ],
    config: { alertmanager: { url: 'http://alertmanager-operated.monitoring.svc:9093' } },
  },
  probes: [{ name: 'qwen3-svc', url: 'http://qwen3.llm.svc:8000/v1' }, { name: 'ollama-svc', url: 'http://ollama.llm2.svc:11434/v1', module: 'ollama', model: 'qwen3:0.6b' }],
};

let valuesCount = 0;
/** `helm template` with these values (a file each); throws with helm's stderr on failure. */
async function render(values: object = {}, extra: string[] = []): Promise<{ text: string; objects: KubeObject[] }> {
  const file = join(home, `values-${++valuesCount}.yaml`);
  writeFileSync(file, stringify(values));
  const res = await runHelm(helm!, ['template', 'qs', chartDir, '--namespace', 'monitoring', '-f', file, ...extra], home);
  if (res.code !== 0) throw new Error(`helm template failed (${res.code}): ${res.stderr}`);
  return { text: res.stdout, objects: parseObjects(res.stdout) };
}

const ofKind = (objects: KubeObject[], kind: string) => objects.filter((o) => o.kind === kind);
const one = (objects: KubeObject[], kind: string, name?: string) => {
  const found = objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  assert.equal(found.length, 1, `one ${kind}${name ? ` ${name}` : ''}, found ${found.length}`);
  return found[0]!;
};

/** Every RBAC rule of every Role, with the Role's namespace. */
const rulesOf = (objects: KubeObject[]) => ofKind(objects, 'Role').flatMap((r) => (r.rules as Array<{ apiGroups: string[]; resources: string[]; verbs: string[] }>).map((rule) => ({ ns: r.metadata.namespace!, ...rule })));

describe('the Helm chart, rendered by the real helm', { skip }, () => {
  test('helm lint --strict passes, and a bad value fails it (values.schema.json) with the field named', async () => {
    const ok = await runHelm(helm!, ['lint', '--strict', chartDir], home);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
    const bad = await runHelm(helm!, ['lint', '--strict', chartDir, '--set', 'remediator.rbac.rollout=sometimes'], home);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stdout + bad.stderr, /remediator\/rbac\/rollout': value must be one of 'auto', true, false/);
    const typo = await runHelm(helm!, ['lint', '--strict', chartDir, '--set', 'podProbes.modul=vllm'], home);
    assert.notEqual(typo.code, 0);
    assert.match(typo.stdout + typo.stderr, /modul/);
  });

  test('defaults: exporter, remediator, rules, ScrapeConfig, ServiceMonitors, AlertmanagerConfig and dashboard; no Role without a target, nothing cluster-wide', async () => {
    const { objects } = await render();
    const kinds = objects.map((o) => `${o.kind}/${o.metadata.name}`).sort();
    assert.deepEqual(kinds, [
      'AlertmanagerConfig/qs-qwen-sentinel',
      'ConfigMap/qs-qwen-sentinel-dashboard',
      'ConfigMap/qs-qwen-sentinel-remediator',
      'Deployment/qs-qwen-sentinel-exporter',
      'Deployment/qs-qwen-sentinel-remediator',
      'PrometheusRule/qs-qwen-sentinel',
      'ScrapeConfig/qs-qwen-sentinel-pods',
      'Secret/qs-qwen-sentinel-webhook-token',
      'Service/qs-qwen-sentinel-exporter',
      'Service/qs-qwen-sentinel-remediator',
      'ServiceAccount/qs-qwen-sentinel-remediator',
      'ServiceMonitor/qs-qwen-sentinel-exporter',
      'ServiceMonitor/qs-qwen-sentinel-remediator',
    ]);
    for (const o of objects) assert.equal(o.metadata.namespace, 'monitoring', `${o.kind}/${o.metadata.name} in the release namespace`);
    // No release label unless asked for; with it, on every Prometheus Operator object and no other.
    assert.ok(objects.every((o) => o.metadata.labels?.release === undefined));
    const labelled = (await render({ monitoring: { release: 'kps' } })).objects.filter((o) => o.metadata.labels?.release === 'kps').map((o) => o.kind).sort();
    assert.deepEqual(labelled, ['AlertmanagerConfig', 'PrometheusRule', 'ScrapeConfig', 'ServiceMonitor', 'ServiceMonitor']);
    // One remediator, replaced rather than rolled; the exporter gets no API credentials.
    const remediator = one(objects, 'Deployment', 'qs-qwen-sentinel-remediator');
    assert.equal(remediator.spec.replicas, 1);
    assert.equal(remediator.spec.strategy.type, 'Recreate');
    assert.equal(one(objects, 'Deployment', 'qs-qwen-sentinel-exporter').spec.template.spec.automountServiceAccountToken, false);
    // The generated token: long enough for the remediator, a different one per render.
    const token = Buffer.from(one(objects, 'Secret').data.token, 'base64').toString();
    assert.ok(token.length >= 16);
    const again = Buffer.from(one((await render()).objects, 'Secret').data.token, 'base64').toString();
    assert.notEqual(again, token);
  });

  test('a Role and RoleBinding in each managed namespace only; apps rights only where a rollout needs them; no secrets, exec, nodes or ClusterRole anywhere', async () => {
    const check = (objects: KubeObject[], expected: Record<string, boolean>) => {
      assert.deepEqual(ofKind(objects, 'Role').map((r) => r.metadata.namespace).sort(), Object.keys(expected).sort());
      assert.deepEqual(ofKind(objects, 'RoleBinding').map((r) => r.metadata.namespace).sort(), Object.keys(expected).sort());
      assert.deepEqual(objects.filter((o) => /^Cluster/.test(o.kind)), [], 'no ClusterRole or ClusterRoleBinding');
      for (const binding of ofKind(objects, 'RoleBinding')) {
        assert.deepEqual(binding.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'qs-qwen-sentinel-remediator' });
        assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: 'qs-qwen-sentinel-remediator', namespace: 'monitoring' }]);
      }
      const rules = rulesOf(objects);
      for (const rule of rules) {
        for (const r of rule.resources) assert.ok(!/secrets|exec|attach|portforward|proxy|nodes|configmaps|\*/.test(r), `no ${r} (${rule.ns})`);
        assert.ok(!rule.verbs.includes('*') && !rule.apiGroups.includes('*'));
      }
      for (const [ns, rollout] of Object.entries(expected)) {
        const here = rules.filter((r) => r.ns === ns);
        assert.deepEqual(here.find((r) => r.resources.includes('pods'))?.verbs, ['get', 'list', 'watch', 'delete'], ns);
        assert.deepEqual(here.find((r) => r.resources.includes('pods/eviction'))?.verbs, ['create'], ns);
        const apps = here.filter((r) => r.apiGroups.includes('apps'));
        assert.deepEqual(apps, rollout ? [{ ns, apiGroups: ['apps'], resources: ['deployments', 'statefulsets', 'daemonsets'], verbs: ['get', 'patch'] }] : [], `${ns}: apps rights ${rollout}`);
      }
    };
    check((await render(twoNamespaces)).objects, { llm: false, llm2: true });
    check((await render({ ...twoNamespaces, remediator: { ...twoNamespaces.remediator, rbac: { rollout: true } } })).objects, { llm: true, llm2: true });
    check((await render({ ...twoNamespaces, remediator: { ...twoNamespaces.remediator, rbac: { rollout: false } } })).objects, { llm: false, llm2: false });
    check((await render({ ...twoNamespaces, remediator: { ...twoNamespaces.remediator, extraNamespaces: ['llm', 'spare'] } })).objects, { llm: false, llm2: true, spare: false });
    // A target without a namespace, or with an unknown method, is refused, naming it.
    await assert.rejects(render({ remediator: { targets: [{ name: 'x', url: 'http://x:8000/v1', selector: { app: 'x' } }] } }), /remediator\/targets\/0'?: missing property 'namespace'/);
    await assert.rejects(render({ remediator: { targets: [{ name: 'x', url: 'http://x:8000/v1', namespace: 'x', selector: { app: 'x' }, method: 'kill' }] } }), /remediator\/targets\/0\/method'?: value must be one of/);
  });

  test("the remediator's rendered config is the kubernetes action's contract and passes the real config schema", async () => {
    const { objects } = await render(twoNamespaces);
    const config = parse(one(objects, 'ConfigMap', 'qs-qwen-sentinel-remediator').data['sentinel.yml']);
    assert.deepEqual(config.targets[0], {
      name: 'qwen3',
      url: 'http://qwen3.llm.svc:8000/v1',
      server: 'vllm',
      remediation: { action: 'kubernetes', namespace: 'llm', selector: { 'app.kubernetes.io/name': 'qwen3' }, method: 'delete', grace_period: '30s' },
    });
    assert.equal(config.targets[1].remediation.method, 'rollout');
    assert.equal(config.targets[1].model, 'qwen3:0.6b');
    assert.deepEqual(config.remediator, { auth: { bearer_token_file: '/etc/qwen-sentinel/webhook/token' }, alertmanager: { url: 'http://alertmanager-operated.monitoring.svc:9093' } });
    const parsed = parseConfig(config, 'the rendered remediator config');
    assert.equal(parsed.targets.length, 2);
    // The token file is where the Deployment mounts the Secret's key.
    const pod = one(objects, 'Deployment', 'qs-qwen-sentinel-remediator').spec.template.spec;
    const mount = pod.containers[0].volumeMounts.find((m: { name: string }) => m.name === 'webhook-token');
    assert.equal(`${mount.mountPath}/token`, config.remediator.auth.bearer_token_file);
    assert.deepEqual(pod.volumes.find((v: { name: string }) => v.name === 'webhook-token').secret, { secretName: 'qs-qwen-sentinel-webhook-token', items: [{ key: 'token', path: 'token' }] });
    // An existing Secret instead: none rendered, the Deployment and the AlertmanagerConfig use it.
    const existing = (await render({ ...twoNamespaces, remediator: { ...twoNamespaces.remediator, webhookToken: { existingSecret: 'my-token', key: 'bearer' } } })).objects;
    assert.equal(ofKind(existing, 'Secret').length, 0);
    assert.deepEqual(one(existing, 'AlertmanagerConfig').spec.receivers[0].webhookConfigs[0].httpConfig.authorization, { type: 'Bearer', credentials: { name: 'my-token', key: 'bearer' } });
    await assert.rejects(render({ remediator: { webhookToken: { value: 'short' } } }), /at least 16 characters/);
  });

  test('the PrometheusRule holds exactly the groups of prometheus/rules/qwen-sentinel.rules.yml, its {{ $labels }} templates untouched', async () => {
    const { objects } = await render();
    const rule = one(objects, 'PrometheusRule');
    const source = parse(repoFile('prometheus/rules/qwen-sentinel.rules.yml'));
    assert.deepEqual(rule.spec.groups, source.groups);
    assert.match(JSON.stringify(rule.spec.groups), /\{\{ \$labels\.target \}\}/);
    // The chart's copy is what `npm run docs` writes (test/unit/docs.test.ts checks it is current).
    assert.deepEqual(parse(readFileSync(join(chartDir, 'files', 'qwen-sentinel.rules.yml'), 'utf8')), source);
  });

  test("the dashboard ConfigMap carries the Grafana sidecar's label and grafana/dashboards/qwen-sentinel.json", async () => {
    const dashboard = one((await render()).objects, 'ConfigMap', 'qs-qwen-sentinel-dashboard');
    assert.equal(dashboard.metadata.labels!.grafana_dashboard, '1');
    assert.deepEqual(JSON.parse(dashboard.data['qwen-sentinel.json']), JSON.parse(repoFile('grafana/dashboards/qwen-sentinel.json')));
    const custom = one((await render({ dashboard: { label: 'my_dashboards', labelValue: 'enabled' } })).objects, 'ConfigMap', 'qs-qwen-sentinel-dashboard');
    assert.equal(custom.metadata.labels!.my_dashboards, 'enabled');
  });

  test('the ScrapeConfig discovers pods by label and probes them through the exporter; a Probe per plain URL; ServiceMonitors under the dashboard\'s job names', async () => {
    const { objects } = await render(twoNamespaces);
    const sc = one(objects, 'ScrapeConfig').spec;
    assert.equal(sc.metricsPath, '/probe');
    assert.deepEqual(sc.kubernetesSDConfigs, [{ role: 'Pod', selectors: [{ role: 'Pod', label: 'qwen-sentinel.io/probe=true' }] }]);
    const last = sc.relabelings.at(-1);
    assert.deepEqual(last, { targetLabel: '__address__', replacement: 'qs-qwen-sentinel-exporter.monitoring.svc:19150' });
    const labels = new Set(sc.relabelings.map((r: { targetLabel?: string }) => r.targetLabel));
    for (const l of ['target', 'namespace', 'pod', 'pod_uid', 'controller_kind', 'controller_name', '__param_target', '__param_module', '__param_model']) assert.ok(labels.has(l), l);
    // Namespaces to look in, when given.
    const scoped = one((await render({ podProbes: { namespaces: ['llm', 'llm2'] } })).objects, 'ScrapeConfig').spec;
    assert.deepEqual(scoped.kubernetesSDConfigs[0].namespaces, { names: ['llm', 'llm2'] });

    const probes = ofKind(objects, 'Probe');
    assert.deepEqual(probes.map((p) => p.spec.targets.staticConfig), [{ static: ['http://qwen3.llm.svc:8000/v1'], labels: { target: 'qwen3-svc' } }, { static: ['http://ollama.llm2.svc:11434/v1'], labels: { target: 'ollama-svc' } }]);
    assert.deepEqual(probes.map((p) => [p.spec.module, p.spec.prober, p.spec.params]), [
      ['vllm', { url: 'qs-qwen-sentinel-exporter.monitoring.svc:19150', path: '/probe' }, undefined],
      ['ollama', { url: 'qs-qwen-sentinel-exporter.monitoring.svc:19150', path: '/probe' }, [{ name: 'model', values: ['qwen3:0.6b'] }]],
    ]);
    const dashboard = JSON.parse(repoFile('grafana/dashboards/qwen-sentinel.json')) as { templating: { list: Array<{ name: string; query: unknown }> } };
    const jobs = ofKind(objects, 'ServiceMonitor').map((m) => m.spec.endpoints[0].relabelings[0].replacement);
    assert.deepEqual(jobs, ['exporter_job', 'remediator_job'].map((v) => dashboard.templating.list.find((x) => x.name === v)!.query));
  });
});

interface KubePod {
  metadata: { name: string; namespace: string; uid: string; labels?: Record<string, string>; annotations?: Record<string, string>; ownerReferences?: Array<{ kind: string; name: string; controller?: boolean }> };
  spec: { nodeName?: string; containers: KubeContainer[]; initContainers?: KubeContainer[] };
  status: { phase?: string; podIP?: string; hostIP?: string };
}
interface KubeContainer { name: string; image: string; ports?: Array<{ name?: string; containerPort: number; protocol?: string }> }

/** Prometheus' label-name sanitising of Kubernetes label and annotation keys. */
const sanitize = (key: string) => key.replace(/[^a-zA-Z0-9_]/g, '_');

/**
 * The targets kubernetes_sd (role pod) makes of one pod, as Prometheus' discovery/kubernetes/pod.go
 * does: one per declared container port (address podIP:port), one per container without ports
 * (address podIP), each with the pod's and the container's __meta_kubernetes_* labels.
 */
function podTargets(pod: KubePod): Array<{ targets: string[]; labels: Record<string, string> }> {
  const m = pod.metadata;
  const controller = m.ownerReferences?.find((o) => o.controller) ?? m.ownerReferences?.[0];
  const podLabels: Record<string, string> = {
    __meta_kubernetes_namespace: m.namespace,
    __meta_kubernetes_pod_name: m.name,
    __meta_kubernetes_pod_uid: m.uid,
    __meta_kubernetes_pod_ip: pod.status.podIP ?? '',
    __meta_kubernetes_pod_node_name: pod.spec.nodeName ?? '',
    __meta_kubernetes_pod_host_ip: pod.status.hostIP ?? '',
    __meta_kubernetes_pod_phase: pod.status.phase ?? '',
    ...(controller ? { __meta_kubernetes_pod_controller_kind: controller.kind, __meta_kubernetes_pod_controller_name: controller.name } : {}),
  };
  for (const [k, v] of Object.entries(m.labels ?? {})) Object.assign(podLabels, { [`__meta_kubernetes_pod_label_${sanitize(k)}`]: v, [`__meta_kubernetes_pod_labelpresent_${sanitize(k)}`]: 'true' });
  for (const [k, v] of Object.entries(m.annotations ?? {})) Object.assign(podLabels, { [`__meta_kubernetes_pod_annotation_${sanitize(k)}`]: v, [`__meta_kubernetes_pod_annotationpresent_${sanitize(k)}`]: 'true' });
  const groups: Array<{ targets: string[]; labels: Record<string, string> }> = [];
  const containers = [...pod.spec.containers.map((c) => ({ c, init: 'false' })), ...(pod.spec.initContainers ?? []).map((c) => ({ c, init: 'true' }))];
  for (const { c, init } of containers) {
    const base = { ...podLabels, __meta_kubernetes_pod_container_name: c.name, __meta_kubernetes_pod_container_image: c.image, __meta_kubernetes_pod_container_init: init };
    if (!c.ports?.length) {
      groups.push({ targets: [pod.status.podIP ?? ''], labels: base });
      continue;
    }
    for (const port of c.ports) {
      groups.push({
        targets: [`${pod.status.podIP}:${port.containerPort}`],
        labels: { ...base, __meta_kubernetes_pod_container_port_name: port.name ?? '', __meta_kubernetes_pod_container_port_number: String(port.containerPort), __meta_kubernetes_pod_container_port_protocol: port.protocol ?? 'TCP' },
      });
    }
  }
  return groups;
}

// --- on the real control plane ------------------------------------------------------------------

const kube = helm ? requireKubeBinaries() : undefined;
const prometheusBin = requireBinary('prometheus');
const skipKube = skip || (!kube && 'Kubernetes control plane not built (see the warning above)');

describe('the chart on a real API server with the Prometheus Operator CRDs', { skip: skipKube }, () => {
  let cp: KubeControlPlane | undefined;
  const cleanups: Array<() => Promise<unknown>> = [];

  before(async () => {
    cp = await startKubeControlPlane(kube!, { nodes: 1 });
    // The CRDs as the operator ships them; server-side apply (their size exceeds the client-side
    // last-applied annotation), then wait until the API serves them.
    const crds = await cp.kubectl(['apply', '--server-side', ...helm!.crds.flatMap((f) => ['-f', f])], { timeoutMs: 120_000 });
    assert.equal(crds.code, 0, crds.stderr);
    const established = await cp.kubectl(['wait', '--for=condition=Established', 'crd', '--all', '--timeout=90s'], { timeoutMs: 100_000 });
    assert.equal(established.code, 0, established.stderr);
    for (const ns of ['monitoring', 'llm', 'llm2', 'other']) await cp.createNamespace(ns);
  }, { timeout: 360_000 });

  after(async () => {
    for (const c of cleanups.reverse()) await c();
    await cp?.stop();
  });

  const dryRun = (text: string) => cp!.kubectl(['apply', '--dry-run=server', '--validate=strict', '-f', '-'], { input: text, timeoutMs: 60_000 });

  test('the render passes a server-side dry run against the real schemas; a misspelled ScrapeConfig field or a bad enum fails it', { timeout: 120_000 }, async () => {
    const { text, objects } = await render(twoNamespaces);
    const ok = await dryRun(text);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /scrapeconfig\.monitoring\.coreos\.com\/qs-qwen-sentinel-pods created \(server dry run\)/);
    assert.match(ok.stdout, /prometheusrule\.monitoring\.coreos\.com\/qs-qwen-sentinel created \(server dry run\)/);

    const broken = (mutate: (sc: KubeObject) => void) => objects.map((o) => {
      const copy = structuredClone(o);
      if (copy.kind === 'ScrapeConfig') mutate(copy);
      return stringify(copy);
    }).join('---\n');
    const misspelled = await dryRun(broken((sc) => { sc.spec.kubernetesSDConfig = sc.spec.kubernetesSDConfigs; delete sc.spec.kubernetesSDConfigs; }));
    assert.notEqual(misspelled.code, 0, 'a misspelled field is refused');
    assert.match(misspelled.stderr, /unknown field "spec\.kubernetesSDConfig"/);
    const badRole = await dryRun(broken((sc) => { sc.spec.kubernetesSDConfigs[0].role = 'pods'; }));
    assert.notEqual(badRole.code, 0, 'a role outside the enum is refused');
    assert.match(badRole.stderr, /role.*Unsupported value: "pods"/s);

    // The example model server too.
    const example = await dryRun(exampleYaml());
    assert.equal(example.code, 0, example.stderr);
  });

  test("helm install: the remediator's ServiceAccount may delete and evict pods in its namespaces and nothing else", { timeout: 180_000 }, async () => {
    const values = join(home, 'install.yaml');
    writeFileSync(values, stringify(twoNamespaces));
    const install = await runHelm(helm!, ['install', 'qs', chartDir, '--namespace', 'monitoring', '-f', values, '--kubeconfig', cp!.kubeconfig], home);
    assert.equal(install.code, 0, install.stderr);
    const secret = await cp!.api('GET', '/api/v1/namespaces/monitoring/secrets/qs-qwen-sentinel-webhook-token');
    assert.equal(secret.status, 200, secret.text);
    // An upgrade keeps the generated token (Alertmanager and the remediator share it).
    const upgrade = await runHelm(helm!, ['upgrade', 'qs', chartDir, '--namespace', 'monitoring', '-f', values, '--kubeconfig', cp!.kubeconfig], home);
    assert.equal(upgrade.code, 0, upgrade.stderr);
    const after = await cp!.api('GET', '/api/v1/namespaces/monitoring/secrets/qs-qwen-sentinel-webhook-token');
    assert.equal(after.body.data.token, secret.body.data.token, 'the token survives an upgrade');

    const as = 'system:serviceaccount:monitoring:qs-qwen-sentinel-remediator';
    const can = async (args: string[]) => {
      const res = await cp!.kubectl(['auth', 'can-i', ...args, `--as=${as}`]);
      assert.match(res.stdout.trim(), /^(yes|no)$/, `${args.join(' ')}: ${res.stdout}${res.stderr}`);
      return res.stdout.trim() === 'yes';
    };
    const expectations: Array<[string[], boolean]> = [
      [['delete', 'pods', '-n', 'llm'], true],
      [['list', 'pods', '-n', 'llm'], true],
      [['create', 'pods', '--subresource=eviction', '-n', 'llm'], true],
      [['delete', 'pods', '-n', 'llm2'], true],
      [['create', 'events', '-n', 'llm'], true],
      [['patch', 'deployments.apps', '-n', 'llm2'], true],
      [['patch', 'statefulsets.apps', '-n', 'llm2'], true],
      [['get', 'daemonsets.apps', '-n', 'llm2'], true],
      [['patch', 'deployments.apps', '-n', 'llm'], false],
      [['get', 'secrets', '-n', 'llm'], false],
      [['get', 'secrets', '-n', 'monitoring'], false],
      [['list', 'secrets', '-A'], false],
      [['create', 'pods', '--subresource=exec', '-n', 'llm'], false],
      [['create', 'pods', '--subresource=attach', '-n', 'llm'], false],
      [['create', 'pods', '-n', 'llm'], false],
      [['delete', 'pods', '-n', 'other'], false],
      [['create', 'pods', '--subresource=eviction', '-n', 'other'], false],
      [['delete', 'pods', '-n', 'monitoring'], false],
      [['list', 'nodes'], false],
      [['patch', 'nodes'], false],
      [['delete', 'deployments.apps', '-n', 'llm2'], false],
    ];
    const got = [];
    for (const [args] of expectations) got.push([args, await can(args)]);
    assert.deepEqual(got, expectations);
    // And nothing cluster-wide names it.
    const bindings = await cp!.api('GET', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings');
    const its = (bindings.body.items as Array<{ metadata: { name: string }; subjects?: Array<{ kind: string; name: string; namespace?: string }> }>).filter((b) => (b.subjects ?? []).some((s) => s.kind === 'ServiceAccount' && s.name === 'qs-qwen-sentinel-remediator'));
    assert.deepEqual(its.map((b) => b.metadata.name), []);
  });

  test("the real Prometheus runs the chart's ScrapeConfig relabelling on the example vLLM pod as discovered from the API server: probed through the exporter with its identity labels", { skip: !prometheusBin && 'prometheus missing', timeout: 240_000 }, async () => {
    // The example Deployment for real: kwok runs its pod on a fake node with a loopback IP. The
    // example asks for a GPU, so the node gets one (the device plugin's job on a real node).
    const node = (await cp!.api('GET', '/api/v1/nodes/kwok-node-0')).body;
    const gpu = { 'nvidia.com/gpu': '1' };
    const withGpu = await cp!.api('PATCH', '/api/v1/nodes/kwok-node-0/status', { status: { capacity: { ...node.status.capacity, ...gpu }, allocatable: { ...node.status.allocatable, ...gpu } } }, { contentType: 'application/merge-patch+json' });
    assert.equal(withGpu.status, 200, withGpu.text);
    const applied = await cp!.kubectl(['apply', '-f', '-'], { input: exampleYaml() });
    assert.equal(applied.code, 0, applied.stderr);
    const pod = await waitFor('the example pod Running with an IP', async () => {
      const res = await cp!.api('GET', '/api/v1/namespaces/llm/pods?labelSelector=app.kubernetes.io%2Fname%3Dqwen3');
      const p = (res.body?.items ?? [])[0];
      return p?.status?.phase === 'Running' && p.status.podIP ? p : undefined;
    }, 90_000, 300).catch(async (err: Error) => {
      const pods = await cp!.kubectl(['get', 'pods', '-n', 'llm', '-o', 'yaml']);
      throw new Error(`${err.message}\n${pods.stdout}${pods.stderr}`);
    });
    const podIp: string = pod.status.podIP;

    // A simulated vLLM on the pod's IP and port, and an exporter for /probe.
    const sim = await startSim({ host: podIp, port: 8000, flavor: 'vllm', ttftMs: 10, tokensPerSecond: 500 });
    cleanups.push(() => sim.close());
    const exporter = await startExporter({ config: parseConfig({}), listen: { host: '127.0.0.1', port: 0 }, logger: silentLogger });
    cleanups.push(() => exporter.close());

    // The ScrapeConfig as the operator turns it into a scrape job (camelCase to snake_case), the
    // exporter's in-cluster address swapped for the local one. Debian's Prometheus is built without
    // kubernetes_sd, so the discovery is done here as kubernetes_sd does it (role pod: the pods
    // matching the ScrapeConfig's label selector, read from this API server, one target per
    // container port with the __meta_kubernetes_pod_* labels) and handed over through file_sd;
    // the relabelling is Prometheus' own.
    const sc = one((await render(twoNamespaces)).objects, 'ScrapeConfig').spec;
    const snake = (r: Record<string, unknown>) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`), k === 'action' ? String(v).toLowerCase() : v]));
    const relabel_configs = (sc.relabelings as Array<Record<string, unknown>>).map(snake);
    relabel_configs.at(-1)!.replacement = exporter.url.replace('http://', '');
    const sd = sc.kubernetesSDConfigs as Array<{ role: string; selectors: Array<{ role: string; label: string }> }>;
    assert.equal(sd.length, 1);
    assert.equal(sd[0]!.role, 'Pod');
    const listed = await cp!.api('GET', `/api/v1/pods?labelSelector=${encodeURIComponent(sd[0]!.selectors[0]!.label)}`);
    assert.equal(listed.status, 200, listed.text);
    const dir = mkdtempSync(join(tmpdir(), 'qs-helm-prom-'));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, 'pods.yml'), stringify((listed.body.items as KubePod[]).flatMap(podTargets)));
    const job = {
      job_name: sc.jobName,
      metrics_path: sc.metricsPath,
      scrape_interval: '2s',
      scrape_timeout: '1500ms',
      file_sd_configs: [{ files: [join(dir, 'pods.yml')] }],
      relabel_configs,
    };
    writeFileSync(join(dir, 'prometheus.yml'), stringify({ global: { scrape_interval: '2s', evaluation_interval: '2s' }, scrape_configs: [job] }));
    const port = await freePort('127.0.0.1');
    const prometheus = startExternal('prometheus', prometheusBin!, [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`], dir, silentLogger);
    cleanups.push(() => prometheus.stop());
    const api = `http://127.0.0.1:${port}`;
    await prometheus.ready(api);

    // One target: the pod's port named http (not the init container, not another port).
    const targets = await waitFor('the pod as an active target', async () => {
      const res = (await (await fetch(`${api}/api/v1/targets?state=active`)).json()) as { data: { activeTargets: Array<{ labels: Record<string, string>; scrapeUrl: string; health: string }> } };
      return res.data.activeTargets.length > 0 ? res.data.activeTargets : undefined;
    }, 60_000, 500);
    assert.equal(targets.length, 1, JSON.stringify(targets));
    const scrapeUrl = new URL(targets[0]!.scrapeUrl);
    assert.equal(scrapeUrl.host, exporter.url.replace('http://', ''));
    assert.equal(scrapeUrl.pathname, '/probe');
    assert.equal(scrapeUrl.searchParams.get('target'), `http://${podIp}:8000/v1`);
    assert.equal(scrapeUrl.searchParams.get('module'), 'vllm');
    assert.equal(scrapeUrl.searchParams.get('model'), null);

    const query = async (q: string) => ((await (await fetch(`${api}/api/v1/query?query=${encodeURIComponent(q)}`)).json()) as { data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> } }).data.result;
    const up = await waitFor('llm_server_up from the pod', async () => {
      const r = await query('llm_server_up');
      return r.length === 1 ? r[0] : undefined;
    }, 60_000, 500);
    assert.equal(up.value[1], '1', 'the simulated server is healthy');
    const rs = pod.metadata.ownerReferences[0];
    assert.deepEqual({ ...up.metric }, {
      __name__: 'llm_server_up',
      job: 'qwen-sentinel-probe',
      instance: `http://${podIp}:8000/v1`,
      target: 'qwen3',
      module: 'vllm',
      model: 'Qwen/Qwen3-0.6B',
      namespace: 'llm',
      pod: pod.metadata.name,
      pod_uid: pod.metadata.uid,
      controller_kind: rs.kind,
      controller_name: rs.name,
      node: pod.spec.nodeName,
    });
  });
});
