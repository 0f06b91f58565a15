// accuracy: the chat probe's TTFT and decode rate against known truth: the simulator's set values
// (--ttft, --tokens-per-second), and the real llama-server's own `timings` of the same request.
// Probes go through the exporter's /probe endpoint (the same round code as the background
// scheduler), one at a time, and the figures are read from what it answers.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { llamaCacheDirs } from './lib/machine.ts';
import { freePort, getText, parseExposition, waitFor } from './lib/net.ts';
import { startService, startSim, writeConfig, type RunningService } from './lib/product.ts';
import { median, value } from './lib/stats.ts';
import type { BenchContext, Sample, Suite, SuiteResult } from './lib/types.ts';

const within5 = { op: '<=', value: 5, on: 'median', text: 'within 5 %' } as const;
const ttftMs = 100;
const rates = [20, 50, 150, 300];

type Gauges = Record<string, number>;

/** One /probe round: the gauges of one probe (name -> value), or undefined when that probe failed. */
async function probeOnce(exporter: RunningService, target: string, module: string, probes: string[] = ['chat']): Promise<Record<string, Gauges | undefined>> {
  const text = await getText(`${exporter.url}/probe?target=${encodeURIComponent(target)}&module=${module}`, 30_000);
  const byProbe: Record<string, Gauges> = {};
  for (const s of parseExposition(text ?? '')) if (s.labels.probe !== undefined && !s.labels.reason) (byProbe[s.labels.probe] ??= {})[s.name] = s.value;
  return Object.fromEntries(probes.map((p) => [p, byProbe[p]?.llm_probe_success === 1 ? byProbe[p] : undefined]));
}

const errorPct = (measured: number, truth: number) => (Math.abs(measured - truth) / truth) * 100;

