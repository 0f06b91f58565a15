import assert from 'node:assert/strict';
import { test } from 'node:test';
import express from 'express';
import request from 'supertest';
import { silentLogger } from '../../src/log.ts';
import { RemediatorMetrics } from '../../src/remediator/metrics.ts';
import { Remediator } from '../../src/remediator/policy.ts';
import { webhookRouter } from '../../src/remediator/webhook.ts';
import { FakeAction, payload } from '../helpers/fakes.ts';

const token = 'test-token-0123456789abcdef';

function app(maxBodyBytes = 4096) {
  const action = new FakeAction();
  const metrics = new RemediatorMetrics([{ name: 'qwen3', action: 'process' }]);
  const remediator = new Remediator({ targets: [{ name: 'qwen3', action, cooldownMs: 60_000 }], match: { remediate: 'restart' }, logger: silentLogger, metrics });
  const server = express().use(webhookRouter({ settings: { token, maxBodyBytes }, remediator, metrics, logger: silentLogger }));
  return { server, action, remediator, metrics };
}

const auth = { authorization: `Bearer ${token}` };

test('a valid Alertmanager payload with the token is accepted and restarts once', async () => {
  const { server, action, remediator } = app();
  const res = await request(server).post('/webhook').set(auth).send(payload({}));
  assert.equal(res.status, 200);
  assert.deepEqual(res.body, { status: 'accepted', decisions: [{ alertname: 'LLMServerDown', target: 'qwen3', decision: 'restart' }] });
  await remediator.idle();
  assert.equal(action.calls.length, 1);
});

test('answers before the restart finishes, so Alertmanager does not time out and re-send', async () => {
  const { server, action, remediator } = app();
  action.manual = true;
  const res = await request(server).post('/webhook').set(auth).send(payload({}));
  assert.equal(res.status, 200);
  assert.equal(action.calls.length, 1);
  assert.equal(remediator.snapshot()[0]!.state, 'restarting');
  action.release();
  await remediator.idle();
});

test('unknown fields from newer Alertmanager releases are accepted', async () => {
  const { server } = app();
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
    const { server, action, remediator, metrics } = app();
    const res = await build(request(server).post('/webhook'));
    assert.equal(res.status, status);
    assert.equal(typeof res.body.error, 'string');
    await remediator.idle();
    assert.equal(action.calls.length, 0);
    assert.equal(remediator.snapshot()[0]!.restarts, 0);
    assert.match(await metrics.registry.metrics(), new RegExp(`llm_remediation_webhook_requests_total\\{code="${status}"\\} 1`));
  });
}
