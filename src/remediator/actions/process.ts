import { execa, type ResultPromise } from 'execa';
import { z } from 'zod';
import { positiveDuration } from '../../config/fields.ts';
import { childEnv } from './env.ts';
import { argvOf, groupLeadersRunning, groupMembers, startTicks } from './proc.ts';
import { signalGroup } from './signal.ts';
import { defineAction, type Action, type ActionDeps, type ActionOutcome, type RestartContext } from './types.ts';

const argv = z.array(z.string().min(1)).min(1, 'needs at least the program to run');

export const processSchema = z.strictObject({
  action: z.literal('process'),
  command: argv.describe('The server\'s argv, run without a shell.'),
  cwd: z.string().optional(),
  env: z.record(z.string(), z.string()).default({}).describe('Its environment, besides PATH, HOME, USER, LANG, TZ and TMPDIR.'),
  grace_period: positiveDuration.default(10_000).describe('SIGTERM, then SIGKILL to the whole group after this long.'),
  restart_on_exit: z.boolean().default(false).describe('Start it again after any exit, through the same safeguards, with exponential backoff.'),
  cooldown: positiveDuration.default(120_000),
});
type ProcessConfig = z.output<typeof processSchema>;

// How often an adopted server (not our child: no exit event) is checked for life.
const adoptedPollMs = 1000;

/**
 * The remediator starts the model server itself and owns it: the server (not a shell) leads its
 * own process group, so a restart signals exactly that group (SIGTERM, SIGKILL after the grace
 * period) and nothing else on the machine. Its pid, group and start time are kept in the target's
 * state record, so a remediator started again adopts a server still running (same pid, start time
 * and argv) or ends what is left of its group, and never starts a second one.
 */
class ProcessAction implements Action {
  readonly kind = 'process';
  readonly #c: ProcessConfig;
  readonly #d: ActionDeps;
  #child: ResultPromise | undefined;
  #exited: Promise<void> = Promise.resolve();
  #expectingExit = false;
  #stopped = false;
  #watch: NodeJS.Timeout | undefined;

  constructor(config: ProcessConfig, deps: ActionDeps) {
    this.#c = config;
    this.#d = deps;
  }

  pid(): number | undefined {
    return this.#d.record.owned?.pid;
  }

  async starting() {
    return undefined; // the remediator's own record knows when it started this server
  }

  async start(): Promise<void> {
    this.#stopped = false;
    if (await this.#adopt()) return;
    await this.#spawn();
  }

  async restart(context: RestartContext): Promise<ActionOutcome> {
    const old = this.pid();
    await this.#terminate();
    // A shutdown began while the old server was stopping: do not start a new one behind it.
    if (this.#stopped) return { ok: false, message: 'remediator shutting down' };
    const error = await this.#spawn();
    const pid = this.pid();
    if (pid === undefined) return { ok: false, message: `could not start ${this.#c.command[0]}: ${error ?? 'no pid'}` };
    this.#d.logger.info({ target: this.#d.target, alertname: context.alertname, old_pid: old, pid }, 'model server restarted');
    return { ok: true, message: `restarted: pid ${old ?? 'none'} -> ${pid}` };
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#terminate();
  }

  kill(): void {
    this.#stopped = true;
    const owned = this.#d.record.owned;
    if (owned) signalGroup(owned.pgid, 'SIGKILL');
  }

  /**
   * A server recorded by an earlier run of the remediator: still the same process (pid, start
   * time, argv) -> adopted. Gone, but members of its group left (an engine subprocess holding the
   * GPU) -> ended. A spawn that was under way when we died -> found by its argv, or its leftovers
   * ended. Returns whether a live server was adopted.
   */
  async #adopt(): Promise<boolean> {
    const { record, logger, target } = this.#d;
    const owned = record.owned;
    if (owned) {
      const same = startTicks(owned.pid) === owned.startTicks && sameArgv(argvOf(owned.pid), owned.argv);
      if (same && sameArgv(owned.argv, this.#c.command)) {
        logger.info({ target, pid: owned.pid }, 'adopted the model server a previous run started');
        this.#watchAdopted();
        this.#d.hooks.running(owned.pid);
        return true;
      }
      await this.#endGroup(owned.pgid, 'left by a previous run');
      record.owned = undefined;
    }
    if (record.spawning) {
      // We died between spawning a server and recording it: it leads its own group and runs
      // exactly the argv we were starting.
      const found = groupLeadersRunning(record.spawning.argv);
      for (const pid of found) await this.#endGroup(pid, 'started by a previous run that died before recording it');
      record.spawning = undefined;
    }
    await this.#d.persist();
    return false;
  }

  async #endGroup(pgid: number, why: string): Promise<void> {
    if (groupMembers(pgid).length === 0) return;
    this.#d.logger.warn({ target: this.#d.target, pgid, why }, 'ending an orphaned model server group before starting a new one');
    signalGroup(pgid, 'SIGTERM');
    const deadline = this.#d.clock.now() + this.#c.grace_period;
    while (groupMembers(pgid).length > 0 && this.#d.clock.now() < deadline) await this.#d.clock.sleep(50);
    signalGroup(pgid, 'SIGKILL');
  }

  #watchAdopted(): void {
    const owned = this.#d.record.owned!;
    let done!: () => void;
    this.#exited = new Promise((resolve) => (done = resolve));
    this.#watch = setInterval(() => {
      if (startTicks(owned.pid) === owned.startTicks) return;
      clearInterval(this.#watch);
      this.#onExit(owned.pid, { code: null, signal: null });
      done();
    }, adoptedPollMs);
    this.#watch.unref();
  }

