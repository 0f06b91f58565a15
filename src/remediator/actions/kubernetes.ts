import { existsSync } from 'node:fs';
import type { AppsV1Api, ConfigurationOptions, CoreV1Api, Observable, ObservableMiddleware, V1Pod } from '@kubernetes/client-node';
import { z } from 'zod';
import { positiveDuration } from '../../config/fields.ts';
import { defineAction, type Action, type ActionDeps, type ActionOutcome, type ProbeHost, type RestartContext, type StartingState } from './types.ts';

// Kubernetes' own formats (apimachinery validation): a DNS-1123 label (namespaces), a DNS-1123
// subdomain (pod names), a UID as the API server mints it, a label key and value.
const dns1123Label = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const dns1123Subdomain = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const uidFormat = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const labelKey = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const labelValue = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;

// Where a pod's service account credentials are mounted (what loadFromCluster reads), under
// `inCluster.root`: '' in a pod; a test points it at a directory of its own.
const serviceAccountToken = '/var/run/secrets/kubernetes.io/serviceaccount/token';
export const inCluster = { root: '' };

export const kubernetesSchema = z.strictObject({
  action: z.literal('kubernetes').describe('The action kind.'),
  namespace: z.string().max(63).regex(dns1123Label, 'a namespace name (DNS-1123 label)').describe("The model server's pods are in this namespace, and only these are acted on: an alert whose `namespace` label names another is refused (decision `invalid`)."),
  selector: z
    .record(z.string().max(253).regex(labelKey, 'a label key'), z.string().max(63).regex(labelValue, 'a label value'))
    .refine((s) => Object.keys(s).length > 0, 'at least one label')
    .describe("The model server's pods: matchLabels (every label, with this value). A pod the alert names that lacks one is not acted on (outcome `invalid`); the replacement checked after an action is one of these."),
  method: z
    .enum(['delete', 'evict', 'rollout'])
    .default('delete')
    .describe('delete: DELETE the pod with preconditions.uid = the alert\'s pod_uid (its controller creates a new one; PodDisruptionBudgets do not apply). evict: the Eviction API (respects PodDisruptionBudgets: a refusal is outcome `blocked`, tried again by the next notification). rollout: restart every pod of the controller, as `kubectl rollout restart` (a strategic-merge PATCH of spec.template\'s annotation kubectl.kubernetes.io/restartedAt of its Deployment, StatefulSet or DaemonSet).'),
  grace_period: positiveDuration.optional().describe("The pod's termination grace period for delete and evict (DeleteOptions.gracePeriodSeconds, whole seconds); default: the pod's own terminationGracePeriodSeconds."),
  kubeconfig: z.string().min(1).optional().describe('A kubeconfig file (its current context). Default: the pod\'s service account when running in a cluster (KUBERNETES_SERVICE_HOST and /var/run/secrets/kubernetes.io/serviceaccount), else $KUBECONFIG or ~/.kube/config.'),
  timeout: positiveDuration.default(30_000).describe('Each call to the Kubernetes API may take this long.'),
  cooldown: positiveDuration.default(120_000).describe('After an action, alerts for this target are not acted on for this long (a new failure after a heal passes it).'),
});
type KubernetesConfig = z.output<typeof kubernetesSchema>;

/**
 * Why an alert's labels cannot name a pod of this target: pod and pod_uid are needed, in
 * Kubernetes' formats, and a namespace label (when there is one) must be the configured one.
 */
export function refusal(labels: Readonly<Record<string, string>>, namespace: string): string | undefined {
  const { pod, pod_uid: uid } = labels;
  if (pod === undefined || uid === undefined) return `a kubernetes target acts on the pod the alert names: label ${pod === undefined ? 'pod' : 'pod_uid'} is missing`;
  if (pod.length > 253 || !dns1123Subdomain.test(pod)) return 'label pod is not a pod name (DNS-1123 subdomain)';
  if (!uidFormat.test(uid)) return 'label pod_uid is not a UID';
  const ns = labels.namespace;
  if (ns !== undefined && ns !== namespace) return `label namespace ${ns.length > 63 || !dns1123Label.test(ns) ? 'is not a namespace name' : `is ${ns}`}: this target's pods are in namespace ${namespace}`;
  return undefined;
}

