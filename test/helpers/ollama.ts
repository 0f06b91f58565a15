// A real Ollama (`ollama serve`, CPU build) with the tiny generated Qwen3 model, for tests that need
// the real thing the simulator's ollama flavor imitates. Built once by
// test/real-server/build-ollama.sh into a cache outside the checkout; the model is the one
// build-llama-server.sh writes. This module finds and runs them, each server in a temporary
// directory of its own (models, HOME), in a process group of its own.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cacheRoot, finishedBuilds } from './peer-cache.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { freePort } from '../../src/lib/system.ts';
import { CHAT_MODEL, chatModelfile, EMBEDDING_MODEL, embeddingModelfile, writeEmbeddingVariant } from '../real-server/ollama-models.ts';
import { findLlamaServer, BUILD_COMMAND as LLAMA_BUILD_COMMAND } from './llama-server.ts';

export const BUILD_COMMAND = 'test/real-server/build-ollama.sh';
export { CHAT_MODEL, chatModelfile, EMBEDDING_MODEL, embeddingModelfile, writeEmbeddingVariant };

export interface OllamaFiles {
  binary: string;
  /** The tiny Qwen3 GGUF (build-llama-server.sh writes it). */
  model: string;
}

export interface RunningOllama {
  /** Origin, without /v1: http://127.0.0.1:PORT */
  url: string;
  /** `ollama serve`, also the id of its process group (the model runners it starts are in it). */
  pid: number;
  process: ChildProcess;
  /** Its temporary directory: OLLAMA_MODELS is models/ in it, and HOME. */
  dir: string;
  /** Everything it logged so far (the tail, past 1 MB). */
  output(): string;
  /** `ollama create NAME -f Modelfile`, the Modelfile text given. */
  create(name: string, modelfile: string): Promise<void>;
  /** Pids of the model runners (`ollama runner --model ...`) it started that are still alive. */
  runners(): Promise<number[]>;
  /** Whether `ollama serve` itself has exited (it may have been killed by a test). */
  exited(): boolean;
  /** Stops the whole process group (SIGTERM, SIGKILL after 5 s) and removes the directory. */
  stop(): Promise<void>;
}

/**
 * The cached ollama binary and the tiny model, or undefined when either is not built. Only a
 * directory with the `ready` marker counts; with several Ollama versions cached, the most recently
 * finished one wins.
 */
export function findOllama(): OllamaFiles | undefined {
  const model = findLlamaServer()?.model;
  const dir = finishedBuilds('ollama-', ['bin/ollama'])[0];
  return dir !== undefined && model !== undefined ? { binary: join(dir, 'bin', 'ollama'), model } : undefined;
}

/**
 * Like requireBinary: the files, or (outside CI) undefined after a loud warning so the caller
 * skips. Under CI=true a missing build throws, since a skip there would hide a broken setup.
 */
export function requireOllama(): OllamaFiles | undefined {
  const found = findOllama();
  if (found) return found;
  const what = findLlamaServer() ? `ollama not built (no ${cacheRoot()}/ollama-*/ready)` : `the tiny Qwen3 model not written (no ${cacheRoot()}/llama.cpp-*/ready)`;
  const how = `${LLAMA_BUILD_COMMAND} && ${BUILD_COMMAND}`;
  if (process.env.CI === 'true') throw new Error(`a real Ollama is required in CI but ${what}. Build it: ${how}`);
  const message = `!!! SKIPPED: ${what}; the real-Ollama tests do not run. Build it (~15 min): ${how}`;
  process.stderr.write(`\n${'!'.repeat(message.length)}\n${message}\n${'!'.repeat(message.length)}\n\n`);
  return undefined;
}

const run = promisify(execFile);

export interface StartOptions {
  /** OLLAMA_KEEP_ALIVE: how long a model stays loaded after its last request (Ollama's default 5m). */
  keepAlive?: string;
  /** More environment for `ollama serve`. */
  env?: Record<string, string>;
  /** How long `ollama serve` may take to answer GET / (it is up in well under a second). */
  timeoutMs?: number;
}

/**
 * Starts `ollama serve` on 127.0.0.1 (a free port) in a temporary directory and process group of
 * its own, and resolves once GET / answers "Ollama is running". No model is created or loaded.
 */
