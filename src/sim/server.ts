// An OpenAI-compatible Qwen3 server in the dialect of a real one (--flavor), with fault injection,
// on node:http: no body parsing or routing magic between a request and the fault that decides
// whether it is answered.
import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { silentLogger, type Logger } from '../lib/log.ts';
import { bindablePort } from '../lib/system.ts';
import { listenError } from '../lib/web.ts';
import { isRecord, newMeta, planChat } from './completion.ts';
import { Engine, realTimers, type Timers } from './engine.ts';
import { isSimFault, simFaults, type SimFault } from './faults.ts';
import { flavors, type FlavorName } from './flavors/index.ts';
import type { Reply, SimState } from './flavors/types.ts';
import { http } from '../lib/node-http.ts';

const { createServer } = http;

export interface SimOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  flavor?: FlavorName;
  /** The served model (llama.cpp: the .gguf path); default: the flavor's. */
  model?: string;
  /** llama.cpp --alias: the names the model is listed under (the first, sorted, becomes its id); other flavors ignore them. */
  aliases?: string[];
  ttftMs?: number;
  tokensPerSecond?: number;
  fault?: SimFault;
  /** Model load time: refused, 503 or lazy, as the flavor loads. */
  startupDelayMs?: number;
  /** Requests to guarded paths need `Authorization: Bearer KEY` (vLLM --api-key). */
  apiKey?: string;
  /** Ollama: the model unloads after this long idle. */
  keepAliveMs?: number;
  /** SGLang: how long /health waits for its test generation before 503 (SGLANG_HEALTH_CHECK_TIMEOUT). */
  healthTimeoutMs?: number;
  slots?: number;
  streamInterval?: number;
  logger?: Logger;
  /** Called when the `crash` fault is set; tests in-process override the default exit(1). */
  onCrash?: () => void;
  timers?: Timers;
}

export interface RunningSim {
  /** Origin, without /v1: http://127.0.0.1:PORT */
  readonly url: string;
  readonly port: number;
  readonly flavor: FlavorName;
  readonly fault: SimFault;
  /** Resolves once the server listens and has its model (at once for llamacpp and ollama). */
  readonly ready: Promise<void>;
  setFault(fault: SimFault): void;
  /** Closes at once, hung connections included. */
  close(): Promise<void>;
}

const maxBodyBytes = 1 << 20;

