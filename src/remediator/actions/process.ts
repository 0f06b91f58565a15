import { randomUUID } from 'node:crypto';
import type { ResultPromise } from 'execa';
import { z } from 'zod';
import { positiveDuration } from '../../config/fields.ts';
import type { OwnedProcess } from '../state.ts';
import { childEnv } from './env.ts';
import { bootId, carries, groupCarries, groupMembers, listenerHeldBy, processesWithEnv, startTicks } from './proc.ts';
import { signalGroup, terminateGroup } from './signal.ts';
import { defineAction, type Action, type ActionDeps, type ActionOutcome, type Endpoint, type RestartContext } from './types.ts';

const argv = z.array(z.string().min(1)).min(1, 'needs at least the program to run');

export const processSchema = z.strictObject({
  action: z.literal('process').describe('The action kind.'),
  command: argv.describe('The server\'s argv, run without a shell.'),
  cwd: z.string().optional().describe('The working directory it runs in.'),
  env: z.record(z.string(), z.string()).default({}).describe('Its environment, besides PATH, HOME, USER, LOGNAME, LANG, LANGUAGE, LC_ALL, LC_CTYPE, TZ, TMPDIR and QWEN_SENTINEL_SPAWN_ID (by which the remediator knows it, and what it leaves, again).'),
  grace_period: positiveDuration.default(10_000).describe('SIGTERM, then SIGKILL to the whole group after this long.'),
  restart_on_exit: z.boolean().default(true).describe('Start it again as soon as it exits (its exit is known at once, no alert needed), through the same safeguards (circuit, starting, in progress), after a backoff of 1 s, 2 s, 4 s ... up to a minute; false: only count the exit and leave it to the alerts.'),
  cooldown: positiveDuration.default(120_000).describe('After a restart, alerts for this target are not acted on for this long (a new failure after a heal passes it).'),
});
type ProcessConfig = z.output<typeof processSchema>;

// How often an adopted server (not our child: no exit event) is checked for life.
const adoptedPollMs = 1000;
// How long a server may take to go after SIGKILL (a process stuck in the kernel, in an
// uninterruptible CUDA call, does not): then the restart fails rather than start a second one.
export const killWaitMs = 30_000;
/** Put in every server's environment: how a server we started is found whatever its argv says. */
export const spawnIdVariable = 'QWEN_SENTINEL_SPAWN_ID';

/**
 * The remediator starts the model server itself and owns it: the server (not a shell) leads its
 * own process group, so a restart signals exactly that group (SIGTERM, SIGKILL after the grace
 * period) and nothing else on the machine. Its pid, group, start time and boot id are kept in the
 * target's state record, and a spawn id in its environment, so a remediator started again adopts a
 * server still running (same boot, pid and start time, and the recorded spawn id in its
 * environment, whatever its /proc cmdline says: a script, a Python entry point), or ends what it and
 * any earlier run on the same storage directory left (found by the spawn id), and never starts a
 * second one. A record alone proves nothing: a process is ours only when it carries our spawn id.
 */
class ProcessAction implements Action {
  readonly kind = 'process';
  readonly #c: ProcessConfig;
  readonly #d: ActionDeps;
  #child: ResultPromise | undefined;
  #exited: Promise<void> = Promise.resolve();
  #expectingExit = false;
  #stopped = false;
  /** The orphaned group being ended before the first spawn, if any. */
  #ending: number | undefined;
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
    // A second signal while an orphan was being ended: start nothing.
    if (this.#stopped) return;
    await this.#spawn();
  }

