import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Panel, RowPanel } from '@grafana/schema';
import { parse } from 'yaml';
import { countInterval, dashboard, dashboardFile, renderDashboard } from '../../grafana/dashboard.ts';
import { parseDuration } from '../../src/lib/duration.ts';
import { dashboardQueries, dashboardQuery, substitute, type DashboardQuery } from '../helpers/dashboard-queries.ts';
import { requireBinary } from '../helpers/require-binary.ts';
import { run } from '../helpers/run-binary.ts';

const panels = dashboard.panels.filter((p): p is Panel => (p as Panel | RowPanel).type !== 'row');
const byTitle = (title: string) => panels.find((p) => p.title === title)!;
const promtool = requireBinary('promtool');

test('grafana/dashboards/qwen-sentinel.json is what grafana/dashboard.ts says (run `npm run docs` after changing it)', async () => {
  assert.equal(readFileSync(dashboardFile, 'utf8'), renderDashboard());
});

test('panels have unique ids and do not overlap on the 24-column grid', () => {
  const ids = dashboard.panels.map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length);
  const taken = new Set<string>();
  for (const p of dashboard.panels) {
    const { x, y, w, h } = p.gridPos!;
    assert.ok(x >= 0 && x + w <= 24, `${p.title}: x ${x} w ${w}`);
    for (let i = x; i < x + w; i++) {
      for (let j = y; j < y + h; j++) {
        assert.ok(!taken.has(`${i},${j}`), `${p.title} overlaps another panel at ${i},${j}`);
        taken.add(`${i},${j}`);
      }
    }
  }
});

