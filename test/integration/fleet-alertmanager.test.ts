// `qwen-sentinel fleet alertmanager`, run as the CLI: the alertmanager.yml it prints from an
// inventory passes the real amtool, routes each host's restart alerts to that host's remediator
// (and on to people), and a bad inventory exits 2 naming the field and writes nothing.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { fleetAlertmanagerFlags, hostReceiver, inventorySchema } from '../../src/cmd/fleet.ts';
import { configTable } from '../../src/lib/schema-docs.ts';
import { requireBinary } from '../helpers/require-binary.ts';
import { run } from '../helpers/run-binary.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const amtool = requireBinary('amtool');
const dir = await mkdtemp(join(tmpdir(), 'qs-fleet-am-'));
after(() => rm(dir, { recursive: true, force: true }));

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [join(root, 'src/cli.ts'), ...args], { timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

const inventory = {
  hosts: [
    { name: 'gpu-07', url: 'http://10.0.0.7:19151/webhook', token_file: '/etc/qwen-sentinel/webhook-token-gpu-07' },
    { name: 'gpu-08', url: 'http://10.0.0.8:19151/webhook', token_file: '/etc/qwen-sentinel/webhook-token-gpu-08' },
  ],
};

async function generate(inv: unknown, extra: string[] = []) {
  const file = join(dir, `inventory-${Math.random().toString(36).slice(2)}.yml`);
  await writeFile(file, typeof inv === 'string' ? inv : JSON.stringify(inv));
  return cli(['fleet', 'alertmanager', `--inventory=${file}`, ...extra]);
}

describe('fleet alertmanager', () => {
  let out = '';

  test('prints a config amtool accepts', { skip: !amtool && 'amtool missing' }, async () => {
    const result = await generate(inventory);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, '', 'the shipped base draws no warning');
    out = join(dir, 'alertmanager.yml');
    await writeFile(out, result.stdout);
    const check = await run(amtool!, ['check-config', out]);
    assert.equal(check.code, 0, check.output);
    assert.match(check.output, /- 4 receivers/);
  });

  test("each host's restart alert goes to its own remediator and on to people; others as shipped", { skip: !amtool && 'amtool missing' }, async () => {
    assert.ok(out, 'the config was generated');
    const cases = [
      ['qwen-sentinel-remediator-gpu-07,people', ['host=gpu-07', 'remediate=restart', 'alertname=LLMServerHung']],
      ['qwen-sentinel-remediator-gpu-08,people', ['host=gpu-08', 'remediate=restart', 'alertname=LLMServerHung']],
      ['qwen-sentinel-remediator-gpu-08,people', ['host=gpu-08', 'remediate=restart', 'alertname=LLMServerDown', 'target=qwen3', 'severity=critical']],
      // A host the inventory does not list, or no host at all: people only, never a remediator.
      ['people', ['host=gpu-09', 'remediate=restart', 'alertname=LLMServerHung']],
      ['people', ['remediate=restart', 'alertname=LLMServerHung']],
      ['people-chat', ['host=gpu-07', 'severity=info', 'alertname=LLMRemediationPerformed']],
      ['people', ['host=gpu-07', 'severity=warning', 'alertname=LLMServerSaturated']],
    ] as const;
    for (const [receivers, labels] of cases) {
      const result = await run(amtool!, ['config', 'routes', 'test', `--config.file=${out}`, `--verify.receivers=${receivers}`, ...labels]);
      assert.equal(result.code, 0, `${labels.join(' ')} should go to ${receivers}:\n${result.output}`);
      assert.equal(result.output.split('\n')[0], receivers);
    }
  });

  test("the per-host routes and receivers: the shipped route's settings, each host's URL and token", async () => {
    const result = await generate(inventory);
    const config = parse(result.stdout);
    const shipped = parse(readFileSync(join(root, 'prometheus/alertmanager.yml'), 'utf8'));
    const template = shipped.route.routes[0];
    assert.deepEqual(config.route.routes.map((r: { receiver: string }) => r.receiver), ['qwen-sentinel-remediator-gpu-07', 'qwen-sentinel-remediator-gpu-08', 'people-chat', 'people']);
    for (const [i, host] of inventory.hosts.entries()) {
      const route = config.route.routes[i];
      assert.deepEqual(route, { ...template, receiver: hostReceiver(host.name), matchers: [`host="${host.name}"`, 'remediate="restart"'] });
      assert.equal(route.continue, true);
      const receiver = config.receivers.find((r: { name: string }) => r.name === hostReceiver(host.name));
      const webhook = receiver.webhook_configs[0];
      assert.equal(webhook.url, host.url);
      assert.equal(webhook.http_config.authorization.credentials_file, host.token_file);
      assert.equal(webhook.http_config.authorization.type, 'Bearer');
      assert.equal(webhook.send_resolved, true);
      assert.equal(webhook.max_alerts, 0);
    }
    assert.equal(config.receivers.some((r: { name: string }) => r.name === 'qwen-sentinel-remediator'), false, 'the template receiver is replaced');
    assert.deepEqual(config.inhibit_rules, shipped.inhibit_rules);
    assert.match(result.stdout, /^# Generated by `qwen-sentinel fleet alertmanager`/);
  });

  test('--base: an operator\'s own alertmanager.yml; a base without the template route is refused', async () => {
    const base = join(dir, 'base.yml');
    await writeFile(base, [
      'route:',
      '  receiver: oncall',
      '  routes:',
      '    - receiver: qwen-sentinel-remediator',
      "      matchers: ['remediate=\"restart\"']",
      '      continue: true',
      '    - receiver: oncall',
      "      matchers: ['remediate=\"restart\"']",
      'receivers:',
      '  - name: oncall',
      '  - name: qwen-sentinel-remediator',
      '    webhook_configs:',
      '      - url: http://127.0.0.1:19151/webhook',
      'inhibit_rules:',
      "  - source_matchers: ['alertname=\"LLMServerDown\"']",
      "    target_matchers: ['alertname=\"LLMServerUnresponsive\"']",
      '    equal: [target]',
      '',
    ].join('\n'));
    const result = await generate(inventory, [`--base=${base}`]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /warning: inhibit_rules\[0\]\.equal has target but not host/);
    const config = parse(result.stdout);
    assert.deepEqual(config.route.routes.map((r: { receiver: string }) => r.receiver), ['qwen-sentinel-remediator-gpu-07', 'qwen-sentinel-remediator-gpu-08', 'oncall']);
    assert.equal(config.receivers[1].webhook_configs[0].http_config.authorization.credentials_file, '/etc/qwen-sentinel/webhook-token-gpu-07');

    await writeFile(base, 'route:\n  receiver: oncall\n  routes: []\nreceivers:\n  - name: oncall\n');
    const refused = await generate(inventory, [`--base=${base}`]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /--base: no route with receiver "qwen-sentinel-remediator" in route\.routes/);
  });

  // Each bad inventory: exit 2, the field named, and --output left as it was.
  const bad: Array<[string, unknown, RegExp]> = [
    ['a host without url', { hosts: [{ name: 'gpu-07', token_file: '/t' }] }, /hosts\[0\]\.url: required/],
    ['a duplicate host', { hosts: [inventory.hosts[0], { ...inventory.hosts[1], name: 'gpu-07' }] }, /hosts\[1\]\.name: duplicate host "gpu-07" \(also hosts\[0\]\.name\)/],
    ['no hosts', { hosts: [] }, /hosts: list at least one host/],
    ['a name that is no label value fit for a receiver name', { hosts: [{ ...inventory.hosts[0], name: 'gpu 07' }] }, /hosts\[0\]\.name: letters, digits/],
    ['a URL that is not http(s)', { hosts: [{ ...inventory.hosts[0], url: 'ftp://10.0.0.7/webhook' }] }, /hosts\[0\]\.url: must be an http\(s\) URL/],
    ['a missing token file', { hosts: [{ name: 'gpu-07', url: 'http://10.0.0.7:19151/webhook' }] }, /hosts\[0\]\.token_file: required/],
    ['an unknown field', { hosts: [{ ...inventory.hosts[0], token: 'secret' }] }, /hosts\[0\]\.token: unknown field/],
    ['YAML that does not parse', 'hosts: [', /invalid YAML/],
  ];
  for (const [what, inv, message] of bad) {
    test(`${what}: exit 2, the field named, nothing written`, async () => {
      const output = join(dir, 'kept.yml');
      await writeFile(output, 'kept\n');
      const result = await generate(inv, [`--output=${output}`]);
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, /^qwen-sentinel fleet: --inventory: /);
      assert.match(result.stderr, message);
      assert.equal(result.stdout, '');
      assert.equal(await readFile(output, 'utf8'), 'kept\n');
    });
  }

  test('--output writes the file; usage errors exit 2', async () => {
    const output = join(dir, 'written.yml');
    const result = await generate(inventory, [`--output=${output}`]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, '');
    assert.equal(parse(await readFile(output, 'utf8')).receivers.length, 4);
    assert.ok(!existsSync(`${output}.tmp-${process.pid}`));
    for (const args of [['fleet'], ['fleet', 'nope'], ['fleet', 'alertmanager'], ['fleet', 'alertmanager', '--inventory=x', '--nope']]) {
      const r = await cli(args);
      assert.equal(r.code, 2, args.join(' '));
    }
  });

  test('--help documents every flag; the CLI lists the command', async () => {
    const help = await cli(['fleet', '--help']);
    assert.equal(help.code, 0);
    for (const flag of Object.keys(fleetAlertmanagerFlags)) assert.match(help.stdout, new RegExp(`--${flag}=`), flag);
    assert.match((await cli(['--help'])).stdout, /^ {2}fleet {7}/m);
  });

  test('docs/fleets.md holds the inventory reference as the schema gives it', () => {
    const doc = readFileSync(join(root, 'docs/fleets.md'), 'utf8');
    // The schema's own table (every key with its type, default and .describe() text), row by row.
    for (const row of configTable(inventorySchema)) assert.ok(doc.includes(row), `docs/fleets.md lacks: ${row}`);
  });
});
