import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';
import type { TestContext } from 'node:test';

/** Where each external binary the tests use comes from, for the error and warning messages. */
const INSTALL_HINTS: Record<string, string> = {
  prometheus: 'apt-get install prometheus',
  promtool: 'apt-get install prometheus',
  'prometheus-alertmanager': 'apt-get install prometheus-alertmanager',
  alertmanager: 'apt-get install prometheus-alertmanager',
  amtool: 'apt-get install prometheus-alertmanager',
  chromium: 'apt-get install chromium',
  'docker-compose': 'apt-get install docker-compose',
  'systemd-analyze': 'apt-get install systemd',
};

/** Searches PATH for an executable regular file called `name` (no shell involved). */
export function findOnPath(name: string, pathEnv: string | undefined = process.env.PATH): string | undefined {
  const candidates = isAbsolute(name) ? [name] : (pathEnv ?? '').split(delimiter).filter((dir) => dir !== '').map((dir) => join(dir, name));
  for (const file of candidates) {
    try {
      if (!statSync(file).isFile()) continue;
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // Missing or not executable: try the next directory.
    }
  }
  return undefined;
}

/**
 * Returns the absolute path of binary `name` found on PATH.
 *
 * When it is missing: in CI (`CI=true`) throws, since a skipped test there would hide a broken
 * setup; elsewhere prints a loud warning to stderr (also through `t.diagnostic` when a test
 * context is given) and returns undefined, so the caller skips:
 *
 *   const promtool = requireBinary('promtool');
 *   test('rules pass promtool', { skip: !promtool && 'promtool missing' }, ...);
 */
export function requireBinary(name: string, t?: TestContext): string | undefined {
  const found = findOnPath(name);
  if (found !== undefined) return found;
  const hint = INSTALL_HINTS[name] ?? `install ${name}`;
  if (process.env.CI === 'true') {
    throw new Error(`${name} is required in CI but was not found on PATH (${process.env.PATH ?? ''}). Install it: ${hint} (or run .ci/run, which installs everything the suite needs).`);
  }
  const message = `!!! SKIPPED: ${name} not found on PATH; the tests that need it do not run. Install it: ${hint}`;
  process.stderr.write(`\n${'!'.repeat(message.length)}\n${message}\n${'!'.repeat(message.length)}\n\n`);
  t?.diagnostic(message);
  return undefined;
}
