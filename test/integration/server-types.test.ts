// Each server type judged right, through a whole round against the simulator speaking that
// server's dialect: starting is not down, busy, paused and asleep are not hung, a dead engine and a
// wrong key are told apart, and a cold Ollama model is given time to load.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { Registry } from 'prom-client';
import { parseConfig } from '../../src/cmd/config.ts';
import { initSeries, runRound, type RoundReport } from '../../src/probing/round.ts';
import { SeriesStore } from '../../src/probing/series.ts';
import { startSim, type RunningSim, type SimOptions } from '../../src/sim/server.ts';

const sims: RunningSim[] = [];
after(() => Promise.all(sims.map((s) => s.close())));

async function sim(options: Partial<SimOptions>): Promise<RunningSim> {
  const s = await startSim({ host: '127.0.0.1', port: 0, ttftMs: 10, tokensPerSecond: 400, onCrash: () => {}, ...options });
  sims.push(s);
  return s;
}

interface Probed {
  report: RoundReport;
  /** reason (or "ok") per probe */
  reasons: Record<string, string>;
  /** gauge values by metric name and probe */
  values: Record<string, number>;
  log: string;
}

/** One round of a server type's shipped module (its options overridden) against a server. */
async function probe(url: string, server: string, o: { timeout?: string; model?: string; apiKey?: string; chat?: object } = {}): Promise<Probed> {
  const module = parseConfig({ modules: { [server]: { timeout: o.timeout ?? '1s', ...(o.chat ? { chat: o.chat } : {}) } } }).modules[server]!;
  const store = new SeriesStore(new Registry(), { targetLabel: false, cumulative: false });
  initSeries(store, url, module);
  const report = await runRound({ target: { name: url, url: `${url}/v1`, model: o.model, timeout: module.timeout, apiKey: o.apiKey }, module, store, stop: new AbortController().signal, now: () => performance.now() });
  const values: Record<string, number> = {};
  for (const m of await store.registry.getMetricsAsJSON()) for (const v of m.values) values[`${m.name}${v.labels.probe ? `{${v.labels.probe}}` : ''}`] = v.value;
  return { report, reasons: Object.fromEntries(report.probes.map((p) => [p.probe, p.success ? 'ok' : p.reason!])), values, log: report.log.join('\n') };
}

