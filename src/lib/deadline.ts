// Deadlines without AbortSignal.timeout() or AbortSignal.any(): the first keeps its timer until it
// fires, long after a quick probe ended, and the second leaves weak references on the parent
// signal for the garbage collector. A probe's deadline clears its timer and listener when it ends.

/** The reason a deadline aborts with: one shared object, no stack built per timeout. */
export const deadlineExceeded: Error = Object.freeze(Object.assign(new Error('deadline exceeded'), { name: 'TimeoutError', code: 'ETIMEDOUT' }));

export interface Deadline {
  /** Aborts when the parent does or when the time is up, whichever comes first. */
  readonly signal: AbortSignal;
  /** Moves the deadline to ms from now. */
  reset(ms: number): void;
  /** The probe ended: drop the timer and the listener on the parent. */
  clear(): void;
}

export function deadline(parent: AbortSignal, ms: number): Deadline {
  const controller = new AbortController();
  const expire = () => controller.abort(deadlineExceeded);
  const follow = () => controller.abort(parent.reason);
  let timer: NodeJS.Timeout | undefined;
  if (parent.aborted) controller.abort(parent.reason);
  else parent.addEventListener('abort', follow, { once: true });
  const reset = (next: number) => {
    clearTimeout(timer);
    if (!controller.signal.aborted) timer = setTimeout(expire, Math.max(0, next));
  };
  reset(ms);
  return {
    signal: controller.signal,
    reset,
    clear: () => {
      clearTimeout(timer);
      parent.removeEventListener('abort', follow);
    },
  };
}

/** Runs fn under a deadline of its own (capped by the parent's), cleared when fn settles. */
export async function within<T>(parent: AbortSignal, ms: number, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const d = deadline(parent, ms);
  try {
    return await fn(d.signal);
  } finally {
    d.clear();
  }
}
