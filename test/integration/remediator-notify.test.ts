import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { stringify } from 'yaml';
import { ConfigError, parseConfig, readConfigFile } from '../../src/cmd/config.ts';
import { silentLogger } from '../../src/lib/log.ts';
import { ActionHistory } from '../../src/remediator/history.ts';
import { RemediatorMetrics } from '../../src/remediator/metrics.ts';
import { DingtalkNotifier, readDingtalk, signedUrl, type DingtalkSettings } from '../../src/remediator/notify/dingtalk.ts';
import { Remediator } from '../../src/remediator/remediator.ts';
import { startRemediator } from '../../src/remediator/server.ts';
import type { ManagedTarget, Trigger } from '../../src/remediator/stages.ts';
import { StateStore } from '../../src/remediator/state.ts';
import { loadToken } from '../../src/remediator/token.ts';
import { startSim } from '../../src/sim/server.ts';
import { FakeAction, FakeClock, FakeVerifier, payload } from '../helpers/fakes.ts';

const dir = await mkdtemp(join(tmpdir(), 'qs-notify-'));
const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
  await rm(dir, { recursive: true, force: true });
});

const accessToken = 'a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1';
const secret = 'SEC0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd';

interface Received {
  query: URLSearchParams;
  rawQuery: string;
  body: { msgtype: string; markdown: { title: string; text: string }; at?: { atMobiles: string[]; isAtAll: boolean } };
}

/**
 * A stand-in for DingTalk's robot endpoint: it checks the access token and, given a secret, the
 * signature (recomputed from its own copy of the secret and the timestamp received), and answers
 * as DingTalk does: HTTP 200 with errcode 0, or 310000 for a bad signature. `hang`: it never answers.
 */
