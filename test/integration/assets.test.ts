// Checks the shipped Prometheus, Alertmanager, Grafana and systemd assets and the examples: the
// real promtool/amtool validate them, and the rest is cross-checked against the metric contract and
// against each other. docker-compose.yml and the Dockerfile: test/integration/compose.test.ts.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { dashboardQueries, substitute } from '../helpers/dashboard-queries.ts';
import { findOnPath, requireBinary } from '../helpers/require-binary.ts';
import { run, type RunResult } from '../helpers/run-binary.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const promtool = requireBinary('promtool');
const amtool = requireBinary('amtool');

/** Metric names the exporter and the remediator publish (the fixed contract). */
import { parseConfig } from '../../src/cmd/config.ts';
import { allMetrics } from '../../src/probing/round.ts';
import { renamed } from '../../src/probing/renamed.ts';
const CONTRACT_METRICS = new Set([
  // The exporter's, from the same definitions the code records through.
  ...allMetrics.flatMap((m) => (m.type === 'histogram' ? [`${m.name}_bucket`, `${m.name}_sum`, `${m.name}_count`] : [m.name])),
  'qwen_sentinel_build_info',
  'llm_remediation_actions_total',
  'llm_remediation_alerts_total',
  'llm_remediation_webhook_requests_total',
  'llm_remediation_managed_process_up',
  'llm_remediation_managed_process_exits_total',
  'llm_remediation_last_action_timestamp_seconds',
  'llm_remediation_circuit_open',
  'llm_remediation_last_action_info',
  'llm_remediation_last_time_to_healthy_seconds',
  'qwen_sentinel_config_last_reload_successful',
  'qwen_sentinel_config_last_reload_success_timestamp_seconds',
  'llm_remediation_recent_restarts',
  'llm_remediation_time_to_healthy_seconds_bucket',
  'llm_remediation_time_to_healthy_seconds_sum',
  'llm_remediation_time_to_healthy_seconds_count',
  'llm_remediation_notifications_total',
  'llm_remediation_reconcile_total',
  'llm_remediation_action_info',
  'llm_remediation_action_time_to_healthy_seconds',
]);
/** Series Prometheus itself makes. */
const PROMETHEUS_BUILTINS = new Set(['up', 'ALERTS', 'ALERTS_FOR_STATE']);
/** prom-client's default metrics, which both components expose. */
const NODE_DEFAULT_PREFIXES = ['process_', 'nodejs_'];

/** The decided alerts: `for` windows the end-to-end timing depends on, and routing labels. */
/** One `for` per rule of that name, in file order (LLMServerHung has two: evidence from the server's progress, or the client's alone). */
const EXPECTED_ALERTS: Record<string, { for: string | undefined | string[]; severity: string; remediate: string | undefined }> = {
  LLMServerDown: { for: '15s', severity: 'critical', remediate: 'restart' },
  LLMServerHung: { for: ['15s', '45s'], severity: 'critical', remediate: 'restart' },
  LLMServerUnresponsive: { for: '15s', severity: 'critical', remediate: 'restart' },
  LLMServerGenerationErrors: { for: '2m', severity: 'warning', remediate: undefined },
  LLMServerEngineDead: { for: '1m', severity: 'critical', remediate: 'restart' },
  LLMServerSaturated: { for: '5m', severity: 'warning', remediate: undefined },
  LLMServerSlow: { for: '5m', severity: 'warning', remediate: undefined },
  LLMServerUnauthorized: { for: '1m', severity: 'warning', remediate: undefined },
  LLMServerModelMissing: { for: '2m', severity: 'warning', remediate: undefined },
  LLMServerStartingTooLong: { for: '15m', severity: 'warning', remediate: undefined },
  QwenSentinelExporterDown: { for: '1m', severity: 'warning', remediate: undefined },
  QwenSentinelRemediatorDown: { for: '1m', severity: 'warning', remediate: undefined },
  LLMRemediationFailed: { for: undefined, severity: 'warning', remediate: undefined },
  LLMRemediationCircuitOpen: { for: undefined, severity: 'warning', remediate: undefined },
  LLMRemediationRepeatedRestarts: { for: undefined, severity: 'warning', remediate: undefined },
  LLMRemediationPerformed: { for: undefined, severity: 'info', remediate: undefined },
  QwenSentinelConfigReloadFailed: { for: '5m', severity: 'warning', remediate: undefined },
};

const REMEDIATOR_RECEIVER = 'qwen-sentinel-remediator';

// --- helpers -----------------------------------------------------------------------------------

