// The Grafana dashboard, as code typed by Grafana's own schema package (@grafana/schema, generated
// from the CUE schema Grafana publishes), so a misspelt field or a wrong option fails the
// typecheck. `npm run docs` writes grafana/dashboards/qwen-sentinel.json from it; a test keeps the
// two in sync, and the end-to-end test runs every query below against a real Prometheus.
//
// Rules kept throughout, so that every number is one that happened:
// - counts are whole numbers of events (`events`, not increase(), which extrapolates to the
//   window's edges and draws 1.105 exits); bars are at least countInterval wide; adjacent bars
//   split the events between them, none counted twice or lost;
// - durations are real runs (the slowest in a window, or a mean) read from the per-run gauges
//   with *_over_time (the exporter publishes no histograms of its own: with a scrape per run the
//   gauges hold every run, in /probe mode too), never a quantile interpolated inside a bucket;
// - time without data is said to be so: availability counts the time the exporter could not be
//   scraped as not up, panels with nothing to show say why (noValue);
// - the components' jobs are variables (exporter_job, remediator_job), as in Prometheus mixins;
// events are annotations; every counter the panels read is pre-initialised by the components or
// counted from its first sample (`events`), so the first event shows.
import { writeFile } from 'node:fs/promises';
import { eventLoopSampleSeconds } from '../src/lib/build-info.ts';
import {
  BigValueColorMode, BigValueGraphMode, BigValueJustifyMode, BigValueTextMode, DashboardCursorSync, FieldColorModeId, GraphDrawStyle,
  LegendDisplayMode, MappingType, PercentChangeColorMode, SortOrder, SpecialValueMatch, StackingMode, TableCellHeight, ThresholdsMode, TooltipDisplayMode,
  VariableHide, VariableRefresh, VariableSort, VisibilityMode, VizOrientation,
  type AnnotationQuery, type Dashboard, type DataSourceRef, type FieldConfig, type Panel, type RowPanel, type ValueMapping, type VariableModel,
} from '@grafana/schema';
import type { Options as StatOptions } from '@grafana/schema/dist/esm/raw/composable/stat/panelcfg/x/StatPanelCfg_types.gen';
import type { Options as StateTimelineOptions } from '@grafana/schema/dist/esm/raw/composable/statetimeline/panelcfg/x/StateTimelinePanelCfg_types.gen';
import type { Options as TableOptions } from '@grafana/schema/dist/esm/raw/composable/table/panelcfg/x/TablePanelCfg_types.gen';
import type { FieldConfig as TimeSeriesFieldConfig, Options as TimeSeriesOptions } from '@grafana/schema/dist/esm/raw/composable/timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen';

const datasource: DataSourceRef = { type: 'prometheus', uid: '${datasource}' };

/** Minimum $__interval of count panels: two samples per window even at a 60 s scrape interval. */
export const countInterval = '2m';

/** The probe series of the selected job, instance and target (model and target are chained variables). */
const probe = (extra = '') => `{job=~"$job", instance=~"$instance", target=~"$target"${extra}}`;
/** The remediator's and the model server's own series carry the `target` label only. */
const byTarget = (extra = '') => `{target=~"$target"${extra}}`;
/** qwen-sentinel's own components, by the jobs named in the variables. */
const components = '{job=~"$exporter_job|$remediator_job"}';

/** How far back the sample before a window is looked for: past a failed scrape's staleness marker. */
const gap = '10m';

/**
 * The events a counter counted in the window `w` wide ending at each point: its value less its
 * last sample before the window, or, after a reset (the process restarted) or for a new series,
 * its value itself. Whole numbers, where increase() extrapolates to the window's edges (1.105
 * exits; 2 for 1 at a 60 s scrape); adjacent windows split the events, none counted twice or
 * lost. The fallback counts a whole counter only when nothing of it was seen for `gap`.
 */
const events = (series: string, w = '$__interval') => `((${series} - last_over_time(${series}[${gap}] offset ${w})) >= 0 or ${series} * 1)`;

/** The events over the whole range, window by window, so that a reset inside the range loses nothing. */
const eventsInRange = (series: string) => `sum_over_time(${events(series)}[$__range:$__interval])`;

export interface Query {
  expr: string;
  legendFormat?: string;
  /** Evaluated once at the end of the range (stats, tables), else over the range. */
  instant?: boolean;
  format?: 'table' | 'time_series';
}

const query = (q: Query, i: number): Record<string, unknown> => ({
  datasource,
  refId: String.fromCharCode(65 + i),
  expr: q.expr,
  legendFormat: q.legendFormat ?? '__auto',
  range: !q.instant,
  instant: q.instant === true,
  ...(q.format ? { format: q.format } : {}),
});

