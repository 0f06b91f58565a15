import { isDeepStrictEqual } from 'node:util';
import type { Target } from '../probing/module.ts';
import { ConfigReloader, type ConfigSource } from '../lib/reloader.ts';
import type { ExporterConfig } from './config.ts';
import { keyFingerprint, readApiKeys } from '../probing/api-keys.ts';
import { Counter, Registry } from '../lib/prom-client.ts';
import { componentRegistry } from '../lib/build-info.ts';
import type { ListenAddress } from '../lib/flags.ts';
import type { Logger } from '../lib/log.ts';
import { webGuard, type WebConfig } from '../lib/web-config.ts';
import { createOpsApp, listen, type Listening, type StreamedMetrics } from '../lib/web.ts';
import { localErrorCodes } from '../probing/errors.ts';
import { RoundHistory } from './history.ts';
import { probeHandler, probeJoinedCounter } from './probe-handler.ts';
import { allMetrics } from '../probing/round.ts';
import { Scheduler } from './scheduler.ts';
import { SeriesStore, type WriteOptions } from '../probing/series.ts';
import { exporterStatusPage, roundLog } from './status-page.ts';

export interface ExporterOptions {
  config: ExporterConfig;
  listen: ListenAddress;
  logger: Logger;
  /** The file the config came from, with its text and how to read it: enables reloading. */
  configFile?: ConfigSource<ExporterConfig> | undefined;
  /** Serve POST /-/reload (--web.enable-lifecycle). */
  enableLifecycle?: boolean;
  /** Seconds /probe keeps back from Prometheus' scrape timeout (--probe.timeout-offset). */
  timeoutOffsetSeconds?: number;
  /** TLS and basic auth (--web.config.file). */
  webConfig?: WebConfig | undefined;
  /** Links in the status page's navigation to the other components (--web.link): name -> URL. */
  links?: Readonly<Record<string, string>> | undefined;
  /** How /metrics writes the targets' series: slice size, rendering time between turns, and (tests) the clock and the turn. */
  metricsWrite?: WriteOptions | undefined;
}

export interface RunningExporter extends Listening {
  readonly scheduler: Scheduler;
  /** Set when started from a file: re-reads it (also on SIGHUP). */
  reloader: ConfigReloader<ExporterConfig> | undefined;
}

/**
 * What /metrics serves: the component's own metrics (process, build, reloads) as prom-client
 * renders them, then every target's series as the store writes them: in slices, giving the event
 * loop a turn every 25 ms of rendering, so probes stay on schedule while a large exposition is
 * written (src/lib/web.ts streams it, gzips it, and lets concurrent scrapes share one rendering).
 */
