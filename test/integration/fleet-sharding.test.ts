// The hashmod sharding of examples/fleet/prometheus-shard.yml on the real Prometheus: two shards,
// each with its own exporter, read one file_sd list of ten targets. Each target is active in
// exactly one shard (the one Prometheus' hashmod, md5 of the URL, assigns it), the union is all of
// them, and the `host` label of the targets file reaches the series and the alerts of its shard.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { parseConfig } from '../../src/cmd/config.ts';
import { startExternal } from '../../src/cmd/stack/prometheus.ts';
import { startExporter } from '../../src/exporter/server.ts';
import { silentLogger } from '../../src/lib/log.ts';
import { freePort } from '../../src/lib/system.ts';
import { requireBinary } from '../helpers/require-binary.ts';
import { eventually } from '../helpers/stack-child.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const prometheusBin = requireBinary('prometheus');
const cleanups: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

type Yaml = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Prometheus' hashmod: the md5 of the value, its last 8 bytes as a big-endian integer, mod N. */
function hashmod(value: string, modulus: number): number {
  return Number(createHash('md5').update(value).digest().readBigUInt64BE(8) % BigInt(modulus));
}

test('two hashmod shards over one targets file: each target in exactly one shard, all of them in one, host labels kept', { skip: !prometheusBin && 'prometheus missing', timeout: 120_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'qs-fleet-shards-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const example = parse(await readFile(join(root, 'examples/fleet/prometheus-shard.yml'), 'utf8')) as Yaml;
  const probe = example.scrape_configs.find((j: Yaml) => j.job_name === 'qwen-sentinel-probe');
  const hashRule = probe.relabel_configs.find((r: Yaml) => r.action === 'hashmod');
  const keepRule = probe.relabel_configs.find((r: Yaml) => r.action === 'keep');
  assert.deepEqual(hashRule.source_labels, ['__param_target'], 'the shard is chosen by the target URL');
  assert.equal(keepRule.source_labels[0], hashRule.target_label);
  const shards = hashRule.modulus as number;
  assert.equal(shards, 2, 'the example is written for two shards');

  // Ten model servers on five hosts; nothing listens on them, so every probe is refused fast.
  const port = await freePort('127.0.0.1');
  const targets = Array.from({ length: 10 }, (_, i) => ({ url: `http://127.0.0.${i + 2}:${port}/v1`, host: `gpu-${String(Math.floor(i / 2)).padStart(2, '0')}` }));
  await mkdir(join(dir, 'targets'));
  await writeFile(join(dir, 'targets', 'llm.yml'), stringify(targets.map((t) => ({ targets: [t.url], labels: { __param_module: 'vllm', host: t.host } }))));
  const expected = Array.from({ length: shards }, (_, k) => targets.filter((t) => hashmod(t.url, shards) === k).map((t) => t.url).sort());
  assert.ok(expected.every((urls) => urls.length > 0), 'both shards have targets (else pick other addresses)');

  const apis: string[] = [];
  for (let k = 0; k < shards; k++) {
    const exporter = await startExporter({ config: parseConfig({}), listen: { host: '127.0.0.1', port: 0 }, logger: silentLogger });
    cleanups.push(() => exporter.close());
    const address = exporter.url.replace('http://', '');
    // The example as an operator would copy it for shard k: only the per-shard values, the
    // paths and the intervals change (no Alertmanager here; the rules are evaluated all the same).
    const config = structuredClone(example);
    config.global = { ...config.global, scrape_interval: '1s', evaluation_interval: '1s', external_labels: { ...config.global.external_labels, shard: String(k) } };
    config.rule_files = [join(root, 'prometheus/rules/qwen-sentinel.rules.yml')];
    delete config.alerting;
    const job = config.scrape_configs.find((j: Yaml) => j.job_name === 'qwen-sentinel-probe');
    job.scrape_timeout = '1s';
    job.file_sd_configs = [{ files: [join(dir, 'targets', '*.yml')] }];
    job.relabel_configs.find((r: Yaml) => r.action === 'keep').regex = String(k);
    job.relabel_configs.find((r: Yaml) => r.target_label === '__address__').replacement = address;
    config.scrape_configs.find((j: Yaml) => j.job_name === 'qwen-sentinel-exporter').static_configs = [{ targets: [address] }];
    await writeFile(join(dir, `shard-${k}.yml`), stringify(config));

    const webPort = await freePort('127.0.0.1');
    const prometheus = startExternal(`prometheus-${k}`, prometheusBin!, [`--config.file=${join(dir, `shard-${k}.yml`)}`, `--storage.tsdb.path=${join(dir, `data-${k}`)}`, `--web.listen-address=127.0.0.1:${webPort}`], dir, silentLogger);
    cleanups.push(() => prometheus.stop());
    apis.push(`http://127.0.0.1:${webPort}`);
    await prometheus.ready(apis[k]!);
  }
  const get = async (api: string, path: string) => ((await (await fetch(`${api}${path}`)).json()) as { data: Yaml }).data;

  // GET /api/v1/targets: the probe job's active targets of each shard, once file_sd has read the file.
  const active = await Promise.all(apis.map((api) => eventually('the targets file to be read', 30_000, async () => {
    const data = await get(api, '/api/v1/targets');
    const mine = (data.activeTargets as Yaml[]).filter((t) => t.labels.job === 'qwen-sentinel-probe');
    const dropped = (data.droppedTargets as Yaml[]).filter((t) => t.discoveredLabels.job === 'qwen-sentinel-probe');
    return mine.length + dropped.length === targets.length ? mine : undefined;
  })));
  const seen = active.map((list) => list.map((t) => t.labels.target as string).sort());
  assert.deepEqual(seen, expected, "each shard holds exactly the targets Prometheus' hashmod gives it");
  assert.deepEqual(seen.flat().sort(), targets.map((t) => t.url).sort(), 'together they hold every target, none twice');
  for (const list of active) {
    for (const t of list) assert.equal(t.labels.host, targets.find((x) => x.url === t.labels.target)!.host, 'the host label of the targets file is kept');
  }

  // Each shard probes its own targets (through its own exporter), and decides on them: every one
  // of them refuses connections, so LLMServerDown fires for each, with its host.
  for (const [k, api] of apis.entries()) {
    const alerts = await eventually(`LLMServerDown for shard ${k}'s targets`, 60_000, async () => {
      const list = ((await get(api, '/api/v1/alerts')).alerts as Yaml[]).filter((a) => a.labels.alertname === 'LLMServerDown' && a.state === 'firing');
      return list.length === expected[k]!.length ? list : undefined;
    });
    assert.deepEqual(alerts.map((a) => a.labels.target).sort(), expected[k]);
    for (const a of alerts) assert.equal(a.labels.host, targets.find((t) => t.url === a.labels.target)!.host);
    const series = (await get(api, `/api/v1/query?query=${encodeURIComponent('llm_server_up')}`)).result as Yaml[];
    assert.deepEqual(series.map((s) => s.metric.target).sort(), expected[k], `shard ${k} has series of its own targets only`);
  }
});