interface Base {
  title: string;
  description: string;
  w: number;
  h: number;
  queries: Query[];
  unit?: string;
  interval?: string;
  mappings?: ValueMapping[];
  noValue?: string;
  thresholds?: Array<{ color: string; value: number | null }>;
  /** Units of single columns of a table, by their (renamed) name. */
  columnUnits?: Record<string, string>;
}

function panel(type: string, b: Base, options: Record<string, unknown>, custom: Record<string, unknown> = {}, transformations: Panel['transformations'] = undefined): Panel {
  const defaults: FieldConfig = {
    ...(b.unit ? { unit: b.unit } : {}),
    ...(b.mappings ? { mappings: b.mappings } : {}),
    ...(b.noValue ? { noValue: b.noValue } : {}),
    ...(b.thresholds ? { thresholds: { mode: ThresholdsMode.Absolute, steps: b.thresholds }, color: { mode: FieldColorModeId.Thresholds } } : {}),
    custom,
  };
  return {
    type,
    title: b.title,
    description: b.description,
    datasource,
    gridPos: { x: 0, y: 0, w: b.w, h: b.h },
    ...(b.interval ? { interval: b.interval } : {}),
    targets: b.queries.map(query),
    fieldConfig: {
      defaults,
      overrides: Object.entries(b.columnUnits ?? {}).map(([name, unit]) => ({ matcher: { id: 'byName', options: name }, properties: [{ id: 'unit', value: unit }] })),
    },
    options,
    ...(transformations ? { transformations } : {}),
  };
}

const legend = { displayMode: LegendDisplayMode.List, placement: 'bottom' as const, showLegend: true, calcs: [] };
const tooltip = { mode: TooltipDisplayMode.Multi, sort: SortOrder.Descending };

function timeseries(b: Base, o: { bars?: boolean } = {}): Panel {
  const options: TimeSeriesOptions = { legend, tooltip };
  const custom: TimeSeriesFieldConfig = o.bars
    ? { drawStyle: GraphDrawStyle.Bars, fillOpacity: 80, lineWidth: 1, stacking: { mode: StackingMode.Normal, group: 'A' } }
    : { drawStyle: GraphDrawStyle.Line, fillOpacity: 10, lineWidth: 1, showPoints: VisibilityMode.Never, spanNulls: false };
  return panel('timeseries', b, { ...options }, { ...custom });
}

/** A count per bar: increase over exactly the bar's width, never less than countInterval. */
const counts = (b: Omit<Base, 'interval'>) => timeseries({ ...b, interval: countInterval }, { bars: true });

function stat(b: Base, textMode = BigValueTextMode.ValueAndName): Panel {
  const options: StatOptions = {
    reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
    orientation: VizOrientation.Auto,
    colorMode: BigValueColorMode.Background,
    graphMode: BigValueGraphMode.None,
    justifyMode: BigValueJustifyMode.Auto,
    textMode,
    wideLayout: true,
    showPercentChange: false,
    percentChangeColorMode: PercentChangeColorMode.Standard,
  };
  return panel('stat', b, { ...options });
}

function timeline(b: Base): Panel {
  const options: StateTimelineOptions = { legend: { ...legend, showLegend: false }, tooltip, rowHeight: 0.9, showValue: VisibilityMode.Never, mergeValues: true };
  return panel('state-timeline', b, { ...options }, { fillOpacity: 80, lineWidth: 0 });
}

function table(b: Base, transformations: Panel['transformations'] = undefined): Panel {
  const options: TableOptions = { frameIndex: 0, showHeader: true, cellHeight: TableCellHeight.Sm };
  return panel('table', b, { ...options }, {}, transformations);
}

/** An instant table: one row per label set, the queries merged on their common labels. */
const mergedTable = (b: Base, columns: Record<string, string>, hidden: string[] = []) =>
  table(b, [
    { id: 'merge', options: {} },
    { id: 'organize', options: { excludeByName: Object.fromEntries(['Time', ...hidden].map((f) => [f, true])), renameByName: columns } },
  ]);

const upDown: ValueMapping[] = [{ type: MappingType.ValueToText, options: { 0: { text: 'DOWN', color: 'red', index: 0 }, 1: { text: 'UP', color: 'green', index: 1 } } }];
const okFailed: ValueMapping[] = [{ type: MappingType.ValueToText, options: { 0: { text: 'FAILED', color: 'red', index: 0 }, 1: { text: 'OK', color: 'green', index: 1 } } }];
const closedOpen: ValueMapping[] = [{ type: MappingType.ValueToText, options: { 0: { text: 'closed', color: 'green', index: 0 }, 1: { text: 'OPEN', color: 'red', index: 1 } } }];
const noSuchJob: ValueMapping = { type: MappingType.ValueToText, options: { '-1': { text: 'NO SUCH JOB', color: 'blue', index: 2 } } };
const nanIsNone: ValueMapping = { type: MappingType.SpecialValue, options: { match: SpecialValueMatch.NaN, result: { text: '-', index: 0 } } };
const redGreen = [{ color: 'red', value: null }, { color: 'green', value: 1 }];

