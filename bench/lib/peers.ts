// The peers the bench compares with, found where the machine has them: on PATH first (Debian's
// packages), then in the cache the test/real-server/build-*.sh scripts fill
// (${QWEN_SENTINEL_CACHE:-~/.cache/qwen-sentinel}/<name>-<version>/, finished when its `ready`
// marker exists, written last).
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { which } from './product.ts';

export const cacheRoot = (): string => process.env.QWEN_SENTINEL_CACHE || join(homedir(), '.cache', 'qwen-sentinel');

/** The version test/real-server/build-blackbox-exporter.sh builds. */
export const blackboxVersion = '0.23.0';

/** blackbox_exporter: PATH (prometheus-blackbox-exporter, blackbox_exporter), then the Go build's cache. */
export async function findBlackbox(): Promise<string | undefined> {
  const onPath = (await which('prometheus-blackbox-exporter')) ?? (await which('blackbox_exporter'));
  if (onPath) return onPath;
  const dir = join(cacheRoot(), `blackbox_exporter-${blackboxVersion}`);
  const bin = join(dir, 'bin', 'blackbox_exporter');
  return existsSync(join(dir, 'ready')) && existsSync(bin) ? bin : undefined;
}
