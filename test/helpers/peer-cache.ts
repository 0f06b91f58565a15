// Where the real peers' builds are cached (test/real-server/build-*.sh): outside the checkout, one
// directory per build, finished when its `ready` marker exists (the scripts write it last).
import { existsSync, readdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export function cacheRoot(): string {
  return process.env.QWEN_SENTINEL_CACHE || join(homedir(), '.cache', 'qwen-sentinel');
}

/** The finished build directories named PREFIX*, holding every file given (relative paths), most recently finished first. */
export function finishedBuilds(prefix: string, files: readonly string[] = []): string[] {
  const root = cacheRoot();
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return [];
  }
  return names
    .filter((name) => name.startsWith(prefix))
    .map((name) => join(root, name))
    .filter((dir) => existsSync(join(dir, 'ready')) && files.every((f) => existsSync(join(dir, f))))
    .sort((a, b) => statSync(join(b, 'ready')).mtimeMs - statSync(join(a, 'ready')).mtimeMs);
}
