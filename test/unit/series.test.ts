import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { counter, gauge, histogram, SeriesStore, StagedRecorder } from '../../src/exporter/series.ts';

const ttft = gauge('t_ttft_seconds', 'ttft', ['probe']);
const rate = gauge('t_rate', 'rate', ['probe']);
const dist = histogram('t_dist_seconds', 'dist', ['probe'], [0.1, 1]);
const runs = counter('t_runs_total', 'runs', ['probe']);
const values = async (s: SeriesStore, name: string) => ((await s.registry.getSingleMetric(name)?.get())?.values ?? []).map((v) => [v.labels, v.value]);

function staged(entries: Array<[typeof ttft | typeof dist, number]>) {
  const r = new StagedRecorder();
  for (const [m, v] of entries) m.type === 'gauge' ? r.set(m, v) : r.observe(m, v);
  return r;
}

test('a successful probe\'s gauges replace its previous ones; what it did not set again is removed', async () => {
  const s = new SeriesStore(new Registry(), { targetLabel: true, cumulative: true, metrics: [ttft, rate, dist] });
  s.commit('a', 'chat', staged([[ttft, 0.2], [rate, 50]]));
  assert.deepEqual(await values(s, 't_rate'), [[{ target: 'a', probe: 'chat' }, 50]]);
  s.commit('a', 'chat', staged([[ttft, 0.3]])); // one token: no rate this time
  assert.deepEqual(await values(s, 't_ttft_seconds'), [[{ target: 'a', probe: 'chat' }, 0.3]]);
  assert.deepEqual(await values(s, 't_rate'), []);
});

test('a failed probe leaves none of its gauges behind: a stale TTFT must not read as healthy', async () => {
  const s = new SeriesStore(new Registry(), { targetLabel: true, cumulative: true });
  s.commit('a', 'chat', staged([[ttft, 0.2], [dist, 0.2]]));
  s.commit('b', 'chat', staged([[ttft, 0.4]]));
  s.commit('a', 'chat', undefined);
  assert.deepEqual(await values(s, 't_ttft_seconds'), [[{ target: 'b', probe: 'chat' }, 0.4]]);
  // The distribution keeps what it saw: histograms accumulate.
  assert.ok((await values(s, 't_dist_seconds')).length > 0);
});

test('drop removes every series of a target, or of one probe, histograms included', async () => {
  const s = new SeriesStore(new Registry(), { targetLabel: true, cumulative: true });
  for (const target of ['a', 'b']) {
    for (const probe of ['models', 'chat']) {
      s.commit(target, probe, staged([[ttft, 1], [dist, 0.5]]));
      s.inc(target, runs, { probe });
    }
  }
  await s.drop('a', 'chat');
  assert.deepEqual((await values(s, 't_runs_total')).map(([l]) => l), [{ target: 'a', probe: 'models' }, { target: 'b', probe: 'models' }, { target: 'b', probe: 'chat' }]);
  assert.ok(!(await values(s, 't_dist_seconds')).some(([l]) => (l as { target: string; probe: string }).target === 'a' && (l as { probe: string }).probe === 'chat'));
  await s.drop('b');
  assert.deepEqual((await values(s, 't_ttft_seconds')).map(([l]) => l), [{ target: 'a', probe: 'models' }]);
  // A commit after the drop starts afresh: nothing of the old probe is swept twice or resurrected.
  s.commit('b', 'chat', undefined);
  assert.deepEqual((await values(s, 't_ttft_seconds')).length, 1);
});

test('a /probe store has no target label and no counters or histograms', async () => {
  const s = new SeriesStore(new Registry(), { targetLabel: false, cumulative: false, metrics: [ttft, dist, runs] });
  s.commit('x', 'chat', staged([[ttft, 0.2], [dist, 0.2]]));
  s.inc('x', runs, { probe: 'chat' });
  assert.deepEqual(await values(s, 't_ttft_seconds'), [[{ probe: 'chat' }, 0.2]]);
  const text = await s.registry.metrics();
  assert.doesNotMatch(text, /t_dist_seconds|t_runs_total/);
});

test('one metric name cannot be defined twice with different shapes', () => {
  const s = new SeriesStore(new Registry(), { targetLabel: true, cumulative: true, metrics: [ttft] });
  assert.throws(() => s.set('a', gauge('t_ttft_seconds', 'other', ['probe']), 1), /defined twice/);
});
