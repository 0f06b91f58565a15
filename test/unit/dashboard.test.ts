import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import type { Panel, RowPanel } from '@grafana/schema';
import { countInterval, dashboard, dashboardFile, renderDashboard } from '../../grafana/dashboard.ts';
import { parseDuration } from '../../src/lib/duration.ts';
import { dashboardQueries } from '../helpers/dashboard-queries.ts';

const panels = dashboard.panels.filter((p): p is Panel => (p as Panel | RowPanel).type !== 'row');

test('grafana/dashboards/qwen-sentinel.json is what grafana/dashboard.ts says (run `npm run docs` after changing it)', async () => {
  assert.equal(await readFile(dashboardFile, 'utf8'), renderDashboard());
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

test('counts are increase() over exactly the bar width, never over overlapping windows', () => {
  for (const q of dashboardQueries()) {
    assert.doesNotMatch(q.expr, /increase\([^)]*\[\$__rate_interval\]\)/, `${q.where}: overlapping windows count one event several times`);
    if (/\[\$__interval\]/.test(q.expr)) {
      assert.match(q.expr, /increase\([^)]*\[\$__interval\]\)/, `${q.where}: $__interval only as the window of a count`);
      assert.equal(q.interval, countInterval, `${q.where}: a count panel needs the minimum interval`);
    }
  }
  // Two samples in every window even at a 60 s scrape interval.
  assert.ok(parseDuration(countInterval)! >= 2 * 60_000);
});

test('variables job, instance, model and target chain from the probe results; every probe panel filters on them', () => {
  const names = dashboard.templating.list.map((v) => v.name);
  assert.deepEqual(names, ['datasource', 'job', 'instance', 'model', 'target']);
  for (const v of dashboard.templating.list.slice(1)) {
    assert.equal(v.allValue, undefined, `${v.name}: a custom All value (.*) would break the chain`);
    assert.equal(v.includeAll, true);
  }
  for (const q of dashboardQueries()) {
    if (/llm_(server|probe)_/.test(q.expr) && !q.where.startsWith('variable')) {
      for (const v of ['job', 'instance', 'target']) assert.match(q.expr, new RegExp(`${v}=~"\\$${v}"`), `${q.where} ignores $${v}`);
    }
  }
});

test('truthful when data is missing: Server up and Components up say DOWN, not "No data"', () => {
  for (const title of ['Server up', 'Components up']) {
    const p = panels.find((x) => x.title === title)!;
    assert.equal(p.fieldConfig?.defaults.noValue, 'DOWN', title);
  }
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
