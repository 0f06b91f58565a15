// Drives an exporter's GET /probe the way Prometheus scrapes a multi-target exporter: every target
// once per interval, the targets' scrapes spread evenly over the interval (Prometheus offsets each
// by a hash of its labels: evenly is the same on average), each request carrying the scrape
// timeout header. One driver for blackbox_exporter and for ours, so their figures compare.
//
// A driver artifact to stay clear of: a kept-alive connection that sat idle longer than the
// server's keep-alive timeout (Node's http server: 5 s) is closed by the server, and a request
// the client sends on it just then fails with ECONNRESET (seen as failed probes of ours, never of
// blackbox_exporter, whose Go server keeps idle connections). Prometheus' Go client drops a pooled
// connection the server closed, and sends an idempotent request again when a reused connection
// fails before any answer; so does this driver: it closes a connection idle for 1 s, well before
// the server's 5 s, and sends a request that failed on the socket before any answer once more,
// counting it in `retried`.
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'undici';
import { cpuSeconds, memoryMB } from './procs.ts';

export interface DriveOptions {
  /** http://host:port of the exporter. */
  origin: string;
  /** One /probe path (with its query) per target. */
  paths: readonly string[];
  intervalMs: number;
  /** Driven but not measured: connections opened, code warmed. */
  warmupMs: number;
  /** The measured window after the warm-up. */
  windowMs: number;
  /** The process whose CPU (user + system) is measured over the window. */
  pid: number;
  /** Whether an answer is a successful probe. */
  ok(status: number, body: string): boolean;
  signal: AbortSignal;
  /** X-Prometheus-Scrape-Timeout-Seconds, as Prometheus sends it (default 10). */
  scrapeTimeoutSeconds?: number;
  /** Requests in flight at most (default 256): past it the driver waits and reports the lag. */
  maxInFlight?: number;
  connections?: number;
}

export interface DriveResult {
  /** Answers completed inside the window. */
  answers: number;
  /** Of them, not a successful probe (or no answer at all). */
  failures: number;
  /** Requests sent again after a socket error before any answer (the keep-alive race above). */
  retried: number;
  cpuSeconds: number;
  /** CPU per answer in the window, ms. */
  cpuPerAnswerMs: number;
  /** The driver's worst lateness against its own schedule, ms: it must have kept the rate. */
  lagMs: number;
  /** RSS of the driven process at the end of the window, MB. */
  rssMB: number;
  /** What the first failures were (status or error code), counted. */
  failureKinds: Record<string, number>;
}

/** When the k-th request is due (ms after start): target k mod n, once per interval, spread evenly. */
export function dueAt(k: number, n: number, intervalMs: number): number {
  return (k * intervalMs) / n;
}

/** Socket errors a request can meet on a kept-alive connection the server closed: safe to resend a GET. */
export function isStaleSocketError(err: unknown): boolean {
  const code = (err as { code?: string } | undefined)?.code;
  return code === 'ECONNRESET' || code === 'EPIPE' || code === 'UND_ERR_SOCKET' || code === 'UND_ERR_CLOSED';
}

export async function driveProbes(o: DriveOptions): Promise<DriveResult> {
  const n = o.paths.length;
  const pool = new Pool(o.origin, { connections: o.connections ?? 64, keepAliveTimeout: 1000, keepAliveMaxTimeout: 1000, keepAliveTimeoutThreshold: 0 });
  const headers = { 'x-prometheus-scrape-timeout-seconds': String(o.scrapeTimeoutSeconds ?? 10) };
  const maxInFlight = o.maxInFlight ?? 256;
  const start = performance.now() + 100;
  const windowFrom = start + o.warmupMs;
  const end = windowFrom + o.windowMs;
  let cpu0: number | undefined;
  let k = 0;
  let inFlight = 0;
  let lag = 0;
  let answers = 0;
  let failures = 0;
  let retried = 0;
  const kinds: Record<string, number> = {};
  const failed = (kind: string) => {
    failures++;
    kinds[kind] = (kinds[kind] ?? 0) + 1;
  };
  const pending = new Set<Promise<void>>();
  const once = async (path: string): Promise<{ status: number; body: string }> => {
    const res = await pool.request({ path, method: 'GET', headers });
    return { status: res.statusCode, body: await res.body.text() };
  };
  try {
    while (performance.now() < end) {
      o.signal.throwIfAborted();
      const now = performance.now();
      if (cpu0 === undefined && now >= windowFrom) cpu0 = cpuSeconds(o.pid);
      const due = start + dueAt(k, n, o.intervalMs);
      if (due > now) {
        await sleep(Math.min(10, due - now));
        continue;
      }
      if (inFlight >= maxInFlight) {
        await sleep(1);
        continue;
      }
      lag = Math.max(lag, now - due);
      const path = o.paths[k % n]!;
      k++;
      inFlight++;
      const p = (async () => {
        let answer: { status: number; body: string } | undefined;
        let error: unknown;
        try {
          answer = await once(path);
        } catch (err) {
          if (!isStaleSocketError(err)) error = err;
          else {
            retried++;
            try {
              answer = await once(path);
            } catch (again) {
              error = again;
            }
          }
        }
        const at = performance.now();
        if (cpu0 === undefined || at > end) return;
        answers++;
        if (answer === undefined) failed(String((error as { code?: string })?.code ?? (error as Error)?.message ?? 'error'));
        else if (!o.ok(answer.status, answer.body)) failed(`status ${answer.status}${answer.status === 200 ? ' (probe failed)' : ''}`);
      })().finally(() => {
        inFlight--;
        pending.delete(p);
      });
      pending.add(p);
    }
    const cpu = cpuSeconds(o.pid) - (cpu0 ?? cpuSeconds(o.pid));
    const rssMB = memoryMB(o.pid).rss;
    // Bounded: every request has the exporter's own deadline; a stuck one is cut by pool.destroy.
    await Promise.race([Promise.allSettled([...pending]), sleep(30_000, undefined, { ref: false })]);
    return { answers, failures, retried, cpuSeconds: cpu, cpuPerAnswerMs: (cpu * 1000) / answers, lagMs: lag, rssMB, failureKinds: kinds };
  } finally {
    await pool.destroy().catch(() => undefined);
  }
}
