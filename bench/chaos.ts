// chaos: the whole loop at the stack's fast settings under a random (seeded) schedule of things
// that must NOT cause a restart (blips shorter than every alert's `for`, a frozen process, slow,
// saturated, paused and sleeping periods) and of failures that must (a crash, real hangs held
// until acted on). Counts false restarts and missed hangs; goals 0 and 0.
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describeRules, restartRules, type RestartRule } from './lib/alert-rules.ts';
import { firstModel, waitHealthy } from './lib/chat-check.ts';
import { getJson, getText, postJson, waitFor } from './lib/net.ts';
import { startStack, which, type RunningStack } from './lib/product.ts';
import { Random } from './lib/random.ts';
import { value } from './lib/stats.ts';
import type { BenchContext, Suite, SuiteResult } from './lib/types.ts';

const interval = 2;

type Warranted = 'crash' | 'hang-generation' | 'engine-dead';

interface EventRecord {
  kind: string;
  warranted: boolean;
  /** performance.now() at its start and end. */
  start: number;
  end: number;
  /** Date.now() at its start, to place Prometheus' samples. */
  wallStart: number;
  /** Warranted: when the restart came (ms after start), or undefined (missed). */
  restartAfterMs?: number | undefined;
  /** The alert that caused it, and how it reached the remediator. */
  cause?: string | undefined;
}

interface Restart {
  at: number;
  alertname: string | undefined;
  source: string | undefined;
  attributed: boolean;
}

/**
 * How long a warranted failure may take to be restarted: the alert's `for`, group_wait, evaluations,
 * margin. Upper bounds, written for the rules before issue 15; the faster rules since (every restart
 * alert's `for` 10 s at 2 s, read from Prometheus into the notes) only restart sooner inside them, so
 * they attribute a restart as before: the first within the window of a warranted failure in progress.
 */
const windowMs: Record<Warranted, number> = { crash: 60_000, 'hang-generation': 100_000, 'engine-dead': 110_000 };

/** Blips and freezes: a fault for 1-3 probe intervals, shorter than every restart alert's `for`. */
const isShort = (kind: string) => kind.startsWith('blip') || kind.startsWith('freeze');

interface TargetView { pid: number | null; restarts: number }

interface Firing {
  alert: string;
  /** Unix ms of its first and last firing sample. */
  from: number;
  to: number;
}

/**
 * Every stretch a restart alert was firing, from Prometheus' ALERTS series (1 s steps): a restart
 * alert may fire and be held by the remediator (its check before acting finds the server well
 * again), which no restart count shows.
 */
async function firings(prometheus: string, fromWall: number, toWall: number): Promise<Firing[] | undefined> {
  const params = new URLSearchParams({ query: 'ALERTS{remediate="restart",alertstate="firing"}', start: String(fromWall / 1000), end: String(toWall / 1000), step: '1' });
  const body = await getJson<{ data?: { result?: Array<{ metric: Record<string, string>; values: Array<[number, string]> }> } }>(`${prometheus}/api/v1/query_range?${params}`, 15_000);
  if (!body?.data?.result) return undefined;
  const out: Firing[] = [];
  for (const series of body.data.result) {
    const alert = series.metric.evidence ? `${series.metric.alertname} (evidence=${series.metric.evidence})` : series.metric.alertname ?? '?';
    let current: Firing | undefined;
    for (const [t] of series.values) {
      const ms = t * 1000;
      if (current && ms - current.to <= 1500) current.to = ms;
      else out.push((current = { alert, from: ms, to: ms }));
    }
  }
  return out.sort((a, b) => a.from - b.from);
}