  async restart(context: RestartContext): Promise<ActionOutcome> {
    const old = this.pid();
    if (!(await this.#terminate())) {
      return { ok: false, message: `the server (pid ${old}) did not exit within ${killWaitMs / 1000} s of SIGKILL; not starting another beside it` };
    }
    // A shutdown began while the old server was stopping: do not start a new one behind it.
    if (this.#stopped) return { ok: false, message: 'remediator shutting down' };
    const error = await this.#spawn();
    const pid = this.pid();
    if (pid === undefined) return { ok: false, message: `could not start ${this.#c.command[0]}: ${error ?? 'no pid'}` };
    this.#d.logger.info({ target: this.#d.target, alertname: context.alertname, old_pid: old, pid }, 'model server restarted');
    return { ok: true, message: `restarted: pid ${old ?? 'none'} -> ${pid}` };
  }

  /** Stops the server; safe to call again (nothing left to stop, or another bounded try). */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#terminate();
  }

  kill(): void {
    this.#stopped = true;
    const owned = this.#d.record.owned;
    if (owned) signalGroup(owned.pgid, 'SIGKILL');
    // A second signal during start-up, while an orphaned group is being ended: end it now too.
    if (this.#ending !== undefined) signalGroup(this.#ending, 'SIGKILL');
  }

  /**
   * Before the first spawn: a server recorded by an earlier run that is still the same process
   * (same boot, pid and start time) is adopted; everything else of ours is ended: what a gone
   * server left in its group (an engine subprocess holding the GPU), a spawn that was under way
   * when the earlier run died, any server an earlier run on this storage directory started for
   * this target (the record may have been lost). "Ours" is what carries our spawn id in its
   * environment; a recorded pid now leading another process, or from another boot, is not, and
   * neither is one whose pid, start time, boot and argv match the record but whose environment
   * lacks the recorded spawn id (a tampered or mistaken record, one written before spawn ids).
   * Returns whether a live server was adopted.
   */
  async #adopt(): Promise<boolean> {
    const { record, logger, target } = this.#d;
    const boot = bootId();
    const owned = record.owned;
    let adopted: OwnedProcess | undefined;
    const gone = new Set<string>();
    if (owned) {
      const running = startTicks(owned.pid) === owned.startTicks;
      // /proc/PID/environ of the leader: the id we put there when we started it.
      const ours = running && owned.bootId === boot && owned.spawnId !== undefined && carries(owned.pid, spawnIdVariable, owned.spawnId);
      if (owned.bootId !== undefined && owned.bootId !== boot) {
        logger.info({ target, pid: owned.pid }, 'the recorded model server ran in another boot: nothing of it is left');
      } else if (ours && sameArgv(owned.argv, this.#c.command)) {
        adopted = owned;
      } else if (ours) {
        await this.#endGroup(owned.pgid, 'started by a previous run with another command');
      } else if (running) {
        logger.warn({ target, pid: owned.pid }, 'the recorded pid runs a process the remediator did not start (its environment lacks the recorded spawn id): left alone, not adopted');
      }
      // Its leftovers carry its spawn id; a pid now leading another process does not.
      if (!adopted && owned.spawnId !== undefined) gone.add(owned.spawnId);
      if (!adopted) record.owned = undefined;
    }
    if (record.spawning) {
      // We died between spawning a server and recording it: it carries the spawn id we gave it.
      if (record.spawning.bootId === boot && record.spawning.spawnId !== undefined) gone.add(record.spawning.spawnId);
      record.spawning = undefined;
    }
    const scope = record.spawnScope === undefined ? undefined : `${record.spawnScope}.`;
    const left = gone.size === 0 && scope === undefined ? [] : processesWithEnv(spawnIdVariable, (id) => id !== adopted?.spawnId && (gone.has(id) || (scope !== undefined && id.startsWith(scope))));
    for (const pgid of new Set(left.map((p) => p.pgid))) {
      if (pgid !== adopted?.pgid) await this.#endGroup(pgid, 'left by a previous run (its spawn id)');
    }
    await this.#d.persist();
    if (!adopted) return false;
    logger.info({ target, pid: adopted.pid }, 'adopted the model server a previous run started');
    this.#watchAdopted();
    this.#d.hooks.running(adopted.pid);
    return true;
  }

  /** Ends a group of ours: SIGTERM, SIGKILL after the grace period. A group we may not signal is left, logged. */
  async #endGroup(pgid: number, why: string): Promise<void> {
    if (groupMembers(pgid).length === 0) return;
    const { logger, target, clock } = this.#d;
    logger.warn({ target, pgid, why }, 'ending an orphaned model server group before starting a new one');
    const sent = terminateGroup(pgid);
    if (sent === 'denied' || sent === 'refused') {
      logger.error({ target, pgid, why, result: sent }, 'cannot signal the orphaned model server group; leaving it');
      return;
    }
    const deadline = clock.now() + this.#c.grace_period;
    this.#ending = pgid;
    try {
      while (groupMembers(pgid).length > 0 && clock.now() < deadline && !this.#stopped) await clock.sleep(50);
    } finally {
      this.#ending = undefined;
    }
    signalGroup(pgid, 'SIGKILL');
  }

  /**
   * Whether the socket listening at the address is held by the server this action started: a
   * member of its process group, or a process carrying its spawn id (a worker that left the group).
   */
  async identify(address: Endpoint): Promise<ActionOutcome | undefined> {
    const owned = this.#d.record.owned;
    const what = 'the server the remediator started';
    if (!owned) return { ok: false, message: `${what} is not running` };
    const spawnId = owned.spawnId;
    // The group first; the whole process table only when none of the group holds it.
    function* ours() {
      yield* groupMembers(owned!.pgid);
      if (spawnId !== undefined) for (const p of processesWithEnv(spawnIdVariable, (id) => id === spawnId)) yield p.pid;
    }
    return listenerHeldBy(address, ours(), `${what} (pid ${owned.pid})`);
  }

  #watchAdopted(): void {
    const owned = this.#d.record.owned!;
    let done!: () => void;
    this.#exited = new Promise((resolve) => (done = resolve));
    this.#watch = setInterval(() => {
      if (startTicks(owned.pid) === owned.startTicks) return;
      clearInterval(this.#watch);
      try {
        this.#onExit(owned.pid, owned.spawnId, { code: null, signal: null });
      } finally {
        done();
      }
    }, adoptedPollMs);
    this.#watch.unref();
  }

