import { isDeepStrictEqual } from 'node:util';
import { ConfigReloader, type ConfigSource } from '../lib/reloader.ts';
import { readApiKeys } from '../probing/api-keys.ts';
import type { ListenAddress } from '../lib/flags.ts';
import type { Logger } from '../lib/log.ts';
import { webGuard, type WebConfig } from '../lib/web-config.ts';
import { createOpsApp, listen, type Listening } from '../lib/web.ts';
import { apiRouter } from './api.ts';
import type { RemediatorConfig as Config } from './config.ts';
import { realClock, type Clock } from './clock.ts';
import { ActionHistory } from './history.ts';
import { RemediatorMetrics } from './metrics.ts';
import { DingtalkNotifier, readDingtalk } from './notify/dingtalk.ts';
import { startReconciler } from './reconcile.ts';
import { Remediator } from './remediator.ts';
import { StateStore } from './state.ts';
import { TargetSet } from './targets.ts';
import { remediatorStatusPage } from './status-page.ts';
import { loadToken } from './token.ts';
import { probeVerifier } from './verify.ts';
import { hasToken, webhookHandler, type WebhookSettings } from './webhook.ts';

export interface RemediatorServerOptions {
  config: Config;
  token: string;
  listen: ListenAddress;
  logger: Logger;
  /** Where state records and the action history are kept (--storage.path); none: memory only. */
  storagePath?: string | undefined;
  /** Where managed servers' output goes (tests silence it). */
  stdio?: 'inherit' | 'ignore';
  /** The file the config came from, with its text and how to read it: enables reloading. */
  configFile?: ConfigSource<Config> | undefined;
  /** Serve POST /-/reload (--web.enable-lifecycle). */
  enableLifecycle?: boolean;
  /** TLS and basic auth (--web.config.file). */
  webConfig?: WebConfig | undefined;
  clock?: Clock;
  /** Aborted by a second signal: every owned server ends now, also while still starting up. */
  kill?: AbortSignal;
  /** Links in the status page's navigation to the other components (--web.link): name -> URL. */
  links?: Readonly<Record<string, string>> | undefined;
}

export interface RunningRemediator extends Listening {
  remediator: Remediator;
  reloader: ConfigReloader<Config> | undefined;
  /** A second signal: end every owned server now. */
  kill(): void;
}

export { remediationTargets } from './targets.ts';

const loopback = (host: string) => host === 'localhost' || host === '::1' || host.startsWith('127.');

