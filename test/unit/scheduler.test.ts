import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { RoundHistory } from '../../src/exporter/history.ts';
import { parseConfig } from '../../src/cmd/config.ts';
import { ExporterError } from '../../src/probing/errors.ts';
import { firstRoundOffset, Scheduler, type Clock } from '../../src/exporter/scheduler.ts';
import { SeriesStore } from '../../src/probing/series.ts';
import { silentLogger } from '../../src/lib/log.ts';
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
  assert.equal(reasons.length, 1, 'only the reason of the failure: no series for the others');
  assert.match(history.recent()[0]!.log.join('\n'), /chat: FAILED bad_response: probe error: boom/);
});

test('only the run counters are pre-initialised: a healthy round publishes no reason series and no failure counter', async () => {
  const s = store();
  const scheduler = new Scheduler(oneTarget(['models', 'chat'], { model: 'm' }), { store: s, history: new RoundHistory(), logger: silentLogger, probeTable: { models: fakeProbe('models'), chat: fakeProbe('chat') } });
  assert.deepEqual((await series(s, 'llm_probes_total')).map((v) => [v.labels.probe, v.value]), [['models', 0], ['chat', 0]]);
  assert.deepEqual(await series(s, 'llm_probe_failures_total'), []);
  assert.equal((await scheduler.runRound('t'))?.up, true);
  assert.deepEqual(await series(s, 'llm_probe_failure_reason'), []);
  assert.deepEqual(await series(s, 'llm_probe_failures_total'), []);
});

