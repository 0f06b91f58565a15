// The one shape every suite shares: run(ctx) -> SuiteResult, whose figures carry their samples
// (one per repetition), the goal from issue 9 and, once evaluated, whether it is met.
import type { Procs } from './procs.ts';
import type { Product } from './product.ts';

export type Mode = 'quick' | 'full';

/** One observation. `above`: the thing did not happen within that many units (a capped trial). */
export type Sample = { value: number } | { above: number };

export interface Goal {
  /** How the figure compares with `value`. */
  op: '<' | '<=' | '>=' | '==';
  value: number;
  /** Which summary of the samples the goal is judged on. */
  on: 'median' | 'max' | 'min';
  /** As the issue words it, for the table. */
  text: string;
}

export interface Figure {
  /** Stable key, e.g. "mttr.fast.sigkill.ours": a re-run after an optimisation compares by it. */
  id: string;
  label: string;
  unit: string;
  samples: Sample[];
  goal?: Goal | undefined;
  note?: string | undefined;
}

export interface SuiteResult {
  suite: string;
  figures: Figure[];
  /** Method, conditions, anything a reader of the table must know. */
  notes: string[];
  /** Set when the suite could not run at all (a binary missing...). */
  skipped?: string | undefined;
  /** Set when it failed half-way; the figures hold what was measured before. */
  error?: string | undefined;
  seconds: number;
}

export interface BenchContext {
  mode: Mode;
  signal: AbortSignal;
  procs: Procs;
  product: Product;
  /** A directory for this run's configs and logs. */
  dir: string;
  seed: number;
  /** Narrowing flags of one suite (e.g. `mttr.faults`), as given on the command line. */
  options: Record<string, string | undefined>;
  log(line: string): void;
}

export interface Suite {
  name: string;
  /** One line for --help. */
  summary: string;
  /** Rough wall time in seconds per mode, for the plan printed at the start. */
  estimate: Record<Mode, number>;
  run(ctx: BenchContext, out: SuiteResult): Promise<void>;
}
