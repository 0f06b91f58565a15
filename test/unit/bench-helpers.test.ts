// The bench's pure helpers: how it counts series, times rounds and schedules /probe requests. A
// wrong count here would misreport issue 18's figures, so they are checked apart from processes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { latenessOf } from '../../bench/lib/lateness.ts';
import { dueAt, isStaleSocketError } from '../../bench/lib/probe-driver.ts';
import { linesByName, sampleLines, targetSeries } from '../../bench/lib/series-count.ts';

const exposition = [
  '# HELP llm_probe_success Whether the probe succeeded.',
  '# TYPE llm_probe_success gauge',
  'llm_probe_success{target="a",probe="models"} 1',
  'llm_probe_success{target="ab",probe="models"} 1',
  'llm_probe_success{probe="chat",target="a"} 0',
  'llm_probe_duration_seconds_bucket{target="b",probe="models",le="+Inf",note="target=\\"a\\""} 3',
  'process_cpu_seconds_total 1.5',
  '',
  'llm_probe_duration_seconds_bucket{target="a",probe="models",le="0.1"} 2',
].join('\n');

test('sample lines are every line but comments and blank ones, whatever the names', () => {
  assert.equal(sampleLines(exposition).length, 6);
  assert.equal(sampleLines('').length, 0);
});

test("a target's series are the lines whose target label is exactly its name, in any position", () => {
  assert.equal(targetSeries(exposition, 'a'), 3); // not "ab", not a label value that merely holds target="a"
  assert.equal(targetSeries(exposition, 'ab'), 1);
  assert.equal(targetSeries(exposition, 'b'), 1);
  assert.equal(targetSeries(exposition, 'c'), 0);
  assert.equal(targetSeries('x{target="q\\"t"} 1', 'q"t'), 1); // an escaped quote in the name
});

test('lines by name keep histogram parts and plain names apart', () => {
  const by = linesByName(exposition);
  assert.equal(by.get('llm_probe_success'), 3);
  assert.equal(by.get('llm_probe_duration_seconds_bucket'), 2);
  assert.equal(by.get('process_cpu_seconds_total'), 1);
});

test('lateness: each round against the one before it, the last before the window anchoring the first in it', () => {
  const T = 15_000;
  const arrivals = { m0: [0, 15_010, 30_000, 45_100], m1: [7_500, 22_500, 37_500] };
  const r = latenessOf(arrivals, 10_000, 50_000, T);
  // m0: 15_010 - 0, 30_000 - 15_010, 45_100 - 30_000; m1: 22_500 - 7_500, 37_500 - 22_500.
  assert.deepEqual(r.late, [10, -10, 100, 0, 0]);
  assert.equal(r.rounds, 5);
  // First rounds in the window at phases 5_010 and 12_500 of 15 s: spread over 7.49 s.
  assert.equal(r.spread, 7.49);
  assert.deepEqual(latenessOf({}, 0, 1, T), { late: [], spread: 0, rounds: 0 });
});

test('the driver spreads N targets evenly over the interval, then starts over', () => {
  assert.equal(dueAt(0, 4, 1000), 0);
  assert.equal(dueAt(1, 4, 1000), 250);
  assert.equal(dueAt(4, 4, 1000), 1000); // target 0 again, one interval later
  assert.equal(dueAt(7, 4, 1000), 1750);
});

test('only a socket the server closed under a request is resent, never a timeout or an answer', () => {
  for (const code of ['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']) assert.equal(isStaleSocketError(Object.assign(new Error('x'), { code })), true, code);
  for (const err of [Object.assign(new Error('x'), { code: 'UND_ERR_HEADERS_TIMEOUT' }), Object.assign(new Error('x'), { code: 'ECONNREFUSED' }), new Error('plain'), undefined]) assert.equal(isStaleSocketError(err), false);
});
