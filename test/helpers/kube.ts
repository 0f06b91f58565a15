// A real Kubernetes control plane on 127.0.0.1 for tests: etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler and kwok (fake nodes whose pods become Running and Ready
// without a kubelet, with pod IPs inside 127.0.0.0/8). The binaries are built once by
// test/real-server/build-kube.sh into a cache outside the checkout; this module finds and runs them.
//
// Everything lives in a fresh temp directory (certificates, etcd data, kubeconfigs, one log file per
// process). Each process runs in its own process group and is stopped by that group's id only.
// Nothing binds anything but 127.0.0.1; service and pod addresses are inside 127.0.0.0/8 too, so no
// private-range address appears anywhere (nothing routes service IPs: there is no kube-proxy).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { cacheRoot, finishedBuilds } from './peer-cache.ts';
import { findOnPath } from './require-binary.ts';
import { freePort } from './llama-server.ts';

export const KUBE_BUILD_COMMAND = 'test/real-server/build-kube.sh';

export interface KubeBinaries {
  dir: string;
  kubeApiserver: string;
  kubeControllerManager: string;
  kubeScheduler: string;
  etcd: string;
  kwok: string;
  /** The machine's own kubectl (PATH), not built: the tests drive the cluster with it as a user would. */
  kubectl: string;
  openssl: string;
}

/**
 * The cached control-plane binaries plus kubectl and openssl from PATH, or undefined when any is
 * missing. Only a cache directory with the `ready` marker counts (the build script writes it last);
 * with several versions cached, the most recently finished one wins.
 */
export function findKubeBinaries(): KubeBinaries | undefined {
  const kubectl = findOnPath('kubectl');
  const openssl = findOnPath('openssl');
  if (!kubectl || !openssl) return undefined;
  const dir = finishedBuilds('kube-', ['bin/kube-apiserver', 'bin/kube-controller-manager', 'bin/kube-scheduler', 'bin/etcd', 'bin/kwok'])[0];
  if (dir === undefined) return undefined;
  const bin = join(dir, 'bin');
  return {
    dir,
    kubeApiserver: join(bin, 'kube-apiserver'),
    kubeControllerManager: join(bin, 'kube-controller-manager'),
    kubeScheduler: join(bin, 'kube-scheduler'),
    etcd: join(bin, 'etcd'),
    kwok: join(bin, 'kwok'),
    kubectl,
    openssl,
  };
}

/**
 * Like requireBinary: the binaries, or (outside CI) undefined after a loud warning so the caller
 * skips. Under CI=true anything missing throws, since a skip there would hide a broken setup.
 */
export function requireKubeBinaries(): KubeBinaries | undefined {
  const found = findKubeBinaries();
  if (found) return found;
  const missing = [
    ...(findOnPath('kubectl') ? [] : ['kubectl (not on PATH)']),
    ...(findOnPath('openssl') ? [] : ['openssl (not on PATH: apt-get install openssl)']),
  ];
  const where = `${cacheRoot()}/kube-*/ready`;
  const what = missing.length > 0 ? missing.join(', ') : `the control plane is not built (no ${where}); build it (about 20 min cold on 2 cores): ${KUBE_BUILD_COMMAND}`;
  if (process.env.CI === 'true') throw new Error(`a Kubernetes control plane is required in CI: ${what}`);
  const message = `!!! SKIPPED: ${what}; the Kubernetes control-plane tests do not run.`;
  process.stderr.write(`\n${'!'.repeat(message.length)}\n${message}\n${'!'.repeat(message.length)}\n\n`);
  return undefined;
}

export interface ControlPlaneOptions {
  /** Fake (kwok) nodes to create; default 2. */
  nodes?: number;
  /** Where kwok takes pod IPs from (from its first host address on); default 127.1.0.0/16. */
  podCidr?: string;
  serviceCidr?: string;
  /** Bound on the whole start-up, every wait included; default 180 s (two busy cores). */
  timeoutMs?: number;
  /** Keep the temp directory after stop() (logs, certificates), e.g. to debug a failure. */
  keepDir?: boolean;
}