test('counts are whole events, never increase() (which extrapolates: 1.105 exits); bars are at least countInterval wide', () => {
  for (const q of dashboardQueries()) {
    assert.doesNotMatch(q.expr, /\bincrease\(/, `${q.where}: increase() extrapolates to the window's edges`);
    assert.doesNotMatch(q.expr, /\[\$__interval\]/, `${q.where}: $__interval only as the offset of a count or a subquery's step`);
  }
  const bars = panels.filter((p) => (p.fieldConfig?.defaults.custom as { drawStyle?: string } | undefined)?.drawStyle === 'bars');
  assert.ok(bars.length >= 6, `only ${bars.length} count panels`);
  for (const p of bars) {
    assert.equal(p.interval, countInterval, `${p.title}: a count panel needs the minimum interval`);
    for (const t of p.targets ?? []) assert.match(String(t.expr), /- last_over_time\([^[]+\[10m\] offset \$__interval\)\) >= 0 or /, `${p.title}: not counted as events`);
  }
  // Two samples in every window even at a 60 s scrape interval.
  assert.ok(parseDuration(countInterval)! >= 2 * 60_000);
});

test('probe timings per probe, and never a quantile interpolated inside a bucket of the probes\' histograms', () => {
  for (const q of dashboardQueries()) {
    if (/histogram_quantile/.test(q.expr)) assert.match(q.expr, /vllm:/, `${q.where}: a quantile of the probes' own histograms draws values no probe had`);
  }
  for (const [title, refs] of [['Probe duration', ['A']], ['Time to first token', ['A', 'B']], ['Decode rate', ['A', 'B']], ['Probe durations in the range', ['A', 'B', 'C', 'D', 'E']]] as const) {
    for (const ref of refs) assert.match(dashboardQuery(title, ref).expr, /by \(target, probe\)/, `${title} ${ref} mixes the probes`);
  }
});

test('variables job, instance, model and target chain from the probe results; every probe panel filters on them', () => {
  const names = dashboard.templating.list.map((v) => v.name);
  assert.deepEqual(names, ['datasource', 'job', 'instance', 'model', 'target', 'exporter_job', 'remediator_job']);
  for (const v of dashboard.templating.list.slice(1, 5)) {
    assert.equal(v.allValue, undefined, `${v.name}: a custom All value (.*) would break the chain`);
    assert.equal(v.includeAll, true);
  }
  for (const q of dashboardQueries()) {
    if (/llm_(server|probe)_/.test(q.expr) && !q.where.startsWith('variable')) {
      for (const v of ['job', 'instance', 'target']) assert.match(q.expr, new RegExp(`${v}=~"\\$${v}"`), `${q.where} ignores $${v}`);
    }
  }
});

test('the components\' jobs are variables defaulting to the shipped job names, as in mixins; no job name is hard-coded', () => {
  const shipped = (parse(readFileSync(new URL('../../prometheus/prometheus.yml', import.meta.url), 'utf8')) as { scrape_configs: Array<{ job_name: string }> }).scrape_configs.map((j) => j.job_name);
  for (const [name, job] of [['exporter_job', 'qwen-sentinel-exporter'], ['remediator_job', 'qwen-sentinel-remediator']] as const) {
    const v = dashboard.templating.list.find((x) => x.name === name)!;
    assert.equal(v.type, 'textbox', `${name}: typed in, never switched to another job behind the reader's back`);
    assert.equal(v.query, job);
    assert.ok(shipped.includes(job), `${job} is not a job of prometheus/prometheus.yml`);
  }
  for (const q of dashboardQueries()) assert.doesNotMatch(q.expr, /job=~?"qwen-sentinel/, `${q.where}: a hard-coded job name`);
  for (const title of ['Components up', 'Config reload', 'Config loaded', 'Build', 'Resident memory', 'Event loop lag (p99)']) {
    for (const t of byTitle(title).targets ?? []) assert.match(String(t.expr), /\$exporter_job|\$remediator_job/, `${title} ignores the job variables`);
  }
});

test('truthful when data is missing: Server up says DOWN; Components up tells a job it cannot find from one that is down; the vLLM row says what it needs', () => {
  assert.equal(byTitle('Server up').fieldConfig?.defaults.noValue, 'DOWN');
  const components = byTitle('Components up');
  assert.equal(components.fieldConfig?.defaults.noValue, undefined, 'no DOWN for a job that merely has another name');
  const texts = (components.fieldConfig?.defaults.mappings ?? []).flatMap((m) => Object.entries((m as { options: Record<string, { text: string }> }).options).map(([k, v]) => `${k}=${v.text}`));
  assert.deepEqual(texts.sort(), ['-1=NO SUCH JOB', '0=DOWN', '1=UP']);
  for (const t of components.targets ?? []) assert.match(String(t.expr), /or on \(\) label_replace\(vector\(-1\)/);
  const vllm = panels.filter((p) => (p.targets ?? []).some((t) => String(t.expr).includes('vllm:')));
  assert.equal(vllm.length, 5);
  for (const p of vllm) assert.match(String(p.fieldConfig?.defaults.noValue), /vllm scrape job.*docs\/adoption\.md/, `${p.title} is an empty panel without the optional job`);
});

test('alert and restart annotations; a vLLM row; the reload metrics and llm_probes_total drawn', () => {
  const annotations = dashboard.annotations.list.map((a) => a.name);
  assert.deepEqual(annotations, ['Annotations & Alerts', 'Alerts', 'Restarts']);
  const exprs = dashboardQueries().map((q) => q.expr).join('\n');
  for (const metric of ['vllm:num_requests_running', 'vllm:num_requests_waiting', 'vllm:kv_cache_usage_perc', 'vllm:time_to_first_token_seconds_bucket', 'vllm:inter_token_latency_seconds_bucket', 'llm_probes_total', 'qwen_sentinel_config_last_reload_successful', 'llm_remediation_webhook_requests_total', 'llm_remediation_last_action_info']) {
    assert.ok(exprs.includes(metric), `no panel reads ${metric}`);
  }
  const exits = panels.find((p) => p.title?.includes('exits'))!;
  assert.doesNotMatch(exits.description!, /planned restarts included/);
});

// The queries whose truth is hard to see in a short live run, on series written to show it:
// Prometheus's own engine (promtool test rules) evaluates each as Grafana would ask for it.
// The live run is test/e2e/loop.test.ts.
interface Scenario {
  name: string;
  query: DashboardQuery;
  /** Seconds between samples, and the evaluation interval (subqueries' default step). */
  every: number;
  series: Record<string, string>;
  at: number;
  range: number;
  step: number;
  expect: Array<{ labels: string; value: number }>;
}

const exporter = 'job="qwen-sentinel-exporter", instance="127.0.0.1:19150", target="qwen3"';
const scenarios: Scenario[] = [
  {
    // Up 4 scrapes, then the exporter down for 4 (its series stale, Prometheus's up 0), then up
    // 2: 6 of 10 steps up, not the 6 of 6 scraped samples. (The range starts between two steps.)
    name: 'Availability counts the time the exporter could not be scraped as not up',
    query: dashboardQuery('Availability'), every: 15, at: 135, range: 140, step: 15,
    series: {
      [`llm_server_up{${exporter}, model="m"}`]: '1 1 1 1 stale _ _ _ 1 1',
      'up{job="qwen-sentinel-exporter", instance="127.0.0.1:19150"}': '1 1 1 1 0 0 0 0 1 1',
    },
    expect: [{ labels: '{target="qwen3"}', value: 0.6 }],
  },
  {
    // A 60 s scrape, a 2 m bar ending between two scrapes: one exit is 1, not the 2 increase()
    // extrapolates from the bar's two samples.
    name: 'A count bar holds whole events, each once, at a 60 s scrape',
    query: dashboardQuery('Unexpected exits of the model server'), every: 60, at: 150, range: 120, step: 120,
    series: { 'llm_remediation_managed_process_exits_total{target="qwen3"}': '0 0 1 1 1 1 0 1 1' },
    expect: [{ labels: '{target="qwen3"}', value: 1 }],
  },
  {
    // The remediator restarted (its counter back at 0), then one exit: the bar holds it, where
    // increase() sees only the two samples after it, both 1, and draws 0.
    name: 'The bar after a reset holds the exit counted since',
    query: dashboardQuery('Unexpected exits of the model server'), every: 60, at: 510, range: 120, step: 120,
    series: { 'llm_remediation_managed_process_exits_total{target="qwen3"}': '0 0 1 1 1 1 0 1 1' },
    expect: [{ labels: '{target="qwen3"}', value: 1 }],
  },
  {
    name: 'Restarts over the range: every action once, a reset of the counter inside the range included',
    query: dashboardQuery('Targets', 'D'), every: 60, at: 480, range: 480, step: 60,
    series: { 'llm_remediation_actions_total{target="qwen3", action="process", outcome="success"}': '0 0 1 1 2 2 0 1 1' },
    expect: [{ labels: '{target="qwen3"}', value: 3 }],
  },
  {
    // An earlier outage (chat timeout), then the one that counts: chat got no tokens for three
    // rounds, the remediator restarted the server, which cut the probe in flight (connect_error)
    // and refused the next ones (connect_refused) until it was up again.
    name: 'The latest outage\'s cause is the failure that began it, not the restart\'s connect_error',
    query: dashboardQuery('Targets', 'E'), every: 15, at: 165, range: 165, step: 15,
    series: {
      [`llm_server_up{${exporter}, model="m"}`]: '1 0 1 1 0 0 0 0 0 1 1 1',
      // A reason series exists only while its probe's last run failed so: stale at the next scrape.
      [`llm_probe_failure_reason{${exporter}, probe="chat", reason="timeout"}`]: '_ 1 stale',
      [`llm_probe_failure_reason{${exporter}, probe="chat", reason="no_tokens"}`]: '_ _ _ _ 1 1 1 stale',
      [`llm_probe_failure_reason{${exporter}, probe="chat", reason="connect_error"}`]: '_ _ _ _ _ _ _ 1 stale',
      [`llm_probe_failure_reason{${exporter}, probe="models", reason="connect_refused"}`]: '_ _ _ _ _ _ _ _ 1 stale',
    },
    expect: [{ labels: '{target="qwen3", probe="chat", reason="no_tokens", cause="chat: no_tokens"}', value: 60_000 }],
  },
  {
    // Runs of 0.3, 0.7, 3 and 20 s: two of four within 1 s, three within 5 s and 10 s, counted
    // in the runs' durations, not interpolated in buckets.
    name: 'The share of probe runs within a bound is the share of the runs scraped',
    query: dashboardQuery('Probe durations in the range', 'C'), every: 15, at: 60, range: 60, step: 15,
    series: { [`llm_probe_duration_seconds{${exporter}, probe="chat"}`]: '_ 0.3 0.7 3 20' },
    expect: [{ labels: '{target="qwen3", probe="chat"}', value: 0.5 }],
  },
  {
    name: 'Within 5 s: three of the same four runs',
    query: dashboardQuery('Probe durations in the range', 'D'), every: 15, at: 60, range: 60, step: 15,
    series: { [`llm_probe_duration_seconds{${exporter}, probe="chat"}`]: '_ 0.3 0.7 3 20' },
    expect: [{ labels: '{target="qwen3", probe="chat"}', value: 0.75 }],
  },
  {
    name: 'Runs in the range: every scraped run once',
    query: dashboardQuery('Probe durations in the range', 'A'), every: 15, at: 60, range: 60, step: 15,
    series: { [`llm_probe_duration_seconds{${exporter}, probe="chat"}`]: '_ 0.3 0.7 3 20' },
    expect: [{ labels: '{target="qwen3", probe="chat"}', value: 4 }],
  },
  {
    // TTFT of 0.2, 0.4, 0.6 and 0.8 s in the last four scrapes ($__rate_interval 60 s here).
    name: 'The mean TTFT is the mean of the runs in the window, from the gauge',
    query: dashboardQuery('Time to first token', 'B'), every: 15, at: 60, range: 60, step: 15,
    series: { [`llm_probe_time_to_first_token_seconds{${exporter}, probe="chat"}`]: '_ 0.2 0.4 0.6 0.8' },
    expect: [{ labels: '{target="qwen3", probe="chat"}', value: 0.5 }],
  },
  {
    // The failure counter of a reason appears at its first failure, at 1: that one is counted too.
    name: 'Failures in the range count the first failure of a reason, whose series begins at 1',
    query: dashboardQuery('Failures in the range'), every: 15, at: 90, range: 90, step: 15,
    series: { [`llm_probe_failures_total{${exporter}, probe="chat", reason="timeout"}`]: '_ _ 1 1 2 2 2' },
    expect: [{ labels: '{target="qwen3", probe="chat", reason="timeout"}', value: 2 }],
  },
];

test('the queries tell the truth on series written to show it (promtool test rules)', { skip: !promtool && 'promtool missing' }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dashboard-scenarios-'));
  try {
    for (const s of scenarios) {
      const expr = substitute(s.query.expr, { stepSeconds: s.step, rangeSeconds: s.range, scrapeSeconds: s.every });
      const file = join(dir, 'scenario.test.yml');
      writeFileSync(file, JSON.stringify({
        rule_files: [],
        evaluation_interval: `${s.every}s`,
        tests: [{
          interval: `${s.every}s`,
          input_series: Object.entries(s.series).map(([series, values]) => ({ series, values })),
          promql_expr_test: [{ expr, eval_time: `${s.at}s`, exp_samples: s.expect }],
        }],
      }));
      const result = await run(promtool!, ['test', 'rules', file], dir);
      assert.equal(result.code, 0, `${s.name} (${s.query.where}):\n${result.output}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
