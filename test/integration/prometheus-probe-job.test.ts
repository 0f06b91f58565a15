// The shipped blackbox-style scrape job, on the real Prometheus: targets from a static list and
// from file service discovery, relabelled into /probe requests, reach the exporter, and the
// shipped rules fire on what /probe answers.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { parse, stringify } from 'yaml';
import { parseConfig } from '../../src/cmd/config.ts';
import { startExporter } from '../../src/exporter/server.ts';
import { silentLogger } from '../../src/lib/log.ts';
import { startSim } from '../../src/sim/server.ts';
import { probeJob, shippedDir, startExternal } from '../../src/cmd/stack/prometheus.ts';
import { freePort } from '../../src/lib/system.ts';
import { requireBinary } from '../helpers/require-binary.ts';
import { eventually } from '../helpers/stack-child.ts';

const prometheusBin = requireBinary('prometheus');
const cleanups: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

interface Sample { metric: Record<string, string>; value: [number, string] }

test('Prometheus scrapes /probe for static and file_sd targets, labels them by URL, and the rules fire', { skip: !prometheusBin && 'prometheus missing', timeout: 90_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'qs-probe-job-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const sim = await startSim({ host: '127.0.0.1', port: 0, ttftMs: 10, tokensPerSecond: 500 });
  cleanups.push(() => sim.close());
  const exporter = await startExporter({ config: parseConfig({}), listen: { host: '127.0.0.1', port: 0 }, logger: silentLogger });
  cleanups.push(() => exporter.close());
  const healthy = `${sim.url}/v1`;
  const gone = `http://127.0.0.1:${await freePort('127.0.0.1')}/v1`;

  // The shipped config, with its own job as it is: only the addresses and intervals change.
  const shipped = parse(await readFile(join(shippedDir, 'prometheus.yml'), 'utf8')) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  const job = shipped.scrape_configs.find((j: { job_name: string }) => j.job_name === probeJob);
  job.relabel_configs.find((r: { target_label: string }) => r.target_label === '__address__').replacement = exporter.url.replace('http://', '');
  job.scrape_timeout = '1s';
  job.relabel_configs.find((r: { target_label: string }) => r.target_label === '__param_module').replacement = 'vllm';
  job.static_configs = [{ targets: [healthy] }];
  job.file_sd_configs = [{ files: [join(dir, 'targets', '*.yml')] }];
  await mkdir(join(dir, 'targets'));
  await writeFile(join(dir, 'targets', 'llm.yml'), stringify([{ targets: [gone], labels: { __param_module: 'openai' } }]));
  await writeFile(join(dir, 'rules.yml'), await readFile(join(shippedDir, 'rules/qwen-sentinel.rules.yml'), 'utf8'));
  const config = { global: { scrape_interval: '1s', evaluation_interval: '1s' }, rule_files: [join(dir, 'rules.yml')], scrape_configs: [job] };
  await writeFile(join(dir, 'prometheus.yml'), stringify(config));

  const port = await freePort('127.0.0.1');
  const prometheus = startExternal('prometheus', prometheusBin!, [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`], dir, silentLogger);
  cleanups.push(() => prometheus.stop());
  const api = `http://127.0.0.1:${port}`;
  await prometheus.ready(api);
  const query = async (q: string) => ((await (await fetch(`${api}/api/v1/query?query=${encodeURIComponent(q)}`)).json()) as { data: { result: Sample[] } }).data.result;

  const up = await eventually('llm_server_up for both targets', 30_000, async () => {
    const result = await query('llm_server_up');
    return result.length === 2 ? result : undefined;
  });
  const byTarget = Object.fromEntries(up.map((s) => [s.metric.target, s]));
  assert.equal(byTarget[healthy]?.value[1], '1');
  assert.deepEqual({ ...byTarget[healthy]!.metric }, { __name__: 'llm_server_up', job: probeJob, instance: healthy, target: healthy, module: 'vllm', model: 'Qwen/Qwen3-0.6B' });
  assert.equal(byTarget[gone]?.value[1], '0');
  assert.equal(byTarget[gone]!.metric.module, 'openai', 'the file_sd entry chose its own module');
  assert.equal((await query(`llm_probe_success{target="${healthy}",probe="health"}`))[0]?.value[1], '1');

  // The refused target goes down through the shipped rule, in /probe mode as in /metrics mode.
  const alert = await eventually('LLMServerDown for the refused target', 40_000, async () => {
    const alerts = ((await (await fetch(`${api}/api/v1/alerts`)).json()) as { data: { alerts: Array<{ labels: Record<string, string>; state: string }> } }).data.alerts;
    return alerts.find((a) => a.labels.alertname === 'LLMServerDown' && a.state === 'firing');
  });
  assert.equal(alert.labels.target, gone);
  assert.equal(alert.labels.remediate, 'restart');
});
