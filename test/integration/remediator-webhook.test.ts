import assert from 'node:assert/strict';
import { test } from 'node:test';
import express from 'express';
import request from 'supertest';
import { silentLogger } from '../../src/lib/log.ts';
import { Registry } from '../../src/lib/prom-client.ts';
import { createOpsApp, listen } from '../../src/lib/web.ts';
import { webhookHandler } from '../../src/remediator/webhook.ts';
import { payload, setupRemediator } from '../helpers/fakes.ts';

const token = 'test-token-0123456789abcdef';

async function app(maxBodyBytes = 4096) {
  const { remediator, action, metrics } = await setupRemediator();
  const handle = webhookHandler({ settings: { token, maxBodyBytes }, remediator: () => remediator, metrics, logger: silentLogger });
  const server = express().post('/webhook', (req, res) => handle(req, res));
  return { server, action, remediator, metrics };
}

const auth = { authorization: `Bearer ${token}` };

test('a valid Alertmanager payload with the token is accepted and restarts once', async () => {
  const { server, action, remediator } = await app();
  const res = await request(server).post('/webhook').set(auth).send(payload({}, { labels: { target: 'nope' } }));
  assert.equal(res.status, 200);
  assert.deepEqual(res.body, { status: 'accepted', decisions: [{ alertname: 'LLMServerDown', target: 'qwen3', decision: 'queued' }, { alertname: 'LLMServerDown', target: 'nope', decision: 'unknown_target' }] });
  await remediator.idle();
  assert.equal(action.calls.length, 1);
});

test('answers before the restart finishes, so Alertmanager does not time out and re-send', async () => {
  const { server, action, remediator } = await app();
  action.manual = true;
  const res = await request(server).post('/webhook').set(auth).send(payload({}));
  assert.equal(res.status, 200);
  while (action.calls.length === 0) await new Promise((r) => setImmediate(r));
  assert.equal(remediator.snapshot()[0]!.state, 'restarting');
  action.release();
  await remediator.idle();
});

test('unknown fields from newer Alertmanager releases are accepted', async () => {
  const { server } = await app();
  const res = await request(server).post('/webhook').set(auth).send({ ...payload({}), notification_reason: 'new', routeLabels: { a: 'b' } });
  assert.equal(res.status, 200);
});

// Every bad request: a 4xx (Alertmanager does not retry those) and nothing executed.
const rejected: Array<[string, (r: request.Test) => request.Test, number]> = [
  ['no token', (r) => r.send(payload({})), 401],
  ['a wrong token', (r) => r.set({ authorization: 'Bearer wrong-token-0123456789' }).send(payload({})), 401],
  ['basic auth instead of bearer', (r) => r.set({ authorization: `Basic ${Buffer.from(`x:${token}`).toString('base64')}` }).send(payload({})), 401],
  ['malformed JSON', (r) => r.set(auth).set('content-type', 'application/json').send('{"alerts": ['), 400],
  ['a body over the limit', (r) => r.set(auth).send({ ...payload({}), padding: 'x'.repeat(10_000) }), 413],
  ['not JSON', (r) => r.set(auth).set('content-type', 'text/plain').send('hello'), 415],
  ['a schema mismatch', (r) => r.set(auth).send({ version: '4', alerts: 'nope' }), 422],
  ['an old payload version', (r) => r.set(auth).send({ ...payload({}), version: '3' }), 422],
  ['an alert without a fingerprint', (r) => r.set(auth).send({ ...payload({}), alerts: [{ status: 'firing', labels: { target: 'qwen3', remediate: 'restart' }, startsAt: 'x' }] }), 422],
];

for (const [what, build, status] of rejected) {
  test(`${what} gets ${status} and executes nothing`, async () => {
    const { server, action, remediator, metrics } = await app();
    const res = await build(request(server).post('/webhook'));
    assert.equal(res.status, status);
    assert.equal(typeof res.body.error, 'string');
    await remediator.idle();
    assert.equal(action.calls.length, 0);
    assert.equal(remediator.snapshot()[0]!.restarts, 0);
    assert.match(await metrics.registry.metrics(), new RegExp(`llm_remediation_webhook_requests_total\\{code="${status}"\\} 1`));
  });
}

test('a refusal ends the connection (Connection: close)', async () => {
  const { server } = await app();
  // The client asks to keep the connection; a refusal ends it all the same.
  const refused = await request(server).post('/webhook').set('connection', 'keep-alive').send(payload({}));
  assert.equal(refused.status, 401);
  assert.equal(refused.headers.connection, 'close');
  const tooLarge = await request(server).post('/webhook').set(auth).set('connection', 'keep-alive').send({ ...payload({}), padding: 'x'.repeat(10_000) });
  assert.equal(tooLarge.status, 413);
  assert.equal(tooLarge.headers.connection, 'close');
});

// createOpsApp hands POST /webhook (with any query) to the plain handler before Express; another
// spelling (a trailing slash), and every request once a guard is set, goes through Express (and the
// guard) to the same handler.
test('served beside the ops routes: the same answers with or without Express in front', async () => {
  const { remediator, metrics } = await setupRemediator();
  const handle = webhookHandler({ settings: { token, maxBodyBytes: 4096 }, remediator: () => remediator, metrics, logger: silentLogger });
  const plain = [{ method: 'POST' as const, path: '/webhook', handle }];
  const guard: express.RequestHandler = (_req, res, next) => {
    res.setHeader('x-guarded', '1');
    next();
  };
  for (const guarded of [false, true]) {
    const server = await listen(createOpsApp({ registry: new Registry(), isReady: () => true, home: () => '', plain, guard: guarded ? guard : undefined }), { host: '127.0.0.1', port: 0 });
    try {
      const post = (path: string, headers: Record<string, string> = auth) => fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(payload({ status: 'resolved' })) });
      for (const path of ['/webhook', '/webhook?x=1', '/webhook/']) {
        const res = await post(path);
        const what = `${path}${guarded ? ' behind a guard' : ''}`;
        assert.equal(res.status, 200, what);
        assert.equal(res.headers.get('x-guarded'), guarded ? '1' : null, what);
        assert.equal(res.headers.get('content-type'), 'application/json; charset=utf-8', what);
        assert.deepEqual(await res.json(), { status: 'accepted', decisions: [{ alertname: 'LLMServerDown', target: 'qwen3', decision: 'resolved' }] }, what);
      }
      const refused = await post('/webhook', {});
      assert.equal(refused.status, 401);
      assert.equal(refused.headers.get('www-authenticate'), 'Bearer');
      assert.equal(refused.headers.get('connection'), 'close');
      await refused.arrayBuffer();
      const get = await fetch(`${server.url}/webhook`, { headers: auth });
      assert.equal(get.status, 404);
      await get.arrayBuffer();
    } finally {
      await server.close();
    }
  }
  assert.match(await metrics.registry.metrics(), /llm_remediation_webhook_requests_total\{code="200"\} 6/);
  assert.match(await metrics.registry.metrics(), /llm_remediation_webhook_requests_total\{code="401"\} 2/);
});
