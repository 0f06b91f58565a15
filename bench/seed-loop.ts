// The seed article's heartbeat loop ("Qwen3-0.6B部署稳定性提升:心跳检测与自动重启机制实现", section 3.2),
// re-implemented faithfully so the bench can run it against the same simulator, with the same
// faults, at the same interval as qwen-sentinel:
//
//   - GET {base}/models with requests' timeout=5; healthy = HTTP 200 and a non-empty "data" list;
//     anything else (status, empty list, exception) adds one to failure_count.
//   - failure_count >= MAX_FAILURES (3): restart_model_service(), then failure_count = 0.
//   - restart_model_service(): kill the server, time.sleep(3), launch it again in the background.
//   - schedule.every(N).seconds.do(check_health) and a main loop of run_pending(); time.sleep(1):
//     the first check runs N s after start; after each run the next is due N s after that run
//     *ended* (schedule computes next_run from the time the job returned), and a due job starts at
//     the next 1 s tick. The restart (with its 3 s sleep) runs inside the job, blocking the loop.
//
// One deliberate difference: the article kills with `pkill -f python`, i.e. SIGTERM to every
// process whose command line contains "python" (every Python program on the host, and the
// heartbeat script itself, which runs as `python health_check.py`: taken literally, its first
// restart kills the monitor before it relaunches the model). Here the loop sends SIGTERM only to
// the one server process it launched itself, by pid, so it measures the loop as the article means
// it to work: the seed's best case.
import { spawn, type ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';

export interface SeedLoopOptions {
  /** OpenAI base URL, e.g. http://127.0.0.1:8000/v1 (the article's HEALTH_URL without /models). */
  base: string;
  /** schedule.every(N).seconds (30 in the article). */
  intervalSeconds: number;
  /** The server's argv, as `nohup python /workspace/start_model.py ...` in the article. */
  command: string[];
  maxFailures?: number;
  /** requests.get(..., timeout=5). */
  requestTimeoutMs?: number;
  /** time.sleep(3) between kill and relaunch. */
  relaunchDelayMs?: number;
  /** Where the server's output goes (the article appends to /workspace/model.log). */
  stdio?: 'ignore' | number;
  /** Called with each event, for the bench's record: check results, restarts. */
  onEvent?: (event: SeedEvent) => void;
  /** Called with each server process launched (the bench tracks them for its cleanup). */
  onLaunch?: (server: ChildProcess) => void;
}

export type SeedEvent =
  | { kind: 'check'; at: number; ok: boolean; failures: number; detail: string }
  | { kind: 'restart'; at: number; killedPid: number | undefined }
  | { kind: 'launched'; at: number; pid: number | undefined };

export class SeedLoop {
  readonly #o: Required<Omit<SeedLoopOptions, 'onEvent' | 'onLaunch'>> & Pick<SeedLoopOptions, 'onEvent' | 'onLaunch'>;
  readonly #stop = new AbortController();
  #server: ChildProcess | undefined;
  /** Every server launched: one that survived its SIGTERM is still ended by stop(). */
  readonly #servers: ChildProcess[] = [];
  #failureCount = 0;
  #loop: Promise<void> | undefined;
  restarts = 0;

  constructor(o: SeedLoopOptions) {
    this.#o = { maxFailures: 3, requestTimeoutMs: 5000, relaunchDelayMs: 3000, stdio: 'ignore', ...o };
  }

  /** The pid of the server it launched last (undefined before launch() or after it exited). */
  get pid(): number | undefined {
    return this.#server?.exitCode === null && this.#server.signalCode === null ? this.#server.pid : undefined;
  }

  /** Starts the model server (the article's start script, run once by hand before the monitor). */
  launch(): void {
    const [file, ...args] = this.#o.command;
    // nohup ... &: in the background, in a process group of its own.
    this.#server = spawn(file!, args, { stdio: ['ignore', this.#o.stdio, this.#o.stdio], detached: true });
    this.#server.on('error', () => {});
    this.#servers.push(this.#server);
    this.#o.onLaunch?.(this.#server);
    this.#o.onEvent?.({ kind: 'launched', at: performance.now(), pid: this.#server.pid });
  }

  /** Starts the monitor: schedule.every(N).seconds.do(check_health); while True: run_pending(); sleep(1). */
  start(): void {
    this.#loop = this.#run();
  }

  async #run(): Promise<void> {
    const signal = this.#stop.signal;
    let nextRun = performance.now() + this.#o.intervalSeconds * 1000;
    try {
      while (!signal.aborted) {
        if (performance.now() >= nextRun) {
          await this.#checkHealth();
          nextRun = performance.now() + this.#o.intervalSeconds * 1000;
        }
        await sleep(1000, undefined, { signal });
      }
    } catch {
      // stopped
    }
  }

  async #checkHealth(): Promise<void> {
    let ok = false;
    let detail: string;
    try {
      const res = await fetch(`${this.#o.base}/models`, { signal: AbortSignal.any([AbortSignal.timeout(this.#o.requestTimeoutMs), this.#stop.signal]) });
      if (res.status === 200) {
        const data = ((await res.json()) as { data?: unknown[] }).data;
        ok = Array.isArray(data) && data.length > 0;
        detail = ok ? 'healthy' : 'empty model list';
      } else {
        await res.arrayBuffer().catch(() => undefined);
        detail = `HTTP ${res.status}`;
      }
    } catch (err) {
      detail = `request failed: ${(err as Error).message}`;
    }
    this.#failureCount = ok ? 0 : this.#failureCount + 1;
    this.#o.onEvent?.({ kind: 'check', at: performance.now(), ok, failures: this.#failureCount, detail });
    if (this.#failureCount >= this.#o.maxFailures) {
      await this.#restartModelService();
      this.#failureCount = 0;
    }
  }

  async #restartModelService(): Promise<void> {
    if (this.#stop.signal.aborted) return;
    this.restarts++;
    const pid = this.pid;
    this.#o.onEvent?.({ kind: 'restart', at: performance.now(), killedPid: pid });
    // pkill -f python, narrowed to the one process this loop launched (see the header).
    if (pid !== undefined) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // "终止进程失败,可能无匹配进程"
      }
    }
    await sleep(this.#o.relaunchDelayMs, undefined, { signal: this.#stop.signal }).catch(() => {});
    if (this.#stop.signal.aborted) return;
    this.launch();
  }

  /** Stops the monitor and ends the servers it launched (SIGKILL to their groups: nothing may be left). */
  async stop(): Promise<void> {
    this.#stop.abort();
    await this.#loop;
    await Promise.all(
      this.#servers.map(async (server) => {
        if (server.pid === undefined || server.exitCode !== null || server.signalCode !== null) return;
        const exited = new Promise((resolve) => server.once('exit', resolve));
        try {
          process.kill(-server.pid, 'SIGKILL');
        } catch {
          // gone
        }
        await Promise.race([exited, sleep(3000)]);
      }),
    );
  }
}
