// Issue 16: every remediation reaches people through the real Prometheus 2.42 and Alertmanager
// 0.25, with the shipped rules and routes, as its own notification, exactly once. The people's
// receivers are replaced by webhooks of this test that record every POST. Faults: a crash healed
// before any alert could be told (SIGKILL, respawned), a hang (the listing answers, no tokens),
// a crash whose respawn dies while loading (a failed restart, which also opens the crash-loop
// circuit), and then the restarts the open circuit refuses.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { parseConfig } from '../../src/cmd/config.ts';
import { alertmanagerSection, hostPort, startLoop, type RunningLoop } from '../../src/cmd/stack/loop.ts';
import { startExternal, writeAlertmanagerConfig, writePrometheusConfig } from '../../src/cmd/stack/prometheus.ts';
import { Teardown } from '../../src/lib/lifecycle.ts';
import { silentLogger } from '../../src/lib/log.ts';
import { freePort } from '../../src/lib/system.ts';
import { requireBinary } from '../helpers/require-binary.ts';
import { eventually } from '../helpers/stack-child.ts';

const prometheus = requireBinary('prometheus');
const alertmanager = requireBinary('prometheus-alertmanager');
const skip = (!prometheus || !alertmanager) && 'Prometheus or Alertmanager missing (see the warning above)';

const cli = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));
const interval = '2s';
// Long enough to kill a respawned server while it loads (vLLM refuses connections meanwhile).
const startupDelay = '2s';
/** The people route's wait for a restart alert (prometheus/alertmanager.yml), and the rules' shortest `for` at the stack's interval. */
const peopleGroupWaitMs = 10_000;
const scaledForMs = 10_000;

interface Alert { status: string; labels: Record<string, string>; annotations: Record<string, string>; startsAt: string; fingerprint: string }
interface Received { receiver: string; at: number; status: string; alerts: Alert[] }
interface Action { id: number; trigger: { alertname: string }; outcome: string; finished_at: string | undefined; time_to_healthy_seconds: number | undefined }
interface TargetView { pid: number | null; restarts: number; recent_restarts: number; circuit: { open: boolean } }

const teardown = new Teardown();
const received: Received[] = [];
let loop: RunningLoop;
let prometheusUrl = '';
let simUrl = '';

