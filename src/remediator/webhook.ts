import { hash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import express from 'express';
import type { Logger } from '../lib/log.ts';
import { closeConnection, type PlainHandler } from '../lib/web.ts';
import { parseWebhook } from './alert-schema.ts';
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

const digest = (text: string) => hash('sha256', text, 'buffer');

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

// Express' req.is(), on a plain request: a body, with a Content-Type of that media type.
const expressIs = express.request.is as (this: IncomingMessage, type: string) => string | false | null;

/**
 * Whether the body is announced as JSON, as Express' req.is('application/json') decides (a body
 * must be announced, by Content-Length or Transfer-Encoding; parameters such as charset allowed).
 * The Content-Type Alertmanager sends is answered without parsing it.
 */
function announcesJson(req: IncomingMessage): boolean {
  const type = req.headers['content-type'];
  if (type !== 'application/json') return Boolean(expressIs.call(req, 'application/json'));
  return req.headers['transfer-encoding'] !== undefined || !Number.isNaN(Number(req.headers['content-length']));
}

/** Content-Encoding absent or `identity` (any case). */
const notCompressed = (encoding: string | undefined) => encoding === undefined || encoding.toLowerCase() === 'identity';

/**
 * POST /webhook, as a plain node:http handler: it is the remediator's one busy path (a storm of
 * alerts, an HA pair of Alertmanagers), so it pays for no routing, middleware or response helpers.
 * Alertmanager retries 5xx and transport errors but never 4xx, so every bad request gets a 4xx
 * (and executes nothing), and the answer never waits for the restart. A refusal ends the
 * connection and reads no more of the body: a sender must not hold a socket for as long as it likes.
 */
export function webhookHandler(o: WebhookOptions): PlainHandler {
  const reply = (res: ServerResponse, code: number, body: object) => {
    o.metrics.requests.inc({ code: String(code) });
    const text = JSON.stringify(body);
    res.writeHead(code, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };
  const refuse = (req: IncomingMessage, res: ServerResponse, code: number, body: object) => {
    closeConnection(req, res);
    reply(res, code, body);
  };
  const tooLarge = () => ({ error: `body larger than ${o.settings.maxBodyBytes} bytes` });

  // Refused before a byte of the body is read: no token; a body that is not JSON, or announced
  // over the limit. Returns whether the request may go on.
  const admit = (req: IncomingMessage, res: ServerResponse): boolean => {
    const header = (name: string) => req.headers[name] as string | undefined;
    if (!hasToken(header('authorization'), o.settings.token)) {
      o.logger.warn({ remote: req.socket.remoteAddress, user_agent: header('user-agent')?.slice(0, 200) }, 'webhook rejected: missing or wrong bearer token');
      res.setHeader('www-authenticate', 'Bearer');
      refuse(req, res, 401, { error: 'missing or wrong bearer token' });
      return false;
    }
    if (!announcesJson(req) || !notCompressed(header('content-encoding'))) {
      o.logger.warn({ content_type: header('content-type')?.slice(0, 200), content_encoding: header('content-encoding')?.slice(0, 200) }, 'webhook rejected: not JSON');
      refuse(req, res, 415, { error: 'expected Content-Type: application/json (not compressed)' });
      return false;
    }
    const length = Number(header('content-length') ?? 0);
    if (!(length > o.settings.maxBodyBytes)) return true;
    o.logger.warn({ content_length: length }, 'webhook rejected: body larger than max_body_bytes');
    refuse(req, res, 413, tooLarge());
    return false;
  };

  // The limit holds while the body streams in (a chunked body announces no length): 413 as soon
  // as it is passed, not after the sender chose to stop.
  const readBody = (req: IncomingMessage, res: ServerResponse, then: (text: string) => void) => {
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
      then((chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)).toString('utf8'));
    });
    // Aborted by the sender: there is no one to answer.
    req.on('error', () => (done = true));
  };

  const accept = (res: ServerResponse, text: string) => {
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (err) {
      o.logger.warn({ err: (err as Error).message.slice(0, 200) }, 'webhook rejected: unreadable body');
      return reply(res, 400, { error: `invalid JSON: ${(err as Error).message.slice(0, 200)}` });
    }
    const parsed = parseWebhook(body);
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

  return (req, res) => {
    if (!admit(req, res)) return;
    readBody(req, res, (text) => {
      // Called from a stream event, outside any router: what throws is answered 500 (retried).
      try {
        accept(res, text);
      } catch (err) {
        o.logger.error({ err: (err as Error).message, stack: (err as Error).stack }, 'internal error in the webhook');
        if (!res.headersSent) reply(res, 500, { error: 'internal error' });
      }
    });
  };
}
