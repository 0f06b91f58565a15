// The store of one GET /probe answer. A SeriesStore made for one request's round: gauges only, no
// `target` label, one target, thrown away once the answer is written. SeriesStore serves
// /metrics (thousands of targets, label sets shared between them, counters, histograms, a
// prom-client registry listing every family); none of that is of use to one answer, and building
// it for every request (a registry, an adapter per family, frozen label objects) was a good part
// of what the handler itself allocated per request. This one keeps a map per family and writes
// the same bytes (test/unit/probe-store.test.ts holds both to it).
import { Registry } from '../lib/prom-client.ts';
import { escapeHelp, escapeLabelValue, formatValue } from '../lib/prom-text.ts';
import { SeriesStore, type CounterDef, type GaugeDef, type HistogramDef, type Labels, type MetricDef, type StagedRecorder } from '../probing/series.ts';

interface Sample {
  /** Its `probe` label, if any: what only() and drop() look for. */
  probe: string | undefined;
  value: number;
}

/** A family's series by their label text, in the order they came (a series set again keeps its place). */
interface Family {
  def: MetricDef;
  series: Map<string, Sample>;
}


/** `# HELP` and `# TYPE` of each family, written once per process: the metric definitions are constants. */
const heads = new WeakMap<MetricDef, string>();
function head(def: MetricDef): string {
  let text = heads.get(def);
  if (text === undefined) heads.set(def, (text = `# HELP ${def.name} ${escapeHelp(def.help)}\n# TYPE ${def.name} ${def.type}\n`));
  return text;
}

/** The base class wants a registry; this store never registers anything in it. */
const unused = new Registry();

/**
 * The series of one /probe round. Its target is the URL probed, the same in every call (the
 * round, its info series and its up): series are kept by family and labels only. Counters and
 * histograms are dropped, as by any non-cumulative SeriesStore: a counter that starts again at
 * every scrape would mean nothing.
 */
export class ProbeStore extends SeriesStore {
  readonly #families = new Map<string, Family>();

  constructor() {
    super(unused, { targetLabel: false, cumulative: false });
  }

  /** The label text of a series, in the family's label order; a label the family lacks is an error. */
  #text(def: MetricDef, labels: Labels): string {
    let text = '';
    let given = 0;
    for (const name of def.labelNames) {
      const value = labels[name];
      if (value === undefined) continue;
      given += 1;
      text += `${text === '' ? '' : ','}${name}="${escapeLabelValue(value)}"`;
    }
    if (given !== Object.keys(labels).length) throw new Error(`metric ${def.name}: labels ${Object.keys(labels).join(', ')} are not all among ${def.labelNames.join(', ')}`);
    return text;
  }

  override set(_target: string, def: GaugeDef, value: number, labels: Labels = {}): void {
    let family = this.#families.get(def.name);
    if (family === undefined) this.#families.set(def.name, (family = { def, series: new Map() }));
    else if (family.def !== def) throw new Error(`metric ${def.name} is defined twice`);
    const text = this.#text(def, labels);
    const known = family.series.get(text);
    if (known) known.value = value;
    else family.series.set(text, { probe: labels.probe, value });
  }

  override inc(_target: string, _def: CounterDef): void {}

  override observe(_target: string, _def: HistogramDef): void {}

  override remove(_target: string, def: MetricDef, labels: Labels = {}): void {
    const family = this.#families.get(def.name);
    if (family) family.series.delete(this.#text(family.def, labels));
  }

  override only(target: string, def: GaugeDef, probe: string, labels: Labels | undefined): void {
    const family = this.#families.get(def.name);
    const keep = labels === undefined ? undefined : this.#text(def, labels);
    if (family) for (const [text, series] of family.series) if (text !== keep && series.probe === probe) family.series.delete(text);
    if (labels !== undefined) this.set(target, def, 1, labels);
  }

  /**
   * A probe's own gauges, labelled with its name; a failed probe (undefined) sets none. Each
   * probe commits once per round, so there is nothing from an earlier run to sweep.
   */
  override commit(target: string, probe: string, staged: StagedRecorder | undefined): void {
    for (const entry of staged?.entries ?? []) if (entry.metric.type === 'gauge') this.set(target, entry.metric, entry.value, { ...entry.labels, probe });
  }

  override async drop(_target: string, probe?: string): Promise<void> {
    for (const family of this.#families.values()) for (const [text, series] of family.series) if (probe === undefined || series.probe === probe) family.series.delete(text);
  }

  /** A copy, to add to without changing this one (a joined request's answer cut short). */
  copy(): ProbeStore {
    const copy = new ProbeStore();
    for (const [name, family] of this.#families) copy.#families.set(name, { def: family.def, series: new Map([...family.series].map(([text, s]) => [text, { ...s }])) });
    return copy;
  }

  /** The exposition (text format 0.0.4): a family that lost its last series still has its HELP and TYPE, as in SeriesStore. */
  override text(): string {
    let out = '';
    for (const { def, series } of this.#families.values()) {
      out += out === '' ? head(def) : `\n${head(def)}`;
      for (const [labels, s] of series) out += labels === '' ? `${def.name} ${formatValue(s.value)}\n` : `${def.name}{${labels}} ${formatValue(s.value)}\n`;
    }
    return out;
  }

  override async write(sink: (chunk: string) => void | Promise<void>): Promise<void> {
    await sink(this.text());
  }
}
