import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StartupError, Teardown } from '../../src/lib/lifecycle.ts';

test('teardown stops in reverse order, once, and every caller waits for the same run', async () => {
  const order: string[] = [];
  const teardown = new Teardown();
  teardown.add(async () => void order.push('dir'));
  teardown.add(async () => {
    await new Promise((r) => setTimeout(r, 20));
    order.push('remediator');
  });
  teardown.add(async () => {
    order.push('exporter');
    throw new Error('a failing step does not stop the others');
  });
  const first = teardown.run();
  const second = teardown.run();
  assert.equal(first, second);
  await second;
  assert.deepEqual(order, ['exporter', 'remediator', 'dir']);
  assert.equal(teardown.started, true);
});

test('a step added after the teardown began (Ctrl-C mid-start) is stopped too, and the caller told', async () => {
  const teardown = new Teardown();
  let stopped = false;
  const run = teardown.run();
  assert.throws(() => teardown.add(async () => { await new Promise((r) => setTimeout(r, 20)); stopped = true; }), StartupError);
  await teardown.run();
  await run;
  assert.equal(stopped, true, 'run() waits for the late step');
});