async function standIn(o: { secret?: string; hang?: boolean } = {}) {
  const received: Received[] = [];
  const held: IncomingMessage[] = [];
  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const target = new URL(req.url!, 'http://stand-in');
    received.push({ query: target.searchParams, rawQuery: target.search, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Received['body'] });
    if (o.hang) return void held.push(req);
    const answer = (errcode: number, errmsg: string) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ errcode, errmsg }));
    if (req.method !== 'POST' || target.pathname !== '/robot/send') return answer(404, 'not found');
    if (target.searchParams.get('access_token') !== accessToken) return answer(300001, 'token is not exist');
    if (o.secret !== undefined) {
      const timestamp = target.searchParams.get('timestamp') ?? '';
      const sign = target.searchParams.get('sign') ?? '';
      if (!/^\d{13}$/.test(timestamp) || Math.abs(Date.now() - Number(timestamp)) > 3600_000) return answer(310000, 'sign not match, timestamp is invalid');
      const expected = createHmac('sha256', o.secret).update(`${timestamp}\n${o.secret}`).digest('base64');
      if (sign !== expected) return answer(310000, 'sign not match');
    }
    answer(0, 'ok');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/robot/send?access_token=${accessToken}`;
  const close = async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  };
  cleanups.push(close);
  return { url, received, close };
}

/** A remediator on the fakes (one target "qwen3", command action, fake clock) with a DingTalk notifier. */
async function setup(settings: DingtalkSettings) {
  const lines: string[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(line) });
  const clock = new FakeClock();
  const action = new FakeAction();
  const verifier = new FakeVerifier();
  const metrics = new RemediatorMetrics();
  const store = new StateStore({ dir: undefined, clock, logger: silentLogger });
  const history = new ActionHistory({ dir: undefined, logger: silentLogger });
  const notifier = new DingtalkNotifier({ settings, logger, metrics, clock });
  const target: ManagedTarget = { name: 'qwen3', action, owns: false, cooldownMs: 60_000, startupTimeoutMs: 30_000, confirm: true, circuit: { maxRestarts: 3, windowMs: 900_000 }, restartOnExit: false };
  metrics.addTarget('qwen3', 'command');
  const remediator = new Remediator({ targets: [target], match: { remediate: 'restart' }, staleAfterMs: 3_600_000, logger, metrics, clock, store, history, verifier, notify: (a) => notifier.notify(a) });
  await remediator.start();
  // The server answers the third check after the restart: healthy 2 s (of fake time) later.
  let checksAfter: number | undefined;
  verifier.answers = async () => {
    const ok = checksAfter !== undefined && ++checksAfter >= 3;
    return ok ? { ok, message: 'answers' } : { ok, message: 'models: connect_refused' };
  };
  const restart = action.restart.bind(action);
  action.restart = async (c) => {
    const outcome = await restart(c);
    checksAfter = 0;
    return outcome;
  };
  const counts = async () => {
    const out: Record<string, number> = {};
    for (const v of (await metrics.notifications.get()).values) out[`${v.labels.channel}/${v.labels.outcome}`] = v.value;
    return out;
  };
  /** One firing alert through the stages; resolves once the restart has finished (not the message). */
  const restartOnce = async () => {
    const triggers: Trigger[] = payload({}).alerts.map((a) => ({ source: 'webhook', ...a }));
    remediator.handle(triggers);
    await remediator.idle();
  };
  return { remediator, history, notifier, counts, restartOnce, logs: () => lines.join('') };
}

test('the signature matches an independent implementation of DingTalk\'s 加签 (the dingding crate\'s test vector)', () => {
  assert.equal(signedUrl('https://oapi.dingtalk.com/robot/send?access_token=t', 'secret', 1_700_000_000_000), 'https://oapi.dingtalk.com/robot/send?access_token=t&timestamp=1700000000000&sign=OuzzJR5%2BxZ4%2FEYwqtNt6sMYZQMTa%2FHEGvc9miJe7XzY%3D');
});

const settings = (url: string, s: Partial<DingtalkSettings> = {}): DingtalkSettings => ({ url, secret: undefined, timeoutMs: 5000, atMobiles: [], atAll: false, ...s });

test('a restart sends one signed markdown message: target, action, why, outcome and time to healthy', async () => {
  const dingtalk = await standIn({ secret });
  const s = await setup(settings(dingtalk.url, { secret }));
  await s.restartOnce();
  await s.notifier.drain();
  assert.equal(dingtalk.received.length, 1);
  const [{ body, query, rawQuery }] = dingtalk.received as [Received];
  assert.ok(query.has('timestamp') && query.has('sign'));
  // The sign is URL-encoded: a raw "+" of the Base64 would arrive as a space and not match.
  assert.match(rawQuery, /&sign=[A-Za-z0-9%]+$/);
  assert.equal(body.msgtype, 'markdown');
  assert.equal(body.markdown.title, 'qwen-sentinel: restarted qwen3 (command)');
  const text = body.markdown.text;
  for (const part of ['**target:** qwen3', '**action:** command', '**why:** alert LLMServerDown (source: webhook)', '**outcome:** success: restarted; answering after 2.0 s', '**time to healthy:** 2.0 s']) {
    assert.ok(text.includes(part), `${JSON.stringify(part)} in:\n${text}`);
  }
  assert.equal(body.at, undefined);
  assert.deepEqual(await s.counts(), { 'dingtalk/success': 1, 'dingtalk/failure': 0 });
  assert.equal(s.history.recent()[0]!.outcome, 'success');
});

test('a wrong secret: DingTalk rejects the signature, counted as a failure and logged without secrets; the restart still succeeded', async () => {
  const dingtalk = await standIn({ secret });
  const s = await setup(settings(dingtalk.url, { secret: 'SECwrong0123456789abcdef0123456789abcdef' }));
  await s.restartOnce();
  assert.equal(s.history.recent()[0]!.outcome, 'success');
  await s.notifier.drain();
  assert.equal(dingtalk.received.length, 1);
  assert.deepEqual(await s.counts(), { 'dingtalk/success': 0, 'dingtalk/failure': 1 });
  const failure = s.logs().split('\n').find((l) => l.includes('cannot report the remediation to DingTalk'));
  assert.ok(failure, s.logs());
  assert.match(failure, /"channel":"dingtalk"/);
  assert.match(failure, /errcode 310000: sign not match/);
  assert.equal(s.logs().includes(accessToken), false, 'the access token is never logged');
  assert.equal(s.logs().includes('SECwrong'), false, 'the secret is never logged');
});

test('a DingTalk that never answers: the restart finishes without waiting; the send times out and counts as a failure', async () => {
  const dingtalk = await standIn({ hang: true });
  const s = await setup(settings(dingtalk.url, { timeoutMs: 1000 }));
  await s.restartOnce();
  assert.equal(s.history.recent()[0]!.outcome, 'success');
  assert.equal(s.remediator.snapshot()[0]!.state, 'cooldown', 'the restart is over');
  assert.deepEqual(await s.counts(), { 'dingtalk/success': 0, 'dingtalk/failure': 0 }, 'the message is still on its way');
  await s.notifier.drain();
  assert.deepEqual(await s.counts(), { 'dingtalk/success': 0, 'dingtalk/failure': 1 });
  assert.match(s.logs(), /no answer within 1000 ms/);
});

test('unsigned (no secret): the URL gets no timestamp or sign; at_mobiles are named in the text', async () => {
  const dingtalk = await standIn();
  const s = await setup(settings(dingtalk.url, { atMobiles: ['13800000000'] }));
  await s.restartOnce();
  await s.notifier.drain();
  assert.equal(dingtalk.received.length, 1);
  const [{ query, body }] = dingtalk.received as [Received];
  assert.deepEqual([...query.keys()], ['access_token']);
  assert.deepEqual(body.at, { atMobiles: ['13800000000'], isAtAll: false });
  assert.match(body.markdown.text, /@13800000000$/);
  assert.deepEqual(await s.counts(), { 'dingtalk/success': 1, 'dingtalk/failure': 0 });
});

test('the URL and secret come from files or the environment; a URL that is not one is refused without quoting it', async () => {
  const urlFile = join(dir, 'url');
  await writeFile(urlFile, `https://oapi.dingtalk.com/robot/send?access_token=${accessToken}\n`);
  const config = (dingtalk: Record<string, unknown>) => parseConfig({ remediator: { notify: { dingtalk } } });
  assert.deepEqual(await readDingtalk(config({ url_file: urlFile, secret_env: 'DT_SECRET' }), { DT_SECRET: ` ${secret} ` }), {
    url: `https://oapi.dingtalk.com/robot/send?access_token=${accessToken}`,
    secret,
    timeoutMs: 5000,
    atMobiles: [],
    atAll: false,
  });
  assert.equal(await readDingtalk(parseConfig({})), undefined);
  await assert.rejects(readDingtalk(config({ url_env: 'DT_URL' }), { DT_URL: `oapi.dingtalk.com/robot/send?access_token=${accessToken}` }), (err: Error) => {
    assert.ok(err instanceof ConfigError);
    assert.equal(err.message, 'remediator.notify.dingtalk.url_env: not an http(s) URL such as https://oapi.dingtalk.com/robot/send?access_token=...');
    return true;
  });
  await assert.rejects(readDingtalk(config({ url_file: urlFile, secret_env: 'DT_SECRET' }), {}), /remediator\.notify\.dingtalk\.secret_env: environment variable DT_SECRET is not set/);
  await assert.rejects(readDingtalk(config({ url_file: join(dir, 'missing') })), /remediator\.notify\.dingtalk\.url_file: cannot read .*missing: ENOENT/);
});

