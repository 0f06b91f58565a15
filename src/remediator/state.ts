// One record per target: the only place decisions read and write. Persisted atomically (write,
// fsync, rename) under --storage.path, so a remediator that is killed and started again knows
// what it did, what it owns and when it may act next. One remediator per directory: a lock file.
import { createHash } from 'node:crypto';
import { link, mkdir, open, readFile, realpath, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { StartupError } from '../lib/lifecycle.ts';
import type { Logger } from '../lib/log.ts';
import { bootId, startTicks } from './actions/proc.ts';
import { toMono, toWall, type Clock } from './clock.ts';

/** The model server a `process` action started: enough to know it again after a restart of ours. */
export interface OwnedProcess {
  pid: number;
  pgid: number;
  /** /proc/PID/stat field 22: a reused pid has another start time. */
  startTicks: string;
  /** The configured argv it was started with (a script's /proc cmdline differs: informational). */
  argv: string[];
  /** /proc/sys/kernel/random/boot_id when it started: pids and groups of another boot are not ours. */
  bootId?: string | undefined;
  /** The id put in its environment (QWEN_SENTINEL_SPAWN_ID): what it left behind carries it too. */
  spawnId?: string | undefined;
}

/**
 * What an action found instead of acting (ok is then false): nothing was done, so it is neither a
 * failure nor a restart (the crash-loop circuit does not count it, no cooldown starts).
 * stale: what the alert names is gone (its replacement is not touched); blocked: a budget allows
 * no disruption now (a later alert may try again); invalid: what the alert names is not this
 * target's to act on.
 */
export const verdicts = ['stale', 'blocked', 'invalid'] as const;
export type Verdict = (typeof verdicts)[number];

export interface ActionSummary {
  at: string;
  alertname: string;
  /** stale, blocked, invalid: the action did nothing (see Verdict). */
  outcome: 'success' | 'failure' | 'interrupted' | Verdict;
  message: string;
}

export interface TargetRecord {
  restarts: number;
  unexpectedExits: number;
  /** Monotonic ms: no alert-driven restart before this. */
  cooldownUntil: number;
  /** Monotonic ms of the restarts (and failed ones) still inside the circuit window. */
  restartTimes: number[];
  /** Monotonic ms: the server was (re)started then; its start-up window runs from here. */
  startedAt: number | undefined;
  /** Monotonic ms: the server was last seen answering by the remediator's own check. */
  healthyAt: number | undefined;
  /** A restart under way (persisted: a remediator killed mid-restart finds it on its next start). */
  inProgress: { since: number; alertname: string } | undefined;
  owned: OwnedProcess | undefined;
  /** Written just before spawning, cleared once the pid is recorded: a crash in between is found. */
  spawning: { since: number; argv: string[]; bootId?: string | undefined; spawnId?: string | undefined } | undefined;
  /** Alert instances acted on (fingerprint@startsAt -> monotonic ms), kept while they matter. */
  seen: Record<string, number>;
  /** Consecutive respawns after exits, for the backoff. */
  respawns: number;
  lastAction: ActionSummary | undefined;
  /**
   * Not persisted: names this target under this storage directory. Every server spawned for it
   * carries it in its spawn id, so one left by any earlier run on the same directory is found even
   * when this record was lost (a corrupt or deleted file). Undefined without a storage directory.
   */
  spawnScope: string | undefined;
}

/** A short, stable name for a target under one storage directory (its real path). */
export const spawnScope = (dir: string, target: string) => createHash('sha256').update(`${dir}\0${target}`).digest('hex').slice(0, 16);

export const freshRecord = (scope?: string): TargetRecord => ({ restarts: 0, unexpectedExits: 0, cooldownUntil: 0, restartTimes: [], startedAt: undefined, healthyAt: undefined, inProgress: undefined, owned: undefined, spawning: undefined, seen: {}, respawns: 0, lastAction: undefined, spawnScope: scope });

/**
 * When the remediator last saw the target's server answer, monotonic ms: its own check (the confirm
 * stage, a verified restart), or the end of the last successful action.
 */
export function lastHealthy(record: TargetRecord, now: number, wall: number): number | undefined {
  const action = record.lastAction?.outcome === 'success' ? Date.parse(record.lastAction.at) - wall + now : Number.NaN;
  const known = [record.healthyAt, action].filter((t): t is number => t !== undefined && Number.isFinite(t));
  // Never later than now (a wall clock set back makes the last action's time look so).
  return known.length === 0 ? undefined : Math.min(now, Math.max(...known));
}

/** An alert instance: its fingerprint and its start, as an instant (Alertmanager's webhook and API format it differently). */
export function instanceKey(fingerprint: string, startsAt: string): string {
  const ms = Date.parse(startsAt);
  return `${fingerprint}@${Number.isFinite(ms) ? ms : startsAt}`;
}

// On disk every instant is Unix ms (a monotonic clock restarts with the process).
const wallTime = z.number().finite();
const fileSchema = z.strictObject({
  version: z.literal(1),
  /** When this was written: a wall clock found earlier than this was set back while we were down. */
  saved_at: wallTime.optional(),
  restarts: z.int().min(0),
  unexpected_exits: z.int().min(0),
  cooldown_until: wallTime,
  restart_times: z.array(wallTime),
  started_at: wallTime.optional(),
  healthy_at: wallTime.optional(),
  in_progress: z.strictObject({ since: wallTime, alertname: z.string() }).optional(),
  owned: z.strictObject({ pid: z.int().positive(), pgid: z.int().positive(), start_ticks: z.string(), argv: z.array(z.string()), boot_id: z.string().optional(), spawn_id: z.string().optional() }).optional(),
  spawning: z.strictObject({ since: wallTime, argv: z.array(z.string()), boot_id: z.string().optional(), spawn_id: z.string().optional() }).optional(),
  seen: z.record(z.string(), wallTime),
  respawns: z.int().min(0),
  last_action: z.strictObject({ at: z.string(), alertname: z.string(), outcome: z.enum(['success', 'failure', 'interrupted', ...verdicts]), message: z.string() }).optional(),
});
type RecordFile = z.output<typeof fileSchema>;

const ids = (p: { bootId?: string | undefined; spawnId?: string | undefined }) => ({ ...(p.bootId === undefined ? {} : { boot_id: p.bootId }), ...(p.spawnId === undefined ? {} : { spawn_id: p.spawnId }) });

function toFile(r: TargetRecord, clock: Clock): RecordFile {
  const w = (mono: number) => Math.round(toWall(clock, mono));
  return {
    version: 1,
    saved_at: Math.round(clock.wall()),
    restarts: r.restarts,
    unexpected_exits: r.unexpectedExits,
    cooldown_until: w(r.cooldownUntil),
    restart_times: r.restartTimes.map(w),
    ...(r.startedAt === undefined ? {} : { started_at: w(r.startedAt) }),
    ...(r.healthyAt === undefined ? {} : { healthy_at: w(r.healthyAt) }),
    ...(r.inProgress ? { in_progress: { since: w(r.inProgress.since), alertname: r.inProgress.alertname } } : {}),
    ...(r.owned ? { owned: { pid: r.owned.pid, pgid: r.owned.pgid, start_ticks: r.owned.startTicks, argv: r.owned.argv, ...ids(r.owned) } } : {}),
    ...(r.spawning ? { spawning: { since: w(r.spawning.since), argv: r.spawning.argv, ...ids(r.spawning) } } : {}),
    seen: Object.fromEntries(Object.entries(r.seen).map(([k, v]) => [k, w(v)])),
    respawns: r.respawns,
    ...(r.lastAction ? { last_action: r.lastAction } : {}),
  };
}

function fromFile(f: RecordFile, clock: Clock, scope: string | undefined): TargetRecord {
  // Instants that have happened cannot be later than now. A wall clock set back while we were down
  // would put them (and the cooldown's end) in the future, stretching every cooldown and circuit
  // window by as much: then read them as if no time had passed since the file was written.
  const happened = [...f.restart_times, ...Object.values(f.seen), f.started_at, f.healthy_at, f.in_progress?.since, f.spawning?.since, f.last_action ? Date.parse(f.last_action.at) : undefined];
  const reference = f.saved_at ?? Math.max(0, ...happened.filter((t): t is number => t !== undefined && Number.isFinite(t)));
  const shift = Math.min(0, clock.wall() - reference);
  const m = (wall: number) => toMono(clock, wall + shift);
  const past = (wall: number) => Math.min(m(wall), clock.now());
  return {
    restarts: f.restarts,
    unexpectedExits: f.unexpected_exits,
    cooldownUntil: m(f.cooldown_until),
    restartTimes: f.restart_times.map(past),
    startedAt: f.started_at === undefined ? undefined : past(f.started_at),
    healthyAt: f.healthy_at === undefined ? undefined : past(f.healthy_at),
    inProgress: f.in_progress && { since: past(f.in_progress.since), alertname: f.in_progress.alertname },
    owned: f.owned && { pid: f.owned.pid, pgid: f.owned.pgid, startTicks: f.owned.start_ticks, argv: f.owned.argv, bootId: f.owned.boot_id, spawnId: f.owned.spawn_id },
    spawning: f.spawning && { since: past(f.spawning.since), argv: f.spawning.argv, bootId: f.spawning.boot_id, spawnId: f.spawning.spawn_id },
    // Keys written as fingerprint@<startsAt text> by earlier versions become fingerprint@<ms>.
    seen: Object.fromEntries(Object.entries(f.seen).map(([k, v]) => [k.includes('@') ? instanceKey(k.slice(0, k.lastIndexOf('@')), k.slice(k.lastIndexOf('@') + 1)) : k, past(v)])),
    respawns: f.respawns,
    lastAction: f.last_action,
    spawnScope: scope,
  };
}

/** Writes a file so that a reader sees the old or the new content, never half of it. */
export async function writeAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  const file = await open(tmp, 'w', 0o600);
  try {
    await file.writeFile(text);
    await file.sync();
  } catch (err) {
    // A full disk: no half-written file left behind.
    await file.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw err;
  }
  await file.close();
  await rename(tmp, path);
  // The rename itself must survive a power cut: sync the directory entry too.
  const dir = await open(join(path, '..'), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

const fileName = (target: string) => `${encodeURIComponent(target)}.json`;

/** Who holds a storage directory: a process of this boot, known by its pid and start time. */
interface LockHolder {
  pid: number;
  boot_id: string;
  start_ticks: string;
}
const me = (): LockHolder => ({ pid: process.pid, boot_id: bootId() ?? '', start_ticks: startTicks(process.pid) ?? '' });
const isMe = (h: LockHolder) => h.pid === process.pid && h.boot_id === (bootId() ?? '') && h.start_ticks === startTicks(process.pid);
const isAlive = (h: LockHolder) => h.boot_id === bootId() && h.start_ticks !== '' && startTicks(h.pid) === h.start_ticks;
/** Lock files this process holds, with how many stores use each (tests run several in one process). */
const heldHere = new Map<string, number>();

function parseHolder(text: string): LockHolder | undefined {
  try {
    const h = JSON.parse(text) as Partial<LockHolder>;
    return typeof h.pid === 'number' && typeof h.boot_id === 'string' && typeof h.start_ticks === 'string' ? (h as LockHolder) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Takes DIR/lock, or refuses: two remediators on one --storage.path would each start a server. The
 * file names the holder (pid, boot id, start time); a holder that is gone (its pid dead or reused,
 * or another boot) left a stale lock, which is taken over. Created complete and atomically (link),
 * so a reader never sees half of it.
 */
export async function lockStorage(dir: string): Promise<void> {
  const path = join(dir, 'lock');
  const mine = JSON.stringify(me());
  for (let attempt = 0; attempt < 5; attempt++) {
    const tmp = `${path}.${process.pid}.tmp`;
    await writeAtomic(tmp, mine);
    try {
      await link(tmp, path);
      heldHere.set(path, (heldHere.get(path) ?? 0) + 1);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    } finally {
      await unlink(tmp).catch(() => {});
    }
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    const holder = parseHolder(text);
    if (holder && isMe(holder)) {
      heldHere.set(path, (heldHere.get(path) ?? 0) + 1);
      return;
    }
    if (holder && isAlive(holder)) {
      throw new StartupError(`--storage.path ${dir} is in use by another remediator (pid ${holder.pid}, see ${path}): two on one directory would each start the servers they own. Stop it, or give this one its own --storage.path`);
    }
    // Stale. Moved aside atomically; if what moved is not what was judged (another remediator
    // took the lock meanwhile), it goes back and the next round sees it held.
    const aside = `${path}.stale.${process.pid}`;
    try {
      await rename(path, aside);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    if ((await readFile(aside, 'utf8').catch(() => '')) !== text) await link(aside, path).catch(() => {});
    await unlink(aside).catch(() => {});
  }
  throw new StartupError(`--storage.path ${dir}: cannot take its lock file ${path} (it keeps changing: another remediator starting on the same directory?)`);
}

/** Gives DIR/lock up, if this process holds it and no other store of this process still uses it. */
export async function unlockStorage(dir: string): Promise<void> {
  const path = join(dir, 'lock');
  const count = heldHere.get(path) ?? 0;
  if (count > 1) return void heldHere.set(path, count - 1);
  heldHere.delete(path);
  const holder = parseHolder(await readFile(path, 'utf8').catch(() => ''));
  if (holder && isMe(holder)) await unlink(path).catch(() => {});
}

/** The records of every target, on disk under dir/targets/ (or only in memory without a dir). */
export class StateStore {
  readonly #root: string | undefined;
  readonly #dir: string | undefined;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #records = new Map<string, TargetRecord>();
  readonly #writes = new Map<string, Promise<void>>();
  #locked: Promise<void> | undefined;

  constructor(o: { dir: string | undefined; clock: Clock; logger: Logger }) {
    this.#root = o.dir;
    this.#dir = o.dir === undefined ? undefined : join(o.dir, 'targets');
    this.#clock = o.clock;
    this.#logger = o.logger;
  }

  /**
   * Creates the directory and takes its lock (see lockStorage), once; load() does it before the
   * first record is read, so before any server is started, and the server before it reads the
   * action history. Throws a StartupError naming the directory when another live remediator holds
   * it, or when it cannot be written (read-only, full, not ours).
   */
  open(): Promise<void> {
    if (this.#root === undefined) return Promise.resolve();
    const root = this.#root;
    this.#locked ??= (async () => {
      try {
        await mkdir(join(root, 'targets'), { recursive: true, mode: 0o700 });
        await lockStorage(root);
      } catch (err) {
        if (err instanceof StartupError) throw err;
        throw new StartupError(`--storage.path ${root}: cannot keep the remediator's state there: ${(err as Error).message}`);
      }
    })();
    return this.#locked;
  }

  /** Flushes, then gives the directory's lock up (a lock left behind is stale once we are gone). */
  async close(): Promise<void> {
    await this.flush();
    if (this.#root === undefined || this.#locked === undefined) return;
    const locked = this.#locked;
    this.#locked = undefined;
    if (await locked.then(() => true, () => false)) await unlockStorage(this.#root);
  }

  /** Loads a target's record; a missing or corrupt file is logged and replaced, never fatal. */
  async load(target: string): Promise<TargetRecord> {
    const known = this.#records.get(target);
    if (known) return known;
    let record = freshRecord();
    if (this.#dir !== undefined) {
      await this.open();
      const scope = spawnScope(await realpath(this.#root!), target);
      record = freshRecord(scope);
      const path = join(this.#dir, fileName(target));
      let text: string | undefined;
      try {
        text = await readFile(path, 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.#logger.error({ target, path, err: (err as Error).message }, 'cannot read the state file; starting afresh');
      }
      if (text !== undefined) {
        let parsed: unknown;
        try {
          parsed = JSON.parse(text);
        } catch {
          parsed = undefined;
        }
        const result = fileSchema.safeParse(parsed);
        if (result.success) record = fromFile(result.data, this.#clock, scope);
        else this.#logger.error({ target, path }, 'the state file is corrupt; replacing it with a fresh record (servers an earlier run started for it are found by their spawn id)');
      }
    }
    this.#records.set(target, record);
    await this.save(target);
    return record;
  }

  get(target: string): TargetRecord | undefined {
    return this.#records.get(target);
  }

  forget(target: string): void {
    this.#records.delete(target);
  }

  /** Persists a target's record; writes of one target happen in order, the last one wins. */
  save(target: string): Promise<void> {
    const record = this.#records.get(target);
    if (this.#dir === undefined || !record) return Promise.resolve();
    const path = join(this.#dir, fileName(target));
    const previous = this.#writes.get(target) ?? Promise.resolve();
    const next = previous
      .then(() => writeAtomic(path, `${JSON.stringify(toFile(record, this.#clock), null, 1)}\n`))
      .catch((err: Error) => this.#logger.error({ target, path, err: err.message }, 'cannot write the state file'));
    this.#writes.set(target, next);
    return next;
  }

  /** Resolves once every write begun so far is on disk. */
  async flush(): Promise<void> {
    await Promise.all(this.#writes.values());
  }
}
