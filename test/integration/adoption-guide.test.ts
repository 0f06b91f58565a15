// docs/adoption.md's "Add it to your stack", done to the configs the Debian packages install: its
// Prometheus and Alertmanager snippets are spliced into /etc/prometheus/{prometheus,alertmanager}.yml
// as the guide says, then promtool and amtool judge the result and tell who gets which alert.
// The snippets must also say what the shipped configs say, so the guide cannot drift from them.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { requireBinary } from '../helpers/require-binary.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const promtool = requireBinary('promtool');
const amtool = requireBinary('amtool');
type Yaml = any; // eslint-disable-line @typescript-eslint/no-explicit-any

/** The package's own configs: present wherever `apt-get install prometheus prometheus-alertmanager` ran (CI). */
const debian = { prometheus: '/etc/prometheus/prometheus.yml', alertmanager: '/etc/prometheus/alertmanager.yml' };
const missing = Object.values(debian).filter((f) => !existsSync(f));
if (missing.length > 0 && process.env.CI === 'true') throw new Error(`${missing.join(', ')} missing: install the Debian packages prometheus and prometheus-alertmanager`);
const skip = (missing.length > 0 && `${missing.join(', ')} missing (not a Debian install)`) || (!promtool && 'promtool missing') || (!amtool && 'amtool missing');

/** The YAML block that follows `<!-- guide: NAME -->` in docs/adoption.md. */
function snippet(name: string): Yaml {
  const guide = readFileSync(join(ROOT, 'docs/adoption.md'), 'utf8');
  const m = new RegExp(`<!-- guide: ${name} -->\\n\`\`\`yaml\\n([\\s\\S]*?)\\n\`\`\``).exec(guide);
  assert.ok(m, `docs/adoption.md has no \`<!-- guide: ${name} -->\` YAML block`);
  return parse(m[1]!);
}

