// One round: a module's probes against one server, in the module's order, each under its own
// deadline, with their series committed to a store. The background scheduler, GET /probe and the
// `probe` command all run rounds through here.
import type { Module } from './module.ts';
import { servers } from '../servers/index.ts';
import { version } from '../lib/version.ts';
import { deadline as deadlineOf } from '../lib/deadline.ts';
import { ExporterError } from './errors.ts';
import { probes as probeTable, type ProbeName } from './probes/index.ts';
import type { AnyProbe, FailureReason, ProbeResult, RoundState } from './probes/types.ts';
import { counter, gauge, StagedRecorder, type SeriesStore } from './series.ts';

export const upGauge = gauge('llm_server_up', '1 when every probe of the last round succeeded, else 0; 0 as soon as a probe of the round under way fails.', ['model']);
export const targetInfo = gauge('llm_target_info', 'Always 1: the module that probes the target, its server type, and whether that type may accept connections and answer nothing while it loads (the rules wait longer for those).', ['module', 'server', 'silent_while_loading']);
export const successGauge = gauge('llm_probe_success', '1 when the last run of the probe succeeded, else 0.', ['probe']);
export const durationGauge = gauge('llm_probe_duration_seconds', 'Duration of the last run of the probe, failed runs included. With a scrape per run, *_over_time of it sees every run (quantile_over_time, a share under a bound).', ['probe']);
export const probesCounter = counter('llm_probes_total', 'Probes run.', ['probe']);
export const failuresCounter = counter('llm_probe_failures_total', 'Failed probes by reason; a series appears at the first failure of its reason (increase() misses that first one: count it with the reason gauge, or `or series * 1`).', ['probe', 'reason']);
export const failureReasonGauge = gauge('llm_probe_failure_reason', 'Why the last run of the probe failed: present (value 1) only for its reason, and only while that run is the last; absent after a success.', ['probe', 'reason']);
export const roundMetrics = [upGauge, targetInfo, successGauge, durationGauge, failureReasonGauge, probesCounter, failuresCounter];

/** Every series a probe's own metrics may create, for stores that declare their families up front. */
export const allMetrics = [...roundMetrics, ...new Set(Object.values(probeTable).flatMap((p: AnyProbe) => p.metrics))];

export interface ProbeReport {
  probe: ProbeName;
  success: boolean;
  reason?: FailureReason;
  message?: string;
  durationSeconds: number;
}

export interface RoundReport {
  target: string;
  url: string;
  module: string;
  server: string;
  model: string | undefined;
  /** Unix milliseconds. */
  startedAt: number;
  durationSeconds: number;
  up: boolean;
  probes: ProbeReport[];
  /** The debug log: every request, status, timing and reason. */
  log: string[];
  /**
   * Set when the round could not be run for a reason of the exporter's own (EMFILE, ...): the
   * error's code. Such a round says nothing of the server: its up is not recorded.
   */
  skipped?: string;
}

/** The server one round probes: a configured target, or the one a /probe request names. */
export interface RoundTarget {
  name: string;
  url: string;
  model?: string | undefined;
  /** Deadline of each probe. */
  timeout: number;
  /** Sent as `Authorization: Bearer`; never logged or exported. */
  apiKey?: string | undefined;
}

export interface RoundInput {
  target: RoundTarget;
  module: Module;
  store: SeriesStore;
  /** Aborts every probe: the exporter is stopping. */
  stop: AbortSignal;
  /** Monotonic milliseconds. */
  now: () => number;
  /** A model learnt by an earlier round, used when this one runs no models probe. */
  knownModel?: string | undefined;
  /** Monotonic time by which the whole round must end (a scrape's timeout), if any. */
  deadline?: number | undefined;
  /** A seam: the probes to run instead of the real ones. */
  probeTable?: Partial<Record<ProbeName, AnyProbe>>;
  /** Called when a probe fails, before the round ends: the server is not up, whatever comes next. */
  onProbeFailed?: (model: string | undefined) => void;
}

const maxLogLines = 200;
const maxLineChars = 500;

/**
 * A target's info series and its run counters at 0, so increase() sees the first run. Failure
 * series are not pre-initialised: one per reason a probe may give would be most of a target's
 * series, and none of them says anything while the probe succeeds.
 */
export function initSeries(store: SeriesStore, target: string, module: Module): void {
  store.set(target, targetInfo, 1, { module: module.name, server: module.server, silent_while_loading: String(servers[module.server].silentWhileLoading) });
  for (const probe of module.probes) store.inc(target, probesCounter, { probe }, 0);
}

