import type { Request, Response } from 'express';
import { Registry } from '../lib/prom-client.ts';
import type { ExporterConfig } from './config.ts';
import type { ApiKeys } from '../probing/api-keys.ts';
import { defaultServer, servers } from '../servers/index.ts';
import type { RoundHistory } from './history.ts';
import { initSeries, recordUp, runRound } from '../probing/round.ts';
import { SeriesStore } from '../probing/series.ts';

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

function parseRequest(req: Request, config: ExporterConfig) {
  const param = (name: string) => (typeof req.query[name] === 'string' ? (req.query[name] as string) : undefined);
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
  const header = req.get('x-prometheus-scrape-timeout-seconds');
  const scrapeTimeout = header === undefined ? undefined : Number(header);
  if (scrapeTimeout !== undefined && !(scrapeTimeout > 0)) throw new ProbeRequestError(400, `X-Prometheus-Scrape-Timeout-Seconds: not a positive number: "${header}"`);
  return { url: targetText.replace(/\/+$/, ''), module, model, scrapeTimeout, debug: param('debug') === 'true' };
}

export interface ProbeHandlerOptions {
  config: () => ExporterConfig;
  apiKeys: () => ApiKeys;
  history: RoundHistory;
  /** Seconds kept back from the scrape timeout, for the answer to reach Prometheus in time. */
  timeoutOffsetSeconds: number;
}

/**
 * GET /probe?target=URL&module=NAME[&model=M][&debug=true], blackbox_exporter's multi-target
 * pattern: runs the module's round now and answers its series from a fresh registry (no `target`
 * label: Prometheus' relabelling sets it). The round ends before the scrape timeout.
 */
export function probeHandler(o: ProbeHandlerOptions) {
  return async (req: Request, res: Response) => {
    let request: ReturnType<typeof parseRequest>;
    try {
      request = parseRequest(req, o.config());
    } catch (err) {
      if (!(err instanceof ProbeRequestError)) throw err;
      return void res.status(err.status).type('text/plain').send(`${err.message}\n`);
    }
    const { url, module, model, scrapeTimeout, debug } = request;
    const store = new SeriesStore(new Registry(), { targetLabel: false, cumulative: false });
    initSeries(store, url, module);
    const gone = new AbortController();
    res.on('close', () => gone.abort()); // Prometheus gave up: so do we
    const now = () => performance.now();
    const report = await runRound({
      target: { name: url, url, model, timeout: module.timeout, apiKey: o.apiKeys().forModule(module.name) },
      module,
      store,
      stop: gone.signal,
      now,
      deadline: scrapeTimeout === undefined ? undefined : now() + Math.max(0, scrapeTimeout - o.timeoutOffsetSeconds) * 1000,
    });
    const stored = o.history.add({ ...report, log: [`GET ${req.originalUrl}`, ...report.log] });
    if (res.destroyed) return;
    // The exporter could not run the round (out of file descriptors, ...): the scrape fails, as the
    // exporter's fault, rather than reporting the server down.
    if (report.skipped) return void res.status(503).type('text/plain').send(`exporter error ${report.skipped}: the probe could not run (round #${stored.id})\n`);
    recordUp(store, report);
    const metrics = store.text();
    if (debug) res.type('text/plain').send(`Logs for the probe (round #${stored.id}):\n${stored.log.join('\n')}\n\nMetrics that would have been returned:\n${metrics}`);
    else res.type(store.registry.contentType).send(metrics);
  };
}