describe('vllm', () => {
  test('healthy: up, with the server\'s own progress published', async () => {
    const s = await sim({ flavor: 'vllm' });
    const r = await probe(s.url, 'vllm');
    assert.deepEqual(r.reasons, { models: 'ok', health: 'ok', progress: 'ok', chat: 'ok' });
    assert.equal(r.values['llm_server_requests_waiting{progress}'], 0);
    assert.ok(r.values['llm_server_generation_tokens{progress}']! >= 0);
    assert.equal(r.values['llm_server_sleeping{progress}'], 0);
    assert.ok(r.values['llm_probe_time_to_first_token_seconds{chat}']! > 0);
    const rate = r.values['llm_probe_tokens_per_second{chat}'];
    assert.ok(rate === undefined ? /decode rate not measured/.test(r.log) : rate > 0, r.log);
  });

  test('loading refuses connections: down as far as the wire can tell (the remediator knows it started it)', async () => {
    const s = await startSim({ host: '127.0.0.1', port: 0, flavor: 'vllm', startupDelayMs: 10_000, onCrash: () => {} });
    sims.push(s);
    assert.equal((await probe(s.url, 'vllm')).reasons.models, 'connect_refused');
  });

  test('saturated: no token for the probe while the server generates for others is saturated, not a hang', async () => {
    const s = await sim({ flavor: 'vllm', fault: 'saturated', slots: 2 });
    const r = await probe(s.url, 'vllm');
    assert.equal(r.reasons.chat, 'saturated', r.log);
    assert.match(r.report.probes.at(-1)!.message!, /generated \d+ tokens for other requests/);
    assert.equal(r.reasons.models, 'ok');
  });

  for (const [fault, reason] of [['paused', 'paused'], ['asleep', 'asleep']] as const) {
    test(`${fault}: the server says so, and it is not a hang`, async () => {
      const s = await sim({ flavor: 'vllm', fault });
      const r = await probe(s.url, 'vllm');
      assert.equal(r.reasons.chat, reason, r.log);
      assert.equal(r.reasons.health, 'ok');
    });
  }

  test('hung: no token and no progress is a hang, and the message says the server made none', async () => {
    const s = await sim({ flavor: 'vllm', fault: 'hang-generation' });
    const r = await probe(s.url, 'vllm');
    assert.equal(r.reasons.chat, 'hung', r.log);
    assert.match(r.report.probes.at(-1)!.message!, /the server's own count of generated tokens did not move \(0 running, 0 waiting, 0 tokens generated so far\)/);
  });

  test('engine dead: /health 5xx while the listing answers', async () => {
    const s = await sim({ flavor: 'vllm', fault: 'engine-dead' });
    const r = await probe(s.url, 'vllm');
    assert.deepEqual([r.reasons.models, r.reasons.health, r.reasons.chat], ['ok', 'http_5xx', 'http_5xx']);
  });

  test('API key: without it every /v1 probe is unauthorized; with it, up', async () => {
    const s = await sim({ flavor: 'vllm', apiKey: 'sk-0123456789abcdef' });
    const without = await probe(s.url, 'vllm');
    assert.deepEqual([without.reasons.models, without.reasons.health, without.reasons.progress], ['unauthorized', 'ok', 'ok']);
    assert.equal(without.report.up, false);
    const withKey = await probe(s.url, 'vllm', { apiKey: 'sk-0123456789abcdef' });
    assert.equal(withKey.report.up, true, withKey.log);
    assert.doesNotMatch(withKey.log, /sk-0123456789abcdef/, 'the key is never logged');
  });
});

describe('sglang', () => {
  test('saturated and hung told apart by its /metrics', async () => {
    const busy = await sim({ flavor: 'sglang', fault: 'saturated', slots: 2 });
    assert.equal((await probe(busy.url, 'sglang')).reasons.chat, 'saturated');
    // Its /health waits for a test generation (20 s, as SGLang's own timeout) before the 503:
    // a probe with a shorter deadline sees a timeout, and LLMServerEngineDead reads both.
    const hung = await sim({ flavor: 'sglang', fault: 'hang-generation' });
    const r = await probe(hung.url, 'sglang');
    assert.deepEqual([r.reasons.health, r.reasons.chat], ['timeout', 'hung']);
    const quick = await sim({ flavor: 'sglang', fault: 'engine-dead', healthTimeoutMs: 100 });
    assert.equal((await probe(quick.url, 'sglang')).reasons.health, 'http_5xx');
  });
});

describe('llamacpp', () => {
  test('loading is "starting" on every probe, never down', async () => {
    const s = await sim({ flavor: 'llamacpp', startupDelayMs: 10_000 });
    const r = await probe(s.url, 'llamacpp');
    assert.deepEqual(r.reasons, { health: 'starting', models: 'starting', progress: 'starting', chat: 'starting' });
  });

  test('its one slot busy with another request is saturated; a hung decode loop (whose /metrics hangs too) is a hang', async () => {
    const busy = await sim({ flavor: 'llamacpp', tokensPerSecond: 20 });
    // Someone else's long generation holds the only slot.
    const other = fetch(`${busy.url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify({ messages: [{ role: 'user', content: 'x' }], max_tokens: 200, stream: true }) });
    await new Promise((r) => setTimeout(r, 50));
    const r = await probe(busy.url, 'llamacpp');
    assert.equal(r.reasons.chat, 'saturated', r.log);
    void other.then((res) => res.body?.cancel());
    const hung = await sim({ flavor: 'llamacpp', fault: 'hang-generation' });
    const h = await probe(hung.url, 'llamacpp');
    assert.equal(h.reasons.health, 'ok', "llama.cpp's /health does not see a hung loop");
    assert.equal(h.reasons.chat, 'hung', h.log);
    assert.match(h.log, /progress signal unreadable after the stall/);
    assert.match(h.report.probes.at(-1)!.message!, /the progress signal, which the decode loop answers, does not answer either/);
  });

  test('asleep (--sleep-idle-seconds): /props says so', async () => {
    const s = await sim({ flavor: 'llamacpp', fault: 'asleep' });
    const r = await probe(s.url, 'llamacpp', { timeout: '2s' });
    assert.equal(r.reasons.chat, 'asleep', r.log);
  });
});

describe('ollama', () => {
  test('a cold model gets the load deadline; the load time is published apart from TTFT; warm, TTFT is back', async () => {
    const s = await sim({ flavor: 'ollama', startupDelayMs: 1500 });
    const cold = await probe(s.url, 'ollama', { model: 'qwen3:0.6b', timeout: '1s', chat: { load_timeout: '20s' } });
    assert.equal(cold.report.up, true, cold.log);
    assert.equal(cold.values['llm_server_model_loaded{progress}'], 0);
    assert.ok(cold.values['llm_probe_model_load_seconds{chat}']! >= 1.4, 'the load, kept apart');
    assert.equal(cold.values['llm_probe_time_to_first_token_seconds{chat}'], undefined, 'no TTFT from a cold start');
    const warm = await probe(s.url, 'ollama', { model: 'qwen3:0.6b', timeout: '1s' });
    assert.equal(warm.values['llm_server_model_loaded{progress}'], 1);
    assert.ok(warm.values['llm_probe_time_to_first_token_seconds{chat}']! > 0);
    assert.equal(warm.values['llm_probe_model_load_seconds{chat}'], undefined);
  });

  test('thinking is turned off Ollama\'s way, so the answer is content, not reasoning', async () => {
    const s = await sim({ flavor: 'ollama' });
    const r = await probe(s.url, 'ollama', { model: 'qwen3:0.6b', timeout: '5s', chat: { expect: '^I am Qwen' } });
    assert.equal(r.reasons.chat, 'ok', r.log);
  });
});
