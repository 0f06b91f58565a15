// The README stays an overview, and no relative link in it or in the docs pages leads nowhere:
// every linked file exists, and every #anchor into a Markdown file names one of its headings (as
// GitHub renders them). docs/configuration.md and docs/metrics.md are generated from the code;
// until `npm run docs` writes them, the links to them fail here, as they would on GitHub.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MAX_README_LINES = 300;

/** The Markdown files whose links are checked, relative to `root`. */
function checkedFiles(root: string): string[] {
  const docs = existsSync(join(root, 'docs')) ? readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`) : [];
  return ['README.md', 'bench/README.md', ...docs.sort()].filter((f) => existsSync(join(root, f)));
}

/** The lines outside fenced code blocks (``` or ~~~, indented or not), with their line numbers. */
function proseLines(text: string): Array<{ line: string; n: number }> {
  const out: Array<{ line: string; n: number }> = [];
  let fence: string | undefined;
  text.split('\n').forEach((line, i) => {
    const m = /^\s*(`{3,}|~{3,})/.exec(line);
    if (m) {
      if (fence === undefined) fence = m[1]![0]!;
      else if (m[1]![0] === fence) fence = undefined;
      return;
    }
    if (fence === undefined) out.push({ line, n: i + 1 });
  });
  return out;
}

/** GitHub's heading ids: lower case, punctuation dropped, each space a hyphen, repeats numbered. */
export function anchors(text: string): Set<string> {
  const ids = new Set<string>();
  const seen = new Map<string, number>();
  for (const { line } of proseLines(text)) {
    for (const m of line.matchAll(/<a\s+(?:id|name)="([^"]+)"/g)) ids.add(m[1]!);
    const h = /^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!h) continue;
    const words = h[1]!.replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1');
    const base = words.toLowerCase().replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '').replace(/ /g, '-');
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    ids.add(count === 0 ? base : `${base}-${count}`);
  }
  return ids;
}

/** Every relative link and image of a Markdown text, outside code: its target and line. */
export function links(text: string): Array<{ target: string; n: number }> {
  const out: Array<{ target: string; n: number }> = [];
  // Inline code may span lines, so the prose is joined before code spans are blanked (keeping newlines).
  const prose = proseLines(text);
  const joined = prose.map((p) => p.line).join('\n').replace(/`+[^`]*`+/g, (code) => code.replace(/[^\n]/g, ' '));
  joined.split('\n').forEach((line, i) => {
    for (const m of line.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
      const target = m[1]!;
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // http:, https:, mailto: ...
      out.push({ target, n: prose[i]!.n });
    }
  });
  return out;
}

/** Every broken relative link of the checked files under `root`, as `file:line: target (why)`. */
export function brokenLinks(root: string): string[] {
  const broken: string[] = [];
  const anchorCache = new Map<string, Set<string>>();
  const anchorsOf = (file: string): Set<string> => {
    let ids = anchorCache.get(file);
    if (!ids) anchorCache.set(file, (ids = anchors(readFileSync(file, 'utf8'))));
    return ids;
  };
  for (const file of checkedFiles(root)) {
    const path = join(root, file);
    for (const { target, n } of links(readFileSync(path, 'utf8'))) {
      const [pathPart = '', fragment] = target.split('#', 2);
      const dest = pathPart === '' ? path : resolve(dirname(path), decodeURIComponent(pathPart));
      const where = `${file}:${n}: ${target}`;
      if (!existsSync(dest)) {
        broken.push(`${where} (no such file: ${relative(root, dest)})`);
        continue;
      }
      if (fragment !== undefined && fragment !== '' && statSync(dest).isFile() && dest.endsWith('.md') && !anchorsOf(dest).has(decodeURIComponent(fragment))) {
        broken.push(`${where} (no heading #${fragment} in ${relative(root, dest)})`);
      }
    }
  }
  return broken;
}

function lineCount(text: string): number {
  return text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
}

test(`README.md is an overview of at most ${MAX_README_LINES} lines (reference material goes to docs/)`, () => {
  const lines = lineCount(readFileSync(join(ROOT, 'README.md'), 'utf8'));
  assert.ok(lines <= MAX_README_LINES, `README.md has ${lines} lines; move reference material to docs/`);
});

test('README.md keeps the quick-start commands that CI and the CLI tests rely on', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  assert.match(readme, /^npm ci && npm start\b/m, 'the install-and-run command');
  assert.match(readme, /^npm test\b/m, 'the test command (.ci/run runs exactly it)');
  assert.match(readme, /`npx qwen-sentinel --help`/, 'test/integration/cli.test.ts checks `npx qwen-sentinel` works as the README says');
});

test('every relative link in README.md, bench/README.md and docs/*.md leads to an existing file and heading', () => {
  assert.ok(checkedFiles(ROOT).length > 1);
  const broken = brokenLinks(ROOT);
  assert.deepEqual(broken, [], `broken links:\n${broken.join('\n')}`);
});

test('the link check finds a missing file, a missing heading and nothing in code', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qs-readme-'));
  try {
    mkdirSync(join(dir, 'docs'));
    writeFileSync(join(dir, 'README.md'), [
      '# Title',
      '## `/probe`: Prometheus names the servers',
      '## Step',
      '## Step',
      'See [here](#probe-prometheus-names-the-servers), [again](#step-1), [gone](#nowhere),',
      '[a page](docs/a.md#1-install), [missing](docs/missing.md), [web](https://example.com/x.md),',
      'code `[not a link](nope.md)` and',
      '```',
      '[not a link either](nope.md)',
      '```',
      '',
    ].join('\n'));
    writeFileSync(join(dir, 'docs/a.md'), '# A\n\n### 1. Install\n\nBack to the [README](../README.md#title) and [the step](../README.md#step-2).\n');
    assert.deepEqual(brokenLinks(dir), [
      'README.md:5: #nowhere (no heading #nowhere in README.md)',
      'README.md:6: docs/missing.md (no such file: docs/missing.md)',
      'docs/a.md:5: ../README.md#step-2 (no heading #step-2 in README.md)',
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
