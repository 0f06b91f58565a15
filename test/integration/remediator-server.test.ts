import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ConfigError, parseConfig } from '../../src/cmd/config.ts';
import { silentLogger } from '../../src/lib/log.ts';
import { loadToken } from '../../src/remediator/token.ts';
import { startRemediator } from '../../src/remediator/server.ts';
import { freePort } from '../../src/lib/system.ts';
import { payload } from '../helpers/fakes.ts';
import { eventually, isAlive } from '../helpers/stack-child.ts';

const dir = await mkdtemp(join(tmpdir(), 'qs-remediator-'));
after(() => rm(dir, { recursive: true, force: true }));
const cli = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));
const token = 'a-webhook-token-of-some-length';

const withAuth = (auth: object | undefined) => parseConfig({ targets: [{ url: 'http://127.0.0.1:1/v1' }], remediator: auth ? { auth } : {} });

test('the token comes from a file (trimmed) or an env var; without one the remediator refuses to start', async () => {
  const file = join(dir, 'token');
  await writeFile(file, `${token}\n`);
  assert.equal(await loadToken(withAuth({ bearer_token_file: file })), token);
  assert.equal(await loadToken(withAuth({ bearer_token_env: 'QS_TOKEN' }), { QS_TOKEN: token }), token);
  const refused: Array<[object | undefined, RegExp, NodeJS.ProcessEnv?]> = [
    [undefined, /^remediator\.auth: required/],
    [{ bearer_token_env: 'QS_TOKEN' }, /^remediator\.auth\.bearer_token_env: environment variable QS_TOKEN is not set$/, {}],
    [{ bearer_token_file: join(dir, 'nope') }, /^remediator\.auth\.bearer_token_file: cannot read .*nope: ENOENT$/],
    [{ bearer_token_env: 'QS_TOKEN' }, /^remediator\.auth: the token must be at least 16 characters$/, { QS_TOKEN: 'short' }],
  ];
  for (const [auth, message, env] of refused) {
    await assert.rejects(loadToken(withAuth(auth), env ?? {}), (err: unknown) => err instanceof ConfigError && message.test(err.message));
  }
});

test('owns a real model server: starts it, restarts it on a webhook, stops it on close', { timeout: 60_000 }, async () => {
  const port = await freePort('127.0.0.1');
  const config = parseConfig({
    targets: [{
      name: 'qwen3',
      url: `http://127.0.0.1:${port}/v1`,
      remediation: { action: 'process', command: [process.execPath, cli, 'sim', `--web.listen-address=127.0.0.1:${port}`, '--log.level=error'], grace_period: '3s', cooldown: '1m', restart_on_exit: false },
    }],
  });
  const remediator = await startRemediator({ config, token, listen: { host: '127.0.0.1', port: 0 }, logger: silentLogger, stdio: 'ignore' });
  const targets = async () => ((await (await fetch(`${remediator.url}/api/v1/targets`)).json()) as { targets: Array<{ pid: number; restarts: number; state: string; last_action: { outcome: string } | null }> }).targets;
  let firstPid = 0;
  try {
    firstPid = (await targets())[0]!.pid;
    assert.ok(firstPid > 0);
    await eventually('the simulator to answer', 15_000, async () => ((await fetch(`http://127.0.0.1:${port}/health`)).ok ? true : undefined));
    await eventually('its start-up window to close', 15_000, async () => ((await targets())[0]!.state === 'idle' ? true : undefined));
    // A server that answers is `recovered` at the confirm stage: crash it, as in real life.
    process.kill(-firstPid, 'SIGKILL');
    await eventually('the exit to be seen', 5000, async () => ((await targets())[0]!.pid === null ? true : undefined));

    const send = (body: object, auth = token) => fetch(`${remediator.url}/webhook`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${auth}` }, body: JSON.stringify(body) });
    assert.equal((await send(payload({}), 'not-the-token-at-all')).status, 401);
    assert.equal((await targets())[0]!.restarts, 0);
    const alert = payload({});
    const res = await send(alert);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('etag'), null, 'no ETag: nothing revalidates, and hashing each answer costs CPU');
    assert.equal((await send(alert)).status, 200, 'a re-send is accepted (and ignored)');
    const after = await eventually('the restart', 20_000, async () => {
      const [t] = await targets();
      return t!.restarts === 1 && t!.state !== 'restarting' ? t : undefined;
    });
    assert.notEqual(after!.pid, firstPid);
    assert.equal(after!.last_action?.outcome, 'success');
    await eventually('the new simulator to answer', 15_000, async () => ((await fetch(`http://127.0.0.1:${port}/health`)).ok ? true : undefined));
    const scrape = await fetch(`${remediator.url}/metrics`);
    assert.equal(scrape.headers.get('etag'), null);
    const metrics = await scrape.text();
    assert.match(metrics, /^llm_remediation_actions_total\{target="qwen3",action="process",outcome="success"\} 1$/m);
    assert.match(metrics, /^llm_remediation_alerts_total\{decision="duplicate",source="webhook"\} 1$/m);
    assert.match(metrics, /^llm_remediation_time_to_healthy_seconds_count\{target="qwen3"\} 1$/m);
    assert.match(metrics, /^llm_remediation_managed_process_exits_total\{target="qwen3"\} 1$/m);
    assert.match(metrics, /^llm_remediation_managed_process_up\{target="qwen3"\} 1$/m);
    assert.match(metrics, /^llm_remediation_webhook_requests_total\{code="401"\} 1$/m);
    firstPid = after!.pid;
  } finally {
    await remediator.close();
  }
  assert.equal(isAlive(firstPid), false, 'close() stops the server it owns');
});
