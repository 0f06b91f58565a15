import { AssertionError } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

const cli = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));

export interface StackChild {
  child: ChildProcess;
  urls: Record<string, string>;
  output: () => string;
  /** Sends the signal (SIGTERM by default, SIGINT is Ctrl-C) and waits for the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Runs `qwen-sentinel stack` as a real process and reads the component URLs it prints. */
export async function startStack(args: string[], env: NodeJS.ProcessEnv = process.env, readyWithinMs = 30_000): Promise<StackChild> {
  const child = spawn(process.execPath, [cli, 'stack', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d));
  child.stderr!.on('data', (d: Buffer) => (out += d));
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      // Read what is left, but not for ever: a grandchild left running would hold these pipes,
      // and this test process, open.
      const done = () => {
        child.stdout!.destroy();
        child.stderr!.destroy();
        resolve(code);
      };
      const timer = setTimeout(done, 1000);
      child.once('close', () => {
        clearTimeout(timer);
        done();
      });
    }),
  );
  const end = Date.now() + readyWithinMs;
  while (!/^ {2}files /m.test(out)) {
    if (child.exitCode !== null || Date.now() > end) {
      child.kill('SIGKILL');
      throw new Error(`stack did not start:\n${out}`);
    }
    await sleep(50);
  }
  const urls: Record<string, string> = {};
  for (const [, name, url] of out.matchAll(/^ {2}(\S[\w ()]*?) {2,}(http:\/\/127\.0\.0\.1:\d+)\S*$/gm)) urls[name!] = url!;
  return {
    child,
    urls,
    output: () => out,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode !== null) return child.exitCode;
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** Polls until check returns a value, or throws after ms with what was last seen. */
export async function eventually<T>(what: string, ms: number, check: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      // A failed assertion is a verdict, not a condition still to come: fail now.
      if (err instanceof AssertionError) throw err;
      last = err;
    }
    await sleep(250);
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
}

/** Every live descendant of pid, from /proc (Linux): what a clean shutdown must leave behind is nothing. */
export function descendants(pid: number): number[] {
  let children: number[] = [];
  try {
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      children.push(...readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').split(' ').filter(Boolean).map(Number));
    }
  } catch {
    return [];
  }
  children = [...new Set(children)];
  return [...children, ...children.flatMap(descendants)];
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
