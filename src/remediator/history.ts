// What the remediator did, why and how it ended: GET /api/v1/actions and the status page read it.
// Bounded, and persisted under --storage.path beside the target records.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../lib/log.ts';
import type { Verdict } from './actions/types.ts';
import { writeAtomic } from './state.ts';

export interface ActionEntry {
  id: number;
  target: string;
  action: string;
  /** What asked for it: a webhook, the Alertmanager reconciler, or the server's own exit. */
  trigger: { source: string; alertname: string; fingerprint: string; starts_at: string };
  /** Every decision stage the trigger passed, in order, and what it said. */
  decisions: Array<{ stage: string; result: string }>;
  started_at: string;
  finished_at: string | undefined;
  /** stale, blocked, invalid: the action did nothing (see Verdict). `interrupted`: it was running when the remediator stopped (killed); how it ended is unknown. */
  outcome: 'running' | 'success' | 'failure' | 'interrupted' | Verdict;
  message: string;
  /** From the action to the server answering again (listing and a one-token generation). */
  time_to_healthy_seconds: number | undefined;
}

export class ActionHistory {
  readonly #path: string | undefined;
  readonly #capacity: number;
  readonly #logger: Logger;
  #entries: ActionEntry[] = [];
  #next = 1;
  #write: Promise<void> = Promise.resolve();

  constructor(o: { dir: string | undefined; logger: Logger; capacity?: number }) {
    this.#path = o.dir === undefined ? undefined : join(o.dir, 'actions.json');
    this.#logger = o.logger;
    this.#capacity = o.capacity ?? 200;
  }

  async load(): Promise<void> {
    if (this.#path === undefined) return;
    try {
      const entries = JSON.parse(await readFile(this.#path, 'utf8')) as unknown;
      if (!Array.isArray(entries)) throw new Error('not a list');
      this.#entries = (entries as ActionEntry[]).filter((e) => typeof e?.id === 'number').slice(0, this.#capacity);
      this.#next = Math.max(0, ...this.#entries.map((e) => e.id)) + 1;
      // Nothing of an earlier run is still running: those it left `running` were cut short.
      const cut = this.#entries.filter((e) => e.outcome === 'running');
      for (const e of cut) Object.assign(e, { outcome: 'interrupted', message: e.message || 'the remediator stopped before this action finished' });
      if (cut.length > 0) this.#persist();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.#logger.error({ path: this.#path, err: (err as Error).message }, 'the action history is unreadable; starting a new one');
    }
  }

  add(entry: Omit<ActionEntry, 'id'>): ActionEntry {
    const stored = { ...entry, id: this.#next++ };
    this.#entries.unshift(stored);
    this.#entries.length = Math.min(this.#entries.length, this.#capacity);
    this.#persist();
    return stored;
  }

  update(entry: ActionEntry, patch: Partial<ActionEntry>): void {
    Object.assign(entry, patch);
    this.#persist();
  }

  recent(): readonly ActionEntry[] {
    return this.#entries;
  }

  async flush(): Promise<void> {
    await this.#write;
  }

  #persist(): void {
    if (this.#path === undefined) return;
    const path = this.#path;
    this.#write = this.#write
      .then(() => writeAtomic(path, `${JSON.stringify(this.#entries, null, 1)}\n`))
      .catch((err: Error) => this.#logger.error({ path, err: err.message }, 'cannot write the action history'));
  }
}
