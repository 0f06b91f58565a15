import type { Logger } from './log.ts';

/**
 * Waits for SIGINT or SIGTERM, then runs the cleanup once; a second signal is only logged.
 * The handlers stay installed: execa's signal-exit re-raises a signal that has no other listener
 * left, which would kill this process half-way through its cleanup.
 */
export function onShutdownSignal(logger: Logger, cleanup: () => Promise<void>): Promise<void> {
  return new Promise((resolve) => {
    let stopping = false;
    const handler = (signal: NodeJS.Signals) => {
      if (stopping) return void logger.warn({ signal }, 'already shutting down');
      stopping = true;
      logger.info({ signal }, 'shutting down');
      void cleanup().finally(resolve);
    };
    process.on('SIGINT', handler).on('SIGTERM', handler);
  });
}

/** A component could not start (a dependency exited, never became ready): exit 1 with this message. */
export class StartupError extends Error {
  override name = 'StartupError';
}

/** Things started so far, stopped in reverse order: on shutdown, and when start-up fails half-way. */
export class Teardown {
  readonly #steps: Array<() => Promise<void>> = [];
  #done = false;

  /** Registers how to stop what was just started; after run() (Ctrl-C mid-start) it stops it at once. */
  add(step: () => Promise<void>): void {
    if (this.#done) {
      void step().catch(() => {});
      throw new StartupError('interrupted while starting');
    }
    this.#steps.push(step);
  }

  async run(): Promise<void> {
    this.#done = true;
    for (const step of this.#steps.splice(0).reverse()) await step().catch(() => {});
  }
}
