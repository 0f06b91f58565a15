import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { SimToken } from '../../src/sim/completion.ts';
import { Engine } from '../../src/sim/engine.ts';
import type { SimFault } from '../../src/sim/faults.ts';
import { VirtualTimers } from '../helpers/virtual-timers.ts';

const tokens = (n: number): SimToken[] => Array.from({ length: n }, (_, i) => ({ kind: 'content', text: `t${i}` }));

function setup(o: { slots?: number; streamInterval?: number; fault?: SimFault } = {}) {
  const timers = new VirtualTimers();
  let fault: SimFault = o.fault ?? 'none';
  const engine = new Engine({ ttftMs: 100, tokensPerSecond: 50, slots: o.slots ?? 1, streamInterval: o.streamInterval ?? 1, fault: () => fault, timers });
  const job = (n: number) => {
    const events: string[] = [];
    const cancel = engine.submit(tokens(n), {
      started: () => events.push(`start@${timers.now()}`),
      tokens: (t, last) => events.push(`${t.length}@${timers.now()}${last ? '!' : ''}`),
      error: () => events.push(`error@${timers.now()}`),
    });
    return { events, cancel };
  };
  return { timers, engine, job, setFault: (f: SimFault) => ((fault = f), engine.faultChanged()) };
}

test('the first token comes at ttft, then one every 1/rate, exactly', () => {
  const { timers, job, engine } = setup();
  const a = job(3);
  timers.advance(1000);
  assert.deepEqual(a.events, ['start@0', '1@100', '1@120', '1@140!']);
  assert.equal(engine.generated, 3);
});

test('several tokens per chunk after the first, as vLLM\'s stream interval', () => {
  const { timers, job } = setup({ streamInterval: 3 });
  const a = job(8);
  timers.advance(1000);
  assert.deepEqual(a.events, ['start@0', '1@100', '3@160', '3@220', '1@240!']);
});

test('requests beyond the slots wait in the queue; running and waiting say so', () => {
  const { timers, job, engine } = setup({ slots: 1 });
  const a = job(2);
  const b = job(2);
  assert.deepEqual([engine.running, engine.waiting], [1, 1]);
  assert.deepEqual(b.events, []);
  timers.advance(120);
  assert.deepEqual(b.events, ['start@120']);
  timers.advance(1000);
  assert.deepEqual(b.events, ['start@120', '1@220', '1@240!']);
  assert.deepEqual([engine.running, engine.waiting], [0, 0]);
  assert.equal(a.events.at(-1), '1@120!');
});

test('saturated: every slot busy with other requests, still generating; new ones wait until it clears', () => {
  const { timers, job, engine, setFault } = setup({ slots: 2, fault: 'saturated' });
  const a = job(1);
  timers.advance(1000);
  assert.deepEqual(a.events, []);
  assert.deepEqual([engine.running, engine.waiting], [2, 1]);
  assert.equal(engine.generated, 100, '2 slots at 50 tokens/s for 1 s');
  setFault('none');
  timers.advance(100);
  assert.deepEqual(a.events, ['start@1000', '1@1100!']);
  assert.equal(engine.generated, 101);
});

for (const stall of ['paused', 'asleep', 'hang-generation'] as const) {
  test(`${stall}: nothing starts or advances and the counter stands still; it resumes when cleared`, () => {
    const { timers, job, engine, setFault } = setup({ slots: 2 });
    const a = job(3);
    timers.advance(110); // the first token is out
    setFault(stall);
    const b = job(1);
    timers.advance(5000);
    assert.deepEqual(a.events, ['start@0', '1@100']);
    assert.deepEqual(b.events, []);
    assert.equal(engine.generated, 1);
    assert.equal(engine.waiting, 1);
    setFault('none');
    timers.advance(1000);
    assert.deepEqual(a.events, ['start@0', '1@100', '1@5110', '1@5130!']);
    assert.deepEqual(b.events, ['start@5110', '1@5210!']);
  });
}

test('error mid-generation ends the job with an error; slow tokens come at a tenth of the rate', () => {
  const { timers, job, setFault } = setup();
  const a = job(3);
  timers.advance(100);
  setFault('error');
  timers.advance(100);
  assert.deepEqual(a.events, ['start@0', '1@100', 'error@120']);
  setFault('slow');
  const b = job(2);
  timers.advance(2000);
  assert.deepEqual(b.events, ['start@200', '1@300', '1@500!']);
});

test('a cancelled request frees its slot at once', () => {
  const { timers, job, engine } = setup({ slots: 1 });
  const a = job(100);
  const b = job(1);
  timers.advance(150);
  a.cancel();
  assert.deepEqual(b.events, ['start@150']);
  timers.advance(100);
  assert.deepEqual(b.events, ['start@150', '1@250!']);
  assert.equal(engine.running, 0);
});

test('latency histograms as vLLM keeps them: time to first token includes the queue, then one gap per token', () => {
  const { timers, job, engine } = setup({ slots: 1 });
  job(3);
  job(2); // waits for the slot: 100 + 40 ms in the queue, then its own 100 ms prefill
  timers.advance(1000);
  const ttft = engine.timeToFirstToken;
  assert.equal(ttft.count, 2);
  assert.ok(Math.abs(ttft.sum - (0.1 + 0.24)) < 1e-9);
  assert.equal(ttft.counts[ttft.buckets.indexOf(0.1)], 1, 'the first at 0.1 s, in le="0.1"');
  assert.equal(ttft.counts[ttft.buckets.indexOf(0.25)], 2);
  const gaps = engine.interToken;
  assert.equal(gaps.count, 3, 'two gaps of the first request, one of the second');
  assert.equal(gaps.counts[gaps.buckets.indexOf(0.025)], 3, 'every gap is 1/50 s');
  assert.equal(gaps.counts[gaps.buckets.indexOf(0.01)], 0);
});
