// The real Prometheus with kubernetes_sd, built by test/real-server/build-prometheus.sh into the
// cache outside the checkout (Debian's Prometheus 2.42 is built without kubernetes_sd).
import { join } from 'node:path';
import { cacheRoot, finishedBuilds } from './peer-cache.ts';

export const PROMETHEUS_BUILD_COMMAND = 'test/real-server/build-prometheus.sh';

/** The built prometheus binary (its `ready` marker written last), the most recent when several are cached. */
export function findPrometheusBuild(): string | undefined {
  const dir = finishedBuilds('prometheus-', ['bin/prometheus'])[0];
  return dir === undefined ? undefined : join(dir, 'bin', 'prometheus');
}

/**
 * Like requireBinary: the binary, or (outside CI) undefined after a loud warning so the caller
 * skips. Under CI=true a missing build throws, since a skip there would hide a broken setup.
 */
export function requirePrometheusBuild(): string | undefined {
  const found = findPrometheusBuild();
  if (found) return found;
  const what = `Prometheus with kubernetes_sd is not built (no ${cacheRoot()}/prometheus-*/ready); build it (several minutes cold): ${PROMETHEUS_BUILD_COMMAND}`;
  if (process.env.CI === 'true') throw new Error(`a Prometheus with kubernetes_sd is required in CI: ${what}`);
  const message = `!!! SKIPPED: ${what}; the Kubernetes end-to-end loop does not run.`;
  process.stderr.write(`\n${'!'.repeat(message.length)}\n${message}\n${'!'.repeat(message.length)}\n\n`);
  return undefined;
}
