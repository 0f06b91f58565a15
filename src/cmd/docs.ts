// `npm run docs`: writes the reference pages that are generated from the code's own tables.
import { writeFile } from 'node:fs/promises';
import { probesReference } from '../probing/docs.ts';

export const generatedDocs: Record<string, () => string> = { 'docs/probes.md': probesReference };

if (import.meta.main) {
  for (const [file, render] of Object.entries(generatedDocs)) await writeFile(new URL(`../../${file}`, import.meta.url), render());
}
