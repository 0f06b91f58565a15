import { isDeepStrictEqual } from 'node:util';
import { ConfigError } from '../config/load.ts';
import { ConfigReloader } from '../config/reloader.ts';
import type { Config, Remediation } from '../config/schema.ts';
import type { ListenAddress } from '../flags.ts';
import type { Logger } from '../log.ts';
import { createOpsApp, listen, type Listening } from '../web.ts';
import { createAction } from './actions/index.ts';
import { RemediatorMetrics } from './metrics.ts';
import { Remediator, type ManagedTarget } from './policy.ts';
import { remediatorStatusPage } from './status-page.ts';
import { loadToken } from './token.ts';
import { webhookRouter, type WebhookSettings } from './webhook.ts';

export interface RemediatorServerOptions {
  config: Config;
  token: string;
  listen: ListenAddress;
  logger: Logger;
  /** Where managed servers' output goes (tests silence it). */
  stdio?: 'inherit' | 'ignore';
  /** The file the config came from, with its text: enables reloading. */
  configFile?: { path: string; text: string };
  /** Serve POST /-/reload (--web.enable-lifecycle). */
  enableLifecycle?: boolean;
}

export interface RunningRemediator extends Listening {
  remediator: Remediator;
  reloader: ConfigReloader | undefined;
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

/** Builds the actions, serves the webhook, the API and metrics, then starts the servers it owns. */
export async function startRemediator(o: RemediatorServerOptions): Promise<RunningRemediator> {
  const metrics = new RemediatorMetrics([]);
  // The policy object is created after its actions, whose hooks report back to it.
  let remediator: Remediator | undefined;
  const build = (name: string, remediation: Remediation): Entry => {
    metrics.addTarget(name, remediation.action);
    const action = createAction(remediation, {
      target: name,
      logger: o.logger,
      ...(o.stdio ? { stdio: o.stdio } : {}),
      hooks: {
        running: (pid) => metrics.processUp.set({ target: name }, pid === undefined ? 0 : 1),
        unexpectedExit: () => remediator?.recordUnexpectedExit(name),
      },
    });
    return { managed: { name, action, cooldownMs: remediation.cooldown }, remediation };
  };
  let entries = new Map(remediationTargets(o.config, o.configFile?.path ?? 'config').map(({ name, remediation }) => [name, build(name, remediation)]));
  remediator = new Remediator({ targets: [...entries.values()].map((e) => e.managed), match: o.config.remediator.match, logger: o.logger, metrics });
  const settings: WebhookSettings = { token: o.token, maxBodyBytes: o.config.remediator.max_body_bytes };

  // A reload may add, change or drop `command` targets and change auth and matching. It may not
  // touch `process` targets: their servers are running under this remediator's ownership.
  const apply = async (next: Config) => {
    const token = await loadToken(next);
    const wanted = new Map(remediationTargets(next, o.configFile!.path).map((t) => [t.name, t.remediation]));
    const touched = [...new Set([...entries.keys(), ...wanted.keys()])].filter((name) => {
      const [before, after] = [entries.get(name)?.remediation, wanted.get(name)];
      return (before?.action === 'process' || after?.action === 'process') && !isDeepStrictEqual(before, after);
    });
    if (touched.length > 0) {
      throw new ConfigError(`${o.configFile!.path}: targets: ${touched.join(', ')}: a target with a process action cannot be added, changed or removed by a reload; restart the remediator`);
    }
    const nextEntries = new Map<string, Entry>();
    for (const [name, remediation] of wanted) {
      const kept = entries.get(name);
      nextEntries.set(name, kept && isDeepStrictEqual(kept.remediation, remediation) ? kept : build(name, remediation));
    }
    for (const [name, entry] of entries) if (!nextEntries.has(name)) metrics.removeTarget(name, entry.remediation.action);
    entries = nextEntries;
    remediator.reconfigure([...entries.values()].map((e) => e.managed), next.remediator.match);
    settings.token = token;
    settings.maxBodyBytes = next.remediator.max_body_bytes;
  };
  // A rotated token file is a change too, even when the config text is not.
  const identity = async (config: Config, text: string) => `${text}\0${await loadToken(config).catch((err: Error) => err.message)}`;
  const reloader = o.configFile ? new ConfigReloader({ file: o.configFile.path, registry: metrics.registry, logger: o.logger, apply, identity }) : undefined;
  await reloader?.started(o.config, o.configFile!.text);

  const app = createOpsApp({
    registry: metrics.registry,
    isReady: () => true,
    home: () => remediatorStatusPage(remediator.snapshot(), remediator.recentActions()),
    reloader,
    enableLifecycle: o.enableLifecycle,
  });
  app.get('/api/v1/targets', (_req, res) => {
    res.json({ targets: remediator.snapshot() });
  });
  app.use(webhookRouter({ settings, remediator, metrics, logger: o.logger }));
  // Listen first: if the port is taken, no model server has been started to be left behind.
  const listening = await listen(app, o.listen);
  await remediator.start();
  o.logger.info({ url: listening.url, targets: [...entries.keys()] }, 'remediator listening');
  return {
    ...listening,
    remediator,
    reloader,
    close: async () => {
      await reloader?.close();
      await listening.close();
      await remediator.stop();
    },
  };
}
