// The whole loop on the real binaries: model server fails -> exporter metric -> Prometheus rule ->
// Alertmanager -> remediator webhook -> restart -> healthy, with exactly one restart per fault.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { dashboardQueries, dashboardQuery, isCount, promQuery, runDashboardQuery, type Run } from '../helpers/dashboard-queries.ts';
import { requireBinary } from '../helpers/require-binary.ts';
import { descendants, eventually, isAlive, startStack, type StackChild } from '../helpers/stack-child.ts';

const binaries = [requireBinary('prometheus'), requireBinary('prometheus-alertmanager')];
const skip = binaries.includes(undefined) && 'Prometheus or Alertmanager missing (see the warning above)';

// The simulator "loads" longer than the probe timeout after every restart (as vLLM does), so the
// test also proves a server that is still loading is not restarted a second time.
const probeInterval = '2s';
const startupDelay = '5s';

interface TargetView { pid: number | null; restarts: number; unexpected_exits: number; last_action: { at: string; alertname: string; outcome: string } | null }

let stack: StackChild;
let startedAt = 0;
const targetState = async (): Promise<TargetView> => {
  const body = (await (await fetch(`${stack.urls.remediator}/api/v1/targets`)).json()) as { targets: TargetView[] };
  return body.targets[0]!;
};
const serverUp = async (): Promise<boolean> => /^llm_server_up\{[^}]*\} 1$/m.test(await (await fetch(`${stack.urls.exporter}/metrics`)).text());
const simUrl = () => stack.urls['model server (simulator)']!.replace(/\/v1$/, '');

/**
 * Waits until the remediator finished restart #`restarts` (it records the action once the server
 * answers again, not when it starts it) and the exporter sees the server up again.
 */
async function healedAfter(restarts: number, withinMs: number): Promise<TargetView> {
  const since = Date.now();
  return eventually(`restart #${restarts} finished and llm_server_up 1`, withinMs, async () => {
    const state = await targetState();
    assert.ok(state.restarts <= restarts, `too many restarts: ${state.restarts}`);
    const finished = state.last_action !== null && Date.parse(state.last_action.at) >= since - 1000;
    return state.restarts === restarts && finished && (await serverUp()) ? state : undefined;
  });
}

/** Over a few more probe rounds, no further restart happens and the server stays (mostly) up. */
async function staysAt(restarts: number): Promise<void> {
  const samples: boolean[] = [];
  for (let i = 0; i < 10; i++) {
    await sleep(1000);
    assert.equal((await targetState()).restarts, restarts);
    samples.push(await serverUp());
  }
  // One slow probe on a loaded machine may fail a round; most rounds must be up.
  assert.ok(samples.filter(Boolean).length >= 7, `up in ${samples.filter(Boolean).length} of 10 samples`);
}

before(async () => {
  if (skip) return;
  const any = '127.0.0.1:0';
  startedAt = Date.now() / 1000;
  stack = await startStack([
    `--sim.listen-address=${any}`, `--exporter.listen-address=${any}`, `--remediator.listen-address=${any}`,
    `--prometheus.listen-address=${any}`, `--alertmanager.listen-address=${any}`,
    `--probe.interval=${probeInterval}`, `--sim.startup-delay=${startupDelay}`, '--cooldown=30s', '--log.level=warn',
  ]);
  for (const name of ['model server (simulator)', 'exporter', 'remediator', 'prometheus', 'alertmanager']) assert.ok(stack.urls[name], `${name} URL printed`);
  await eventually('the first healthy round', 30_000, async () => ((await serverUp()) ? true : undefined));
  await eventually('Prometheus and Alertmanager ready', 30_000, async () => {
    const ready = await Promise.all([fetch(`${stack.urls.prometheus}/-/ready`), fetch(`${stack.urls.alertmanager}/-/ready`)]);
    return ready.every((r) => r.ok) ? true : undefined;
  });
  await eventually('Prometheus scraping the exporter', 30_000, async () => {
    const q = await (await fetch(`${stack.urls.prometheus}/api/v1/query?query=llm_server_up`)).json() as { data: { result: unknown[] } };
    return q.data.result.length > 0 ? true : undefined;
  });
});