export interface ApiResponse {
  status: number;
  /** The parsed JSON body, or undefined when the body is not JSON. */
  body: any;
  text: string;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface KubeControlPlane {
  /** https://127.0.0.1:PORT */
  apiUrl: string;
  /** An admin kubeconfig (client certificate in group system:masters). */
  kubeconfig: string;
  dir: string;
  podCidr: string;
  serviceCidr: string;
  /** PEM files: the cluster CA, and the admin client certificate and key. */
  caFile: string;
  adminCertFile: string;
  adminKeyFile: string;
  /** The server's /version gitVersion, e.g. v1.33.13. */
  serverVersion: string;
  /** How long start-up took, certificates to the last Ready node. */
  startupMs: number;
  /** One REST call as the admin (or with `token` as a bearer token instead of the client certificate). */
  api(method: string, path: string, body?: unknown, options?: { contentType?: string; token?: string; timeoutMs?: number }): Promise<ApiResponse>;
  /** Runs the machine's kubectl with the admin kubeconfig; never rejects. */
  kubectl(args: string[], options?: { input?: string; timeoutMs?: number }): Promise<RunResult>;
  /** Creates a namespace and waits for its `default` ServiceAccount (pods are refused before it exists). */
  createNamespace(name: string): Promise<void>;
  /** The last lines of one component's log (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok). */
  logTail(name: string, lines?: number): string;
  stop(): Promise<void>;
}

/** Thrown (through waitFor) when a control-plane process has exited. */
class DiedError extends Error {}

/** Polls `check` until it returns something other than undefined; throws `what` with the last error after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs: number, intervalMs = 250): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      if (error instanceof DiedError) throw error; // a component exited: waiting longer cannot help
      last = (error as Error).message;
    }
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${last})` : ''}`);
    await sleep(intervalMs);
  }
}

function execFileResult(file: string, args: string[], options: { input?: string; timeoutMs?: number; cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(file, args, { cwd: options.cwd, env: options.env, timeout: options.timeoutMs ?? 60_000, maxBuffer: 32 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) + (error && typeof error.code !== 'number' ? `\n${error.message}` : '') });
    });
    // A child that exits without reading its stdin would make the write fail with EPIPE: ignored.
    child.stdin?.on('error', () => {});
    if (options.input !== undefined) child.stdin?.end(options.input);
    else child.stdin?.end();
  });
}

async function mustRun(file: string, args: string[], cwd: string): Promise<void> {
  const result = await execFileResult(file, args, { cwd });
  if (result.code !== 0) throw new Error(`${file} ${args.join(' ')} failed (${result.code}): ${result.stderr}${result.stdout}`);
}

interface Leaf {
  name: string;
  subject: string;
  extensions: string;
}

/** A CA, serving and client certificates (EC P-256, 2 days), and the service-account signing key, with openssl. */
export async function makeCertificates(openssl: string, dir: string, serviceIp: string): Promise<void> {
  const clientExt = 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth';
  const leaves: Leaf[] = [
    {
      name: 'apiserver',
      subject: '/CN=kube-apiserver',
      extensions: `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,IP:${serviceIp},DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local`,
    },
    // The bootstrap ClusterRoleBindings give these users exactly what the components need.
    { name: 'admin', subject: '/O=system:masters/CN=qwen-sentinel-test-admin', extensions: clientExt },
    { name: 'kube-controller-manager', subject: '/CN=system:kube-controller-manager', extensions: clientExt },
    { name: 'kube-scheduler', subject: '/CN=system:kube-scheduler', extensions: clientExt },
    // kwok writes node and pod status, leases and events: as a kubelet-like actor it gets the admin group.
    { name: 'kwok', subject: '/O=system:masters/CN=kwok-controller', extensions: clientExt },
    // The aggregation layer's client (--proxy-client-*); its CA also goes to the controller-manager and
    // scheduler as the request-header CA (their delegated authentication logs errors without one).
    { name: 'front-proxy-client', subject: '/CN=front-proxy-client', extensions: clientExt },
  ];
  const config = [
    '[req]',
    'distinguished_name = dn',
    'prompt = no',
    '[dn]',
    '[ca]',
    'basicConstraints = critical,CA:TRUE',
    'keyUsage = critical,keyCertSign,cRLSign,digitalSignature',
    'subjectKeyIdentifier = hash',
    ...leaves.flatMap((leaf) => [`[${leaf.name}]`, ...leaf.extensions.split('\n').map((line) => line.replace('=', ' = '))]),
    '',
  ].join('\n');
  writeFileSync(join(dir, 'openssl.cnf'), config);
  const curve = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  await mustRun(openssl, ['req', '-x509', ...curve, '-config', 'openssl.cnf', '-extensions', 'ca', '-subj', '/CN=qwen-sentinel-test-ca', '-days', '2', '-keyout', 'ca.key', '-out', 'ca.crt'], dir);
  let serial = 1;
  for (const leaf of leaves) {
    await mustRun(openssl, ['req', '-new', ...curve, '-config', 'openssl.cnf', '-subj', leaf.subject, '-keyout', `${leaf.name}.key`, '-out', `${leaf.name}.csr`], dir);
    await mustRun(openssl, ['x509', '-req', '-in', `${leaf.name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-set_serial', String(++serial), '-days', '2', '-extfile', 'openssl.cnf', '-extensions', leaf.name, '-out', `${leaf.name}.crt`], dir);
  }
  await mustRun(openssl, ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'sa.key'], dir);
  await mustRun(openssl, ['pkey', '-in', 'sa.key', '-pubout', '-out', 'sa.pub'], dir);
}

/** A kubeconfig (JSON, which is YAML) for one client certificate. */
function writeKubeconfig(file: string, apiUrl: string, dir: string, user: string): void {
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'qwen-sentinel-test', cluster: { server: apiUrl, 'certificate-authority': join(dir, 'ca.crt') } }],
    users: [{ name: user, user: { 'client-certificate': join(dir, `${user}.crt`), 'client-key': join(dir, `${user}.key`) } }],
    contexts: [{ name: 'qwen-sentinel-test', context: { cluster: 'qwen-sentinel-test', user } }],
    'current-context': 'qwen-sentinel-test',
  };
  writeFileSync(file, `${JSON.stringify(config, null, 2)}\n`);
}

interface Managed {
  name: string;
  pid: number;
  child: ChildProcess;
  exited: Promise<void>;
  exitReason: string | undefined;
  logFile: string;
}

/** First address of a CIDR plus `offset` (IPv4 only). */
function addressIn(cidr: string, offset: number): string {
  const [base] = cidr.split('/');
  const n = (base ?? '').split('.').reduce((acc, part) => acc * 256 + Number(part), 0) + offset;
  return [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join('.');
}

/** Does `ip` (IPv4) fall inside `cidr`? */
export function ipInCidr(ip: string, cidr: string): boolean {
  const toInt = (address: string) => address.split('.').reduce((acc, part) => acc * 256 + Number(part), 0);
  const [base, bitsText] = cidr.split('/');
  const bits = Number(bitsText);
  if (!/^\d+\.\d+\.\d+\.\d+$/.test(ip) || base === undefined) return false;
  const size = 2 ** (32 - bits);
  return Math.floor(toInt(ip) / size) === Math.floor(toInt(base) / size);
}

/**
 * Starts etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok on 127.0.0.1 and
 * creates `nodes` fake nodes; resolves once every component is healthy and every node Ready. On
 * any failure everything started so far is stopped and the error carries log tails.
 */
export async function startKubeControlPlane(binaries: KubeBinaries, options: ControlPlaneOptions = {}): Promise<KubeControlPlane> {
  const started = performance.now();
  const budget = options.timeoutMs ?? 180_000;
  const remaining = () => Math.max(1000, budget - (performance.now() - started));
  const podCidr = options.podCidr ?? '127.1.0.0/16';
  const serviceCidr = options.serviceCidr ?? '127.2.0.0/24';
  const nodeCount = options.nodes ?? 2;

  const dir = mkdtempSync(join(tmpdir(), 'qwen-sentinel-kube-'));
  const pki = join(dir, 'pki');
  mkdirSync(pki);
  const processes: Managed[] = [];

  // A test process that dies without stop() must not leave the control plane running.
  const killAllSync = () => {
    for (const p of processes) {
      // pid <= 0: never spawned; -pid must never become a broadcast (-1) or init's group.
      if (p.exitReason !== undefined || p.pid <= 1) continue;
      try {
        process.kill(-p.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  };
  process.on('exit', killAllSync);
  // A signal would end this process without 'exit': stop the groups, then die of the same signal.
  const onSignal = (signal: NodeJS.Signals) => {
    killAllSync();
    process.kill(process.pid, signal);
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, onSignal);

  const launch = (name: string, file: string, args: string[], env: NodeJS.ProcessEnv = process.env): Managed => {
    const logFile = join(dir, `${name}.log`);
    const fd = openSync(logFile, 'a');
    // detached: a new session and process group, so the group id is the pid and one signal reaches
    // anything the component forks; nothing is ever signalled by name.
    const child = spawn(file, args, { cwd: dir, env, detached: true, stdio: ['ignore', fd, fd] });
    closeSync(fd);
    const managed: Managed = { name, pid: child.pid ?? -1, child, exitReason: undefined, logFile, exited: Promise.resolve() };
    managed.exited = new Promise<void>((resolve) => {
      child.once('exit', (code, signal) => {
        managed.exitReason ??= `exited with ${signal ?? `code ${code}`}`;
        resolve();
      });
      child.once('error', (error) => {
        managed.exitReason ??= `failed to start: ${error.message}`;
        resolve();
      });
    });
    processes.push(managed);
    return managed;
  };

  const logTail = (name: string, lines = 40): string => {
    try {
      return readFileSync(join(dir, `${name}.log`), 'utf8').split('\n').slice(-lines - 1).join('\n');
    } catch {
      return '(no log)';
    }
  };

  const stopOne = async (p: Managed): Promise<void> => {
    if (p.exitReason !== undefined || p.pid <= 1) return;
    try {
      process.kill(-p.pid, 'SIGTERM');
    } catch {
      return;
    }
    const graceful = await Promise.race([p.exited.then(() => true), sleep(10_000, undefined, { ref: false }).then(() => false)]);
    if (!graceful && p.exitReason === undefined) {
      try {
        process.kill(-p.pid, 'SIGKILL');
      } catch {
        return;
      }
      await p.exited;
    }
  };

  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    // Reverse start order: clients first, etcd last.
    for (const p of [...processes].reverse()) await stopOne(p);
    process.off('exit', killAllSync);
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.off(signal, onSignal);
    if (!options.keepDir) rmSync(dir, { recursive: true, force: true });
  };

  /** Fails fast when a component died instead of waiting out the bound. */
  const alive = (p: Managed): void => {
    if (p.exitReason !== undefined) throw new DiedError(`${p.name} ${p.exitReason}\n--- ${p.name}.log (tail) ---\n${logTail(p.name)}`);
  };

  const tlsGet = (port: number, path: string, withClientCert: boolean): Promise<ApiResponse> =>
    rawRequest({ port, path, method: 'GET', ca: withClientCert ? readFileSync(join(pki, 'ca.crt')) : undefined, cert: withClientCert ? readFileSync(join(pki, 'admin.crt')) : undefined, key: withClientCert ? readFileSync(join(pki, 'admin.key')) : undefined, insecure: !withClientCert, timeoutMs: 5000 });

  try {
    const [etcdPort, etcdPeerPort, apiPort, kcmPort, schedulerPort] = (await distinctFreePorts(5)) as [number, number, number, number, number];
    const apiUrl = `https://127.0.0.1:${apiPort}`;
    await makeCertificates(binaries.openssl, pki, addressIn(serviceCidr, 1));
    const adminKubeconfig = join(dir, 'admin.kubeconfig');
    for (const user of ['admin', 'kube-controller-manager', 'kube-scheduler', 'kwok']) {
      writeKubeconfig(join(dir, user === 'admin' ? 'admin.kubeconfig' : `${user}.kubeconfig`), apiUrl, pki, user);
    }

    // --- etcd: one member, plain HTTP on loopback, fsync off (test data only) ---
    const etcdUrl = `http://127.0.0.1:${etcdPort}`;
    const peerUrl = `http://127.0.0.1:${etcdPeerPort}`;
    const etcd = launch('etcd', binaries.etcd, [
      '--name=test', `--data-dir=${join(dir, 'etcd-data')}`,
      `--listen-client-urls=${etcdUrl}`, `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=${peerUrl}`, `--initial-advertise-peer-urls=${peerUrl}`,
      `--initial-cluster=test=${peerUrl}`, '--initial-cluster-state=new',
      '--unsafe-no-fsync', '--log-level=warn', '--quota-backend-bytes=268435456',
    ]);
    await waitFor('etcd /health', async () => {
      alive(etcd);
      const res = await fetch(`${etcdUrl}/health`, { signal: AbortSignal.timeout(2000) });
      const body = (await res.json()) as { health?: string };
      return res.status === 200 && body.health === 'true' ? true : undefined;
    }, Math.min(60_000, remaining()));

    // --- kube-apiserver ---
    const apiserver = launch('kube-apiserver', binaries.kubeApiserver, [
      `--etcd-servers=${etcdUrl}`,
      '--bind-address=127.0.0.1', `--secure-port=${apiPort}`, '--advertise-address=127.0.0.1',
      `--cert-dir=${join(dir, 'apiserver-certs')}`,
      `--tls-cert-file=${join(pki, 'apiserver.crt')}`, `--tls-private-key-file=${join(pki, 'apiserver.key')}`,
      `--client-ca-file=${join(pki, 'ca.crt')}`,
      `--service-account-issuer=${apiUrl}`,
      `--service-account-key-file=${join(pki, 'sa.pub')}`, `--service-account-signing-key-file=${join(pki, 'sa.key')}`,
      `--service-cluster-ip-range=${serviceCidr}`,
      '--authorization-mode=Node,RBAC',
      `--requestheader-client-ca-file=${join(pki, 'ca.crt')}`, '--requestheader-allowed-names=front-proxy-client',
      '--requestheader-username-headers=X-Remote-User', '--requestheader-group-headers=X-Remote-Group', '--requestheader-extra-headers-prefix=X-Remote-Extra-',
      `--proxy-client-cert-file=${join(pki, 'front-proxy-client.crt')}`, `--proxy-client-key-file=${join(pki, 'front-proxy-client.key')}`,
      // The `kubernetes` Service's Endpoints would carry the advertise address, and Endpoints
      // validation refuses loopback addresses ("may not be in the loopback range"): no reconciler,
      // so the Service exists (ClusterIP from the service CIDR) without Endpoints.
      '--endpoint-reconciler-type=none',
      '--allow-privileged=false', '--profiling=false',
    ]);
    await waitFor('kube-apiserver /readyz', async () => {
      alive(apiserver);
      const res = await tlsGet(apiPort, '/readyz', true);
      return res.status === 200 ? true : undefined;
    }, Math.min(150_000, remaining()), 500);

    // --- kube-controller-manager: every default controller (replicaset, deployment, disruption,
    // serviceaccount, serviceaccount-token, namespace, garbagecollector, nodeipam, nodelifecycle...) ---
    const kcmKubeconfig = join(dir, 'kube-controller-manager.kubeconfig');
    const kcm = launch('kube-controller-manager', binaries.kubeControllerManager, [
      `--kubeconfig=${kcmKubeconfig}`, `--authentication-kubeconfig=${kcmKubeconfig}`, `--authorization-kubeconfig=${kcmKubeconfig}`,
      '--bind-address=127.0.0.1', `--secure-port=${kcmPort}`, `--cert-dir=${join(dir, 'kcm-certs')}`,
      '--leader-elect=false', '--controllers=*',
      '--use-service-account-credentials=true',
      `--service-account-private-key-file=${join(pki, 'sa.key')}`, `--root-ca-file=${join(pki, 'ca.crt')}`,
      `--cluster-signing-cert-file=${join(pki, 'ca.crt')}`, `--cluster-signing-key-file=${join(pki, 'ca.key')}`,
      `--service-cluster-ip-range=${serviceCidr}`,
      '--profiling=false',
    ]);
    // --- kube-scheduler ---
    const schedulerKubeconfig = join(dir, 'kube-scheduler.kubeconfig');
    const scheduler = launch('kube-scheduler', binaries.kubeScheduler, [
      `--kubeconfig=${schedulerKubeconfig}`, `--authentication-kubeconfig=${schedulerKubeconfig}`, `--authorization-kubeconfig=${schedulerKubeconfig}`,
      '--bind-address=127.0.0.1', `--secure-port=${schedulerPort}`, `--cert-dir=${join(dir, 'scheduler-certs')}`,
      '--leader-elect=false', '--profiling=false',
    ]);
    // --- kwok: manages the nodes annotated kwok.x-k8s.io/node=fake; its own work dir, so no
    // ~/.kwok/kwok.yaml of the machine's is read. Pod IPs come from one pool over the pod CIDR,
    // starting at its first host address (127.1.0.1, 127.1.0.2, ...). Nodes get no spec.podCIDR
    // (no --allocate-node-cidrs): kwok would then start each node's pool at the network address
    // (127.1.N.0), which binds on Linux but is no address a real CNI hands out. ---
    const kwokWork = join(dir, 'kwok-workdir');
    mkdirSync(kwokWork);
    const kwok = launch('kwok', binaries.kwok, [
      `--kubeconfig=${join(dir, 'kwok.kubeconfig')}`,
      '--manage-all-nodes=false', '--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake',
      `--cidr=${addressIn(podCidr, 1)}/${podCidr.split('/')[1]}`, '--node-ip=127.0.0.1',
      // Node leases, renewed as a kubelet renews its own: without them the node lifecycle
      // controller sees no heartbeat within its grace period (50 s) and marks every node, and
      // every pod on it, not Ready.
      '--node-lease-duration-seconds=40',
    ], { ...process.env, KWOK_WORKDIR: kwokWork });

    for (const [p, port] of [[kcm, kcmPort], [scheduler, schedulerPort]] as const) {
      await waitFor(`${p.name} /healthz`, async () => {
        alive(p);
        const res = await tlsGet(port, '/healthz', false);
        return res.status === 200 ? true : undefined;
      }, Math.min(90_000, remaining()), 500);
    }

    const admin = makeApi(apiPort, pki);
    for (let i = 0; i < nodeCount; i++) {
      const name = `kwok-node-${i}`;
      const res = await admin('POST', '/api/v1/nodes', {
        apiVersion: 'v1',
        kind: 'Node',
        metadata: {
          name,
          annotations: { 'kwok.x-k8s.io/node': 'fake', 'node.alpha.kubernetes.io/ttl': '0' },
          labels: { 'kubernetes.io/hostname': name, 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': 'amd64', type: 'kwok' },
        },
      });
      if (res.status !== 201) throw new Error(`creating node ${name}: ${res.status} ${res.text}`);
    }
    await waitFor(`${nodeCount} kwok nodes Ready`, async () => {
      alive(kwok);
      alive(kcm);
      const res = await admin('GET', '/api/v1/nodes');
      const nodes = (res.body?.items ?? []) as any[];
      const ready = nodes.filter((n) => (n.status?.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True'));
      return ready.length >= nodeCount ? true : undefined;
    }, Math.min(90_000, remaining()), 500);
    // The `default` namespace's ServiceAccount exists once the serviceaccount controller runs.
    await waitFor('ServiceAccount default/default', async () => ((await admin('GET', '/api/v1/namespaces/default/serviceaccounts/default')).status === 200 ? true : undefined), Math.min(60_000, remaining()));

    const kubectlArgs = (args: string[]) => [`--kubeconfig=${adminKubeconfig}`, `--cache-dir=${join(dir, 'kubectl-cache')}`, ...args];
    const kubectl = (args: string[], opts: { input?: string; timeoutMs?: number } = {}) => execFileResult(binaries.kubectl, kubectlArgs(args), { ...opts, cwd: dir });
    const version = await admin('GET', '/version');
    const serverVersion = String(version.body?.gitVersion ?? 'unknown');

    return {
      apiUrl,
      kubeconfig: adminKubeconfig,
      dir,
      podCidr,
      serviceCidr,
      caFile: join(pki, 'ca.crt'),
      adminCertFile: join(pki, 'admin.crt'),
      adminKeyFile: join(pki, 'admin.key'),
      serverVersion,
      startupMs: Math.round(performance.now() - started),
      api: admin,
      kubectl,
      async createNamespace(name: string) {
        const res = await admin('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
        if (res.status !== 201) throw new Error(`creating namespace ${name}: ${res.status} ${res.text}`);
        await waitFor(`ServiceAccount ${name}/default`, async () => ((await admin('GET', `/api/v1/namespaces/${name}/serviceaccounts/default`)).status === 200 ? true : undefined), 60_000);
      },
      logTail,
      stop,
    };
  } catch (error) {
    const died = error instanceof DiedError;
    const tails = died ? '' : processes.map((p) => `\n--- ${p.name}.log (tail) ---\n${logTail(p.name, 15)}`).join('');
    const keep = options.keepDir;
    await stop();
    throw new Error(`Kubernetes control plane did not start: ${(error as Error).message}${tails}${keep ? `\n(files kept in ${dir})` : ''}`, { cause: error });
  }
}

async function distinctFreePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}

interface RawRequest {
  port: number;
  path: string;
  method: string;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  token?: string;
  insecure?: boolean;
  body?: string;
  contentType?: string;
  timeoutMs: number;
}

function rawRequest(r: RawRequest): Promise<ApiResponse> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (r.body !== undefined) {
      headers['content-type'] = r.contentType ?? 'application/json';
      headers['content-length'] = String(Buffer.byteLength(r.body));
    }
    if (r.token !== undefined) headers.authorization = `Bearer ${r.token}`;
    const req = httpsRequest({
      host: '127.0.0.1',
      port: r.port,
      path: r.path,
      method: r.method,
      headers,
      ca: r.ca,
      cert: r.token === undefined ? r.cert : undefined,
      key: r.token === undefined ? r.key : undefined,
      // Only the components' own self-signed /healthz endpoints are read without verification.
      rejectUnauthorized: !r.insecure,
      agent: false,
      timeout: r.timeoutMs,
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: unknown;
        try {
          body = JSON.parse(text);
        } catch {
          body = undefined;
        }
        resolve({ status: res.statusCode ?? 0, body, text });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${r.method} ${r.path}: no answer in ${r.timeoutMs} ms`)));
    req.on('error', reject);
    req.end(r.body);
  });
}

function makeApi(port: number, pki: string): KubeControlPlane['api'] {
  const ca = readFileSync(join(pki, 'ca.crt'));
  const cert = readFileSync(join(pki, 'admin.crt'));
  const key = readFileSync(join(pki, 'admin.key'));
  return (method, path, body, options = {}) =>
    rawRequest({
      port,
      path,
      method,
      ca,
      cert,
      key,
      token: options.token,
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      contentType: options.contentType,
      timeoutMs: options.timeoutMs ?? 15_000,
    });
}

/**
 * A kubeconfig that acts as a ServiceAccount: a token from the TokenRequest API (POST
 * .../serviceaccounts/NAME/token, signed by the apiserver's service-account key), the cluster's CA
 * and URL. What a remediator running in the cluster would get, so its calls go through real RBAC.
 */
export async function serviceAccountKubeconfig(cp: KubeControlPlane, namespace: string, name: string, file: string, expirationSeconds = 3600): Promise<string> {
  const res = await cp.api('POST', `/api/v1/namespaces/${namespace}/serviceaccounts/${name}/token`, { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds } });
  if (res.status !== 201 || typeof res.body?.status?.token !== 'string') throw new Error(`TokenRequest for ${namespace}/${name}: HTTP ${res.status}: ${res.text.slice(0, 300)}`);
  const user = `${namespace}-${name}`;
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'test', cluster: { server: cp.apiUrl, 'certificate-authority': cp.caFile } }],
    users: [{ name: user, user: { token: res.body.status.token } }],
    contexts: [{ name: user, context: { cluster: 'test', user, namespace } }],
    'current-context': user,
  };
  writeFileSync(file, `${JSON.stringify(config, null, 1)}\n`, { mode: 0o600 });
  return file;
}

/**
 * A ServiceAccount's bearer token from the TokenRequest API, as a pod of that ServiceAccount would
 * have it mounted (e.g. for Prometheus' kubernetes_sd: authorization.credentials_file).
 */
export async function serviceAccountToken(cp: KubeControlPlane, namespace: string, name: string, expirationSeconds = 3600): Promise<string> {
  const res = await cp.api('POST', `/api/v1/namespaces/${namespace}/serviceaccounts/${name}/token`, { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds } });
  if (res.status !== 201 || typeof res.body?.status?.token !== 'string') throw new Error(`TokenRequest for ${namespace}/${name}: HTTP ${res.status}: ${res.text.slice(0, 300)}`);
  return res.body.status.token as string;
}
