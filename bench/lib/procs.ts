// Every process the bench starts goes through here, so that a finished suite, an error, Ctrl-C or
// the bench's own exit ends exactly those processes (and what they started), by pid, nothing else.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync, writeSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

export interface Child {
  name: string;
  pid: number;
  process: ChildProcess;
  /** Resolves with the exit code (or the signal's name) once the process has exited. */
  exited: Promise<number | string>;
  readonly running: boolean;
  /** What it printed, when started with capture (the last 64 KiB). */
  output(): string;
  /** SIGTERM (or `signal`), SIGKILL after graceMs; processes it started are ended too. */
  stop(graceMs?: number, signal?: NodeJS.Signals): Promise<void>;
}

export interface SpawnOptions {
  env?: NodeJS.ProcessEnv;
  /** Append stdout and stderr to this file. */
  logFile?: string;
  /** Keep stdout and stderr in memory too (a banner to parse). */
  capture?: boolean;
}

/** Live descendants of pid (Linux /proc), children first. */
export function descendants(pid: number): number[] {
  const children = new Set<number>();
  try {
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      for (const c of readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').split(' ')) if (c.trim()) children.add(Number(c));
    }
  } catch {
    return [];
  }
  return [...children, ...[...children].flatMap(descendants)];
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function kill(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // gone already
  }
}

export class Procs {
  readonly #children = new Set<Child>();

  spawn(name: string, command: string, args: string[], options: SpawnOptions = {}): Child {
    const fd = options.logFile ? openSync(options.logFile, 'a') : undefined;
    const out = options.capture ? 'pipe' : fd ?? 'ignore';
    // Its own process group: Ctrl-C reaches the bench only, which then stops everything in order.
    const proc = spawn(command, args, { env: options.env ?? process.env, stdio: ['ignore', out, out], detached: true });
    if (fd !== undefined) closeSync(fd);
    let text = '';
    if (options.capture) {
      const log = options.logFile ? openSync(options.logFile, 'a') : undefined;
      const write = (chunk: Buffer) => {
        text = (text + chunk.toString('utf8')).slice(-65536);
        // Synchronous and small: keeps the log in the order the output was parsed.
        if (log !== undefined) writeSync(log, chunk);
      };
      proc.stdout!.on('data', write);
      proc.stderr!.on('data', write);
      proc.once('close', () => log !== undefined && closeSync(log));
    }
    return this.adopt(name, proc, () => text);
  }

  /** Tracks a process started elsewhere (the seed loop's servers), to be ended like the others. */
  adopt(name: string, proc: ChildProcess, output: () => string = () => ''): Child {
    let running = proc.pid !== undefined && proc.exitCode === null && proc.signalCode === null;
    const exited = new Promise<number | string>((resolve) => {
      if (!running) return resolve(proc.exitCode ?? proc.signalCode ?? 'not started');
      proc.once('exit', (code, signal) => {
        running = false;
        resolve(code ?? signal ?? 'unknown');
      });
      proc.once('error', (err) => {
        running = false;
        resolve(`spawn failed: ${err.message}`);
      });
    });
    const child: Child = {
      name,
      pid: proc.pid ?? -1,
      process: proc,
      exited,
      get running() {
        return running;
      },
      output,
      stop: async (graceMs = 10_000, signal: NodeJS.Signals = 'SIGTERM') => {
        if (!running) {
          this.#children.delete(child);
          return;
        }
        // Taken before the signal: once the child is gone, its children are re-parented and lost.
        const below = descendants(child.pid);
        kill(child.pid, signal);
        const graceful = await Promise.race([exited.then(() => true), sleep(graceMs, false, { ref: false })]);
        if (!graceful) {
          kill(-child.pid, 'SIGKILL');
          kill(child.pid, 'SIGKILL');
        }
        await Promise.race([exited, sleep(2000, undefined, { ref: false })]);
        // Whatever it started and left behind (a shutdown that failed, or was cut short).
        for (const pid of [...below, ...descendants(child.pid)]) if (isAlive(pid)) kill(pid, 'SIGKILL');
        this.#children.delete(child);
      },
    };
    this.#children.add(child);
    void exited.then(() => {
      // A process that ended by itself needs no stopping; keep the set small over long runs.
      if (!running) setTimeout(() => this.#children.delete(child), 60_000).unref();
    });
    return child;
  }

  get live(): Child[] {
    return [...this.#children].filter((c) => c.running);
  }

  /** Stops every child still running, at once (in parallel). */
  async stopAll(graceMs = 10_000): Promise<void> {
    await Promise.all([...this.#children].map((c) => c.stop(graceMs)));
  }

  /** Last resort, synchronous (process 'exit'): SIGKILL every child, its group and its descendants. */
  killAllNow(): void {
    for (const c of this.#children) {
      if (!c.running) continue;
      const below = descendants(c.pid);
      kill(-c.pid, 'SIGKILL');
      kill(c.pid, 'SIGKILL');
      for (const pid of below) kill(pid, 'SIGKILL');
    }
  }
}

/** CPU seconds (user + system) a process has used, from /proc/PID/stat (USER_HZ = 100 on Linux). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name may hold spaces and parentheses: the fields start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** VmRSS and VmHWM (the peak) in MB, from /proc/PID/status. */
export function memoryMB(pid: number): { rss: number; peak: number; anon: number; file: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN);
  // RSS = anonymous pages (heaps, stacks) + file-backed ones (the pages of the node binary and its
  // libraries that were touched: shared with every other process running the same binary).
  return { rss: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024, anon: kb('RssAnon') / 1024, file: kb('RssFile') / 1024 };
}