test('a reason series lives while its probe fails with it: replaced by the next reason, removed on success; its counter stays', async () => {
  const outcomes: Array<{ success: true } | { success: false; reason: 'timeout' | 'connect_refused'; message: string }> = [
    { success: false, reason: 'timeout', message: 'slow' },
    { success: false, reason: 'connect_refused', message: 'gone' },
    { success: true },
  ];
  const s = store();
  const scheduler = new Scheduler(oneTarget(['models']), { store: s, history: new RoundHistory(), logger: silentLogger, probeTable: { models: fakeProbe('models', async () => outcomes.shift()!) } });
  const reasons = async () => (await series(s, 'llm_probe_failure_reason')).map((v) => [v.labels.reason, v.value]);
  await scheduler.runRound('t');
  assert.deepEqual(await reasons(), [['timeout', 1]]);
  await scheduler.runRound('t');
  assert.deepEqual(await reasons(), [['connect_refused', 1]]);
  await scheduler.runRound('t');
  assert.deepEqual(await reasons(), []);
  // Each counter created at its reason's first failure, kept after.
  assert.deepEqual((await series(s, 'llm_probe_failures_total')).map((v) => [v.labels.reason, v.value]), [['timeout', 1], ['connect_refused', 1]]);
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

test('targets start their rounds spread over the interval, then keep to a grid however late a timer fires', async () => {
  assert.deepEqual([0, 1, 2, 3].map((i) => firstRoundOffset(i, 4, 15_000)), [0, 3_750, 7_500, 11_250]);
  assert.equal(firstRoundOffset(0, 1, 15_000), 0, 'a single target is probed at once');
  const starts = new Map<string, number[]>();
  // A virtual clock whose timers all fire 300 ms late, as on a busy machine: the grid must not drift.
  let now = 0;
  const timers: Array<{ at: number; fire: () => void }> = [];
  const clock: Clock = {
    now: () => now,
    sleep: (ms, signal) => new Promise<void>((fire) => {
      timers.push({ at: now + ms + 300, fire });
      signal.addEventListener('abort', () => fire(), { once: true });
    }),
  };
  const probe = fakeProbe('health', async (ctx) => {
    starts.set(ctx.target.url, [...(starts.get(ctx.target.url) ?? []), now]);
    return { success: true };
  });
  const config = parseConfig({
    modules: { m: { server: 'vllm', probes: ['health'], timeout: '1s' } },
    targets: [0, 1, 2, 3].map((i) => ({ name: `t${i}`, url: `http://127.0.0.1:${i + 1}/v1`, module: 'm', interval: '10s' })),
  });
  const s = new Scheduler(config, { store: store(), history: new RoundHistory(), logger: silentLogger, clock, probeTable: { health: probe } });
  s.start();
  for (let fired = 0; fired < 40; fired++) {
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    timers.sort((a, b) => a.at - b.at);
    const next = timers.shift()!;
    now = next.at;
    next.fire();
  }
  await s.stop();
  const firsts = [...starts.values()].map((l) => l[0]!);
  assert.deepEqual(firsts, [0, 2_800, 5_300, 7_800], 'first rounds a quarter of the interval apart (the first at once, the others 300 ms late)');
  for (const list of starts.values()) {
    assert.ok(list.length >= 8);
    // Round k is due at first + k * 10 s and starts at most 300 ms late: lateness never accumulates.
    list.forEach((at, k) => assert.ok(at - list[0]! - k * 10_000 <= 300 && at - list[0]! - k * 10_000 >= 0, `round ${k} at ${at - list[0]!} ms`));
  }
});

test('a round the exporter could not run (out of file descriptors) is skipped, not the server down', async () => {
  const skipped: string[] = [];
  const probeTable = { models: fakeProbe('models', async () => { throw new ExporterError('EMFILE', 'too many open files'); }) };
  const s = store();
  const history = new RoundHistory();
  const scheduler = new Scheduler(oneTarget(['models']), { store: s, history, logger: silentLogger, probeTable, onSkipped: (_t, code) => skipped.push(code) });
  const report = await scheduler.runRound('t');
  assert.equal(report?.skipped, 'EMFILE');
  assert.deepEqual(skipped, ['EMFILE']);
  assert.deepEqual(await series(s, 'llm_server_up'), [], 'no up=0 for a server nobody could reach');
  assert.deepEqual(await series(s, 'llm_probe_failures_total'), [], 'and no failure counted');
  assert.deepEqual(await series(s, 'llm_probe_failure_reason'), [], 'nor a reason');
  assert.match(history.recent()[0]?.log.join('\n') ?? '', /round SKIPPED/);
});

test('up goes 0 as soon as a probe of the round fails, not when the round ends: a frozen server takes every deadline', async () => {
  const s = store();
  let upDuringChat: unknown;
  const probeTable = {
    models: fakeProbe('models', async () => ({ success: true, model: 'Qwen/Qwen3-0.6B' })),
    health: fakeProbe('health', async () => ({ success: false, reason: 'timeout', message: 'no answer' })),
    // Still running (a frozen server's next deadline): what does /metrics say of up meanwhile?
    chat: fakeProbe('chat', async () => {
      upDuringChat = (await series(s, 'llm_server_up')).map((v) => [v.labels, v.value]);
      return { success: true };
    }),
  };
  const scheduler = new Scheduler(oneTarget(['models', 'health', 'chat']), { store: s, history: new RoundHistory(), logger: silentLogger, probeTable });
  await scheduler.runRound('t');
  // A first round: labelled with the model the round has found so far.
  assert.deepEqual(upDuringChat, [[{ target: 't', model: 'Qwen/Qwen3-0.6B' }, 0]]);
  assert.deepEqual((await series(s, 'llm_server_up')).map((v) => [v.labels, v.value]), [[{ target: 't', model: 'Qwen/Qwen3-0.6B' }, 0]]);
  // A later round: the same series goes 0 at the failure.
  probeTable.health = fakeProbe('health');
  await scheduler.runRound('t');
  assert.deepEqual((await series(s, 'llm_server_up')).map((v) => [v.labels, v.value]), [[{ target: 't', model: 'Qwen/Qwen3-0.6B' }, 1]]);
  probeTable.health = fakeProbe('health', async () => ({ success: false, reason: 'timeout', message: 'no answer' }));
  await scheduler.runRound('t');
  assert.deepEqual(upDuringChat, [[{ target: 't', model: 'Qwen/Qwen3-0.6B' }, 0]]);
});
