import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Time as the remediator sees it. Decisions (cooldowns, windows, backoff) run on the monotonic
 * clock, so a wall-clock jump cannot shorten or stretch them; the wall clock is only for what is
 * shown and persisted. Tests pass a fake one.
 */
export interface Clock {
  /** Monotonic milliseconds. */
  now(): number;
  /** Unix milliseconds. */
  wall(): number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const realClock: Clock = {
  now: () => performance.now(),
  wall: () => Date.now(),
  sleep: (ms, signal) => sleep(ms, undefined, signal ? { signal } : undefined).catch(() => {}),
};

/** A monotonic instant as Unix milliseconds, for display and persistence. */
export const toWall = (clock: Clock, mono: number) => clock.wall() - clock.now() + mono;
/** Unix milliseconds (from a state file) back to the monotonic clock of this process. */
export const toMono = (clock: Clock, wall: number) => clock.now() - clock.wall() + wall;