/** Builds the actions, serves the webhook, the API and metrics, then adopts or starts the servers it owns. */
export async function startRemediator(o: RemediatorServerOptions): Promise<RunningRemediator> {
  const clock = o.clock ?? realClock;
  const source = o.configFile?.path ?? 'config';
  const metrics = new RemediatorMetrics();
  const store = new StateStore({ dir: o.storagePath, clock, logger: o.logger });
  const history = new ActionHistory({ dir: o.storagePath, logger: o.logger });
  // The directory is ours (its lock taken, writable) before anything in it is read or rewritten.
  await store.open();
  await history.load();
  let config = o.config;
  let apiKeys = await readApiKeys(config);
  let byName = new Map(config.targets.map((t) => [t.name, t]));
  const verifier = probeVerifier({ targets: () => byName, apiKey: (t) => apiKeys.forTarget(t), clock });
  const dingtalk = new DingtalkNotifier({ settings: await readDingtalk(config), logger: o.logger, metrics, clock });
  // The policy object is created after its actions, whose hooks report back to it.
  let remediator: Remediator | undefined;
  const targets = new TargetSet({
    metrics,
    store,
    clock,
    logger: o.logger,
    stdio: o.stdio,
    hooks: (name) => ({
      running: (pid) => metrics.processUp.set({ target: name }, pid === undefined ? 0 : 1),
      unexpectedExit: (detail) => remediator?.recordExit(name, detail),
    }),
  });
  await targets.build(config, source);
  const r = new Remediator({ targets: targets.managed, match: config.remediator.match, staleAfterMs: config.remediator.stale_after, logger: o.logger, metrics, clock, store, history, verifier, notify: (action) => dingtalk.notify(action) });
  remediator = r;
  o.kill?.addEventListener('abort', () => r.kill(), { once: true });
  const settings: WebhookSettings = { token: o.token, maxBodyBytes: config.remediator.max_body_bytes };
  const alertmanager = new AlertmanagerReader({ remediator: () => r, metrics, logger: o.logger, clock });

  // A reload reads every secret first, plans the targets (refusing to touch an owned server), stops
  // what a replaced action is doing, then puts the new config into effect.
  const apply = async (next: Config) => {
    const token = await loadToken(next);
    const nextKeys = await readApiKeys(next);
    const nextDingtalk = await readDingtalk(next);
    const plan = await targets.plan(next, source);
    // A restart command runs in its own group: end it, then wait.
    for (const entry of plan.replaced) await entry.managed.action.stop();
    await r.reconfigure([...plan.next.values()].map((e) => e.managed), next.remediator.match, next.remediator.stale_after);
    targets.commit(plan);
    config = next;
    await alertmanager.follow(next.remediator.alertmanager);
    byName = new Map(next.targets.map((t) => [t.name, t]));
    apiKeys = nextKeys;
    dingtalk.configure(nextDingtalk);
    settings.token = token;
    settings.maxBodyBytes = next.remediator.max_body_bytes;
  };
  // A rotated token file (or DingTalk URL or secret file) is a change too, even when the config text is not.
  const identity = async (c: Config, text: string) => {
    const token = await loadToken(c).catch((err: Error) => err.message);
    const notify = await readDingtalk(c).then((d) => JSON.stringify(d) ?? '', (err: Error) => err.message);
    return `${text}\0${token}\0${notify}`;
  };
  const reloader = o.configFile ? new ConfigReloader({ source: o.configFile, registry: metrics.registry, logger: o.logger, apply, identity }) : undefined;
  await reloader?.started(config, o.configFile!.text);

  let ready = false;
  const bearer = (header: string | undefined) => hasToken(header, settings.token);
  const app = createOpsApp({
    registry: metrics.registry,
    isReady: () => ready,
    home: () => remediatorStatusPage(r.snapshot(), r.recentActions(), { external: o.links }),
    reloader,
    enableLifecycle: o.enableLifecycle,
    // Basic auth guards every path; a request with the webhook's own token (Alertmanager) passes.
    guard: o.webConfig ? webGuard(o.webConfig, { skip: (req) => bearer(req.get('authorization')) }) : undefined,
    plain: [{ method: 'POST', path: '/webhook', handle: webhookHandler({ settings, remediator: () => r, metrics, logger: o.logger }) }],
  });
  app.use(apiRouter({ remediator: () => r, authorized: bearer }));
  // Listen first: if the port is taken, no model server has been started to be left behind.
  const listening = await listen(app, o.listen, o.webConfig?.tls);
  if (!o.webConfig?.tls && !loopback(o.listen.host)) o.logger.warn({ address: o.listen.host }, 'listening beyond loopback without TLS: the webhook token travels in clear text (set tls_server_config in --web.config.file)');
  try {
    await r.start();
  } catch (err) {
    await listening.close();
    await r.stop();
    throw err;
  }
  ready = true;
  // Reading Alertmanager starts once start-up is done; a reload before that only records the section.
  await alertmanager.start(config.remediator.alertmanager);
  o.logger.info({ url: listening.url, targets: targets.names, storage: o.storagePath ?? null, reconcile: config.remediator.alertmanager?.url ?? null, notify: config.remediator.notify?.dingtalk ? ['dingtalk'] : [] }, 'remediator listening');
  return {
    ...listening,
    remediator: r,
    reloader,
    kill: () => r.kill(),
    close: async () => {
      await reloader?.close();
      await alertmanager.stop();
      await listening.close();
      await r.stop();
      // The last actions' messages (a shutdown interrupts restarts), each bounded by its timeout.
      await dingtalk.drain();
    },
  };
}

type AlertmanagerSection = Config['remediator']['alertmanager'];

type ReaderDeps = Omit<Parameters<typeof startReconciler>[0], 'url' | 'intervalMs' | 'receiver'>;

/** Reads Alertmanager's active alerts while a section names it; follows the section across reloads. */
class AlertmanagerReader {
  readonly #deps: ReaderDeps;
  #section: AlertmanagerSection;
  #started = false;
  #reconciler: ReturnType<typeof startReconciler> | undefined;

  constructor(deps: ReaderDeps) {
    this.#deps = deps;
  }

  async start(section: AlertmanagerSection): Promise<void> {
    this.#started = true;
    this.#section = section;
    this.#reconciler = this.#run(section);
  }

  /** A reload: restart reading only when the section changed (and only once started). */
  async follow(section: AlertmanagerSection): Promise<void> {
    if (isDeepStrictEqual(section, this.#section)) return;
    this.#section = section;
    if (!this.#started) return;
    await this.#reconciler?.stop();
    this.#reconciler = this.#run(section);
  }

  async stop(): Promise<void> {
    await this.#reconciler?.stop();
  }

  #run(a: AlertmanagerSection) {
    return a ? startReconciler({ ...this.#deps, url: a.url, intervalMs: a.interval, receiver: a.receiver }) : undefined;
  }
}
