// Every PromQL expression of the shipped dashboard (panels, annotations, variables), with Grafana's
// variables substituted as Grafana would for "All" selected and a given range and step.
import { dashboard } from '../../grafana/dashboard.ts';
import { parseDuration } from '../../src/lib/duration.ts';

export interface DashboardQuery {
  where: string;
  expr: string;
  /** The panel's minimum interval, when it sets one. */
  interval: string | undefined;
}

export function dashboardQueries(): DashboardQuery[] {
  const out: DashboardQuery[] = [];
  for (const panel of dashboard.panels) {
    if (panel.type === 'row' || !('targets' in panel)) continue;
    for (const t of panel.targets ?? []) out.push({ where: `panel "${panel.title}" ${String(t.refId)}`, expr: String(t.expr), interval: panel.interval });
  }
  for (const a of dashboard.annotations.list) {
    if (a.target && 'expr' in a.target) out.push({ where: `annotation "${a.name}"`, expr: String(a.target.expr), interval: undefined });
  }
  for (const v of dashboard.templating.list) {
    const q = typeof v.query === 'object' ? String(v.query.query) : '';
    const m = /^label_values\((.+), (\w+)\)$/.exec(q);
    // label_values(selector, label) asks for the label's values among the selector's series.
    if (m) out.push({ where: `variable "${v.name}"`, expr: `group by (${m[2]}) (${m[1]})`, interval: undefined });
  }
  return out;
}

/** Grafana's substitutions: every variable "All", $__interval the step, $__rate_interval at least four scrapes. */
export function substitute(expr: string, o: { stepSeconds: number; rangeSeconds: number; scrapeSeconds: number }): string {
  const rate = Math.max(o.stepSeconds + o.scrapeSeconds, 4 * o.scrapeSeconds);
  return expr
    .replaceAll('$__rate_interval', `${rate}s`)
    .replaceAll('$__interval', `${o.stepSeconds}s`)
    .replaceAll('$__range', `${Math.ceil(o.rangeSeconds)}s`)
    .replace(/\$(job|instance|model|target)\b/g, '.*');
}

/** Grafana's step: the range over its data points, never below the panel's minimum interval or the scrape interval. */
export function stepFor(q: DashboardQuery, rangeSeconds: number, scrapeSeconds: number): number {
  const min = q.interval ? parseDuration(q.interval)! / 1000 : scrapeSeconds;
  return Math.max(min, scrapeSeconds, Math.ceil(rangeSeconds / 1000));
}
