// Never wait on one notification: Alertmanager stays silent about a group that looks as it did at
// its last notification until repeat_interval, so a server that crashes again soon after a healed
// crash may get no webhook for minutes. The remediator therefore also reads Alertmanager's active
// alerts (level-triggered) on a short interval and passes them through the same stages; the
// dedupe key (fingerprint + startsAt) keeps an instance already acted on from acting twice.
import { request } from 'undici';
import { z } from 'zod';
import type { Logger } from '../log.ts';
import type { Clock } from './clock.ts';
import type { RemediatorMetrics } from './metrics.ts';
import type { Remediator } from './remediator.ts';
import type { Trigger } from './stages.ts';

const apiAlerts = z.array(
  z.looseObject({
    labels: z.record(z.string(), z.string()),
    startsAt: z.string(),
    endsAt: z.string().optional(),
    fingerprint: z.string().min(1),
    status: z.looseObject({ state: z.string() }),
  }),
);

export interface ReconcileOptions {
  url: string;
  intervalMs: number;
  receiver: string;
  remediator: () => Remediator;
  metrics: RemediatorMetrics;
  logger: Logger;
  clock: Clock;
}

const maxBytes = 16 << 20;

/** One read of the active alerts routed to our receiver, neither silenced nor inhibited. */
export async function activeAlerts(o: Pick<ReconcileOptions, 'url' | 'receiver'>, signal: AbortSignal): Promise<Trigger[]> {
  const query = new URLSearchParams({ active: 'true', silenced: 'false', inhibited: 'false', unprocessed: 'false', receiver: `^${o.receiver.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$` });
  const res = await request(`${o.url.replace(/\/+$/, '')}/api/v2/alerts?${query}`, { signal, headers: { accept: 'application/json' } });
  if (res.statusCode !== 200) {
    await res.body.dump();
    throw new Error(`HTTP ${res.statusCode}`);
  }
  const length = Number(res.headers['content-length'] ?? 0);
  if (length > maxBytes) {
    await res.body.dump();
    throw new Error(`answer of ${length} bytes`);
  }
  const parsed = apiAlerts.safeParse(await res.body.json());
  if (!parsed.success) throw new Error('not an Alertmanager v2 alert list');
  return parsed.data
    .filter((a) => a.status.state === 'active')
    .map((a) => ({ source: 'reconcile', status: 'firing', labels: a.labels, fingerprint: a.fingerprint, startsAt: a.startsAt, endsAt: a.endsAt }));
}

/** Reads Alertmanager every interval until stopped; failures are logged once and counted. */
export function startReconciler(o: ReconcileOptions): { stop(): Promise<void> } {
  const stop = new AbortController();
  let failing = false;
  const loop = (async () => {
    while (!stop.signal.aborted) {
      try {
        const alerts = await activeAlerts(o, AbortSignal.any([stop.signal, AbortSignal.timeout(Math.min(10_000, o.intervalMs))]));
        if (alerts.length > 0) o.remediator().handle(alerts);
        o.metrics.reconciles.inc({ outcome: 'success' });
        if (failing) o.logger.info({ url: o.url }, 'reading Alertmanager works again');
        failing = false;
      } catch (err) {
        if (stop.signal.aborted) break;
        o.metrics.reconciles.inc({ outcome: 'failure' });
        if (!failing) o.logger.warn({ url: o.url, err: (err as Error).message }, "cannot read Alertmanager's active alerts; relying on webhooks until it answers");
        failing = true;
      }
      await o.clock.sleep(o.intervalMs, stop.signal);
    }
  })();
  return {
    async stop() {
      stop.abort();
      await loop;
    },
  };
}
