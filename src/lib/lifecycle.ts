import type { Reloadable } from './reloader.ts';
import type { Logger } from './log.ts';

export interface ShutdownOptions {
  signals?: NodeJS.Signals[];
  /** A second signal while cleaning up: end what must not outlive us, now, and exit 1. */
  onSecondSignal?: () => void;
}

/**
 * Waits for one of the signals (SIGINT and SIGTERM by default), then runs the cleanup once. A
 * second signal is only logged, or, with onSecondSignal, cuts the cleanup short. A cleanup that
 * fails is logged and sets the exit code to 1. The handlers stay installed: execa's signal-exit
 * re-raises a signal that has no other listener left, which would kill this process half-way
 * through cleanup.
 */
export function onShutdownSignal(logger: Logger, cleanup: () => Promise<void>, options: ShutdownOptions | NodeJS.Signals[] = {}): Promise<void> {
  const o = Array.isArray(options) ? { signals: options } : options;
  return new Promise((resolve) => {
    let stopping = false;
    const handler = (signal: NodeJS.Signals) => {
      if (stopping) {
        if (!o.onSecondSignal) return void logger.warn({ signal }, 'already shutting down');
        logger.warn({ signal }, 'second signal: ending everything now');
        o.onSecondSignal();
        process.exit(1);
      }
      stopping = true;
      logger.info({ signal }, 'shutting down');
      void cleanup()
        .catch((err: unknown) => {
          logger.error({ err: (err as Error).message }, 'shutdown failed');
          process.exitCode = 1;
        })
        .finally(resolve);
    };
    for (const signal of o.signals ?? ['SIGINT', 'SIGTERM']) process.on(signal, handler);
  });
}

/**
 * SIGHUP reloads the config, as with Prometheus; a failure is logged and exported by the reloader
 * and the old config stays. The handler is never removed: without one, SIGHUP would kill the
 * process, even mid-cleanup (the reloader refuses once closed).
 */
export function reloadOnHangup(reloader: Reloadable | undefined): void {
  process.on('SIGHUP', () => void reloader?.reload().catch(() => {}));
}

/** A component could not start (a dependency exited, never became ready): exit 1 with this message. */
export class StartupError extends Error {
  override name = 'StartupError';
}

/** Things started so far, stopped in reverse order: on shutdown, and when start-up fails half-way. */
export class Teardown {
  readonly #steps: Array<() => Promise<void>> = [];
  #run: Promise<void> | undefined;

  /** True once a shutdown has begun (a signal during start-up, say). */
  get started(): boolean {
    return this.#run !== undefined;
  }

  /** Registers how to stop what was just started; once the teardown has begun, stops it at once. */
  add(step: () => Promise<void>): void {
    if (this.#run) {
      this.#run = this.#run.then(() => step().catch(() => {}));
      throw new StartupError('interrupted while starting');
    }
    this.#steps.push(step);
  }

  /** Runs the steps once; every caller waits for the same run. */
  run(): Promise<void> {
    this.#run ??= (async () => {
      for (const step of this.#steps.splice(0).reverse()) await step().catch(() => {});
    })();
    return this.#run;
  }
}
