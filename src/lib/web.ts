import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { ServerOptions } from 'node:https';
import type { TLSSocket } from 'node:tls';
import express, { type Express, type RequestHandler } from 'express';
import type { Registry } from 'prom-client';
import type { Reloadable } from './reloader.ts';
import type { ListenAddress } from './flags.ts';
import { ListenError } from './errors.ts';
import { http, https } from './node-http.ts';

const { createServer: createHttpServer, STATUS_CODES } = http;

export { ListenError };

/** Options for https.createServer, plus a check of the client's certificate after the handshake. */
export interface TlsOptions extends ServerOptions {
  acceptClient?: ((socket: TLSSocket) => boolean) | undefined;
}

/**
 * What /metrics serves when it renders in pieces: `write` hands the exposition to `sink` chunk by
 * chunk (yielding to the event loop between them as it likes) and resolves once all of it is out.
 */
export interface StreamedMetrics {
  readonly contentType: string;
  write(sink: (chunk: string) => void): Promise<void>;
}

/** A route's handler on the plain node:http request and response (no Express helpers on them). */
export type PlainHandler = (req: IncomingMessage, res: ServerResponse) => void;

/** A route answered by a plain handler: one method, one path. */
export interface PlainRoute {
  method: 'GET' | 'POST' | 'PUT';
  path: string;
  handle: PlainHandler;
}

export interface OpsRoutes {
  /** What /metrics serves: a prom-client registry, or an exposition rendered in pieces. */
  registry: Registry | StreamedMetrics;
  /** Ready means: able to do the job (config loaded, first probe round done, ...). */
  isReady: () => boolean;
  /** The status page at /: plain server-rendered HTML. */
  home: () => string;
  /** Present when the config came from a file: serves POST/PUT /-/reload. */
  reloader?: Reloadable | undefined;
  /** As Prometheus' --web.enable-lifecycle: without it /-/reload answers 403 (SIGHUP still works). */
  enableLifecycle?: boolean | undefined;
  /** Runs before every route: basic auth from --web.config.file. */
  guard?: RequestHandler | undefined;
  /**
   * Busy routes on plain handlers (the remediator's POST /webhook, the exporter's GET /probe).
   * Without a guard, a request for exactly that method and path (any query) is handed to its
   * handler before Express sees it, so it pays for no routing, middleware or response helpers; any
   * other spelling (a trailing slash, HEAD), and every request when a guard is set, reaches the
   * same handler through Express. A plain
   * handler ends the connection itself when it answers before the body has arrived
   * (closeConnection), and catches what throws in its own callbacks.
   */
  plain?: readonly PlainRoute[] | undefined;
}

// The plain routes listen() hands requests to before Express, per app: path, then method.
const direct = new WeakMap<Express, Map<string, Map<string, PlainHandler>>>();

/** An Express app with the routes every Prometheus component has: /metrics, /-/healthy, /-/ready, a landing page. */
export function createOpsApp(ops: OpsRoutes): Express {
  const app = express();
  app.disable('x-powered-by');
  // No ETag: Prometheus and Alertmanager never revalidate, and Express would hash every answer for
  // it (SHA-1 over each /metrics body: 27 MB at 10,000 targets; every webhook reply).
  app.set('etag', false);
  // Any answer sent before its request's body has arrived (a refusal, a 404) ends the connection:
  // reading the rest would hold the socket for as long as the sender likes.
  app.use((req, res, next) => {
    res.once('finish', () => req.complete || closeConnection(req, res));
    next();
  });
  if (ops.guard) app.use(ops.guard);
  const metrics = new SharedMetrics(streamed(ops.registry));
  app.get('/metrics', (req, res) => metrics.serve(req, res));
  app.get('/-/healthy', (_req, res) => {
    res.type('text/plain').send('Healthy.\n');
  });
  app.get('/-/ready', (_req, res) => {
    if (ops.isReady()) res.type('text/plain').send('Ready.\n');
    else res.status(503).type('text/plain').send('Not ready.\n');
  });
  const reload = async (_req: express.Request, res: express.Response) => {
    if (!ops.enableLifecycle) return void res.status(403).type('text/plain').send('Lifecycle API is not enabled.\n');
    if (!ops.reloader) return void res.status(400).type('text/plain').send('started without a config file: there is nothing to reload\n');
    try {
      res.type('text/plain').send(`config ${await ops.reloader.reload()}\n`);
    } catch (err) {
      // As Prometheus answers a failed reload; the running config stays.
      res.status(500).type('text/plain').send(`failed to reload config: ${(err as Error).message}\n`);
    }
  };
  app.post('/-/reload', reload);
  app.put('/-/reload', reload);
  app.get('/', (_req, res) => {
    res.type('html').send(ops.home());
  });
  for (const { method, path, handle } of ops.plain ?? []) app[method.toLowerCase() as 'get' | 'post' | 'put'](path, (req, res) => handle(req, res));
  if (ops.plain?.length && !ops.guard) {
    const routes = new Map<string, Map<string, PlainHandler>>();
    for (const { method, path, handle } of ops.plain) routes.set(path, (routes.get(path) ?? new Map()).set(method, handle));
    direct.set(app, routes);
  }
  return app;
}

