// A real Ollama (v0.24.0, CPU, built by test/real-server/build-ollama.sh) with the tiny generated
// Qwen3 model behind a Modelfile, plus an embedding-only copy of it: what the simulator's ollama
// flavor only imitates. A cold model loads on the first request and the exporter's probe waits for
// it (a client that gives up aborts the load); keep_alive unloads it; /api/ps says what is loaded;
// reasoning comes in delta.reasoning; the listing holds a model that cannot chat; a frozen or
// killed server reads as down. Then the flavor against the real server, request by request.
// The model's weights make decoding follow a fixed chain (write-tiny-qwen3-gguf.ts): thinking on ->
// reasoning "Okay, the user wants a reply." then "OK!"; thinking off -> "OK!".
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { isDeepStrictEqual } from 'node:util';
import { Registry } from 'prom-client';
import { parseConfig } from '../../src/cmd/config.ts';
import { initSeries, recordUp, runRound, type RoundReport } from '../../src/probing/round.ts';
import { SeriesStore } from '../../src/probing/series.ts';
import { servers } from '../../src/servers/index.ts';
import { startSim, type RunningSim } from '../../src/sim/server.ts';
import { CHAT_MODEL, EMBEDDING_MODEL, requireOllama, startOllama, startOllamaWithModels, type RunningOllama } from '../helpers/ollama.ts';

const files = requireOllama();
const skip = !files && 'no real Ollama (see the warning above)';

// cold: a deadline shorter than a model load (about 1 s here), so only the load deadline lets it succeed;
// the others leave a busy machine room (a warm answer takes 0.1-0.3 s, more under load).
const modules = parseConfig({
  modules: {
    cold: { server: 'ollama', probes: ['models', 'progress', 'chat'], timeout: '200ms', chat: { load_timeout: '30s', max_tokens: 8 } },
    warm: { server: 'ollama', probes: ['models', 'progress', 'chat', 'thinking'], timeout: '5s', chat: { expect: '^OK!$', max_tokens: 8 }, thinking: { expect: '^OK!$', max_tokens: 24 } },
    plain: { server: 'ollama', probes: ['models', 'progress', 'chat'], timeout: '5s', chat: { max_tokens: 8 } },
    // For rounds meant to fail: a frozen or dead server.
    short: { server: 'ollama', probes: ['models', 'progress', 'chat'], timeout: '1s', chat: { max_tokens: 8 } },
  },
}).modules;

interface Round { report: RoundReport; values: Record<string, number> }

/** One round of the exporter's probes against the server, and the series it left (llm_server_up included). */
async function round(url: string, module: string, model = CHAT_MODEL): Promise<Round> {
  const m = modules[module]!;
  const store = new SeriesStore(new Registry(), { targetLabel: false, cumulative: false });
  initSeries(store, url, m);
  const report = await runRound({ target: { name: url, url: `${url}/v1`, model, timeout: m.timeout }, module: m, store, stop: new AbortController().signal, now: () => performance.now() });
  recordUp(store, report);
  const values: Record<string, number> = {};
  for (const metric of await store.registry.getMetricsAsJSON()) for (const v of metric.values) values[`${metric.name}${v.labels.probe ? `{${v.labels.probe}}` : ''}`] = v.value;
  return { report, values };
}
const reasons = (r: RoundReport) => Object.fromEntries(r.probes.map((p) => [p.probe, p.success ? 'ok' : p.reason]));
const explain = (r: Round) => `${JSON.stringify(reasons(r.report))}\n${r.report.log.join('\n')}`;

/** One answer, as far as the comparison goes. */
async function answer(url: string, path: string, init: RequestInit = {}) {
  const res = await fetch(url + path, { ...init, signal: AbortSignal.timeout(20_000) });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // an event stream, or text
  }
  return { status: res.status, headers: res.headers, text, body: body as any }; // eslint-disable-line @typescript-eslint/no-explicit-any
}
const postJson = (body: unknown): RequestInit => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) });
const ask = (extra: Record<string, unknown> = {}) => ({ model: CHAT_MODEL, messages: [{ role: 'user', content: 'Say OK.' }], ...extra });

interface Chunk {
  choices: Array<{ delta: { role?: string; content?: string | null; reasoning?: string }; finish_reason: string | null }>;
  usage?: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
}

