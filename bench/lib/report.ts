// The results: one Markdown table per suite (figure, min / median / max, goal, met) and the same
// as JSON, written atomically (*.tmp, then rename) under bench/results/.
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Machine } from './machine.ts';
import { goalMet, summarize } from './stats.ts';
import type { Figure, Mode, Sample, SuiteResult } from './types.ts';

export interface RunRecord {
  mode: Mode;
  startedAt: string;
  seconds: number;
  argv: string[];
  suites: string[];
  seed: number;
  interrupted: boolean;
  machine: Machine;
  notes: string[];
  results: SuiteResult[];
}

const digits = (v: number) => (Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toFixed(3));

export function formatSample(s: Sample | undefined, unit: string): string {
  if (s === undefined) return '–';
  const u = unit === 'count' || unit === '' ? '' : unit === '%' || unit === 'x' ? unit : ` ${unit}`;
  if ('above' in s) return `not within ${digits(s.above)}${u}`;
  if (!Number.isFinite(s.value)) return '–';
  return `${unit === 'count' ? String(s.value) : digits(s.value)}${u}`;
}

function row(f: Figure): string {
  const s = summarize(f.samples);
  const met = goalMet(f);
  const cells = [
    f.label,
    formatSample(s.min, f.unit),
    formatSample(s.median, f.unit),
    formatSample(s.max, f.unit),
    String(s.n),
    f.goal ? f.goal.text : '',
    met === undefined ? '' : met ? 'yes' : '**no**',
  ];
  return `| ${cells.map((c) => c.replaceAll('|', '\\|')).join(' | ')} |`;
}

export function markdown(r: RunRecord): string {
  const m = r.machine;
  const lines = [
    `# qwen-sentinel bench, ${r.mode} run of ${r.startedAt}${r.interrupted ? ' (INTERRUPTED)' : ''}`,
    '',
    `\`${['npm run bench --', ...r.argv].join(' ')}\`: suites ${r.suites.join(', ')}; ${Math.round(r.seconds)} s; seed ${r.seed}.`,
    '',
    '| machine | |',
    '|---|---|',
    `| cores | ${m.cores} (${m.cpu}) |`,
    `| memory | ${m.memoryGB} GB |`,
    `| kernel | ${m.kernel} |`,
    `| Node | ${m.node} |`,
    `| Prometheus | ${m.prometheus ?? 'not installed'} |`,
    `| Alertmanager | ${m.alertmanager ?? 'not installed'} |`,
    `| blackbox_exporter | ${m.blackboxExporter ?? 'not installed'} |`,
    `| llama-server | ${m.llamaServer ?? 'not built'} |`,
    `| load average (1/5/15 min) | ${m.loadStart.join(' / ')} at start${m.loadEnd ? `, ${m.loadEnd.join(' / ')} at end` : ''} |`,
    `| code | commit ${m.git.commit ?? '?'}${m.git.changedFiles ? `, ${m.git.changedFiles} files under src/ changed since` : ''} |`,
    '',
    ...r.notes.map((n) => `- ${n}`),
    ...(r.notes.length ? [''] : []),
    'min / median / max over the repetitions (n); "not within X": the trial was capped at X without it',
    'happening. The goal is the one issue 9, 15 or 18 sets, judged on the summary it names.',
    '',
  ];
  for (const s of r.results) {
    lines.push(`## ${s.suite}`, '');
    if (s.skipped) lines.push(`Skipped: ${s.skipped}`, '');
    if (s.error) lines.push(`**Failed part-way:** ${s.error}`, '');
    if (s.figures.length > 0) {
      lines.push('| figure | min | median | max | n | goal | met |', '|---|---|---|---|---|---|---|');
      for (const f of s.figures) lines.push(row(f));
      lines.push('');
      const footnotes = s.figures.filter((f) => f.note).map((f) => `- *${f.label}*: ${f.note}`);
      if (footnotes.length) lines.push(...footnotes, '');
    }
    if (s.notes.length) lines.push(...s.notes.map((n) => `- ${n}`), '');
    lines.push(`(${Math.round(s.seconds)} s)`, '');
  }
  return `${lines.join('\n')}`;
}

/** JSON with each figure's summary and verdict beside its samples. */
export function json(r: RunRecord): string {
  const results = r.results.map((s) => ({
    ...s,
    figures: s.figures.map((f) => {
      const sum = summarize(f.samples);
      return { ...f, summary: { n: sum.n, min: sum.min, median: sum.median, max: sum.max }, met: goalMet(f) ?? null };
    }),
  }));
  return `${JSON.stringify({ ...r, results }, null, 1)}\n`;
}

async function writeAtomic(path: string, text: string): Promise<void> {
  await writeFile(`${path}.tmp`, text);
  await rename(`${path}.tmp`, path);
}

/** Writes <stamp>-<mode>.{md,json} and, unless told not to, latest-<mode>.{md,json}. */
export async function writeResults(dir: string, r: RunRecord, latest: boolean): Promise<string[]> {
  const stamp = r.startedAt.replace(/\.\d+Z$/, 'Z').replaceAll(':', '-');
  const md = markdown(r);
  const js = json(r);
  const written: string[] = [];
  await mkdir(dir, { recursive: true });
  for (const base of [`${stamp}-${r.mode}`, ...(latest ? [`latest-${r.mode}`] : [])]) {
    await writeAtomic(join(dir, `${base}.md`), md);
    await writeAtomic(join(dir, `${base}.json`), js);
    written.push(join(dir, `${base}.md`), join(dir, `${base}.json`));
  }
  return written;
}
