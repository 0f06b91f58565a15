import type { Metric, Registry } from 'prom-client';
import { escapeHelp, escapeLabelValue, formatValue } from '../lib/prom-text.ts';

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

/** The labels of a series besides `target`, in its family's order, and their exposition text. */
interface LabelSet {
  labels: Readonly<Labels>;
  text: string;
}
interface Sample {
  set: LabelSet;
  /** The group it is in: a change of its value drops the group's text. */
  group: Group;
  value: number;
}
interface Distribution {
  set: LabelSet;
  group: Group;
  /** Observations per bucket (not cumulative), then sum and count. */
  counts: Float64Array;
  sum: number;
  count: number;
}
type Series = Sample | Distribution;

/**
 * One target's series of one family, in the order they came, and their exposition lines. The
 * series are an array, not a Map: most groups hold one, and a Map of one costs some 170 bytes
 * more than an array of one, for every family of every target (7 MB live at 10,000 targets, more
 * in RSS as the heap grows to hold it).
 *
 * The lines of a group that did not change between two renderings are kept and written as they
 * are until it changes: a target's up, info and success lines are rendered twice, not at every
 * scrape. A group that changed since the last rendering (a duration, a counter: every round) is
 * rendered and not kept, since the next round would drop the text anyway; keeping it would cost
 * some 100 bytes per series for nothing. At 10,000 targets this takes a third off the 30 ms of
 * CPU a 3.2 MB exposition took, and most of the string building (3.2 MB of garbage per scrape).
 */
interface Group {
  series: Series[];
  /** The lines as kept; null: unchanged since the last rendering, not kept; undefined: changed since. */
  text: string | null | undefined;
}

/** One metric family: its series grouped by target. */
interface Family {
  def: MetricDef;
  byTarget: Map<string, Group>;
}

/** The index of the series of this label set in a group, or -1. */
const indexIn = (group: Group, text: string) => {
  const list = group.series;
  for (let i = 0; i < list.length; i++) if (list[i]!.set.text === text) return i;
  return -1;
};
/** Removes the series of this label set, if any. */
const removeFrom = (group: Group, text: string) => {
  const i = indexIn(group, text);
  if (i < 0) return;
  group.series.splice(i, 1);
  group.text = undefined;
};
/** Keeps only the series `keep` says yes to, in their order. */
const keepIn = (group: Group, keep: (series: Series) => boolean) => {
  const list = group.series;
  let j = 0;
  for (const series of list) if (keep(series)) list[j++] = series;
  if (j === list.length) return;
  list.length = j;
  group.text = undefined;
};

const joined = (a: string, b: string) => (a === '' ? b : b === '' ? a : `${a},${b}`);
const braced = (s: string) => (s === '' ? '' : `{${s}}`);

/**
 * How SeriesStore.write() cuts its work. A slice of 1,000 series is some 80 KB of text (a fraction
 * of a millisecond to render), handed to the sink as it is ready. The event loop gets a turn once
 * rendering has held it 25 ms: a probe's timer then waits at most that (plus a slice) for a scrape
 * of any size. Turns are not free on a loop busy probing 10,000 targets (each first handles the
 * probe work that came meanwhile): with a 3.3 MB exposition, a turn after every slice made a scrape
 * take 130-780 ms over HTTP and a turn every 10 ms 130-650 ms; every 25 ms, 100-135 ms, as in one
 * block (measured on 2 busy cores).
 */
export const defaultSliceSeries = 1000;
export const defaultTurnMs = 25;
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

export interface WriteOptions {
  /** Series per slice handed to the sink (a histogram's series counts once); default 1000. */
  sliceSeries?: number | undefined;
  /** Rendering time after which the event loop gets a turn, in ms; 0: after every slice. Default 25. */
  turnMs?: number | undefined;
  /** The clock turnMs is measured with, in ms (tests pass a fake one); default performance.now. */
  now?: (() => number) | undefined;
  /** Waits for a later turn of the event loop (tests count the calls); default setImmediate. */
  yieldTurn?: (() => Promise<void>) | undefined;
}

