import { randomBytes } from 'node:crypto';
import { request, type Dispatcher } from 'undici';
import type { ServerType } from '../servers/types.ts';
import { fail, type ProbeContext, type ProbeFailure } from './probes/types.ts';

export interface HttpOptions {
  method?: 'GET' | 'POST';
  body?: unknown;
}

type Ctx = Pick<ProbeContext<unknown>, 'signal' | 'log' | 'now'> & { headers: Record<string, string> };

/**
 * Sends one probe request and logs it. Every request carries the probe's identifying headers and a
 * fresh X-Request-Id (qwen-sentinel-<hex>), so operators can find or filter probe traffic in the
 * server's logs. A failure to get response headers is classified for the failure counter.
 */
export async function send(ctx: Ctx, url: string, options: HttpOptions = {}): Promise<Dispatcher.ResponseData | ProbeFailure> {
  const method = options.method ?? 'GET';
  const started = ctx.now();
  const requestId = `qwen-sentinel-${randomBytes(8).toString('hex')}`;
  ctx.log(`${method} ${url} (request id ${requestId})`);
  try {
    const res = await request(url, {
      method,
      signal: ctx.signal,
      headers: {
        ...ctx.headers,
        'x-request-id': requestId,
        ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
    });
    ctx.log(`-> HTTP ${res.statusCode} ${res.headers['content-type'] ?? ''} after ${ms(ctx.now() - started)}`.trimEnd());
    return res;
  } catch (err) {
    const failure = classifyError(err, ctx.signal);
    ctx.log(`-> ${failure.reason}: ${failure.message} after ${ms(ctx.now() - started)}`);
    return failure;
  }
}

export const ms = (millis: number) => `${millis.toFixed(1)} ms`;

/** Maps a transport error (or the deadline) to a failure reason. */
export function classifyError(err: unknown, signal: AbortSignal): ProbeFailure {
  if (signal.aborted) return fail('timeout', 'deadline exceeded');
  const code = (err as { code?: string }).code ?? (err as { cause?: { code?: string } }).cause?.code;
  if (code === 'ECONNREFUSED') return fail('connect_refused', 'connection refused');
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT') {
    return fail('timeout', code);
  }
  return fail('connect_error', `${code ?? 'error'}: ${(err as Error).message}`);
}

/** Fails with the HTTP status class, or returns undefined for a 2xx. */
export function checkStatus(status: number): ProbeFailure | undefined {
  // A wrong or missing API key: no restart fixes that, so it is a reason of its own.
  if (status === 401 || status === 403) return fail('unauthorized', `HTTP ${status}: the server refuses the API key (or wants one)`);
  if (status >= 500) return fail('http_5xx', `HTTP ${status}`);
  if (status >= 400) return fail('http_4xx', `HTTP ${status}`);
  // Redirects are not followed: an API that answers one is not answering the probe.
  if (status < 200 || status >= 300) return fail('bad_response', `HTTP ${status}`);
  return undefined;
}

/**
 * A failed status with the start of the body the server gave as its reason; `starting` when the
 * server type says the answer means it is still loading (llama.cpp's 503 "Loading model").
 */
export async function statusFailure(res: Dispatcher.ResponseData, signal: AbortSignal, server?: ServerType): Promise<ProbeFailure | undefined> {
  const bad = checkStatus(res.statusCode);
  if (!bad) return undefined;
  const read = await readLimited(res.body, 4096, signal);
  const text = typeof read === 'string' ? read.trim() : '';
  const message = text === '' ? bad.message : `${bad.message}: ${text.slice(0, 200)}`;
  if (server?.starting?.(res.statusCode, text)) return fail('starting', `still starting: ${message}`);
  return { ...bad, message };
}

/** Reads a body, but never more than maxBytes: a huge or endless answer cannot bloat the exporter. */
export async function readLimited(body: Dispatcher.ResponseData['body'], maxBytes: number, signal: AbortSignal): Promise<string | ProbeFailure> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      size += (chunk as Buffer).length;
      if (size > maxBytes) {
        discard(body);
        return fail('bad_response', `response larger than ${maxBytes} bytes`);
      }
      chunks.push(chunk as Buffer);
    }
  } catch (err) {
    return classifyError(err, signal);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Drops a body we do not need (or no longer want), so the connection is not held. */
export function discard(body: Dispatcher.ResponseData['body']): void {
  // destroy() of an unfinished body emits an abort error: nobody needs to hear it.
  body.on('error', () => {});
  body.destroy();
}
