import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { RoundHistory } from '../../src/exporter/history.ts';
import { Scheduler, type Clock } from '../../src/exporter/scheduler.ts';
import { SeriesStore } from '../../src/exporter/series.ts';
import { silentLogger } from '../../src/log.ts';
import { fakeProbe, oneTarget } from '../helpers/probes.ts';

const store = () => new SeriesStore(new Registry(), { targetLabel: true, cumulative: true });
const series = async (s: SeriesStore, name: string) => (await s.registry.getSingleMetric(name)?.get())?.values ?? [];

test('a round runs the module\'s probes in its order and hands the model the models probe found to later ones', async () => {
  const seen: string[] = [];
  const probeTable = {
    chat: fakeProbe('chat', async (ctx) => (seen.push(`chat:${ctx.model}`), { success: true })),
    models: fakeProbe('models', async () => (seen.push('models'), { success: true, model: 'Qwen/Qwen3-0.6B' })),
  };
  const s = store();
  const scheduler = new Scheduler(oneTarget(['models', 'chat']), { store: s, history: new RoundHistory(), logger: silentLogger, probeTable });
  const report = await scheduler.runRound('t');
  assert.deepEqual(seen, ['models', 'chat:Qwen/Qwen3-0.6B']);
  assert.equal(report?.up, true);
  assert.deepEqual((await series(s, 'llm_server_up')).map((v) => [v.labels, v.value]), [[{ target: 't', model: 'Qwen/Qwen3-0.6B' }, 1]]);
});

test('the order is the module\'s, not a fixed one', async () => {
  const seen: string[] = [];
  const probeTable = { health: fakeProbe('health', async () => (seen.push('health'), { success: true })), models: fakeProbe('models', async () => (seen.push('models'), { success: true })) };
  const scheduler = new Scheduler(oneTarget(['health', 'models']), { store: store(), history: new RoundHistory(), logger: silentLogger, probeTable });
  await scheduler.runRound('t');
  assert.deepEqual(seen, ['health', 'models']);
});

test('the server is down when any probe of the round fails; a throwing probe is a bad_response', async () => {
  const probeTable = { models: fakeProbe('models'), chat: fakeProbe('chat', async () => { throw new Error('boom'); }) };
  const s = store();
  const history = new RoundHistory();
  const scheduler = new Scheduler(oneTarget(['models', 'chat'], { model: 'm' }), { store: s, history, logger: silentLogger, probeTable });
  const report = await scheduler.runRound('t');
  assert.deepEqual(report?.probes[1], { probe: 'chat', success: false, reason: 'bad_response', message: 'probe error: boom', durationSeconds: report!.probes[1]!.durationSeconds });
  assert.equal(report?.up, false);
  // The reason gauge says why, the counter counts it, and the round's log is kept for /logs.
  const reasons = await series(s, 'llm_probe_failure_reason');
  assert.equal(reasons.find((v) => v.labels.probe === 'chat' && v.labels.reason === 'bad_response')?.value, 1);
  assert.equal(reasons.filter((v) => v.value === 1).length, 1);
  assert.match(history.recent()[0]!.log.join('\n'), /chat: FAILED bad_response: probe error: boom/);
});

test('counters and reason gauges are pre-initialised for every probe and the reasons it can report', async () => {
  const s = store();
  new Scheduler(oneTarget(['models', 'chat']), { store: s, history: new RoundHistory(), logger: silentLogger, probeTable: { models: fakeProbe('models'), chat: fakeProbe('chat') } });
  const failures = await series(s, 'llm_probe_failures_total');
  assert.ok(failures.length > 0 && failures.every((v) => v.value === 0));
  assert.ok(failures.some((v) => v.labels.probe === 'chat' && v.labels.reason === 'connect_refused'));
  assert.deepEqual((await series(s, 'llm_probes_total')).map((v) => v.labels.probe), ['models', 'chat']);
});

test('rounds of one target never overlap, even when a round overruns the interval', async () => {
  let active = 0;
  let maxActive = 0;
  let calls = 0;
  // A fake clock: sleeping costs nothing, and each probe "takes" longer than the interval.
  let now = 0;
  const clock: Clock = { now: () => now, sleep: async () => { await new Promise((r) => setImmediate(r)); } };
  const slow = fakeProbe('health', async () => {
    active += 1;
    maxActive = Math.max(maxActive, active);
    calls += 1;
    await new Promise((r) => setImmediate(r));
    now += 15_000;
    active -= 1;
    return { success: true };
  });
  const s = new Scheduler(oneTarget(['health']), { store: store(), history: new RoundHistory(), logger: silentLogger, clock, probeTable: { health: slow } });
  s.start();
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
  const probe = fakeProbe('health', async () => { now += 2_500; return { success: true }; });
  const s = new Scheduler(oneTarget(['health']), { store: store(), history: new RoundHistory(), logger: silentLogger, clock, probeTable: { health: probe } });
  s.start();
  while (sleeps.length < 3) await new Promise((r) => setImmediate(r));
  await s.stop();
  assert.deepEqual(sleeps.slice(0, 3), [7_500, 7_500, 7_500]);
});

test('ready only once every target has completed a full round', async () => {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const config = oneTarget(['models']);
  const s = new Scheduler(config, { store: store(), history: new RoundHistory(), logger: silentLogger, probeTable: { models: fakeProbe('models', async () => (await gate, { success: true })) } });
  assert.equal(s.ready(), false);
  s.start();
  await new Promise((r) => setImmediate(r));
  assert.equal(s.ready(), false, 'a round under way is not a completed one');
  release();
  while (!s.ready()) await new Promise((r) => setImmediate(r));
  await s.stop();
  // A scheduler that replaces it (a reload) starts ready for targets already probed.
  assert.equal(new Scheduler(config, { store: store(), history: new RoundHistory(), logger: silentLogger, probed: s.probed() }).ready(), true);
  // With no targets there is nothing to wait for.
  assert.equal(new Scheduler({ targets: [], modules: {} }, { store: store(), history: new RoundHistory(), logger: silentLogger }).ready(), true);
});