/** A prom-client registry as one piece. */
const streamed = (source: Registry | StreamedMetrics): StreamedMetrics =>
  'write' in source ? source : { contentType: source.contentType, write: async (sink) => sink(await source.metrics()) };

// node:zlib is loaded at the first compressed answer: a process nobody scrapes with gzip never pays for it.
const zlib = () => process.getBuiltinModule('node:zlib');

/** Accept-Encoding names gzip with a q above 0 (Prometheus sends `Accept-Encoding: gzip`). */
export function acceptsGzip(header: string | undefined): boolean {
  for (const part of (header ?? '').split(',')) {
    const [coding, ...params] = part.split(';').map((p) => p.trim().toLowerCase());
    if (coding !== 'gzip') continue;
    const q = params.find((p) => p.startsWith('q='));
    return q === undefined || Number(q.slice(2)) > 0;
  }
  return false;
}

/**
 * The chunks of one rendering as they come, kept until every reader has them: a reader that joins
 * late starts from the first chunk, and each reads at its own pace.
 */
class Tape {
  readonly chunks: Array<string | Buffer> = [];
  done = false;
  failed: Error | undefined;
  #waiting: Array<() => void> = [];
  push(chunk: string | Buffer): void {
    this.chunks.push(chunk);
    this.#wake();
  }
  end(err?: Error): void {
    this.done = true;
    this.failed = err;
    this.#wake();
  }
  /** Resolves at the next chunk or the end. */
  changed(): Promise<void> {
    return new Promise((resolve) => this.#waiting.push(resolve));
  }
  #wake(): void {
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const resolve of waiting) resolve();
  }
}

/** Anything written to with backpressure: a response, a gzip stream. */
interface Sink {
  readonly destroyed: boolean;
  write(chunk: string | Buffer): boolean;
  once(event: 'drain' | 'close', listener: () => void): unknown;
  off(event: 'drain' | 'close', listener: () => void): unknown;
}

/** Until the sink drains (or goes away). */
const drained = (sink: Sink) =>
  new Promise<void>((resolve) => {
    const done = () => {
      sink.off('drain', done);
      sink.off('close', done);
      resolve();
    };
    sink.once('drain', done);
    sink.once('close', done);
  });

/** The chunks from the i-th on, as one: one write, one zlib job, for all that came since the last. */
function joinedFrom(chunks: ReadonlyArray<string | Buffer>, i: number): string | Buffer {
  if (i === chunks.length - 1) return chunks[i]!;
  const rest = chunks.slice(i);
  return typeof rest[0] === 'string' ? rest.join('') : Buffer.concat(rest as Buffer[]);
}

/**
 * Copies a tape into a sink, waiting for the sink to drain whenever its buffer is full, so a slow
 * reader holds no more than one buffer of unsent bytes beyond the tape. What came meanwhile is
 * written at once: gzip compresses each write in a job of its own on the thread pool, and each job
 * waits for a turn of the event loop to hand its output back. `start` runs before the first chunk
 * (or at the end, when there is none); resolves with the tape's error, if any.
 */
async function play(tape: Tape, sink: Sink, start: () => void): Promise<Error | undefined> {
  let i = 0;
  for (;;) {
    if (i < tape.chunks.length) {
      if (sink.destroyed) return undefined;
      if (i === 0) start();
      const chunk = joinedFrom(tape.chunks, i);
      i = tape.chunks.length;
      if (!sink.write(chunk)) await drained(sink);
      continue;
    }
    if (tape.done) {
      if (i === 0 && !tape.failed) start();
      return tape.failed;
    }
    await tape.changed();
  }
}

/** One rendering, and its gzip once a reader asks for it. */
interface Rendering {
  plain: Tape;
  gzip?: Tape;
}

