import type { IncomingMessage, ServerResponse } from 'node:http';
import { parse as parseQuery } from 'node:querystring';
import { closeConnection } from '../lib/web.ts';
import { Counter, Registry } from '../lib/prom-client.ts';
import type { ExporterConfig } from './config.ts';
import type { ApiKeys } from '../probing/api-keys.ts';
import type { Module } from '../probing/module.ts';
import { defaultServer, servers } from '../servers/index.ts';
import type { RoundHistory, StoredRound } from './history.ts';
import { durationGauge, failureReasonGauge, initSeries, recordUp, runRound, successGauge, type ProbeReport, type RoundReport } from '../probing/round.ts';
import type { GaugeDef, Labels } from '../probing/series.ts';
import { ProbeStore } from './probe-store.ts';
import { Coalescer } from './coalesce.ts';

/** A /probe request that cannot be run: answered with this status and reason. */
class ProbeRequestError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

/** Whether host:port is on the allow-list (entries: host, host:port, [v6]:port, *.domain). */
export function hostAllowed(url: URL, allowed: readonly string[] | undefined): boolean {
  if (allowed === undefined) return true;
  const host = url.hostname.toLowerCase();
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  return allowed.some((entry) => {
    const m = /^(.*?)(?::(\d+))?$/.exec(entry.toLowerCase())!;
    const [pattern, wantedPort] = [m[1]!, m[2]];
    if (wantedPort !== undefined && wantedPort !== port) return false;
    return pattern.startsWith('*.') ? host.endsWith(pattern.slice(1)) : host === pattern;
  });
}

/** The request's query, parsed as Express' default ("simple") parser does: a repeated name gives a list. */
function queryOf(path: string): ReturnType<typeof parseQuery> {
  const at = path.indexOf('?');
  return parseQuery(at < 0 ? '' : path.slice(at + 1));
}

