// An OpenAI-compatible, vLLM-shaped Qwen3 server with fault injection, on node:http (no body
// parsing or routing magic between a request and the fault that decides whether it is answered).
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { silentLogger, type Logger } from '../log.ts';
import { listenError } from '../web.ts';
import { isSimFault, simFaults, type SimFault } from './faults.ts';
import { completionResponse, errorBody, modelList, newMeta, planChat, roleChunk, tokenChunk, usageChunk } from './completion.ts';
import { generate } from './generate.ts';

export interface SimOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  model?: string;
  ttftMs?: number;
  tokensPerSecond?: number;
  fault?: SimFault;
  startupDelayMs?: number;
  logger?: Logger;
  /** Called when the `crash` fault is set; tests in-process override the default exit(1). */
  onCrash?: () => void;
}

export interface RunningSim {
  /** Origin, without /v1: http://127.0.0.1:PORT */
  readonly url: string;
  readonly port: number;
  readonly fault: SimFault;
  setFault(fault: SimFault): void;
  /** Closes at once, hung connections included. */
  close(): Promise<void>;
}

export async function startSim(options: SimOptions): Promise<RunningSim> {
  const model = options.model ?? 'Qwen/Qwen3-0.6B';
  const ttftMs = options.ttftMs ?? 200;
  const tokensPerSecond = options.tokensPerSecond ?? 50;
  const log = options.logger ?? silentLogger;
  const onCrash = options.onCrash ?? (() => process.exit(1));
  const created = Math.floor(Date.now() / 1000);
  let fault: SimFault = options.fault ?? 'none';
  const generations = new Set<() => void>();

  // Loading, as vLLM does it: the socket is bound and accepts, but nothing is answered until the
  // model is loaded; requests that arrived meanwhile are then served (the kernel backlog holds them).
  const startupDelayMs = options.startupDelayMs ?? 0;
  let markLoaded = () => {};
  const ready = startupDelayMs <= 0 ? Promise.resolve() : new Promise<void>((resolve) => (markLoaded = resolve));
  let loadTimer: NodeJS.Timeout | undefined;

  const applyFault = (next: SimFault) => {
    if (next !== fault) log.info({ from: fault, to: next }, 'fault changed');
    fault = next;
  };
  const crash = () => {
    log.error({ fault: 'crash' }, 'crash fault: exiting with code 1');
    onCrash();
  };

  const json = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://sim').pathname;
    // The control endpoints answer whatever the fault and while loading, so tests can always reset.
    if (path === '/sim/fault') return controlFault(req, res);
    await ready;
    // `hang`: the whole API is stuck; the request is held open and never answered.
    if (fault === 'hang') return;
    const route = `${req.method} ${path}`;
    if (route === 'GET /health' || route === 'GET /ping') return void res.writeHead(200, { 'content-length': 0 }).end();
    if (route === 'GET /v1/models') return json(res, 200, modelList(model, created));
    if (route === 'POST /v1/chat/completions') return chat(req, res);
    const known = ['/health', '/ping', '/v1/models', '/v1/chat/completions'].includes(path);
    json(res, known ? 405 : 404, { detail: known ? 'Method Not Allowed' : 'Not Found' }); // FastAPI's shape
  }

  async function controlFault(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method === 'GET') return json(res, 200, { fault });
    if (req.method !== 'POST') return json(res, 405, { detail: 'Method Not Allowed' });
    const body = parseJson(await readBody(req));
    const name = typeof body === 'object' && body !== null ? (body as { fault?: unknown }).fault : undefined;
    if (!isSimFault(name)) {
      const message = `unknown fault ${JSON.stringify(name)}; valid faults: ${simFaults.join(', ')}`;
      return json(res, 400, errorBody(message, 'BadRequestError', 400, 'fault'));
    }
    applyFault(name);
    res.writeHead(200, { 'content-type': 'application/json' });
    // For `crash`, answer first, then exit once the answer has been handed to the kernel.
    res.end(JSON.stringify({ fault: name }), () => name === 'crash' && setImmediate(crash));
  }

  async function chat(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = parseJson(await readBody(req));
    if (body === invalidJson) return json(res, 400, errorBody('Invalid JSON in request body', 'BadRequestError', 400));
    const result = planChat(body, model);
    if (!result.ok) return json(res, result.status, result.body);
    if (fault === 'error') return json(res, 500, errorBody('EngineCore encountered an issue (simulated fault)', 'InternalServerError', 500));
    const { plan } = result;
    const meta = newMeta(model);
    const send = (data: unknown) => res.write(`data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
    if (plan.stream) {
      // Starlette sends the 200 and headers before the first token exists: a hung engine shows exactly this.
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' }).flushHeaders();
    }
    const cancel = generate(plan.tokens, { ttftMs, tokensPerSecond, fault: () => fault }, {
      token(token, index, count) {
        const last = index === count - 1;
        if (plan.stream) {
          if (index === 0) send(roleChunk(meta));
          send(tokenChunk(meta, token, last ? plan.finishReason : null));
          if (last && plan.includeUsage) send(usageChunk(meta, plan));
          if (last) send('[DONE]');
        } else if (last) json(res, 200, completionResponse(meta, plan));
        if (last) finish();
      },
      error() {
        const body = errorBody('EngineCore encountered an issue (simulated fault)', 'InternalServerError', 500);
        // After the 200 has gone out, vLLM reports the error as a data chunk, then [DONE].
        if (!plan.stream) json(res, 500, body);
        else {
          send(body);
          send('[DONE]');
        }
        finish();
      },
    });
    const finish = () => {
      generations.delete(cancel);
      if (plan.stream && !res.writableEnded) res.end();
    };
    generations.add(cancel);
    res.on('close', () => (cancel(), generations.delete(cancel))); // client gone: stop the clock
  }

  const server = createServer({ requestTimeout: 0 }, (req, res) => {
    handle(req, res).catch((err: unknown) => {
      log.error({ err }, 'request failed');
      if (!res.headersSent) json(res, 500, errorBody(String(err), 'InternalServerError', 500));
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    const failed = (err: NodeJS.ErrnoException) => reject(listenError(options, err));
    server.once('error', failed);
    server.listen(options.port, options.host, () => (server.off('error', failed), resolve()));
  });
  const port = (server.address() as AddressInfo).port;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  if (startupDelayMs > 0) {
    log.info({ startupDelayMs }, 'loading model (simulated)');
    loadTimer = setTimeout(() => (markLoaded(), log.info('model loaded')), startupDelayMs);
  }
  if (fault === 'crash') crash();

  return {
    url: `http://${host}:${port}`,
    port,
    get fault() {
      return fault;
    },
    setFault(next) {
      applyFault(next);
      if (next === 'crash') setImmediate(crash);
    },
    async close() {
      clearTimeout(loadTimer);
      for (const cancel of generations) cancel();
      generations.clear();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}

const maxBodyBytes = 1 << 20;

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