/** A pod's Ready condition. */
export const isReady = (pod: V1Pod) => (pod.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');

/**
 * What a pod's own state says of its start-up: terminating (somebody is replacing it), a container
 * in CrashLoopBackOff (the kubelet restarts it), or not Ready yet: then since its newest container
 * started (or the pod did), which the `starting` stage holds against startup_timeout. A Ready pod
 * is up: an alert about it is about a server that stopped answering.
 */
export function podStarting(pod: V1Pod): StartingState {
  const name = `pod ${pod.metadata?.name ?? '?'}`;
  if (pod.metadata?.deletionTimestamp) return { starting: true, detail: `${name} is terminating` };
  const statuses = [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])];
  const looping = statuses.find((c) => c.state?.waiting?.reason === 'CrashLoopBackOff');
  if (looping) return { starting: true, detail: `${name}: container ${looping.name} in CrashLoopBackOff (the kubelet restarts it)` };
  if (isReady(pod)) return { starting: false, detail: `${name} is Ready` };
  const starts = statuses.map((c) => c.state?.running?.startedAt).filter((d) => d !== undefined).map((d) => new Date(d).getTime());
  const since = starts.length > 0 ? Math.max(...starts) : new Date(pod.status?.startTime ?? pod.metadata?.creationTimestamp ?? Number.NaN).getTime();
  return { starting: false, ...(Number.isFinite(since) ? { since } : {}), detail: `${name} is ${pod.status?.phase ?? '?'}, not Ready` };
}

/** The workloads a rollout restart patches, by the kind of the pod's controller (a ReplicaSet's is its Deployment). */
const rolloutKinds = { Deployment: 'patchNamespacedDeployment', StatefulSet: 'patchNamespacedStatefulSet', DaemonSet: 'patchNamespacedDaemonSet' } as const;
type RolloutKind = keyof typeof rolloutKinds;

/** What one action did, for the check that follows it: the pods that existed before, and whose replacement to wait for. */
interface Acted {
  pod: string;
  uid: string;
  /** The controller whose new pod replaces it (delete, evict); none: any new pod of the selector (rollout). */
  controllerUid: string | undefined;
  before: Set<string>;
}

interface Clients {
  core: CoreV1Api;
  apps: AppsV1Api;
  /** The library's own promise wrapper, which its middleware returns. */
  Observable: typeof Observable;
}

/** An API error: its HTTP status and the Status message (the client library's ApiException). */
function apiError(err: unknown): { code: number | undefined; message: string } {
  const e = err as { code?: unknown; body?: unknown; message?: string };
  const code = typeof e.code === 'number' ? e.code : undefined;
  let body = e.body;
  if (typeof body === 'string') {
    try {
      body = JSON.parse(body);
    } catch {
      // not a Status
    }
  }
  const status = (body as { message?: unknown } | undefined)?.message;
  const message = typeof status === 'string' ? status : typeof body === 'string' && body ? body : (e.message ?? String(err));
  return { code, message: message.slice(0, 300) };
}

/**
 * Kubernetes owns the server: the pod the alert names (labels namespace, pod, pod_uid) is deleted
 * with preconditions.uid, evicted, or its controller's pods restarted as `kubectl rollout restart`
 * does. A stale alert can never reach the pod that replaced the one it names: the UID must match
 * (409 Conflict otherwise: outcome `stale`). Its pod's state says whether it is starting; after the
 * action, the check probes a new Ready pod of the same controller at its pod IP. Each action
 * leaves a Warning event `Remediated` on the pod (best effort). Talks to the API server with the
 * official client (@kubernetes/client-node), loaded on first use. What it needs (a namespaced
 * Role): pods get/list/delete, pods/eviction create, events create; for rollout, get/patch of the
 * workload (apps deployments, statefulsets or daemonsets).
 */
class KubernetesAction implements Action {
  readonly kind = 'kubernetes';
  readonly #c: KubernetesConfig;
  readonly #d: ActionDeps;
  #clients: Promise<Clients> | undefined;
  #acted: Acted | undefined;

