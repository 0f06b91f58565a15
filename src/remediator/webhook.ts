import { createHash, timingSafeEqual } from 'node:crypto';
import express, { type ErrorRequestHandler, type RequestHandler, type Router } from 'express';
import type { Logger } from '../log.ts';
import { webhookSchema } from './alert-schema.ts';
import type { RemediatorMetrics } from './metrics.ts';
import type { Remediator } from './remediator.ts';
import type { Trigger } from './stages.ts';

/** Read on every request, so a config reload applies at once. */
export interface WebhookSettings {
  /** The Bearer token Alertmanager sends (http_config.authorization). */
  token: string;
  maxBodyBytes: number;
}

export interface WebhookOptions {
  settings: WebhookSettings;
  remediator: () => Remediator;
  metrics: RemediatorMetrics;
  logger: Logger;
}

const digest = (text: string) => createHash('sha256').update(text).digest();

/** Whether a request carries the webhook's Bearer token. */
export function hasToken(header: string | undefined, token: string): boolean {
  const match = /^Bearer (.+)$/i.exec(header ?? '');
  // Hash both sides: timingSafeEqual needs equal lengths and must not leak the token's.
  return match !== null && timingSafeEqual(digest(match[1]!), digest(token));
}

/**
 * POST /webhook. Alertmanager retries 5xx and transport errors but never 4xx, so every bad request
 * gets a 4xx (and executes nothing), and the answer never waits for the restart.
 */
export function webhookRouter(o: WebhookOptions): Router {
  const router = express.Router();

  const reply = (res: express.Response, code: number, body: object) => {
    o.metrics.requests.inc({ code: String(code) });
    res.status(code).json(body);
  };

  const authenticate: RequestHandler = (req, res, next) => {
    if (hasToken(req.get('authorization'), o.settings.token)) return next();
    o.logger.warn({ remote: req.ip, user_agent: req.get('user-agent')?.slice(0, 200) }, 'webhook rejected: missing or wrong bearer token');
    res.set('www-authenticate', 'Bearer');
    reply(res, 401, { error: 'missing or wrong bearer token' });
  };

  // A body announced over the limit is refused before a byte of it is read, and the connection
  // closed: reading it first would hold the socket for as long as the sender likes.
  const announcedSize: RequestHandler = (req, res, next) => {
    const length = Number(req.get('content-length') ?? 0);
    if (!(length > o.settings.maxBodyBytes)) return next();
    o.logger.warn({ content_length: length }, 'webhook rejected: body larger than max_body_bytes');
    res.set('connection', 'close');
    reply(res, 413, { error: `body larger than ${o.settings.maxBodyBytes} bytes` });
    res.on('finish', () => req.socket.destroy());
  };

  const accept: RequestHandler = (req, res) => {
    if (!req.is('application/json')) {
      o.logger.warn({ content_type: req.get('content-type')?.slice(0, 200) }, 'webhook rejected: not JSON');
      return reply(res, 415, { error: 'expected Content-Type: application/json' });
    }
    const parsed = webhookSchema.safeParse(req.body);
    if (!parsed.success) {
      const issues = parsed.error.issues.slice(0, 10).map((i) => `${i.path.join('.').slice(0, 100) || '(body)'}: ${i.message.slice(0, 200)}`);
      o.logger.warn({ issues }, 'webhook rejected: not an Alertmanager v4 payload');
      return reply(res, 422, { error: 'not an Alertmanager v4 webhook payload', issues });
    }
    const payload = parsed.data;
    if (payload.truncatedAlerts > 0) o.logger.warn({ truncated: payload.truncatedAlerts, group_key: payload.groupKey.slice(0, 500) }, 'Alertmanager truncated alerts (max_alerts)');
    const triggers: Trigger[] = payload.alerts.map((a) => ({ source: 'webhook', status: a.status, labels: a.labels, fingerprint: a.fingerprint, startsAt: a.startsAt, endsAt: a.endsAt }));
    const decisions = o.remediator().handle(triggers);
    reply(res, 200, { status: 'accepted', decisions: decisions.length > 100 ? `${decisions.length} alerts` : decisions });
  };

  const bodyErrors: ErrorRequestHandler = (err, _req, res, next) => {
    const status = (err as { status?: number }).status;
    if (status === undefined || status < 400 || status >= 500) return next(err);
    o.logger.warn({ status, type: (err as { type?: string }).type }, 'webhook rejected: unreadable body');
    reply(res, status, { error: status === 413 ? `body larger than ${o.settings.maxBodyBytes} bytes` : (err as Error).message.slice(0, 200) });
  };

  const parseBody: RequestHandler = (req, res, next) => express.json({ limit: o.settings.maxBodyBytes, strict: false })(req, res, next);
  router.post('/webhook', authenticate, announcedSize, parseBody, accept, bodyErrors);
  return router;
}
