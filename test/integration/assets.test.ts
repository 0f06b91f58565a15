// Checks the shipped Prometheus, Alertmanager, Grafana, compose, Docker and systemd assets:
// the real promtool/amtool validate them, and the rest is cross-checked against the metric
// contract and against each other (paths, service names, ports, tokens).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { findOnPath, requireBinary } from '../helpers/require-binary.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const promtool = requireBinary('promtool');
const amtool = requireBinary('amtool');

/** Metric names the exporter and the remediator publish (the fixed contract). */
import { parseConfig } from '../../src/config/load.ts';
import { allMetrics } from '../../src/exporter/round.ts';
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
  'llm_remediation_recent_restarts',
  'llm_remediation_time_to_healthy_seconds_bucket',
  'llm_remediation_reconcile_total',
]);
/** Series Prometheus itself makes. */
const PROMETHEUS_BUILTINS = new Set(['up', 'ALERTS', 'ALERTS_FOR_STATE']);
/** prom-client's default metrics, which both components expose. */
const NODE_DEFAULT_PREFIXES = ['process_', 'nodejs_'];

/** The decided alerts: `for` windows the end-to-end timing depends on, and routing labels. */
const EXPECTED_ALERTS: Record<string, { for: string | undefined; severity: string; remediate: string | undefined }> = {
  LLMServerDown: { for: '15s', severity: 'critical', remediate: 'restart' },
  LLMServerHung: { for: '45s', severity: 'critical', remediate: 'restart' },
  LLMServerUnresponsive: { for: '3m', severity: 'critical', remediate: 'restart' },
  LLMServerGenerationErrors: { for: '2m', severity: 'warning', remediate: undefined },
  LLMServerEngineDead: { for: '1m', severity: 'critical', remediate: 'restart' },
  LLMServerSaturated: { for: '5m', severity: 'warning', remediate: undefined },
  LLMServerUnauthorized: { for: '1m', severity: 'warning', remediate: undefined },
  LLMServerModelMissing: { for: '2m', severity: 'warning', remediate: undefined },
  LLMServerStartingTooLong: { for: '15m', severity: 'warning', remediate: undefined },
  QwenSentinelExporterDown: { for: '1m', severity: 'warning', remediate: undefined },
  QwenSentinelRemediatorDown: { for: '1m', severity: 'warning', remediate: undefined },
  LLMRemediationFailed: { for: undefined, severity: 'warning', remediate: undefined },
  LLMRemediationCircuitOpen: { for: undefined, severity: 'critical', remediate: undefined },
  LLMRemediationRepeatedRestarts: { for: undefined, severity: 'warning', remediate: undefined },
  LLMRemediationPerformed: { for: undefined, severity: 'info', remediate: undefined },
  QwenSentinelConfigReloadFailed: { for: '5m', severity: 'warning', remediate: undefined },
};

const REMEDIATOR_RECEIVER = 'qwen-sentinel-remediator';

// --- helpers -----------------------------------------------------------------------------------

interface RunResult {
  code: number;
  output: string;
}

/** Runs a binary without a shell; never rejects, so callers assert on the exit code and output. */
function run(file: string, args: string[], cwd = ROOT): Promise<RunResult> {
  return new Promise((done) => {
    execFile(file, args, { cwd, timeout: 60_000, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
      done({ code, output: `${stdout}${stderr}` });
    });
  });
}

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

/** Copies the host side of a compose service's bind mounts and secrets into `root`, at their container paths. */
function mirrorMounts(compose: Json, serviceName: string, root: string): void {
  const service = compose.services[serviceName];
  for (const mount of bindMounts(service)) {
    const target = join(root, mount.target);
    mkdirSync(dirname(target), { recursive: true });
    cpSync(repoPath(mount.source), target, { recursive: true });
  }
  for (const secret of service.secrets ?? []) {
    const name = typeof secret === 'string' ? secret : secret.source;
    const target = typeof secret === 'string' || secret.target === undefined ? `/run/secrets/${name}` : secret.target;
    mkdirSync(dirname(join(root, target)), { recursive: true });
    cpSync(repoPath(compose.secrets[name].file), join(root, target));
  }
}

interface BindMount {
  source: string;
  target: string;
}

/** A service's bind mounts (short and long syntax); named volumes are left out. */
function bindMounts(service: Json): BindMount[] {
  const mounts: BindMount[] = [];
  for (const volume of service.volumes ?? []) {
    if (typeof volume === 'string') {
      const [source, target] = volume.split(':');
      assert.ok(source !== undefined && target !== undefined, `bad volume "${volume}"`);
      if (/^[./~]/.test(source)) mounts.push({ source, target });
    } else if (volume.type === 'bind') {
      mounts.push({ source: volume.source, target: volume.target });
    }
  }
  return mounts;
}

