import assert from 'node:assert/strict';
import { test } from 'node:test';
import { deadline, deadlineExceeded, within } from '../../src/lib/deadline.ts';

test('a deadline aborts with the shared timeout reason when its time is up', async () => {
  const d = deadline(new AbortController().signal, 5);
  await new Promise((r) => d.signal.addEventListener('abort', r));
  assert.equal(d.signal.reason, deadlineExceeded);
  d.clear();
});

test('a deadline follows its parent, and once cleared leaves no listener or timer behind', async () => {
  const parent = new AbortController();
  let listeners = 0;
  const add = parent.signal.addEventListener.bind(parent.signal);
  const remove = parent.signal.removeEventListener.bind(parent.signal);
  parent.signal.addEventListener = ((...a: Parameters<typeof add>) => (listeners++, add(...a))) as typeof add;
  parent.signal.removeEventListener = ((...a: Parameters<typeof remove>) => (listeners--, remove(...a))) as typeof remove;
  const cleared = deadline(parent.signal, 20);
  cleared.clear();
  assert.equal(listeners, 0, 'clear removed the listener on the parent');
  await new Promise((r) => setTimeout(r, 40));
  assert.equal(cleared.signal.aborted, false, 'and the timer: it never fired');
  const followed = deadline(parent.signal, 60_000);
  parent.abort(new Error('stop'));
  assert.equal(followed.signal.aborted, true);
  assert.equal((followed.signal.reason as Error).message, 'stop');
  followed.clear();
});

test('reset moves the deadline; within clears it when the work settles', async () => {
  const d = deadline(new AbortController().signal, 10);
  d.reset(60_000);
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(d.signal.aborted, false);
  d.reset(0);
  await new Promise((r) => setTimeout(r, 5));
  assert.equal(d.signal.aborted, true);
  let seen: AbortSignal | undefined;
  assert.equal(await within(new AbortController().signal, 20, async (signal) => ((seen = signal), 7)), 7);
  await new Promise((r) => setTimeout(r, 40));
  assert.equal(seen?.aborted, false, 'no timer left to fire after the work ended');
});