/** A time series of the evaluation time where `cond` holds, for min/max_over_time. */
const timeWhere = (cond: string) => `((${cond}) * 0 + time())`;

/** llm_server_up of the selected targets, now or `offset` before. */
const serverUp = (offset = '') => `max by (target) (llm_server_up${probe()}${offset})`;

/**
 * When the latest outage in the range began: the last step down whose step before was not down
 * (up, or nothing scraped); or, when the range begins inside that outage, its first step.
 */
const latestOutageStart = `max_over_time(${timeWhere(`${serverUp()} == 0 unless on (target) ${serverUp(' offset $__interval')} == 0`)}[$__range:$__interval] @ end())`
  + ` or min_over_time(${timeWhere(`${serverUp()} == 0`)}[$__range:$__interval] @ end())`;

/**
 * The failure that began the latest outage: the probe and reason first at 1 from its start on, at
 * the time first seen. Not the last reason, which is mostly the remediator's own doing: the
 * restart cuts the probe in flight (connect_error), refuses the next ones (connect_refused) and
 * loads (starting, timeout).
 */
const outageCause = `label_join(bottomk by (target) (1, min by (target, probe, reason) (min_over_time((${timeWhere(`llm_probe_failure_reason${probe()} == 1`)} >= on (target) group_left () (${latestOutageStart}))[$__range:$__interval]))), "cause", ": ", "probe", "reason") * 1000`;

/**
 * Per step, llm_server_up of each target, or 0 while the scrape that carries it failed (up 0: the
 * exporter down or unreachable), for the targets seen at the end of the range.
 */
const upOrUnscraped = `max by (job, instance, target) (llm_server_up${probe()}) or on (job, instance, target) ((up{job=~"$job", instance=~"$instance"} == 0) * on (job, instance) group_right () group by (job, instance, target) (last_over_time(llm_server_up${probe()}[$__range] @ end())))`;

/**
 * The share of the probe runs of each target and probe in the range that took at most `bound`
 * seconds: the last run's duration read at every step of the range, so each run once when the
 * step is the scrape (= probe) interval.
 */
const shareWithin = (bound: number) =>
  `sum by (target, probe) (count_over_time((llm_probe_duration_seconds${probe()} <= ${bound})[$__range:$__interval])) / sum by (target, probe) (count_over_time(llm_probe_duration_seconds${probe()}[$__range:$__interval]))`;

/** The mean of a per-run gauge per target and probe over each point's window: the mean of the runs scraped in it. */
const mean = (metric: string) => `avg by (target, probe) (avg_over_time(${metric}${probe()}[$__rate_interval]))`;

/** The slowest value of a per-run gauge in each point's window: one that a run really had. */
const slowest = (metric: string) => `max by (target, probe) (max_over_time(${metric}${probe()}[$__rate_interval]))`;

/** The lowest value of a per-run gauge in each point's window (the slowest decode rate). */
const lowest = (metric: string) => `min by (target, probe) (min_over_time(${metric}${probe()}[$__rate_interval]))`;

/** What the vLLM row's panels say without the optional scrape job. */
const noVllm = 'No data: add the optional vllm scrape job (docs/adoption.md)';

const quantiles = (metric: string, by: string, qs: number[]): Query[] =>
  qs.map((q) => ({ expr: `histogram_quantile(${q}, sum by (${by}, le) (rate(${metric}[$__rate_interval])))`, legendFormat: `{{target}} p${Math.round(q * 100)}` }));

interface Row {
  title: string;
  collapsed?: boolean;
  panels: Panel[];
}

