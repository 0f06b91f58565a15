import type { Config } from '../config/schema.ts';
import type { ListenAddress } from '../flags.ts';
import type { Logger } from '../log.ts';
import { createOpsApp, listen, type Listening } from '../web.ts';
import { createAction } from './actions/index.ts';
import { RemediatorMetrics } from './metrics.ts';
import { Remediator } from './policy.ts';
import { webhookRouter } from './webhook.ts';

export interface RemediatorServerOptions {
  config: Config;
  token: string;
  listen: ListenAddress;
  logger: Logger;
  /** Where managed servers' output goes (tests silence it). */
  stdio?: 'inherit' | 'ignore';
}

export interface RunningRemediator extends Listening {
  remediator: Remediator;
}

/** Builds the actions, starts the servers it owns, then serves the webhook, the API and metrics. */
export async function startRemediator(o: RemediatorServerOptions): Promise<RunningRemediator> {
  const targets = o.config.targets.flatMap((t) => (t.remediation ? [{ name: t.name, remediation: t.remediation }] : []));
  const metrics = new RemediatorMetrics(targets.map((t) => ({ name: t.name, action: t.remediation.action })));
  // The policy object is created after its actions, whose hooks report back to it.
  let remediator: Remediator | undefined;
  const managed = targets.map(({ name, remediation }) => ({
    name,
    cooldownMs: remediation.cooldown,
    action: createAction(remediation, {
      target: name,
      logger: o.logger,
      ...(o.stdio ? { stdio: o.stdio } : {}),
      hooks: {
        running: (pid) => metrics.processUp.set({ target: name }, pid === undefined ? 0 : 1),
        unexpectedExit: () => remediator?.recordUnexpectedExit(name),
      },
    }),
  }));
  remediator = new Remediator({ targets: managed, match: o.config.remediator.match, logger: o.logger, metrics });

  const app = createOpsApp({ registry: metrics.registry, isReady: () => true, title: 'qwen-sentinel remediator', links: { Targets: '/api/v1/targets' } });
  app.get('/api/v1/targets', (_req, res) => {
    res.json({ targets: remediator.snapshot() });
  });
  app.use(webhookRouter({ token: o.token, maxBodyBytes: o.config.remediator.max_body_bytes, remediator, metrics, logger: o.logger }));
  // Listen first: if the port is taken, no model server has been started to be left behind.
  const listening = await listen(app, o.listen);
  await remediator.start();
  o.logger.info({ url: listening.url, targets: managed.map((t) => t.name) }, 'remediator listening');
  return {
    ...listening,
    remediator,
    close: async () => {
      await listening.close();
      await remediator.stop();
    },
  };
}
