import { createHash, timingSafeEqual } from 'node:crypto';
import express, { type RequestHandler, type Router } from 'express';
import type { Logger } from '../lib/log.ts';
import { closeConnection } from '../lib/web.ts';
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

// The configured token's digest, kept until a reload changes the token.
let known: { token: string; digest: Buffer } | undefined;

/** Whether a request carries the webhook's Bearer token. */
export function hasToken(header: string | undefined, token: string): boolean {
  const match = /^Bearer (.+)$/i.exec(header ?? '');
  if (match === null) return false;
  if (known?.token !== token) known = { token, digest: digest(token) };
  // Hash both sides: timingSafeEqual needs equal lengths and must not leak the token's.
  return timingSafeEqual(digest(match[1]!), known.digest);
}

/**
 * POST /webhook. Alertmanager retries 5xx and transport errors but never 4xx, so every bad request
 * gets a 4xx (and executes nothing), and the answer never waits for the restart. A refusal ends the
 * connection and reads no more of the body: a sender must not hold a socket for as long as it likes.
 */
export function webhookRouter(o: WebhookOptions): Router {
  const router = express.Router();

  const reply = (res: express.Response, code: number, body: object) => {
    o.metrics.requests.inc({ code: String(code) });
    res.status(code).json(body);
  };
  const refuse = (req: express.Request, res: express.Response, code: number, body: object) => {
    closeConnection(req, res);
    reply(res, code, body);
  };
  const tooLarge = () => ({ error: `body larger than ${o.settings.maxBodyBytes} bytes` });

  const authenticate: RequestHandler = (req, res, next) => {
    if (hasToken(req.get('authorization'), o.settings.token)) return next();
    o.logger.warn({ remote: req.ip, user_agent: req.get('user-agent')?.slice(0, 200) }, 'webhook rejected: missing or wrong bearer token');
    res.set('www-authenticate', 'Bearer');
    refuse(req, res, 401, { error: 'missing or wrong bearer token' });
  };

  // Refused before a byte of the body is read: a body that is not JSON, or announced over the limit.
  const headers: RequestHandler = (req, res, next) => {
    if (!req.is('application/json') || !['identity', undefined].includes(req.get('content-encoding')?.toLowerCase())) {
      o.logger.warn({ content_type: req.get('content-type')?.slice(0, 200), content_encoding: req.get('content-encoding')?.slice(0, 200) }, 'webhook rejected: not JSON');
      return refuse(req, res, 415, { error: 'expected Content-Type: application/json (not compressed)' });
    }
    const length = Number(req.get('content-length') ?? 0);
    if (!(length > o.settings.maxBodyBytes)) return next();
    o.logger.warn({ content_length: length }, 'webhook rejected: body larger than max_body_bytes');
    refuse(req, res, 413, tooLarge());
  };

  // The limit holds while the body streams in (a chunked body announces no length): 413 as soon
  // as it is passed, not after the sender chose to stop.
  const readBody: RequestHandler = (req, res, next) => {
    const limit = o.settings.maxBodyBytes;
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on('data', (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size <= limit) return void chunks.push(chunk);
      done = true;
      chunks.length = 0;
      o.logger.warn({ received: size }, 'webhook rejected: body larger than max_body_bytes');
      refuse(req, res, 413, tooLarge());
    });
    req.on('end', () => {
      if (done) return;
      done = true;
      try {
        req.body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch (err) {
        o.logger.warn({ err: (err as Error).message.slice(0, 200) }, 'webhook rejected: unreadable body');
        return reply(res, 400, { error: `invalid JSON: ${(err as Error).message.slice(0, 200)}` });
      }
      next();
    });
    // Aborted by the sender: there is no one to answer.
    req.on('error', () => (done = true));
  };

  const accept: RequestHandler = (req, res) => {
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

  router.post('/webhook', authenticate, headers, readBody, accept);
  return router;
}