const rows: Row[] = [
  {
    title: 'Overview',
    panels: [
      stat({
        title: 'Server up', w: 6, h: 6, mappings: upDown, thresholds: redGreen, noValue: 'DOWN',
        description: 'llm_server_up: 1 when every probe of the last round succeeded. DOWN also when there is no sample at all: the exporter (or Prometheus\'s scrape of it) is gone, which is not a healthy server either.',
        queries: [{ expr: `max by (target) (llm_server_up${probe()})`, legendFormat: '{{target}}', instant: true }],
      }),
      stat({
        title: 'Availability', w: 6, h: 6, unit: 'percentunit', thresholds: [{ color: 'red', value: null }, { color: 'orange', value: 0.95 }, { color: 'green', value: 0.99 }],
        description: 'The share of the time range in which llm_server_up said up, read at every rule evaluation. Time in which Prometheus could not scrape the exporter (down, unreachable, too slow) counts as not up: nobody knew the server was up. Time in which Prometheus itself recorded nothing is left out.',
        queries: [{ expr: `avg by (target) (avg_over_time((${upOrUnscraped})[$__range:]))`, legendFormat: '{{target}}', instant: true }],
      }, BigValueTextMode.ValueAndName),
      mergedTable({
        title: 'Targets', w: 12, h: 6,
        description: 'Per target, now: up, time to first token and decode rate of the chat probe. Over the range: restarts (remediation actions), and the latest outage: when it began and its cause, the probe and reason of the failure that began it (one of the probes when several failed in the same round). Not the last failure: a restart cuts the probe in flight (connect_error), refuses the next ones (connect_refused) and loads (starting), which says nothing of why the server was restarted.',
        columnUnits: { 'Latest outage began': 'dateTimeAsIso' },
        queries: [
          { expr: `max by (target) (llm_server_up${probe()})`, instant: true, format: 'table' },
          { expr: `max by (target) (llm_probe_time_to_first_token_seconds${probe(', probe="chat"')})`, instant: true, format: 'table' },
          { expr: `max by (target) (llm_probe_tokens_per_second${probe(', probe="chat"')})`, instant: true, format: 'table' },
          { expr: `sum by (target) (${eventsInRange(`llm_remediation_actions_total${byTarget()}`)})`, instant: true, format: 'table' },
          { expr: outageCause, instant: true, format: 'table' },
        ],
      }, { target: 'Target', 'Value #A': 'Up', 'Value #B': 'TTFT (s)', 'Value #C': 'Decode (tokens/s)', 'Value #D': 'Restarts', 'Value #E': 'Latest outage began', cause: 'Cause' }, ['probe', 'reason']),
    ],
  },
  {
    title: 'Probes',
    panels: [
      timeline({
        title: 'Server up over time', w: 12, h: 6, mappings: upDown, thresholds: redGreen,
        description: 'llm_server_up per target; gaps are times without a sample.',
        queries: [{ expr: `max by (target) (llm_server_up${probe()})`, legendFormat: '{{target}}' }],
      }),
      timeline({
        title: 'Probe success', w: 12, h: 6, mappings: upDown, thresholds: redGreen,
        description: 'llm_probe_success per target and probe: which probe failed.',
        queries: [{ expr: `max by (target, probe) (llm_probe_success${probe()})`, legendFormat: '{{target}} {{probe}}' }],
      }),
      counts({
        title: 'Probes run', w: 8, h: 7, unit: 'short',
        description: `Probes run per bar (llm_probes_total: the runs counted in the bar's width, at least ${countInterval}).`,
        queries: [{ expr: `sum by (target, probe) (${events(`llm_probes_total${probe()}`)})`, legendFormat: '{{target}} {{probe}}' }],
      }),
      counts({
        title: 'Probe failures by reason', w: 8, h: 7, unit: 'short', noValue: 'no failures',
        description: `Failures per bar and reason (llm_probe_failures_total): connect_refused, timeout, no_tokens, hung, starting, saturated, ...; see docs/probes.md.`,
        queries: [{ expr: `sum by (target, reason) (${events(`llm_probe_failures_total${probe()}`)}) > 0`, legendFormat: '{{target}} {{reason}}' }],
      }),
      table({
        title: 'Failures in the range', w: 8, h: 7, noValue: 'no failures',
        description: 'Failures per target, probe and reason over the whole time range: each failed run once, counted across restarts of the exporter.',
        queries: [{ expr: `sum by (target, probe, reason) (${eventsInRange(`llm_probe_failures_total${probe()}`)}) > 0`, instant: true, format: 'table' }],
      }),
    ],
  },
  {
    title: 'Latency and decode rate (probes)',
    panels: [
      timeseries({
        title: 'Time to first token', w: 12, h: 8, unit: 's',
        description: 'Request sent to first token (llm_probe_time_to_first_token_seconds), per generating probe: the slowest successful run in the window ending at each point ($__rate_interval, at least four scrapes), and the mean of the runs scraped in it. Real runs only: no quantile interpolated inside a histogram bucket.',
        queries: [
          { expr: slowest('llm_probe_time_to_first_token_seconds'), legendFormat: '{{target}} {{probe}} slowest' },
          { expr: mean('llm_probe_time_to_first_token_seconds'), legendFormat: '{{target}} {{probe}} mean' },
        ],
      }),
      timeseries({
        title: 'Decode rate', w: 12, h: 8, unit: 'suffix: tokens/s',
        description: '(completion_tokens - 1) / (last token - first token) of each generating probe (llm_probe_tokens_per_second; the mean inter-token latency is 1 / it): the slowest successful run in the window ending at each point ($__rate_interval), and the mean of the runs scraped in it.',
        queries: [
          { expr: lowest('llm_probe_tokens_per_second'), legendFormat: '{{target}} {{probe}} slowest' },
          { expr: mean('llm_probe_tokens_per_second'), legendFormat: '{{target}} {{probe}} mean' },
        ],
      }),
      timeseries({
        title: 'Probe duration', w: 12, h: 8, unit: 's',
        description: 'Per probe (models, health, chat, ... apart), failures included: the slowest run in the window ending at each point ($__rate_interval, at least four scrapes). Every value is the duration of a run Prometheus scraped; no quantile interpolated inside a histogram bucket.',
        queries: [{ expr: slowest('llm_probe_duration_seconds'), legendFormat: '{{target}} {{probe}}' }],
      }),
      mergedTable({
        title: 'Probe durations in the range', w: 12, h: 8,
        description: 'Per target and probe over the range, failures included, from llm_probe_duration_seconds: the runs Prometheus scraped (every run when the scrape interval is the probe interval); the slowest of them; the share of runs that took at most 1 s, 5 s and 10 s (the default timeout), the last run read at every step of the range (each run once when the step is the scrape interval).',
        columnUnits: { 'Slowest (s)': 's', '≤ 1 s': 'percentunit', '≤ 5 s': 'percentunit', '≤ 10 s': 'percentunit' },
        queries: [
          { expr: `sum by (target, probe) (count_over_time(llm_probe_duration_seconds${probe()}[$__range]))`, instant: true, format: 'table' },
          { expr: `max by (target, probe) (max_over_time(llm_probe_duration_seconds${probe()}[$__range]))`, instant: true, format: 'table' },
          { expr: shareWithin(1), instant: true, format: 'table' },
          { expr: shareWithin(5), instant: true, format: 'table' },
          { expr: shareWithin(10), instant: true, format: 'table' },
        ],
      }, { target: 'Target', probe: 'Probe', 'Value #A': 'Runs', 'Value #B': 'Slowest (s)', 'Value #C': '≤ 1 s', 'Value #D': '≤ 5 s', 'Value #E': '≤ 10 s' }),
    ],
  },
  {
    title: 'Alerts',
    panels: [
      table({
        title: 'Firing alerts', w: 12, h: 7, noValue: 'none firing',
        description: 'Alerts of qwen-sentinel\'s rules firing now.',
        queries: [{ expr: 'ALERTS{alertname=~"LLM.*|QwenSentinel.*", alertstate="firing"}', instant: true, format: 'table' }],
      }),
      timeline({
        title: 'Alert history', w: 12, h: 7, thresholds: [{ color: 'transparent', value: null }, { color: 'red', value: 1 }],
        description: 'When each alert fired. Alerts about qwen-sentinel itself carry no target and always show.',
        // `|` lets the target-less QwenSentinel* alerts through whatever targets are selected.
        queries: [{ expr: 'max by (alertname, target) (ALERTS{alertname=~"LLM.*|QwenSentinel.*", alertstate="firing", target=~"$target|"})', legendFormat: '{{alertname}} {{target}}' }],
      }),
    ],
  },
  {
    title: 'Remediation',
    panels: [
      counts({
        title: 'Remediation actions', w: 8, h: 7, unit: 'short',
        description: `Restarts and commands per bar, by outcome (llm_remediation_actions_total): success once the server answered again within startup_timeout.`,
        queries: [{ expr: `sum by (target, action, outcome) (${events(`llm_remediation_actions_total${byTarget()}`)})`, legendFormat: '{{target}} {{action}} {{outcome}}' }],
      }),
      mergedTable({
        title: 'Last action', w: 8, h: 7,
        description: 'Per target: the last action, the alert that caused it, its outcome, when it finished and how long the server took to answer again.',
        columnUnits: { Finished: 'dateTimeAsIso', 'Time to healthy (s)': 's' },
        queries: [
          { expr: `llm_remediation_last_action_info${byTarget()}`, instant: true, format: 'table' },
          { expr: `llm_remediation_last_action_timestamp_seconds${byTarget()} * 1000 > 0`, instant: true, format: 'table' },
          { expr: `llm_remediation_last_time_to_healthy_seconds${byTarget()}`, instant: true, format: 'table' },
        ],
      }, { target: 'Target', action: 'Action', alertname: 'Alert', outcome: 'Outcome', 'Value #B': 'Finished', 'Value #C': 'Time to healthy (s)' }, ['Value #A', 'job', 'instance', '__name__']),
      stat({
        title: 'Crash-loop circuit', w: 8, h: 7, mappings: closedOpen, thresholds: [{ color: 'green', value: null }, { color: 'red', value: 1 }],
        description: 'llm_remediation_circuit_open: OPEN after circuit.max_restarts restarts within circuit.window; the remediator then stops acting until the window passes or a person closes it.',
        queries: [{ expr: `max by (target) (llm_remediation_circuit_open${byTarget()})`, legendFormat: '{{target}}', instant: true }],
      }),
      stat({
        title: 'Time to healthy', w: 8, h: 7, unit: 's', mappings: [nanIsNone], thresholds: [{ color: 'green', value: null }],
        description: 'From an action to the server answering again (listing and a one-token generation): the mean over the range.',
        queries: [{ expr: `sum by (target) (${eventsInRange(`llm_remediation_time_to_healthy_seconds_sum${byTarget()}`)}) / sum by (target) (${eventsInRange(`llm_remediation_time_to_healthy_seconds_count${byTarget()}`)})`, legendFormat: '{{target}}', instant: true }],
      }),
      timeline({
        title: 'Managed process up', w: 8, h: 7, mappings: upDown, thresholds: redGreen,
        description: 'llm_remediation_managed_process_up: the server the remediator started itself (action process) is running.',
        queries: [{ expr: `max by (target) (llm_remediation_managed_process_up${byTarget()})`, legendFormat: '{{target}}' }],
      }),
      counts({
        title: 'Unexpected exits of the model server', w: 8, h: 7, unit: 'short',
        description: 'Exits the remediator did not cause (crashes, OOM kills) of a server it owns, per bar; its own restarts are not counted.',
        queries: [{ expr: `sum by (target) (${events(`llm_remediation_managed_process_exits_total${byTarget()}`)})`, legendFormat: '{{target}}' }],
      }),
      counts({
        title: 'Alert decisions', w: 8, h: 7, unit: 'short',
        description: 'What the remediator decided per alert it received (webhook), read (reconcile) or caused itself (exit): restart, cooldown, duplicate, stale, ...',
        queries: [{ expr: `sum by (decision, source) (${events('llm_remediation_alerts_total')}) > 0`, legendFormat: '{{decision}} ({{source}})' }],
      }),
      counts({
        title: 'Webhook requests', w: 8, h: 7, unit: 'short',
        description: 'Webhook requests per bar by HTTP status: 401 is a wrong token, 4xx a bad payload.',
        queries: [{ expr: `sum by (code) (${events('llm_remediation_webhook_requests_total')})`, legendFormat: '{{code}}' }],
      }),
      counts({
        title: 'Alertmanager reads', w: 8, h: 7, unit: 'short',
        description: "Reads of Alertmanager's active alerts (remediator.alertmanager), by outcome.",
        queries: [{ expr: `sum by (outcome) (${events('llm_remediation_reconcile_total')})`, legendFormat: '{{outcome}}' }],
      }),
    ],
  },
  {
    title: "vLLM's own metrics",
    collapsed: false,
    panels: [
      timeseries({
        noValue: noVllm,
        title: 'Requests running and waiting', w: 8, h: 7, unit: 'short',
        description: "vLLM's vllm:num_requests_running and vllm:num_requests_waiting (Prometheus job vllm, labelled with the qwen-sentinel target).",
        queries: [
          { expr: `sum by (target) (vllm:num_requests_running${byTarget()})`, legendFormat: '{{target}} running' },
          { expr: `sum by (target) (vllm:num_requests_waiting${byTarget()})`, legendFormat: '{{target}} waiting' },
        ],
      }),
      timeseries({
        noValue: noVllm,
        title: 'KV-cache use', w: 8, h: 7, unit: 'percentunit',
        description: 'vllm:kv_cache_usage_perc (vllm:gpu_cache_usage_perc before vLLM 0.10).',
        queries: [{ expr: `max by (target) (vllm:kv_cache_usage_perc${byTarget()} or vllm:gpu_cache_usage_perc${byTarget()})`, legendFormat: '{{target}}' }],
      }),
      timeseries({
        noValue: noVllm,
        title: 'Generation throughput', w: 8, h: 7, unit: 'suffix: tokens/s',
        description: 'vllm:generation_tokens_total: tokens generated per second for every user, not only the probes.',
        queries: [{ expr: `sum by (target) (rate(vllm:generation_tokens_total${byTarget()}[$__rate_interval]))`, legendFormat: '{{target}}' }],
      }),
      timeseries({
        noValue: noVllm,
        title: 'Time to first token (vLLM)', w: 12, h: 7, unit: 's',
        description: "vLLM's own vllm:time_to_first_token_seconds over every request, p50, p95, p99, estimated by Prometheus inside vLLM's histogram buckets.",
        queries: quantiles(`vllm:time_to_first_token_seconds_bucket${byTarget()}`, 'target', [0.5, 0.95, 0.99]),
      }),
      timeseries({
        noValue: noVllm,
        title: 'Inter-token latency (vLLM)', w: 12, h: 7, unit: 's',
        description: "vllm:inter_token_latency_seconds (vllm:time_per_output_token_seconds before 0.11), p50 and p95, estimated by Prometheus inside vLLM's histogram buckets.",
        queries: [0.5, 0.95].map((q) => ({
          expr: `histogram_quantile(${q}, sum by (target, le) (rate(vllm:inter_token_latency_seconds_bucket${byTarget()}[$__rate_interval]) or rate(vllm:time_per_output_token_seconds_bucket${byTarget()}[$__rate_interval])))`,
          legendFormat: `{{target}} p${q * 100}`,
        })),
      }),
    ],
  },
  {
    title: 'qwen-sentinel',
    panels: [
      stat({
        title: 'Components up', w: 6, h: 6, mappings: [...upDown, noSuchJob], thresholds: [{ color: 'blue', value: null }, { color: 'red', value: 0 }, { color: 'green', value: 1 }],
        description: "Prometheus's up for the jobs in the variables Exporter job and Remediator job (default: the shipped names): DOWN when Prometheus cannot scrape it. NO SUCH JOB when Prometheus scrapes no job of that name: set the variable to the job's name in your prometheus.yml.",
        queries: [
          { expr: 'up{job=~"$exporter_job"} or on () label_replace(vector(-1), "job", "$exporter_job", "", "")', legendFormat: '{{job}} {{instance}}', instant: true },
          { expr: 'up{job=~"$remediator_job"} or on () label_replace(vector(-1), "job", "$remediator_job", "", "")', legendFormat: '{{job}} {{instance}}', instant: true },
        ],
      }),
      stat({
        title: 'Config reload', w: 6, h: 6, mappings: okFailed, thresholds: redGreen,
        description: 'qwen_sentinel_config_last_reload_successful: a failed reload keeps the previous config; fix the file and reload again.',
        queries: [{ expr: `qwen_sentinel_config_last_reload_successful${components}`, legendFormat: '{{job}}', instant: true }],
      }),
      stat({
        title: 'Config loaded', w: 6, h: 6, unit: 'dateTimeFromNow', thresholds: [{ color: 'blue', value: null }],
        description: 'When each component last loaded its config successfully.',
        queries: [{ expr: `qwen_sentinel_config_last_reload_success_timestamp_seconds${components} * 1000`, legendFormat: '{{job}}', instant: true }],
      }),
      table({
        title: 'Build', w: 6, h: 6,
        description: 'qwen_sentinel_build_info: version and Node.js of each component.',
        queries: [{ expr: `qwen_sentinel_build_info${components}`, instant: true, format: 'table' }],
      }),
      timeseries({
        title: 'Resident memory', w: 12, h: 7, unit: 'bytes',
        description: 'process_resident_memory_bytes of the exporter and the remediator.',
        queries: [{ expr: `process_resident_memory_bytes${components}`, legendFormat: '{{job}}' }],
      }),
      timeseries({
        title: 'Event loop lag (p99)', w: 12, h: 7, unit: 's',
        description: `nodejs_eventloop_lag_p99_seconds less the ${eventLoopSampleSeconds} s between the monitor's samples, which it includes: a busy exporter delays its probes and inflates their timings.`,
        queries: [{ expr: `clamp_min(nodejs_eventloop_lag_p99_seconds${components} - ${eventLoopSampleSeconds}, 0)`, legendFormat: '{{job}}' }],
      }),
    ],
  },
];

