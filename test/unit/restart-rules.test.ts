import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { parse } from 'yaml';
import { probesReadByRestartRules } from '../../src/exporter/probes/index.ts';

interface Rule {
  alert?: string;
  expr: string;
  labels?: Record<string, string>;
}

test('the probes a remediating target must run are exactly those the shipped restart rules read', async () => {
  const text = await readFile(new URL('../../prometheus/rules/qwen-sentinel.rules.yml', import.meta.url), 'utf8');
  const rules = (parse(text) as { groups: Array<{ rules: Rule[] }> }).groups.flatMap((g) => g.rules);
  const restarting = rules.filter((r) => r.labels?.remediate === 'restart');
  assert.ok(restarting.length >= 2, 'there are restart rules');
  const read = new Set(restarting.flatMap((r) => [...r.expr.matchAll(/probe="([a-z]+)"/g)].map((m) => m[1]!)));
  assert.deepEqual([...read].sort(), [...probesReadByRestartRules].sort());
});
