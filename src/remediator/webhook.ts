import { createHash, timingSafeEqual } from 'node:crypto';
import express, { type ErrorRequestHandler, type RequestHandler, type Router } from 'express';
import type { Logger } from '../log.ts';
import { webhookSchema } from './alert-schema.ts';
import type { RemediatorMetrics } from './metrics.ts';
import type { Remediator } from './policy.ts';

/** Read on every request, so a config reload applies at once. */
export interface WebhookSettings {
  /** The Bearer token Alertmanager sends (http_config.authorization). */
  token: string;
  maxBodyBytes: number;
}

export interface WebhookOptions {
  settings: WebhookSettings;
  remediator: Remediator;
  metrics: RemediatorMetrics;
  logger: Logger;
}

const digest = (text: string) => createHash('sha256').update(text).digest();

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
    const match = /^Bearer (.+)$/i.exec(req.get('authorization') ?? '');
    // Hash both sides: timingSafeEqual needs equal lengths and must not leak the token's.
    if (match && timingSafeEqual(digest(match[1]!), digest(o.settings.token))) return next();
    o.logger.warn({ remote: req.ip, user_agent: req.get('user-agent') }, 'webhook rejected: missing or wrong bearer token');
    res.set('www-authenticate', 'Bearer');
    reply(res, 401, { error: 'missing or wrong bearer token' });
  };

  const accept: RequestHandler = (req, res) => {
    if (!req.is('application/json')) {
      o.logger.warn({ content_type: req.get('content-type') }, 'webhook rejected: not JSON');
      return reply(res, 415, { error: 'expected Content-Type: application/json' });
    }
    const parsed = webhookSchema.safeParse(req.body);
    if (!parsed.success) {
      const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`);
      o.logger.warn({ issues }, 'webhook rejected: not an Alertmanager v4 payload');
      return reply(res, 422, { error: 'not an Alertmanager v4 webhook payload', issues });
    }
    const decisions = o.remediator.handle(parsed.data);
    reply(res, 200, { status: 'accepted', decisions });
  };

  const bodyErrors: ErrorRequestHandler = (err, _req, res, next) => {
    const status = (err as { status?: number }).status;
    if (status === undefined || status < 400 || status >= 500) return next(err);
    o.logger.warn({ status, type: (err as { type?: string }).type }, 'webhook rejected: unreadable body');
    reply(res, status, { error: status === 413 ? `body larger than ${o.settings.maxBodyBytes} bytes` : (err as Error).message });
  };

  const parseBody: RequestHandler = (req, res, next) => express.json({ limit: o.settings.maxBodyBytes, strict: false })(req, res, next);
  router.post('/webhook', authenticate, parseBody, accept, bodyErrors);
  return router;
}
