import { randomFillSync } from 'node:crypto';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import { urlToHttpOptions } from 'node:url';
import type { ServerType } from '../servers/types.ts';
import { ExporterError, localErrorCodes } from './errors.ts';
import { fail, type ProbeContext, type ProbeFailure } from './probes/types.ts';
import { http, https } from '../lib/node-http.ts';

const { Agent: HttpAgent, request: httpRequest } = http;

export interface HttpOptions {
  method?: 'GET' | 'POST';
  body?: unknown;
}

/** What a request got back once the headers came: the body is still to be read (or discarded). */
export interface Response {
  statusCode: number;
  headers: IncomingHttpHeaders;
  body: IncomingMessage;
  /** The request carried an API key (Authorization): a 401 then means the server refused it. */
  keySent: boolean;
}

type Ctx = Pick<ProbeContext<unknown>, 'signal' | 'log' | 'now'> & { headers: Record<string, string> };

// Every request opens its own connection and closes it after the answer (`Connection: close`), as
// blackbox_exporter's DisableKeepAlives: a probe never reuses a socket the server may have closed
// meanwhile (its keep-alive timeout is shorter than any probe interval), and its duration includes
// the connection setup, as a client's first request does.
const httpAgent = new HttpAgent({ keepAlive: false });
let httpsAgent: import('node:https').Agent | undefined;

// X-Request-Id: 8 random bytes each, cut from a pool filled 512 ids at a time.
const pool = Buffer.alloc(4096);
let poolOffset = pool.length;
function requestId(): string {
  if (poolOffset === pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  poolOffset += 8;
  return `qwen-sentinel-${pool.toString('hex', poolOffset - 8, poolOffset)}`;
}

/**
 * Sends one probe request and logs it. Every request carries the probe's identifying headers and a
 * fresh X-Request-Id (qwen-sentinel-<hex>), so operators can find or filter probe traffic in the
 * server's logs. A failure to get response headers is classified for the failure counter; one that
 * is the exporter's own (out of file descriptors or ports) throws an ExporterError instead, since it
 * says nothing about the server.
 */
export async function send(ctx: Ctx, url: string, options: HttpOptions = {}): Promise<Response | ProbeFailure> {
  const method = options.method ?? 'GET';
  const started = ctx.now();
  const id = requestId();
  ctx.log(`${method} ${url} (request id ${id})`);
  try {
    const res = await request(url, method, { ...ctx.headers, 'x-request-id': id }, options.body === undefined ? undefined : JSON.stringify(options.body), ctx.signal);
    ctx.log(`-> HTTP ${res.statusCode} ${res.headers['content-type'] ?? ''} after ${ms(ctx.now() - started)}`.trimEnd());
    return res;
  } catch (err) {
    const local = localError(err);
    if (local) {
      ctx.log(`-> exporter error ${local.code}: not the server's fault, the round is skipped`);
      throw local;
    }
    const failure = classifyError(err, ctx.signal);
    ctx.log(`-> ${failure.reason}: ${failure.message} after ${ms(ctx.now() - started)}`);
    return failure;
  }
}

// A URL's request options and Host header, parsed once per URL rather than once per probe (a URL
// object and its options: some 1.5 KB of the 48 KB a listing probe allocated). Bounded: /probe
// requests may name any URL, so the table starts afresh when full.
interface Parsed {
  options: ReturnType<typeof urlToHttpOptions>;
  /** hostname[:port], the port only when not the scheme's default: what Node sends as Host. */
  host: string;
}
const maxParsedUrls = 4096;
const parsedUrls = new Map<string, Parsed>();
function parse(url: string): Parsed {
  let parsed = parsedUrls.get(url);
  if (parsed === undefined) {
    const u = new URL(url);
    parsed = { options: urlToHttpOptions(u), host: u.host };
    if (parsedUrls.size >= maxParsedUrls) parsedUrls.clear();
    parsedUrls.set(url, parsed);
  }
  return parsed;
}

/**
 * The request's header lines, in the order Node writes an object's (its entries, then Host; Node
 * adds Connection): as a flat list Node writes them as they are, without building its map of
 * outgoing headers first.
 */
export function headerList(headers: Record<string, string>, host: string, body: string | undefined): string[] {
  const list: string[] = [];
  for (const name in headers) list.push(name, headers[name]!);
  if (body !== undefined) list.push('content-type', 'application/json', 'content-length', String(Buffer.byteLength(body)));
  list.push('Host', host);
  return list;
}

function request(url: string, method: string, headers: Record<string, string>, body: string | undefined, signal: AbortSignal): Promise<Response> {
  return new Promise((resolve, reject) => {
    const { options: target, host } = parse(url);
    const tls = target.protocol === 'https:';
    if (!tls && target.protocol !== 'http:') return reject(Object.assign(new Error(`unsupported protocol ${target.protocol}`), { code: 'ERR_INVALID_PROTOCOL' }));
    const agent = tls ? (httpsAgent ??= new (https().Agent)({ keepAlive: false })) : httpAgent;
    const send = tls ? https().request : httpRequest;
    // A URL with user:password gets its Basic Authorization from Node, which it adds only to headers given as an object.
    const list = target.auth === undefined ? headerList(headers, host, body) : body === undefined ? headers : { ...headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) };
    const req = send({ ...target, method, agent, signal, headers: list });
    req.once('response', (res) => resolve({ statusCode: res.statusCode ?? 0, headers: res.headers, body: res, keySent: headers.authorization !== undefined }));
    // Errors after the answer came (an abort while the body streams) reach the body's reader.
    req.on('error', reject);
    req.end(body);
  });
}