export async function runRound(input: RoundInput): Promise<RoundReport> {
  const { target, module, store, stop, now } = input;
  // The probe table, copied only when a test swaps probes in (a copy per round is garbage).
  const table: Record<ProbeName, AnyProbe> = input.probeTable ? { ...probeTable, ...input.probeTable } : probeTable;
  const server = servers[module.server];
  const roundStarted = now();
  const startedAt = Date.now();
  const log: string[] = [];
  // Each line one flat string: join copies its pieces, where a template literal (here and in the
  // probes' own lines) leaves a tree of them, some 30 bytes a piece, which the history keeps for
  // every line of every round it holds: 2.4 KB a round instead of 1.1 (25 MB at 10,000 targets).
  const write = (line: string) => {
    if (log.length < maxLogLines) log.push(['+', (now() - roundStarted).toFixed(1).padStart(7), ' ms  ', line.length > maxLineChars ? line.slice(0, maxLineChars) : line].join(''));
  };
  write(`round of module ${module.name} (server ${server.name}) against ${target.url}`);
  let model = target.model ?? input.knownModel;
  const reports: ProbeReport[] = [];

  const round: RoundState = { failures: {} };
  let skipped: ExporterError | undefined;
  const headers = (probe: string) => ({
    'user-agent': `qwen-sentinel/${version}`,
    'x-qwen-sentinel-probe': probe,
    ...(target.apiKey === undefined ? {} : { authorization: `Bearer ${target.apiKey}` }),
  });

  // What every probe of the round is told of the server: one object for the round.
  const probeTarget = { url: target.url, server, model: target.model, maxResponseBytes: module.max_response_bytes };

  for (const name of module.probes) {
    const probe = table[name];
    const started = now();
    const cap = input.deadline ?? Infinity;
    let result: ProbeResult;
    const staged = new StagedRecorder();
    if (cap - started <= 0) {
      result = { success: false, reason: 'timeout', message: 'no time left in the scrape timeout' };
    } else {
      // The probe's deadline, which an Ollama model load may move (never past a scrape's timeout).
      let deadline = Math.min(started + target.timeout, cap);
      const timer = deadlineOf(stop, deadline - started);
      const setDeadline = (ms: number) => {
        deadline = Math.min(now() + ms, cap);
        timer.reset(deadline - now());
      };
      try {
        result = await probe.run({
          target: probeTarget,
          options: module.options[name],
          model,
          signal: timer.signal,
          deadline: () => deadline,
          extendDeadline: setDeadline,
          round,
          now,
          headers: headers(name),
          record: staged,
          log: (line) => write(`${name}: ${line}`),
        });
      } catch (err) {
        if (err instanceof ExporterError) skipped = err;
        result = { success: false, reason: 'bad_response', message: `probe error: ${(err as Error).message}` };
      } finally {
        timer.clear();
      }
    }
    if (stop.aborted) break;
    if (skipped) {
      // Out of file descriptors or ports: nothing is known of the server, so nothing is recorded.
      write(`${name}: not run, exporter error ${skipped.message}: the round is skipped`);
      break;
    }
    const seconds = (now() - started) / 1000;
    if (result.success && result.model !== undefined) model = result.model;
    if (!result.success) {
      round.failures[name] = result;
      input.onProbeFailed?.(model);
    }
    store.commit(target.name, name, result.success ? staged : undefined);
    const labels = { probe: name };
    store.set(target.name, successGauge, result.success ? 1 : 0, labels);
    store.set(target.name, durationGauge, seconds, labels);
    store.inc(target.name, probesCounter, labels);
    if (!result.success) store.inc(target.name, failuresCounter, { probe: name, reason: result.reason });
    store.only(target.name, failureReasonGauge, name, result.success ? undefined : { probe: name, reason: result.reason });
    write(`${name}: ${result.success ? 'success' : `FAILED ${result.reason}: ${result.message}`} in ${(seconds * 1000).toFixed(1)} ms`);
    reports.push(result.success ? { probe: name, success: true, durationSeconds: seconds } : { probe: name, success: false, reason: result.reason, message: result.message, durationSeconds: seconds });
  }
  const up = skipped === undefined && reports.length === module.probes.length && reports.every((r) => r.success);
  write(skipped ? 'round SKIPPED' : `round ${up ? 'up' : 'DOWN'}`);
  // Copies of the two arrays, exactly as long as they are: a pushed-to array keeps room for 16
  // more, which the history would hold for every round it keeps.
  const report: RoundReport = { target: target.name, url: target.url, module: module.name, server: server.name, model, startedAt, durationSeconds: (now() - roundStarted) / 1000, up, probes: reports.slice(), log: log.slice() };
  if (skipped) report.skipped = skipped.code;
  return report;
}

/** llm_server_up for a finished round; a model label that changed since the last round is removed. */
export function recordUp(store: SeriesStore, report: RoundReport, previousModel?: string): string {
  const model = report.model ?? previousModel ?? '';
  if (previousModel !== undefined && previousModel !== model) store.remove(report.target, upGauge, { model: previousModel });
  store.set(report.target, upGauge, report.up ? 1 : 0, { model });
  return model;
}