const shipped = (file: string): Yaml => parse(readFileSync(join(ROOT, file), 'utf8'));
const dir = mkdtempSync(join(tmpdir(), 'qs-guide-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function run(file: string, args: string[]): Promise<{ code: number; output: string }> {
  return new Promise((done) => {
    execFile(file, args, { timeout: 60_000 }, (error, stdout, stderr) => done({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, output: `${stdout}${stderr}` }));
  });
}

describe('Prometheus: the guide applied to Debian\'s prometheus.yml', { skip }, () => {
  test('the jobs and the rules added as the guide says make a valid config; promtool loads the rules', async () => {
    const config = parse(readFileSync(debian.prometheus, 'utf8')) as Yaml;
    const guide = snippet('prometheus');
    const probe = snippet('prometheus-probe');
    config.rule_files = [...(config.rule_files ?? []), ...guide.rule_files];
    config.scrape_configs = [...config.scrape_configs, ...guide.scrape_configs, ...probe.scrape_configs];
    // "Copy the rules beside your config".
    copyFileSync(join(ROOT, 'prometheus/rules/qwen-sentinel.rules.yml'), join(dir, 'qwen-sentinel.rules.yml'));
    writeFileSync(join(dir, 'prometheus.yml'), stringify(config));
    const result = await run(promtool!, ['check', 'config', join(dir, 'prometheus.yml')]);
    assert.equal(result.code, 0, result.output);
    const rules = (shipped('prometheus/rules/qwen-sentinel.rules.yml').groups as Yaml[]).flatMap((g) => g.rules).length;
    assert.match(result.output, new RegExp(`SUCCESS: ${rules} rules found`));
  });

  test('the snippets are the shipped jobs: same addresses, same /probe relabelling', () => {
    const jobs = new Map<string, Yaml>((shipped('prometheus/prometheus.yml').scrape_configs as Yaml[]).map((j) => [j.job_name, j]));
    for (const job of [...snippet('prometheus').scrape_configs, ...snippet('prometheus-probe').scrape_configs] as Yaml[]) {
      const mine = jobs.get(job.job_name);
      assert.ok(mine, `${job.job_name} is not a job of prometheus/prometheus.yml`);
      if (job.job_name !== 'qwen-sentinel-probe') assert.deepEqual(job.static_configs, mine.static_configs, job.job_name);
    }
    const probe = snippet('prometheus-probe').scrape_configs[0];
    const shippedProbe = jobs.get('qwen-sentinel-probe');
    assert.equal(probe.metrics_path, shippedProbe.metrics_path);
    assert.equal(probe.scrape_timeout, shippedProbe.scrape_timeout);
    // The shipped job adds one rule first: a default module for file_sd entries that name none.
    assert.deepEqual(probe.relabel_configs, (shippedProbe.relabel_configs as Yaml[]).filter((r) => r.target_label !== '__param_module'));
  });
});

describe('Alertmanager: the guide applied to Debian\'s alertmanager.yml', { skip }, () => {
  const file = join(dir, 'alertmanager.yml');

  test('the route first with continue, the receiver and the inhibition make a valid config', async () => {
    const config = parse(readFileSync(debian.alertmanager, 'utf8')) as Yaml;
    const guide = snippet('alertmanager');
    // First the remediator's, then the existing routes, last the restart alerts to the root receiver.
    const [remediator, last] = guide.route.routes;
    config.route.routes = [remediator, ...(config.route.routes ?? []), { ...last, receiver: config.route.receiver }];
    config.receivers = [...config.receivers, ...guide.receivers];
    config.inhibit_rules = [...(config.inhibit_rules ?? []), ...guide.inhibit_rules];
    // The token file of step 2, here a temporary one.
    writeFileSync(join(dir, 'webhook-token'), 'a-token-long-enough-1234', { mode: 0o640 });
    for (const r of config.receivers as Yaml[]) for (const w of r.webhook_configs ?? []) w.http_config.authorization.credentials_file = join(dir, 'webhook-token');
    writeFileSync(file, stringify(config));
    const result = await run(amtool!, ['check-config', file]);
    assert.equal(result.code, 0, result.output);
  });

  test('amtool: restart alerts reach the remediator and still the people the existing routes page', async () => {
    const cases = [
      // Debian's default root receiver, as before the change.
      ['qwen-sentinel-remediator,team-X-mails', ['alertname=LLMServerDown', 'severity=critical', 'remediate=restart', 'target=qwen3']],
      // An existing team route still catches its alerts after the remediator's `continue`.
      ['qwen-sentinel-remediator,team-DB-pager', ['alertname=LLMServerHung', 'severity=critical', 'remediate=restart', 'target=qwen3', 'service=database']],
      // Not a restart alert: the remediator never hears of it.
      ['team-X-mails', ['alertname=LLMServerSaturated', 'severity=warning', 'target=qwen3']],
    ] as const;
    for (const [receivers, labels] of cases) {
      const result = await run(amtool!, ['config', 'routes', 'test', `--config.file=${file}`, `--verify.receivers=${receivers}`, ...labels]);
      assert.equal(result.code, 0, `${labels.join(' ')} should go to ${receivers}:\n${result.output}`);
    }
  });

  test('without the last route a restart alert no route takes would reach the remediator only', async () => {
    const config = parse(readFileSync(file, 'utf8')) as Yaml;
    config.route.routes.pop();
    const without = join(dir, 'alertmanager-without-last.yml');
    writeFileSync(without, stringify(config));
    const result = await run(amtool!, ['config', 'routes', 'test', `--config.file=${without}`, 'alertname=LLMServerDown', 'severity=critical', 'remediate=restart', 'target=qwen3']);
    assert.equal(result.output.split('\n')[0], 'qwen-sentinel-remediator');
  });

  test('the snippet is the shipped remediator route, receiver and inhibition', () => {
    const mine = shipped('prometheus/alertmanager.yml');
    const guide = snippet('alertmanager');
    const { group_by: groupBy, ...route } = guide.route.routes[0];
    assert.deepEqual(route, mine.route.routes[0]);
    const last = mine.route.routes.at(-1);
    assert.deepEqual(guide.route.routes.at(-1), { receiver: mine.route.receiver, matchers: last.matchers }, 'the catch-all for restart alerts');
    assert.deepEqual(groupBy, mine.route.group_by, 'the shipped root groups so; an existing root may not');
    assert.deepEqual(guide.receivers, mine.receivers.filter((r: Yaml) => r.name === 'qwen-sentinel-remediator'));
    assert.deepEqual(guide.inhibit_rules, mine.inhibit_rules);
  });
});