/** Places rows and their panels on Grafana's 24-column grid, left to right, top to bottom. */
function layout(list: Row[]): Array<Panel | RowPanel> {
  const out: Array<Panel | RowPanel> = [];
  let y = 0;
  let id = 1;
  for (const row of list) {
    out.push({ type: 'row', id: id++, title: row.title, collapsed: false, gridPos: { x: 0, y: y++, w: 24, h: 1 }, panels: [] });
    let x = 0;
    let rowHeight = 0;
    for (const p of row.panels) {
      const { w, h } = p.gridPos!;
      if (x + w > 24) {
        y += rowHeight;
        x = 0;
        rowHeight = 0;
      }
      out.push({ ...p, id: id++, gridPos: { x, y, w, h } });
      x += w;
      rowHeight = Math.max(rowHeight, h);
    }
    y += rowHeight;
  }
  return out;
}

function variable(name: string, label: string, metricSelector: string, description: string): VariableModel {
  const q = `label_values(${metricSelector}, ${name})`;
  return {
    name, label, description, type: 'query', datasource,
    query: { qryType: 1, query: q, refId: 'PrometheusVariableQueryEditor-VariableQuery' },
    // No custom "All" value: All becomes the alternation of the listed values, so the chain holds.
    includeAll: true, multi: true, current: { selected: true, text: ['All'], value: ['$__all'] },
    refresh: VariableRefresh.onTimeRangeChanged, sort: VariableSort.alphabeticalAsc, hide: VariableHide.dontHide, options: [], regex: '', skipUrlSync: false,
  };
}

