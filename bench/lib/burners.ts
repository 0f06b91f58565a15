// A busy machine, made on purpose: one `node -e` busy loop per core (at least 2), so every core has
// more runnable work than it can run, beside whatever is measured. Bounded twice: each loop ends by
// itself after capMs, and stop() ends them by pid. The accuracy suite's decode-rate honesty rows
// run the same loops (bench/accuracy.ts writes them inline).
import { cpus, loadavg } from 'node:os';
import { cpuSeconds, type Child, type Procs } from './procs.ts';

export interface Burners {
  count: number;
  /** Ends every loop (by pid) and says how much CPU they got: how busy the machine really was. */
  stop(): Promise<{ cpuSeconds: number; seconds: number; load: string }>;
}

/** How many loops make this machine busy: one per core, at least 2. */
export const burnerCount = (): number => Math.max(2, cpus().length);

export function startBurners(procs: Procs, node: string, name: string, capMs: number, count = burnerCount()): Burners {
  const started = performance.now();
  const children: Child[] = Array.from({ length: count }, (_, i) => procs.spawn(`${name}-${i}`, node, ['-e', `const end = Date.now() + ${Math.round(capMs)}; while (Date.now() < end) {}`]));
  return {
    count,
    async stop() {
      let used = 0;
      for (const c of children) {
        try {
          if (c.running) used += cpuSeconds(c.pid);
        } catch {
          // ended by itself between the check and the read
        }
      }
      const load = loadavg().map((l) => l.toFixed(2)).join(' / ');
      await Promise.all(children.map((c) => c.stop(2000, 'SIGKILL')));
      return { cpuSeconds: used, seconds: (performance.now() - started) / 1000, load };
    },
  };
}