export async function startOllama(options: StartOptions = {}): Promise<RunningOllama> {
  const files = findOllama();
  if (!files) throw new Error(`ollama not built; run ${BUILD_COMMAND}`);
  const dir = await mkdtemp(join(tmpdir(), 'qs-ollama-'));
  const port = await freePort('127.0.0.1');
  const url = `http://127.0.0.1:${port}`;
  // Nothing of the caller's Ollama settings; its own models and HOME (where it writes a key pair).
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('OLLAMA_')));
  const env: NodeJS.ProcessEnv = {
    ...inherited,
    HOME: dir,
    OLLAMA_HOST: `127.0.0.1:${port}`,
    OLLAMA_MODELS: join(dir, 'models'),
    OLLAMA_NO_CLOUD: '1',
    OLLAMA_NUM_PARALLEL: '1',
    ...(options.keepAlive === undefined ? {} : { OLLAMA_KEEP_ALIVE: options.keepAlive }),
    ...options.env,
  };
  // detached: a process group of its own, so the model runners it spawns are stopped with it.
  const child = spawn(files.binary, ['serve'], { cwd: dir, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const keep = (chunk: Buffer) => {
    log = (log + chunk.toString('utf8')).slice(-1_000_000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  let exited: string | undefined;
  const exit = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = `exited with ${signal ?? `code ${code}`}`;
      // A runner left behind (serve killed alone) holds the pipes: stop reading them.
      child.stdout.destroy();
      child.stderr.destroy();
      resolve();
    });
    child.once('error', (error) => {
      exited ??= `failed: ${error.message}`;
      resolve();
    });
  });
  const pid = child.pid;
  if (pid === undefined) {
    await exit;
    await rm(dir, { recursive: true, force: true });
    throw new Error(`cannot spawn ${files.binary}: ${exited}`);
  }

  const signalGroup = (signal: NodeJS.Signals): boolean => {
    try {
      process.kill(-pid, signal);
      return true;
    } catch {
      return false; // no process left in the group
    }
  };
  // Model runners: `ollama runner --model BLOB ...` in its process group (at start-up it also runs
  // one briefly without --model, to discover GPUs).
  const runners = async (): Promise<number[]> => {
    const found: number[] = [];
    for (const name of await readdir('/proc')) {
      if (!/^\d+$/.test(name) || Number(name) === pid) continue;
      const stat = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => '');
      // Fields after the command's closing parenthesis: state, ppid, pgrp, ...
      const pgrp = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
      if (pgrp !== pid) continue;
      const argv = (await readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '')).split('\0');
      if (argv.includes('runner') && argv.includes('--model')) found.push(Number(name));
    }
    return found;
  };
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    signalGroup('SIGCONT'); // a test may have left it stopped
    if (signalGroup('SIGTERM')) {
      const deadline = Date.now() + 5000;
      while (Date.now() < deadline && (exited === undefined || (await runners()).length > 0)) await sleep(50);
      signalGroup('SIGKILL');
      await exit;
      for (let i = 0; i < 100 && (await runners()).length > 0; i++) await sleep(50);
    }
    await rm(dir, { recursive: true, force: true });
  };

  const create = async (name: string, modelfile: string): Promise<void> => {
    const path = join(dir, `${name}.Modelfile`);
    await writeFile(path, modelfile);
    try {
      await run(files.binary, ['create', name, '-f', path], { env, cwd: dir, timeout: 60_000 });
    } catch (error) {
      const e = error as { stdout?: string; stderr?: string; message: string };
      throw new Error(`ollama create ${name} failed: ${e.message}\n${e.stderr ?? ''}\n--- ollama serve output (tail) ---\n${log.slice(-4000)}`, { cause: error });
    }
  };

  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  try {
    for (;;) {
      if (exited !== undefined) throw new Error(`ollama serve ${exited} before answering`);
      if (Date.now() > deadline) throw new Error(`ollama serve not answering after ${options.timeoutMs ?? 30_000} ms`);
      const text = await fetch(url, { signal: AbortSignal.timeout(2000) }).then((r) => r.text(), () => undefined);
      if (text === 'Ollama is running') break;
      await sleep(20);
    }
  } catch (error) {
    await stop();
    throw new Error(`${(error as Error).message}\n--- ollama serve output (tail) ---\n${log.slice(-8000)}`, { cause: error });
  }
  return { url, pid, process: child, dir, output: () => log, create, runners, exited: () => exited !== undefined, stop };
}

/**
 * Starts Ollama with the two models the tests use: the tiny Qwen3 chat model (CHAT_MODEL), then an
 * embedding-only copy of it (EMBEDDING_MODEL), created last so it lists first, as a model pulled
 * after the chat one does. Neither is loaded.
 */
export async function startOllamaWithModels(options: StartOptions = {}): Promise<RunningOllama> {
  const files = findOllama();
  if (!files) throw new Error(`ollama not built; run ${BUILD_COMMAND}`);
  const server = await startOllama(options);
  try {
    await server.create(CHAT_MODEL, chatModelfile(files.model));
    const embedding = join(server.dir, `${EMBEDDING_MODEL}.gguf`);
    await writeEmbeddingVariant(files.model, embedding);
    // Ollama's listing is ordered by modification time at one-second resolution on some file systems.
    await sleep(1100);
    await server.create(EMBEDDING_MODEL, embeddingModelfile(embedding));
    await rm(embedding); // Ollama keeps its own copy as a blob
  } catch (error) {
    await server.stop();
    throw error;
  }
  return server;
}