export const ms = (millis: number) => `${millis.toFixed(1)} ms`;

const codeOf = (err: unknown): string | undefined => (err as { code?: string }).code ?? (err as { cause?: { code?: string } }).cause?.code;

/** An error of the exporter's own making (EMFILE, ...), or undefined. */
export function localError(err: unknown): ExporterError | undefined {
  const code = codeOf(err);
  return code !== undefined && localErrorCodes.has(code) ? new ExporterError(code, (err as Error).message) : undefined;
}

/** Maps a transport error (or the deadline) to a failure reason. */
export function classifyError(err: unknown, signal: AbortSignal): ProbeFailure {
  if (signal.aborted) return fail('timeout', 'deadline exceeded');
  const code = codeOf(err);
  if (code === 'ECONNREFUSED') return fail('connect_refused', 'connection refused');
  if (code === 'ETIMEDOUT') return fail('timeout', code);
  return fail('connect_error', `${code ?? 'error'}: ${(err as Error).message}`);
}

/** Fails with the HTTP status class, or returns undefined for a 2xx; keySent: the request carried an API key. */
export function checkStatus(status: number, keySent = false): ProbeFailure | undefined {
  // A wrong or missing API key, or a path the key may not use: no restart fixes that, so both are
  // `unauthorized` (alert rules read it), and the message says which.
  if (status === 401) return fail('unauthorized', keySent ? 'HTTP 401: the server refused the API key sent' : 'HTTP 401: the server wants an API key and none was sent (set api_key_file or api_key_env)');
  if (status === 403) return fail('unauthorized', keySent ? 'HTTP 403 forbidden: the API key is a credential the server knows, but this path is not allowed' : 'HTTP 403 forbidden: no API key was sent (some servers answer 403, not 401, when one is missing), or this path is not allowed');
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
export async function statusFailure(res: Response, signal: AbortSignal, server?: ServerType): Promise<ProbeFailure | undefined> {
  const bad = checkStatus(res.statusCode, res.keySent);
  if (!bad) return undefined;
  const read = await readLimited(res.body, 4096, signal);
  const text = typeof read === 'string' ? read.trim() : '';
  const message = text === '' ? bad.message : `${bad.message}: ${text.slice(0, 200)}`;
  if (server?.starting?.(res.statusCode, text)) return fail('starting', `still starting: ${message}`);
  return { ...bad, message };
}

/** Reads a body, but never more than maxBytes: a huge or endless answer cannot bloat the exporter. */
export function readLimited(body: Readable, maxBytes: number, signal: AbortSignal): Promise<string | ProbeFailure> {
  // Listeners rather than `for await`: an async iterator costs an end-of-stream watcher and a
  // promise per chunk (some 2 KB a probe). Same outcomes: the text at the end, a failure past
  // maxBytes, the transport error (or the deadline) if the body breaks off.
  if (body.readableEnded) return Promise.resolve('');
  if (body.destroyed) return Promise.resolve(classifyError(body.errored ?? prematureClose(), signal));
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const settle = (result: string | ProbeFailure) => {
      if (settled) return;
      settled = true;
      body.off('data', onData);
      resolve(result);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        settle(fail('bad_response', `response larger than ${maxBytes} bytes`));
        discard(body);
        return;
      }
      chunks.push(chunk);
    };
    body.on('data', onData);
    body.once('end', () => settle(chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8')));
    // Stays attached: an error after the end (or after discard) must find a listener.
    body.on('error', (err) => settle(classifyError(err, signal)));
    // Closed before its end without an error: what `for await` reports as a premature close.
    body.once('close', () => {
      if (!settled) settle(classifyError(body.errored ?? prematureClose(), signal));
    });
  });
}

const prematureClose = () => Object.assign(new Error('Premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' });

const ignore = () => {};

/** Drops a body we do not need (or no longer want), so the connection is not held. */
export function discard(body: Readable): void {
  if (body.destroyed) return;
  // destroy() of an unfinished body may emit an error: nobody needs to hear it.
  body.on('error', ignore);
  body.destroy();
}
