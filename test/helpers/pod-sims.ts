// A kubelet stand-in for tests on the real control plane (test/helpers/kube.ts): kwok makes pods
// Running and Ready with loopback IPs (127.1.0.0/16) but runs no container, so this shim starts a
// simulated model server (src/sim/server.ts, in-process) on each Running pod's IP and port, and
// closes it when the pod is terminating or gone, as a kubelet would start and stop the container.
// One simulator per pod UID (a pod recreated under the same name is another pod). Tests reach a
// pod's simulator to inject faults (setFault). Bounded: the poll loop ends after `maxMs`, and
// stop() ends it and closes every simulator it started.
import { setTimeout as sleep } from 'node:timers/promises';
import { startSim, type RunningSim, type SimOptions } from '../../src/sim/server.ts';
import type { KubeControlPlane } from './kube.ts';

export interface PodView {
  name: string;
  uid: string;
  ip: string | undefined;
  phase: string | undefined;
  ready: boolean;
  /** metadata.deletionTimestamp is set: the pod is being deleted. */
  terminating: boolean;
  /** The name of its controller (ownerReference with controller: true), e.g. its ReplicaSet. */
  owner: string | undefined;
  createdAt: string | undefined;
}

export interface PodSimsOptions {
  namespace: string;
  /** A label selector, as the API takes it: `app.kubernetes.io/name=qwen3`. */
  selector: string;
  /** The port each simulator listens on, at its pod's IP (the container port). */
  port: number;
  /** How each simulator is started (flavor, latency...); host and port are the pod's. */
  sim?: Omit<SimOptions, 'host' | 'port'>;
  /** Poll interval; default 250 ms. */
  intervalMs?: number;
  /** The loop ends after this long even without stop(); default 10 minutes. */
  maxMs?: number;
}

export interface PodSims {
  /** The last list of the selector's pods (as read at the latest poll). */
  pods(): PodView[];
  /** The pods read now from the API server. */
  list(): Promise<PodView[]>;
  /** The simulator running for a pod (by UID), if any. */
  sim(uid: string): RunningSim | undefined;
  /** How many simulators were started in all (one per pod that ran). */
  readonly started: number;
  /** Ends the loop and closes every simulator; idempotent. */
  stop(): Promise<void>;
}

export function viewOf(p: any): PodView {
  return {
    name: p.metadata.name,
    uid: p.metadata.uid,
    ip: p.status?.podIP || undefined,
    phase: p.status?.phase,
    ready: (p.status?.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True'),
    terminating: p.metadata.deletionTimestamp !== undefined && p.metadata.deletionTimestamp !== null,
    owner: (p.metadata.ownerReferences ?? []).find((o: any) => o.controller)?.name,
    createdAt: p.metadata.creationTimestamp,
  };
}

/** Starts the shim: one simulator per Running, non-terminating pod with an IP of the selector. */
export function startPodSims(cp: KubeControlPlane, options: PodSimsOptions): PodSims {
  const intervalMs = options.intervalMs ?? 250;
  const deadline = performance.now() + (options.maxMs ?? 600_000);
  const sims = new Map<string, RunningSim>();
  let last: PodView[] = [];
  let started = 0;
  let stopping = false;
  const path = `/api/v1/namespaces/${options.namespace}/pods?labelSelector=${encodeURIComponent(options.selector)}`;

  const list = async (): Promise<PodView[]> => {
    const res = await cp.api('GET', path, undefined, { timeoutMs: 5000 });
    if (res.status !== 200) throw new Error(`listing pods: HTTP ${res.status}: ${res.text.slice(0, 200)}`);
    return (res.body.items as any[]).map(viewOf);
  };

  const round = async (): Promise<void> => {
    const pods = await list();
    last = pods;
    // Close first: a replacement may get the IP the gone pod had.
    const running = new Set(pods.filter((p) => p.phase === 'Running' && !p.terminating && p.ip !== undefined).map((p) => p.uid));
    for (const [uid, sim] of [...sims]) {
      if (running.has(uid)) continue;
      sims.delete(uid);
      await sim.close();
    }
    for (const p of pods) {
      if (stopping || !running.has(p.uid) || sims.has(p.uid)) continue;
      const sim = await startSim({ flavor: 'vllm', onCrash: () => {}, ...options.sim, host: p.ip!, port: options.port });
      // Registered before waiting, so stop() closes it even if it is still loading.
      sims.set(p.uid, sim);
      started++;
      await sim.ready;
    }
  };

  const loop = (async () => {
    while (!stopping && performance.now() < deadline) {
      try {
        await round();
      } catch {
        // The API server busy, an address still closing: the next round tries again.
      }
      await sleep(intervalMs);
    }
  })();

  let stopped: Promise<void> | undefined;
  return {
    pods: () => last,
    list,
    sim: (uid) => sims.get(uid),
    get started() {
      return started;
    },
    stop() {
      stopped ??= (async () => {
        stopping = true;
        await loop;
        const all = [...sims.values()];
        sims.clear();
        await Promise.all(all.map((s) => s.close()));
      })();
      return stopped;
    },
  };
}
