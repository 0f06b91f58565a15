import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { Target } from '../config/schema.ts';
import { registerBuildInfo } from '../build-info.ts';
import type { ProbeName } from './probes/index.ts';
import { failureReasons, type ProbeResult } from './probes/types.ts';

/** The exporter's own registry: probe results as Prometheus metrics, in base units. */
export class ExporterMetrics {
  readonly registry = new Registry();
  readonly #up = new Gauge({ name: 'llm_server_up', help: '1 when every enabled probe of the last round succeeded, else 0.', labelNames: ['target', 'model'], registers: [this.registry] });
  readonly #success = new Gauge({ name: 'llm_probe_success', help: '1 when the last probe succeeded, else 0.', labelNames: ['target', 'probe'], registers: [this.registry] });
  readonly #duration = new Gauge({ name: 'llm_probe_duration_seconds', help: 'Duration of the last probe.', labelNames: ['target', 'probe'], registers: [this.registry] });
  readonly #ttft = new Gauge({ name: 'llm_probe_ttft_seconds', help: 'Time from sending the chat probe to its first content or reasoning token; absent after a failed chat probe.', labelNames: ['target'], registers: [this.registry] });
  readonly #tps = new Gauge({ name: 'llm_probe_tokens_per_second', help: 'Decode rate of the last chat probe, (completion_tokens - 1) / (last token - first token); absent after a failed chat probe.', labelNames: ['target'], registers: [this.registry] });
  readonly #probes = new Counter({ name: 'llm_probes_total', help: 'Probes run.', labelNames: ['target', 'probe'], registers: [this.registry] });
  readonly #failures = new Counter({ name: 'llm_probe_failures_total', help: 'Failed probes by reason.', labelNames: ['target', 'probe', 'reason'], registers: [this.registry] });
  readonly #models = new Map<string, string>();
  #probesByTarget = new Map<string, readonly ProbeName[]>();

  constructor(targets: readonly Target[]) {
    collectDefaultMetrics({ register: this.registry });
    registerBuildInfo(this.registry);
    this.setTargets(targets);
  }

  /** Pre-initialises the series of every target and probe (increase() in alert rules then sees
   * the very first failure), and drops those of targets and probes a reloaded config removed. */
  setTargets(targets: readonly Target[]): void {
    const wanted = new Map(targets.map((t) => [t.name, t.probes] as const));
    for (const [target, probes] of this.#probesByTarget) {
      for (const probe of probes) if (!wanted.get(target)?.includes(probe)) this.#removeProbe(target, probe);
      if (wanted.has(target)) continue;
      const model = this.#models.get(target);
      if (model !== undefined) this.#up.remove({ target, model });
      this.#ttft.remove({ target });
      this.#tps.remove({ target });
      this.#models.delete(target);
    }
    for (const [target, probes] of wanted) {
      for (const probe of probes) {
        this.#probes.inc({ target, probe }, 0);
        for (const reason of failureReasons) this.#failures.inc({ target, probe, reason }, 0);
      }
    }
    this.#probesByTarget = wanted;
  }

  #removeProbe(target: string, probe: ProbeName): void {
    this.#success.remove({ target, probe });
    this.#duration.remove({ target, probe });
    this.#probes.remove({ target, probe });
    for (const reason of failureReasons) this.#failures.remove({ target, probe, reason });
  }

  recordProbe(target: string, probe: ProbeName, result: ProbeResult, seconds: number): void {
    this.#probes.inc({ target, probe });
    this.#success.set({ target, probe }, result.success ? 1 : 0);
    this.#duration.set({ target, probe }, seconds);
    if (!result.success) this.#failures.inc({ target, probe, reason: result.reason });
    if (probe !== 'chat') return;
    // A stale TTFT after a failure would read as a healthy server: drop the series instead.
    if (result.success && result.ttftSeconds !== undefined) this.#ttft.set({ target }, result.ttftSeconds);
    else this.#ttft.remove({ target });
    if (result.success && result.tokensPerSecond !== undefined) this.#tps.set({ target }, result.tokensPerSecond);
    else this.#tps.remove({ target });
  }

  recordRound(target: string, model: string | undefined, up: boolean): void {
    const label = model ?? this.#models.get(target) ?? '';
    const previous = this.#models.get(target);
    if (previous !== undefined && previous !== label) this.#up.remove({ target, model: previous });
    this.#models.set(target, label);
    this.#up.set({ target, model: label }, up ? 1 : 0);
  }
}