class Exposition implements StreamedMetrics {
  readonly #component: Registry;
  readonly #store: SeriesStore;
  readonly #options: WriteOptions;
  readonly #renders: Counter;
  constructor(component: Registry, store: SeriesStore, renders: Counter, options: WriteOptions) {
    this.#component = component;
    this.#store = store;
    this.#renders = renders;
    this.#options = options;
  }
  get contentType(): string {
    return this.#component.contentType;
  }
  async write(sink: (chunk: string) => void): Promise<void> {
    this.#renders.inc();
    sink(await this.#component.metrics());
    await this.#store.write(sink, this.#options);
  }
}

/** The exporter's own metrics (besides the targets' series and the config reloader's). */
export function exporterRegistry(): { registry: Registry; skipped: Counter; joined: Counter; renders: Counter } {
  const registry = componentRegistry();
  const skipped = new Counter({ name: 'qwen_sentinel_exporter_rounds_skipped_total', help: "Rounds not run for a reason of the exporter's own (code: EMFILE, ENFILE out of file descriptors, EADDRNOTAVAIL out of local ports, ENOBUFS, ENOMEM); they leave the target's series as they were.", labelNames: ['code'], registers: [registry] });
  for (const code of localErrorCodes) skipped.inc({ code }, 0);
  const renders = new Counter({ name: 'qwen_sentinel_exporter_metrics_renders_total', help: 'Renderings of the /metrics exposition (this one included); scrapes that arrive while one is under way share it, so an HA pair of Prometheus servers can cost one.', registers: [registry] });
  const joined = probeJoinedCounter(registry);
  return { registry, skipped, renders, joined };
}

/** What a target's series depend on: a reload that changes none of it keeps the target "probed". */
const probingOf = (config: ExporterConfig, t: Target) => {
  const { url, server, model, interval, timeout, api_key_file, api_key_env } = t;
  return { url, server, model, interval, timeout, api_key_file, api_key_env, module: config.modules[t.module] };
};

/** Starts probing and serving /metrics, /probe and the status page; used by the CLI and by `stack`. */
export async function startExporter({ config: initial, listen: address, logger, configFile, enableLifecycle, timeoutOffsetSeconds = 0.5, webConfig, links, metricsWrite }: ExporterOptions): Promise<RunningExporter> {
  const { registry, skipped, renders, joined } = exporterRegistry();
  // The targets' series live in a store of their own, rendered to text by it: /metrics serves both.
  const store = new SeriesStore(new Registry(), { targetLabel: true, cumulative: true, metrics: allMetrics });
  const onSkipped = (_target: string, code: string) => skipped.inc({ code });
  const history = new RoundHistory();
  let config = initial;
  let apiKeys = await readApiKeys(config);
  let scheduler = new Scheduler(config, { store, history, logger, apiKeys, onSkipped });

  // A valid new config replaces every probe loop; an invalid one never gets this far. Series of
  // targets and probes it removed go; a target whose definition is unchanged stays "probed".
  const apply = async (next: ExporterConfig) => {
    const nextKeys = await readApiKeys(next); // an unreadable key rejects the reload
    await scheduler.stop();
    for (const old of config.targets) {
      const kept = next.targets.find((t) => t.name === old.name);
      if (!kept) await store.drop(old.name);
      else for (const probe of config.modules[old.module]!.probes) if (!next.modules[kept.module]!.probes.includes(probe)) await store.drop(old.name, probe);
    }
    const unchanged = new Set(next.targets.filter((t) => {
      const before = config.targets.find((o) => o.name === t.name);
      return before !== undefined && isDeepStrictEqual(probingOf(config, before), probingOf(next, t));
    }).map((t) => t.name));
    const probed = new Set([...scheduler.probed()].filter((name) => unchanged.has(name)));
    const carried = scheduler.carry();
    config = next;
    history.retain(next.targets.map((t) => t.name));
    apiKeys = nextKeys;
    scheduler = new Scheduler(config, { store, history, logger, probed, carried, apiKeys, onSkipped });
    scheduler.start();
  };
  // A rotated key file is a change too, even when the config text is not.
  const withKeys = async (c: ExporterConfig, text: string) => `${text}\0${await keyFingerprint(c)}`;
  const reloader = configFile ? new ConfigReloader({ source: configFile, registry, logger, apply, identity: withKeys }) : undefined;
  await reloader?.started(config, configFile!.text);

  const app = createOpsApp({
    registry: new Exposition(registry, store, renders, metricsWrite ?? {}),
    isReady: () => scheduler.ready(),
    home: () => exporterStatusPage({ targets: scheduler.status(), modules: config.modules, history, external: links }),
    reloader,
    enableLifecycle,
    guard: webConfig ? webGuard(webConfig) : undefined,
    // Prometheus' busiest path: served before Express when no guard is set (createOpsApp).
    plain: [{ method: 'GET', path: '/probe', handle: probeHandler({ config: () => config, apiKeys: () => apiKeys, history: history.probes, timeoutOffsetSeconds, joined }) }],
  });
  app.get('/logs', (req, res) => {
    const { status, type, body } = roundLog(history, req.query.id);
    res.status(status).type(type).send(body);
  });
  const listening = await listen(app, address, webConfig?.tls);
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
