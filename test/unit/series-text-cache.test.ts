// SeriesStore keeps each target's lines of each family as last written and writes them again until
// one of their series changes. These tests render a store after every change and compare it with a
// store that saw the same changes and was never rendered before: any change the kept text missed
// shows as a difference.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { counter, gauge, histogram, SeriesStore, StagedRecorder } from '../../src/probing/series.ts';

const up = gauge('c_up', 'Up.', ['model']);
const success = gauge('c_success', 'Success.', ['probe']);
const reason = gauge('c_reason', 'Reason.', ['probe', 'reason']);
const ttft = gauge('c_ttft_seconds', 'TTFT.', ['probe']);
const runs = counter('c_runs_total', 'Runs.', ['probe']);
const dist = histogram('c_dist_seconds', 'Distribution.', ['probe'], [0.1, 1]);
const metrics = [up, success, reason, ttft, runs, dist];

type Step = (s: SeriesStore) => void | Promise<void>;

const staged = (value: number | undefined) => {
  if (value === undefined) return undefined;
  const r = new StagedRecorder();
  r.set(ttft, value);
  r.observe(dist, value);
  return r;
};

/** Every kind of change a store sees, each one that may leave a kept text stale. */
const steps: Array<[string, Step]> = [
  ['a new target', (s) => s.set('a', up, 1, { model: 'm1' })],
  ['a second target', (s) => s.set('b', up, 1, { model: 'm1' })],
  ['the same value again', (s) => s.set('a', up, 1, { model: 'm1' })],
  ['a value changes', (s) => s.set('a', up, 0, { model: 'm1' })],
  ['-0 after 0', (s) => (s.set('b', success, 0, { probe: 'models' }), s.set('b', success, -0, { probe: 'models' }))],
  ['NaN', (s) => s.set('b', success, Number.NaN, { probe: 'models' })],
  ['a second series in a group', (s) => s.set('a', up, 1, { model: 'm2' })],
  ['a series removed', (s) => s.remove('a', up, { model: 'm1' })],
  ['a counter at 0, then counted', (s) => (s.inc('a', runs, { probe: 'models' }, 0), s.inc('a', runs, { probe: 'models' }))],
  ['a counter counted by 0', (s) => s.inc('a', runs, { probe: 'models' }, 0)],
  ['a counter counted again', (s) => s.inc('a', runs, { probe: 'models' })],
  ['an observation', (s) => s.observe('a', dist, 0.5, { probe: 'models' })],
  ['another observation', (s) => s.observe('a', dist, 0.05, { probe: 'models' })],
  ['a reason set', (s) => s.only('a', reason, 'models', { probe: 'models', reason: 'timeout' })],
  ['another reason replaces it', (s) => s.only('a', reason, 'models', { probe: 'models', reason: 'http_5xx' })],
  ['the reason cleared', (s) => s.only('a', reason, 'models', undefined)],
  ['a successful commit', (s) => s.commit('a', 'chat', staged(0.2))],
  ['a commit with a new value', (s) => s.commit('a', 'chat', staged(0.3))],
  ['a failed commit removes the gauges', (s) => s.commit('a', 'chat', staged(undefined))],
  ['a second probe of a target', (s) => s.set('b', success, 1, { probe: 'chat' })],
  ['one probe of a target dropped', (s) => s.drop('b', 'chat')],
  ['a target dropped', (s) => s.drop('b')],
  ['a target back after being dropped', (s) => s.set('b', up, 1, { model: 'm1' })],
];

const fresh = () => new SeriesStore(new Registry(), { targetLabel: true, cumulative: true, metrics });

test('after every kind of change, the exposition is what a store never rendered before writes', async () => {
  const rendered = fresh();
  for (let i = 0; i < steps.length; i++) {
    const [name, step] = steps[i]!;
    await step(rendered);
    const reference = fresh();
    for (const [, s] of steps.slice(0, i + 1)) await s(reference);
    assert.equal(rendered.text(), reference.text(), `after: ${name}`);
    // write() serves the same kept texts, in slices.
    let written = '';
    await rendered.write((chunk) => void (written += chunk), { sliceSeries: 1, turnMs: 0, yieldTurn: async () => {} });
    assert.equal(written, reference.text(), `write() after: ${name}`);
  }
});

test('a value that changes between two scrapes is written anew; the others as they were', () => {
  const s = fresh();
  for (let i = 0; i < 50; i++) {
    s.set(`t${i}`, up, 1, { model: 'm' });
    s.set(`t${i}`, ttft, i, { probe: 'chat' });
  }
  const before = s.text();
  s.set('t7', ttft, 700, { probe: 'chat' });
  const after = s.text();
  assert.notEqual(after, before);
  assert.equal(after, before.replace('c_ttft_seconds{target="t7",probe="chat"} 7\n', 'c_ttft_seconds{target="t7",probe="chat"} 700\n'));
});
