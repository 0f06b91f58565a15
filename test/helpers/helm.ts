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