  /** Starts the server; returns the error when it could not be started. */
  async #spawn(): Promise<string | undefined> {
    // execa is loaded when an action first runs a program, not with the remediator (~4 MB of RSS).
    const { execa } = await import('execa');
    // A shutdown that came while it loaded: start nothing.
    if (this.#stopped) return 'remediator shutting down';
    const { record, persist, clock, logger, target } = this.#d;
    const [file, ...args] = this.#c.command as [string, ...string[]];
    const boot = bootId();
    const spawnId = record.spawnScope === undefined ? randomUUID() : `${record.spawnScope}.${randomUUID()}`;
    record.spawning = { since: clock.now(), argv: this.#c.command, bootId: boot, spawnId };
    await persist();
    const child = execa(file, args, {
      detached: true, // setsid: the server is its own process-group leader
      cleanup: false,
      reject: false,
      stdin: 'ignore',
      stdout: this.#d.stdio ?? 'inherit',
      stderr: this.#d.stdio ?? 'inherit',
      extendEnv: false,
      env: childEnv({ ...this.#c.env, [spawnIdVariable]: spawnId }),
      ...(this.#c.cwd ? { cwd: this.#c.cwd } : {}),
    });
    this.#child = child;
    this.#expectingExit = false;
    const pid = child.pid;
    record.spawning = undefined;
    if (pid !== undefined) {
      record.owned = { pid, pgid: pid, startTicks: startTicks(pid) ?? '', argv: this.#c.command, bootId: boot, spawnId };
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
      this.#onExit(pid, spawnId, { code: result.exitCode ?? null, signal: result.signal ?? null });
    });
    if (pid === undefined) await this.#exited;
    return spawnError;
  }

  /** Runs from an exit callback or a timer, where a throw would end the process: it is logged instead. */
  #onExit(pid: number, spawnId: string | undefined, detail: { code: number | null; signal: string | null }): void {
    try {
      this.#exit(pid, spawnId, detail);
    } catch (err) {
      this.#d.logger.error({ target: this.#d.target, pid, err: (err as Error).message, stack: (err as Error).stack }, 'internal error while handling the model server\'s exit');
    }
  }

  #exit(pid: number, spawnId: string | undefined, detail: { code: number | null; signal: string | null }): void {
    const { record, logger, target } = this.#d;
    // What the dead leader left in its group (vLLM's engine core, holding the GPU) goes too, now,
    // while the group is ours: a member carries our spawn id. (A group whose members all died
    // frees its number, which may then name another process's group.)
    if (spawnId === undefined || groupCarries(pid, spawnIdVariable, spawnId)) signalGroup(pid, 'SIGKILL');
    if (record.owned?.pid === pid) {
      record.owned = undefined;
      record.startedAt = undefined; // a server that is gone is not loading
    }
    void this.#d.persist();
    this.#d.hooks.running(undefined);
    if (this.#expectingExit || this.#stopped) return;
    logger.warn({ target, pid, ...detail }, 'model server exited unexpectedly');
    this.#d.hooks.unexpectedExit(detail);
  }

  /**
   * SIGTERM to the whole group, SIGKILL after the grace period; resolves true once the leader is
   * gone, false when it is still there killWaitMs after SIGKILL (then it stays recorded, watched).
   */
  async #terminate(): Promise<boolean> {
    const { record, logger, target, clock } = this.#d;
    const owned = record.owned;
    if (!owned) return true;
    this.#expectingExit = true;
    const exitedWithin = async (ms: number) => {
      const stop = new AbortController();
      const result = await Promise.race([this.#exited.then(() => true), clock.sleep(ms, stop.signal).then(() => false)]);
      stop.abort();
      return result;
    };
    const sent = terminateGroup(owned.pgid);
    if (sent === 'denied' || sent === 'refused') logger.error({ target, pid: owned.pid, pgid: owned.pgid, result: sent }, 'cannot signal the model server group');
    const graceful = await exitedWithin(this.#c.grace_period);
    // Children the server left behind (an engine subprocess, say) go with the group either way.
    signalGroup(owned.pgid, 'SIGKILL');
    if (!graceful) logger.warn({ target, pid: owned.pid }, 'model server ignored SIGTERM; sent SIGKILL');
    if (!graceful && !(await exitedWithin(killWaitMs))) {
      logger.error({ target, pid: owned.pid, wait_ms: killWaitMs }, 'model server still there after SIGKILL (stuck in the kernel?); not starting another');
      return false;
    }
    clearInterval(this.#watch);
    if (record.owned?.pid === owned.pid) record.owned = undefined;
    await this.#d.persist();
    return true;
  }
}

function sameArgv(a: readonly string[] | undefined, b: readonly string[]): boolean {
  return a !== undefined && a.length === b.length && a.every((x, i) => x === b[i]);
}

export const processAction = defineAction({
  name: 'process',
  description: 'The remediator starts the server and owns it: restart = SIGTERM to its process group, SIGKILL after grace_period, start again.',
  owns: true,
  restartsOnExit: (config) => config.restart_on_exit,
  schema: processSchema,
  create: (config, deps) => new ProcessAction(config, deps),
});