/** An event stream's chunks, and what they add up to. */
function events(text: string) {
  const lines = text.split('\n').filter((l) => l.startsWith('data: '));
  const chunks = lines.filter((l) => l !== 'data: [DONE]').map((l) => JSON.parse(l.slice(6)) as Chunk);
  const choices = chunks.flatMap((c) => c.choices);
  const order: Array<'reasoning' | 'content'> = [];
  for (const { delta } of choices) {
    if (delta.reasoning && order.at(-1) !== 'reasoning') order.push('reasoning');
    if (delta.content && order.at(-1) !== 'content') order.push('content');
  }
  return {
    chunks,
    reasoning: choices.map((c) => c.delta.reasoning ?? '').join(''),
    content: choices.map((c) => c.delta.content ?? '').join(''),
    order,
    finish: choices.find((c) => c.finish_reason !== null)?.finish_reason,
    usage: chunks.find((c) => c.usage)?.usage,
    done: lines.at(-1) === 'data: [DONE]',
  };
}

/**
 * A stream's skeleton: per chunk, its kind (reasoning, content, finish, usage) and the keys of its
 * delta, runs of alike chunks merged. The text differs (the simulator is not the tiny model); the
 * wire format must not.
 */
function skeleton(text: string): string[] {
  const out: string[] = [];
  for (const chunk of events(text).chunks) {
    const choice = chunk.choices[0];
    const kind = !choice ? 'usage' : choice.finish_reason !== null ? `finish ${choice.finish_reason}` : choice.delta.reasoning ? 'reasoning' : 'content';
    const keys = choice ? Object.entries(choice.delta).map(([k, v]) => `${k}${v === '' ? '=""' : ''}`).sort().join(',') : Object.keys(chunk.usage ?? {}).sort().join(',');
    const entry = `${kind} {${keys}}`;
    if (out.at(-1) !== entry) out.push(entry);
  }
  return out;
}

/**
 * The simulator's answer must be the real one, or a difference already known (and reported): the
 * flavor follows Ollama's newer wire format (v0.32.6 and later) where v0.24.0, the newest release
 * that builds offline, differs; the known differences are printed as diagnostics.
 */
function alike(t: TestContext, what: string, real: unknown, simulated: unknown, known?: { sim: unknown; why: string }): void {
  if (isDeepStrictEqual(simulated, real)) return;
  if (known && isDeepStrictEqual(simulated, known.sim)) {
    t.diagnostic(`KNOWN DIFFERENCE ${what}: real ${JSON.stringify(real)} / simulator ${JSON.stringify(simulated)} (${known.why})`);
    return;
  }
  assert.deepEqual(simulated, real, what);
}

/** Waits until every thread of pid is stopped (state T in /proc), at most 5 s. */
async function eventuallyStopped(pid: number): Promise<void> {
  const stopped = async () => {
    const tasks = await readdir(`/proc/${pid}/task`);
    const states = await Promise.all(tasks.map(async (t) => (await readFile(`/proc/${pid}/task/${t}/stat`, 'utf8').catch(() => ') T')).replace(/^.*\) /s, '')[0]));
    return states.every((s) => s === 'T' || s === 't');
  };
  for (let i = 0; i < 100 && !(await stopped()); i++) await sleep(50);
  assert.ok(await stopped(), `${pid} not stopped after 5 s`);
}

async function loaded(url: string): Promise<string[]> {
  return ((await answer(url, '/api/ps')).body.models as Array<{ name: string }>).map((m) => m.name);
}

/**
 * Asks for a streamed chat and gives up once `loading()` says the model load is under way: a client
 * whose timeout is shorter than the load. The request's fate: 'AbortError', or 'answered'.
 */
async function giveUpWhileLoading(url: string, loading: () => Promise<boolean>): Promise<string> {
  const controller = new AbortController();
  const request = fetch(`${url}/v1/chat/completions`, { ...postJson(ask({ stream: true })), signal: controller.signal }).then(() => 'answered', (e: Error) => e.name);
  for (let i = 0; i < 500 && !(await loading()); i++) await sleep(10);
  controller.abort();
  return request;
}

/** Unloads every model (keep_alive 0) and waits until /api/ps is empty: the unload answers before it is done. */
async function unloaded(url: string): Promise<void> {
  for (const name of await loaded(url)) await answer(url, name.startsWith(EMBEDDING_MODEL) ? '/api/embed' : '/api/generate', postJson({ model: name, keep_alive: 0, ...(name.startsWith(EMBEDDING_MODEL) ? { input: 'x' } : {}) }));
  for (let i = 0; i < 100 && (await loaded(url)).length > 0; i++) await sleep(50);
  assert.deepEqual(await loaded(url), [], 'still loaded 5 s after keep_alive 0');
}

