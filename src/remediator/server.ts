import { isDeepStrictEqual } from 'node:util';
import { ConfigError } from '../lib/errors.ts';
import { ConfigReloader, type ConfigSource } from '../lib/reloader.ts';
import { readApiKeys } from '../probing/api-keys.ts';
import type { ListenAddress } from '../lib/flags.ts';
import type { Logger } from '../lib/log.ts';
import { basicAuth, type WebConfig } from '../lib/web-config.ts';
import { createOpsApp, listen, type Listening } from '../lib/web.ts';
import { actions } from './actions/index.ts';
import type { Remediation, RemediatorConfig as Config } from './config.ts';
import { realClock, type Clock } from './clock.ts';
import { ActionHistory } from './history.ts';
import { RemediatorMetrics } from './metrics.ts';
import { DingtalkNotifier, readDingtalk } from './notify/dingtalk.ts';
import { startReconciler } from './reconcile.ts';
import { Remediator } from './remediator.ts';
import type { ManagedTarget } from './stages.ts';
import { StateStore } from './state.ts';
import { remediatorStatusPage } from './status-page.ts';
import { loadToken } from './token.ts';
import { probeVerifier } from './verify.ts';
import { hasToken, webhookRouter, type WebhookSettings } from './webhook.ts';

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
}

export interface RunningRemediator extends Listening {
  remediator: Remediator;
  reloader: ConfigReloader<Config> | undefined;
  /** A second signal: end every owned server now. */
  kill(): void;
}

interface Entry {
  managed: ManagedTarget;
  remediation: Remediation;
}

/** The targets the remediator acts for; a config with none is refused, at start-up and on reload. */
export function remediationTargets(config: Config, source: string): Array<{ name: string; remediation: Remediation }> {
  const targets = config.targets.flatMap((t) => (t.remediation ? [{ name: t.name, remediation: t.remediation }] : []));
  if (targets.length === 0) throw new ConfigError(`${source}: targets: no target has a remediation section`);
  return targets;
}

/** The action kinds whose server the remediator starts and owns. */
const ownerKinds = Object.values(actions).filter((k) => k.owns).map((k) => k.name).join(', ');

const loopback = (host: string) => host === 'localhost' || host === '::1' || host.startsWith('127.');

