import { request, type Dispatcher } from 'undici';
import { version } from '../version.ts';
import { fail, type ProbeFailure } from './probes/types.ts';

/** User-Agent and X-Request-Id identify probe traffic in the model server's logs, so operators can filter it out. */
const userAgent = `qwen-sentinel/${version}`;

let sequence = 0;
function requestId(): string {
  sequence += 1;
  return `qwen-sentinel-probe-${process.pid}-${sequence}`;
}

export interface HttpOptions {
  method?: 'GET' | 'POST';
  body?: unknown;
  signal: AbortSignal;
}

/** Sends one probe request; a failure to get response headers is classified for the failure counter. */
export async function send(url: string, options: HttpOptions): Promise<Dispatcher.ResponseData | ProbeFailure> {
  try {
    return await request(url, {
      method: options.method ?? 'GET',
      signal: options.signal,
      headers: {
        'user-agent': userAgent,
        'x-request-id': requestId(),
        ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
    });
  } catch (err) {
    return classifyError(err, options.signal);
  }
}

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
  if (status >= 500) return fail('http_5xx', `HTTP ${status}`);
  if (status >= 400) return fail('http_4xx', `HTTP ${status}`);
  // Redirects are not followed: an API that answers one is not answering the probe.
  if (status < 200 || status >= 300) return fail('bad_response', `HTTP ${status}`);
  return undefined;
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
