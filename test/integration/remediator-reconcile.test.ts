// The reconciler reads Alertmanager's active alerts (GET /api/v2/alerts) from a fake Alertmanager
// on loopback: a valid answer reaches the stages as source="reconcile"; garbage, an answer that
// never comes and an answer too large are failures, each counted in
// llm_remediation_reconcile_total{outcome} and never acted on.
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, test } from 'node:test';
import { silentLogger } from '../../src/lib/log.ts';
import { realClock } from '../../src/remediator/clock.ts';
import { maxAnswerBytes, reconciler, startReconciler, type ReconcileOptions } from '../../src/remediator/reconcile.ts';
import { setupRemediator } from '../helpers/fakes.ts';

type Answer = (req: IncomingMessage, res: ServerResponse) => void;
const json =
  (body: unknown): Answer =>
  (_req, res) =>
    void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));

/** A fake Alertmanager: answers every request with whatever `answer` does now. */
async function fakeAlertmanager() {
  const seen: URL[] = [];
  const am: { seen: URL[]; url: string; answer: Answer } = { seen, url: '', answer: json([]) };
  const server = createServer((req, res) => {
    seen.push(new URL(req.url ?? '/', 'http://x'));
    res.on('error', () => {}); // the reader may hang up on purpose
    am.answer(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  am.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  after(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  );
  return am;
}

/** An alert as GET /api/v2/alerts lists it (Alertmanager 0.25+): endsAt is in the future while it fires. */
const apiAlert = (o: { state?: string; labels?: Record<string, string>; fingerprint?: string } = {}) => ({
  annotations: { summary: 'down' },
  endsAt: new Date(Date.now() + 4 * 60_000).toISOString(),
  fingerprint: o.fingerprint ?? 'a1b2c3d4e5f60718',
  receivers: [{ name: 'qwen-sentinel-remediator' }],
  startsAt: new Date(Date.now() - 30_000).toISOString(),
  status: { inhibitedBy: [], silencedBy: [], state: o.state ?? 'active' },
  updatedAt: new Date().toISOString(),
  generatorURL: 'http://127.0.0.1:19090/graph',
  labels: { alertname: 'LLMServerDown', target: 'qwen3', remediate: 'restart', ...o.labels },
});

async function setup(intervalMs = 60_000) {
  const am = await fakeAlertmanager();
  const s = await setupRemediator();
  const options: ReconcileOptions = { url: am.url, intervalMs, receiver: 'qwen-sentinel-remediator', remediator: () => s.remediator, metrics: s.metrics, logger: silentLogger, clock: realClock };
  const outcomes = async () => Object.fromEntries((await s.metrics.reconciles.get()).values.map((v) => [String(v.labels.outcome), v.value]));
  return { am, ...s, options, pass: reconciler(options), outcomes };
}

test('a valid answer: asks for active, unsilenced, uninhibited alerts of its receiver; the active ones reach the stages once', async () => {
  const { am, pass, remediator, action, metrics, outcomes } = await setup();
  am.answer = json([apiAlert(), apiAlert({ state: 'suppressed', fingerprint: 'ffff000000000001' }), apiAlert({ labels: { remediate: 'no' }, fingerprint: 'ffff000000000002' })]);
  assert.equal(await pass(), 'success');
  await remediator.idle();
  const asked = am.seen[0]!;
  assert.equal(asked.pathname, '/api/v2/alerts');
  assert.deepEqual(Object.fromEntries(asked.searchParams), { active: 'true', silenced: 'false', inhibited: 'false', unprocessed: 'false', receiver: '^qwen-sentinel-remediator$' });
  assert.equal(action.calls.length, 1);
  // Read again: the same alert instance is a duplicate, not a second restart.
  assert.equal(await pass(), 'success');
  await remediator.idle();
  assert.equal(action.calls.length, 1);
  const text = await metrics.registry.metrics();
  assert.match(text, /^llm_remediation_alerts_total\{decision="restart",source="reconcile"\} 1$/m);
  assert.match(text, /^llm_remediation_alerts_total\{decision="duplicate",source="reconcile"\} 1$/m);
  assert.match(text, /^llm_remediation_alerts_total\{decision="not_matching",source="reconcile"\} 2$/m);
  assert.deepEqual(await outcomes(), { success: 2, failure: 0 });
});

test('garbage is a failure, counted, and acts on nothing', async () => {
  const { am, pass, remediator, action, outcomes } = await setup();
  const answers: Array<[string, Answer]> = [
    ['not JSON', (_req, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end('<html>proxy error</html>')],
    ['truncated JSON', (_req, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify([apiAlert()]).slice(0, 50))],
    ['an object, not a list', json({ alerts: [apiAlert()] })],
    ['null', json(null)],
    ['labels that are not strings', json([{ ...apiAlert(), labels: { target: 1 } }])],
    ['an alert without a fingerprint', json([{ ...apiAlert(), fingerprint: undefined }])],
    ['no status', json([{ ...apiAlert(), status: 'active' }])],
    ['HTTP 500', (_req, res) => void res.writeHead(500).end('boom')],
    ['HTTP 401', (_req, res) => void res.writeHead(401).end()],
  ];
  for (const [what, answer] of answers) {
    am.answer = answer;
    assert.equal(await pass(), 'failure', what);
  }
  await remediator.idle();
  assert.equal(action.calls.length, 0);
  assert.deepEqual(await outcomes(), { success: 0, failure: answers.length });
  // And it recovers when Alertmanager does.
  am.answer = json([]);
  assert.equal(await pass(), 'success');
});

test('an answer that never comes, or stalls half-way, is a failure within the bound (min(interval, 10 s))', { timeout: 30_000 }, async () => {
  const { am, pass, outcomes } = await setup(300);
  am.answer = () => {}; // never answers
  assert.equal(await pass(), 'failure');
  am.answer = (_req, res) => void res.writeHead(200, { 'content-type': 'application/json' }).write('[{"labels": '); // and stops
  assert.equal(await pass(), 'failure');
  assert.deepEqual(await outcomes(), { success: 0, failure: 2 });
});

test('an answer over 16 MiB is a failure, announced or not: a chunked one is cut off while it streams', { timeout: 60_000 }, async () => {
  const { am, pass, outcomes } = await setup(20_000);
  // A valid list, made large by one label: read whole, it would be accepted.
  const big = JSON.stringify([apiAlert({ labels: { padding: 'x'.repeat(maxAnswerBytes) } })]);
  let sent = 0;
  am.answer = (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' }); // no Content-Length: chunked
    const mib = 1 << 20;
    const next = () => {
      while (sent < big.length && !res.destroyed) {
        const more = res.write(big.slice(sent, sent + mib));
        sent += mib;
        if (!more) return void res.once('drain', next);
      }
      res.end();
    };
    next();
  };
  assert.equal(await pass(), 'failure');
  am.answer = (_req, res) => void res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(maxAnswerBytes + 1) }).write('[');
  assert.equal(await pass(), 'failure');
  assert.deepEqual(await outcomes(), { success: 0, failure: 2 });
});

test('startReconciler reads at once, then every interval, and stops promptly', { timeout: 30_000 }, async () => {
  const { am, metrics, outcomes } = await setup();
  am.answer = json([]);
  const running = startReconciler({ url: am.url, intervalMs: 60_000, receiver: 'qwen-sentinel-remediator', remediator: () => { throw new Error('not called for an empty list'); }, metrics, logger: silentLogger, clock: realClock });
  for (let waited = 0; (await outcomes()).success !== 1; waited += 10) {
    assert.ok(waited < 20_000, 'no read within 20 s');
    await new Promise((r) => setTimeout(r, 10));
  }
  // Stopping does not wait out the 60 s interval.
  await running.stop();
  assert.equal(am.seen.length, 1);
});