/** Builds the actions, serves the webhook, the API and metrics, then adopts or starts the servers it owns. */
export async function startRemediator(o: RemediatorServerOptions): Promise<RunningRemediator> {
  const clock = o.clock ?? realClock;
  const metrics = new RemediatorMetrics();
  const store = new StateStore({ dir: o.storagePath, clock, logger: o.logger });
  const history = new ActionHistory({ dir: o.storagePath, logger: o.logger });
  await history.load();
  let config = o.config;
  let apiKeys = await readApiKeys(config);
  let byName = new Map(config.targets.map((t) => [t.name, t]));
  const verifier = probeVerifier({ targets: () => byName, apiKey: (t) => apiKeys.forTarget(t), clock });
  const dingtalk = new DingtalkNotifier({ settings: await readDingtalk(config), logger: o.logger, metrics, clock });
  // The policy object is created after its actions, whose hooks report back to it.
  let remediator: Remediator | undefined;

  const build = async (name: string, remediation: Remediation): Promise<Entry> => {
    metrics.addTarget(name, remediation.action);
    const kind = actions[remediation.action];
    const record = await store.load(name);
    const action = kind.create(remediation as never, {
      target: name,
      logger: o.logger,
      record,
      persist: () => store.save(name),
      clock,
      stdio: o.stdio,
      hooks: {
        running: (pid) => metrics.processUp.set({ target: name }, pid === undefined ? 0 : 1),
        unexpectedExit: (detail) => remediator?.recordExit(name, detail),
      },
    });
    const managed: ManagedTarget = {
      name,
      action,
      owns: kind.owns,
      cooldownMs: remediation.cooldown,
      startupTimeoutMs: remediation.startup_timeout,
      confirm: remediation.confirm,
      circuit: { maxRestarts: remediation.circuit.max_restarts, windowMs: remediation.circuit.window },
      restartOnExit: kind.restartsOnExit?.(remediation as never) ?? false,
    };
    return { managed, remediation };
  };

  let entries = new Map<string, Entry>();
  for (const { name, remediation } of remediationTargets(config, o.configFile?.path ?? 'config')) entries.set(name, await build(name, remediation));
  const r = new Remediator({ targets: [...entries.values()].map((e) => e.managed), match: config.remediator.match, staleAfterMs: config.remediator.stale_after, logger: o.logger, metrics, clock, store, history, verifier, notify: (action) => dingtalk.notify(action) });
  remediator = r;
  o.kill?.addEventListener('abort', () => r.kill(), { once: true });
  const settings: WebhookSettings = { token: o.token, maxBodyBytes: config.remediator.max_body_bytes };

  let reconciler: ReturnType<typeof startReconciler> | undefined;
  let readAlertmanager: ((section: Config['remediator']['alertmanager']) => Promise<void>) | undefined;

  // A reload may add, change or drop targets whose servers the remediator does not own, and change
  // auth and matching. It may not touch a target whose server it owns (process): that server runs
  // under this remediator. A target whose action changes first ends the action under way.
  const apply = async (next: Config) => {
    const token = await loadToken(next);
    const nextKeys = await readApiKeys(next);
    const nextDingtalk = await readDingtalk(next);
    const wanted = new Map(remediationTargets(next, o.configFile!.path).map((t) => [t.name, t.remediation]));
    const touched = [...new Set([...entries.keys(), ...wanted.keys()])].filter((name) => {
      const [before, after] = [entries.get(name)?.remediation, wanted.get(name)];
      const owned = (x: Remediation | undefined) => x !== undefined && actions[x.action].owns;
      return (owned(before) || owned(after)) && !isDeepStrictEqual(before, after);
    });
    if (touched.length > 0) {
      throw new ConfigError(`${o.configFile!.path}: targets: ${touched.join(', ')}: a target whose server the remediator owns (action ${ownerKinds}) cannot be added, changed or removed by a reload; restart the remediator`);
    }
    const nextEntries = new Map<string, Entry>();
    for (const [name, remediation] of wanted) {
      const kept = entries.get(name);
      nextEntries.set(name, kept && isDeepStrictEqual(kept.remediation, remediation) ? kept : await build(name, remediation));
    }
    const replaced = [...entries].filter(([name, entry]) => nextEntries.get(name) !== entry).map(([, entry]) => entry);
    // Stop what a replaced action is doing (a restart command runs in its own group), then wait.
    for (const entry of replaced) await entry.managed.action.stop();
    await r.reconfigure([...nextEntries.values()].map((e) => e.managed), next.remediator.match, next.remediator.stale_after);
    for (const [name, entry] of entries) if (!nextEntries.has(name)) metrics.removeTarget(name, entry.remediation.action);
    entries = nextEntries;
    const readsChanged = !isDeepStrictEqual(next.remediator.alertmanager, config.remediator.alertmanager);
    config = next;
    // Reading Alertmanager follows the config too (before start-up finished, start() reads it).
    if (readsChanged) await readAlertmanager?.(next.remediator.alertmanager);
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
    home: () => remediatorStatusPage(r.snapshot(), r.recentActions()),
    reloader,
    enableLifecycle: o.enableLifecycle,
    // Basic auth guards every path; a request with the webhook's own token (Alertmanager) passes.
    guard: o.webConfig?.users ? basicAuth(o.webConfig.users, { skip: (req) => bearer(req.get('authorization')) }) : undefined,
  });
  app.get('/api/v1/targets', (_req, res) => {
    res.json({ targets: r.snapshot() });
  });
  app.get('/api/v1/actions', (_req, res) => {
    res.json({ actions: r.recentActions() });
  });
  app.post('/api/v1/targets/:name/circuit/close', (req, res) => {
    if (!bearer(req.get('authorization'))) return void res.status(401).set('www-authenticate', 'Bearer').json({ error: 'missing or wrong bearer token' });
    if (!r.closeCircuit(req.params.name)) return void res.status(404).json({ error: `no target ${JSON.stringify(req.params.name.slice(0, 200))}` });
    res.json({ status: 'closed', target: req.params.name });
  });
  app.use(webhookRouter({ settings, remediator: () => r, metrics, logger: o.logger }));
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
  const am = config.remediator.alertmanager;
  const startReading = (a: typeof am) => (a ? startReconciler({ url: a.url, intervalMs: a.interval, receiver: a.receiver, remediator: () => r, metrics, logger: o.logger, clock }) : undefined);
  reconciler = startReading(am);
  readAlertmanager = async (next) => {
    await reconciler?.stop();
    reconciler = startReading(next);
  };
  o.logger.info({ url: listening.url, targets: [...entries.keys()], storage: o.storagePath ?? null, reconcile: am?.url ?? null, notify: config.remediator.notify?.dingtalk ? ['dingtalk'] : [] }, 'remediator listening');
  return {
    ...listening,
    remediator: r,
    reloader,
    kill: () => r.kill(),
    close: async () => {
      await reloader?.close();
      await reconciler?.stop();
      await listening.close();
      await r.stop();
      // The last actions' messages (a shutdown interrupts restarts), each bounded by its timeout.
      await dingtalk.drain();
    },
  };
}