/**
 * The series of one registry. The scheduler's store labels every series with its `target` and
 * keeps counters and histograms across rounds. A /probe request gets a fresh store, as
 * blackbox_exporter's probes get a fresh registry: no `target` label (Prometheus' relabelling adds
 * it) and gauges only, since a counter that starts again at every scrape would mean nothing. A probe's gauges live from one successful run to the
 * next: what a run did not set, or every gauge of a failed run, is removed, so a stale TTFT never
 * reads as a healthy server.
 *
 * The series live here, not in prom-client metrics: with thousands of targets, prom-client's
 * hashing of label objects on every update and its formatting of every label at every scrape
 * made /metrics take seconds. Each distinct label set is escaped once and shared by every target,
 * and text() writes the exposition with plain concatenation. The registry still lists every
 * family (get(), getMetricsAsJSON(), metrics()), for the few callers that read it as objects.
 */
export class SeriesStore {
  readonly registry: Registry;
  readonly #targetLabel: boolean;
  readonly #cumulative: boolean;
  readonly #families = new Map<string, Family>();
  /** Label sets by their text: one shared object per distinct set, whatever the number of targets. */
  readonly #labelSets = new Map<string, LabelSet>();
  /** `target="..."`, escaped once per target. */
  readonly #targetText = new Map<string, string>();
  /** Gauges each (target, probe) set in its last successful run: what the next commit sweeps. */
  readonly #probeGauges = new Map<string, Map<string, Staged>>();

  constructor(registry: Registry, options: { targetLabel: boolean; cumulative: boolean; metrics?: readonly MetricDef[] }) {
    this.registry = registry;
    this.#targetLabel = options.targetLabel;
    this.#cumulative = options.cumulative;
    for (const def of options.metrics ?? []) if (def.type === 'gauge' || this.#cumulative) this.#family(def);
  }

  #family(def: MetricDef): Family {
    const known = this.#families.get(def.name);
    if (known) {
      if (known.def !== def) throw new Error(`metric ${def.name} is defined twice`);
      return known;
    }
    const family: Family = { def, byTarget: new Map() };
    this.#families.set(def.name, family);
    this.registry.registerMetric(this.#adapter(family));
    return family;
  }

  /** The label set of these labels, in the family's label order. */
  #labelSet(def: MetricDef, labels: Labels): LabelSet {
    let text = '';
    let given = 0;
    for (const name of def.labelNames) {
      const value = labels[name];
      if (value === undefined) continue;
      given += 1;
      text = joined(text, `${name}="${escapeLabelValue(value)}"`);
    }
    const known = this.#labelSets.get(text);
    if (known) return known;
    if (given !== Object.keys(labels).length) throw new Error(`metric ${def.name}: labels ${Object.keys(labels).join(', ')} are not all among ${def.labelNames.join(', ')}`);
    const set = { labels: Object.freeze({ ...labels }), text };
    this.#labelSets.set(text, set);
    return set;
  }

