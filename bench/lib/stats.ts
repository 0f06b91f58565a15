// Order statistics over samples that may be capped ("not within X"), and goal checks.
import type { Figure, Goal, Sample } from './types.ts';

/** A capped sample sorts above every measured one: it took longer than anything measured. */
const key = (s: Sample) => ('value' in s ? s.value : Number.POSITIVE_INFINITY);

export interface Summary {
  n: number;
  min: Sample | undefined;
  median: Sample | undefined;
  max: Sample | undefined;
}

/** min / median / max; with an even count the median is the lower middle (an actual sample). */
export function summarize(samples: readonly Sample[]): Summary {
  const sorted = [...samples].sort((a, b) => key(a) - key(b) || ('above' in a && 'above' in b ? a.above - b.above : 0));
  return { n: sorted.length, min: sorted[0], median: sorted[Math.floor((sorted.length - 1) / 2)], max: sorted.at(-1) };
}

/** Whether the figure meets its goal: undefined when there is no goal or no sample. */
export function goalMet(figure: Figure): boolean | undefined {
  const { goal } = figure;
  if (!goal || figure.samples.length === 0) return undefined;
  const s = summarize(figure.samples)[goal.on]!;
  return compare(s, goal);
}

function compare(s: Sample, goal: Goal): boolean {
  if ('above' in s) {
    // Not reached within `above`: it is larger than that, so only an "at least" goal can be
    // met; an "under" goal is missed (or, with a cap below the bound, not shown to be met).
    return goal.op === '>=' && s.above >= goal.value;
  }
  const v = s.value;
  switch (goal.op) {
    case '<': return v < goal.value;
    case '<=': return v <= goal.value;
    case '>=': return v >= goal.value;
    case '==': return v === goal.value;
  }
}

/** Nearest-rank percentile of plain numbers (p in 0..100). */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1]!;
}

export const median = (values: readonly number[]) => percentile(values, 50);

export const value = (v: number): Sample => ({ value: v });

/** The median as a number, or undefined when it is capped or there are no samples. */
export function medianValue(samples: readonly Sample[]): number | undefined {
  const m = summarize(samples).median;
  return m && 'value' in m ? m.value : undefined;
}
