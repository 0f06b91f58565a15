// The whole loop on the real binaries: model server fails -> exporter metric -> Prometheus rule ->
// Alertmanager -> remediator webhook -> restart -> healthy, with exactly one restart per fault.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { dashboardQueries, stepFor, substitute } from '../helpers/dashboard-queries.ts';
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
// ask for it, must be valid and draw something.
test('every dashboard query is valid PromQL and has data from this run', { skip, timeout: 120_000 }, async () => {
  const end = Date.now() / 1000;
  const rangeSeconds = end - startedAt;
  const scrapeSeconds = Number.parseInt(probeInterval, 10);
  const empty: string[] = [];
  const queries = dashboardQueries();
  assert.ok(queries.length >= 40, `only ${queries.length} queries found`);
  for (const q of queries) {
    const stepSeconds = stepFor(q, rangeSeconds, scrapeSeconds);
    const expr = substitute(q.expr, { stepSeconds, rangeSeconds, scrapeSeconds });
    // Steps counted back from the end, so the last point is now even when the run is shorter than a step.
    const start = end - Math.floor(rangeSeconds / stepSeconds) * stepSeconds;
    const params = new URLSearchParams({ query: expr, start: String(start), end: String(end), step: String(stepSeconds) });
    const answer = (await (await fetch(`${stack.urls.prometheus}/api/v1/query_range?${params}`)).json()) as { status: string; error?: string; data?: { result: Array<{ values: Array<[number, string]> }> } };
    assert.equal(answer.status, 'success', `${q.where}: ${answer.error} in ${expr}`);
    const drawn = answer.data!.result.some((series) => series.values.some(([, v]) => Number.isFinite(Number(v))));
    if (!drawn) empty.push(`${q.where}: ${expr}`);
  }
  assert.deepEqual(empty, [], 'queries without a single value over the run');
});
