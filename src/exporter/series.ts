import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export type Labels = Record<string, string>;

interface MetricBase {
  name: string;
  help: string;
  /** Labels besides `target`, which the scheduler's store adds and /probe's fresh one does not. */
  labelNames: readonly string[];
}
export interface GaugeDef extends MetricBase {
  type: 'gauge';
}
export interface CounterDef extends MetricBase {
  type: 'counter';
}
export interface HistogramDef extends MetricBase {
  type: 'histogram';
  buckets: readonly number[];
}
export type MetricDef = GaugeDef | CounterDef | HistogramDef;

export const gauge = (name: string, help: string, labelNames: readonly string[] = []): GaugeDef => ({ type: 'gauge', name, help, labelNames });
export const counter = (name: string, help: string, labelNames: readonly string[] = []): CounterDef => ({ type: 'counter', name, help, labelNames });
export const histogram = (name: string, help: string, labelNames: readonly string[], buckets: readonly number[]): HistogramDef => ({ type: 'histogram', name, help, labelNames, buckets });

/** What a probe run hands back: its own series, applied only when the probe succeeds. */
export interface Recorder {
  set(metric: GaugeDef, value: number, labels?: Labels): void;
  observe(metric: HistogramDef, value: number, labels?: Labels): void;
}

interface Staged {
  metric: GaugeDef | HistogramDef;
  value: number;
  labels: Labels;
}

/** A recorder that only collects: nothing reaches the registry until the round commits it. */
export class StagedRecorder implements Recorder {
  readonly entries: Staged[] = [];
  set(metric: GaugeDef, value: number, labels: Labels = {}): void {
    this.entries.push({ metric, value, labels });
  }
  observe(metric: HistogramDef, value: number, labels: Labels = {}): void {
    this.entries.push({ metric, value, labels });
  }
}

type PromMetric = Gauge | Counter | Histogram;
const seriesKey = (name: string, labels: Labels) => `${name}${JSON.stringify(Object.entries(labels).sort())}`;

/**
 * The series of one registry. The scheduler's store labels every series with its `target` and
 * keeps counters and histograms across rounds. A /probe request gets a fresh store, as
 * blackbox_exporter's probes get a fresh registry: no `target` label (Prometheus' relabelling adds
 * it) and gauges only, since a counter that starts again at every scrape would mean nothing. A probe's gauges live from one successful run to the
 * next: what a run did not set, or every gauge of a failed run, is removed, so a stale TTFT never
 * reads as a healthy server.
 */
export class SeriesStore {
  readonly registry: Registry;
  readonly #targetLabel: boolean;
  readonly #cumulative: boolean;
  readonly #metrics = new Map<string, { def: MetricDef; metric: PromMetric }>();
  /** Gauges each (target, probe) set in its last successful run: what the next commit sweeps. */
  readonly #probeGauges = new Map<string, Map<string, Staged>>();

  constructor(registry: Registry, options: { targetLabel: boolean; cumulative: boolean; metrics?: readonly MetricDef[] }) {
    this.registry = registry;
    this.#targetLabel = options.targetLabel;
    this.#cumulative = options.cumulative;
    for (const def of options.metrics ?? []) if (def.type === 'gauge' || this.#cumulative) this.#metric(def);
  }

  #metric(def: MetricDef): PromMetric {
    const known = this.#metrics.get(def.name);
    if (known) {
      if (known.def !== def) throw new Error(`metric ${def.name} is defined twice`);
      return known.metric;
    }
    const common = { name: def.name, help: def.help, labelNames: [...(this.#targetLabel ? ['target'] : []), ...def.labelNames], registers: [this.registry] };
    const metric = def.type === 'gauge' ? new Gauge(common) : def.type === 'counter' ? new Counter(common) : new Histogram({ ...common, buckets: [...def.buckets] });
    this.#metrics.set(def.name, { def, metric });
    return metric;
  }

  #labels(target: string, labels: Labels): Labels {
    return this.#targetLabel ? { target, ...labels } : labels;
  }

  set(target: string, def: GaugeDef, value: number, labels: Labels = {}): void {
    (this.#metric(def) as Gauge).set(this.#labels(target, labels), value);
  }

  inc(target: string, def: CounterDef, labels: Labels = {}, by = 1): void {
    if (!this.#cumulative) return;
    (this.#metric(def) as Counter).inc(this.#labels(target, labels), by);
  }

  observe(target: string, def: HistogramDef, value: number, labels: Labels = {}): void {
    if (!this.#cumulative) return;
    (this.#metric(def) as Histogram).observe(this.#labels(target, labels), value);
  }

  remove(target: string, def: MetricDef, labels: Labels = {}): void {
    this.#metrics.get(def.name)?.metric.remove(this.#labels(target, labels));
  }

  /** Applies what a probe recorded (labelled with its name); undefined means it failed. */
  commit(target: string, probe: string, staged: StagedRecorder | undefined): void {
    const key = `${target}\0${probe}`;
    const before = this.#probeGauges.get(key);
    const now = new Map<string, Staged>();
    for (const entry of staged?.entries ?? []) {
      const labels = { ...entry.labels, probe };
      if (entry.metric.type === 'histogram') this.observe(target, entry.metric, entry.value, labels);
      else {
        this.set(target, entry.metric, entry.value, labels);
        now.set(seriesKey(entry.metric.name, labels), { ...entry, labels });
      }
    }
    for (const [k, old] of before ?? []) if (!now.has(k)) this.remove(target, old.metric, old.labels);
    if (now.size > 0) this.#probeGauges.set(key, now);
    else this.#probeGauges.delete(key);
  }

  /** Removes every series of a target, or of one of its probes: a reload took it away. */
  async drop(target: string, probe?: string): Promise<void> {
    for (const [, { metric }] of this.#metrics) {
      const seen = new Set<string>();
      for (const { labels } of (await metric.get()).values) {
        if (this.#targetLabel && labels.target !== target) continue;
        if (probe !== undefined && labels.probe !== probe) continue;
        // A histogram reports one value per bucket: its series is the labels without `le`.
        const { le: _le, ...series } = labels as Labels;
        const k = JSON.stringify(series);
        if (seen.has(k)) continue;
        seen.add(k);
        metric.remove(series);
      }
    }
    for (const key of this.#probeGauges.keys()) {
      if (key.startsWith(`${target}\0`) && (probe === undefined || key === `${target}\0${probe}`)) this.#probeGauges.delete(key);
    }
  }
}
