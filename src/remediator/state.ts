// One record per target: the only place decisions read and write. Persisted atomically (write,
// fsync, rename) under --storage.path, so a remediator that is killed and started again knows
// what it did, what it owns and when it may act next.
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import type { Logger } from '../log.ts';
import { toMono, toWall, type Clock } from './clock.ts';

/** The model server a `process` action started: enough to know it again after a restart of ours. */
export interface OwnedProcess {
  pid: number;
  pgid: number;
  /** /proc/PID/stat field 22: a reused pid has another start time. */
  startTicks: string;
  argv: string[];
}

export interface ActionSummary {
  at: string;
  alertname: string;
  outcome: 'success' | 'failure';
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
  /** A restart under way (persisted: a remediator killed mid-restart finds it on its next start). */
  inProgress: { since: number; alertname: string } | undefined;
  owned: OwnedProcess | undefined;
  /** Written just before spawning, cleared once the pid is recorded: a crash in between is found. */
  spawning: { since: number; argv: string[] } | undefined;
  /** Alert instances acted on (fingerprint@startsAt -> monotonic ms), kept while they matter. */
  seen: Record<string, number>;
  /** Consecutive respawns after exits, for the backoff. */
  respawns: number;
  lastAction: ActionSummary | undefined;
}

export const freshRecord = (): TargetRecord => ({ restarts: 0, unexpectedExits: 0, cooldownUntil: 0, restartTimes: [], startedAt: undefined, inProgress: undefined, owned: undefined, spawning: undefined, seen: {}, respawns: 0, lastAction: undefined });

// On disk every instant is Unix ms (a monotonic clock restarts with the process).
const wallTime = z.number().finite();
const fileSchema = z.strictObject({
  version: z.literal(1),
  restarts: z.int().min(0),
  unexpected_exits: z.int().min(0),
  cooldown_until: wallTime,
  restart_times: z.array(wallTime),
  started_at: wallTime.optional(),
  in_progress: z.strictObject({ since: wallTime, alertname: z.string() }).optional(),
  owned: z.strictObject({ pid: z.int().positive(), pgid: z.int().positive(), start_ticks: z.string(), argv: z.array(z.string()) }).optional(),
  spawning: z.strictObject({ since: wallTime, argv: z.array(z.string()) }).optional(),
  seen: z.record(z.string(), wallTime),
  respawns: z.int().min(0),
  last_action: z.strictObject({ at: z.string(), alertname: z.string(), outcome: z.enum(['success', 'failure']), message: z.string() }).optional(),
});
type RecordFile = z.output<typeof fileSchema>;

function toFile(r: TargetRecord, clock: Clock): RecordFile {
  const w = (mono: number) => Math.round(toWall(clock, mono));
  return {
    version: 1,
    restarts: r.restarts,
    unexpected_exits: r.unexpectedExits,
    cooldown_until: w(r.cooldownUntil),
    restart_times: r.restartTimes.map(w),
    ...(r.startedAt === undefined ? {} : { started_at: w(r.startedAt) }),
    ...(r.inProgress ? { in_progress: { since: w(r.inProgress.since), alertname: r.inProgress.alertname } } : {}),
    ...(r.owned ? { owned: { pid: r.owned.pid, pgid: r.owned.pgid, start_ticks: r.owned.startTicks, argv: r.owned.argv } } : {}),
    ...(r.spawning ? { spawning: { since: w(r.spawning.since), argv: r.spawning.argv } } : {}),
    seen: Object.fromEntries(Object.entries(r.seen).map(([k, v]) => [k, w(v)])),
    respawns: r.respawns,
    ...(r.lastAction ? { last_action: r.lastAction } : {}),
  };
}

function fromFile(f: RecordFile, clock: Clock): TargetRecord {
  const m = (wall: number) => toMono(clock, wall);
  return {
    restarts: f.restarts,
    unexpectedExits: f.unexpected_exits,
    cooldownUntil: m(f.cooldown_until),
    restartTimes: f.restart_times.map(m),
    startedAt: f.started_at === undefined ? undefined : m(f.started_at),
    inProgress: f.in_progress && { since: m(f.in_progress.since), alertname: f.in_progress.alertname },
    owned: f.owned && { pid: f.owned.pid, pgid: f.owned.pgid, startTicks: f.owned.start_ticks, argv: f.owned.argv },
    spawning: f.spawning && { since: m(f.spawning.since), argv: f.spawning.argv },
    seen: Object.fromEntries(Object.entries(f.seen).map(([k, v]) => [k, m(v)])),
    respawns: f.respawns,
    lastAction: f.last_action,
  };
}

/** Writes a file so that a reader sees the old or the new content, never half of it. */
export async function writeAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  const file = await open(tmp, 'w', 0o600);
  try {
    await file.writeFile(text);
    await file.sync();
  } finally {
    await file.close();
  }
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

/** The records of every target, on disk under dir/targets/ (or only in memory without a dir). */
export class StateStore {
  readonly #dir: string | undefined;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #records = new Map<string, TargetRecord>();
  readonly #writes = new Map<string, Promise<void>>();

  constructor(o: { dir: string | undefined; clock: Clock; logger: Logger }) {
    this.#dir = o.dir === undefined ? undefined : join(o.dir, 'targets');
    this.#clock = o.clock;
    this.#logger = o.logger;
  }

  /** Loads a target's record; a missing or corrupt file is logged and replaced, never fatal. */
  async load(target: string): Promise<TargetRecord> {
    const known = this.#records.get(target);
    if (known) return known;
    let record = freshRecord();
    if (this.#dir !== undefined) {
      await mkdir(this.#dir, { recursive: true, mode: 0o700 });
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
        if (result.success) record = fromFile(result.data, this.#clock);
        else this.#logger.error({ target, path }, 'the state file is corrupt; replacing it with a fresh record');
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