/** A job name (or regex) typed in, as mixins take their selectors: it never changes behind the reader's back. */
function jobName(name: string, label: string, shipped: string, description: string): VariableModel {
  return {
    name, label, description, type: 'textbox', query: shipped,
    current: { selected: false, text: shipped, value: shipped }, options: [{ selected: true, text: shipped, value: shipped }],
    hide: VariableHide.dontHide, skipUrlSync: false,
  };
}

/** The Prometheus datasource's own annotation fields, beside the schema's common ones. */
type PrometheusAnnotation = AnnotationQuery<{ refId: string; expr: string }> & { titleFormat: string; textFormat: string; tagKeys: string; useValueForTime: boolean };

const annotations: Array<AnnotationQuery | PrometheusAnnotation> = [
  { builtIn: 1, datasource: { type: 'grafana', uid: '-- Grafana --' }, enable: true, hide: true, iconColor: 'rgba(0, 211, 255, 1)', name: 'Annotations & Alerts', type: 'dashboard' },
  {
    name: 'Alerts', datasource, enable: true, hide: false, iconColor: 'red',
    target: { refId: 'Anno', expr: 'ALERTS{alertname=~"LLM.*|QwenSentinel.*", alertstate="firing", target=~"$target|"}' },
    titleFormat: '{{alertname}}', textFormat: '{{target}} {{severity}}', tagKeys: 'alertname,target,severity', useValueForTime: false,
  } satisfies PrometheusAnnotation,
  {
    // One point at the moment each action finished: the series' value is that time (useValueForTime).
    name: 'Restarts', datasource, enable: true, hide: false, iconColor: 'orange',
    target: { refId: 'Anno', expr: `llm_remediation_last_action_timestamp_seconds${byTarget()} * on (target) group_left (action, alertname, outcome) llm_remediation_last_action_info * 1000 > 0` },
    titleFormat: '{{action}} {{target}}: {{outcome}}', textFormat: 'after {{alertname}}', tagKeys: 'target,action,outcome', useValueForTime: true,
  } satisfies PrometheusAnnotation,
];

