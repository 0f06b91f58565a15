import type { RoundReport } from '../probing/round.ts';

/** A round as kept: its id (for /logs?id=N) and whether a /probe request ran it. */
export type StoredRound = RoundReport & { id: number; probe: boolean };

/** Since when a configured target has been up, or down: its current run of results. */
export interface Streak {
  up: boolean;
  /** Unix milliseconds: when the first round of the run started (the first failed one of an outage). */
  since: number;
  /** That round's id (its log may be gone by now). */
  firstRound: number;
  /** The run began with the first round the exporter ran against the target's URL: it may be older. */
  sinceFirstRound: boolean;
  /** The URL probed: a target whose URL a reload changed starts a new run. */
  url: string;
}

export interface RoundHistoryOptions {
  /** Rounds kept of each configured target, in a ring of its own: a busy target evicts only its own. */
  perTarget?: number;
  /** Rounds kept of all targets together: with many targets each keeps fewer, never fewer than 2. */
  targetsTotal?: number;
  /** Rounds kept of /probe requests, all in one ring of their own. */
  probes?: number;
}

const defaults = { perTarget: 20, targetsTotal: 2000, probes: 100 };
const fewest = 2;

interface Track {
  rounds: StoredRound[];
  streak: Streak | undefined;
}

/** The rings, shared by a history and the handle /probe adds through. */
class Shelf {
  readonly limits: Required<RoundHistoryOptions>;
  next = 1;
  readonly targets = new Map<string, Track>();
  readonly probes: StoredRound[] = [];
  /** Every kept round by id, in the order they were added. */
  readonly byId = new Map<number, StoredRound>();

  constructor(options: RoundHistoryOptions) {
    this.limits = { ...defaults, ...options };
  }

  perTarget(): number {
    return Math.max(fewest, Math.min(this.limits.perTarget, Math.floor(this.limits.targetsTotal / Math.max(1, this.targets.size))));
  }

  /** Puts a round at the head of its ring (newest first) and drops what the ring no longer holds. */
  push(ring: StoredRound[], round: StoredRound, capacity: number): void {
    ring.unshift(round);
    this.byId.set(round.id, round);
    for (const gone of ring.splice(capacity)) this.byId.delete(gone.id);
  }
}

/**
 * The last rounds with their debug logs (blackbox_exporter's /logs), bounded: a ring per configured
 * target, plus one ring for /probe requests (added through `probes`), so neither a busy target nor
 * a flood of /probe requests evicts another target's logs. It also follows each target's current
 * run of results (up or down since when), which outlives the ring.
 */
export class RoundHistory {
  readonly #shelf: Shelf;
  readonly #forProbes: boolean;
  /** The same history, whose add() puts a round in the /probe ring: what the /probe handler is given. */
  readonly probes: RoundHistory;

  /** `probesOf` is for the constructor's own use: it makes the /probe handle of that history. */
  constructor(options: RoundHistoryOptions = {}, probesOf?: RoundHistory) {
    this.#shelf = probesOf ? probesOf.#shelf : new Shelf(options);
    this.#forProbes = probesOf !== undefined;
    this.probes = probesOf ? this : new RoundHistory({}, this);
  }

  /** Keeps a round: a configured target's in its ring (and its run of results), a /probe one in theirs. */
  add(report: RoundReport): StoredRound {
    const shelf = this.#shelf;
    const stored: StoredRound = { ...report, id: shelf.next++, probe: this.#forProbes };
    if (this.#forProbes) {
      shelf.push(shelf.probes, stored, shelf.limits.probes);
      return stored;
    }
    let track = shelf.targets.get(report.target);
    if (!track) shelf.targets.set(report.target, (track = { rounds: [], streak: undefined }));
    shelf.push(track.rounds, stored, shelf.perTarget());
    // A skipped round says nothing of the server: the run goes on.
    const s = track.streak;
    if (report.skipped === undefined && (s === undefined || s.up !== report.up || s.url !== report.url)) {
      track.streak = { up: report.up, since: report.startedAt, firstRound: stored.id, sinceFirstRound: s === undefined || s.url !== report.url, url: report.url };
    }
    return stored;
  }

  get(id: number): StoredRound | undefined {
    return this.#shelf.byId.get(id);
  }

  /** True for an id this history gave out, kept or not: a missing one of these was evicted. */
  issued(id: number): boolean {
    return Number.isInteger(id) && id >= 1 && id < this.#shelf.next;
  }

  /** The kept rounds, newest first, at most `limit` of them. */
  recent(limit = Infinity): StoredRound[] {
    const all = [...this.#shelf.byId.values()];
    return all.slice(Math.max(0, all.length - limit)).reverse();
  }

  /** Since when a configured target has been up or down; undefined before its first (unskipped) round. */
  streak(target: string): Streak | undefined {
    return this.#shelf.targets.get(target)?.streak;
  }

  /** Forgets the targets not named (a reload removed them): their rings and runs go. */
  retain(targets: Iterable<string>): void {
    const keep = new Set(targets);
    for (const [name, track] of this.#shelf.targets) {
      if (keep.has(name)) continue;
      for (const round of track.rounds) this.#shelf.byId.delete(round.id);
      this.#shelf.targets.delete(name);
    }
  }

  /** What is kept, for messages: rounds per target (now) and /probe rounds. */
  limits(): { perTarget: number; probes: number } {
    return { perTarget: this.#shelf.perTarget(), probes: this.#shelf.limits.probes };
  }
}
