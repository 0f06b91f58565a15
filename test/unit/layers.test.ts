// The layers of src/ hold: the rules in .dependency-cruiser.cjs, run on the code and on a fixture
// that breaks each of them (so the rules are known to bite).
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { cruise, type ICruiseResult } from 'dependency-cruiser';

const root = fileURLToPath(new URL('../../', import.meta.url));
const { forbidden, options } = createRequire(import.meta.url)('../../.dependency-cruiser.cjs');

async function violations(baseDir: string): Promise<string[]> {
  const result = await cruise(['src'], { ...options, validate: true, baseDir, ruleSet: { forbidden } }, undefined, { tsConfig: { fileName: `${root}tsconfig.json` } });
  const output = result.output as ICruiseResult;
  return output.summary.violations.map((v) => `${v.rule.name}: ${v.from} -> ${v.to}${v.cycle ? ` (${v.cycle.map((c) => c.name).join(' -> ')})` : ''}`).sort();
}

test('src/ keeps its layers: no import cycle, plumbing knows no domain, exporter, remediator and simulator never import each other', { timeout: 60_000 }, async () => {
  assert.deepEqual(await violations(root), []);
});

test('the layer rules bite: a fixture that breaks each one is refused, rule by rule', { timeout: 60_000 }, async () => {
  const found = await violations(fileURLToPath(new URL('../fixtures/layers/', import.meta.url)));
  const rules = new Set(found.map((v) => v.split(':')[0]));
  for (const rule of ['no-circular', 'lib-knows-no-domain', 'servers-below-probing', 'probing-below-programs', 'exporter-alone', 'sim-alone', 'commands-on-top']) {
    assert.ok(rules.has(rule), `${rule} did not fire: ${found.join('; ')}`);
  }
});
