import assert from 'node:assert/strict';
import { test } from 'node:test';
import express from 'express';
import request from 'supertest';
import { silentLogger } from '../../src/lib/log.ts';
import { webhookRouter } from '../../src/remediator/webhook.ts';
import { payload, setupRemediator } from '../helpers/fakes.ts';

const token = 'test-token-0123456789abcdef';

async function app(maxBodyBytes = 4096) {
  const { remediator, action, metrics } = await setupRemediator();
  const server = express().use(webhookRouter({ settings: { token, maxBodyBytes }, remediator: () => remediator, metrics, logger: silentLogger }));
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