export async function startSim(options: SimOptions): Promise<RunningSim> {
  const flavorName: FlavorName = options.flavor ?? 'vllm';
  const flavor = flavors[flavorName];
  const timers = options.timers ?? realTimers;
  const log = options.logger ?? silentLogger;
  const onCrash = options.onCrash ?? (() => process.exit(1));
  const startupDelayMs = options.startupDelayMs ?? 0;
  const keepAliveMs = options.keepAliveMs ?? 5 * 60_000;
  let fault: SimFault = options.fault ?? 'none';
  const engine = new Engine({
    ttftMs: options.ttftMs ?? 200,
    tokensPerSecond: options.tokensPerSecond ?? 50,
    slots: options.slots ?? flavor.slots,
    streamInterval: options.streamInterval ?? flavor.streamInterval,
    fault: () => fault,
    timers,
  });
  const modelPath = options.model ?? flavor.server.exampleModel;
  const aliases = flavor.aliases ? [...new Set(options.aliases ?? [])].sort() : [];
  const state: SimState = {
    model: aliases[0] ?? modelPath,
    modelPath,
    aliases,
    created: Math.floor(Date.now() / 1000),
    engine,
    fault: () => fault,
    now: () => timers.now(),
    loadedUntil: undefined,
    warming: false,
    healthTimeoutMs: options.healthTimeoutMs ?? 20_000,
  };
  const cancels = new Set<() => void>();
  const pending = new Set<NodeJS.Timeout>();
  const later = (fn: () => void, ms: number) => {
    const t = setTimeout(() => (pending.delete(t), fn()), ms);
    pending.add(t);
  };
  let loadingUntil = flavor.startup === 'loading-503' ? Date.now() + startupDelayMs : 0;

  const applyFault = (next: SimFault) => {
    if (next !== fault) log.info({ from: fault, to: next }, 'fault changed');
    fault = next;
    engine.faultChanged();
  };
  const crash = () => {
    log.error({ fault: 'crash' }, 'crash fault: exiting with code 1');
    onCrash();
  };

  // What the server's HTTP library adds: llama.cpp's cpp-httplib names itself, sends no Date,
  // closes the connection after an error and marks streams unbuffered for proxies.
  const wire = flavor.http ?? {};
  const send = (res: ServerResponse, reply: Reply) => {
    if (res.headersSent) return void res.end();
    const isText = typeof reply.body === 'string';
    const body = reply.body === undefined ? '' : isText ? (reply.body as string) : JSON.stringify(reply.body);
    const type = reply.contentType ?? (isText ? 'text/plain; charset=utf-8' : (wire.jsonType ?? 'application/json'));
    res.writeHead(reply.status, {
      ...wire.headers,
      ...(reply.body === undefined ? {} : { 'content-type': type }),
      'content-length': Buffer.byteLength(body),
      ...(wire.closeOnError && reply.status >= 400 ? { connection: 'close' } : {}),
    }).end(body);
  };

  const authorized = (req: IncomingMessage): boolean => {
    const key = options.apiKey!;
    const given = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '')?.[1] ?? (flavor.keyHeader ? req.headers[flavor.keyHeader] : undefined);
    return typeof given === 'string' && given.length === key.length && timingSafeEqual(Buffer.from(given), Buffer.from(key));
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    res.sendDate = !wire.noDate;
    const path = new URL(req.url ?? '/', 'http://sim').pathname;
    // The control endpoints answer whatever the fault and while loading, so tests can always reset.
    if (path === '/sim/fault') return controlFault(req, res);
    // llama.cpp answers every path with 503 until the model is loaded, before it checks the key.
    if (Date.now() < loadingUntil) return send(res, flavor.error(503, 'Loading model'));
    // `hang`: the whole API is stuck; the request is held open and never answered.
    if (fault === 'hang') return;
    if (options.apiKey && flavor.guarded(path) && !authorized(req)) return send(res, flavor.unauthorized);
    const route = `${req.method} ${path}`;
    if (req.method === 'GET' && flavor.listingPaths.includes(path)) return send(res, { status: 200, body: flavor.listing(state) });
    if (route === 'POST /v1/chat/completions') return chat(req, res);
    const get = flavor.routes(state)[path];
    if (get && req.method === 'GET') return send(res, await get());
    send(res, flavor.notFound);
  }

  async function controlFault(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method === 'GET') return send(res, { status: 200, body: { fault } });
    if (req.method !== 'POST') return send(res, { status: 405, body: { detail: 'Method Not Allowed' } });
    const body = parseJson(await readBody(req));
    const name = isRecord(body) ? body.fault : undefined;
    if (!isSimFault(name)) return send(res, { status: 400, body: { error: { message: `unknown fault ${JSON.stringify(name)}; valid faults: ${simFaults.join(', ')}`, type: 'BadRequestError', param: 'fault', code: 400 } } });
    applyFault(name);
    res.writeHead(200, { 'content-type': 'application/json' });
    // For `crash`, answer first, then exit once the answer has been handed to the kernel.
    res.end(JSON.stringify({ fault: name }), () => name === 'crash' && setImmediate(crash));
  }

  // Ollama loads a model when a request first needs it; the load runs on that request, so a
  // client that goes away before it finishes aborts it.
  let loading: Promise<void> | undefined;
  function ensureLoaded(res: ServerResponse): Promise<void> {
    if (state.loadedUntil !== undefined && state.loadedUntil > Date.now()) return Promise.resolve();
    loading ??= new Promise<void>((resolve, reject) => {
      log.info({ model: state.model, ms: startupDelayMs }, 'loading model');
      const timer = setTimeout(() => {
        res.off('close', abort);
        state.loadedUntil = Date.now() + keepAliveMs;
        loading = undefined;
        log.info({ model: state.model }, 'model loaded');
        resolve();
      }, startupDelayMs);
      const abort = () => {
        clearTimeout(timer);
        loading = undefined;
        log.warn({ model: state.model }, 'client connection closed before llama-server finished loading, aborting load');
        reject(new Error('load aborted'));
      };
      res.once('close', abort);
    });
    return loading;
  }

  async function chat(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const parsed = parseJson(await readBody(req));
    if (parsed === invalidJson) return send(res, flavor.invalidJson?.() ?? flavor.error(400, 'Invalid JSON in request body'));
    // JSON that is not an object has no `messages`: the request is refused for that.
    const body = isRecord(parsed) ? parsed : {};
    if (typeof body.model === 'string' && !flavor.modelMatches(body.model, state.model)) {
      return send(res, flavor.error(404, flavor.modelMissing(body.model)));
    }
    const thinking = flavor.thinking(body);
    if (typeof thinking === 'string') return send(res, flavor.error(400, thinking));
    const result = planChat(body, thinking, flavor.request);
    if (!result.ok) return send(res, flavor.error(result.status, result.message));
    if (fault === 'error') return send(res, flavor.error(500, 'EngineCore encountered an issue (simulated fault)'));
    // A dead engine behind FastAPI: 500 with an empty body.
    if (fault === 'engine-dead') return send(res, flavor.engineDead ?? flavor.error(500, 'engine dead (simulated fault)'));
    if (flavor.startup === 'on-first-request') {
      try {
        await ensureLoaded(res);
      } catch {
        return; // the client is gone
      }
    }
    const { plan } = result;
    const meta = newMeta(state.model, flavor.completionId?.());
    const streamer = flavor.streamer(meta, plan, state);
    const write = (payloads: object[]) => {
      for (const p of payloads) res.write(`data: ${JSON.stringify(p)}\n\n`);
    };
    const head = () => {
      if (!res.headersSent) res.writeHead(200, { ...wire.headers, ...(wire.streamHeaders ?? { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' }) }).flushHeaders();
    };
    // vLLM and SGLang send the 200 before the first token exists: a hung engine shows exactly this.
    if (plan.stream && flavor.headers === 'at-once') head();
    let first = true;
    const done = () => {
      cancels.delete(cancel);
      if (state.loadedUntil !== undefined) state.loadedUntil = Date.now() + keepAliveMs;
    };
    const cancel = engine.submit(plan.tokens, {
      started() {
        if (!plan.stream) return;
        if (flavor.headers === 'with-slot') head();
        const payloads = streamer.started();
        if (payloads.length > 0) (head(), write(payloads));
      },
      tokens(tokens, last) {
        if (plan.stream) {
          const payloads = streamer.tokens(tokens, first, last);
          first = false;
          // Ollama writes its headers with its first chunk, and a token it does not show makes none.
          if (payloads.length > 0 || flavor.headers !== 'with-first-token') head();
          write(payloads);
          if (last) {
            head();
            write(streamer.ended());
            res.end('data: [DONE]\n\n');
          }
        } else if (last) send(res, { status: 200, body: flavor.completion(meta, plan, state) });
        if (last) done();
      },
      error() {
        done();
        if (!plan.stream || !res.headersSent) return send(res, flavor.error(500, 'EngineCore encountered an issue (simulated fault)'));
        // After the 200 has gone out, the error can only travel inside the stream (or end it).
        const { payloads, done: withDone } = flavor.streamError('EngineCore encountered an issue (simulated fault)');
        write(payloads);
        res.end(withDone ? 'data: [DONE]\n\n' : undefined);
      },
    });
    cancels.add(cancel);
    res.on('close', () => (cancel(), done())); // client gone: free its slot
  }

  const server = createServer({ requestTimeout: 0 }, (req, res) => {
    handle(req, res).catch((err: unknown) => {
      log.error({ err }, 'request failed');
      if (!res.headersSent) send(res, flavor.error(500, String(err)));
      else res.destroy();
    });
  });
  const listen = (port: number) =>
    new Promise<void>((resolve, reject) => {
      const failed = (err: NodeJS.ErrnoException) => reject(listenError({ host: options.host, port }, err));
      server.once('error', failed);
      server.listen(port, options.host, () => (server.off('error', failed), resolve()));
    });

  // vLLM and SGLang hold the port while they load and listen only once loaded: until then a
  // connection is refused, exactly as for a crashed server.
  const refuse = flavor.startup === 'refuse' && startupDelayMs > 0;
  const port = refuse ? await bindablePort(options.host, options.port) : options.port;
  let ready: Promise<void>;
  if (refuse) {
    log.info({ startupDelayMs }, 'loading model (simulated): not listening yet');
    ready = new Promise<void>((resolve, reject) => later(() => listen(port).then(resolve, reject), startupDelayMs));
    ready.catch((err: Error) => log.error({ err: err.message }, 'cannot listen'));
  } else {
    await listen(port);
    ready = Promise.resolve();
    if (loadingUntil > 0) log.info({ startupDelayMs }, 'loading model (simulated): 503 Loading model');
  }
  // SGLang: listening, but /health 503 until its warm-up generation is done.
  if (flavor.warmsUp && startupDelayMs > 0) {
    state.warming = true;
    void ready.then(() => later(() => (state.warming = false), Math.min(1000, startupDelayMs)));
  }
  const boundPort = port === 0 ? (server.address() as { port: number }).port : port;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  if (fault === 'crash') crash();

  return {
    url: `http://${host}:${boundPort}`,
    port: boundPort,
    flavor: flavorName,
    ready,
    get fault() {
      return fault;
    },
    setFault(next) {
      applyFault(next);
      if (next === 'crash') setImmediate(crash);
    },
    async close() {
      for (const t of pending) clearTimeout(t);
      pending.clear();
      loadingUntil = 0;
      for (const cancel of cancels) cancel();
      cancels.clear();
      engine.stop();
      if (!server.listening) return;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}

/** The request body as text; a body over 1 MiB is cut off and treated as invalid JSON. */
function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > maxBodyBytes) {
        req.destroy();
        resolve('');
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

const invalidJson = Symbol('invalid JSON');
function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return invalidJson;
  }
}