export const chaos: Suite = {
  name: 'chaos',
  summary: 'random blips, slow/saturated/paused periods, freezes, crashes and real hangs on the stack: false restarts and missed hangs',
  estimate: { quick: 160, full: 720 },
  async run(ctx: BenchContext, out: SuiteResult) {
    if (!(await which('prometheus')) || !((await which('prometheus-alertmanager')) ?? (await which('alertmanager')))) {
      out.skipped = 'Prometheus or Alertmanager not on PATH (Debian/Ubuntu: sudo apt-get install prometheus prometheus-alertmanager)';
      return;
    }
    const quick = ctx.mode === 'quick';
    const durationMs = (quick ? 120 : 600) * 1000;
    const tailMs = (quick ? 20 : 40) * 1000;
    const longest = (quick ? 30 : 60) * 1000;
    // The crash-loop circuit allows 3 restarts per 15 minutes: at most 3 warranted failures.
    const warranted: Warranted[] = quick ? ['hang-generation'] : ['crash', 'hang-generation', 'engine-dead'];
    const rng = new Random(ctx.seed ^ 0x5eed);
    const plannedAt = warranted.map((_, i) => (quick ? 35_000 : durationMs * (0.12 + 0.3 * i)) + rng.between(0, 10_000));

    const stack: RunningStack = await startStack(ctx.procs, ctx.product, 'chaos-stack', [`--probe.interval=${interval}s`, '--sim.startup-delay=5s', '--cooldown=30s'], join(ctx.dir, 'chaos-stack.log'), ctx.signal);
    const events: EventRecord[] = [];
    const restarts: Restart[] = [];
    let rules: RestartRule[] = [];
    let runWall = Date.now();
    const stopMonitor = new AbortController();
    let monitor: Promise<void> | undefined;
    try {
      const base = `${stack.sim}/v1`;
      const prom = stack.urls.prometheus!;
      await waitFor('the first healthy round', 60_000, async () => (/^llm_server_up\{[^}]*\} 1$/m.test((await getText(`${stack.urls.exporter}/metrics`)) ?? '') ? true : undefined), ctx.signal);
      await waitFor('Prometheus scraping the exporter', 60_000, async () => ((await getJson<{ data: { result: unknown[] } }>(`${prom}/api/v1/query?query=llm_server_up`))?.data.result.length ? true : undefined), ctx.signal);
      rules = await restartRules(prom);
      const model = await firstModel(base);
      const targetView = async () => (await getJson<{ targets: TargetView[] }>(`${stack.urls.remediator}/api/v1/targets`))?.targets[0];
      let known = (await targetView())?.restarts ?? 0;
      let active: EventRecord | undefined;

      // Every restart, as the remediator counts them, polled each second.
      monitor = (async () => {
        while (!stopMonitor.signal.aborted) {
          const view = await targetView();
          if (view && view.restarts > known) {
            const actions = (await getJson<{ actions: Array<{ trigger?: { alertname?: string; source?: string } }> }>(`${stack.urls.remediator}/api/v1/actions`))?.actions ?? [];
            for (let i = known; i < view.restarts; i++) {
              const at = performance.now();
              const trigger = actions[view.restarts - 1 - i]?.trigger;
              const claim = active?.warranted && active.restartAfterMs === undefined && at - active.start <= windowMs[active.kind as Warranted];
              if (claim) Object.assign(active!, { restartAfterMs: at - active!.start, cause: `${trigger?.alertname ?? '?'} via ${trigger?.source ?? '?'}` });
              restarts.push({ at, alertname: trigger?.alertname, source: trigger?.source, attributed: Boolean(claim) });
              const what = claim ? `warranted (${active!.kind})` : `FALSE (during ${active?.kind ?? 'normal operation'}, ${active ? ((at - active.start) / 1000).toFixed(0) : '?'} s in)`;
              ctx.log(`restart #${i + 1}: ${what}, ${trigger?.alertname ?? '?'} via ${trigger?.source ?? '?'}`);
            }
            known = view.restarts;
          }
          await sleep(1000, undefined, { signal: stopMonitor.signal }).catch(() => undefined);
        }
      })();

      const simPid = async () => (await targetView())?.pid ?? undefined;
      const setFault = async (fault: string) => {
        const status = await postJson(`${stack.sim}/sim/fault`, { fault });
        if (status !== 200) ctx.log(`POST /sim/fault ${fault}: ${status ?? 'no answer'}`);
      };
      const healthy = async (capMs: number) => waitHealthy(base, { model, capMs, signal: ctx.signal });
      const t0 = performance.now();
      runWall = Date.now();
      const elapsed = () => performance.now() - t0;

      const benign = async (until: number) => {
        const kinds = ['blip', 'blip', 'freeze', 'slow', 'saturated', 'paused', 'asleep'];
        const kind = rng.pick(kinds);
        const room = until - elapsed();
        const record: EventRecord = { kind, warranted: false, start: performance.now(), end: 0, wallStart: Date.now() };
        if (kind === 'blip') {
          const fault = rng.pick(['hang-generation', 'engine-dead', 'hang', 'error', 'paused']);
          const ms = Math.min(room, rng.between(1, 3) * interval * 1000);
          record.kind = `blip ${fault} ${(ms / 1000).toFixed(1)} s`;
          active = record;
          await setFault(fault);
          await sleep(ms, undefined, { signal: ctx.signal });
          await setFault('none');
        } else if (kind === 'freeze') {
          const pid = await simPid();
          const ms = Math.min(room, rng.between(1, 3) * interval * 1000);
          record.kind = `freeze (SIGSTOP) ${(ms / 1000).toFixed(1)} s`;
          active = record;
          if (pid !== undefined) {
            process.kill(pid, 'SIGSTOP');
            try {
              await sleep(ms, undefined, { signal: ctx.signal });
            } finally {
              process.kill(pid, 'SIGCONT');
            }
          }
        } else {
          const ms = Math.min(room, rng.between(10_000, longest));
          record.kind = `${kind} ${(ms / 1000).toFixed(0)} s`;
          active = record;
          await setFault(kind);
          await sleep(ms, undefined, { signal: ctx.signal });
          await setFault('none');
        }
        record.end = performance.now();
        events.push(record);
      };

      const failure = async (kind: Warranted) => {
        const record: EventRecord = { kind, warranted: true, start: performance.now(), end: 0, wallStart: Date.now() };
        active = record;
        if (kind === 'crash') {
          const pid = await simPid();
          if (pid !== undefined) process.kill(pid, 'SIGKILL');
        } else await setFault(kind);
        ctx.log(`${kind} at ${(elapsed() / 1000).toFixed(0)} s: waiting for the restart`);
        await waitFor(`the restart after ${kind}`, windowMs[kind], async () => (record.restartAfterMs !== undefined ? true : undefined), ctx.signal, 250).catch(() => undefined);
        if (record.restartAfterMs === undefined && kind !== 'crash') await setFault('none');
        record.end = performance.now();
        events.push(record);
        // Back to normal before anything else happens.
        await healthy(60_000);
      };

      let next = 0;
      while (elapsed() < durationMs) {
        ctx.signal.throwIfAborted();
        // Each event starts from a healthy server.
        if ((await healthy(30_000)) === undefined) ctx.log(`the server did not answer before the next event (${(elapsed() / 1000).toFixed(0)} s)`);
        active = undefined;
        if (next < warranted.length && elapsed() >= plannedAt[next]!) {
          await failure(warranted[next++]!);
        } else {
          const until = next < warranted.length ? Math.min(durationMs, plannedAt[next]!) : durationMs;
          if (until - elapsed() < 2000) {
            await sleep(Math.max(0, until - elapsed()), undefined, { signal: ctx.signal });
            continue;
          }
          await benign(until);
        }
        active = undefined;
        await sleep(rng.between(3000, 8000), undefined, { signal: ctx.signal });
      }
      // Late consequences (an alert still pending from the last event) show up here.
      active = undefined;
      await sleep(tailMs, undefined, { signal: ctx.signal });
    } finally {
      stopMonitor.abort();
      await monitor;
      const fired = stack.urls.prometheus ? await firings(stack.urls.prometheus, runWall, Date.now()).catch(() => undefined) : undefined;
      await stack.stop();
      const falseRestarts = restarts.filter((r) => !r.attributed);
      const hangs = events.filter((e) => e.warranted && e.kind !== 'crash');
      const crashes = events.filter((e) => e.kind === 'crash');
      out.figures.push(
        { id: 'chaos.false_restarts', label: 'false restarts (no warranted failure in progress)', unit: 'count', samples: [value(falseRestarts.length)], goal: { op: '==', value: 0, on: 'max', text: '0' }, note: falseRestarts.map((r) => `${r.alertname ?? '?'} via ${r.source ?? '?'} at ${((r.at - (events[0]?.start ?? r.at)) / 1000).toFixed(0)} s`).join('; ') || undefined },
        { id: 'chaos.missed_hangs', label: `missed hangs (no restart within ${windowMs['hang-generation'] / 1000}-${windowMs['engine-dead'] / 1000} s)`, unit: 'count', samples: [value(hangs.filter((e) => e.restartAfterMs === undefined).length)], goal: { op: '==', value: 0, on: 'max', text: '0' }, note: `${hangs.length} real hang(s) held: ${hangs.map((e) => e.kind).join(', ')}` },
      );
      if (crashes.length) out.figures.push({ id: 'chaos.missed_crashes', label: 'crashes not restarted within 60 s', unit: 'count', samples: [value(crashes.filter((e) => e.restartAfterMs === undefined).length)] });
      const acted = events.filter((e) => e.restartAfterMs !== undefined);
      if (acted.length) out.figures.push({ id: 'chaos.failure_to_restart', label: 'warranted failures: failure -> restart begun', unit: 's', samples: acted.map((e) => value(e.restartAfterMs! / 1000)) });
      const benignEvents = events.filter((e) => !e.warranted);
      out.figures.push({ id: 'chaos.benign_events', label: 'events that must not restart (blips, freezes, slow, saturated, paused, asleep)', unit: 'count', samples: [value(benignEvents.length)] });
      if (fired) {
        // Each firing goes to the event that started last before it (its reason may outlast it).
        const after = (f: Firing) => events.filter((e) => e.wallStart <= f.from).at(-1);
        const held = fired.filter((f) => !after(f)?.warranted);
        out.figures.push({
          id: 'chaos.alerts_fired_benign',
          label: 'restart alerts firing after an event that must not restart (acted on or not)',
          unit: 'count',
          samples: [value(held.length)],
          note: held.map((f) => `${f.alert} for ${((f.to - f.from) / 1000 + 1).toFixed(0)} s from ${((f.from - runWall) / 1000).toFixed(0)} s, after ${after(f)?.kind ?? 'the start'}`).join('; ') || undefined,
        });
      }
      const shortest = rules.length ? Math.min(...rules.map((r) => r.forSeconds)) : undefined;
      const short = events.filter((e) => isShort(e.kind)).map((e) => (e.end - e.start) / 1000);
      const longestShort = Math.max(0, ...short);
      out.notes.push(
        `The restart alerts as Prometheus loaded them at ${interval} s (their \`for\`): ${rules.length ? describeRules(rules) : 'not read'}. ${short.length ? `The longest of ${short.length} blips and freezes lasted ${longestShort.toFixed(1)} s` : 'No blip or freeze in this run'}${shortest === undefined || !short.length ? '' : `, the shortest \`for\` is ${shortest} s${longestShort >= shortest ? ' (NOT shorter: such a blip may rightly fire)' : ''}`}; a failed probe's reason stays until the next probe succeeds, up to one more interval.`,
        `One \`qwen-sentinel stack\` at the fast settings (${interval} s probe/scrape/evaluation, start-up delay 5 s, cooldown 30 s) for ${durationMs / 1000} s plus ${tailMs / 1000} s of quiet; schedule seeded with ${ctx.seed}. Must not restart: blips (a fault for 1-3 probe intervals: hang-generation, engine-dead, hang, error, paused), freezes (SIGSTOP of the model server for 1-3 intervals), and slow, saturated, paused and asleep periods of 10-${longest / 1000} s (the server makes progress, or says why it does not). Must restart: ${warranted.join(', ')} (a hang held until the restart or its window ends; at most 3, the crash-loop circuit's limit per 15 minutes). Each event starts from a server that answers, 3-8 s after the previous one. A restart is warranted when it is the first within the window of a warranted failure in progress; any other is false. "Restarts by others" are the crash events: SIGKILL of the model server, then the remediator's own single restart (a second within the window would be false).`,
        `Events in order (seconds from the schedule's start): ${events.map((e) => `${((e.wallStart - runWall) / 1000).toFixed(0)} s ${e.kind}${e.warranted ? (e.restartAfterMs === undefined ? ' (MISSED)' : ` (restart after ${(e.restartAfterMs / 1000).toFixed(0)} s, ${e.cause})`) : ''}`).join('; ')}.`,
      );
    }
  },
};
