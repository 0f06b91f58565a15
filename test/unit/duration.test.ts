import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseDuration } from '../../src/lib/duration.ts';

test('parses Prometheus durations into milliseconds', () => {
  const cases: Array<[string, number | undefined]> = [
    ['15s', 15_000],
    ['250ms', 250],
    ['1m30s', 90_000],
    ['1h30m', 5_400_000],
    ['1m500ms', 60_500],
    ['2d', 172_800_000],
    ['0', 0],
    ['', undefined],
    ['5', undefined],
    ['1s1m', undefined],
    ['-5s', undefined],
    ['1.5s', undefined],
    ['10 s', undefined],
  ];
  for (const [text, ms] of cases) assert.equal(parseDuration(text), ms, text);
});
