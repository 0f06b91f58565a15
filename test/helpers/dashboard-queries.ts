// Every PromQL expression of the shipped dashboard (panels, annotations, variables), with Grafana's
// variables substituted as Grafana would for "All" selected (text boxes at their shipped value) and
// a given range and step; and a reader of a real Prometheus's answers to them.
import type { Panel, RowPanel } from '@grafana/schema';
import { dashboard } from '../../grafana/dashboard.ts';
import { parseDuration } from '../../src/lib/duration.ts';

export interface DashboardQuery {
  where: string;
  /** The panel's title (or the annotation's or variable's name) and the query's refId. */
  panel: string;
  refId: string;
  expr: string;
  /** The panel's minimum interval, when it sets one. */
  interval: string | undefined;
  /** Evaluated once at the end of the range (stats, tables). */
  instant: boolean;
}

export function dashboardQueries(): DashboardQuery[] {
  const out: DashboardQuery[] = [];
  for (const panel of dashboard.panels as Array<Panel | RowPanel>) {
    if (panel.type === 'row' || !('targets' in panel)) continue;
    for (const t of panel.targets ?? []) {
      out.push({ where: `panel "${panel.title}" ${String(t.refId)}`, panel: panel.title ?? '', refId: String(t.refId), expr: String(t.expr), interval: panel.interval, instant: t.instant === true });
    }
  }
  for (const a of dashboard.annotations.list) {
    if (a.target && 'expr' in a.target) out.push({ where: `annotation "${a.name}"`, panel: a.name, refId: 'Anno', expr: String(a.target.expr), interval: undefined, instant: false });
  }
  for (const v of dashboard.templating.list) {
    const q = typeof v.query === 'object' ? String(v.query.query) : '';
    const m = /^label_values\((.+), (\w+)\)$/.exec(q);
    // label_values(selector, label) asks for the label's values among the selector's series.
    if (m) out.push({ where: `variable "${v.name}"`, panel: v.name, refId: 'Var', expr: `group by (${m[2]}) (${m[1]})`, interval: undefined, instant: false });
  }
  return out;
}

/** The one query of `panel` with `refId` (A when not given). */
export function dashboardQuery(panel: string, refId = 'A'): DashboardQuery {
  const q = dashboardQueries().find((x) => x.panel === panel && x.refId === refId);
  if (!q) throw new Error(`no query ${refId} in panel "${panel}"`);
  return q;
}

/** The text-box variables at their shipped values. */
const shippedText = (): Record<string, string> =>
  Object.fromEntries(dashboard.templating.list.filter((v) => v.type === 'textbox').map((v) => [v.name, String(v.query)]));

export interface Substitution {
  stepSeconds: number;
  rangeSeconds: number;
  scrapeSeconds: number;
  /** Values typed into text-box variables instead of the shipped ones. */
  text?: Record<string, string>;
}

/** Grafana's substitutions: every query variable "All", $__interval the step, $__rate_interval at least four scrapes. */
export function substitute(expr: string, o: Substitution): string {
  const rate = Math.max(o.stepSeconds + o.scrapeSeconds, 4 * o.scrapeSeconds);
  const text = { ...shippedText(), ...o.text };
  return expr
    .replaceAll('$__rate_interval', `${rate}s`)
    .replaceAll('$__interval', `${o.stepSeconds}s`)
    .replaceAll('$__range', `${Math.ceil(o.rangeSeconds)}s`)
    .replace(/\$(\w+)\b/g, (all, name: string) => text[name] ?? (/^(job|instance|model|target)$/.test(name) ? '.*' : all));
}

/** Grafana's step: the range over its data points, never below the panel's minimum interval or the scrape interval. */
export function stepFor(q: DashboardQuery, rangeSeconds: number, scrapeSeconds: number): number {
  const min = q.interval ? parseDuration(q.interval)! / 1000 : scrapeSeconds;
  return Math.max(min, scrapeSeconds, Math.ceil(rangeSeconds / 1000));
}

export interface Series {
  metric: Record<string, string>;
  /** [unix seconds, value] */
  values: Array<[number, number]>;
}

export interface Run {
  end: number;
  rangeSeconds: number;
  scrapeSeconds: number;
  text?: Record<string, string>;
  /** Evaluate an instant query over the range too, at every step (to see whether it ever has data). */
  asRange?: boolean;
}

/**
 * Runs one dashboard query against Prometheus as Grafana would over [end - range, end]: a range
 * query with the step counted back from the end (so its last point is the end even when the range
 * is shorter than a step), or an instant query at the end. Throws with Prometheus's error.
 */
export async function runDashboardQuery(prometheus: string, q: DashboardQuery, o: Run): Promise<{ expr: string; series: Series[] }> {
  const stepSeconds = stepFor(q, o.rangeSeconds, o.scrapeSeconds);
  const expr = substitute(q.expr, { stepSeconds, rangeSeconds: o.rangeSeconds, scrapeSeconds: o.scrapeSeconds, ...(o.text ? { text: o.text } : {}) });
  const instant = q.instant && !o.asRange;
  const at = instant ? { time: o.end } : { start: o.end - Math.floor(o.rangeSeconds / stepSeconds) * stepSeconds, end: o.end, step: stepSeconds };
  const series = await promQuery(prometheus, expr, at).catch((err: Error) => {
    throw new Error(`${q.where}: ${err.message}`);
  });
  return { expr, series };
}

/** Any expression, at `time` (an instant query), or over [start, end] every `step` seconds (a range query). */
export async function promQuery(prometheus: string, expr: string, at: { time: number } | { start: number; end: number; step: number }): Promise<Series[]> {
  const params = new URLSearchParams({ query: expr, ...Object.fromEntries(Object.entries(at).map(([k, v]) => [k, String(v)])) });
  const answer = (await (await fetch(`${prometheus}/api/v1/${'time' in at ? 'query' : 'query_range'}?${params}`)).json()) as {
    status: string;
    error?: string;
    data?: { result: Array<{ metric: Record<string, string>; value?: [number, string]; values?: Array<[number, string]> }> };
  };
  if (answer.status !== 'success') throw new Error(`${answer.error} in ${expr}`);
  return answer.data!.result.map((r) => ({ metric: r.metric, values: (r.values ?? (r.value ? [r.value] : [])).map(([t, v]): [number, number] => [t, Number(v)]) }));
}

/** The queries that count events (whole numbers by construction): the events form, not divided. */
export const isCount = (q: DashboardQuery) => /- last_over_time\(/.test(q.expr) && !q.expr.includes(' / ');
