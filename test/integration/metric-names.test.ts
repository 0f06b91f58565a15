// The names contract (src/probing/renamed.ts) against a real exposition: a vLLM simulator probed
// through the exporter's /metrics (its own schedule) and /probe (blackbox-style). No old name comes
// back, every replacing name is there, every name ends as docs/metrics.md says, and no name is
// another's plus a suffix Prometheus or a reader would take for a series of it.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, test } from 'node:test';
import { parseConfig } from '../../src/cmd/config.ts';
import { startExporter, type RunningExporter } from '../../src/exporter/server.ts';
import { silentLogger } from '../../src/lib/log.ts';
import { changed, nameEndings, oldSampleNames, renamed } from '../../src/probing/renamed.ts';
import { startSim, type RunningSim } from '../../src/sim/server.ts';
import { eventually } from '../helpers/stack-child.ts';

const running: Array<RunningSim | RunningExporter> = [];
after(async () => {
  for (const r of running.reverse()) await r.close();
});

interface Exposition {
  /** Family name to its type and help, from the # TYPE and # HELP lines. */
  families: Map<string, { type: string; help: string }>;
  /** Every sample's metric name. */
  samples: Set<string>;
}

function parse(text: string): Exposition {
  const families = new Map<string, { type: string; help: string }>();
  const help = new Map<string, string>();
  const samples = new Set<string>();
  for (const line of text.split('\n')) {
    const h = /^# HELP (\S+) (.*)$/.exec(line);
    if (h) help.set(h[1]!, h[2]!);
    const t = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (t) families.set(t[1]!, { type: t[2]!, help: help.get(t[1]!) ?? '' });
    else if (line !== '' && !line.startsWith('#')) samples.add(/^[^{ ]+/.exec(line)![0]);
  }
  return { families, samples };
}

const sim = await startSim({ host: '127.0.0.1', port: 0, flavor: 'vllm', ttftMs: 10, tokensPerSecond: 300 });
running.push(sim);
const exporter = await startExporter({
  config: parseConfig({ targets: [{ name: 'v', url: `${sim.url}/v1`, server: 'vllm', interval: '1s', timeout: '1s' }] }),
  listen: { host: '127.0.0.1', port: 0 },
  logger: silentLogger,
});
running.push(exporter);

/** Both modes' expositions once every probe of the target succeeded. */
const expositions = async (): Promise<Array<[string, Exposition]>> => {
  const metrics = await eventually('a healthy round of the vllm module', 15_000, async () => {
    const text = await (await fetch(`${exporter.url}/metrics`)).text();
    return /^llm_server_up\{target="v",model="[^"]+"\} 1$/m.test(text) ? text : undefined;
  });
  const probe = await eventually('a healthy /probe', 15_000, async () => {
    const text = await (await fetch(`${exporter.url}/probe?${new URLSearchParams({ target: `${sim.url}/v1`, module: 'vllm' })}`)).text();
    return /^llm_server_up\{model="[^"]+"\} 1$/m.test(text) ? text : undefined;
  });
  return [['/metrics', parse(metrics)], ['/probe', parse(probe)]];
};
const both = await expositions();

test('no name the exporter stopped publishing comes back, through /metrics or /probe', () => {
  for (const [mode, e] of both) {
    for (const r of renamed) {
      for (const old of oldSampleNames(r)) {
        assert.ok(!e.samples.has(old), `${mode}: ${old} (now ${r.now})`);
        if (old !== r.now) assert.ok(!e.families.has(old), `${mode}: the family ${old} is still declared`);
      }
      if (r.oldType === 'histogram' && e.families.has(r.old)) assert.equal(e.families.get(r.old)!.type, 'gauge', `${mode}: ${r.old} is a histogram again`);
    }
  }
});

test('every name that replaces an old one is there: declared in /metrics, a sample in both unless its help says when it is absent', () => {
  const nows = [...new Set([...renamed.map((r) => r.now), ...changed.map((c) => c.name)])];
  const [[, metrics], [, probe]] = both as [[string, Exposition], [string, Exposition]];
  for (const name of nows) assert.ok(metrics.families.has(name), `/metrics does not declare ${name}`);
  for (const r of renamed) {
    const conditional = /Absent when/.test(metrics.families.get(r.now)!.help);
    if (conditional) continue;
    assert.ok(metrics.samples.has(r.now), `/metrics has no sample of ${r.now}`);
    assert.ok(probe.samples.has(r.now), `/probe has no sample of ${r.now}`);
  }
});

test("every name of the exporter's own ends in a base unit, _total or _info, or a documented unitless word", () => {
  const endings = [...nameEndings.units, ...nameEndings.kinds, ...nameEndings.unitless];
  for (const [mode, e] of both) {
    const own = [...e.families.keys()].filter((name) => /^(llm|qwen_sentinel)_/.test(name));
    assert.ok(own.length >= 10, `${mode}: only ${own.length} names`);
    for (const name of own) {
      assert.ok(endings.some((w) => name.endsWith(`_${w}`)), `${mode}: ${name} ends in none of ${endings.join(', ')}`);
      const { type } = e.families.get(name)!;
      assert.equal(name.endsWith('_total'), type === 'counter', `${mode}: ${name} is a ${type}: _total is for counters, and every counter ends in it`);
    }
  }
});

test("no name is another's plus _bucket, _sum, _count or _total", () => {
  for (const [mode, e] of both) {
    const names = new Set([...e.families.keys(), ...e.samples]);
    for (const name of e.families.keys()) {
      for (const suffix of ['_bucket', '_sum', '_count', '_total']) {
        const other = `${name}${suffix}`;
        // A histogram's or summary's own series carry its name plus a suffix: that is what they are.
        if (suffix !== '_total' && /histogram|summary/.test(e.families.get(name)!.type)) continue;
        assert.ok(!names.has(other), `${mode}: ${other} beside ${name}`);
      }
    }
  }
});

test('no shipped rule or dashboard reads an old name (the opt-in legacy rules aside)', () => {
  const files = ['prometheus/rules/qwen-sentinel.rules.yml', 'grafana/dashboards/qwen-sentinel.json', 'deploy/helm/qwen-sentinel/files/qwen-sentinel.rules.yml', 'deploy/helm/qwen-sentinel/files/qwen-sentinel.json'];
  for (const file of files) {
    const text = readFileSync(new URL(`../../${file}`, import.meta.url), 'utf8');
    for (const r of renamed) {
      for (const old of oldSampleNames(r)) assert.doesNotMatch(text, new RegExp(`\\b${old}\\b(?!_)`), `${file} reads ${old}`);
    }
  }
});
