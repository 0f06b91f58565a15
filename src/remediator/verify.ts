// Does the server answer? The listing and a one-token generation, in the server type's own dialect
// (the exporter's own probes): the remediator's confirm stage and its check after a restart.
import { Registry } from '../prom-client.ts';
import { parseConfig } from '../config/load.ts';
import type { Module, Target } from '../config/schema.ts';
import { runRound } from '../exporter/round.ts';
import { SeriesStore } from '../exporter/series.ts';
import type { Clock } from './clock.ts';

export interface Verifier {
  /** One check, within timeoutMs. */
  answers(target: string, timeoutMs: number): Promise<{ ok: boolean; message: string }>;
}

/** A module of models + a one-token chat for each server type: the smallest proof of life. */
const checkModules = parseConfig({
  modules: Object.fromEntries(['vllm', 'sglang', 'llamacpp', 'ollama', 'openai'].map((s) => [`verify-${s}`, { server: s, probes: ['models', 'chat'], chat: { max_tokens: 1 } }])),
}).modules;

export function probeVerifier(o: { targets: () => ReadonlyMap<string, Target>; apiKey: (t: Target) => string | undefined; clock: Clock }): Verifier {
  return {
    async answers(name, timeoutMs) {
      const target = o.targets().get(name);
      if (!target) return { ok: false, message: 'no such target' };
      const module: Module = checkModules[`verify-${target.server}`]!;
      const store = new SeriesStore(new Registry(), { targetLabel: false, cumulative: false });
      const report = await runRound({
        target: { name, url: target.url, model: target.model, timeout: timeoutMs, apiKey: o.apiKey(target) },
        module,
        store,
        stop: new AbortController().signal,
        now: () => o.clock.now(),
        deadline: o.clock.now() + timeoutMs,
      });
      const failed = report.probes.find((p) => !p.success);
      return report.up ? { ok: true, message: 'answers' } : { ok: false, message: failed ? `${failed.probe}: ${failed.reason}: ${failed.message}` : 'no answer' };
    },
  };
}
