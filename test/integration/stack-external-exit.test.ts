// The stack's Prometheus and Alertmanager exiting on their own: a clean exit (code 0) is said at
// warn, a failure (non-zero code, a signal) at error. /bin/true and friends stand in for them.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { pino } from 'pino';
import { startExternal } from '../../src/cmd/stack/prometheus.ts';
import { StartupError } from '../../src/lib/lifecycle.ts';

const dir = await mkdtemp(join(tmpdir(), 'qs-external-exit-'));
after(() => rm(dir, { recursive: true, force: true }));

/** Runs `file args` as the stack's alertmanager until it exits; returns what was logged about it. */
async function exitLog(file: string, args: string[] = []): Promise<Array<{ level: string; msg: string; code?: number; signal?: string }>> {
  const lines: string[] = [];
  const logger = pino({ level: 'trace', formatters: { level: (label) => ({ level: label }) } }, { write: (line: string) => void lines.push(line) });
  const external = startExternal('alertmanager', file, args, dir, logger);
  // ready() fails once the process has exited (nothing listens on port 1): by then it has logged.
  await assert.rejects(external.ready('http://127.0.0.1:1', 20_000), StartupError);
  return lines.map((line) => JSON.parse(line) as { level: string; msg: string; code?: number; signal?: string });
}

test('an exit with code 0 is a warning that says it exited cleanly', async () => {
  assert.deepEqual((await exitLog('/bin/true')).map(({ level, msg, code }) => ({ level, msg, code })), [{ level: 'warn', msg: 'alertmanager exited cleanly (code 0) while the stack still needs it', code: 0 }]);
});

test('a non-zero exit code or a signal stays an error', async () => {
  assert.deepEqual((await exitLog('/bin/false')).map(({ level, msg, code }) => ({ level, msg, code })), [{ level: 'error', msg: 'alertmanager exited', code: 1 }]);
  assert.deepEqual((await exitLog('/bin/sh', ['-c', 'kill -TERM $$'])).map(({ level, msg, signal }) => ({ level, msg, signal })), [{ level: 'error', msg: 'alertmanager exited', signal: 'SIGTERM' }]);
});
