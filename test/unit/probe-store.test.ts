// The store of one /probe answer writes the very bytes a fresh non-cumulative SeriesStore without
// target label writes for the same calls (what /probe answered before it had a store of its own),
// and its copy is a store apart.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from '../../src/lib/prom-client.ts';
import { ProbeStore } from '../../src/exporter/probe-store.ts';
import { durationGauge, failureReasonGauge, initSeries, recordUp, runRound, successGauge, upGauge } from '../../src/probing/round.ts';
import { counter, gauge, histogram, SeriesStore, StagedRecorder } from '../../src/probing/series.ts';
import type { Module } from '../../src/probing/module.ts';
import type { AnyProbe, ProbeResult } from '../../src/probing/probes/types.ts';

const fresh = () => new SeriesStore(new Registry(), { targetLabel: false, cumulative: false });
const url = 'http://127.0.0.1:9/v1';

const g = gauge('t_gauge', 'A gauge with a back\\slash and a\nnewline in its help.', ['probe', 'kind']);
const plain = gauge('t_plain', 'No labels.');
const c = counter('t_total', 'A counter.', ['probe']);
const h = histogram('t_seconds', 'A histogram.', ['probe'], [0.1, 1]);

/** The same calls on both stores. */
function both(calls: (s: SeriesStore) => void): [string, string] {
  const a = fresh();
  const b = new ProbeStore();
  calls(a);
  calls(b);
  return [a.text(), b.text()];
}

test('same bytes as a fresh SeriesStore: order, labels, escapes, special values, removed series', () => {
  const [want, got] = both((s) => {
    s.set(url, plain, 1);
    s.set(url, g, 0.5, { kind: 'a"b\\c\nd', probe: 'models' });
    s.set(url, g, Number.NaN, { probe: 'chat' });
    s.set(url, g, Infinity, { probe: 'health', kind: 'x' });
    s.set(url, g, 2, { kind: 'a"b\\c\nd', probe: 'models' }); // set again: keeps its place
    s.inc(url, c, { probe: 'models' });
    s.observe(url, h, 0.5, { probe: 'models' });
    s.set(url, plain, -Infinity);
    s.remove(url, g, { probe: 'chat' });
    s.set(url, g, 3, { probe: 'chat' }); // back, at the end
    s.only(url, failureReasonGauge, 'models', { probe: 'models', reason: 'timeout' });
    s.only(url, failureReasonGauge, 'models', { probe: 'models', reason: 'http_5xx' });
    s.only(url, failureReasonGauge, 'chat', { probe: 'chat', reason: 'timeout' });
    s.only(url, failureReasonGauge, 'chat', undefined);
    const staged = new StagedRecorder();
    staged.set(g, 7, { kind: 'k' });
    staged.observe(h, 0.2);
    s.commit(url, 'stream', staged);
    s.commit(url, 'failed', undefined);
    s.set(url, upGauge, 1, { model: 'Qwen/Qwen3-0.6B' });
    s.remove(url, upGauge, { model: 'Qwen/Qwen3-0.6B' }); // a family with no series left keeps its HELP and TYPE
    s.set(url, successGauge, 1, { probe: 'models' });
  });
  assert.ok(want.includes('t_gauge{probe="models",kind="a\\"b\\\\c\\nd"} 2\n'), want);
  assert.ok(want.includes('# HELP llm_server_up'), want);
  assert.equal(got, want);
});

test('a label the family does not have is an error, as in SeriesStore', () => {
  for (const s of [fresh(), new ProbeStore()]) assert.throws(() => s.set(url, plain, 1, { probe: 'x' }), /labels probe are not all among/);
});

/** A probe that answers what it is given, recording a gauge and a histogram on success. */
const fakeProbe = (name: string, result: ProbeResult): AnyProbe =>
  ({
    name,
    metrics: [],
    run: async (ctx: { record: StagedRecorder }) => {
      if (result.success) {
        ctx.record.set(g, 0.25, { kind: 'ttft' });
        ctx.record.observe(h, 0.3);
      }
      return result;
    },
  }) as unknown as AnyProbe;

test('a whole round (info, probes, their own gauges, failure reasons, up) renders the same bytes', async () => {
  const module = { name: 'vllm', server: 'vllm', probes: ['models', 'health', 'chat'], timeout: 1000, max_response_bytes: 1 << 20, options: {} } as unknown as Module;
  const probeTable = {
    models: fakeProbe('models', { success: true, model: 'Qwen/Qwen3-0.6B' }),
    health: fakeProbe('health', { success: false, reason: 'http_5xx', message: 'HTTP 503' }),
    chat: fakeProbe('chat', { success: true }),
  };
  const texts: string[] = [];
  for (const store of [fresh(), new ProbeStore()]) {
    initSeries(store, url, module);
    const report = await runRound({ target: { name: url, url, timeout: 1000 }, module, store, stop: new AbortController().signal, now: () => 5, probeTable });
    recordUp(store, report);
    texts.push(store.text());
  }
  assert.match(texts[0]!, /^llm_probe_failure_reason\{probe="health",reason="http_5xx"\} 1$/m);
  assert.match(texts[0]!, /^t_gauge\{probe="chat",kind="ttft"\} 0\.25$/m);
  assert.equal(texts[1], texts[0]);
});

test('a copy takes what the store holds and changes apart from it', () => {
  const store = new ProbeStore();
  store.set(url, successGauge, 1, { probe: 'models' });
  store.set(url, durationGauge, 0.1, { probe: 'models' });
  const before = store.text();
  const copy = store.copy();
  assert.equal(copy.text(), before);
  copy.set(url, successGauge, 0, { probe: 'models' });
  copy.set(url, successGauge, 0, { probe: 'chat' });
  copy.only(url, failureReasonGauge, 'chat', { probe: 'chat', reason: 'timeout' });
  assert.equal(store.text(), before);
  assert.match(copy.text(), /^llm_probe_success\{probe="models"\} 0$/m);
  assert.match(copy.text(), /^llm_probe_failure_reason\{probe="chat",reason="timeout"\} 1$/m);
});

test('drop and write do what SeriesStore does for the same calls', async () => {
  const texts: string[] = [];
  for (const store of [fresh(), new ProbeStore()]) {
    store.set(url, successGauge, 1, { probe: 'models' });
    store.set(url, successGauge, 0, { probe: 'chat' });
    store.set(url, plain, 2);
    await store.drop(url, 'chat');
    let written = '';
    await store.write((chunk) => void (written += chunk));
    assert.equal(written, store.text());
    texts.push(written);
  }
  assert.doesNotMatch(texts[0]!, /probe="chat"/);
  assert.equal(texts[1], texts[0]);
});
