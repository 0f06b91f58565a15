import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { counter, gauge, histogram, SeriesStore, StagedRecorder } from '../../src/probing/series.ts';

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

test('the store writes the same exposition as prom-client would, escaping included', async () => {
  // The store renders its own text (prom-client's hashing and formatting made /metrics take
  // seconds at 10,000 targets): it must stay byte-for-byte what prom-client writes.
  const odd = 'http://h/v1?a="b"\\c\nd';
  const s = new SeriesStore(new Registry(), { targetLabel: true, cumulative: true, metrics: [ttft, dist, runs] });
  const reference = new Registry();
  const { Gauge, Counter, Histogram } = await import('prom-client');
  const g = new Gauge({ name: ttft.name, help: ttft.help, labelNames: ['target', 'probe'], registers: [reference] });
  const h = new Histogram({ name: dist.name, help: dist.help, labelNames: ['target', 'probe'], buckets: [...dist.buckets], registers: [reference] });
  const c = new Counter({ name: runs.name, help: runs.help, labelNames: ['target', 'probe'], registers: [reference] });
  for (const [target, value] of [['a', 0.25], [odd, 1e-7], ['b', 12]] as const) {
    s.commit(target, 'chat', staged([[ttft, value], [dist, value], [dist, value * 20]]));
    g.set({ target, probe: 'chat' }, value);
    h.observe({ target, probe: 'chat' }, value);
    h.observe({ target, probe: 'chat' }, value * 20);
    s.inc(target, runs, { probe: 'chat' }, 3);
    c.inc({ target, probe: 'chat' }, 3);
  }
  assert.equal(s.text(), await reference.metrics());
  // Label values are escaped as the text format requires.
  assert.match(s.text(), /t_ttft_seconds\{target="http:\/\/h\/v1\?a=\\"b\\"\\\\c\\nd",probe="chat"\} 1e-7/);
});

test('labels a metric does not declare are refused, naming them', () => {
  const s = new SeriesStore(new Registry(), { targetLabel: true, cumulative: true, metrics: [ttft] });
  assert.throws(() => s.set('a', ttft, 1, { probe: 'chat', nope: 'x' }), /labels probe, nope are not all among probe/);
});