  /** Starts the server; returns the error when it could not be started. */
  async #spawn(): Promise<string | undefined> {
    const { record, persist, clock, logger, target } = this.#d;
    const [file, ...args] = this.#c.command as [string, ...string[]];
    record.spawning = { since: clock.now(), argv: this.#c.command };
    await persist();
    const child = execa(file, args, {
      detached: true, // setsid: the server is its own process-group leader
      cleanup: false,
      reject: false,
      stdin: 'ignore',
      stdout: this.#d.stdio ?? 'inherit',
      stderr: this.#d.stdio ?? 'inherit',
      extendEnv: false,
      env: childEnv(this.#c.env),
      ...(this.#c.cwd ? { cwd: this.#c.cwd } : {}),
    });
    this.#child = child;
    this.#expectingExit = false;
    const pid = child.pid;
    record.spawning = undefined;
    if (pid !== undefined) {
      record.owned = { pid, pgid: pid, startTicks: startTicks(pid) ?? '', argv: this.#c.command };
      record.startedAt = clock.now();
      logger.info({ target, pid, command: this.#c.command }, 'model server started');
    }
    await persist();
    this.#d.hooks.running(pid);
    let spawnError: string | undefined;
    this.#exited = child.then((result) => {
      if (this.#child !== child) return;
      this.#child = undefined;
      if (pid === undefined) {
        // Never started (no such program, bad cwd): nothing exited, nothing to respawn.
        spawnError = result.message;
        logger.error({ target, err: result.message }, 'model server could not start');
        return;
      }
      this.#onExit(pid, { code: result.exitCode ?? null, signal: result.signal ?? null });
    });
    if (pid === undefined) await this.#exited;
    return spawnError;
  }

  #onExit(pid: number, detail: { code: number | null; signal: string | null }): void {
    const { record, logger, target } = this.#d;
    // What the dead leader left in its group (vLLM's engine core, holding the GPU) goes too,
    // now, while the group id is certainly still ours.
    signalGroup(pid, 'SIGKILL');
    if (record.owned?.pid === pid) record.owned = undefined;
    void this.#d.persist();
    this.#d.hooks.running(undefined);
    if (this.#expectingExit || this.#stopped) return;
    logger.warn({ target, pid, ...detail }, 'model server exited unexpectedly');
    this.#d.hooks.unexpectedExit(detail);
  }

  /** SIGTERM to the whole group, SIGKILL after the grace period; resolves when the leader is gone. */
  async #terminate(): Promise<void> {
    const owned = this.#d.record.owned;
    if (!owned) return;
    this.#expectingExit = true;
    signalGroup(owned.pgid, 'SIGTERM');
    const graceful = await Promise.race([
      this.#exited.then(() => true),
      this.#d.clock.sleep(this.#c.grace_period).then(() => false),
    ]);
    // Children the server left behind (an engine subprocess, say) go with the group either way.
    signalGroup(owned.pgid, 'SIGKILL');
    if (!graceful) this.#d.logger.warn({ target: this.#d.target, pid: owned.pid }, 'model server ignored SIGTERM; sent SIGKILL');
    await this.#exited;
    clearInterval(this.#watch);
    if (this.#d.record.owned?.pid === owned.pid) this.#d.record.owned = undefined;
    await this.#d.persist();
  }
}

function sameArgv(a: readonly string[] | undefined, b: readonly string[]): boolean {
  return a !== undefined && a.length === b.length && a.every((x, i) => x === b[i]);
}

export const processAction = defineAction({
  name: 'process',
  description: 'The remediator starts the server and owns it: restart = SIGTERM to its process group, SIGKILL after grace_period, start again.',
  owns: true,
  schema: processSchema,
  create: (config, deps) => new ProcessAction(config, deps),
});