test('a real Ollama with no model: /v1/models answers data null, and the models probe fails', { skip, timeout: 60_000 }, async (t) => {
  const bare = await startOllama();
  t.after(() => bare.stop());
  assert.deepEqual((await answer(bare.url, '/v1/models')).body, { object: 'list', data: null });
  assert.deepEqual((await answer(bare.url, '/api/tags')).body, { models: [] });
  const empty = await round(bare.url, 'short');
  assert.notEqual(reasons(empty.report).models, 'ok');
  t.diagnostic(`models probe on an Ollama without models: ${empty.report.probes[0]!.reason}: ${empty.report.probes[0]!.message}`);
});

test('a real Ollama with the tiny Qwen3 model: cold loads, keep_alive, /api/ps, reasoning, a model that cannot chat, frozen and killed', { skip, timeout: 180_000 }, async (t) => {
  const started = performance.now();
  const server: RunningOllama = await startOllamaWithModels();
  t.after(() => server.stop());
  t.diagnostic(`ollama serve up with both models created in ${Math.round(performance.now() - started)} ms`);

  await t.test('before any request: both models listed (the embedding one first, the newer), none loaded, no runner', async () => {
    const listing = await answer(server.url, '/v1/models');
    assert.deepEqual(listing.body.data.map((m: { id: string }) => m.id), [`${EMBEDDING_MODEL}:latest`, `${CHAT_MODEL}:latest`]);
    // The server type matches the configured name with its implied :latest tag, wherever it lists.
    assert.equal(servers.ollama.matchModel(listing.body.data, CHAT_MODEL), `${CHAT_MODEL}:latest`);
    assert.deepEqual((await answer(server.url, '/api/tags')).body.models.map((m: { name: string }) => m.name), [`${EMBEDDING_MODEL}:latest`, `${CHAT_MODEL}:latest`]);
    assert.deepEqual(await loaded(server.url), []);
    assert.deepEqual(await server.runners(), []);
    // What Ollama makes of each: the GGUF's pooling_type makes an embedding model; the template's .Thinking a thinking one.
    assert.deepEqual((await answer(server.url, '/api/show', postJson({ model: EMBEDDING_MODEL }))).body.capabilities, ['embedding']);
    assert.deepEqual((await answer(server.url, '/api/show', postJson({ model: CHAT_MODEL }))).body.capabilities, ['completion', 'tools', 'thinking']);
  });

  await t.test('a client that gives up while the model loads aborts the load: nothing gets loaded', async () => {
    assert.equal(await giveUpWhileLoading(server.url, async () => (await server.runners()).length > 0), 'AbortError', 'headers come only with the first token, after the load');
    // A load takes about a second here: had it gone on, the model would be listed by now.
    await sleep(1500);
    assert.deepEqual(await loaded(server.url), []);
    assert.deepEqual(await server.runners(), [], 'the runner is stopped with the load');
    assert.match(server.output(), /"do load request" error=.*context canceled|client connection closed before server finished loading, aborting load/);
  });

  await t.test('cold load: the probe sees the model is not loaded (/api/ps), waits for the load past its deadline, never aborts it', async () => {
    const aborts = (server.output().match(/context canceled|aborting load/g) ?? []).length;
    const cold = await round(server.url, 'cold');
    assert.equal(cold.report.up, true, explain(cold));
    assert.equal(cold.values['llm_server_up'], 1);
    assert.equal(cold.values['llm_server_model_loaded{progress}'], 0, 'progress read /api/ps before the load');
    // The load is published as such, not as TTFT, and it took longer than the probe's own deadline.
    const load = cold.values['llm_probe_model_load_seconds{chat}']!;
    assert.ok(load > modules.cold!.timeout / 1000, `load ${load} s, deadline ${modules.cold!.timeout} ms: ${explain(cold)}`);
    assert.equal(cold.values['llm_probe_time_to_first_token_seconds{chat}'], undefined);
    assert.match(cold.report.log.join('\n'), /is not loaded: waiting up to 30 s/);
    assert.deepEqual(await loaded(server.url), [`${CHAT_MODEL}:latest`]);
    assert.equal((server.output().match(/context canceled|aborting load/g) ?? []).length, aborts, 'no load aborted');
    t.diagnostic(`cold load + first token: ${(load * 1000).toFixed(0)} ms against a 200 ms probe deadline`);
  });

  await t.test('warm: up, TTFT, the answer "OK!" with thinking off; reasoning apart from the answer with thinking on', async () => {
    const warm = await round(server.url, 'warm');
    assert.equal(warm.report.up, true, explain(warm));
    assert.equal(warm.values['llm_server_model_loaded{progress}'], 1);
    assert.ok(warm.values['llm_probe_time_to_first_token_seconds{chat}']! > 0);
    assert.equal(warm.values['llm_probe_completion_tokens{chat}'], 3, '"OK", "!", <|im_end|>');
    // Thinking on: 8 reasoning chunks ("Okay, the user wants a reply."), 14 tokens in all (<think>, </think>, "\n\n", EOS unseen).
    assert.equal(warm.values['llm_probe_completion_tokens{thinking}'], 14);
    assert.equal(warm.values['llm_probe_reasoning_tokens{thinking}'], 8);
    assert.ok(warm.values['llm_probe_time_to_first_content_seconds{thinking}']! > warm.values['llm_probe_time_to_first_token_seconds{thinking}']!);
    t.diagnostic(`warm TTFT ${(warm.values['llm_probe_time_to_first_token_seconds{chat}']! * 1000).toFixed(0)} ms, thinking ${warm.values['llm_probe_tokens_per_second{thinking}']?.toFixed(0) ?? 'unmeasured'} tokens/s`);
  });

  await t.test('reasoning: delta.reasoning first, then content; only reasoning_effort "none" turns it off, chat_template_kwargs is ignored', async () => {
    const on = events((await answer(server.url, '/v1/chat/completions', postJson(ask({ stream: true, stream_options: { include_usage: true } })))).text);
    assert.deepEqual([on.order, on.reasoning, on.content, on.finish, on.done], [['reasoning', 'content'], 'Okay, the user wants a reply.', 'OK!', 'stop', true]);
    assert.deepEqual(on.usage, { prompt_tokens: 13, completion_tokens: 14, total_tokens: 27 });
    const off = events((await answer(server.url, '/v1/chat/completions', postJson(ask({ stream: true, reasoning_effort: 'none' })))).text);
    assert.deepEqual([off.order, off.content, off.usage], [['content'], 'OK!', undefined]);
    const kwargs = events((await answer(server.url, '/v1/chat/completions', postJson(ask({ stream: true, chat_template_kwargs: { enable_thinking: false } })))).text);
    assert.deepEqual(kwargs.order, ['reasoning', 'content']);
    const whole = (await answer(server.url, '/v1/chat/completions', postJson(ask()))).body;
    assert.deepEqual(whole.choices[0].message, { role: 'assistant', content: 'OK!', reasoning: 'Okay, the user wants a reply.' });
  });

  await t.test('keep_alive: a model loaded for 1 s leaves /api/ps and its runner exits; the next probe finds it cold and waits again', async () => {
    const set = performance.now();
    const load = await answer(server.url, '/api/generate', postJson({ model: CHAT_MODEL, keep_alive: '1s' }));
    assert.deepEqual([load.body.done, load.body.done_reason], [true, 'load']);
    while ((await loaded(server.url)).length > 0) {
      assert.ok(performance.now() - set < 10_000, 'still loaded 10 s after a keep_alive of 1 s');
      await sleep(100);
    }
    const after = performance.now() - set;
    assert.ok(after > 900, `unloaded after ${after} ms, before its keep_alive of 1 s`);
    t.diagnostic(`unloaded ${Math.round(after)} ms after a request with keep_alive 1s`);
    assert.deepEqual(await server.runners(), [], 'the runner exits with the unload');
    const again = await round(server.url, 'cold');
    assert.equal(again.report.up, true, explain(again));
    assert.equal(again.values['llm_server_model_loaded{progress}'], 0);
    assert.ok(again.values['llm_probe_model_load_seconds{chat}']! > 0);
    // The OpenAI API has no keep_alive: its requests keep the model for the server's default, 5 minutes.
    const [kept] = (await answer(server.url, '/api/ps')).body.models;
    assert.ok(Date.parse(kept.expires_at) - Date.now() > 4 * 60_000, kept.expires_at);
    // keep_alive 0 unloads at once, though the answer comes before the model has left /api/ps.
    const unload = await answer(server.url, '/api/generate', postJson({ model: CHAT_MODEL, keep_alive: 0 }));
    assert.equal(unload.body.done_reason, 'unload');
    await unloaded(server.url);
  });

  await t.test('a listing that also holds a model that cannot chat: the configured model is found; probing the other fails with a 400', async () => {
    const chat = await round(server.url, 'plain');
    assert.equal(chat.report.up, true, explain(chat));
    const embedding = await round(server.url, 'warm', EMBEDDING_MODEL);
    assert.deepEqual(reasons(embedding.report), { models: 'ok', progress: 'ok', chat: 'http_4xx', thinking: 'http_4xx' });
    assert.match(embedding.report.probes[2]!.message!, /HTTP 400: .*does not support chat/);
    assert.equal(embedding.values['llm_server_up'], 0);
    // It is a working model all the same, of another kind (unloaded again at once: keep_alive 0).
    const embed = await answer(server.url, '/api/embed', postJson({ model: EMBEDDING_MODEL, input: 'hello', keep_alive: 0 }));
    assert.deepEqual([embed.status, embed.body.embeddings[0].length], [200, 64]);
    for (let i = 0; i < 50 && (await loaded(server.url)).includes(`${EMBEDDING_MODEL}:latest`); i++) await sleep(100);
    assert.deepEqual(await loaded(server.url), [`${CHAT_MODEL}:latest`]);
  });

  await t.test('the model runner frozen (SIGSTOP), the front end up: the listing and /api/ps answer, the chat probe times out', async () => {
    await round(server.url, 'plain'); // loaded
    const runners = await server.runners();
    assert.equal(runners.length, 1, 'one model loaded, one runner');
    for (const pid of runners) process.kill(pid, 'SIGSTOP');
    try {
      for (const pid of runners) await eventuallyStopped(pid);
      const frozen = await round(server.url, 'short');
      assert.deepEqual(reasons(frozen.report), { models: 'ok', progress: 'ok', chat: 'timeout' }, explain(frozen));
      assert.match(frozen.report.probes[2]!.message!, /model loaded/);
      assert.equal(frozen.values['llm_server_up'], 0);
    } finally {
      for (const pid of runners) process.kill(pid, 'SIGCONT');
    }
    const back = await round(server.url, 'plain');
    assert.equal(back.report.up, true, explain(back));
  });

  await t.test('ollama serve frozen (SIGSTOP): every probe times out within its deadline, up 0; SIGCONT and it is up again', async () => {
    process.kill(server.pid, 'SIGSTOP');
    try {
      await eventuallyStopped(server.pid);
      const frozen = await round(server.url, 'short');
      assert.deepEqual(reasons(frozen.report), { models: 'timeout', progress: 'timeout', chat: 'timeout' }, explain(frozen));
      for (const p of frozen.report.probes) assert.ok(p.durationSeconds < 1.5, `${p.probe} took ${p.durationSeconds} s, deadline 1 s`);
      assert.equal(frozen.values['llm_server_up'], 0);
    } finally {
      process.kill(server.pid, 'SIGCONT');
    }
    const back = await round(server.url, 'plain');
    assert.equal(back.report.up, true, explain(back));
  });

  // The flavor against the real server, request by request (before the SIGKILL below ends it).
  await t.test('the simulator\'s ollama flavor against the real server', async (t) => {
    const sim: RunningSim = await startSim({ host: '127.0.0.1', port: 0, flavor: 'ollama', model: CHAT_MODEL, ttftMs: 5, tokensPerSecond: 1000, startupDelayMs: 500, onCrash: () => {} });
    t.after(() => sim.close());
    await sim.ready;
    await unloaded(server.url); // cold, as the simulator starts
    const both = async (path: string, init?: RequestInit) => [await answer(server.url, path, init), await answer(sim.url, path, init)] as const;

    await t.test('GET /, an unknown path, /api/version, a cold /api/ps', async (t) => {
      for (const path of ['/', '/nothing']) {
        const [real, simulated] = await both(path);
        alike(t, `GET ${path}`, [real.status, real.headers.get('content-type'), real.text], [simulated.status, simulated.headers.get('content-type'), simulated.text]);
      }
      const [realVersion, simVersion] = await both('/api/version');
      alike(t, 'GET /api/version keys', Object.keys(realVersion.body), Object.keys(simVersion.body));
      const [realPs, simPs] = await both('/api/ps');
      alike(t, 'GET /api/ps, cold', realPs.body, simPs.body);
      const [realHead, simHead] = await both('/', { method: 'HEAD' });
      alike(t, 'HEAD /', realHead.status, simHead.status, { sim: 404, why: 'Ollama answers HEAD on /, /api/version and /api/tags; the simulator only GET' });
      alike(t, 'content-type of /api/*', realPs.headers.get('content-type'), simPs.headers.get('content-type'), { sim: 'application/json', why: "gin's c.JSON adds charset=utf-8 on the native API; the OpenAI routes send application/json" });
    });

    await t.test('the listing: same fields, an embedding model listed first, the chat model matched', async (t) => {
      const [real, simulated] = await both('/v1/models');
      alike(t, '/v1/models fields', [real.body.object, Object.keys(real.body.data[0])], [simulated.body.object, Object.keys(simulated.body.data[0])]);
      alike(t, '/v1/models owned_by', real.body.data.map((m: { owned_by: string }) => m.owned_by), simulated.body.data.map((m: { owned_by: string }) => m.owned_by));
      for (const r of [real, simulated]) {
        assert.equal(servers.ollama.matchModel(r.body.data, CHAT_MODEL), `${CHAT_MODEL}:latest`);
        assert.notEqual(r.body.data[0].id, `${CHAT_MODEL}:latest`, 'the model that cannot chat lists first');
      }
      const [realTags, simTags] = await both('/api/tags');
      alike(t, '/api/tags fields', Object.keys(realTags.body.models[0]).sort(), Object.keys(simTags.body.models[0]).sort());
      alike(t, '/api/tags details fields', Object.keys(realTags.body.models[0].details).sort(), Object.keys(simTags.body.models[0].details).sort());
      const [realOne, simOne] = await both(`/v1/models/${CHAT_MODEL}`);
      alike(t, 'GET /v1/models/NAME', [realOne.status, realOne.body.id], [simOne.status, simOne.body?.id], { sim: [404, undefined], why: 'Ollama serves /v1/models/:model (the id as asked); the simulator has no such route' });
    });

    await t.test('the cold load: headers only with the first token, a client that gives up aborts it, /api/ps lists the model after', async (t) => {
      const simLoading = performance.now();
      assert.equal(await giveUpWhileLoading(server.url, async () => (await server.runners()).length > 0), 'AbortError');
      assert.equal(await giveUpWhileLoading(sim.url, async () => performance.now() - simLoading > 100), 'AbortError'); // it loads for 500 ms
      await sleep(1000);
      const [realPs, simPs] = await both('/api/ps');
      alike(t, '/api/ps after an aborted load', realPs.body, simPs.body);
      await both('/v1/chat/completions', postJson(ask({ max_tokens: 1 })));
      const [realLoaded, simLoaded] = await both('/api/ps');
      alike(t, '/api/ps entry fields', Object.keys(realLoaded.body.models[0]).sort(), Object.keys(simLoaded.body.models[0]).sort());
      alike(t, '/api/ps names', realLoaded.body.models.map((m: { name: string }) => m.name), simLoaded.body.models.map((m: { name: string }) => m.name));
    });

    await t.test('streams: the chunks of thinking on and off, finish and usage, [DONE]', async (t) => {
      const version = 'Ollama v0.24.0 repeats role "assistant" in every delta and sends finish_reason on a last chunk with content ""; v0.32.6 and later (the flavor: openai.go ToStreamChunks, FinishChunk) name the role in the first chunk only and finish with a delta of its own, {}';
      const body = ask({ stream: true, stream_options: { include_usage: true } });
      const [real, simulated] = await both('/v1/chat/completions', postJson(body));
      alike(t, 'stream content-type', real.headers.get('content-type'), simulated.headers.get('content-type'), { sim: 'text/event-stream; charset=utf-8', why: 'Ollama sends text/event-stream without a charset' });
      const [r, s] = [events(real.text), events(simulated.text)];
      alike(t, 'stream ends with [DONE], finish stop, reasoning then content', [r.done, r.finish, r.order], [s.done, s.finish, s.order]);
      alike(t, 'chunk fields', Object.keys(r.chunks[0]!), Object.keys(s.chunks[0]!));
      alike(t, 'usage fields', Object.keys(r.usage!), Object.keys(s.usage!));
      assert.deepEqual(skeleton(real.text), ['reasoning {content="",reasoning,role}', 'content {content,role}', 'finish stop {content="",role}', 'usage {completion_tokens,prompt_tokens,total_tokens}']);
      alike(t, 'thinking-on stream skeleton', skeleton(real.text), skeleton(simulated.text), { sim: ['reasoning {content="",reasoning,role}', 'reasoning {content="",reasoning}', 'content {content}', 'finish stop {}', 'usage {completion_tokens,prompt_tokens,total_tokens}'], why: version });
      const off = ask({ stream: true, reasoning_effort: 'none', max_tokens: 2 });
      const [realOff, simOff] = await both('/v1/chat/completions', postJson(off));
      assert.deepEqual(skeleton(realOff.text), ['content {content,role}', 'finish length {content="",role}']);
      alike(t, 'thinking-off stream skeleton, cut by max_tokens, no usage asked', skeleton(realOff.text), skeleton(simOff.text), { sim: ['content {content,role}', 'content {content}', 'finish length {}'], why: version });
    });

    await t.test('a whole completion: the message with its reasoning, finish and usage', async (t) => {
      const [real, simulated] = await both('/v1/chat/completions', postJson(ask()));
      alike(t, 'chat.completion fields', [Object.keys(real.body), Object.keys(real.body.choices[0]), Object.keys(real.body.choices[0].message)], [Object.keys(simulated.body), Object.keys(simulated.body.choices[0]), Object.keys(simulated.body.choices[0].message)]);
      const [realTagged, simTagged] = await both('/v1/chat/completions', postJson(ask({ model: `${CHAT_MODEL}:latest`, reasoning_effort: 'none' })));
      alike(t, 'the answer names the model as asked', realTagged.body.model, simTagged.body.model, { sim: CHAT_MODEL, why: 'Ollama echoes the requested name (tiny-qwen3:latest); the simulator always says its own' });
    });

    await t.test('errors: unknown model, a model that cannot chat, bad JSON, no model, no messages, max_tokens 0, reasoning efforts', async (t) => {
      const chat = (body: unknown) => both('/v1/chat/completions', postJson(body));
      const [realMissing, simMissing] = await chat(ask({ model: 'nope' }));
      alike(t, 'unknown model', [realMissing.status, realMissing.body], [simMissing.status, simMissing.body]);
      assert.deepEqual([realMissing.status, realMissing.body], [404, { error: { message: "model 'nope' not found", type: 'not_found_error', param: null, code: null } }]);
      // Each lists an embedding model: chat to it.
      const simEmbedding = (await answer(sim.url, '/v1/models')).body.data.map((m: { id: string }) => m.id).find((id: string) => !servers.ollama.matchModel([{ id }], CHAT_MODEL));
      const [realEmb, simEmb] = [await answer(server.url, '/v1/chat/completions', postJson(ask({ model: EMBEDDING_MODEL }))), await answer(sim.url, '/v1/chat/completions', postJson(ask({ model: simEmbedding })))];
      assert.deepEqual([realEmb.status, realEmb.body.error.message, realEmb.body.error.type], [400, `"${EMBEDDING_MODEL}" does not support chat`, 'invalid_request_error']);
      alike(t, 'chat to the listed embedding model', [realEmb.status, realEmb.body.error.type], [simEmb.status, simEmb.body.error.type], { sim: [404, 'not_found_error'], why: `Ollama refuses chat to an embedding model it lists with 400 '"NAME" does not support chat'; the simulator lists ${simEmbedding} but answers 404 "not found" for it` });
      const status = async (body: unknown) => {
        const [real, simulated] = await chat(body);
        return { real: [real.status, real.body?.error?.type, real.body?.error?.message], sim: [simulated.status, simulated.body?.error?.type, simulated.body?.error?.message] };
      };
      const json = await status('{nope');
      assert.deepEqual(json.real, [400, 'invalid_request_error', "invalid character 'n' looking for beginning of object key string"]);
      alike(t, 'invalid JSON', json.real, json.sim, { sim: [400, 'invalid_request_error', 'Invalid JSON in request body'], why: "the message: Go's encoding/json error text" });
      const noModel = await status({ messages: [{ role: 'user', content: 'x' }], max_tokens: 1 });
      assert.deepEqual(noModel.real, [400, 'invalid_request_error', 'model is required']);
      alike(t, 'no model', noModel.real, noModel.sim, { sim: [200, undefined, undefined], why: 'Ollama requires model; the simulator answers with its own' });
      const empty = await status(ask({ messages: [] }));
      assert.deepEqual(empty.real, [400, 'invalid_request_error', "[] is too short - 'messages'"]);
      alike(t, 'empty messages', empty.real, empty.sim, { sim: [400, 'invalid_request_error', 'messages: expected a non-empty list of {role, content} objects'], why: 'the message' });
      const zero = await status(ask({ max_tokens: 0, reasoning_effort: 'none' }));
      assert.deepEqual(zero.real, [200, undefined, undefined]);
      alike(t, 'max_tokens 0', zero.real, zero.sim, { sim: [400, 'invalid_request_error', 'max_tokens must be at least 1, got 0.'], why: 'Ollama takes max_tokens 0 as no limit (num_predict 0) and answers in full' });
      const wrongType = await status(ask({ max_tokens: 'x' }));
      assert.deepEqual(wrongType.real, [400, 'invalid_request_error', 'json: cannot unmarshal string into Go struct field ChatCompletionRequest.max_tokens of type int']);
      alike(t, 'max_tokens "x"', wrongType.real, wrongType.sim, { sim: [400, 'invalid_request_error', 'max_tokens must be at least 1, got "x".'], why: "the message: Go's encoding/json error text" });
      const bogus = await status(ask({ reasoning_effort: 'bogus' }));
      assert.deepEqual(bogus.real, [400, 'invalid_request_error', 'invalid reasoning value: \'bogus\' (must be "high", "medium", "low", "max", or "none")']);
      alike(t, 'reasoning_effort "bogus"', bogus.real, bogus.sim, { sim: [400, 'invalid_request_error', 'invalid reasoning value: \'bogus\' (must be "minimal", "low", "medium", "high", "max", or "none")'], why: 'the list of efforts: v0.24.0 to v0.32.6 accept high, medium, low, max, none; v0.32.15 adds minimal, xhigh, ultra with another message; the flavor accepts the newer list with a message of neither' });
      const minimal = await status(ask({ reasoning_effort: 'minimal', max_tokens: 1 }));
      alike(t, 'reasoning_effort "minimal"', minimal.real, minimal.sim, { sim: [200, undefined, undefined], why: 'v0.24.0 refuses "minimal" (400); from v0.32.15 it is taken as "low"' });
    });

    await t.test('the exporter\'s round reads both alike: cold (load seconds, model not loaded), then warm', async () => {
      await unloaded(server.url);
      const simCold = await startSim({ host: '127.0.0.1', port: 0, flavor: 'ollama', model: CHAT_MODEL, ttftMs: 5, tokensPerSecond: 1000, startupDelayMs: 500, onCrash: () => {} });
      t.after(() => simCold.close());
      for (const url of [server.url, simCold.url]) {
        const cold = await round(url, 'cold');
        assert.equal(cold.report.up, true, `${url}: ${explain(cold)}`);
        assert.equal(cold.values['llm_server_model_loaded{progress}'], 0, url);
        assert.ok(cold.values['llm_probe_model_load_seconds{chat}']! > 0.2, url);
        const warm = await round(url, 'plain');
        assert.equal(warm.report.up, true, `${url}: ${explain(warm)}`);
        assert.equal(warm.values['llm_server_model_loaded{progress}'], 1, url);
      }
    });
  });

  await t.test('ollama serve killed (SIGKILL): connection refused at once, up 0; its model runner lives on, orphaned', async () => {
    await round(server.url, 'plain'); // the model loaded
    const runners = await server.runners();
    assert.ok(runners.length >= 1);
    process.kill(server.pid, 'SIGKILL');
    for (let i = 0; i < 100 && !server.exited(); i++) await sleep(20);
    assert.ok(server.exited());
    const dead = await round(server.url, 'short');
    assert.deepEqual(reasons(dead.report), { models: 'connect_refused', progress: 'connect_refused', chat: 'connect_refused' }, explain(dead));
    assert.ok(dead.report.durationSeconds < 1, `${dead.report.durationSeconds} s`);
    assert.equal(dead.values['llm_server_up'], 0);
    // A restart must stop the whole process group: the runner (and the memory it holds) outlives serve.
    assert.deepEqual((await server.runners()).filter((pid) => runners.includes(pid)), runners);
  });
});
