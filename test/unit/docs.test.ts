import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { generatedDocs } from '../../src/cmd/docs.ts';

for (const [file, render] of Object.entries(generatedDocs)) {
  test(`${file} is what the code's tables say (run \`npm run docs\` after changing them)`, async () => {
    assert.equal(await readFile(new URL(`../../${file}`, import.meta.url), 'utf8'), render());
  });
}

test('every config key and every metric is documented: no row of the generated references without its meaning', () => {
  for (const file of ['docs/configuration.md', 'docs/metrics.md']) {
    const undocumented = generatedDocs[file]!().split('\n').filter((line) => line.startsWith('| `') && /\|\s*\|$/.test(line));
    assert.deepEqual(undocumented, [], file);
  }
});