/**
 * /metrics, streamed: the exposition goes out chunk by chunk as it is rendered, gzipped (by zlib on
 * its thread pool, off the event loop) when the scraper accepts it. Scrapes that arrive while a
 * rendering is under way share it (both Prometheus servers of an HA pair scraping at once cost one
 * rendering, and one compression): each gets every byte from the first. A scrape after the
 * rendering ended starts a new one; nothing is cached. A rendering that fails before its first
 * byte answers 500; after it, the connection is cut, so the scrape fails rather than read a
 * truncated exposition.
 */
class SharedMetrics {
  readonly #source: StreamedMetrics;
  #current: Rendering | undefined;
  constructor(source: StreamedMetrics) {
    this.#source = source;
  }

  async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const rendering = this.#rendering();
    const gzip = acceptsGzip(req.headers['accept-encoding']);
    const tape = gzip ? (rendering.gzip ??= compressed(rendering.plain)) : rendering.plain;
    const failed = await play(tape, res, () => {
      res.setHeader('content-type', this.#source.contentType);
      res.setHeader('vary', 'Accept-Encoding');
      if (gzip) res.setHeader('content-encoding', 'gzip');
    });
    if (!failed) return void res.end();
    console.error(failed);
    if (res.headersSent) return void res.destroy();
    res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end(`error rendering metrics: ${failed.message}\n`);
  }

  #rendering(): Rendering {
    if (this.#current) return this.#current;
    const rendering: Rendering = { plain: new Tape() };
    this.#current = rendering;
    const ended = (err?: Error) => {
      if (this.#current === rendering) this.#current = undefined;
      rendering.plain.end(err);
    };
    this.#source.write((chunk) => rendering.plain.push(chunk)).then(() => ended(), (err: Error) => ended(err));
    return rendering;
  }
}

/**
 * The gzip of a tape, as a tape of its own. zlib hands its output back one output buffer per job
 * on the thread pool, each waiting for a turn of the event loop: 128 KB buffers (not 16 KB) let
 * the 0.23 MB gzip of 10,000 targets' 3.3 MB come back in two. Level 1 (fastest), not zlib's
 * default 6: on 2 busy cores the default took 95-167 ms of a scrape of 10,000 targets, level 1
 * 44-58 ms, for an answer 6 % larger (0.17 against 0.16 MB): label text repeats, any level finds it.
 */
function compressed(plain: Tape): Tape {
  const out = new Tape();
  const gzip = zlib().createGzip({ chunkSize: 128 * 1024, level: zlib().constants.Z_BEST_SPEED });
  gzip.on('data', (chunk: Buffer) => out.push(chunk));
  gzip.once('end', () => out.end());
  gzip.on('error', (err) => out.end(err));
  void play(plain, gzip, () => {}).then((err) => (err ? gzip.destroy(err) : gzip.end()));
  return out;
}

// After a refusal the connection is half-closed at once and destroyed 500 ms later: destroying it
// while the client still sends makes the kernel answer with a reset, which can discard our answer
// before the client reads it (a 413 seen as a transport error is retried by Alertmanager).
const lingerMs = 500;

/**
 * Closes the connection once this response is sent, without reading the rest of the request: with
 * `Connection: close` when the headers are not out yet, then end, discard, destroy.
 */
export function closeConnection(req: IncomingMessage, res: ServerResponse): void {
  const socket = req.socket;
  if (!res.headersSent) {
    res.setHeader('connection', 'close');
    // Node ends a `Connection: close` response with destroySoon(): linger instead (as Go's server does).
    socket.destroySoon = () => void socket.end();
  }
  const close = () => {
    socket.end();
    socket.resume();
    setTimeout(() => socket.destroy(), lingerMs).unref();
  };
  if (res.writableFinished) close();
  else res.once('finish', close);
}

export interface Listening {
  server: Server;
  /** http://HOST:PORT with the port actually bound (port 0 picks one). */
  url: string;
  close(): Promise<void>;
}

/** The port is taken, or the address is not ours: a clear message, not a stack trace. */

export function listenError(address: ListenAddress, err: NodeJS.ErrnoException): ListenError {
  return new ListenError(`cannot listen on ${address.host}:${address.port}: ${err.code === 'EADDRINUSE' ? 'address already in use' : err.message}`);
}

// Limits that keep a slow or hostile client from holding sockets: headers within 10 s, the whole
// request within 30 s (Node checks both on an interval, 30 s by default, so a limit could run 30 s
// late: checked every second), a TLS handshake within 10 s, an idle keep-alive connection closed
// after 5 s, at most 512 connections (see limitConnections).
const limits = { headersTimeoutMs: 10_000, requestTimeoutMs: 30_000, checkEveryMs: 1_000, handshakeTimeoutMs: 10_000, keepAliveTimeoutMs: 5_000, maxConnections: 512 };

/**
 * At most `max` connections, without letting the ones that send nothing keep everyone else out
 * (slowloris: connections that never finish their headers). Node's own maxConnections refuses the
 * newcomer; here, when a connection would pass the limit, the oldest connection that is not serving
 * a request (its headers not complete yet, or an idle keep-alive) is closed to make room. Only when
 * every connection is serving a request is the newcomer refused. A client sending a whole request
 * at once thus always gets in; a flood of idle connections only ever pushes out its own oldest.
 */
function limitConnections(server: Server, max: number): void {
  // Connections not serving a request, oldest first (a Map keeps insertion order).
  const idle = new Map<Socket, true>();
  // Requests being served, per connection.
  const serving = new Map<Socket, number>();
  server.on('connection', (socket: Socket) => {
    if (idle.size + serving.size >= max) {
      const oldest = idle.keys().next();
      if (oldest.done) return void socket.destroy();
      idle.delete(oldest.value);
      oldest.value.destroy();
    }
    idle.set(socket, true);
    socket.once('close', () => {
      idle.delete(socket);
      serving.delete(socket);
    });
  });
  // Before the handler, which may finish its response at once.
  server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => {
    // Over TLS the request's socket wraps the TCP socket the connection event saw.
    const socket = ((req.socket as { _parent?: Socket })._parent ?? req.socket) as Socket;
    if (socket.destroyed) return;
    idle.delete(socket);
    serving.set(socket, (serving.get(socket) ?? 0) + 1);
    // A response emits `close` once, after it finished or when its connection went first.
    res.on('close', () => {
      const left = (serving.get(socket) ?? 1) - 1;
      if (left > 0) return void serving.set(socket, left);
      serving.delete(socket);
      // Waiting for its next request: the newest of the idle ones.
      if (!socket.destroyed) idle.set(socket, true);
    });
  });
}

