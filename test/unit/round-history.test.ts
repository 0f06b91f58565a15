// The exporter's round history: a ring per target and one for /probe, so no target's logs are
// evicted by another's rounds; and each target's run of results (down since when).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { RoundHistory } from '../../src/exporter/history.ts';
import { Scheduler } from '../../src/exporter/scheduler.ts';
import { SeriesStore } from '../../src/probing/series.ts';
import type { RoundReport } from '../../src/probing/round.ts';
import { silentLogger } from '../../src/lib/log.ts';
import { fakeProbe, oneTarget } from '../helpers/probes.ts';

const t0 = Date.UTC(2026, 4, 1, 12, 0, 0);
let clock = t0;
/** A round of `target`, `up` or not, starting `at` (Unix ms; by default a second after the last). */
function round(target: string, up: boolean, o: Partial<RoundReport> = {}): RoundReport {
  clock = o.startedAt ?? clock + 1000;
  return { target, url: `http://${target}:8000/v1`, module: 'openai', server: 'openai', model: undefined, startedAt: clock, durationSeconds: 0.01, up, probes: [], log: [`round of ${target}`], ...o };
}

test('each target keeps its own last rounds: a busy target evicts only its own', () => {
  const h = new RoundHistory({ perTarget: 3 });
  const quiet = h.add(round('quiet', true));
  const busy = Array.from({ length: 50 }, () => h.add(round('busy', true)));
  assert.equal(h.get(quiet.id), quiet, "the quiet target's only round is still there");
  assert.deepEqual(busy.filter((r) => h.get(r.id)).map((r) => r.id), busy.slice(-3).map((r) => r.id), 'the busy one keeps its last 3');
  assert.equal(h.get(busy[0]!.id), undefined);
  assert.equal(h.issued(busy[0]!.id), true, 'an evicted id was issued: /logs says it is gone');
  assert.equal(h.issued(999), false, 'one never issued');
  assert.equal(h.issued(0), false);
  assert.equal(h.issued(Number('x')), false);
});

test('/probe requests have a ring of their own: a flood of them evicts no target round', () => {
  const h = new RoundHistory({ perTarget: 2, probes: 5 });
  const target = h.add(round('qwen3', false));
  const probes = Array.from({ length: 200 }, (_, i) => h.probes.add(round(`http://10.0.0.${i % 250}:8000/v1`, true)));
  assert.equal(h.get(target.id), target);
  assert.equal(target.probe, false);
  assert.equal(probes.at(-1)!.probe, true);
  assert.equal(probes.filter((r) => h.get(r.id)).length, 5);
  assert.equal(h.streak('http://10.0.0.1:8000/v1'), undefined, '/probe rounds make no target runs');
  // Ids come from one sequence, and recent() lists both rings, newest first.
  assert.deepEqual(h.recent().map((r) => r.id), [...probes.slice(-5).reverse().map((r) => r.id), target.id]);
  assert.deepEqual(h.recent(2).map((r) => r.id), probes.slice(-2).reverse().map((r) => r.id));
  assert.equal(h.probes.get(target.id), target, 'both handles read the same rings');
});

test('with many targets each keeps fewer rounds, never fewer than 2', () => {
  const h = new RoundHistory({ perTarget: 20, targetsTotal: 100 });
  for (let i = 0; i < 30; i++) h.add(round('a', true));
  assert.equal(h.limits().perTarget, 20);
  assert.equal(h.recent().filter((r) => r.target === 'a').length, 20);
  for (let n = 0; n < 9; n++) h.add(round(`t${n}`, true));
  assert.equal(h.limits().perTarget, 10, '100 rounds over 10 targets');
  h.add(round('a', true));
  assert.equal(h.recent().filter((r) => r.target === 'a').length, 10, 'a ring shrinks at its next round');
  for (let n = 9; n < 200; n++) h.add(round(`t${n}`, true));
  assert.equal(h.limits().perTarget, 2);
});

test('retain() forgets the rings and runs of targets a reload removed', () => {
  const h = new RoundHistory();
  const gone = h.add(round('gone', false));
  const kept = h.add(round('kept', false));
  h.retain(['kept']);
  assert.equal(h.get(gone.id), undefined);
  assert.equal(h.streak('gone'), undefined);
  assert.equal(h.get(kept.id), kept);
  assert.equal(h.streak('kept')?.up, false);
});

test('down since the first failed round of the current outage; up since the first round after it', () => {
  const h = new RoundHistory({ perTarget: 2 });
  h.add(round('t', true, { startedAt: t0 }));
  assert.deepEqual(h.streak('t'), { up: true, since: t0, firstRound: 1, sinceFirstRound: true, url: 'http://t:8000/v1' });
  h.add(round('t', true, { startedAt: t0 + 15_000 }));
  const firstFailed = h.add(round('t', false, { startedAt: t0 + 30_000 }));
  for (let i = 1; i <= 10; i++) h.add(round('t', false, { startedAt: t0 + 30_000 + i * 15_000 }));
  const down = h.streak('t')!;
  assert.equal(down.up, false);
  assert.equal(down.since, t0 + 30_000, 'from the first failed round, though its log is long gone');
  assert.equal(down.firstRound, firstFailed.id);
  assert.equal(h.get(firstFailed.id), undefined);
  assert.equal(down.sinceFirstRound, false, 'it was seen up before');
  // A skipped round (the exporter's own EMFILE) says nothing of the server: the outage goes on.
  h.add(round('t', false, { skipped: 'EMFILE' }));
  assert.equal(h.streak('t')!.since, t0 + 30_000);
  const back = h.add(round('t', true, { startedAt: t0 + 300_000 }));
  assert.deepEqual(h.streak('t'), { up: true, since: t0 + 300_000, firstRound: back.id, sinceFirstRound: false, url: 'http://t:8000/v1' });
});

test('a target down from its first round is down "since the first round"; a new URL starts a new run', () => {
  const h = new RoundHistory();
  assert.equal(h.streak('t'), undefined);
  h.add(round('t', false, { skipped: 'EMFILE' }));
  assert.equal(h.streak('t'), undefined, 'a skipped round makes no run');
  h.add(round('t', false, { startedAt: t0 }));
  h.add(round('t', false, { startedAt: t0 + 1000 }));
  assert.equal(h.streak('t')!.since, t0);
  assert.equal(h.streak('t')!.sinceFirstRound, true);
  h.add(round('t', false, { startedAt: t0 + 2000, url: 'http://elsewhere:8000/v1' }));
  assert.equal(h.streak('t')!.since, t0 + 2000, 'a reload pointed the target elsewhere');
  assert.equal(h.streak('t')!.sinceFirstRound, true);
});

test('the scheduler\'s rounds feed the run: the outage starts at the round the probe first failed', async () => {
  let healthy = true;
  const history = new RoundHistory();
  const store = new SeriesStore(new Registry(), { targetLabel: true, cumulative: true });
  const health = fakeProbe('health', async () => (healthy ? { success: true } : { success: false, reason: 'http_5xx', message: 'HTTP 503' }));
  const s = new Scheduler(oneTarget(['health']), { store, history, logger: silentLogger, probeTable: { health } });
  await s.runRound('t');
  healthy = false;
  await s.runRound('t');
  const firstFailed = s.status()[0]!.last!;
  await s.runRound('t');
  assert.equal(history.streak('t')!.up, false);
  assert.equal(history.streak('t')!.firstRound, firstFailed.id);
  assert.equal(history.streak('t')!.since, firstFailed.startedAt);
});
