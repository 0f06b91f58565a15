import type { RoundReport } from '../probing/round.ts';

export type StoredRound = RoundReport & { id: number };

/** The last rounds with their debug logs (blackbox_exporter's /logs): bounded, newest first. */
export class RoundHistory {
  readonly #capacity: number;
  readonly #rounds: StoredRound[] = [];
  #next = 1;

  constructor(capacity = 100) {
    this.#capacity = capacity;
  }

  add(report: RoundReport): StoredRound {
    const stored = { ...report, id: this.#next++ };
    this.#rounds.unshift(stored);
    if (this.#rounds.length > this.#capacity) this.#rounds.pop();
    return stored;
  }

  get(id: number): StoredRound | undefined {
    return this.#rounds.find((r) => r.id === id);
  }

  recent(): readonly StoredRound[] {
    return this.#rounds;
  }
}
