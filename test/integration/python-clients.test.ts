// The seed article's clients in the seed article's language: the Python openai SDK and LangChain's
// ChatOpenAI (langchain-openai, called exactly as the article calls it: streaming=True, extra_body
// {enable_thinking, return_reasoning}) from PyPI, against every simulator flavor, the real
// llama.cpp llama-server and the real Ollama. What a user of those clients sees: a streamed answer,
// reasoning where the client surfaces it, the article's thinking switch doing nothing on these
// servers while each server's own switch works, usage only when asked for.
//
// The clients live in a venv outside the checkout, made by test/real-server/setup-python-clients.sh
// from test/python/requirements.txt; the scripts in test/python/ print a JSON summary per request.
// Python reaches nothing beyond loopback: an audit hook in test/python/_common.py fails any other
// connect or DNS lookup and reports it (`outside`), so a library fetching at run time (tiktoken's
// encodings, LangSmith) fails the test instead of hanging.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { flavorNames, flavors, type FlavorName } from '../../src/sim/flavors/index.ts';
import { startSim, type RunningSim } from '../../src/sim/server.ts';
import { requireLlamaServer, startLlamaServer, type RunningLlamaServer } from '../helpers/llama-server.ts';
import { CHAT_MODEL, chatModelfile, requireOllama, startOllama, type RunningOllama } from '../helpers/ollama.ts';

const SETUP_COMMAND = 'test/real-server/setup-python-clients.sh';
const PYTHON_DIR = fileURLToPath(new URL('../python/', import.meta.url));
/** One client run (five requests) must end within this, whatever hangs; Python's own deadline is shorter. */
const RUN_TIMEOUT_MS = 60_000;

// --- finding the venv ------------------------------------------------------------------------------

function cacheRoot(): string {
  return process.env.QWEN_SENTINEL_CACHE || join(homedir(), '.cache', 'qwen-sentinel');
}

/** The venv's python for the current requirements.txt (the directory is keyed by its hash), if set up. */
function findPythonClients(): string | undefined {
  const hash = createHash('sha256').update(readFileSync(join(PYTHON_DIR, 'requirements.txt'))).digest('hex').slice(0, 16);
  const dir = join(cacheRoot(), `python-clients-${hash}`);
  const python = join(dir, 'bin', 'python');
  return existsSync(join(dir, 'ready')) && existsSync(python) ? python : undefined;
}

/** Like requireLlamaServer: the python, or (outside CI) undefined after a loud warning; under CI=true, a throw. */
function requirePythonClients(): string | undefined {
  const found = findPythonClients();
  if (found) return found;
  const where = `${cacheRoot()}/python-clients-<hash of test/python/requirements.txt>/ready`;
  if (process.env.CI === 'true') throw new Error(`the Python clients are required in CI but are not set up (no ${where}). Set them up: ${SETUP_COMMAND}`);
  const message = `!!! SKIPPED: Python clients not set up (no ${where}); the Python client tests do not run. Set them up (about a minute): ${SETUP_COMMAND}`;
  process.stderr.write(`\n${'!'.repeat(message.length)}\n${message}\n${'!'.repeat(message.length)}\n\n`);
  return undefined;
}

// --- running a client script -----------------------------------------------------------------------

/** What both scripts report for every run; the rest is per client. */
interface RunBase {
  error?: { type: string; message: string; where: string };
  seconds: number;
  /** The request bodies as the openai SDK put them on the wire during this run. */
  sent: Array<Record<string, unknown>>;
}
interface Usage { prompt_tokens: number; completion_tokens: number; total_tokens: number }
interface OpenAIRun extends RunBase {
  content: string;
  reasoning: string;
  reasoning_fields: string[];
  order?: Array<'reasoning' | 'content'>;
  usage: Usage | null;
  usage_chunks?: number;
  chunks?: number;
  roles?: string[];
  finish_reason: string | null;
}
interface LangChainRun extends RunBase {
  content: string;
  additional_kwargs: Record<string, unknown>;
  response_metadata: Record<string, unknown>;
  usage_metadata: { input_tokens: number; output_tokens: number; total_tokens: number } | null;
  chunks: number;
  chunks_with_text: number;
}
interface Summary<R> {
  client: string;
  versions: Record<string, string>;
  runs: Record<string, R>;
  /** Connections or lookups beyond loopback that the guard refused. */
  outside: string[];
}

