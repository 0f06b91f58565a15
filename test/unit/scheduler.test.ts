import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfig } from '../../src/config/load.ts';
import { silentLogger } from '../../src/log.ts';
import type { ProbeName } from '../../src/exporter/probes/index.ts';
import type { ProbeFn, ProbeResult } from '../../src/exporter/probes/types.ts';
import { Scheduler, type Clock, type RoundObserver } from '../../src/exporter/scheduler.ts';

const target = (probes: ProbeName[], extra: object = {}) =>
  parseConfig({ targets: [{ name: 't', url: 'http://127.0.0.1:1/v1', probes, interval: '10s', timeout: '1s', ...extra }] }).targets[0]!;

function recorder() {
  const probes: Array<[string, ProbeName, ProbeResult]> = [];
  const rounds: Array<[string, string | undefined, boolean]> = [];
  const observer: RoundObserver = {
    recordProbe: (t, p, r) => probes.push([t, p, r]),
    recordRound: (t, m, up) => rounds.push([t, m, up]),
  };
  return { probes, rounds, observer };
}

const ok: ProbeFn = async () => ({ success: true });

test('a round runs models first and hands the model it found to chat', async () => {
  const seen: Array<string | undefined> = [];
  const table = {
    chat: (async (ctx) => { seen.push(ctx.model); return { success: true }; }) as ProbeFn,
    health: ok,
    models: (async () => ({ success: true, model: 'Qwen/Qwen3-0.6B' })) as ProbeFn,
  };
  const { probes, rounds, observer } = recorder();
  const s = new Scheduler([target(['chat', 'models'])], { observer, logger: silentLogger, probeTable: table });
  await s.runRound(s.targets[0]!);
  assert.deepEqual(probes.map(([, p]) => p), ['models', 'chat']);
  assert.deepEqual(seen, ['Qwen/Qwen3-0.6B']);
  assert.deepEqual(rounds, [['t', 'Qwen/Qwen3-0.6B', true]]);
});

test('the server is down when any probe of the round fails; a throwing probe is a bad_response', async () => {
  const table = { models: ok, health: ok, chat: (async () => { throw new Error('boom'); }) as ProbeFn };
  const { probes, rounds, observer } = recorder();
  const s = new Scheduler([target(['models', 'chat'], { model: 'm' })], { observer, logger: silentLogger, probeTable: table });
  await s.runRound(s.targets[0]!);
  assert.deepEqual(probes[1]![2], { success: false, reason: 'bad_response', message: 'probe error: boom' });
  assert.deepEqual(rounds, [['t', 'm', false]]);
});

test('rounds of one target never overlap, even when a round overruns the interval', async () => {
  let active = 0;
  let maxActive = 0;
  let calls = 0;
  // A fake clock: sleeping costs nothing, and each probe "takes" longer than the interval.
  let now = 0;
  const clock: Clock = { now: () => now, sleep: async () => { await new Promise((r) => setImmediate(r)); } };
  const slow: ProbeFn = async () => {
    active += 1;
    maxActive = Math.max(maxActive, active);
    calls += 1;
    await new Promise((r) => setImmediate(r));
    now += 15_000;
    active -= 1;
    return { success: true };
  };
  const { observer } = recorder();
  const s = new Scheduler([target(['health'])], { observer, logger: silentLogger, clock, probeTable: { models: ok, health: slow, chat: ok } });
  s.start();
  await s.firstRounds();
  while (calls < 20) await new Promise((r) => setImmediate(r));
  await s.stop();
  assert.equal(maxActive, 1);
});

test('waits out the rest of the interval between rounds', async () => {
  const sleeps: number[] = [];
  let now = 0;
  const clock: Clock = {
    now: () => now,
    sleep: async (ms) => { sleeps.push(ms); now += ms; await new Promise((r) => setImmediate(r)); },
  };
  const probe: ProbeFn = async () => { now += 2_500; return { success: true }; };
  const { observer } = recorder();
  const s = new Scheduler([target(['health'])], { observer, logger: silentLogger, clock, probeTable: { models: ok, health: probe, chat: ok } });
  s.start();
  while (sleeps.length < 3) await new Promise((r) => setImmediate(r));
  await s.stop();
  assert.deepEqual(sleeps.slice(0, 3), [7_500, 7_500, 7_500]);
});
