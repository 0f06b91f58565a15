// V8's memory settings for the long-running services (exporter, remediator), set at run time so
// that `qwen-sentinel exporter` needs no node flags however it is started (the bin script, the
// systemd units, the container). An operator's own flag, on node's command line or in
// NODE_OPTIONS, always wins.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** node's own flags: its command line and NODE_OPTIONS. */
const givenFlags = (): string[] => [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/).filter(Boolean)];

/**
 * The services allocate little, and briefly, per probe or webhook: V8's default young generation
 * (16 MB semi-spaces) would keep some 30 MB of RSS for garbage that a 1 MB one collects as cheaply.
 */
export function smallYoungGeneration(given: readonly string[] = givenFlags(), setFlags: (flags: string) => void = setFlagsFromString): boolean {
  if (given.some((a) => a.includes('semi-space'))) return false;
  setFlags('--max-semi-space-size=1');
  // Set at run time, the cap alone is not enough: the young generation has started to grow.
  setFlags('--semi-space-growth-factor=1');
  return true;
}

/**
 * How far V8 lets the old generation grow past what the last full collection kept, in percent:
 * V8's own choice (up to 4 times the live heap when collections are cheap) made a 10,000-target
 * exporter with some 80 MB live sit at 300-470 MB RSS, most of it garbage awaiting the next
 * collection; at 50 % it holds 220-250 MB, with a full collection every few seconds instead of
 * every half minute, each pausing less, and no more CPU per probe (measured, bench/README.md).
 */
export const heapGrowingPercent = 50;

/**
 * Sets V8's heap growing factor, unless node was given one. V8 reads it whenever a full
 * collection sets the next limit, so setting it at start-up, before the targets' heap is built,
 * acts as the command-line flag would. `setFlags` is a seam for tests.
 */
export function limitHeapGrowth(given: readonly string[] = givenFlags(), setFlags: (flags: string) => void = setFlagsFromString): boolean {
  if (given.some((a) => /^--heap[-_]growing[-_]percent(=|$)/.test(a))) return false;
  setFlags(`--heap-growing-percent=${heapGrowingPercent}`);
  return true;
}

/**
 * One full collection now, so the factor set above applies from here on. The last one (while the
 * modules loaded) set the old generation's next limit with V8's own factor, up to 4 times the
 * 13 MB then live: the heap would reach some 50 MB before the next, and V8 keeps those pages
 * (1,000 targets: 121 MB RSS without this, 110 with it). Uses V8's gc function, exposed for this
 * one call.
 */
export function collectOnce(): void {
  setFlagsFromString('--expose-gc');
  try {
    (runInNewContext('gc') as () => void)();
  } finally {
    setFlagsFromString('--no-expose-gc');
  }
}