/**
 * What no route answered (404) or an error that reached the end: in place of Express' final
 * handler, which reads the whole request body before it answers.
 */
function unhandled(req: IncomingMessage, res: ServerResponse, err?: unknown): void {
  if (res.headersSent) return void req.socket.destroy();
  const status = (err as { status?: unknown } | undefined)?.status;
  const code = err === undefined ? 404 : typeof status === 'number' && status >= 400 && status < 600 ? status : 500;
  if (code >= 500) console.error(err);
  if (!req.complete) closeConnection(req, res);
  res.writeHead(code, { 'content-type': 'text/plain; charset=utf-8' }).end(`${STATUS_CODES[code] ?? 'Error'}\n`);
}

export function listen(app: Express, address: ListenAddress, tls?: TlsOptions): Promise<Listening> {
  return new Promise((resolve, reject) => {
    const { acceptClient, ...options } = tls ?? {};
    // An Express app takes a third argument, called when nothing answered (its types omit it).
    const handle = app as unknown as (req: IncomingMessage, res: ServerResponse, done: (err?: unknown) => void) => void;
    const plain = direct.get(app);
    const serve = (req: IncomingMessage, res: ServerResponse) => {
      const url = req.url!;
      const query = url.indexOf('?');
      const route = plain?.get(query < 0 ? url : url.slice(0, query))?.get(req.method!);
      if (route === undefined) return handle(req, res, (err) => unhandled(req, res, err));
      try {
        route(req, res);
      } catch (err) {
        unhandled(req, res, err);
      }
    };
    const timeouts = { headersTimeout: limits.headersTimeoutMs, requestTimeout: limits.requestTimeoutMs, keepAliveTimeout: limits.keepAliveTimeoutMs, connectionsCheckingInterval: limits.checkEveryMs };
    const server = tls ? https().createServer({ ...options, ...timeouts, handshakeTimeout: limits.handshakeTimeoutMs }, serve) : createHttpServer(timeouts, serve);
    // Client-certificate rules Node's options cannot express are checked once the handshake is done.
    if (acceptClient) server.on('secureConnection', (socket: TLSSocket) => acceptClient(socket) || socket.destroy());
    server.keepAliveTimeout = limits.keepAliveTimeoutMs;
    limitConnections(server, limits.maxConnections);
    server.listen(address.port, address.host);
    server.once('error', (err: NodeJS.ErrnoException) => reject(listenError(address, err)));
    server.once('listening', () => {
      const { port } = server.address() as AddressInfo;
      const host = address.host.includes(':') ? `[${address.host}]` : address.host;
      resolve({
        server,
        url: `${tls ? 'https' : 'http'}://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}
