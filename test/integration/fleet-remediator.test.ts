// A fleet's remediator acts only on its own host: `remediator.match` holds `host: NAME` beside
// `remediate: restart`, so an alert about the same target name on another host (a misrouted
// webhook, a shared receiver) is `not_matching` and nothing runs. The real remediator, its real
// webhook, and a `command` action that leaves a file behind when it runs.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { parseConfig } from '../../src/cmd/config.ts';
import { silentLogger } from '../../src/lib/log.ts';
import { freePort } from '../../src/lib/system.ts';
import { startRemediator } from '../../src/remediator/server.ts';
import { payload } from '../helpers/fakes.ts';
import { eventually } from '../helpers/stack-child.ts';

const dir = await mkdtemp(join(tmpdir(), 'qs-fleet-remediator-'));
after(() => rm(dir, { recursive: true, force: true }));
const token = 'a-fleet-webhook-token-0123456789';

test("the remediator of gpu-07 refuses gpu-08's alert for a target of the same name, and acts on its own", { timeout: 60_000 }, async () => {
  const marker = join(dir, 'restarted');
  // Nothing listens there: the confirm stage sees the server down, so a matching alert restarts.
  const url = `http://127.0.0.1:${await freePort('127.0.0.1')}/v1`;
  const config = parseConfig({
    targets: [{
      name: 'qwen3',
      url,
      remediation: { action: 'command', command: [process.execPath, '-e', "require('node:fs').appendFileSync(process.argv[1], 'ran\\n')", marker], cooldown: '1m', startup_timeout: '1s' },
    }],
    remediator: { match: { remediate: 'restart', host: 'gpu-07' } },
  });
  const running = await startRemediator({ config, token, listen: { host: '127.0.0.1', port: 0 }, logger: silentLogger, stdio: 'ignore' });
  try {
    const send = async (host: string | undefined, fingerprint: string) => {
      const labels: Record<string, string> = host === undefined ? {} : { host };
      const res = await fetch(`${running.url}/webhook`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify(payload({ labels, fingerprint })) });
      assert.equal(res.status, 200);
      return ((await res.json()) as { decisions: Array<{ target: string; decision: string }> }).decisions;
    };

    // Another host's alert, and one without a host label: refused, nothing runs.
    assert.deepEqual(await send('gpu-08', 'f0000000000000a8'), [{ alertname: 'LLMServerDown', target: 'qwen3', decision: 'not_matching' }]);
    assert.deepEqual(await send(undefined, 'f0000000000000a0'), [{ alertname: 'LLMServerDown', target: 'qwen3', decision: 'not_matching' }]);
    await running.remediator.idle();
    assert.equal(existsSync(marker), false, 'nothing executed for another host');
    const metrics = await (await fetch(`${running.url}/metrics`)).text();
    assert.match(metrics, /^llm_remediation_alerts_total\{decision="not_matching",source="webhook"\} 2$/m);
    assert.doesNotMatch(metrics, /^llm_remediation_actions_total\{[^}]*\} [1-9]/m);

    // Its own host's alert: the same target is restarted (the command runs), once.
    assert.deepEqual(await send('gpu-07', 'f0000000000000a7'), [{ alertname: 'LLMServerDown', target: 'qwen3', decision: 'queued' }]);
    await eventually('the restart command to run', 20_000, async () => (existsSync(marker) ? true : undefined));
    await running.remediator.idle();
    assert.equal(await readFile(marker, 'utf8'), 'ran\n');
  } finally {
    await running.close();
  }
});