/** The environment of a client: no proxy (it would carry loopback traffic away), no OpenAI or LangSmith settings. */
function clientEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^(https?|all|no)_proxy$/i.test(key) || /^(OPENAI|LANGSMITH|LANGCHAIN)_/.test(key)) continue;
    env[key] = value;
  }
  return { ...env, NO_PROXY: '*', PYTHONDONTWRITEBYTECODE: '1', PYTHONIOENCODING: 'utf-8', LANGSMITH_TRACING: 'false', LANGCHAIN_TRACING_V2: 'false' };
}

interface Target {
  /** The OpenAI base URL, with /v1. */
  baseUrl: string;
  model: string;
  /** Extra body that turns thinking off in this server's own dialect. */
  thinkingOff: Record<string, unknown>;
}

/** Runs python (its own child process, killed if it outlives RUN_TIMEOUT_MS); rejects unless it exits 0. */
async function runPython(python: string, args: string[], what: string, env: NodeJS.ProcessEnv = {}): Promise<string> {
  const child = spawn(python, args, { cwd: PYTHON_DIR, env: { ...clientEnv(), ...env }, stdio: ['ignore', 'pipe', 'pipe'], timeout: RUN_TIMEOUT_MS, killSignal: 'SIGKILL' });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr = (stderr + s).slice(-8000)));
  const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  if (code !== 0) throw new Error(`${what} exited with ${signal ?? `code ${code}`}${signal === 'SIGKILL' ? ` (over ${RUN_TIMEOUT_MS} ms)` : ''}\n--- stderr ---\n${stderr}\n--- stdout ---\n${stdout.slice(0, 4000)}`);
  return stdout;
}

/** Runs one client script against a target and parses its summary. */
async function runClient<R>(python: string, script: 'openai_client.py' | 'langchain_client.py', target: Target): Promise<Summary<R>> {
  const args = [
    join(PYTHON_DIR, script),
    '--base-url', target.baseUrl,
    '--model', target.model,
    '--api-key', 'EMPTY',
    '--thinking-off', JSON.stringify(target.thinkingOff),
    '--request-timeout', '20',
    '--deadline', String(RUN_TIMEOUT_MS / 1000 - 10),
  ];
  const stdout = await runPython(python, args, script);
  try {
    return JSON.parse(stdout) as Summary<R>;
  } catch (error) {
    throw new Error(`${script} printed no JSON summary: ${(error as Error).message}\n--- stdout ---\n${stdout.slice(0, 4000)}`, { cause: error });
  }
}

/** No run failed and nothing left loopback; returns the runs. */
function runsOf<R extends RunBase>(summary: Summary<R>): Record<string, R> {
  assert.deepEqual(summary.outside, [], 'the client reached for the network beyond loopback');
  for (const [name, run] of Object.entries(summary.runs)) assert.equal(run.error, undefined, `${summary.client} run ${name}: ${JSON.stringify(run.error)}`);
  return summary.runs;
}

// --- what each server answers ----------------------------------------------------------------------

interface Expect {
  content: RegExp;
  reasoning: RegExp;
  /** The delta fields that carry reasoning in a stream, and the message fields when not streamed. */
  streamFields: string[];
  wholeFields: string[];
}

/** The simulator's canned Qwen3 reply (src/sim/completion.ts) and each flavor's reasoning field(s). */
const simExpect = (flavor: FlavorName): Expect => {
  const fields = { vllm: ['reasoning', 'reasoning_content'], sglang: ['reasoning_content'], llamacpp: ['reasoning_content'], ollama: ['reasoning'] }[flavor];
  return { content: /^I am Qwen, a large language model created by Alibaba Cloud\./, reasoning: /^Okay, the user wants a reply\. I will introduce myself briefly\.$/, streamFields: fields, wholeFields: fields };
};

