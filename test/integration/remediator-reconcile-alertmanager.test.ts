// The reconciler against the real Alertmanager (0.25+), not a fake: alerts posted to its API
// (POST /api/v2/alerts) and routed to the remediator's receiver are read back by the remediator
// (GET /api/v2/alerts) and acted on once, with no notification sent at all (the receiver has no
// integration); a silenced alert and a resolved one are not acted on, until the silence expires
// or the alert fires again.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { stringify } from 'yaml';
import { parseConfig } from '../../src/cmd/config.ts';
import { startExternal } from '../../src/cmd/stack/prometheus.ts';
import { Teardown } from '../../src/lib/lifecycle.ts';
import { silentLogger } from '../../src/lib/log.ts';
import { freePort } from '../../src/lib/system.ts';
import { activeAlerts } from '../../src/remediator/reconcile.ts';
import { startRemediator } from '../../src/remediator/server.ts';
import { requireBinary } from '../helpers/require-binary.ts';
import { eventually } from '../helpers/stack-child.ts';

const alertmanagerBin = requireBinary('prometheus-alertmanager');

const teardown = new Teardown();
after(() => teardown.run());

interface ApiAlert { fingerprint: string; startsAt: string; labels: Record<string, string>; status: { state: string; silencedBy: string[] } }
interface HistoryEntry { target: string; action: string; trigger: { source: string; alertname: string; fingerprint: string; starts_at: string }; outcome: string; message: string }