after(async () => {
  if (!stack) return;
  // The simulator, Prometheus and Alertmanager: all started by the stack, all must be gone after.
  const started = descendants(stack.child.pid!);
  const t0 = Date.now();
  const code = await stack.stop();
  console.log(`# stack stopped in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  if (code !== 0) process.stderr.write(stack.output());
  assert.equal(code, 0, 'the stack exits 0 on SIGTERM');
  const leftovers = started.filter(isAlive);
  // Ours to clean up if the stack failed to: they would hold this test's pipes open.
  for (const pid of leftovers) process.kill(pid, 'SIGKILL');
  assert.ok(started.length >= 3, `expected simulator, Prometheus and Alertmanager, found ${started.length} processes`);
  assert.deepEqual(leftovers, [], 'the stack stopped every process it started');
});

// The remediator owns the simulator, so its exit is known at once: it is respawned then, through
// the stages, without waiting for an alert (test/e2e/real-llama-server.test.ts takes the alert path).
test('a crashed server (SIGKILL) is respawned once, at once, and reported up again', { skip, timeout: 120_000 }, async () => {
  const before = await targetState();
  assert.equal(before.restarts, 0);
  const started = Date.now();
  process.kill(before.pid!, 'SIGKILL');
  const state = await healedAfter(1, 100_000);
  console.log(`# crash (SIGKILL): fault -> healthy in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  assert.notEqual(state.pid, before.pid);
  assert.deepEqual(state.last_action && { alertname: state.last_action.alertname, outcome: state.last_action.outcome }, { alertname: 'ModelServerExited', outcome: 'success' });
  assert.equal(state.unexpected_exits, 1);
  await staysAt(1);
});

test('a second crash soon after a healed one is respawned again, the backoff started over', { skip, timeout: 180_000 }, async () => {
  const before = await targetState();
  const started = Date.now();
  process.kill(before.pid!, 'SIGKILL');
  const state = await healedAfter(before.restarts + 1, 150_000);
  console.log(`# second crash (SIGKILL) soon after a healed one: fault -> healthy in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  assert.notEqual(state.pid, before.pid);
  assert.equal(state.last_action?.outcome, 'success');
  await staysAt(before.restarts + 1);
});

test('a hung server (listing answers 200, no tokens) is restarted once and reported up again', { skip, timeout: 180_000 }, async () => {
  const before = await targetState();
  const set = await fetch(`${simUrl()}/sim/fault`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"fault":"hang-generation"}' });
  assert.equal(set.status, 200);
  const started = Date.now();
  assert.equal((await fetch(`${simUrl()}/v1/models`)).status, 200, 'the listing still answers');
  const state = await healedAfter(before.restarts + 1, 160_000);
  console.log(`# hang (hang-generation): fault -> healthy in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  assert.notEqual(state.pid, before.pid);
  assert.equal(state.last_action?.alertname, 'LLMServerHung');
  // Whichever came first, the remediator read the real Alertmanager's active alerts and passed
  // them through the stages (the webhook may wait for group_wait or group_interval).
  const metrics = await (await fetch(`${stack.urls.remediator}/metrics`)).text();
  const reconciled = [...metrics.matchAll(/^llm_remediation_alerts_total\{decision="(\w+)",source="reconcile"\} (\d+)$/gm)].reduce((n, m) => n + Number(m[2]), 0);
  assert.ok(reconciled > 0, 'no alert read from Alertmanager reached the stages');
  assert.match(metrics, /^llm_remediation_reconcile_total\{outcome="success"\} [1-9]\d*$/m);
  await staysAt(before.restarts + 1);
});

// Last, when the run has left a crash, a hang, their alerts and restarts in Prometheus: the
// dashboard's every query (panels, annotations, variables) over the whole run, as Grafana would
// ask for it, must be valid and draw something; and what it draws must be what happened.
const scrapeSeconds = Number.parseInt(probeInterval, 10);
/** The run so far, as the dashboard's time range. */
const wholeRun = (end = Date.now() / 1000): Run => ({ end, rangeSeconds: end - startedAt, scrapeSeconds });
const values = (series: Array<{ values: Array<[number, number]> }>) => series.flatMap((s) => s.values.map(([, v]) => v));

test('every dashboard query is valid PromQL and has data from this run', { skip, timeout: 120_000 }, async () => {
  const run = wholeRun();
  const empty: string[] = [];
  const queries = dashboardQueries();
  assert.ok(queries.length >= 40, `only ${queries.length} queries found`);
  for (const q of queries) {
    // Instant ones too over the run, at every step: a table may be empty at its end (no alert firing).
    const { expr, series } = await runDashboardQuery(stack.urls.prometheus!, q, { ...run, asRange: true });
    if (!values(series).some(Number.isFinite)) empty.push(`${q.where}: ${expr}`);
  }
  assert.deepEqual(empty, [], 'queries without a single value over the run');
});

test('the dashboard tells the truth about this run: counts, availability, outage causes, probe durations, components', { skip, timeout: 120_000 }, async () => {
  const prometheus = stack.urls.prometheus!;
  const run = wholeRun();
  const state = await targetState();
  const ask = async (panel: string, ref = 'A', o: Partial<Run> = {}) => (await runDashboardQuery(prometheus, dashboardQuery(panel, ref), { ...run, ...o })).series;

  // Counts: whole numbers, and the events of the run, each once.
  for (const q of dashboardQueries().filter(isCount)) {
    const { expr, series } = await runDashboardQuery(prometheus, q, { ...run, asRange: true });
    for (const v of values(series)) assert.ok(Number.isInteger(v), `${q.where}: ${v} is not a whole number of events (${expr})`);
  }
  assert.deepEqual(values(await ask('Targets', 'D')), [state.restarts], 'Restarts in the range');
  const sumOf = (series: Array<{ metric: Record<string, string>; values: Array<[number, number]> }>, match: Record<string, string> = {}) =>
    values(series.filter((s) => Object.entries(match).every(([k, v]) => s.metric[k] === v))).reduce((a, b) => a + b, 0);
  assert.equal(sumOf(await ask('Remediation actions'), { outcome: 'success' }), state.restarts, 'the bars of Remediation actions, summed over the run');
  assert.equal(sumOf(await ask('Unexpected exits of the model server')), state.unexpected_exits, 'the bars of Unexpected exits, summed over the run');

  // Availability: below 1 after outages; the exporter was never down here, so it is the share of
  // llm_server_up samples at 1, within a step or two.
  const [availability] = values(await ask('Availability'));
  const [samplesUp] = values(await promQuery(prometheus, `avg(avg_over_time(llm_server_up[${Math.ceil(run.rangeSeconds)}s]))`, { time: run.end }));
  assert.ok(availability! > 0 && availability! < 1, `availability ${availability} after three outages`);
  assert.ok(Math.abs(availability! - samplesUp!) < 0.05, `availability ${availability}, samples up ${samplesUp}`);

  // The latest outage's cause, as the table showed it when each restart finished: the fault that
  // was injected, not the failures the restart itself caused afterwards.
  const actions = await promQuery(prometheus, 'llm_remediation_last_action_timestamp_seconds * on (target) group_left (alertname) llm_remediation_last_action_info > 0', { start: startedAt, end: run.end, step: scrapeSeconds });
  const finished = [...new Map(actions.flatMap((s) => s.values.map(([, at]): [number, string] => [at, s.metric.alertname!]))).entries()].sort(([a], [b]) => a - b);
  assert.deepEqual(finished.map(([, alert]) => alert), ['ModelServerExited', 'ModelServerExited', 'LLMServerHung'], 'the restarts of the run');
  const expected: Record<string, RegExp> = { ModelServerExited: /^connect_(refused|error)$/, LLMServerHung: /^(hung|no_tokens|timeout)$/ };
  let previous = startedAt;
  for (const [at, alert] of finished) {
    const [cause, ...more] = await ask('Targets', 'E', wholeRun(at));
    assert.equal(more.length, 0, 'one cause per target');
    const began = cause!.values[0]![1] / 1000;
    console.log(`# restart after ${alert}: the table said the outage began ${(at - began).toFixed(1)} s before it finished, cause ${cause!.metric.cause}`);
    assert.match(cause!.metric.reason!, expected[alert]!, `after ${alert}: cause ${cause!.metric.cause}`);
    assert.ok(began > previous && began <= at, `the outage began ${began}, between the previous restart ${previous} and this one ${at}`);
    previous = at;
  }

  // Probe duration: per probe, and every value one a run really took.
  // Every sample of the run (from before the range too: the first points look back a window).
  const raw = await promQuery(prometheus, `llm_probe_duration_seconds[${Math.ceil(run.rangeSeconds) + 60}s]`, { time: run.end });
  const runs = new Map(raw.map((r) => [r.metric.probe!, new Set(values([r]))]));
  const drawn = await ask('Probe duration');
  assert.deepEqual(drawn.map((s) => s.metric.probe).sort(), [...runs.keys()].sort(), 'one series per probe');
  for (const s of drawn) {
    for (const [t, v] of s.values) assert.ok(runs.get(s.metric.probe!)!.has(v), `Probe duration ${s.metric.probe} at ${t}: ${v} s is no run's duration`);
  }
  const slowest = await ask('Probe durations in the range', 'B');
  for (const s of slowest) assert.equal(s.values[0]![1], Math.max(...runs.get(s.metric.probe!)!), `slowest ${s.metric.probe}`);
  const shares = await Promise.all(['C', 'D', 'E'].map((ref) => ask('Probe durations in the range', ref)));
  for (const [i, within] of shares.entries()) {
    for (const s of within) {
      const share = s.values[0]![1];
      assert.ok(share >= 0 && share <= 1, `share ${share}`);
      const wider = shares[i + 1]?.find((x) => x.metric.probe === s.metric.probe);
      if (wider) assert.ok(share <= wider.values[0]![1], `${s.metric.probe}: more runs within ${i} than within the next, wider bound`);
    }
  }

  // Components up: UP under the shipped job names; NO SUCH JOB (-1), not DOWN (0), under another.
  assert.deepEqual(values([...(await ask('Components up', 'A')), ...(await ask('Components up', 'B'))]), [1, 1]);
  const renamed = await ask('Components up', 'A', { text: { exporter_job: 'my-llm-exporter' } });
  assert.deepEqual(renamed.map((s) => [s.metric.job, values([s])]), [['my-llm-exporter', [-1]]]);
});