/** A webhook receiver for people: records each notification Alertmanager POSTs to /NAME. */
async function captureReceivers(): Promise<Server> {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d));
    req.on('end', () => {
      const payload = JSON.parse(body) as { receiver: string; status: string; alerts: Alert[] };
      received.push({ receiver: payload.receiver, at: Date.now(), status: payload.status, alerts: payload.alerts });
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

/** The remediation notices people got: each notification's LLMRemediationPerformed alerts. */
const notices = (receiver = 'people-chat') => received.filter((r) => r.receiver === receiver).flatMap((r) => r.alerts.filter((a) => a.labels.alertname === 'LLMRemediationPerformed').map((alert) => ({ at: r.at, alert })));

const target = async () => ((await (await fetch(`${loop.urls.remediator}/api/v1/targets`)).json()) as { targets: TargetView[] }).targets[0]!;
const actions = async () => ((await (await fetch(`${loop.urls.remediator}/api/v1/actions`)).json()) as { actions: Action[] }).actions;
const up = async () => /^llm_server_up\{target="qwen3",[^}]*\} 1$/m.test(await (await fetch(`${loop.urls.exporter}/metrics`)).text());

/** Waits for action #id to finish (and, when it succeeded, the exporter to see the server up). */
async function finished(id: number, withinMs: number): Promise<Action> {
  return eventually(`action ${id} finished`, withinMs, async () => {
    const action = (await actions()).find((a) => a.id === id);
    if (!action || action.outcome === 'running') return undefined;
    return action.outcome !== 'success' || (await up()) ? action : undefined;
  });
}

/** The server's new pid once the remediator has started one other than `old`. */
const newPid = (old: number, withinMs: number) =>
  eventually(`a server other than pid ${old}`, withinMs, async () => {
    const { pid } = await target();
    return pid !== null && pid !== old ? pid : undefined;
  });

before(async () => {
  if (skip) return;
  const dir = await mkdtemp(join(tmpdir(), 'qs-notify-e2e-'));
  teardown.add(() => rm(dir, { recursive: true, force: true }));
  const capture = await captureReceivers();
  teardown.add(() => new Promise<void>((resolve) => capture.close(() => resolve())));
  const hook = (name: string) => `http://127.0.0.1:${(capture.address() as AddressInfo).port}/${name}`;
  const tokenFile = join(dir, 'webhook-token');
  await writeFile(tokenFile, randomBytes(24).toString('hex'), { mode: 0o600 });
  const address = async () => ({ host: '127.0.0.1', port: await freePort('127.0.0.1') });
  const [sim, exporter, remediator, prom, am] = [await address(), await address(), await address(), await address(), await address()];
  simUrl = `http://${hostPort(sim)}`;
  const config = parseConfig({
    targets: [{
      name: 'qwen3',
      url: `${simUrl}/v1`,
      model: 'Qwen/Qwen3-0.6B',
      server: 'vllm',
      interval,
      timeout: interval,
      remediation: {
        action: 'process',
        command: [process.execPath, cli, 'sim', '--flavor=vllm', `--web.listen-address=${hostPort(sim)}`, '--model=Qwen/Qwen3-0.6B', `--startup-delay=${startupDelay}`, '--log.level=warn'],
        grace_period: '5s',
        cooldown: '20s',
        // The third restart opens the circuit: what comes after is refused, and told.
        circuit: { max_restarts: 3, window: '15m' },
      },
    }],
    remediator: { auth: { bearer_token_file: tokenFile }, alertmanager: alertmanagerSection(am, interval) },
  });
  try {
    // The remediator (which starts the simulator it owns) and the exporter, as `qwen-sentinel stack` runs them.
    loop = await startLoop({ config, tokenFile, dir, exporter, remediator, interval, level: 'error', logger: silentLogger, teardown, stdio: 'ignore' });
    // Prometheus and Alertmanager from the shipped files, as the stack writes them; the people's
    // receivers (empty as shipped) become this test's webhooks, send_resolved false as the
    // examples for chat receivers say.
    const wiring = { exporter: hostPort(exporter), remediator: hostPort(remediator), alertmanager: hostPort(am), tokenFile, interval };
    const promConfig = await writePrometheusConfig(dir, wiring);
    const amConfig = await writeAlertmanagerConfig(dir, wiring);
    const amYaml = parse(await readFile(amConfig, 'utf8')) as { receivers: Array<{ name: string; webhook_configs?: unknown[] }> };
    for (const name of ['people', 'people-chat']) {
      const receiver = amYaml.receivers.find((r) => r.name === name);
      assert.ok(receiver, `the shipped alertmanager.yml has a receiver ${name}`);
      assert.equal(receiver.webhook_configs, undefined, `${name} is empty as shipped`);
      receiver.webhook_configs = [{ url: hook(name), send_resolved: false }];
    }
    await writeFile(amConfig, stringify(amYaml));
    const amProcess = startExternal('alertmanager', alertmanager!, [`--config.file=${amConfig}`, `--storage.path=${join(dir, 'alertmanager-data')}`, `--web.listen-address=${hostPort(am)}`, '--cluster.listen-address='], dir, silentLogger);
    teardown.add(() => amProcess.stop());
    const promProcess = startExternal('prometheus', prometheus!, [`--config.file=${promConfig}`, `--storage.tsdb.path=${join(dir, 'prometheus-data')}`, `--web.listen-address=${hostPort(prom)}`], dir, silentLogger);
    teardown.add(() => promProcess.stop());
    await Promise.all([amProcess.ready(`http://${hostPort(am)}`), promProcess.ready(`http://${hostPort(prom)}`)]);
    prometheusUrl = `http://${hostPort(prom)}`;
  } catch (err) {
    await teardown.run();
    throw err;
  }
  await eventually('the simulator up', 30_000, async () => ((await up()) ? true : undefined));
  await eventually('Prometheus scraping the remediator', 30_000, async () => {
    const q = (await (await fetch(`${prometheusUrl}/api/v1/query?query=up{job="qwen-sentinel-remediator"}==1`)).json()) as { data: { result: unknown[] } };
    return q.data.result.length > 0 ? true : undefined;
  });
});

after(() => teardown.run());

test('every remediation (restarted, failed, refused by the circuit) reaches people once, within 60 s, with what, why, outcome and time to healthy', { skip, timeout: 240_000 }, async () => {
  assert.deepEqual(await actions(), [], 'no action before the faults');

  // 1. A crash, respawned at once: healed long before a restart alert could be told to anyone.
  const first = await target();
  const killedAt = Date.now();
  process.kill(first.pid!, 'SIGKILL');
  const a1 = await finished(1, 60_000);
  const healMs = Date.parse(a1.finished_at!) - killedAt;
  console.log(`# crash healed in ${(healMs / 1000).toFixed(1)} s`);
  assert.equal(a1.outcome, 'success');
  assert.ok(healMs < scaledForMs + peopleGroupWaitMs, `healed in ${healMs} ms: before its alert could have reached people`);

  // 2. A hang: the listing answers, no tokens. LLMServerHung -> Alertmanager -> restart.
  const hang = await fetch(`${simUrl}/sim/fault`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"fault":"hang-generation"}' });
  assert.equal(hang.status, 200);
  const a2 = await finished(2, 120_000);
  assert.equal(a2.outcome, 'success');
  assert.equal(a2.trigger.alertname, 'LLMServerHung');

  // 3. A crash whose respawn is killed while it loads: the restart fails. It is the third
  // restart in the window: the circuit opens, and the respawn after it is refused.
  const before3 = await target();
  process.kill(before3.pid!, 'SIGKILL');
  const loading = await newPid(before3.pid!, 30_000);
  process.kill(loading, 'SIGKILL');
  const a3 = await finished(3, 60_000);
  assert.equal(a3.outcome, 'failure');
  assert.equal((await target()).circuit.open, true);
  // The server stays down: LLMServerDown fires, reaches the remediator, and is refused too.

  const expected = [
    { trigger: 'ModelServerExited', outcome: 'success', id: '1' },
    { trigger: 'LLMServerHung', outcome: 'success', id: '2' },
    { trigger: 'ModelServerExited', outcome: 'failure', id: '3' },
    { trigger: 'ModelServerExited', outcome: 'refused' },
    { trigger: 'LLMServerDown', outcome: 'refused' },
  ];
  const key = (n: { trigger: string; outcome: string }) => `${n.outcome} ${n.trigger}`;
  await eventually(`${expected.length} remediation notices`, 90_000, async () => (notices().length >= expected.length ? true : undefined)).catch((err: Error) => {
    throw new Error(`${err.message}; got ${JSON.stringify(notices().map((n) => n.alert.labels))}`);
  });
  // Long enough for a duplicate to show: Prometheus evaluates every 2 s, Alertmanager's people-chat
  // route waits 5 s, and the remediator hears the refused alert again every few seconds.
  await sleep(20_000);

  const got = notices();
  assert.deepEqual(got.map((n) => key(n.alert.labels as { trigger: string; outcome: string })).sort(), expected.map(key).sort(), 'one notice per remediation, none twice');
  assert.equal(new Set(got.map((n) => n.alert.fingerprint)).size, got.length, 'each notice is its own alert');
  assert.deepEqual(notices('people'), [], 'notices go to the chat receiver, not the pager');
  const history = await actions();
  assert.equal(history.length, 3, 'three actions ran; the rest were refused');
  for (const { at, alert } of got) {
    const { labels, annotations } = alert;
    assert.equal(alert.status, 'firing');
    assert.equal(labels.target, 'qwen3');
    assert.equal(labels.severity, 'info');
    assert.equal(labels.action, 'process');
    assert.match(annotations.summary!, new RegExp(`qwen3 \\(${labels.trigger}\\)`), 'the summary names the target and the alert behind it');
    if (labels.outcome === 'refused') {
      // Its id is when it was refused.
      const refusedAt = Date.parse(labels.id!);
      console.log(`# refusal (${labels.trigger}) told ${((at - refusedAt) / 1000).toFixed(1)} s after it happened`);
      assert.ok(at - refusedAt >= 0 && at - refusedAt <= 60_000, `refusal told ${at - refusedAt} ms after it happened`);
      assert.match(annotations.description!, /crash-loop circuit is open/);
      continue;
    }
    const action = history.find((a) => String(a.id) === labels.id);
    assert.ok(action, `notice ${labels.id} is an action of GET /api/v1/actions`);
    assert.deepEqual({ trigger: labels.trigger, outcome: labels.outcome }, { trigger: action.trigger.alertname, outcome: action.outcome });
    const delay = at - Date.parse(action.finished_at!);
    console.log(`# action ${labels.id} (${labels.outcome}, ${labels.trigger}) told ${(delay / 1000).toFixed(1)} s after it finished`);
    assert.ok(delay >= 0 && delay <= 60_000, `action ${labels.id} told ${delay} ms after it finished`);
    if (labels.outcome === 'success') {
      // Prometheus' humanizeDuration: 4 significant digits, in seconds below a minute.
      const told = /answering again after ([\d.]+)s\b/.exec(annotations.description!);
      assert.ok(told, `time to healthy in: ${annotations.description}`);
      assert.ok(Math.abs(Number(told[1]) - action.time_to_healthy_seconds!) < 0.01, `${told[1]} s told, ${action.time_to_healthy_seconds} s measured`);
    } else {
      assert.match(annotations.description!, /outcome: failure: it did not answer again/);
    }
  }
  // The open circuit is a warning, never a page.
  const circuit = received.flatMap((r) => r.alerts).filter((a) => a.labels.alertname === 'LLMRemediationCircuitOpen');
  for (const a of circuit) assert.equal(a.labels.severity, 'warning');
});