function assertSuccess(result: RunResult, what: string): void {
  assert.equal(result.code, 0, `${what} exited with ${result.code}:\n${result.output}`);
  assert.match(result.output, /SUCCESS/, `${what} did not report SUCCESS:\n${result.output}`);
  assert.doesNotMatch(result.output, /FAILED/, `${what} reported a failure:\n${result.output}`);
}

const repoPath = (...parts: string[]): string => join(ROOT, ...parts);
const readText = (...parts: string[]): string => readFileSync(repoPath(...parts), 'utf8');
type Json = any;
const readYaml = (...parts: string[]): Json => parseYaml(readText(...parts), { merge: true });

const tempDirs: string[] = [];
function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `qwen-sentinel-${prefix}-`));
  tempDirs.push(dir);
  return dir;
}
after(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

const PROMQL_KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset', 'inf', 'nan', 'atan2']);

/** The metric names a PromQL expression selects (function names, labels and keywords excluded). */
function metricNames(expr: string): string[] {
  let text = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/'(?:[^'\\]|\\.)*'/g, "''")
    .replace(/`[^`]*`/g, '``')
    .replace(/\$\{[^}]*\}|\$\w+/g, ' ')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ');
  text = text.replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const match of text.matchAll(/(?<![\w.:])[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const word = match[0];
    const rest = text.slice(match.index + word.length);
    if (/^\s*\(/.test(rest)) continue; // a function or an aggregation
    if (PROMQL_KEYWORDS.has(word.toLowerCase())) continue;
    names.add(word);
  }
  return [...names].sort();
}

function isKnownMetric(name: string): boolean {
  return CONTRACT_METRICS.has(name) || PROMETHEUS_BUILTINS.has(name) || NODE_DEFAULT_PREFIXES.some((prefix) => name.startsWith(prefix));
}

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

function loadRules(): Rule[] {
  const doc = readYaml('prometheus/rules/qwen-sentinel.rules.yml') as { groups: { name: string; rules: Rule[] }[] };
  assert.equal(doc.groups.length, 1);
  assert.equal(doc.groups[0]!.name, 'qwen-sentinel');
  return doc.groups[0]!.rules;
}

/** Every panel of a dashboard, rows' nested panels included. */
function allPanels(panels: Json[]): Json[] {
  return panels.flatMap((panel: Json) => [panel, ...allPanels(panel.panels ?? [])]);
}

function filesUnder(dir: string, suffixes: string[]): string[] {
  return readdirSync(repoPath(dir), { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && suffixes.some((suffix) => entry.name.endsWith(suffix)))
    .map((entry) => relative(ROOT, join(entry.parentPath, entry.name)))
    .sort();
}

// --- the metric-name extractor itself ----------------------------------------------------------

test('metricNames finds selectors and skips functions, labels, keywords and variables', () => {
  assert.deepEqual(metricNames('sum by (target, probe) (rate(llm_probe_failures_total{target=~"$target"}[$__rate_interval]))'), ['llm_probe_failures_total']);
  assert.deepEqual(metricNames('a_metric == 0 and on (target) increase(b_total{reason="timeout"}[1m]) > 0 unless c offset 5m'), ['a_metric', 'b_total', 'c']);
  assert.deepEqual(metricNames('(x{l="rate(y)"} > 0) * 1000 + 1e3'), ['x']);
  assert.equal(isKnownMetric('llm_probe_sucess'), false);
});

// --- Prometheus rules ----------------------------------------------------------------------------

describe('prometheus rules', () => {
  test('promtool check rules', { skip: !promtool && 'promtool missing' }, async () => {
    const result = await run(promtool!, ['check', 'rules', 'prometheus/rules/qwen-sentinel.rules.yml']);
    assertSuccess(result, 'promtool check rules');
    assert.match(result.output, new RegExp(`SUCCESS: ${loadRules().length} rules found`));
  });

  test('promtool test rules: every alert at a 15 s scrape, and the main ones at 61 s', { skip: !promtool && 'promtool missing' }, async () => {
    const result = await run(promtool!, ['test', 'rules', 'qwen-sentinel.rules.test.yml', 'qwen-sentinel.rules.60s.test.yml'], repoPath('prometheus/rules'));
    assertSuccess(result, 'promtool test rules');
  });

  test('the decided alerts exist with their for windows, severities and remediate labels', () => {
    const rules = loadRules().filter((rule) => rule.alert !== undefined);
    const alerts = new Map(rules.map((rule) => [rule.alert!, rule]));
    assert.deepEqual([...alerts.keys()].sort(), Object.keys(EXPECTED_ALERTS).sort());
    for (const [name, expected] of Object.entries(EXPECTED_ALERTS)) {
      const named = rules.filter((r) => r.alert === name);
      assert.deepEqual(named.map((r) => r.for), Array.isArray(expected.for) ? expected.for : [expected.for], `${name}: for`);
      const rule = named.at(-1)!;
      assert.equal(rule.labels?.severity, expected.severity, `${name}: severity`);
      assert.equal(rule.labels?.remediate, expected.remediate, `${name}: remediate`);
      assert.ok(rule.annotations?.summary && rule.annotations.description, `${name}: summary and description`);
      if (name.startsWith('LLM')) {
        assert.match(rule.annotations.summary, /\{\{ \$labels\.target \}\}/, `${name}: summary names the target`);
        assert.match(rule.annotations.description, /\{\{ \$labels\.target \}\}/, `${name}: description names the target`);
      }
    }
  });

  test('rules only use contract metrics', () => {
    for (const rule of loadRules()) {
      const names = metricNames(rule.expr);
      assert.ok(names.length > 0, `${rule.alert}: no metric found in ${rule.expr}`);
      for (const name of names) assert.ok(CONTRACT_METRICS.has(name) || name === 'up', `${rule.alert}: unknown metric ${name}`);
    }
  });

  test('every alert has a runbook_url that points at its own heading in docs/alerts.md', () => {
    const doc = readText('docs/alerts.md');
    const anchors = new Set([...doc.matchAll(/^#{2,4} (.+)$/gm)].map((m) => m[1]!.toLowerCase().replace(/[^a-z0-9 -]/g, '').replace(/ /g, '-')));
    for (const rule of loadRules()) {
      const url = rule.annotations?.runbook_url ?? '';
      const anchor = /docs\/alerts\.md#([a-z0-9-]+)$/.exec(url)?.[1];
      assert.equal(anchor, rule.alert!.toLowerCase(), `${rule.alert}: runbook_url ${url}`);
      assert.ok(anchors.has(anchor!), `docs/alerts.md has no heading for ${rule.alert}`);
    }
  });

  test('the opt-in legacy names: promtool checks and tests them; each records a renamed gauge under its old name from its new one', { skip: !promtool && 'promtool missing' }, async () => {
    assertSuccess(await run(promtool!, ['check', 'rules', 'prometheus/rules/qwen-sentinel.legacy-names.yml']), 'promtool check rules (legacy names)');
    assertSuccess(await run(promtool!, ['test', 'rules', 'qwen-sentinel.legacy-names.test.yml'], repoPath('prometheus/rules')), 'promtool test rules (legacy names)');
    const doc = readYaml('prometheus/rules/qwen-sentinel.legacy-names.yml') as { groups: { rules: { record: string; expr: string }[] }[] };
    const records = doc.groups.flatMap((g) => g.rules);
    const gauges = renamed.filter((r) => r.oldType === 'gauge');
    assert.deepEqual(records.map((r) => [r.record, r.expr.trim()]), gauges.map((r) => [r.old, r.now]));
    for (const r of records) assert.ok(CONTRACT_METRICS.has(r.expr.trim()), `${r.record} reads ${r.expr}, which the exporter does not publish`);
    // Opt-in: the shipped Prometheus config loads only the alerting rules.
    assert.doesNotMatch(readText('prometheus/prometheus.yml'), /legacy-names/);
  });

  test('every rule of the unit-test file is exercised', () => {
    const doc = readYaml('prometheus/rules/qwen-sentinel.rules.test.yml') as { tests: { alert_rule_test?: { alertname: string; exp_alerts: unknown[] }[] }[] };
    const fired = new Set(doc.tests.flatMap((t) => (t.alert_rule_test ?? []).filter((a) => a.exp_alerts.length > 0).map((a) => a.alertname)));
    const quiet = new Set(doc.tests.flatMap((t) => (t.alert_rule_test ?? []).filter((a) => a.exp_alerts.length === 0).map((a) => a.alertname)));
    for (const name of Object.keys(EXPECTED_ALERTS)) {
      assert.ok(fired.has(name), `no test where ${name} fires`);
      assert.ok(quiet.has(name), `no test where ${name} stays quiet`);
    }
  });
});

// --- Prometheus and Alertmanager configuration ----------------------------------------------------

describe('prometheus configuration', () => {
  test('promtool check config prometheus/prometheus.yml', { skip: !promtool && 'promtool missing' }, async () => {
    const result = await run(promtool!, ['check', 'config', 'prometheus/prometheus.yml']);
    assertSuccess(result, 'promtool check config');
    assert.match(result.output, /SUCCESS: 1 rule files found/);
  });

  test('has the shape `qwen-sentinel stack` rewrites', () => {
    const config = readYaml('prometheus/prometheus.yml');
    assert.equal(config.global.scrape_interval, '15s');
    assert.equal(config.global.evaluation_interval, '15s');
    // Left unset so Prometheus caps it to a shorter scrape interval by itself.
    assert.equal(config.global.scrape_timeout, undefined);
    assert.deepEqual(config.rule_files, ['rules/qwen-sentinel.rules.yml']);
    assert.ok(existsSync(repoPath('prometheus', config.rule_files[0])));
    assert.deepEqual(config.alerting.alertmanagers[0].static_configs[0].targets, ['127.0.0.1:9093']);
    const jobs = new Map<string, Json>(config.scrape_configs.map((job: Json) => [job.job_name, job]));
    for (const [job, target] of [['qwen-sentinel-exporter', '127.0.0.1:19150'], ['qwen-sentinel-remediator', '127.0.0.1:19151']] as const) {
      assert.ok(jobs.has(job), `missing job ${job}`);
      assert.equal(jobs.get(job).static_configs.length, 1);
      assert.deepEqual(jobs.get(job).static_configs[0].targets, [target]);
    }
  });
});

describe('alertmanager configuration', () => {
  for (const file of ['prometheus/alertmanager.yml', 'examples/compose/alertmanager.yml']) {
    test(`amtool check-config ${file}`, { skip: !amtool && 'amtool missing' }, async () => {
      assertSuccess(await run(amtool!, ['check-config', file]), `amtool check-config ${file}`);
    });

    // Who gets which alert: the remediator, and people too.
    test(`${file}: the remediator gets restart alerts and people still get them; info to chat, the rest to people`, { skip: !amtool && 'amtool missing' }, async () => {
      const cases = [
        [`${REMEDIATOR_RECEIVER},people`, ['alertname=LLMServerDown', 'severity=critical', 'remediate=restart', 'target=qwen3']],
        [`${REMEDIATOR_RECEIVER},people`, ['alertname=LLMServerHung', 'severity=critical', 'remediate=restart', 'target=qwen3']],
        [`${REMEDIATOR_RECEIVER},people`, ['alertname=LLMServerEngineDead', 'severity=critical', 'remediate=restart', 'target=qwen3']],
        ['people', ['alertname=LLMServerGenerationErrors', 'severity=warning', 'target=qwen3']],
        ['people', ['alertname=LLMRemediationCircuitOpen', 'severity=warning', 'target=qwen3']],
        ['people', ['alertname=QwenSentinelExporterDown', 'severity=warning']],
        ['people-chat', ['alertname=LLMRemediationPerformed', 'severity=info', 'target=qwen3', 'outcome=success']],
      ] as const;
      for (const [receivers, labels] of cases) {
        const result = await run(amtool!, ['config', 'routes', 'test', `--config.file=${file}`, `--verify.receivers=${receivers}`, ...labels]);
        assert.equal(result.code, 0, `${labels.join(' ')} should go to ${receivers}:\n${result.output}`);
        assert.equal(result.output.split('\n')[0], receivers);
      }
    });

    test(`${file} has the route and receiver shape the remediator and the stack rely on`, () => {
      const config = readYaml(file);
      assert.deepEqual(config.route.group_by, ['alertname', 'target']);
      assert.equal(config.route.receiver, 'people');
      const route = config.route.routes[0];
      assert.equal(route.receiver, REMEDIATOR_RECEIVER, 'first among the routes');
      assert.deepEqual(route.matchers, ['remediate="restart"']);
      assert.equal(route.continue, true, 'people are paged too');
      assert.equal(route.repeat_interval, '1m');
      const receiver = config.receivers.find((r: Json) => r.name === REMEDIATOR_RECEIVER);
      const webhook = receiver.webhook_configs[0];
      assert.match(webhook.url, /^http:\/\/[^/]+:19151\/webhook$/);
      assert.equal(webhook.send_resolved, true);
      assert.equal(webhook.max_alerts, 0);
      assert.equal(webhook.http_config.authorization.type, 'Bearer');
      assert.equal(typeof webhook.http_config.authorization.credentials_file, 'string');
    });
  }

  test('the example receivers for people (e-mail, Slack, WeCom) pass amtool check-config', { skip: !amtool && 'amtool missing' }, async () => {
    assertSuccess(await run(amtool!, ['check-config', 'examples/alertmanager/receivers.yml']), 'amtool check-config examples/alertmanager/receivers.yml');
    const config = readYaml('examples/alertmanager/receivers.yml');
    const kinds = config.receivers.flatMap((r: Json) => Object.keys(r).filter((k) => k.endsWith('_configs')));
    assert.deepEqual(kinds.sort(), ['email_configs', 'slack_configs', 'wechat_configs']);
  });
});

// --- Grafana ---------------------------------------------------------------------------------------

describe('grafana dashboard', () => {
  // Structure, variables and counts are checked in test/unit/dashboard.test.ts, the data behind
  // every query in test/e2e/loop.test.ts; here: the metric contract and promtool.
  const queries = dashboardQueries();
  /** The model server's own metrics the vLLM row reads (job vllm), beside the contract. */
  const VLLM_METRICS = new Set(['vllm:num_requests_running', 'vllm:num_requests_waiting', 'vllm:kv_cache_usage_perc', 'vllm:gpu_cache_usage_perc', 'vllm:generation_tokens_total', 'vllm:time_to_first_token_seconds_bucket', 'vllm:inter_token_latency_seconds_bucket', 'vllm:time_per_output_token_seconds_bucket']);

  test('queries only reference contract metrics, vLLM\'s own and Prometheus builtins', () => {
    for (const { where, expr } of queries) {
      const names = metricNames(expr);
      assert.ok(names.length > 0, `${where}: no metric in ${expr}`);
      for (const name of names) assert.ok(isKnownMetric(name) || VLLM_METRICS.has(name), `${where}: ${name} is not in the metric contract (${expr})`);
    }
  });

  test('queries are valid PromQL (compiled by promtool)', { skip: !promtool && 'promtool missing' }, async () => {
    const dir = tempDir('dashboard');
    const rules = queries.map(({ expr }, i) => ({ record: `dashboard:query_${i}`, expr: substitute(expr, { stepSeconds: 120, rangeSeconds: 3600, scrapeSeconds: 15 }) }));
    writeFileSync(join(dir, 'dashboard.rules.yml'), JSON.stringify({ groups: [{ name: 'dashboard', rules }] }));
    const result = await run(promtool!, ['check', 'rules', join(dir, 'dashboard.rules.yml')]);
    assertSuccess(result, 'promtool check rules (dashboard queries)');
    assert.match(result.output, new RegExp(`SUCCESS: ${rules.length} rules found`));
  });

  test('provisioning files point at the compose Prometheus and the mounted dashboards', () => {
    const datasources = readYaml('grafana/provisioning/datasources/prometheus.yml');
    assert.equal(datasources.apiVersion, 1);
    assert.equal(datasources.datasources[0].type, 'prometheus');
    assert.equal(datasources.datasources[0].url, 'http://prometheus:9090');
    const providers = readYaml('grafana/provisioning/dashboards/qwen-sentinel.yml');
    assert.equal(providers.apiVersion, 1);
    assert.equal(providers.providers[0].type, 'file');
    assert.equal(providers.providers[0].options.path, '/var/lib/grafana/dashboards');
  });
});

// --- examples (docker-compose.yml and the Dockerfile: test/integration/compose.test.ts) --------------

describe('examples', () => {
  const yamlFiles = [...filesUnder('examples', ['.yml', '.yaml']), ...filesUnder('grafana/provisioning', ['.yml', '.yaml']), ...filesUnder('prometheus', ['.yml', '.yaml'])];

  test('there are sample files to check', () => {
    assert.ok(yamlFiles.includes('examples/sentinel.yml'));
    assert.ok(yamlFiles.includes('examples/compose/sentinel.yml'));
  });

  for (const file of yamlFiles) {
    test(`${file} parses as YAML`, () => {
      const doc = parseYaml(readText(file), { prettyErrors: true, uniqueKeys: true });
      assert.equal(typeof doc, 'object');
      assert.notEqual(doc, null);
    });
  }

  for (const file of ['examples/sentinel.yml', 'examples/compose/sentinel.yml']) {
    test(`${file} is a valid sentinel config with a remediating target`, () => {
      const config = parseConfig(readYaml(file), file);
      assert.ok(config.targets.length > 0);
      for (const target of config.targets) assert.match(target.url, /^https?:\/\/[^/]+\/v1$/);
      assert.ok(config.targets.some((t) => t.remediation));
      assert.deepEqual(config.remediator.match, { remediate: 'restart' });
      assert.ok(config.remediator.auth?.bearer_token_file || config.remediator.auth?.bearer_token_env);
    });
  }
});

describe('systemd units', () => {
  for (const [component, port] of [['exporter', 19150], ['remediator', 19151]] as const) {
    const file = `deploy/systemd/qwen-sentinel-${component}.service`;
    test(`${file} runs the ${component} on loopback with restart on failure`, () => {
      const unit = readText(file);
      const storage = component === 'remediator' ? ' --storage\\.path=/var/lib/qwen-sentinel/remediator' : '';
      assert.match(unit, new RegExp(`^ExecStart=/opt/qwen-sentinel/bin/qwen-sentinel ${component} --config\\.file=/etc/qwen-sentinel/sentinel\\.yml --web\\.listen-address=127\\.0\\.0\\.1:${port}${storage}$`, 'm'));
      assert.match(unit, /^Restart=on-failure$/m);
      // Node's JIT needs writable+executable memory.
      assert.doesNotMatch(unit, /^MemoryDenyWriteExecute=(yes|true)/m);
      for (const section of ['[Unit]', '[Service]', '[Install]']) assert.ok(unit.includes(section), `${file}: no ${section}`);
    });
  }

  // systemd-analyze verify runs on the units as installed: test/integration/systemd-units.test.ts.

  test('the remediator owns its model server: control-group kill, no device or home lockdown', () => {
    const unit = readText('deploy/systemd/qwen-sentinel-remediator.service');
    assert.match(unit, /^KillMode=control-group$/m);
    assert.doesNotMatch(unit, /^PrivateDevices=(yes|true)/m, 'the model server needs the GPU devices');
    assert.doesNotMatch(unit, /^ProtectHome=(yes|true)/m);
    assert.match(unit, /^LoadCredential=webhook-token:\/etc\/qwen-sentinel\/webhook-token$/m);
    const sample = readYaml('examples/sentinel.yml');
    assert.equal(sample.remediator.auth.bearer_token_file, '/run/credentials/qwen-sentinel-remediator.service/webhook-token');
  });

  const tmpfiles = findOnPath('systemd-tmpfiles');
  test('the webhook token becomes root:prometheus 0640, readable by Debian\'s Alertmanager and no one else', { skip: !tmpfiles && 'systemd-tmpfiles missing' }, async () => {
    const root = tempDir('tmpfiles');
    mkdirSync(join(root, 'etc/qwen-sentinel'), { recursive: true });
    writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0::/root:/bin/sh\n');
    writeFileSync(join(root, 'etc/group'), 'root:x:0:\nprometheus:x:4242:\n');
    const token = join(root, 'etc/qwen-sentinel/webhook-token');
    writeFileSync(token, 'a-token-long-enough-1234', { mode: 0o600 });
    const result = await run(tmpfiles!, ['--create', `--root=${root}`, repoPath('deploy/systemd/qwen-sentinel.tmpfiles.conf')]);
    assert.equal(result.code, 0, result.output);
    const st = statSync(token);
    assert.equal(st.mode & 0o777, 0o640);
    if (process.getuid?.() === 0) assert.equal(st.gid, 4242, 'group prometheus');
    // The path the units load the credential from and Alertmanager's credentials_file agree.
    assert.match(readText('deploy/systemd/qwen-sentinel.tmpfiles.conf'), /^z \/etc\/qwen-sentinel\/webhook-token 0640 root prometheus -$/m);
    assert.equal(readYaml('prometheus/alertmanager.yml').receivers.find((r: Json) => r.name === REMEDIATOR_RECEIVER).webhook_configs[0].http_config.authorization.credentials_file, '/etc/qwen-sentinel/webhook-token');
  });
});

test('docs/alerts.md documents every alert', () => {
  const doc = readText('docs/alerts.md');
  for (const name of Object.keys(EXPECTED_ALERTS)) assert.ok(doc.includes(name), `docs/alerts.md does not mention ${name}`);
});

test('shipped asset files are non-empty regular files', () => {
  for (const file of ['prometheus/prometheus.yml', 'prometheus/alertmanager.yml', 'prometheus/rules/qwen-sentinel.rules.yml', 'grafana/dashboards/qwen-sentinel.json', 'docker-compose.yml', 'Dockerfile', '.dockerignore']) {
    assert.ok(statSync(resolve(ROOT, file)).size > 0, `${file} is empty`);
  }
});
