// A real llama.cpp `llama-server` with a tiny generated Qwen3 model, for tests that need a real
// OpenAI-compatible model server. Built once by test/real-server/build-llama-server.sh into a cache
// outside the checkout; this module only finds and runs it.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { cacheRoot, finishedBuilds } from './peer-cache.ts';
import { setTimeout as sleep } from 'node:timers/promises';

export const BUILD_COMMAND = 'test/real-server/build-llama-server.sh';

export interface LlamaServerFiles { binary: string; model: string }

/** One run of identical /health answers during start-up: `refused` = nothing listening yet. */
export interface HealthObservation { status: number | 'refused'; body: string; atMs: number; count: number }

export interface RunningLlamaServer {
  url: string;
  pid: number;
  process: ChildProcess;
  /** What /health answered from spawn until 200, consecutive duplicates merged. */
  startup: HealthObservation[];
  /** What each of StartOptions.watch answered meanwhile, polled right after /health. */
  watched: Record<string, HealthObservation[]>;
  /** The last output lines (llama-server logs to stderr), for failure messages. */
  output(): string;
  stop(): Promise<void>;
}

/**
 * The cached server binary and model, or undefined when not built. Only a directory with the
 * `ready` marker counts (the build script writes it last); with several llama.cpp versions
 * cached, the most recently finished one wins.
 */
export function findLlamaServer(): LlamaServerFiles | undefined {
  const dir = finishedBuilds('llama.cpp-', ['bin/llama-server', 'tiny-qwen3.gguf'])[0];
  return dir === undefined ? undefined : { binary: join(dir, 'bin', 'llama-server'), model: join(dir, 'tiny-qwen3.gguf') };
}

/**
 * Like requireBinary: the server files, or (outside CI) undefined after a loud warning so the
 * caller skips. Under CI=true a missing server throws, since a skip there would hide a broken setup.
 */
export function requireLlamaServer(): LlamaServerFiles | undefined {
  const found = findLlamaServer();
  if (found) return found;
  const where = `${cacheRoot()}/llama.cpp-*/ready`;
  if (process.env.CI === 'true') throw new Error(`llama-server is required in CI but is not built (no ${where}). Build it: ${BUILD_COMMAND}`);
  const message = `!!! SKIPPED: llama-server not built (no ${where}); the real-server tests do not run. Build it (10-25 min): ${BUILD_COMMAND}`;
  process.stderr.write(`\n${'!'.repeat(message.length)}\n${message}\n${'!'.repeat(message.length)}\n\n`);
  return undefined;
}

/** A port free right now on 127.0.0.1 (the OS picks it; a tiny race with other processes remains). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  return address.port;
}

export interface StartOptions {
  port?: number;
  /** Extra llama-server arguments; they come last, so they override the defaults below. */
  args?: string[];
  /** How long loading may take before giving up (cold page cache: ~3.5 s measured). */
  timeoutMs?: number;
  /** Further GET paths to poll with /health while the server starts (e.g. /v1/models). */
  watch?: string[];
}

/** The argv that runs the tiny model on 127.0.0.1:port, as the tests (and a remediator) start it. */
export function llamaServerCommand(files: LlamaServerFiles, port: number, extra: string[] = []): string[] {
  return [files.binary, ...llamaServerArgs(files, port, extra)];
}

function llamaServerArgs(files: LlamaServerFiles, port: number, extra: string[]): string[] {
  return [
    '--model', files.model,
    '--host', '127.0.0.1',
    '--port', String(port),
    '--jinja', // the model's own chat template (Qwen3: thinking, enable_thinking) instead of a built-in
    '--metrics',
    '--ctx-size', '512', // small KV cache: fast start, little memory; replies are a few tokens
    '--parallel', '1', // one slot owning the whole context
    '--threads', '1', // one thread: no spin-waiting barrier to stall when another process holds a core
    ...extra,
  ];
}

/** Spawns llama-server on 127.0.0.1 and resolves once /health answers 200. */
export async function startLlamaServer(options: StartOptions = {}): Promise<RunningLlamaServer> {
  const files = findLlamaServer();
  if (!files) throw new Error(`llama-server not built; run ${BUILD_COMMAND}`);
  const port = options.port ?? (await freePort());
  const url = `http://127.0.0.1:${port}`;
  const args = llamaServerArgs(files, port, options.args ?? []);
  const child = spawn(files.binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  // Keep a tail of the log for error messages; the pipes must be drained or the server blocks.
  let tail = '';
  const keep = (chunk: Buffer) => {
    tail = (tail + chunk.toString('utf8')).slice(-8000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  let exited: string | undefined;
  const exit = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = `exited with ${signal ?? `code ${code}`}`;
      resolve();
    });
    // A spawn failure (ENOENT, EACCES) comes as 'error' without 'exit'; unhandled, it would crash.
    child.once('error', (error) => {
      exited ??= `failed: ${error.message}`;
      resolve();
    });
  });
  const pid = child.pid;
  if (pid === undefined) {
    await exit;
    throw new Error(`cannot spawn ${files.binary}: ${exited}`);
  }

  const stop = async (): Promise<void> => {
    if (exited !== undefined) return;
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      return; // already gone
    }
    // llama-server finishes within ~100 ms of SIGTERM; a wedged one gets SIGKILL after the grace.
    const graceful = await Promise.race([exit.then(() => true), sleep(5000, undefined, { ref: false }).then(() => false)]);
    if (!graceful && exited === undefined) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        return; // exited between the check and the kill
      }
      await exit;
    }
  };

  const startup: HealthObservation[] = [];
  const watched: Record<string, HealthObservation[]> = Object.fromEntries((options.watch ?? []).map((path) => [path, []]));
  const started = performance.now();
  const observe = async (path: string, into: HealthObservation[]): Promise<number | 'refused'> => {
    let status: number | 'refused';
    let body = '';
    try {
      const res = await fetch(`${url}${path}`, { signal: AbortSignal.timeout(2000) });
      status = res.status;
      body = await res.text();
    } catch {
      status = 'refused';
    }
    const last = into.at(-1);
    if (last && last.status === status && last.body === body) last.count++;
    else into.push({ status, body, atMs: Math.round(performance.now() - started), count: 1 });
    return status;
  };
  const deadline = started + (options.timeoutMs ?? 30_000);
  try {
    for (;;) {
      if (exited !== undefined) throw new Error(`llama-server ${exited} before becoming healthy`);
      if (performance.now() > deadline) throw new Error(`llama-server not healthy after ${options.timeoutMs ?? 30_000} ms`);
      const status = await observe('/health', startup);
      for (const [path, into] of Object.entries(watched)) await observe(path, into);
      if (status === 200) break;
      // Poll quickly: the "503 Loading model" phase lasts about a second with a warm page cache.
      await sleep(10);
    }
  } catch (error) {
    await stop();
    throw new Error(`${(error as Error).message}\n--- llama-server output (tail) ---\n${tail}`, { cause: error });
  }
  return { url, pid, process: child, startup, watched, output: () => tail, stop };
}
