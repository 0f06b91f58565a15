// The series budget: every shipped module against every simulator flavor adds at most 40 series
// per target, on /metrics (the exporter's own schedule) and on /probe (blackbox-style). A module
// against its own server's flavor, all probes succeeding, adds exactly the counts below: a change
// that adds series changes them, so growth is a decision, never an accident.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { parseConfig } from '../../src/cmd/config.ts';
import { startExporter, type RunningExporter } from '../../src/exporter/server.ts';
import { silentLogger } from '../../src/lib/log.ts';
import { servers, type ServerName } from '../../src/servers/index.ts';
import { flavorNames, type FlavorName } from '../../src/sim/flavors/index.ts';
import { startSim, type RunningSim } from '../../src/sim/server.ts';
import { eventually } from '../helpers/stack-child.ts';

const budget = 40;

/**
 * Series of one healthy target per shipped module, against the flavor of its own server type
 * (openai: the vLLM flavor). /metrics: llm_target_info, llm_server_up, per probe success,
 * duration and llm_probes_total, plus the progress gauges the server has and the chat gauges it
 * sets (vLLM: requests running and waiting, generation tokens, sleeping; TTFT, decode rate,
 * completion tokens). /probe: the same without the counters. No failure series while healthy.
 */
const expected: Record<ServerName, { flavor: FlavorName; metrics: number; probe: number }> = {
  vllm: { flavor: 'vllm', metrics: 21, probe: 17 },
  sglang: { flavor: 'sglang', metrics: 20, probe: 16 },
  llamacpp: { flavor: 'llamacpp', metrics: 22, probe: 18 },
  ollama: { flavor: 'ollama', metrics: 15, probe: 12 },
  openai: { flavor: 'vllm', metrics: 11, probe: 9 },
};

/**
 * The decode rate is published only when the client could time the tokens (not on a machine so
 * busy that the chunks were read together): counted apart, at most one.
 */
const untimed = /^llm_probe_tokens_per_second[{ ]/;

const running: Array<RunningSim | RunningExporter> = [];
after(async () => {
  for (const r of running.reverse()) await r.close();
});

const sims = {} as Record<FlavorName, RunningSim>;
for (const flavor of flavorNames) {
  sims[flavor] = await startSim({ host: '127.0.0.1', port: 0, flavor, ttftMs: 5, tokensPerSecond: 400 });
  running.push(sims[flavor]);
}
const modules = Object.keys(servers) as ServerName[];
/** The model each flavor serves by default: what a target of it names. */
const modelOf = (flavor: FlavorName) => servers[flavor].exampleModel;
const pairs = modules.flatMap((module) => flavorNames.map((flavor) => ({ module, flavor, name: `${module}-on-${flavor}` })));
const healthyPair = (p: { module: ServerName; flavor: FlavorName }) => expected[p.module].flavor === p.flavor;

const exporter = await startExporter({
  config: parseConfig({
    targets: pairs.map((p) => ({ name: p.name, url: `${sims[p.flavor].url}/v1`, module: p.module, model: modelOf(p.flavor), interval: '3s', timeout: '3s' })),
  }),
  listen: { host: '127.0.0.1', port: 0 },
  logger: silentLogger,
});
running.push(exporter);

function count(lines: string[]): { all: number; rest: number; rate: number } {
  const rate = lines.filter((l) => untimed.test(l)).length;
  return { all: lines.length, rest: lines.length - rate, rate };
}

test(`/metrics: every shipped module against every flavor adds at most ${budget} series per target; a healthy one exactly its count`, { timeout: 60_000 }, async (t) => {
  const text = await eventually('a round of every target, the healthy pairs up', 45_000, async () => {
    const m = await (await fetch(`${exporter.url}/metrics`)).text();
    const done = pairs.every((p) => new RegExp(`^llm_server_up\\{target="${p.name}",model="[^"]*"\\} ${healthyPair(p) ? '1' : '[01]'}$`, 'm').test(m));
    return done ? m : undefined;
  });
  const samples = text.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
  const counts: string[] = [];
  for (const p of pairs) {
    const { all, rest, rate } = count(samples.filter((l) => l.includes(`target="${p.name}"`)));
    counts.push(`${p.name} ${all}`);
    assert.ok(all <= budget, `${p.name}: ${all} series on /metrics`);
    if (healthyPair(p)) {
      assert.ok(rate <= 1);
      assert.equal(rest, expected[p.module].metrics - 1, `${p.module} against its own flavor on /metrics (decode rate apart: ${rate})`);
    }
  }
  t.diagnostic(`series per target on /metrics: ${counts.join(', ')}`);
});

test(`/probe: every shipped module against every flavor answers at most ${budget} series; a healthy one exactly its count`, { timeout: 120_000 }, async (t) => {
  const counts: string[] = [];
  for (const p of pairs) {
    const url = `${exporter.url}/probe?${new URLSearchParams({ target: `${sims[p.flavor].url}/v1`, module: p.module, model: modelOf(p.flavor) })}`;
    // A healthy pair is asked again until its round is up (a cold model, a busy machine).
    const text = await eventually(`a /probe of ${p.name}`, 20_000, async () => {
      const body = await (await fetch(url)).text();
      return !healthyPair(p) || /^llm_server_up\{model="[^"]*"\} 1$/m.test(body) ? body : undefined;
    });
    const { all, rest, rate } = count(text.split('\n').filter((l) => l !== '' && !l.startsWith('#')));
    counts.push(`${p.name} ${all}`);
    assert.ok(all <= budget, `${p.name}: ${all} series on /probe`);
    if (healthyPair(p)) {
      assert.ok(rate <= 1);
      assert.equal(rest, expected[p.module].probe - 1, `${p.module} against its own flavor on /probe (decode rate apart: ${rate})`);
    }
  }
  t.diagnostic(`series per /probe: ${counts.join(', ')}`);
});
