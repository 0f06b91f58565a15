import { z } from 'zod';

// Alertmanager's webhook payload, version 4. Loose objects: newer releases add fields
// (notification_reason, routeLabels) and must never get a 422 for it.
const labels = z.record(z.string(), z.string());

export const alertSchema = z.looseObject({
  status: z.enum(['firing', 'resolved']),
  labels,
  annotations: labels.default({}),
  startsAt: z.string(),
  endsAt: z.string().optional(),
  generatorURL: z.string().optional(),
  fingerprint: z.string().min(1),
});

export const webhookSchema = z.looseObject({
  version: z.literal('4'),
  status: z.enum(['firing', 'resolved']),
  receiver: z.string(),
  groupKey: z.string(),
  truncatedAlerts: z.int().min(0).default(0),
  alerts: z.array(alertSchema),
});

export type Alert = z.output<typeof alertSchema>;
export type WebhookPayload = z.output<typeof webhookSchema>;

type Fields = Record<string, unknown>;

/** A plain object, as JSON.parse makes them (zod's records and objects take no other). */
const isPlain = (v: unknown): v is Fields => {
  if (typeof v !== 'object' || v === null) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
};
// A `__proto__` key is zod's to handle (its records drop it): such a payload takes the slow path.
const plainWithoutProto = (v: unknown): v is Fields => isPlain(v) && !Object.hasOwn(v, '__proto__');
const isStatus = (v: unknown) => v === 'firing' || v === 'resolved';
const optionalString = (v: unknown) => v === undefined || typeof v === 'string';

/** A record of strings, as `labels` accepts it. */
function isLabels(v: unknown): v is Record<string, string> {
  if (!plainWithoutProto(v)) return false;
  for (const key in v) if (typeof v[key] !== 'string') return false;
  return true;
}

function isAlert(a: unknown): a is Fields & { labels: Record<string, string> } {
  return (
    plainWithoutProto(a) &&
    isStatus(a.status) &&
    isLabels(a.labels) &&
    (a.annotations === undefined || isLabels(a.annotations)) &&
    typeof a.startsAt === 'string' &&
    optionalString(a.endsAt) &&
    optionalString(a.generatorURL) &&
    typeof a.fingerprint === 'string' &&
    a.fingerprint.length >= 1
  );
}

/**
 * The payload Alertmanager sends, checked by hand: webhookSchema's output, or undefined for
 * anything it does not recognise at once (a bad payload, a `__proto__` key), which is left to
 * webhookSchema. It accepts only what webhookSchema accepts, and gives the same output
 * (test/unit/remediator-alert-schema.test.ts holds it to that).
 */
export function quickWebhook(body: unknown): WebhookPayload | undefined {
  if (
    !plainWithoutProto(body) ||
    body.version !== '4' ||
    !isStatus(body.status) ||
    typeof body.receiver !== 'string' ||
    typeof body.groupKey !== 'string' ||
    !(body.truncatedAlerts === undefined || (Number.isSafeInteger(body.truncatedAlerts) && (body.truncatedAlerts as number) >= 0)) ||
    !Array.isArray(body.alerts) ||
    !body.alerts.every(isAlert)
  ) {
    return undefined;
  }
  const alerts = (body.alerts as Fields[]).map((a) => ({ ...a, annotations: a.annotations ?? {} }));
  return { ...body, truncatedAlerts: body.truncatedAlerts ?? 0, alerts } as WebhookPayload;
}

/**
 * webhookSchema.safeParse, the payload Alertmanager sends checked by hand first: zod's generic
 * walk over every field cost more under a storm of alerts (some 12-15 us a request under load,
 * issue 18) than the rest of the webhook's own work. What the check does not accept, webhookSchema
 * decides, with its messages.
 */
export function parseWebhook(body: unknown): z.ZodSafeParseResult<WebhookPayload> {
  const data = quickWebhook(body);
  return data === undefined ? webhookSchema.safeParse(body) : { success: true, data };
}
