// The real Helm and the Prometheus Operator's CRDs, built and fetched by test/real-server/build-helm.sh
// into the cache outside the checkout, and the chart's renders parsed into objects.
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { cacheRoot, finishedBuilds } from './peer-cache.ts';

export const HELM_BUILD_COMMAND = 'test/real-server/build-helm.sh';

/** The chart, as `helm` is given it. */
export const chartDir = fileURLToPath(new URL('../../deploy/helm/qwen-sentinel', import.meta.url));

export interface HelmBuild {
  dir: string;
  helm: string;
  /** The operator's CRD files (monitoring.coreos.com_*.yaml), absolute paths. */
  crds: string[];
}

/** The finished build (its `ready` marker written last), the most recent when several are cached. */
export function findHelm(): HelmBuild | undefined {
  const dir = finishedBuilds('helm-', ['bin/helm', 'crds'])[0];
  if (dir === undefined) return undefined;
  const crds = readdirSync(join(dir, 'crds')).filter((f) => /^monitoring\.coreos\.com_.*\.yaml$/.test(f)).sort().map((f) => join(dir, 'crds', f));
  if (crds.length === 0) return undefined;
  return { dir, helm: join(dir, 'bin', 'helm'), crds };
}

/**
 * Like requireBinary: the build, or (outside CI) undefined after a loud warning so the caller skips.
 * Under CI=true a missing build throws, since a skip there would hide a broken setup.
 */
export function requireHelm(): HelmBuild | undefined {
  const found = findHelm();
  if (found) return found;
  const what = `helm and the Prometheus Operator CRDs are not built (no ${cacheRoot()}/helm-*/ready); build them (a few minutes cold): ${HELM_BUILD_COMMAND}`;
  if (process.env.CI === 'true') throw new Error(`helm is required in CI: ${what}`);
  const message = `!!! SKIPPED: ${what}; the Helm chart tests do not run.`;
  process.stderr.write(`\n${'!'.repeat(message.length)}\n${message}\n${'!'.repeat(message.length)}\n\n`);
  return undefined;
}

export interface HelmResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs helm without a shell, with its own config, cache and data directories under `home`; never rejects. */
export function runHelm(build: HelmBuild, args: string[], home: string): Promise<HelmResult> {
  const env = {
    PATH: process.env.PATH ?? '',
    HOME: home,
    HELM_CONFIG_HOME: join(home, 'config'),
    HELM_CACHE_HOME: join(home, 'cache'),
    HELM_DATA_HOME: join(home, 'data'),
  };
  return new Promise((done) => {
    execFile(build.helm, args, { env, timeout: 120_000, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
      done({ code, stdout, stderr });
    });
  });
}

/** A Kubernetes object as rendered. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: any;
}

/** The objects of a multi-document YAML stream (empty documents left out); throws on a YAML error. */
export function parseObjects(text: string): KubeObject[] {
  const objects: KubeObject[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`rendered YAML does not parse: ${doc.errors.map((e) => e.message).join('; ')}`);
    const value = doc.toJS({ maxAliasCount: -1 }) as KubeObject | null;
    if (value !== null && value !== undefined) objects.push(value);
  }
  return objects;
}

/** A Prometheus config key from a Prometheus Operator CRD's camelCase one (sourceLabels -> source_labels). */
const snakeCase = (key: string) => key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/**
 * The operator's RelabelConfig objects (ScrapeConfig relabelings, ServiceMonitor relabelings...) as
 * Prometheus' relabel_configs, converted as the operator does: camelCase keys to snake_case, the
 * action lower-cased (the CRD allows `Keep` and `keep`, `KeepEqual` and `keepequal`). An unknown
 * key is an error, not dropped: the conversion must not hide a field the chart sets.
 */
export function relabelConfigs(relabelings: ReadonlyArray<Record<string, unknown>>): Array<Record<string, unknown>> {
  const known = new Set(['sourceLabels', 'separator', 'targetLabel', 'regex', 'modulus', 'replacement', 'action']);
  return relabelings.map((r, i) => Object.fromEntries(Object.entries(r).map(([k, v]) => {
    if (!known.has(k)) throw new Error(`relabelings[${i}]: unknown field ${k}`);
    return [snakeCase(k), k === 'action' ? String(v).toLowerCase() : v];
  })));
}

/** How Prometheus reaches the API server for kubernetes_sd (what the operator's Prometheus has in-cluster). */
export interface KubernetesSdAccess {
  apiServer: string;
  caFile: string;
  /** A file holding a bearer token allowed to list and watch pods. */
  credentialsFile: string;
}

/**
 * A ScrapeConfig's (monitoring.coreos.com/v1alpha1) spec as the Prometheus scrape job the operator
 * generates from it, for the fields the chart uses: jobName, metricsPath, scrapeInterval,
 * scrapeTimeout, params, kubernetesSDConfigs (role, namespaces, selectors) and relabelings. In a
 * cluster Prometheus uses its in-cluster credentials; here `access` says where the API server is.
 * A field it does not know is an error.
 */
export function scrapeJobFromScrapeConfig(spec: Record<string, any>, access: KubernetesSdAccess): Record<string, unknown> {
  const known = new Set(['jobName', 'metricsPath', 'scrapeInterval', 'scrapeTimeout', 'params', 'kubernetesSDConfigs', 'relabelings']);
  for (const k of Object.keys(spec)) if (!known.has(k)) throw new Error(`ScrapeConfig spec: field ${k} is not converted`);
  const sd = (spec.kubernetesSDConfigs ?? []) as Array<Record<string, any>>;
  return {
    job_name: spec.jobName,
    ...(spec.metricsPath === undefined ? {} : { metrics_path: spec.metricsPath }),
    ...(spec.scrapeInterval === undefined ? {} : { scrape_interval: spec.scrapeInterval }),
    ...(spec.scrapeTimeout === undefined ? {} : { scrape_timeout: spec.scrapeTimeout }),
    ...(spec.params === undefined ? {} : { params: spec.params }),
    kubernetes_sd_configs: sd.map((c, i) => {
      for (const k of Object.keys(c)) if (!['role', 'namespaces', 'selectors'].includes(k)) throw new Error(`kubernetesSDConfigs[${i}]: field ${k} is not converted`);
      return {
        role: String(c.role).toLowerCase(),
        api_server: access.apiServer,
        tls_config: { ca_file: access.caFile },
        authorization: { type: 'Bearer', credentials_file: access.credentialsFile },
        ...(c.namespaces === undefined ? {} : { namespaces: { names: c.namespaces.names ?? [], ...(c.namespaces.ownNamespace ? { own_namespace: true } : {}) } }),
        ...(c.selectors === undefined
          ? {}
          : { selectors: (c.selectors as Array<Record<string, string>>).map((s) => ({ role: String(s.role).toLowerCase(), ...(s.label === undefined ? {} : { label: s.label }), ...(s.field === undefined ? {} : { field: s.field }) })) }),
      };
    }),
    relabel_configs: relabelConfigs(spec.relabelings ?? []),
  };
}