test('real Alertmanager: a firing alert is acted on once from its API; a silenced and a resolved one are not', { skip: !alertmanagerBin && 'prometheus-alertmanager missing', timeout: 180_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'qs-reconcile-am-'));
  teardown.add(() => rm(dir, { recursive: true, force: true }));
  const ranFile = join(dir, 'ran');
  await writeFile(ranFile, '');
  // Nothing listens there: the confirm stage finds the server not answering, and after the
  // action the remediator gives up waiting for it after startup_timeout (outcome failure).
  const deadPort = await freePort('127.0.0.1');
  const amPort = await freePort('127.0.0.1');
  const amUrl = `http://127.0.0.1:${amPort}`;
  const names = ['down', 'silenced', 'resolved'] as const;
  const config = parseConfig({
    targets: names.map((name) => ({
      name,
      url: `http://127.0.0.1:${deadPort}/v1`,
      remediation: {
        action: 'command',
        // Records that it ran, and for what (the alert reaches it only through these variables).
        command: ['/bin/sh', '-c', 'printf "%s %s %s\\n" "$QWEN_SENTINEL_TARGET" "$QWEN_SENTINEL_ALERTNAME" "$QWEN_SENTINEL_FINGERPRINT" >> "$RAN_FILE"'],
        env: { RAN_FILE: ranFile },
        timeout: '30s',
        startup_timeout: '1s',
        cooldown: '10m',
      },
    })),
    remediator: { alertmanager: { url: amUrl, interval: '500ms' } },
  });
  const { receiver } = config.remediator.alertmanager!;
  const match = config.remediator.match;

  // Alertmanager's own config: what the remediator matches goes to the receiver it reads; that
  // receiver has no integration, so nothing is ever sent to the remediator's webhook.
  const amConfig = join(dir, 'alertmanager.yml');
  await writeFile(amConfig, stringify({
    route: {
      receiver: 'people',
      group_by: ['alertname', 'target'],
      routes: [{ receiver, matchers: Object.entries(match).map(([k, v]) => `${k}=${JSON.stringify(v)}`) }],
    },
    receivers: [{ name: 'people' }, { name: receiver }],
  }));
  const alertmanager = startExternal('alertmanager', alertmanagerBin!, [`--config.file=${amConfig}`, `--storage.path=${join(dir, 'alertmanager-data')}`, `--web.listen-address=127.0.0.1:${amPort}`, '--cluster.listen-address='], dir, silentLogger);
  teardown.add(() => alertmanager.stop());
  await alertmanager.ready(amUrl, 60_000);

  const api = async (method: string, path: string, body?: unknown): Promise<unknown> => {
    const res = await fetch(`${amUrl}/api/v2${path}`, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(10_000) });
    const text = await res.text();
    assert.equal(res.status, 200, `${method} ${path}: HTTP ${res.status} ${text}`);
    return text === '' ? undefined : JSON.parse(text);
  };
  const labelsOf = (target: string) => ({ alertname: 'LLMServerDown', target, ...match });
  const minuteAgo = new Date(Date.now() - 60_000).toISOString();
  await api('POST', '/alerts', names.map((target) => ({ labels: labelsOf(target), startsAt: minuteAgo, annotations: { summary: `${target} is down` } })));
  // Resolved: the same alert again, with an end in the past.
  await api('POST', '/alerts', [{ labels: labelsOf('resolved'), startsAt: minuteAgo, endsAt: new Date(Date.now() - 1000).toISOString() }]);
  const farFuture = new Date(Date.now() + 3_600_000).toISOString();
  const { silenceID } = (await api('POST', '/silences', { matchers: [{ name: 'target', value: 'silenced', isRegex: false, isEqual: true }], startsAt: new Date().toISOString(), endsAt: farFuture, createdBy: 'qwen-sentinel tests', comment: 'must not be acted on' })) as { silenceID: string };

  // Alertmanager's view before the remediator starts: one active, one silenced, the resolved one gone.
  const all = (await api('GET', '/alerts')) as ApiAlert[];
  const byTarget = new Map(all.map((a) => [a.labels.target!, a]));
  assert.deepEqual([...byTarget.keys()].sort(), ['down', 'silenced'], JSON.stringify(all));
  assert.equal(byTarget.get('down')!.status.state, 'active');
  assert.deepEqual(byTarget.get('silenced')!.status, { ...byTarget.get('silenced')!.status, state: 'suppressed', silencedBy: [silenceID] });
  const downFingerprint = byTarget.get('down')!.fingerprint;
  const silencedFingerprint = byTarget.get('silenced')!.fingerprint;
  // And the very read the reconciler makes returns just the active one.
  const read = await activeAlerts({ url: amUrl, receiver }, AbortSignal.timeout(10_000));
  assert.deepEqual(read.map((t) => [t.labels.target, t.fingerprint, t.source, t.status]), [['down', downFingerprint, 'reconcile', 'firing']]);

  const remediator = await startRemediator({ config, token: randomBytes(24).toString('hex'), listen: { host: '127.0.0.1', port: 0 }, logger: silentLogger, stdio: 'ignore' });
  teardown.add(() => remediator.close());

  const ran = async () => (await readFile(ranFile, 'utf8')).split('\n').filter(Boolean).sort();
  const history = async () => ((await (await fetch(`${remediator.url}/api/v1/actions`)).json()) as { actions: HistoryEntry[] }).actions;
  const metrics = async () => (await fetch(`${remediator.url}/metrics`)).text();
  const sample = (text: string, series: string) => {
    const line = text.split('\n').find((l) => l.startsWith(`${series} `));
    assert.ok(line, `no series ${series}`);
    return Number(line.slice(series.length + 1));
  };
  const reads = async () => sample(await metrics(), 'llm_remediation_reconcile_total{outcome="success"}');
  /** Waits for `n` more successful reads of Alertmanager: each of them could have acted. */
  const morePasses = async (n: number) => {
    const from = await reads();
    await eventually(`${n} more successful reads of Alertmanager`, 60_000, async () => ((await reads()) >= from + n ? true : undefined));
  };
  /** Waits until the actions of these targets have run and finished; fails at once on any other action. */
  const actedOn = async (targets: string[]) =>
    eventually(`actions for ${targets.join(', ')}`, 60_000, async () => {
      const entries = await history();
      for (const e of entries) assert.ok(targets.includes(e.target), `acted on ${e.target}: ${JSON.stringify(e)}`);
      return targets.every((t) => entries.some((e) => e.target === t && e.outcome !== 'running')) ? entries : undefined;
    });

  // Phase 1: only the active alert is acted on, once, however many reads see it again.
  await actedOn(['down']);
  await morePasses(4);
  assert.deepEqual(await ran(), [`down LLMServerDown ${downFingerprint}`]);
  const [entry, ...others] = await history();
  assert.deepEqual(others, []);
  assert.deepEqual({ ...entry!.trigger, starts_at: undefined }, { source: 'reconcile', alertname: 'LLMServerDown', fingerprint: downFingerprint, starts_at: undefined });
  assert.equal(Date.parse(entry!.trigger.starts_at), Date.parse(minuteAgo));
  assert.equal(entry!.action, 'command');
  // The command ran fine; the server (nothing listens) did not answer within startup_timeout.
  assert.match(entry!.message, /^exit 0; not answering 1 s after the action/);
  let text = await metrics();
  assert.equal(sample(text, 'llm_remediation_alerts_total{decision="restart",source="reconcile"}'), 1);
  assert.ok(sample(text, 'llm_remediation_alerts_total{decision="duplicate",source="reconcile"}') >= 3, 'later reads saw the alert again');
  assert.equal(sample(text, 'llm_remediation_actions_total{target="down",action="command",outcome="failure"}'), 1);
  // No webhook: nothing arrived there, and no decision came from it.
  assert.deepEqual(text.split('\n').filter((l) => /^llm_remediation_webhook_requests_total\{/.test(l) && !l.endsWith(' 0')), []);
  assert.deepEqual(text.split('\n').filter((l) => /^llm_remediation_alerts_total\{.*source="webhook"/.test(l) && !l.endsWith(' 0')), []);
  const restarts = async () => Object.fromEntries(((await (await fetch(`${remediator.url}/api/v1/targets`)).json()) as { targets: Array<{ name: string; restarts: number }> }).targets.map((t) => [t.name, t.restarts]));
  assert.deepEqual(await restarts(), { down: 1, silenced: 0, resolved: 0 });

  // Phase 2, the other side: what kept those two from being acted on was the silence and the
  // resolution. The silence expires, and the resolved alert fires again (a new instance).
  await api('DELETE', `/silence/${silenceID}`);
  await api('POST', '/alerts', [{ labels: labelsOf('resolved'), startsAt: new Date().toISOString() }]);
  const firing = ((await api('GET', '/alerts')) as ApiAlert[]).find((a) => a.labels.target === 'resolved');
  assert.ok(firing, 'the resolved alert fires again');
  await actedOn(['down', 'silenced', 'resolved']);
  await morePasses(4);
  assert.deepEqual(await ran(), [`down LLMServerDown ${downFingerprint}`, `resolved LLMServerDown ${firing.fingerprint}`, `silenced LLMServerDown ${silencedFingerprint}`]);
  const entries = await history();
  assert.deepEqual(entries.map((e) => [e.target, e.trigger.source]).sort(), [['down', 'reconcile'], ['resolved', 'reconcile'], ['silenced', 'reconcile']]);
  // The second instance of the resolved alert, not the first one (which ended before any read).
  assert.equal(Date.parse(entries.find((e) => e.target === 'resolved')!.trigger.starts_at), Date.parse(firing.startsAt));
  text = await metrics();
  assert.equal(sample(text, 'llm_remediation_alerts_total{decision="restart",source="reconcile"}'), 3);
  assert.deepEqual(text.split('\n').filter((l) => /^llm_remediation_webhook_requests_total\{/.test(l) && !l.endsWith(' 0')), []);
  assert.deepEqual(await restarts(), { down: 1, silenced: 1, resolved: 1 });
  await teardown.run();
});