test('the remediator from its config: a webhook-driven restart is reported; a reload with a rotated secret file takes effect', { timeout: 30_000 }, async () => {
  const sim = await startSim({ host: '127.0.0.1', port: 0, ttftMs: 5, tokensPerSecond: 500 });
  cleanups.push(() => sim.close());
  await sim.ready;
  const dingtalk = await standIn({ secret });
  const [file, tokenFile, urlFile, secretFile] = ['sentinel.yml', 'token', 'dingtalk-url', 'dingtalk-secret'].map((f) => join(dir, f)) as [string, string, string, string];
  const token = 'webhook-token-0123456789';
  await writeFile(tokenFile, token);
  await writeFile(urlFile, dingtalk.url);
  await writeFile(secretFile, secret);
  await writeFile(
    file,
    stringify({
      targets: [{ name: 'qwen3', url: `${sim.url}/v1`, server: 'vllm', remediation: { action: 'command', command: [process.execPath, '-e', 'process.exit(0)'], confirm: false, cooldown: '1ms' } }],
      remediator: { auth: { bearer_token_file: tokenFile }, notify: { dingtalk: { url_file: urlFile, secret_file: secretFile } } },
    }),
  );
  const { config, text } = await readConfigFile(file);
  const running = await startRemediator({ config, token: await loadToken(config), listen: { host: '127.0.0.1', port: 0 }, logger: silentLogger, stdio: 'ignore', configFile: { path: file, text, read: readConfigFile } });
  cleanups.push(() => running.close());
  const counter = async (outcome: string) => Number(new RegExp(`^llm_remediation_notifications_total\\{channel="dingtalk",outcome="${outcome}"\\} (\\d+)$`, 'm').exec(await (await fetch(`${running.url}/metrics`)).text())?.[1]);
  /** Alerts, waits for the restart, then (polling, with a generous deadline) for the message's outcome. */
  const alert = async (fingerprint: string, outcome: string, expected: number) => {
    const res = await fetch(`${running.url}/webhook`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify(payload({ fingerprint })) });
    assert.equal(res.status, 200);
    await running.remediator.idle();
    for (const end = Date.now() + 10_000; (await counter(outcome)) !== expected; await sleep(20)) if (Date.now() > end) assert.fail(`llm_remediation_notifications_total{outcome="${outcome}"} never reached ${expected}`);
  };
  assert.deepEqual([await counter('success'), await counter('failure')], [0, 0], 'pre-initialised');
  await alert('first', 'success', 1);
  assert.equal(dingtalk.received.length, 1);
  assert.match(dingtalk.received[0]!.body.markdown.text, /\*\*outcome:\*\* success: .*answering after/);
  assert.equal(running.remediator.recentActions()[0]!.outcome, 'success');

  // The secret file alone changes: the reload notices, and the next message is signed with it.
  await writeFile(secretFile, 'SECrotated-but-not-on-the-robot-0123456789');
  assert.equal(await running.reloader!.reload(), 'reloaded');
  await alert('second', 'failure', 1);
  assert.equal(await counter('success'), 1);
  assert.equal(running.remediator.recentActions()[0]!.outcome, 'success', 'a failed message never fails the restart');
});