function parseRequest(req: IncomingMessage, config: ExporterConfig) {
  const query = queryOf(req.url ?? '');
  const param = (name: string) => {
    const value = query[name];
    return typeof value === 'string' ? value : undefined;
  };
  const targetText = param('target');
  if (!targetText) throw new ProbeRequestError(400, 'target parameter is missing (e.g. ?target=http://127.0.0.1:8000/v1&module=vllm)');
  let url: URL;
  try {
    url = new URL(targetText);
  } catch {
    throw new ProbeRequestError(400, `target "${targetText}" is not a URL: give the server's OpenAI base URL, e.g. http://127.0.0.1:8000/v1`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ProbeRequestError(400, `target "${targetText}" is not an http(s) URL`);
  const moduleName = param('module') ?? defaultServer;
  const module = config.modules[moduleName];
  if (!module) throw new ProbeRequestError(400, `unknown module "${moduleName}" (known: ${Object.keys(config.modules).join(', ')})`);
  if (!hostAllowed(url, config.exporter.allowed_probe_hosts)) throw new ProbeRequestError(403, `target host "${url.host}" is not in exporter.allowed_probe_hosts`);
  const model = param('model');
  const server = servers[module.server];
  if (model === undefined && server.requiresModel) throw new ProbeRequestError(400, `a module for server type ${server.name} needs the model parameter (&model=${server.exampleModel})`);
  const header = req.headers['x-prometheus-scrape-timeout-seconds'];
  const scrapeTimeout = header === undefined ? undefined : Number(header);
  if (scrapeTimeout !== undefined && !(scrapeTimeout > 0)) throw new ProbeRequestError(400, `X-Prometheus-Scrape-Timeout-Seconds: not a positive number: "${header}"`);
  return { url: targetText.replace(/\/+$/, ''), module, model, scrapeTimeout, debug: param('debug') === 'true' };
}

/** The exporter's count of /probe requests that shared a round; registered by the exporter's registry. */
export function probeJoinedCounter(registry?: Registry): Counter {
  return new Counter({
    name: 'qwen_sentinel_exporter_probe_requests_joined_total',
    help: '/probe requests that joined a round another request for the same target, module, model and API key had under way (scrapes that overlap), instead of probing the server again.',
    registers: registry ? [registry] : [],
  });
}

/**
 * A round's store, which also notes which probes are done and when the last one ended: a request
 * that joined the round but must answer before it ends (its scrape timeout is earlier) answers
 * from a copy of it, with the probes not done by then failed.
 */
class RoundStore extends ProbeStore {
  /** The probes done so far, as the round recorded them. */
  readonly done = new Map<string, ProbeReport>();
  /** Monotonic time the last probe ended (the round's start before the first). */
  lastDoneAt: number;
  readonly #now: () => number;

  constructor(now: () => number) {
    super();
    this.#now = now;
    this.lastDoneAt = now();
  }

  override set(target: string, def: GaugeDef, value: number, labels?: Labels): void {
    super.set(target, def, value, labels);
    const probe = labels?.probe as ProbeReport['probe'] | undefined;
    if (probe === undefined) return;
    if (def === successGauge) {
      this.done.set(probe, { probe, success: value === 1, durationSeconds: 0 });
      this.lastDoneAt = this.#now();
    } else if (def === durationGauge) {
      const report = this.done.get(probe);
      if (report) report.durationSeconds = value;
    }
  }

  override only(target: string, def: GaugeDef, probe: string, labels: Labels | undefined): void {
    super.only(target, def, probe, labels);
    const report = this.done.get(probe);
    if (def === failureReasonGauge && report && labels?.reason !== undefined) report.reason = labels.reason as ProbeReport['reason'];
  }
}

/** A round under way, as the requests that share it see it. */
interface SharedRound {
  /** The config it runs under: a request after a reload that changed either starts its own. */
  module: Module;
  apiKey: string | undefined;
  /** The first request's deadline (monotonic ms): the round's. */
  deadline: number | undefined;
  /** Monotonic ms. */
  started: number;
  store: RoundStore;
  /** The request that started it (path and query). */
  first: string;
  /** The head of the round's log: the requests that started and joined it. */
  notes: string[];
}

interface Finished {
  stored: StoredRound;
  /** The exposition; undefined when the round was skipped (an exporter error). */
  text?: string;
}

const ms = (t: number) => `+${t.toFixed(1)} ms`;

/**
 * What a joined request answers when its own deadline comes before the round ends: the probes
 * done so far as the round recorded them, and the rest failed with reason timeout, as a round of
 * its own cut by that deadline would have answered.
 */
function cutShort(shared: SharedRound, url: string, model: string | undefined, arrived: number, at: number, log: string[]): { report: RoundReport; text: string } {
  const view = shared.store.copy();
  const probes: ProbeReport[] = [];
  let underWay = true;
  for (const name of shared.module.probes) {
    const done = shared.store.done.get(name);
    if (done) {
      probes.push({ ...done });
      continue;
    }
    // The probe the round is running took this long so far; those after it get no time at all.
    const seconds = underWay ? Math.max(0, at - shared.store.lastDoneAt) / 1000 : 0;
    const message = underWay ? 'the scrape timeout ended while the joined round ran this probe' : 'no time left in the scrape timeout';
    underWay = false;
    view.commit(url, name, undefined);
    view.set(url, successGauge, 0, { probe: name });
    view.set(url, durationGauge, seconds, { probe: name });
    view.only(url, failureReasonGauge, name, { probe: name, reason: 'timeout' });
    probes.push({ probe: name, success: false, reason: 'timeout', message, durationSeconds: seconds });
  }
  const report: RoundReport = {
    target: url,
    url,
    module: shared.module.name,
    server: servers[shared.module.server].name,
    model,
    startedAt: Date.now() - (at - arrived),
    durationSeconds: (at - arrived) / 1000,
    up: false,
    probes,
    log,
  };
  recordUp(view, report);
  return { report, text: view.text() };
}

const plainText = 'text/plain; charset=utf-8';

/**
 * Answers as Express' res.status(status).type(type).send(text) did (the same header lines),
 * without its work per answer: parsing and formatting the content type twice, the freshness check
 * (no ETag or Last-Modified here). Node sends no body to a HEAD request. When the request's body
 * has still not arrived once the answer is out, the connection ends (closeConnection), as in
 * createOpsApp: a GET without a body is complete by then.
 */
function reply(req: IncomingMessage, res: ServerResponse, status: number, type: string, text: string): void {
  if (!req.complete) res.once('finish', () => req.complete || closeConnection(req, res));
  res.statusCode = status;
  res.setHeader('Content-Type', type);
  res.setHeader('Content-Length', Buffer.byteLength(text));
  res.end(text);
}

/** What threw where nothing should: a 500 while nothing was sent (as Express' final handler), else the connection goes. */
function failed(req: IncomingMessage, res: ServerResponse, err: unknown): void {
  if (res.headersSent) return void req.socket.destroy();
  console.error(err);
  reply(req, res, 500, plainText, 'Internal Server Error\n');
}

export interface ProbeHandlerOptions {
  config: () => ExporterConfig;
  apiKeys: () => ApiKeys;
  history: RoundHistory;
  /** Seconds kept back from the scrape timeout, for the answer to reach Prometheus in time. */
  timeoutOffsetSeconds: number;
  /** Counts requests that joined a round under way (probeJoinedCounter, on the exporter's registry). */
  joined?: Counter;
}

/**
 * GET /probe?target=URL&module=NAME[&model=M][&debug=true], blackbox_exporter's multi-target
 * pattern: runs the module's round now and answers its series from a store of its own (no `target`
 * label: Prometheus' relabelling sets it). The round ends before the scrape timeout.
 *
 * Requests for the same round (target URL, module, model; the module's API key) that come while
 * it runs join it and answer the same text: scrapes that overlap probe the server once. The round
 * keeps the first request's deadline; it is aborted
 * only once every request for it has gone; a joined request whose own deadline comes first answers
 * then, with what the round has done so far. Nothing is kept after the round ends.
 */
export function probeHandler(o: ProbeHandlerOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const rounds = new Coalescer<SharedRound, Finished>();
  const joined = o.joined ?? probeJoinedCounter();
  const now = () => performance.now();
  const serve = async (req: IncomingMessage, res: ServerResponse) => {
    let request: ReturnType<typeof parseRequest>;
    try {
      request = parseRequest(req, o.config());
    } catch (err) {
      if (!(err instanceof ProbeRequestError)) throw err;
      return reply(req, res, err.status, plainText, `${err.message}\n`);
    }
    const path = req.url ?? '';
    const { url, module, model, scrapeTimeout, debug } = request;
    const apiKey = o.apiKeys().forModule(module.name);
    const arrived = now();
    const deadline = scrapeTimeout === undefined ? undefined : arrived + Math.max(0, scrapeTimeout - o.timeoutOffsetSeconds) * 1000;

    const start = (stop: AbortSignal) => {
      const store = new RoundStore(now);
      const shared: SharedRound = { module, apiKey, deadline, started: arrived, store, first: path, notes: [`GET ${path}`] };
      const result = (async (): Promise<Finished> => {
        initSeries(store, url, module);
        const report = await runRound({ target: { name: url, url, model, timeout: module.timeout, apiKey }, module, store, stop, now, deadline });
        // The report is this round's own: the requests' lines go at the head of its log, uncopied.
        report.log.unshift(...shared.notes);
        const stored = o.history.add(report);
        // The exporter could not run the round (out of file descriptors, ...): the scrape fails, as
        // the exporter's fault, rather than reporting the server down.
        if (report.skipped) return { stored };
        recordUp(store, report);
        return { stored, text: store.text() };
      })();
      return { context: shared, result };
    };
    const key = JSON.stringify([module.name, url, model ?? null]);
    const seat = rounds.take(key, (s) => s.module === module && s.apiKey === apiKey, start);
    res.on('close', seat.leave); // the client gave up (or was answered): the round stops once every client has
    const shared = seat.context;
    if (seat.joined) {
      joined.inc();
      shared.notes.push(`GET ${path} joined this round at ${ms(arrived - shared.started)}`);
    }

    let answer: Finished;
    if (seat.joined && deadline !== undefined && (shared.deadline === undefined || deadline < shared.deadline)) {
      // Its own deadline comes first: whichever is first, the round's end or that deadline.
      let timer: NodeJS.Timeout | undefined;
      const cut = new Promise<undefined>((resolve) => (timer = setTimeout(resolve, Math.max(0, deadline - now()), undefined)));
      const first = await Promise.race([seat.result, cut]).finally(() => clearTimeout(timer));
      if (first !== undefined) answer = first;
      else {
        const at = now();
        const { report, text } = cutShort(shared, url, model, arrived, at, [`GET ${path} joined the round of GET ${shared.first} at ${ms(arrived - shared.started)}; its own scrape timeout ended first, at ${ms(at - shared.started)}: the probes not done by then answer timeout`]);
        const stored = o.history.add(report);
        shared.notes.push(`GET ${path} answered on its own at its scrape timeout, ${ms(at - shared.started)} (round #${stored.id})`);
        seat.leave();
        answer = { stored, text };
      }
    } else answer = await seat.result;

    if (res.destroyed) return;
    const { stored, text } = answer;
    if (text === undefined) return reply(req, res, 503, plainText, `exporter error ${stored.skipped}: the probe could not run (round #${stored.id})\n`);
    if (debug) reply(req, res, 200, plainText, `Logs for the probe (round #${stored.id}):\n${stored.log.join('\n')}\n\nMetrics that would have been returned:\n${text}`);
    else reply(req, res, 200, Registry.PROMETHEUS_CONTENT_TYPE, text);
  };
  return (req, res) => void serve(req, res).catch((err: unknown) => failed(req, res, err));
}
