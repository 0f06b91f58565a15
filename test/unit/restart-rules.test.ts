import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { parse } from 'yaml';
import { probesReadByRestartRules } from '../../src/probing/probes/index.ts';

interface Rule {
  alert?: string;
  expr: string;
  labels?: Record<string, string>;
}

test('a remediating target must run every probe the shipped restart rules need; health only adds one alert', async () => {
  const text = await readFile(new URL('../../prometheus/rules/qwen-sentinel.rules.yml', import.meta.url), 'utf8');
  const rules = (parse(text) as { groups: Array<{ rules: Rule[] }> }).groups.flatMap((g) => g.rules);
  const restarting = rules.filter((r) => r.labels?.remediate === 'restart');
  assert.ok(restarting.length >= 2, 'there are restart rules');
  const read = new Set(restarting.flatMap((r) => [...r.expr.matchAll(/probe="([a-z]+)"/g)].map((m) => m[1]!)));
  // models and chat catch a crash and a hang on every server type; health (LLMServerEngineDead)
  // exists only where the server type has a health endpoint, so a module may leave it out.
  assert.deepEqual([...read].sort(), [...probesReadByRestartRules, 'health'].sort());
  const engineDead = restarting.filter((r) => r.expr.includes('probe="health"')).map((r) => r.alert);
  assert.deepEqual(engineDead, ['LLMServerEngineDead']);
});