/** The tiny generated model's fixed chain (test/real-server/write-tiny-qwen3-gguf.ts). */
const tinyModelExpect = (field: string): Expect => ({ content: /^OK!$/, reasoning: /^Okay, the user wants a reply\.$/, streamFields: [field], wholeFields: [field] });

const thinkingOffFor = (flavor: FlavorName): Record<string, unknown> => (flavor === 'ollama' ? { reasoning_effort: 'none' } : { chat_template_kwargs: { enable_thinking: false } });

// --- the assertions, per client ----------------------------------------------------------------------

function checkOpenAI(summary: Summary<OpenAIRun>, expect: Expect): void {
  const runs = runsOf(summary);
  const article = runs.article!;
  // Streamed: reasoning first, then the answer; one role, a finish reason, usage in one chunk of its own.
  assert.match(article.content, expect.content);
  assert.match(article.reasoning, expect.reasoning);
  assert.deepEqual(article.reasoning_fields, expect.streamFields, 'the delta fields that carried reasoning');
  assert.deepEqual(article.order, ['reasoning', 'content']);
  assert.equal(article.roles?.[0], 'assistant');
  assert.equal(article.finish_reason, 'stop');
  assert.equal(article.usage_chunks, 1);
  assert.ok(article.usage && article.usage.completion_tokens > 0, JSON.stringify(article.usage));
  assert.equal(article.usage.total_tokens, article.usage.prompt_tokens + article.usage.completion_tokens);
  assert.ok((article.chunks ?? 0) > 2, `a stream, not one piece: ${article.chunks} chunks`);
  // The SDK puts extra_body keys at the top level of the body, next to the stream_options it was asked for.
  assert.deepEqual(
    { enable_thinking: article.sent[0]?.enable_thinking, return_reasoning: article.sent[0]?.return_reasoning, stream_options: article.sent[0]?.stream_options, chat_template_kwargs: article.sent[0]?.chat_template_kwargs },
    { enable_thinking: true, return_reasoning: true, stream_options: { include_usage: true }, chat_template_kwargs: undefined },
  );

  // The article's switch: top-level enable_thinking is not a field any of these servers reads.
  const articleOff = runs.article_off!;
  assert.equal(articleOff.sent[0]?.enable_thinking, false);
  assert.equal(articleOff.reasoning, article.reasoning, 'top-level enable_thinking: false is ignored, thinking stays on');
  assert.equal(articleOff.usage?.completion_tokens, article.usage.completion_tokens);

  // The server's own switch works: the same answer, no reasoning, fewer tokens.
  const nativeOff = runs.native_off!;
  assert.equal(nativeOff.content, article.content);
  assert.equal(nativeOff.reasoning, '');
  assert.deepEqual(nativeOff.reasoning_fields, []);
  assert.deepEqual(nativeOff.order, ['content']);
  assert.equal(nativeOff.finish_reason, 'stop');
  assert.ok(nativeOff.usage && nativeOff.usage.completion_tokens < article.usage.completion_tokens, JSON.stringify(nativeOff.usage));

  // Usage only when asked for: the SDK sends no stream_options of its own.
  const noUsage = runs.no_usage!;
  assert.equal(noUsage.sent[0]?.stream_options, undefined);
  assert.equal(noUsage.usage, null);
  assert.equal(noUsage.usage_chunks, 0);
  assert.equal(noUsage.content, article.content);
  assert.equal(noUsage.reasoning, article.reasoning);

  // Not streamed: the same answer and reasoning, on the message.
  const whole = runs.whole!;
  assert.equal(whole.content, article.content);
  assert.equal(whole.reasoning, article.reasoning);
  assert.deepEqual(whole.reasoning_fields, expect.wholeFields);
  assert.equal(whole.finish_reason, 'stop');
  assert.equal(whole.usage?.completion_tokens, article.usage.completion_tokens);
}