export const dashboard = {
  uid: 'qwen-sentinel',
  title: 'qwen-sentinel',
  description: 'Probes, alerts and remediation of self-hosted OpenAI-compatible LLM servers, and vLLM\'s own metrics.',
  tags: ['qwen-sentinel', 'llm', 'prometheus', 'vllm'],
  schemaVersion: 39,
  version: 1,
  editable: true,
  graphTooltip: DashboardCursorSync.Crosshair,
  timezone: 'browser',
  time: { from: 'now-1h', to: 'now' },
  refresh: '30s',
  fiscalYearStartMonth: 0,
  liveNow: false,
  links: [{ title: 'Alert runbooks', type: 'link', url: 'https://github.com/qwen-sentinel/qwen-sentinel/blob/main/docs/alerts.md', icon: 'doc', tooltip: 'What each alert means and what to do', asDropdown: false, includeVars: false, keepTime: false, tags: [], targetBlank: true }],
  annotations: { list: annotations },
  templating: {
    list: [
      { name: 'datasource', label: 'Data source', type: 'datasource', query: 'prometheus', hide: VariableHide.dontHide, includeAll: false, multi: false, options: [], refresh: VariableRefresh.onDashboardLoad, regex: '', skipUrlSync: false },
      variable('job', 'Job', 'llm_server_up', 'The Prometheus job of the probe results: the exporter\'s own targets, or the /probe job.'),
      variable('instance', 'Instance', 'llm_server_up{job=~"$job"}', 'The exporter (own targets) or the probed URL (/probe).'),
      variable('model', 'Model', 'llm_server_up{job=~"$job", instance=~"$instance"}', 'The model a target serves.'),
      variable('target', 'Target', 'llm_server_up{job=~"$job", instance=~"$instance", model=~"$model"}', 'The qwen-sentinel target: every panel filters on it.'),
      jobName('exporter_job', 'Exporter job', 'qwen-sentinel-exporter', "The Prometheus job (a regex) that scrapes the exporter's /metrics, for the qwen-sentinel row."),
      jobName('remediator_job', 'Remediator job', 'qwen-sentinel-remediator', "The Prometheus job (a regex) that scrapes the remediator's /metrics, for the qwen-sentinel row."),
    ],
  },
  timepicker: {},
  panels: layout(rows),
} satisfies Dashboard;

/** The JSON file Grafana imports. */
export const renderDashboard = () => `${JSON.stringify(dashboard, null, 2)}\n`;
export const dashboardFile = new URL('./dashboards/qwen-sentinel.json', import.meta.url);

if (import.meta.main) await writeFile(dashboardFile, renderDashboard());