// docs/adoption.md's sharded /probe job: one Prometheus, two exporters, each URL sent to the
// exporter Prometheus' hashmod of it picks. Every target is scraped through exactly that exporter,
// and each exporter probes the servers of its share only.
test("the adoption guide's sharded /probe job: one Prometheus sends each URL to the exporter hashmod picks", { skip: !prometheusBin && 'prometheus missing', timeout: 120_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'qs-probe-shards-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const guide = await readFile(join(root, 'docs/adoption.md'), 'utf8');
  const block = /<!-- guide: prometheus-probe-sharded -->\n```yaml\n([\s\S]*?)\n```/.exec(guide);
  assert.ok(block, 'docs/adoption.md has the prometheus-probe-sharded block');
  const job = (parse(block[1]!) as Yaml).scrape_configs[0];
  const hashRule = job.relabel_configs.find((r: Yaml) => r.action === 'hashmod');
  assert.deepEqual(hashRule.source_labels, ['__param_target'], 'the exporter is chosen by the target URL');
  const routes = job.relabel_configs.filter((r: Yaml) => r.target_label === '__address__');
  assert.equal(routes.length, hashRule.modulus, 'one __address__ rule per exporter');

  const port = await freePort('127.0.0.1');
  const urls = Array.from({ length: 10 }, (_, i) => `http://127.0.0.${i + 2}:${port}/v1`);
  const exporters: string[] = [];
  for (let k = 0; k < hashRule.modulus; k++) {
    const exporter = await startExporter({ config: parseConfig({}), listen: { host: '127.0.0.1', port: 0 }, logger: silentLogger });
    cleanups.push(() => exporter.close());
    exporters.push(exporter.url.replace('http://', ''));
    assert.equal(routes[k].regex, String(k));
    routes[k].replacement = exporters[k];
  }
  job.scrape_timeout = '1s';
  job.static_configs = [{ targets: urls, labels: { __param_module: 'openai' } }];
  await writeFile(join(dir, 'prometheus.yml'), stringify({ global: { scrape_interval: '1s' }, scrape_configs: [job] }));
  const webPort = await freePort('127.0.0.1');
  const prometheus = startExternal('prometheus-probe-shards', prometheusBin!, [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${webPort}`], dir, silentLogger);
  cleanups.push(() => prometheus.stop());
  const api = `http://127.0.0.1:${webPort}`;
  await prometheus.ready(api);
  const get = async (path: string) => ((await (await fetch(`${api}${path}`)).json()) as { data: Yaml }).data;

  const active = await eventually('every target active', 30_000, async () => {
    const list = (await get('/api/v1/targets')).activeTargets as Yaml[];
    return list.length === urls.length ? list : undefined;
  });
  for (const t of active) {
    const url = t.labels.instance as string;
    assert.equal(new URL(t.scrapeUrl).host, exporters[hashmod(url, exporters.length)], `${url} is scraped through the exporter hashmod picks`);
  }
  assert.ok(exporters.every((_, k) => urls.some((u) => hashmod(u, exporters.length) === k)), 'each exporter has a share (else pick other addresses)');
  // Each probe ran: llm_server_up for every URL (refused: 0), one series each.
  const up = await eventually('llm_server_up for every URL', 30_000, async () => {
    const result = (await get(`/api/v1/query?query=${encodeURIComponent('llm_server_up')}`)).result as Yaml[];
    return result.length === urls.length ? result : undefined;
  });
  assert.deepEqual(up.map((s) => s.metric.instance).sort(), [...urls].sort());
});
