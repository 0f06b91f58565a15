// Never wait on one notification: Alertmanager stays silent about a group that looks as it did at
// its last notification until repeat_interval, so a server that crashes again soon after a healed
// crash may get no webhook for minutes. The remediator therefore also reads Alertmanager's active
// alerts (level-triggered) on a short interval and passes them through the same stages; the
// dedupe key (fingerprint + startsAt) keeps an instance already acted on from acting twice.
import { z } from 'zod';
import type { Logger } from '../lib/log.ts';
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

/** A larger answer is refused, announced or not (a chunked one is counted while it streams). */
export const maxAnswerBytes = 16 << 20;

/** One read of the active alerts routed to our receiver, neither silenced nor inhibited. */
export async function activeAlerts(o: Pick<ReconcileOptions, 'url' | 'receiver'>, signal: AbortSignal): Promise<Trigger[]> {
  const query = new URLSearchParams({ active: 'true', silenced: 'false', inhibited: 'false', unprocessed: 'false', receiver: `^${o.receiver.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$` });
  // undici is loaded with the first read, not with every remediator (~6 MB of RSS).
  const { request } = await import('undici');
  const res = await request(`${o.url.replace(/\/+$/, '')}/api/v2/alerts?${query}`, { signal, headers: { accept: 'application/json' } });
  const length = Number(res.headers['content-length'] ?? 0);
  if (res.statusCode !== 200 || length > maxAnswerBytes) {
    await res.body.dump();
    throw new Error(res.statusCode !== 200 ? `HTTP ${res.statusCode}` : `answer of ${length} bytes`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body as AsyncIterable<Buffer>) {
    size += chunk.length;
    // Leaving the loop destroys the body: the rest is never read.
    if (size > maxAnswerBytes) throw new Error(`answer over ${maxAnswerBytes} bytes`);
    chunks.push(chunk);
  }
  let data: unknown;
  try {
    data = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new Error('answer is not JSON');
  }
  const parsed = apiAlerts.safeParse(data);
  if (!parsed.success) throw new Error('not an Alertmanager v2 alert list');
  return parsed.data
    .filter((a) => a.status.state === 'active')
    .map((a) => ({ source: 'reconcile', status: 'firing', labels: a.labels, fingerprint: a.fingerprint, startsAt: a.startsAt, endsAt: a.endsAt }));
}

export type ReconcileOutcome = 'success' | 'failure';

/**
 * One pass: read (bounded by min(interval, 10 s)), hand the alerts to the remediator, count the
 * outcome in llm_remediation_reconcile_total. Failures are logged once until a pass succeeds.
 * Resolves to undefined when `stop` ended the pass (not counted).
 */
export function reconciler(o: ReconcileOptions): (stop?: AbortSignal) => Promise<ReconcileOutcome | undefined> {
  let failing = false;
  return async (stop) => {
    const timeout = AbortSignal.timeout(Math.min(10_000, o.intervalMs));
    try {
      const alerts = await activeAlerts(o, stop ? AbortSignal.any([stop, timeout]) : timeout);
      if (alerts.length > 0) o.remediator().handle(alerts);
      o.metrics.reconciles.inc({ outcome: 'success' });
      if (failing) o.logger.info({ url: o.url }, 'reading Alertmanager works again');
      failing = false;
      return 'success';
    } catch (err) {
      if (stop?.aborted) return undefined;
      o.metrics.reconciles.inc({ outcome: 'failure' });
      const message = timeout.aborted ? `no answer within ${Math.min(10_000, o.intervalMs)} ms` : (err as Error).message;
      if (!failing) o.logger.warn({ url: o.url, err: message }, "cannot read Alertmanager's active alerts; relying on webhooks until it answers");
      failing = true;
      return 'failure';
    }
  };
}

/** Reads Alertmanager every interval until stopped. */
export function startReconciler(o: ReconcileOptions): { stop(): Promise<void> } {
  const stop = new AbortController();
  const pass = reconciler(o);
  const loop = (async () => {
    while (!stop.signal.aborted) {
      await pass(stop.signal);
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
