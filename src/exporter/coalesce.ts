// Requests that ask for the same work while it runs share it: the second /probe of a target that
// an HA pair of Prometheus servers sends at the same moment joins the round the first one started,
// instead of probing the model server twice. Nothing is kept once the work ends: a request after
// that starts it again.

interface Flight<C, T> {
  readonly context: C;
  readonly result: Promise<T>;
  readonly stop: AbortController;
  /** Requests still waiting for the result. */
  waiters: number;
  done: boolean;
}

/** One request's place in a flight. */
export interface Seat<C, T> {
  /** What the flight was started with (its deadline, its store, ...). */
  readonly context: C;
  readonly result: Promise<T>;
  /** False for the request that started the flight, true for those that joined it. */
  readonly joined: boolean;
  /**
   * The request no longer waits (its client went away, or it was answered on its own): once
   * every request of an unfinished flight has left, the flight is stopped. Idempotent.
   */
  leave(): void;
}

export class Coalescer<C, T> {
  readonly #flights = new Map<string, Flight<C, T>>();

  /**
   * Joins the flight under way for `key`, if there is one and `fits` its context (a flight
   * started under another config does not); otherwise starts one with `start`, which gets the
   * signal that stops it. A flight that does not fit is replaced as the one later requests join,
   * and runs on for its own requests.
   */
  take(key: string, fits: (context: C) => boolean, start: (stop: AbortSignal) => { context: C; result: Promise<T> }): Seat<C, T> {
    let flight = this.#flights.get(key);
    const joined = flight !== undefined && fits(flight.context);
    if (!joined) {
      const stop = new AbortController();
      const { context, result } = start(stop.signal);
      const started: Flight<C, T> = { context, stop, waiters: 0, done: false, result: result.finally(() => {
        // Before any waiter resumes, and long before another request can arrive: no result is kept.
        started.done = true;
        if (this.#flights.get(key) === started) this.#flights.delete(key);
      }) };
      this.#flights.set(key, started);
      flight = started;
    }
    const mine = flight!;
    mine.waiters += 1;
    let left = false;
    return {
      context: mine.context,
      result: mine.result,
      joined,
      leave: () => {
        if (left) return;
        left = true;
        mine.waiters -= 1;
        if (mine.waiters === 0 && !mine.done) mine.stop.abort();
      },
    };
  }

  /** Flights under way (for tests and the status page). */
  get size(): number {
    return this.#flights.size;
  }
}