  #series(def: MetricDef, target: string, labels: Labels, create: true): Series;
  #series(def: MetricDef, target: string, labels: Labels, create: false): Series | undefined;
  #series(def: MetricDef, target: string, labels: Labels, create: boolean): Series | undefined {
    const family = this.#family(def);
    const set = this.#labelSet(def, labels);
    let group = family.byTarget.get(target);
    const i = group === undefined ? -1 : indexIn(group, set.text);
    if (i >= 0 || !create) return i >= 0 ? group!.series[i] : undefined;
    // A new group's array is made holding its series: one pushed to an empty array gets room for
    // 16 more (152 bytes, not 24, for every family of every target).
    const fresh = group === undefined;
    group ??= { series: [], text: undefined };
    const series: Series = def.type === 'histogram' ? { set, group, counts: new Float64Array(def.buckets.length), sum: 0, count: 0 } : { set, group, value: 0 };
    if (fresh) {
      group.series = [series];
      family.byTarget.set(target, group);
    } else group.series.push(series);
    group.text = undefined;
    return series;
  }

  set(target: string, def: GaugeDef, value: number, labels: Labels = {}): void {
    const series = this.#series(def, target, labels, true) as Sample;
    // The same value again (an up that stays 1) keeps the group's text.
    if (Object.is(series.value, value)) return;
    series.value = value;
    series.group.text = undefined;
  }

  inc(target: string, def: CounterDef, labels: Labels = {}, by = 1): void {
    if (!this.#cumulative) return;
    const series = this.#series(def, target, labels, true) as Sample;
    if (by === 0) return;
    series.value += by;
    series.group.text = undefined;
  }

  observe(target: string, def: HistogramDef, value: number, labels: Labels = {}): void {
    if (!this.#cumulative) return;
    const series = this.#series(def, target, labels, true) as Distribution;
    const i = def.buckets.findIndex((le) => value <= le);
    if (i >= 0) series.counts[i]! += 1;
    series.sum += value;
    series.count += 1;
    series.group.text = undefined;
  }

  remove(target: string, def: MetricDef, labels: Labels = {}): void {
    const family = this.#families.get(def.name);
    const group = family?.byTarget.get(target);
    if (!family || !group) return;
    removeFrom(group, this.#labelSet(family.def, labels).text);
    if (group.series.length === 0) family.byTarget.delete(target);
  }

  /**
   * Makes `labels` the probe's one series of this family (value 1), removing any other the probe
   * has in it; undefined removes them all. An info-style series such as the failure reason: present
   * only while it holds. Cheap when nothing is set: a healthy target has no group to look through.
   */
  only(target: string, def: GaugeDef, probe: string, labels: Labels | undefined): void {
    const group = this.#families.get(def.name)?.byTarget.get(target);
    const keep = labels === undefined ? undefined : this.#labelSet(def, labels).text;
    if (group) {
      keepIn(group, (series) => series.set.text === keep || series.set.labels.probe !== probe);
      if (group.series.length === 0) this.#families.get(def.name)!.byTarget.delete(target);
    }
    if (labels !== undefined) this.set(target, def, 1, labels);
  }

  /** Applies what a probe recorded (labelled with its name); undefined means it failed. */
  commit(target: string, probe: string, staged: StagedRecorder | undefined): void {
    const key = `${target}\0${probe}`;
    const before = this.#probeGauges.get(key);
    if (before === undefined && (staged === undefined || staged.entries.length === 0)) return;
    const now = new Map<string, Staged>();
    for (const entry of staged?.entries ?? []) {
      const labels = { ...entry.labels, probe };
      if (entry.metric.type === 'histogram') this.observe(target, entry.metric, entry.value, labels);
      else {
        this.set(target, entry.metric, entry.value, labels);
        now.set(`${entry.metric.name}${this.#labelSet(entry.metric, labels).text}`, { ...entry, labels });
      }
    }
    for (const [k, old] of before ?? []) if (!now.has(k)) this.remove(target, old.metric, old.labels);
    if (now.size > 0) this.#probeGauges.set(key, now);
    else this.#probeGauges.delete(key);
  }

  /** Removes every series of a target, or of one of its probes: a reload took it away. */
  async drop(target: string, probe?: string): Promise<void> {
    for (const family of this.#families.values()) {
      const group = family.byTarget.get(target);
      if (!group) continue;
      if (probe !== undefined) keepIn(group, (series) => series.set.labels.probe !== probe);
      if (probe === undefined || group.series.length === 0) family.byTarget.delete(target);
    }
    for (const key of this.#probeGauges.keys()) {
      if (key.startsWith(`${target}\0`) && (probe === undefined || key === `${target}\0${probe}`)) this.#probeGauges.delete(key);
    }
  }

  #prefix(target: string): string {
    if (!this.#targetLabel) return '';
    let text = this.#targetText.get(target);
    if (text === undefined) this.#targetText.set(target, (text = ['target="', escapeLabelValue(target), '"'].join('')));
    return text;
  }

  /**
   * The exposition (Prometheus text format 0.0.4) of every family, in one pass: a consistent view,
   * since no round can commit half-way through. Byte for byte what prom-client writes for the same
   * series (`le` first, a blank line between families), so nothing downstream can tell.
   */
  text(): string {
    let out = '';
    for (const slice of this.#render(Infinity)) out += slice;
    return out;
  }

  /**
   * The same bytes as text(), handed to `sink` in slices of about `sliceSeries` series, with a turn
   * of the event loop whenever rendering has held it `turnMs`: at 10,000 targets the probes'
   * timers and sockets then wait for a few milliseconds, never for the whole exposition. A slice
   * ends between targets, never inside a line; HELP and TYPE come once per family. Rounds may
   * commit during those turns, so one scrape can hold a target's series from before a round and
   * another's from after it, as any prom-client registry read while it changes: each line is one
   * round's value, and a target that went away or came back meanwhile appears at most once per
   * family. A sink that returns a promise is awaited (backpressure).
   */
  async write(sink: (chunk: string) => void | Promise<void>, options: WriteOptions = {}): Promise<void> {
    const { sliceSeries = defaultSliceSeries, turnMs = defaultTurnMs, now = performance.now.bind(performance), yieldTurn = nextTurn } = options;
    let since = now();
    let first = true;
    // Each slice is rendered when the loop asks for it; a turn comes before it is handed on.
    for (const slice of this.#render(sliceSeries)) {
      if (!first && now() - since >= turnMs) {
        await yieldTurn();
        since = now();
      }
      first = false;
      const pending = sink(slice);
      if (pending) await pending;
    }
  }

  /**
   * Renders the exposition, a slice at a time. Each family's targets are listed when its turn
   * comes and each is looked up again as it is written: a target removed meanwhile is skipped, and
   * one removed and added again (so moved to the end of its family's map) is not written twice.
   */
  *#render(sliceSeries: number): Generator<string, void, undefined> {
    let out = '';
    let series = 0;
    let blank = false;
    for (const { def, byTarget } of this.#families.values()) {
      if (blank) out += '\n';
      blank = true;
      out += `# HELP ${def.name} ${escapeHelp(def.help)}\n# TYPE ${def.name} ${def.type}\n`;
      const targets = sliceSeries === Infinity ? byTarget.keys() : [...byTarget.keys()];
      for (const target of targets) {
        const group = byTarget.get(target);
        if (group === undefined) continue;
        let text = group.text;
        if (typeof text !== 'string') {
          const fresh = this.#text(def, this.#prefix(target), group.series);
          // Kept from the second rendering in a row that finds the group unchanged.
          group.text = text === undefined ? null : fresh;
          text = fresh;
        }
        out += text;
        series += group.series.length;
        if (series >= sliceSeries) {
          yield out;
          out = '';
          series = 0;
        }
      }
    }
    if (out !== '') yield out;
  }

  /**
   * The lines of a group, as one flat string (join copies its pieces; concatenation would keep a
   * tree of them, some 30 bytes a piece, for as long as the text is kept).
   */
  #text(def: MetricDef, prefix: string, list: readonly Series[]): string {
    const parts: string[] = [];
    for (const series of list) this.#lines(parts, def, prefix, series);
    return parts.join('');
  }

  /** The lines of one series: one sample, or a histogram's buckets, sum and count. */
  #lines(parts: string[], def: MetricDef, prefix: string, series: Series): void {
    const labels = joined(prefix, series.set.text);
    if (!('counts' in series)) {
      parts.push(def.name, braced(labels), ' ', formatValue(series.value), '\n');
      return;
    }
    const bucketLabels = labels === '' ? '' : `,${labels}`;
    let cumulative = 0;
    for (let i = 0; i < series.counts.length; i++) {
      cumulative += series.counts[i]!;
      parts.push(def.name, '_bucket{le="', formatValue((def as HistogramDef).buckets[i]!), '"', bucketLabels, '} ', String(cumulative), '\n');
    }
    parts.push(def.name, '_bucket{le="+Inf"', bucketLabels, '} ', String(series.count), '\n');
    parts.push(def.name, '_sum', braced(labels), ' ', formatValue(series.sum), '\n', def.name, '_count', braced(labels), ' ', String(series.count), '\n');
  }

  /** The family as prom-client's registry sees a metric: its values as objects, built when asked. */
  #adapter(family: Family): Metric {
    const { def } = family;
    const values = () => {
      const out: Array<{ labels: Labels; value: number; metricName?: string }> = [];
      for (const [target, group] of family.byTarget) {
        for (const series of group.series) {
          const labels = this.#targetLabel ? { target, ...series.set.labels } : { ...series.set.labels };
          if (!('counts' in series)) {
            out.push({ labels, value: series.value });
            continue;
          }
          let cumulative = 0;
          (def as HistogramDef).buckets.forEach((le, i) => out.push({ labels: { ...labels, le: formatValue(le) }, value: (cumulative += series.counts[i]!), metricName: `${def.name}_bucket` }));
          out.push({ labels: { ...labels, le: '+Inf' }, value: series.count, metricName: `${def.name}_bucket` });
          out.push({ labels, value: series.sum, metricName: `${def.name}_sum` }, { labels, value: series.count, metricName: `${def.name}_count` });
        }
      }
      return out;
    };
    const adapter = {
      name: def.name,
      help: def.help,
      type: def.type,
      aggregator: 'sum',
      get: async () => ({ name: def.name, help: def.help, type: def.type, aggregator: 'sum', values: values() }),
      reset: () => family.byTarget.clear(),
    };
    // prom-client's registry needs only these members of a metric (name, get, reset, ...).
    return adapter as unknown as Metric;
  }
}