  constructor(config: KubernetesConfig, deps: ActionDeps) {
    this.#c = config;
    this.#d = deps;
  }

  /** The API clients, from the kubeconfig, the pod's service account, or $KUBECONFIG; a failure is retried by the next call. */
  #api(): Promise<Clients> {
    this.#clients ??= (async () => {
      const k8s = await import('@kubernetes/client-node');
      const kc = new k8s.KubeConfig();
      if (this.#c.kubeconfig !== undefined) kc.loadFromFile(this.#c.kubeconfig);
      else if (process.env.KUBERNETES_SERVICE_HOST && existsSync(`${inCluster.root}${serviceAccountToken}`)) kc.loadFromCluster(inCluster.root);
      else kc.loadFromDefault();
      return { core: kc.makeApiClient(k8s.CoreV1Api), apps: kc.makeApiClient(k8s.AppsV1Api), Observable: k8s.Observable };
    })();
    this.#clients.catch(() => (this.#clients = undefined));
    return this.#clients;
  }

  /** Per call (as setHeaderOptions does): its timeout, and a Content-Type of its own (a patch). */
  #options({ Observable }: Clients, contentType?: string): ConfigurationOptions {
    const timeout = this.#c.timeout;
    const middleware: ObservableMiddleware = {
      pre: (request) => {
        request.setSignal(AbortSignal.timeout(timeout));
        if (contentType) request.setHeaderParam('Content-Type', contentType);
        return new Observable(Promise.resolve(request));
      },
      post: (response) => new Observable(Promise.resolve(response)),
    };
    return { middleware: [middleware], middlewareMergeStrategy: 'append' };
  }

  refuse(labels: Readonly<Record<string, string>>): string | undefined {
    return refusal(labels, this.#c.namespace);
  }

  /** The pod the labels name, if it is still that pod (same UID); undefined when it is gone. */
  async #pod(labels: Readonly<Record<string, string>>): Promise<V1Pod | undefined> {
    const api = await this.#api();
    try {
      const pod = await api.core.readNamespacedPod({ name: labels.pod!, namespace: this.#c.namespace }, this.#options(api));
      return pod.metadata?.uid === labels.pod_uid ? pod : undefined;
    } catch (err) {
      if (apiError(err).code === 404) return undefined;
      throw err;
    }
  }

  #selects(pod: V1Pod): boolean {
    const labels = pod.metadata?.labels ?? {};
    return Object.entries(this.#c.selector).every(([k, v]) => labels[k] === v);
  }

  async restart(context: RestartContext): Promise<ActionOutcome> {
    const labels = context.labels ?? {};
    const why = this.refuse(labels);
    if (why !== undefined) return { ok: false, verdict: 'invalid', message: why };
    const name = labels.pod!;
    const uid = labels.pod_uid!;
    const ns = this.#c.namespace;
    const what = `${this.#c.method} pod ${ns}/${name}`;
    const gone: ActionOutcome = { ok: false, verdict: 'stale', message: `${what}: the pod named by the alert (uid ${uid}) is gone; its replacement is not touched` };
    try {
      const pod = await this.#pod(labels);
      if (!pod) return gone;
      if (!this.#selects(pod)) return { ok: false, verdict: 'invalid', message: `${what}: the pod does not match the target's selector ${JSON.stringify(this.#c.selector)}` };
      const owner = pod.metadata?.ownerReferences?.find((o) => o.controller === true);
      if (!owner) return { ok: false, verdict: 'invalid', message: `${what}: the pod has no controller; deleting it would not bring it back` };
      const before = new Set(((await this.#list()).map((p) => p.metadata?.uid)).filter((u) => u !== undefined));
      const grace = this.#c.grace_period === undefined ? undefined : Math.ceil(this.#c.grace_period / 1000);
      const api = await this.#api();
      let done: string;
      if (this.#c.method === 'rollout') {
        const workload = await this.#rollout(pod, owner);
        if (!('kind' in workload)) return workload;
        done = `rollout restart ${workload.kind} ${ns}/${workload.name}`;
        this.#acted = { pod: name, uid, controllerUid: undefined, before };
      } else {
        const deleteOptions = { preconditions: { uid }, ...(grace === undefined ? {} : { gracePeriodSeconds: grace }) };
        try {
          if (this.#c.method === 'evict') {
            await api.core.createNamespacedPodEviction({ name, namespace: ns, body: { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name, namespace: ns }, deleteOptions } }, this.#options(api));
          } else {
            await api.core.deleteNamespacedPod({ name, namespace: ns, body: deleteOptions, ...(grace === undefined ? {} : { gracePeriodSeconds: grace }) }, this.#options(api));
          }
        } catch (err) {
          const e = apiError(err);
          // 409: the UID precondition failed (the name is another pod's now); 404: no such pod.
          if (e.code === 409 || e.code === 404) return gone;
          if (e.code === 429 && this.#c.method === 'evict') return { ok: false, verdict: 'blocked', message: `${what}: a PodDisruptionBudget allows no disruption now (${e.message})` };
          throw err;
        }
        done = `${this.#c.method === 'evict' ? 'evicted' : 'deleted'} pod ${ns}/${name} (uid ${uid}) of ${owner.kind} ${owner.name}`;
        this.#acted = { pod: name, uid, controllerUid: owner.uid, before };
      }
      await this.#event(pod, context, done);
      return { ok: true, message: done };
    } catch (err) {
      const e = apiError(err);
      const message = e.code === 403 ? `${what}: forbidden (RBAC): ${e.message}` : `${what}: ${e.code === undefined ? '' : `HTTP ${e.code}: `}${e.message}`;
      this.#d.logger.error({ target: this.#d.target, pod: `${ns}/${name}`, method: this.#c.method, err: message }, 'kubernetes action failed');
      return { ok: false, message };
    }
  }

  /** The target's pods (the selector's, in the namespace). */
  async #list(): Promise<V1Pod[]> {
    const api = await this.#api();
    const labelSelector = Object.entries(this.#c.selector).map(([k, v]) => `${k}=${v}`).join(',');
    return (await api.core.listNamespacedPod({ namespace: this.#c.namespace, labelSelector }, this.#options(api))).items;
  }

  /**
   * kubectl rollout restart of the pod's workload: a ReplicaSet's Deployment (the ReplicaSet is
   * named after it and the pod-template-hash label), a StatefulSet or a DaemonSet. The workload
   * must select the pod: a name that merely looks right is not enough.
   */
  async #rollout(pod: V1Pod, owner: { kind: string; name: string }): Promise<{ kind: RolloutKind; name: string } | ActionOutcome> {
    const api = await this.#api();
    const { apps } = api;
    const ns = this.#c.namespace;
    const hash = pod.metadata?.labels?.['pod-template-hash'];
    let kind = owner.kind as RolloutKind | 'ReplicaSet';
    let name = owner.name;
    if (kind === 'ReplicaSet' && hash && name.endsWith(`-${hash}`)) [kind, name] = ['Deployment', name.slice(0, -hash.length - 1)];
    if (!(kind in rolloutKinds)) return { ok: false, verdict: 'invalid', message: `rollout of pod ${ns}/${pod.metadata?.name}: its controller ${owner.kind} ${owner.name} is not a Deployment, StatefulSet or DaemonSet` };
    const workload = kind as RolloutKind;
    const read = { Deployment: () => apps.readNamespacedDeployment({ name, namespace: ns }, this.#options(api)), StatefulSet: () => apps.readNamespacedStatefulSet({ name, namespace: ns }, this.#options(api)), DaemonSet: () => apps.readNamespacedDaemonSet({ name, namespace: ns }, this.#options(api)) }[workload];
    const selector = (await read()).spec?.selector;
    const podLabels = pod.metadata?.labels ?? {};
    if (!selector?.matchLabels || selector.matchExpressions?.length || !Object.entries(selector.matchLabels).every(([k, v]) => podLabels[k] === v)) {
      return { ok: false, verdict: 'invalid', message: `rollout of pod ${ns}/${pod.metadata?.name}: ${workload} ${name} does not select it` };
    }
    // As kubectl 1.32 sends it (strategic merge patch, the restartedAt annotation of the template).
    const body = { spec: { template: { metadata: { annotations: { 'kubectl.kubernetes.io/restartedAt': new Date(this.#d.clock.wall()).toISOString() } } } } };
    const options = this.#options(api, 'application/strategic-merge-patch+json');
    const request = { name, namespace: ns, body, fieldManager: 'qwen-sentinel' };
    await apps[rolloutKinds[workload]](request, options);
    return { kind: workload, name };
  }

  /** A Warning event on the pod, as kubectl describe shows it; best effort (logged when it fails). */
  async #event(pod: V1Pod, context: RestartContext, message: string): Promise<void> {
    try {
      const api = await this.#api();
      const now = new Date(this.#d.clock.wall());
      const meta = pod.metadata!;
      await api.core.createNamespacedEvent(
        {
          namespace: this.#c.namespace,
          body: {
            metadata: { generateName: `${meta.name}.`, namespace: this.#c.namespace },
            involvedObject: { apiVersion: 'v1', kind: 'Pod', name: meta.name!, namespace: this.#c.namespace, uid: meta.uid! },
            reason: 'Remediated',
            message: `qwen-sentinel: ${message} (alert ${context.alertname})`.slice(0, 1024),
            type: 'Warning',
            source: { component: 'qwen-sentinel-remediator' },
            firstTimestamp: now,
            lastTimestamp: now,
            count: 1,
          },
        },
        this.#options(api),
      );
    } catch (err) {
      this.#d.logger.warn({ target: this.#d.target, err: apiError(err).message }, 'cannot record a Kubernetes event for the action');
    }
  }

  /** The named pod's own state; undefined when it is gone or cannot be read (the action then decides). */
  async starting(labels?: Readonly<Record<string, string>>): Promise<StartingState | undefined> {
    if (!labels || this.refuse(labels) !== undefined) return undefined;
    try {
      const pod = await this.#pod(labels);
      return pod ? podStarting(pod) : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * confirm: the pod the alert names, at its IP. verify: a pod of the same controller (of the
   * selector, for a rollout) that did not exist before the action, Ready, at its IP: the newest.
   */
  async probeHost(purpose: 'confirm' | 'verify', context: RestartContext): Promise<ProbeHost> {
    const labels = context.labels ?? {};
    try {
      if (purpose === 'confirm') {
        const pod = this.refuse(labels) === undefined ? await this.#pod(labels) : undefined;
        if (!pod) return { message: `pod ${labels.pod ?? '?'} (uid ${labels.pod_uid ?? '?'}) is gone` };
        return pod.status?.podIP ? { host: pod.status.podIP } : { message: `pod ${labels.pod} has no IP` };
      }
      const acted = this.#acted;
      if (!acted || acted.uid !== labels.pod_uid) return { message: 'no action of this alert to check' };
      const fresh = (await this.#list()).filter(
        (p) => !acted.before.has(p.metadata?.uid ?? '') && !p.metadata?.deletionTimestamp && isReady(p) && p.status?.podIP && (acted.controllerUid === undefined || p.metadata?.ownerReferences?.some((o) => o.controller === true && o.uid === acted.controllerUid)),
      );
      const newest = fresh.sort((a, b) => new Date(b.metadata?.creationTimestamp ?? 0).getTime() - new Date(a.metadata?.creationTimestamp ?? 0).getTime())[0];
      return newest ? { host: newest.status!.podIP! } : { message: `no new Ready pod replacing ${acted.pod} yet` };
    } catch (err) {
      return { message: `cannot read pods: ${apiError(err).message}` };
    }
  }

  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  kill(): void {}
  pid(): undefined {
    return undefined;
  }
}

export const kubernetesAction = defineAction({
  name: 'kubernetes',
  description: "Deletes (preconditions.uid), evicts or rollout-restarts the pod the alert names (labels namespace, pod, pod_uid); the pod's state tells one starting, and the check probes the new Ready pod at its IP.",
  owns: false,
  schema: kubernetesSchema,
  create: (config, deps) => new KubernetesAction(config, deps),
});