/** The value of `--name=value` in a service's command list. */
function flagValue(command: string[], name: string): string | undefined {
  const prefix = `--${name}=`;
  return command.find((arg) => arg.startsWith(prefix))?.slice(prefix.length);
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
    const alerts = new Map(loadRules().filter((rule) => rule.alert !== undefined).map((rule) => [rule.alert!, rule]));
    assert.deepEqual([...alerts.keys()].sort(), Object.keys(EXPECTED_ALERTS).sort());
    for (const [name, expected] of Object.entries(EXPECTED_ALERTS)) {
      const rule = alerts.get(name)!;
      assert.equal(rule.for, expected.for, `${name}: for`);
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
        ['people', ['alertname=LLMRemediationCircuitOpen', 'severity=critical', 'target=qwen3']],
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
  const dashboard: Json = JSON.parse(readText('grafana/dashboards/qwen-sentinel.json'));
  const panels = allPanels(dashboard.panels);
  const queries = [
    ...panels.flatMap((panel: Json) => (panel.targets ?? []).map((t: Json) => ({ where: `panel "${panel.title}"`, expr: t.expr as string }))),
    ...dashboard.annotations.list.filter((a: Json) => a.expr !== undefined).map((a: Json) => ({ where: `annotation "${a.name}"`, expr: a.expr as string })),
  ];

  test('identity, datasource variable and target variable', () => {
    assert.equal(dashboard.uid, 'qwen-sentinel');
    assert.ok(dashboard.schemaVersion >= 36 && dashboard.schemaVersion <= 41, `schemaVersion ${dashboard.schemaVersion}`);
    const variables = new Map<string, Json>(dashboard.templating.list.map((v: Json) => [v.name, v]));
    assert.equal(variables.get('datasource')?.type, 'datasource');
    assert.equal(variables.get('datasource')?.query, 'prometheus');
    const target = variables.get('target');
    assert.equal(target?.type, 'query');
    assert.equal(target.definition, 'label_values(llm_server_up, target)');
    assert.equal(target.query.query, 'label_values(llm_server_up, target)');
    assert.equal(target.datasource.uid, '${datasource}');
  });

  test('every panel has a unique id, queries the ${datasource} variable and fits the grid', () => {
    const ids = panels.map((panel: Json) => panel.id);
    assert.equal(new Set(ids).size, ids.length, 'duplicate panel ids');
    for (const panel of panels) {
      const { x, y, w, h } = panel.gridPos;
      assert.ok(x >= 0 && w > 0 && h > 0 && y >= 0 && x + w <= 24, `panel "${panel.title}" gridPos`);
      if (panel.type === 'row') continue;
      assert.ok(panel.targets?.length > 0, `panel "${panel.title}" has no query`);
      assert.equal(panel.datasource?.uid, '${datasource}', `panel "${panel.title}" datasource`);
      for (const target of panel.targets) {
        assert.equal(target.datasource?.uid, '${datasource}', `panel "${panel.title}" query datasource`);
        assert.equal(typeof target.expr, 'string');
      }
    }
  });

  test('covers the contract: up, probes, TTFT, tokens/s, failure reasons, remediation, alerts', () => {
    const used = new Set(queries.flatMap((q: { expr: string }) => metricNames(q.expr)));
    for (const metric of ['llm_server_up', 'llm_probe_success', 'llm_probe_ttft_seconds', 'llm_probe_tokens_per_second', 'llm_probe_duration_seconds', 'llm_probe_failures_total', 'llm_remediation_actions_total', 'llm_remediation_managed_process_up', 'llm_remediation_managed_process_exits_total', 'ALERTS']) {
      assert.ok(used.has(metric), `no panel shows ${metric}`);
    }
  });

  test('queries only reference contract metrics and Prometheus builtins', () => {
    for (const { where, expr } of queries) {
      const names = metricNames(expr);
      assert.ok(names.length > 0, `${where}: no metric in ${expr}`);
      for (const name of names) assert.ok(isKnownMetric(name), `${where}: ${name} is not in the metric contract (${expr})`);
    }
  });

  test('queries are valid PromQL (compiled by promtool)', { skip: !promtool && 'promtool missing' }, async () => {
    const dir = tempDir('dashboard');
    const rules = queries.map(({ expr }: { expr: string }, i: number) => ({
      record: `dashboard:query_${i}`,
      expr: expr.replaceAll('$__rate_interval', '1m').replaceAll('$__interval', '1m').replaceAll('$target', '.*'),
    }));
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

// --- docker-compose, Dockerfile, examples ------------------------------------------------------------

describe('docker compose', () => {
  const compose: Json = readYaml('docker-compose.yml');
  const services: Record<string, Json> = compose.services;

  test('has the expected services', () => {
    assert.deepEqual(Object.keys(services).sort(), ['alertmanager', 'exporter', 'grafana', 'prometheus', 'remediator']);
    assert.match(services.alertmanager.image, /^prom\/alertmanager:v0\.25\./);
    assert.match(services.prometheus.image, /^prom\/prometheus:v2\./);
  });

  test('every bind-mounted host path, secret file and build context exists in the repo', () => {
    for (const [name, service] of Object.entries(services)) {
      for (const mount of bindMounts(service)) assert.ok(existsSync(repoPath(mount.source)), `${name}: ${mount.source} does not exist`);
      if (service.build !== undefined) {
        const context = typeof service.build === 'string' ? service.build : (service.build.context ?? '.');
        const dockerfile = typeof service.build === 'string' ? 'Dockerfile' : (service.build.dockerfile ?? 'Dockerfile');
        assert.ok(existsSync(repoPath(context, dockerfile)), `${name}: no ${dockerfile} in ${context}`);
      }
      for (const secret of service.secrets ?? []) {
        const secretName = typeof secret === 'string' ? secret : secret.source;
        assert.ok(compose.secrets?.[secretName]?.file, `${name}: secret ${secretName} is not declared with a file`);
      }
    }
    for (const [name, secret] of Object.entries<Json>(compose.secrets ?? {})) assert.ok(existsSync(repoPath(secret.file)), `secret ${name}: ${secret.file} does not exist`);
  });

  test('qwen-sentinel services listen on 0.0.0.0 and read the mounted config', () => {
    for (const [name, port] of [['exporter', 19150], ['remediator', 19151]] as const) {
      const command: string[] = services[name].command;
      assert.equal(command[0], name);
      assert.equal(flagValue(command, 'web.listen-address'), `0.0.0.0:${port}`);
      const configFile = flagValue(command, 'config.file');
      assert.ok(bindMounts(services[name]).some((m) => m.target === configFile), `${name}: ${configFile} is not mounted`);
    }
  });

  test('compose Prometheus config passes promtool with the mounts the service gets', { skip: !promtool && 'promtool missing' }, async () => {
    const root = tempDir('compose-prometheus');
    mirrorMounts(compose, 'prometheus', root);
    const configFile = flagValue(services.prometheus.command, 'config.file');
    assert.ok(configFile, 'prometheus: no --config.file');
    const result = await run(promtool!, ['check', 'config', join(root, configFile)]);
    assertSuccess(result, 'promtool check config (compose)');
    assert.match(result.output, /SUCCESS: 1 rule files found/);
  });

  test('compose Prometheus scrapes and alerts the compose services by name', () => {
    const config = readYaml('examples/compose/prometheus.yml');
    const jobs = new Map<string, Json>(config.scrape_configs.map((job: Json) => [job.job_name, job]));
    assert.deepEqual(jobs.get('qwen-sentinel-exporter').static_configs[0].targets, ['exporter:19150']);
    assert.deepEqual(jobs.get('qwen-sentinel-remediator').static_configs[0].targets, ['remediator:19151']);
    assert.deepEqual(config.alerting.alertmanagers[0].static_configs[0].targets, ['alertmanager:9093']);
    assert.deepEqual(config.rule_files, readYaml('prometheus/prometheus.yml').rule_files);
  });

  test('compose Alertmanager reaches the remediator with a token file it has mounted', () => {
    const root = tempDir('compose-alertmanager');
    mirrorMounts(compose, 'alertmanager', root);
    const configFile = flagValue(services.alertmanager.command, 'config.file');
    assert.ok(configFile && existsSync(join(root, configFile)), `alertmanager: ${configFile} is not mounted`);
    const config = parseYaml(readFileSync(join(root, configFile), 'utf8'));
    const webhook = config.receivers.find((r: Json) => r.name === REMEDIATOR_RECEIVER).webhook_configs[0];
    assert.equal(webhook.url, 'http://remediator:19151/webhook');
    const tokenFile: string = webhook.http_config.authorization.credentials_file;
    assert.ok(existsSync(join(root, tokenFile)), `alertmanager: ${tokenFile} is not mounted`);
    assert.ok(readFileSync(join(root, tokenFile), 'utf8').trim().length >= 16, 'token too short');
  });

  test('the remediator reads the same token and the exporter reaches its simulator', () => {
    const root = tempDir('compose-remediator');
    mirrorMounts(compose, 'remediator', root);
    const config = parseYaml(readFileSync(join(root, flagValue(services.remediator.command, 'config.file')!), 'utf8'));
    const tokenFile: string = config.remediator.auth.bearer_token_file;
    assert.ok(existsSync(join(root, tokenFile)), `remediator: ${tokenFile} is not mounted`);
    assert.equal(readFileSync(join(root, tokenFile), 'utf8'), readText('examples/compose/webhook-token'));
    for (const target of config.targets) {
      const url = new URL(target.url);
      assert.equal(url.hostname, 'remediator', `${target.name}: the exporter container reaches the simulator through the remediator service`);
      const listen = (target.remediation.command as string[]).find((arg) => arg.startsWith('--web.listen-address='));
      assert.equal(listen, `--web.listen-address=0.0.0.0:${url.port}`);
      assert.ok((services.remediator.ports as string[]).some((p) => p.endsWith(`:${url.port}`)), `remediator does not publish ${url.port}`);
    }
  });

  test('grafana gets its provisioning and the dashboard where the provider looks', () => {
    const root = tempDir('compose-grafana');
    mirrorMounts(compose, 'grafana', root);
    const providers = parseYaml(readFileSync(join(root, '/etc/grafana/provisioning/dashboards/qwen-sentinel.yml'), 'utf8'));
    assert.ok(existsSync(join(root, providers.providers[0].options.path, 'qwen-sentinel.json')));
    assert.ok(existsSync(join(root, '/etc/grafana/provisioning/datasources/prometheus.yml')));
    assert.ok(new URL(readYaml('grafana/provisioning/datasources/prometheus.yml').datasources[0].url).hostname in services);
  });
});

describe('Dockerfile', () => {
  const dockerfile = readText('Dockerfile');
  const ignored = readText('.dockerignore').split('\n').map((line) => line.trim()).filter((line) => line !== '' && !line.startsWith('#'));

  test('builds on node:24-bookworm-slim with npm ci and runs as a non-root user', () => {
    assert.match(dockerfile, /^ARG NODE_IMAGE=node:24-bookworm-slim$/m);
    assert.match(dockerfile, /^RUN npm ci\b/m);
    assert.match(dockerfile, /^ENTRYPOINT \["node", "[^"]*bin\/qwen-sentinel\.js"\]$/m);
    const users = [...dockerfile.matchAll(/^USER (\S+)$/gm)].map((m) => m[1]);
    assert.ok(users.length > 0 && users.at(-1) !== 'root' && users.at(-1) !== '0', 'the image must end as a non-root user');
  });

  test('every COPY source exists and is not excluded by .dockerignore', () => {
    for (const match of dockerfile.matchAll(/^COPY (?!--from)(.+)$/gm)) {
      const parts = match[1]!.trim().split(/\s+/);
      for (const source of parts.slice(0, -1)) {
        assert.ok(existsSync(repoPath(source)), `COPY ${source}: does not exist`);
        assert.ok(!ignored.includes(source), `COPY ${source}: excluded by .dockerignore`);
      }
    }
    for (const secret of ['examples/compose/webhook-token', 'node_modules', '.git']) assert.ok(ignored.includes(secret), `.dockerignore should exclude ${secret}`);
  });
});

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
      assert.match(unit, new RegExp(`^ExecStart=/usr/bin/env qwen-sentinel ${component} --config\\.file=/etc/qwen-sentinel/sentinel\\.yml --web\\.listen-address=127\\.0\\.0\\.1:${port}${storage}$`, 'm'));
      assert.match(unit, /^Restart=on-failure$/m);
      // Node's JIT needs writable+executable memory.
      assert.doesNotMatch(unit, /^MemoryDenyWriteExecute=(yes|true)/m);
      for (const section of ['[Unit]', '[Service]', '[Install]']) assert.ok(unit.includes(section), `${file}: no ${section}`);
    });
  }

  // Optional: systemd-analyze is not part of the required toolset, so it is looked up without requireBinary.
  const systemdAnalyze = findOnPath('systemd-analyze');
  test('systemd-analyze verify reports nothing about the units', { skip: !systemdAnalyze && 'systemd-analyze missing' }, async () => {
    const units = ['qwen-sentinel-exporter.service', 'qwen-sentinel-remediator.service'].map((unit) => repoPath('deploy/systemd', unit));
    const result = await run(systemdAnalyze!, ['verify', ...units]);
    const complaints = result.output.split('\n').filter((line) => line.includes('qwen-sentinel-'));
    assert.deepEqual(complaints, [], result.output);
  });

  test('the remediator owns its model server: control-group kill, no device or home lockdown', () => {
    const unit = readText('deploy/systemd/qwen-sentinel-remediator.service');
    assert.match(unit, /^KillMode=control-group$/m);
    assert.doesNotMatch(unit, /^PrivateDevices=(yes|true)/m, 'the model server needs the GPU devices');
    assert.doesNotMatch(unit, /^ProtectHome=(yes|true)/m);
    assert.match(unit, /^LoadCredential=webhook-token:\/etc\/qwen-sentinel\/webhook-token$/m);
    const sample = readYaml('examples/sentinel.yml');
    assert.equal(sample.remediator.auth.bearer_token_file, '/run/credentials/qwen-sentinel-remediator.service/webhook-token');
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
