import type { Logger } from './log.ts';

/** Waits for SIGINT or SIGTERM, then runs the cleanup once. */
export function onShutdownSignal(logger: Logger, cleanup: () => Promise<void>): Promise<void> {
  return new Promise((resolve) => {
    const handler = (signal: NodeJS.Signals) => {
      process.off('SIGINT', handler).off('SIGTERM', handler);
      logger.info({ signal }, 'shutting down');
      void cleanup().finally(resolve);
    };
    process.on('SIGINT', handler).on('SIGTERM', handler);
  });
}
