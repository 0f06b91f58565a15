// The services set V8's heap growing factor at start-up (src/lib/v8-memory.ts, from src/cli.ts), unless node was
// started with one of its own: the operator's flag wins. It then runs one full collection, with
// V8's gc function exposed for that call only.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setImmediate as turn } from 'node:timers/promises';
import { runInNewContext } from 'node:vm';
import { collectOnce, heapGrowingPercent, limitHeapGrowth, smallYoungGeneration } from '../../src/lib/v8-memory.ts';

test('the heap growing factor is set when node was started without one', () => {
  const set: string[] = [];
  assert.equal(limitHeapGrowth(['--enable-source-maps'], (flags) => void set.push(flags)), true);
  assert.deepEqual(set, [`--heap-growing-percent=${heapGrowingPercent}`]);
  assert.ok(heapGrowingPercent > 0 && heapGrowingPercent < 300, 'a factor between 1 and 4, as V8 picks');
});

test("node's own --heap-growing-percent (either spelling) is left alone", () => {
  for (const given of [['--heap-growing-percent=80'], ['--heap_growing_percent=80'], ['--heap-growing-percent', '80']]) {
    const set: string[] = [];
    assert.equal(limitHeapGrowth(given, (flags) => void set.push(flags)), false, given.join(' '));
    assert.deepEqual(set, []);
  }
  // A flag that only starts alike is not it.
  const set: string[] = [];
  assert.equal(limitHeapGrowth(['--heap-growing-percentage=1'], (flags) => void set.push(flags)), true);
});

test('collectOnce runs a full collection and leaves gc unexposed', async () => {
  let ref: WeakRef<object> | undefined;
  (() => {
    ref = new WeakRef({ garbage: true });
  })();
  await turn(); // a WeakRef's target is kept until the end of the job that made it
  collectOnce();
  assert.equal(ref!.deref(), undefined, 'an unreachable object was collected');
  assert.equal(runInNewContext('typeof gc'), 'undefined', 'gc is not exposed to code that runs later');
});

test("the young generation is capped at 1 MB semi-spaces, unless node was given its own size", () => {
  const set: string[] = [];
  assert.equal(smallYoungGeneration(['--enable-source-maps'], (flags) => void set.push(flags)), true);
  assert.deepEqual(set, ['--max-semi-space-size=1', '--semi-space-growth-factor=1']);
  const none: string[] = [];
  assert.equal(smallYoungGeneration(['--max-semi-space-size=16'], (flags) => void none.push(flags)), false);
  assert.deepEqual(none, []);
});