export const accuracy: Suite = {
  name: 'accuracy',
  summary: "chat probe TTFT and decode rate vs the simulator's set values (20-300 tokens/s) and llama-server's own timings",
  estimate: { quick: 25, full: 90 },
  async run(ctx: BenchContext, out: SuiteResult) {
    const perRate = ctx.mode === 'quick' ? 5 : 20;
    // The shipped modules, plus llama.cpp's with the thinking probe: the tiny model answers the chat
    // probe in 3 tokens, but reasons for 14 with thinking on.
    const config = await writeConfig(ctx.dir, 'accuracy-exporter.yml', { modules: { 'llamacpp-thinking': { server: 'llamacpp', probes: ['health', 'models', 'chat', 'thinking'] } } });
    const exporter = await startService(ctx.procs, ctx.product, 'accuracy-exporter', 'exporter', [`--config.file=${config}`], join(ctx.dir, 'accuracy-exporter.log'), ctx.signal);
    let failed = 0;
    for (const rate of rates) {
      ctx.signal.throwIfAborted();
      const sim = await startSim(ctx.procs, ctx.product, `accuracy-sim-${rate}`, [`--tokens-per-second=${rate}`, `--ttft=${ttftMs}ms`], join(ctx.dir, `accuracy-sim-${rate}.log`), ctx.signal);
      const decode: Sample[] = [];
      const ttft: Sample[] = [];
      const seen: { rate: number[]; ttft: number[]; tokens: number[] } = { rate: [], ttft: [], tokens: [] };
      for (let i = 0; i < perRate; i++) {
        const g = (await probeOnce(exporter, sim.base, 'vllm')).chat;
        if (!g || g.llm_probe_tokens_per_second === undefined || g.llm_probe_ttft_seconds === undefined) {
          failed++;
          continue;
        }
        decode.push(value(errorPct(g.llm_probe_tokens_per_second, rate)));
        ttft.push(value(errorPct(g.llm_probe_ttft_seconds * 1000, ttftMs)));
        seen.rate.push(g.llm_probe_tokens_per_second);
        seen.ttft.push(g.llm_probe_ttft_seconds * 1000);
        if (g.llm_probe_completion_tokens !== undefined) seen.tokens.push(g.llm_probe_completion_tokens);
      }
      await sim.child.stop(3000);
      out.figures.push(
        { id: `accuracy.sim.${rate}.decode`, label: `decode rate error at ${rate} tokens/s`, unit: '%', samples: decode, goal: within5, note: `measured median ${median(seen.rate).toFixed(1)} tokens/s over ${median(seen.tokens)} tokens` },
        { id: `accuracy.sim.${rate}.ttft`, label: `TTFT error at ${rate} tokens/s (set ${ttftMs} ms)`, unit: '%', samples: ttft, goal: within5, note: `measured median ${median(seen.ttft).toFixed(1)} ms` },
      );
    }
    out.notes.push(
      `Simulator (flavor vllm: one token per chunk, as vLLM streams by default) at each rate with --ttft=${ttftMs}ms; ${perRate} probes each through the exporter's /probe (module vllm, its default chat settings); error = |measured - set| / set, one sample per probe. Probes that failed: ${failed}.`,
    );

    // The real llama-server, when the test suite's cached build is there.
    const dir = llamaCacheDirs().find((d) => existsSync(join(d, 'ready')) && existsSync(join(d, 'bin', 'llama-server')) && existsSync(join(d, 'tiny-qwen3.gguf')));
    if (!dir) {
      out.notes.push('llama-server: not measured, no cached build (~/.cache/qwen-sentinel/llama.cpp-*/ready). Build it with test/real-server/build-llama-server.sh (10-25 min).');
      return;
    }
    const port = await freePort();
    const llama = ctx.procs.spawn('llama-server', join(dir, 'bin', 'llama-server'), [
      '--model', join(dir, 'tiny-qwen3.gguf'), '--host', '127.0.0.1', '--port', String(port),
      '--jinja', '--metrics', '--ctx-size', '512', '--parallel', '1', '--threads', '1',
    ], { logFile: join(ctx.dir, 'llama-server.log') });
    const origin = `http://127.0.0.1:${port}`;
    await waitFor('llama-server healthy', 60_000, async () => {
      if (!llama.running) throw new Error('llama-server exited');
      return (await getText(`${origin}/health`, 2000)) !== undefined ? true : undefined;
    }, ctx.signal, 100);
    const n = ctx.mode === 'quick' ? 10 : 30;
    const probes = ['chat', 'thinking'];
    const seen = Object.fromEntries(probes.map((p) => [p, { errors: [] as Sample[], client: [] as number[], server: [] as number[], ttft: [] as number[], prompt: [] as number[], tokens: [] as number[], missing: 0 }]));
    for (let i = 0; i < n; i++) {
      const round = await probeOnce(exporter, `${origin}/v1`, 'llamacpp-thinking', probes);
      for (const p of probes) {
        const g = round[p];
        const s = seen[p]!;
        const client = g?.llm_probe_tokens_per_second;
        const server = g?.llm_probe_server_tokens_per_second;
        if (client === undefined || server === undefined) {
          s.missing++;
          continue;
        }
        s.errors.push(value(errorPct(client, server)));
        s.client.push(client);
        s.server.push(server);
        if (g?.llm_probe_ttft_seconds !== undefined) s.ttft.push(g.llm_probe_ttft_seconds * 1000);
        if (g?.llm_probe_server_prompt_seconds !== undefined) s.prompt.push(g.llm_probe_server_prompt_seconds * 1000);
        if (g?.llm_probe_completion_tokens !== undefined) s.tokens.push(g.llm_probe_completion_tokens);
      }
    }
    await llama.stop(5000);
    for (const p of probes) {
      const s = seen[p]!;
      out.figures.push({
        id: `accuracy.llamacpp.${p}.decode`,
        label: `llama-server, ${p} probe: decode rate error vs its own timings.predicted_per_second`,
        unit: '%',
        samples: s.errors,
        goal: within5,
        note: `client-observed median ${median(s.client).toFixed(0)} tokens/s, the server's own ${median(s.server).toFixed(0)} tokens/s, over ${median(s.tokens)} tokens; TTFT median ${median(s.ttft).toFixed(1)} ms against prompt_ms ${median(s.prompt).toFixed(1)} ms (prompt processing only, no goal)${s.missing ? `; ${s.missing} rounds without both figures` : ''}`,
      });
    }
    out.notes.push(
      `llama-server (${dir.split('/').pop()}, the tests' tiny Qwen3 model, 1 thread, 1 slot): ${n} rounds through /probe with the llamacpp module plus the thinking probe; the server's own rate is the one the exporter read from the same response's \`timings\` (llm_probe_server_tokens_per_second). The tiny model decodes a token in 2-3 ms and its chat answer is 3 tokens long (2 gaps), so a fraction of a millisecond of transport per chunk moves the client-observed rate by several %.`,
    );
  },
};
