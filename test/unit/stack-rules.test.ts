import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse } from 'yaml';
import { probeJob, scaleRules, scaledStallMs, shippedDir, writeAlertmanagerConfig, writePrometheusConfig } from '../../src/cmd/stack/prometheus.ts';
import { parseConfig } from '../../src/cmd/config.ts';
import { probes } from '../../src/probing/probes/index.ts';

const shipped = await readFile(join(shippedDir, 'rules/qwen-sentinel.rules.yml'), 'utf8');
// The last rule of a name wins (LLMServerHung has two: 15s with the server's evidence, 45s with the client's).
const forOf = (text: string) => Object.fromEntries((parse(text).groups[0].rules as Array<{ alert?: string; for?: string }>).filter((r) => r.for).map((r) => [r.alert, r.for]));

test('the stack scales the rules\' `for` windows to its interval, never below 10 s; production intervals keep the shipped rules', () => {
  const fast = forOf(scaleRules(shipped, '2s'));
  assert.equal(fast.LLMServerHung, '10s', '45 s at 15 s would be 6 s at 2 s: held at 10 s');
  assert.equal(fast.LLMServerUnresponsive, '10s', '15 s at 15 s would be 2 s at 2 s: held at 10 s');
  assert.equal(fast.LLMServerStartingTooLong, '120s');
  assert.ok(Object.values(fast).every((d) => Number.parseInt(String(d), 10) >= 10));
  // The expressions are untouched.
  assert.deepEqual(parse(scaleRules(shipped, '2s')).groups[0].rules.map((r: { expr: string }) => r.expr), parse(shipped).groups[0].rules.map((r: { expr: string }) => r.expr));
  for (const interval of ['15s', '1m']) assert.equal(scaleRules(shipped, interval), shipped);
});

test('the stack\'s Alertmanager waits in proportion too: the remediator\'s group_wait and group_interval', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'qs-stack-am-'));
  try {
    const wiring = { exporter: '127.0.0.1:1', remediator: '127.0.0.1:2', alertmanager: '127.0.0.1:3', tokenFile: '/t' };
    const route = async (interval: string) => (parse(await readFile(await writeAlertmanagerConfig(dir, { ...wiring, interval }), 'utf8')).route.routes as Array<{ receiver: string; group_wait: string; group_interval: string }>).find((r) => r.receiver === 'qwen-sentinel-remediator')!;
    assert.deepEqual([(await route('2s')).group_wait, (await route('2s')).group_interval], ['1s', '5s']);
    assert.deepEqual([(await route('15s')).group_wait, (await route('15s')).group_interval], ['1s', '30s']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('the stack\'s chat probe checks for a stall in proportion to its interval (5 s at 15 s), as its config gives every target', () => {
  assert.equal(scaledStallMs(15_000), probes.chat.options.parse(undefined).stall_timeout, 'production: the shipped default');
  assert.equal(scaledStallMs(15_000), 5000);
  assert.equal(scaledStallMs(60_000), 5000, 'never longer than shipped');
  assert.equal(scaledStallMs(2000), 667);
  // The module named after the server type is the one a target of that type gets.
  const config = parseConfig({ modules: { vllm: { chat: { stall_timeout: `${scaledStallMs(2000)}ms` } } }, targets: [{ name: 'qwen3', url: 'http://127.0.0.1:8000/v1', server: 'vllm' }] });
  const target = config.targets[0]!;
  assert.equal(config.modules[target.module]!.options.chat.stall_timeout, 667);
});

test('the stack keeps the shipped /probe scrape timeout (14 s) unless its interval is shorter', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'qs-stack-prom-'));
  try {
    const wiring = { exporter: '127.0.0.1:1', remediator: '127.0.0.1:2', alertmanager: '127.0.0.1:3', tokenFile: '/t' };
    const timeout = async (interval: string) => (parse(await readFile(await writePrometheusConfig(dir, { ...wiring, interval }), 'utf8')).scrape_configs as Array<{ job_name: string; scrape_timeout?: string }>).find((j) => j.job_name === probeJob)!.scrape_timeout;
    const shippedTimeout = (parse(await readFile(join(shippedDir, 'prometheus.yml'), 'utf8')).scrape_configs as Array<{ job_name: string; scrape_timeout?: string }>).find((j) => j.job_name === probeJob)!.scrape_timeout;
    assert.equal(shippedTimeout, '14s');
    assert.equal(await timeout('15s'), '14s');
    assert.equal(await timeout('1m'), '14s');
    assert.equal(await timeout('2s'), '2s', 'a timeout longer than the interval: Prometheus would refuse the config');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
