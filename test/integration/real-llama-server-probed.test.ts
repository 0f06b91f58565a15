// The exporter's probes against the real llama.cpp llama-server (built by
// test/real-server/build-llama-server.sh, tiny generated Qwen3 model): up with TTFT and a decode
// rate that agrees with the server's own timings, reasoning apart from the answer, its loading
// phase read as "starting", a frozen process (SIGSTOP) as unresponsive.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Registry } from 'prom-client';
import { parseConfig } from '../../src/cmd/config.ts';
import { initSeries, runRound, type RoundReport } from '../../src/probing/round.ts';
import { SeriesStore } from '../../src/probing/series.ts';
import { startBufferingProxy } from '../helpers/buffering-proxy.ts';
import { freePort, llamaServerCommand, requireLlamaServer, startLlamaServer, type RunningLlamaServer } from '../helpers/llama-server.ts';

const files = requireLlamaServer();
const skip = !files && 'llama-server not built';
const cleanups: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

const modules = parseConfig({
  modules: {
    llamacpp: { timeout: '2s' },
    'llamacpp-thinking': { server: 'llamacpp', probes: ['health', 'models', 'progress', 'chat', 'thinking'], timeout: '2s', thinking: { expect: '^OK!$' } },
  },
}).modules;

async function round(url: string, module = 'llamacpp'): Promise<{ report: RoundReport; values: Record<string, number> }> {
  const m = modules[module]!;
  const store = new SeriesStore(new Registry(), { targetLabel: false, cumulative: false });
  initSeries(store, url, m);
  const report = await runRound({ target: { name: url, url: `${url}/v1`, timeout: m.timeout }, module: m, store, stop: new AbortController().signal, now: () => performance.now() });
  const values: Record<string, number> = {};
  for (const metric of await store.registry.getMetricsAsJSON()) for (const v of metric.values) values[`${metric.name}${v.labels.probe ? `{${v.labels.probe}}` : ''}`] = v.value;
  return { report, values };
}
const reasons = (r: RoundReport) => Object.fromEntries(r.probes.map((p) => [p.probe, p.success ? 'ok' : p.reason]));

let server: RunningLlamaServer;
test('up, with TTFT and a decode rate that agrees with the server\'s own timings; reasoning apart from the answer', { skip, timeout: 60_000 }, async () => {
  server = await startLlamaServer();
  cleanups.push(() => server.stop());
  const first = await round(server.url, 'llamacpp-thinking');
  assert.equal(first.report.up, true, first.report.log.join('\n'));
  assert.match(first.report.model ?? '', /tiny-qwen3\.gguf$/, 'the model the server lists, by path');
  assert.ok(first.values['llm_probe_time_to_first_token_seconds{chat}']! > 0);
  assert.ok(first.values['llm_server_generation_tokens{progress}']! >= 0, 'llama.cpp /metrics read');
  // Thinking on: "Okay, the user wants a reply." as reasoning, then the answer "OK!".
  assert.ok(first.values['llm_probe_reasoning_tokens{thinking}']! >= 5, JSON.stringify(first.values));
  assert.ok(first.values['llm_probe_content_tokens{thinking}']! >= 2);
  assert.ok(first.values['llm_probe_time_to_first_content_seconds{thinking}']! > first.values['llm_probe_time_to_first_token_seconds{thinking}']!);
  // The client-observed decode rate includes HTTP and this process; the server's own excludes
  // them. Every rate the client publishes agrees with the server's within a factor of 2; when the
  // client could not time the tokens (a busy machine reads them together) it publishes none, and
  // says why in the probe's log.
  for (let i = 0; i < 10; i++) {
    const r = await round(server.url, 'llamacpp-thinking');
    const client = r.values['llm_probe_tokens_per_second{thinking}'];
    const own = r.values['llm_probe_server_tokens_per_second{thinking}']!;
    assert.ok(own > 0, JSON.stringify(r.values));
    if (client === undefined) assert.match(r.report.log.join('\n'), /decode rate not measured: the tokens arrived together/);
    else assert.ok(client / own > 0.5 && client / own < 2, `client ${client.toFixed(0)} vs server ${own.toFixed(0)} tokens/s`);
  }
});

