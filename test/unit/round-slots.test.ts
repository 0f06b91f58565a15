// Rounds that fall due within one slot start together on one timer (src/exporter/scheduler.ts):
// which slot, when a round then starts, and that each target's rounds stay one interval apart.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { RoundHistory } from '../../src/exporter/history.ts';
import { parseConfig } from '../../src/cmd/config.ts';
import { firstRoundOffset, Scheduler, slotLength, slotStart, type Clock } from '../../src/exporter/scheduler.ts';
import { SeriesStore } from '../../src/probing/series.ts';
import { silentLogger } from '../../src/lib/log.ts';
import { fakeProbe } from '../helpers/probes.ts';

const times = (n: number, interval: number) => Array.from({ length: n }, () => interval);

test('the slot holds about eight rounds at the targets\' rate and divides every interval; few targets get none', () => {
  assert.equal(slotLength([]), 0);
  assert.equal(slotLength(times(4, 10_000)), 0, 'under 5 rounds a second: every round on its own timer');
  assert.equal(slotLength(times(74, 15_000)), 0, '4.9 rounds a second');
  assert.equal(slotLength(times(100, 15_000)), 1000, '6.7 rounds a second: 8 rounds would take 1.2 s, the longest slot is 1 s');
  assert.equal(slotLength(times(1000, 15_000)), 100, '67 rounds a second: 8 take 120 ms');
  assert.equal(slotLength(times(10_000, 15_000)), 10);
  assert.equal(slotLength([...times(500, 15_000), ...times(500, 30_000)]), 100, 'mixed intervals: a slot that divides both');
  assert.equal(slotLength([...times(999, 15_000), 15_001]), 0, 'an interval no slot divides: no slots, rounds as due');
  assert.equal(slotLength(times(1000, 7_750)), 50, '7.75 s: 250 and 100 ms do not divide it, 50 ms does');
});

test('a round starts at the first slot boundary at or after it is due, never before', () => {
  assert.equal(slotStart(0, 0, 100), 0);
  assert.equal(slotStart(100, 0, 100), 100, 'on a boundary: at once');
  assert.equal(slotStart(101, 0, 100), 200);
  assert.equal(slotStart(1_234.5, 1_000.25, 100), 1_300.25, 'slots counted from the origin');
  assert.equal(slotStart(1_234.5, 1_000.25, 0), 1_234.5, 'no slots: when due');
});

test('with slots, the rounds of a slot share one timer, each target\'s rounds stay one interval apart, and a first round moves by less than a slot', async () => {
  const n = 1000;
  const interval = 15_000;
  const config = parseConfig({
    modules: { m: { server: 'vllm', probes: ['health'], timeout: '1s' } },
    targets: Array.from({ length: n }, (_, i) => ({ name: `t${i}`, url: `http://127.0.0.1:9/v1?${i}`, module: 'm', interval: '15s' })),
  });
  // A virtual clock: timers fire in order of their time, each exactly on time.
  let now = 5_000;
  const timers: Array<{ at: number; fire: () => void }> = [];
  let sleeps = 0;
  const clock: Clock = {
    now: () => now,
    sleep: (ms, signal) => new Promise<void>((fire) => {
      sleeps += 1;
      timers.push({ at: now + ms, fire });
      signal.addEventListener('abort', () => fire(), { once: true });
    }),
  };
  const starts = new Map<string, number[]>();
  const probe = fakeProbe('health', async (ctx) => {
    starts.set(ctx.target.url, [...(starts.get(ctx.target.url) ?? []), now]);
    return { success: true };
  });
  const s = new Scheduler(config, { store: new SeriesStore(new Registry(), { targetLabel: true, cumulative: true }), history: new RoundHistory(), logger: silentLogger, clock, probeTable: { health: probe } });
  assert.equal(s.slot, 100);
  s.start();
  const settle = async () => { for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r)); };
  await settle();
  // Two and a half intervals of virtual time, timer by timer.
  while (now < 5_000 + 2.5 * interval) {
    timers.sort((a, b) => a.at - b.at);
    const next = timers.shift()!;
    now = next.at;
    next.fire();
    await settle();
  }
  await s.stop();
  let rounds = 0;
  for (let i = 0; i < n; i++) {
    const list = starts.get(`http://127.0.0.1:9/v1?${i}`)!;
    rounds += list.length;
    assert.ok(list.length >= 2, `target ${i} ran ${list.length} rounds`);
    const late = list[0]! - 5_000 - firstRoundOffset(i, n, interval);
    assert.ok(late >= 0 && late < 100, `target ${i}: first round ${late} ms after its spread-out offset`);
    assert.equal((list[0]! - 5_000) % 100, 0, `target ${i}: its first round starts on a slot boundary`);
    list.forEach((at, k) => assert.equal(at - list[0]!, k * interval, `target ${i}, round ${k}`));
  }
  // One timer per slot (150 slots an interval): 2.5 intervals fired and the next interval's set, not one per round.
  assert.ok(sleeps <= 3.5 * 150, `${sleeps} timers for ${rounds} rounds`);
  assert.ok(rounds >= 2 * n);
});

test('without slots (few targets), every round waits on a timer of its own, exactly until due', async () => {
  const config = parseConfig({
    modules: { m: { server: 'vllm', probes: ['health'], timeout: '1s' } },
    targets: [0, 1, 2].map((i) => ({ name: `t${i}`, url: `http://127.0.0.1:${i + 1}/v1`, module: 'm', interval: '7s' })),
  });
  const sleeps: number[] = [];
  let now = 0;
  const timers: Array<{ at: number; fire: () => void }> = [];
  const clock: Clock = {
    now: () => now,
    sleep: (ms, signal) => new Promise<void>((fire) => {
      sleeps.push(ms);
      timers.push({ at: now + ms, fire });
      signal.addEventListener('abort', () => fire(), { once: true });
    }),
  };
  const s = new Scheduler(config, { store: new SeriesStore(new Registry(), { targetLabel: true, cumulative: true }), history: new RoundHistory(), logger: silentLogger, clock, probeTable: { health: fakeProbe('health') } });
  assert.equal(s.slot, 0);
  s.start();
  for (let fired = 0; fired < 6; fired++) {
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    timers.sort((a, b) => a.at - b.at);
    const next = timers.shift()!;
    now = next.at;
    next.fire();
  }
  await s.stop();
  assert.deepEqual(sleeps.slice(0, 5), [2_333, 4_666, 7_000, 7_000, 7_000]);
});
