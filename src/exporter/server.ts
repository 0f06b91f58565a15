import type { Config } from '../config/schema.ts';
import { ConfigReloader } from '../config/reloader.ts';
import type { ListenAddress } from '../flags.ts';
import type { Logger } from '../log.ts';
import { createOpsApp, listen, type Listening } from '../web.ts';
import { ExporterMetrics } from './metrics.ts';
import { Scheduler } from './scheduler.ts';

export interface ExporterOptions {
  config: Config;
  listen: ListenAddress;
  logger: Logger;
  /** The file the config came from, with its text: enables reloading. */
  configFile?: { path: string; text: string };
  /** Serve POST /-/reload (--web.enable-lifecycle). */
  enableLifecycle?: boolean;
}

export interface RunningExporter extends Listening {
  readonly scheduler: Scheduler;
  /** Set when started from a file: re-reads it (also on SIGHUP). */
  reloader: ConfigReloader | undefined;
}

/** Starts probing and serving /metrics; used by the CLI and by `stack`. */
export async function startExporter({ config, listen: address, logger, configFile, enableLifecycle }: ExporterOptions): Promise<RunningExporter> {
  const metrics = new ExporterMetrics(config.targets);
  let scheduler = new Scheduler(config.targets, { observer: metrics, logger });
  let ready = false;
  void scheduler.firstRounds().then(() => (ready = true));

  // A valid new config replaces every probe loop; an invalid one never gets this far.
  const reloader = configFile
    ? new ConfigReloader({
        file: configFile.path,
        registry: metrics.registry,
        logger,
        apply: async (next) => {
          await scheduler.stop();
          metrics.setTargets(next.targets);
          scheduler = new Scheduler(next.targets, { observer: metrics, logger });
          scheduler.start();
        },
      })
    : undefined;
  await reloader?.started(config, configFile!.text);

  const app = createOpsApp({ registry: metrics.registry, isReady: () => ready, title: 'qwen-sentinel exporter', reloader, enableLifecycle });
  const listening = await listen(app, address);
  scheduler.start();
  logger.info({ url: listening.url, targets: config.targets.map((t) => t.name) }, 'exporter listening');
  return {
    ...listening,
    get scheduler() {
      return scheduler;
    },
    reloader,
    close: async () => {
      await reloader?.close();
      await scheduler.stop();
      await listening.close();
    },
  };
}