test('behind a proxy that buffers answers (nginx\'s default): no client decode rate, the server\'s own still published', { skip, timeout: 60_000 }, async () => {
  const proxy = await startBufferingProxy(server.url);
  cleanups.push(() => proxy.close());
  for (let i = 0; i < 5; i++) {
    const r = await round(proxy.url, 'llamacpp-thinking');
    assert.equal(r.report.up, true, r.report.log.join('\n'));
    assert.equal(r.values['llm_probe_tokens_per_second{thinking}'], undefined, JSON.stringify(r.values));
    assert.equal(r.values['llm_probe_tokens_per_second{chat}'], undefined);
    assert.ok(r.values['llm_probe_server_tokens_per_second{thinking}']! > 0);
    assert.match(r.report.log.join('\n'), /decode rate not measured: the tokens arrived together \(\d+ token chunks in 1 reads/);
  }
});

/** Waits until every thread of pid is stopped (state T in /proc), at most 5 s. */
async function eventuallyStopped(pid: number): Promise<void> {
  const { readdir, readFile } = await import('node:fs/promises');
  const stopped = async () => {
    const tasks = await readdir(`/proc/${pid}/task`);
    const states = await Promise.all(tasks.map(async (t) => (await readFile(`/proc/${pid}/task/${t}/stat`, 'utf8')).replace(/^.*\) /s, '')[0]));
    return states.every((s) => s === 'T' || s === 't');
  };
  for (let i = 0; i < 100 && !(await stopped()); i++) await sleep(50);
  assert.ok(await stopped(), `llama-server ${pid} not stopped after 5 s`);
}

test('a frozen server (SIGSTOP) reads as unresponsive: every probe times out; SIGCONT and it is up again', { skip, timeout: 60_000 }, async () => {
  process.kill(server.pid, 'SIGSTOP');
  try {
    // The stop reaches every thread of it a moment later (on a busy machine, after an answer or two).
    await eventuallyStopped(server.pid);
    const frozen = await round(server.url);
    assert.deepEqual(reasons(frozen.report), { health: 'timeout', models: 'timeout', progress: 'timeout', chat: 'timeout' });
  } finally {
    process.kill(server.pid, 'SIGCONT');
  }
  assert.equal((await round(server.url)).report.up, true);
});

test('while it loads its model it reads "starting", not down', { skip, timeout: 60_000 }, async () => {
  const port = await freePort();
  const [bin, ...args] = llamaServerCommand(files!, port);
  const child = spawn(bin!, args, { stdio: 'ignore' });
  cleanups.push(() => void (child.exitCode === null && child.kill('SIGKILL')));
  const url = `http://127.0.0.1:${port}`;
  // It listens within milliseconds and loads for about a second: probe as soon as it answers.
  for (let i = 0; i < 500; i++) {
    const answered = await fetch(`${url}/health`).then(() => true, () => false);
    if (answered) break;
    await sleep(5);
  }
  const loading = await round(url);
  assert.equal(reasons(loading.report).health, 'starting', loading.report.log.join('\n'));
  assert.match(loading.report.probes[0]!.message!, /Loading model/);
  child.kill('SIGTERM');
});

test('busy, not hung: a long generation holds its only slot, and the probe reads saturated', { skip, timeout: 60_000 }, async () => {
  const busy = await startLlamaServer({ args: ['--ctx-size', '4096'] });
  cleanups.push(() => busy.stop());
  // Somebody else's long answer (the chain model stops only at max_tokens with ignore_eos).
  const other = fetch(`${busy.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messages: [{ role: 'user', content: 'write a lot' }], max_tokens: 3500, ignore_eos: true, stream: true }) });
  const res = await other;
  const reader = res.body!.getReader();
  await reader.read(); // it holds the slot now
  const r = await round(busy.url);
  assert.equal(reasons(r.report).chat, 'saturated', r.report.log.join('\n'));
  assert.match(r.report.probes.at(-1)!.message!, /while the server generated \d+ tokens for other requests/);
  await reader.cancel();
});
