import { execa, type ResultPromise } from 'execa';
import type { Remediation } from '../../config/schema.ts';
import type { Logger } from '../../log.ts';
import { signalGroup } from './signal.ts';
import type { Action, ActionHooks, ActionOutcome, RestartContext } from './types.ts';

type ProcessConfig = Extract<Remediation, { action: 'process' }>;

export interface ProcessActionOptions {
  target: string;
  config: ProcessConfig;
  logger: Logger;
  hooks: ActionHooks;
  /** Where the server's output goes; tests silence it. */
  stdio?: 'inherit' | 'ignore';
}

// With restart_on_exit, wait this long before starting again so a crash loop does not spin.
const respawnDelayMs = 1000;

/**
 * The remediator starts the model server itself and owns it: the server (not a shell) leads its own
 * process group, so a restart signals exactly that group (SIGTERM, SIGKILL after the grace period)
 * and nothing else on the machine, unlike the seed article's kill-by-name loop.
 */
export class ProcessAction implements Action {
  readonly kind = 'process';
  readonly #o: ProcessActionOptions;
  #child: ResultPromise | undefined;
  #exited: Promise<void> = Promise.resolve();
  #expectingExit = false;
  #stopped = false;
  #respawn: NodeJS.Timeout | undefined;

  constructor(options: ProcessActionOptions) {
    this.#o = options;
  }

  pid(): number | undefined {
    return this.#child?.pid;
  }

  async start(): Promise<void> {
    this.#stopped = false;
    this.#spawn();
  }

  async restart(context: RestartContext): Promise<ActionOutcome> {
    const old = this.pid();
    await this.#terminate();
    // A shutdown began while the old server was stopping: do not start a new one behind it.
    if (this.#stopped) return { ok: false, message: 'remediator shutting down' };
    this.#spawn();
    const pid = this.pid();
    if (pid === undefined) return { ok: false, message: `could not start ${this.#o.config.command[0]}` };
    this.#o.logger.info({ target: this.#o.target, alertname: context.alertname, old_pid: old, pid }, 'model server restarted');
    return { ok: true, message: `restarted: pid ${old ?? 'none'} -> ${pid}` };
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#respawn);
    await this.#terminate();
  }

  #spawn(): void {
    const [file, ...args] = this.#o.config.command as [string, ...string[]];
    const child = execa(file, args, {
      detached: true, // setsid: the server is its own process-group leader
      cleanup: false,
      reject: false,
      stdin: 'ignore',
      stdout: this.#o.stdio ?? 'inherit',
      stderr: this.#o.stdio ?? 'inherit',
      env: this.#o.config.env,
      ...(this.#o.config.cwd ? { cwd: this.#o.config.cwd } : {}),
    });
    this.#child = child;
    this.#expectingExit = false;
    this.#o.hooks.running(child.pid);
    if (child.pid !== undefined) this.#o.logger.info({ target: this.#o.target, pid: child.pid, command: this.#o.config.command }, 'model server started');
    this.#exited = child.then((result) => {
      if (this.#child !== child) return;
      this.#child = undefined;
      this.#o.hooks.running(undefined);
      if (this.#expectingExit) return;
      if (child.pid === undefined) {
        // Never started (no such program, bad cwd): nothing exited, nothing to respawn.
        this.#o.logger.error({ target: this.#o.target, err: result.message }, 'model server could not start');
        return;
      }
      // What the dead leader left in its group (vLLM's engine core, holding the GPU) goes too,
      // now, while the group id is certainly still ours.
      signalGroup(child.pid, 'SIGKILL');
      const detail = { code: result.exitCode ?? null, signal: result.signal ?? null };
      this.#o.logger.warn({ target: this.#o.target, pid: child.pid, ...detail }, 'model server exited unexpectedly');
      this.#o.hooks.unexpectedExit(detail);
      // By default Prometheus stays the one place that decides: the restart waits for the alert.
      if (this.#o.config.restart_on_exit && !this.#stopped) this.#respawn = setTimeout(() => this.#spawn(), respawnDelayMs);
    });
  }

  /** SIGTERM to the whole group, SIGKILL after the grace period; resolves when the leader is gone. */
  async #terminate(): Promise<void> {
    clearTimeout(this.#respawn);
    const child = this.#child;
    if (!child?.pid) return;
    this.#expectingExit = true;
    signalGroup(child.pid, 'SIGTERM');
    const graceful = await Promise.race([
      this.#exited.then(() => true),
      new Promise<false>((resolve) => setTimeout(() => resolve(false), this.#o.config.grace_period).unref()),
    ]);
    // Children the server left behind (an engine subprocess, say) go with the group either way.
    signalGroup(child.pid, 'SIGKILL');
    if (!graceful) this.#o.logger.warn({ target: this.#o.target, pid: child.pid }, 'model server ignored SIGTERM; sent SIGKILL');
    await this.#exited;
  }
}
