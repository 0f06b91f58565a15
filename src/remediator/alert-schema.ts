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