function checkLangChain(summary: Summary<LangChainRun>, expect: Expect): void {
  const runs = runsOf(summary);
  const noReasoning = (kwargs: Record<string, unknown>) => Object.keys(kwargs).filter((k) => /reason|think/i.test(k));

  // The article's exact call: the answer, streamed (the callback sees chunks), and nothing else.
  const article = runs.article!;
  assert.match(article.content, expect.content);
  assert.doesNotMatch(article.content, /<think>|Okay, the user/, 'reasoning kept apart from content');
  // langchain-openai's ChatOpenAI drops reasoning / reasoning_content (it reads only OpenAI's own
  // fields), so `return_reasoning: True` gives the article's user no reasoning at all.
  assert.deepEqual(article.additional_kwargs, {});
  assert.equal(article.response_metadata.finish_reason, 'stop');
  // With a base_url of its own ChatOpenAI asks for no usage (stream_usage is off unless set).
  assert.equal(article.usage_metadata, null);
  assert.ok(article.chunks_with_text >= 2, `streamed: ${article.chunks_with_text} chunks with text`);
  const sent = article.sent[0] ?? {};
  assert.deepEqual(
    { stream: sent.stream, temperature: sent.temperature, enable_thinking: sent.enable_thinking, return_reasoning: sent.return_reasoning, stream_options: sent.stream_options },
    { stream: true, temperature: 0.5, enable_thinking: true, return_reasoning: true, stream_options: undefined },
  );

  const withUsage = runs.article_usage!;
  assert.deepEqual(withUsage.sent[0]?.stream_options, { include_usage: true });
  assert.equal(withUsage.content, article.content);
  const thinkingTokens = withUsage.usage_metadata?.output_tokens ?? 0;
  assert.ok(thinkingTokens > 0, JSON.stringify(withUsage.usage_metadata));

  // The article's switch changes nothing; the server's own one removes the thinking tokens. A
  // LangChain user sees the difference only in usage (and in time), never in the message.
  const articleOff = runs.article_off!;
  assert.equal(articleOff.content, article.content);
  assert.equal(articleOff.usage_metadata?.output_tokens, thinkingTokens, 'top-level enable_thinking: false is ignored');
  const nativeOff = runs.native_off!;
  assert.equal(nativeOff.content, article.content);
  assert.ok((nativeOff.usage_metadata?.output_tokens ?? Infinity) < thinkingTokens, JSON.stringify(nativeOff.usage_metadata));
  assert.deepEqual(noReasoning(nativeOff.additional_kwargs), []);

  // streaming=False: the same answer, reasoning dropped the same way.
  const whole = runs.whole!;
  assert.notEqual(whole.sent[0]?.stream, true);
  assert.equal(whole.content, article.content);
  assert.deepEqual(noReasoning(whole.additional_kwargs), []);
  assert.equal(whole.response_metadata.finish_reason, 'stop');
  assert.equal(whole.usage_metadata?.output_tokens, thinkingTokens);
}

// --- the servers -------------------------------------------------------------------------------------

const python = requirePythonClients();
const skipAll = !python && 'Python clients not set up';

// The guard that makes `outside: []` mean something: tiktoken asking for an encoding it has not
// cached (what LangChain's token counting would do) fails at once, at the DNS lookup, and is reported.
test("the clients' network guard stops a download before any packet leaves", { skip: skipAll }, async () => {
  const cache = mkdtempSync(join(tmpdir(), 'tiktoken-'));
  try {
    const code = [
      'import json, _common',
      '_common.install_guard()',
      'import tiktoken',
      'try:',
      '    tiktoken.get_encoding("cl100k_base"); error = None',
      'except Exception as e:',
      '    error = type(e).__name__',
      'print(json.dumps({"error": error, "outside": _common.outside}))',
    ].join('\n');
    const result = JSON.parse(await runPython(python!, ['-c', code], 'tiktoken under the guard', { TIKTOKEN_CACHE_DIR: cache })) as { error: string | null; outside: string[] };
    assert.notEqual(result.error, null);
    assert.deepEqual(result.outside, ["socket.getaddrinfo 'openaipublic.blob.core.windows.net'"]);
  } finally {
    rmSync(cache, { recursive: true, force: true });
  }
});

/** Both clients against one server: one test each. */
function clientTests(label: string, target: () => Target, expect: () => Expect, skip: string | false = skipAll): void {
  test(`openai SDK (Python) against ${label}`, { skip }, async (t) => {
    const summary = await runClient<OpenAIRun>(python!, 'openai_client.py', target());
    t.diagnostic(`openai ${summary.versions.openai}: ${JSON.stringify(summary.runs.article?.content)}, reasoning in ${summary.runs.article?.reasoning_fields}, ${Object.entries(summary.runs).map(([n, r]) => `${n} ${r.seconds}s`).join(', ')}`);
    checkOpenAI(summary, expect());
  });
  test(`LangChain ChatOpenAI (Python), the article's call, against ${label}`, { skip }, async (t) => {
    const summary = await runClient<LangChainRun>(python!, 'langchain_client.py', target());
    t.diagnostic(`langchain-openai ${summary.versions['langchain-openai']}: ${JSON.stringify(summary.runs.article?.content)}, ${Object.entries(summary.runs).map(([n, r]) => `${n} ${r.seconds}s`).join(', ')}`);
    checkLangChain(summary, expect());
  });
}

for (const flavor of flavorNames) {
  describe(`simulator, ${flavor} flavor`, { concurrency: 2 }, () => {
    let sim: RunningSim | undefined;
    before(async () => {
      if (skipAll) return;
      sim = await startSim({ host: '127.0.0.1', port: 0, flavor, ttftMs: 5, tokensPerSecond: 2000, onCrash: () => {} });
    });
    after(() => sim?.close());
    clientTests(`the ${flavor} flavor`, () => ({ baseUrl: `${sim!.url}/v1`, model: flavors[flavor].server.exampleModel, thinkingOff: thinkingOffFor(flavor) }), () => simExpect(flavor));
  });
}

describe('real llama.cpp llama-server', { concurrency: 2 }, () => {
  const files = skipAll ? undefined : requireLlamaServer();
  const skip = skipAll || (!files && 'llama-server not built');
  let server: RunningLlamaServer | undefined;
  let model = '';
  before(async () => {
    if (skip) return;
    server = await startLlamaServer();
    // The id is the model path unless --alias is given; ask, as a client would.
    const listing = (await (await fetch(`${server.url}/v1/models`)).json()) as { data: Array<{ id: string }> };
    model = listing.data[0]!.id;
  });
  after(() => server?.stop());
  clientTests('llama-server', () => ({ baseUrl: `${server!.url}/v1`, model, thinkingOff: { chat_template_kwargs: { enable_thinking: false } } }), () => tinyModelExpect('reasoning_content'), skip);
});

// The real Ollama (test/helpers/ollama.ts; built by test/real-server/build-ollama.sh) with the tiny
// model under Qwen3's template as Ollama's library ships it, so it has the thinking capability.
describe('real Ollama', { concurrency: 2 }, () => {
  const files = skipAll ? undefined : requireOllama();
  const skip = skipAll || (!files && 'Ollama not built');
  let server: RunningOllama | undefined;
  before(async () => {
    if (skip) return;
    server = await startOllama();
    await server.create(CHAT_MODEL, chatModelfile(files!.model));
  });
  after(() => server?.stop());
  // Ollama reads no chat_template_kwargs: only reasoning_effort "none" turns thinking off.
  clientTests('Ollama', () => ({ baseUrl: `${server!.url}/v1`, model: CHAT_MODEL, thinkingOff: { reasoning_effort: 'none' } }), () => tinyModelExpect('reasoning'), skip);
});
