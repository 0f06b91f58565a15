// 401 and 403 from a model server: both `unauthorized` (the rules and dashboards read that reason),
// each with a message that says what was seen: a key wanted or refused, or a path forbidden.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, test } from 'node:test';
import { modelsProbe } from '../../src/probing/probes/models.ts';
import type { ProbeResult } from '../../src/probing/probes/types.ts';
import { StagedRecorder } from '../../src/probing/series.ts';
import { servers } from '../../src/servers/index.ts';

// Answers the status in the path's first segment: /401/v1/models -> 401.
const server = createServer((req, res) => {
  res.writeHead(Number(req.url!.split('/')[1]), { 'content-type': 'application/json' }).end('{"error":"no"}');
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
after(() => server.close());
const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

async function probe(status: number, headers: Record<string, string>): Promise<ProbeResult> {
  return modelsProbe.run({
    target: { url: `${origin}/${status}/v1`, server: servers.vllm, model: undefined, maxResponseBytes: 1 << 20 },
    options: {},
    model: undefined,
    signal: AbortSignal.timeout(5000),
    deadline: () => performance.now() + 5000,
    extendDeadline: () => {},
    round: { failures: {} },
    now: () => performance.now(),
    headers,
    record: new StagedRecorder(),
    log: () => {},
  });
}
const key = { authorization: 'Bearer sk-test' };

test('401: the server wants a key (none sent), or refused the one sent', async () => {
  const none = await probe(401, {});
  assert.equal(none.success ? 'ok' : none.reason, 'unauthorized');
  assert.match(none.success ? '' : none.message, /^HTTP 401: the server wants an API key and none was sent \(set api_key_file or api_key_env\): \{"error":"no"\}$/);
  const sent = await probe(401, key);
  assert.equal(sent.success ? 'ok' : sent.reason, 'unauthorized');
  assert.match(sent.success ? '' : sent.message, /^HTTP 401: the server refused the API key sent: /);
});

test('403: forbidden, not "refuses the key": with a key, the key is known but the path not allowed', async () => {
  const sent = await probe(403, key);
  assert.equal(sent.success ? 'ok' : sent.reason, 'unauthorized');
  assert.match(sent.success ? '' : sent.message, /^HTTP 403 forbidden: the API key is a credential the server knows, but this path is not allowed/);
  const none = await probe(403, {});
  assert.equal(none.success ? 'ok' : none.reason, 'unauthorized');
  assert.match(none.success ? '' : none.message, /^HTTP 403 forbidden: no API key was sent/);
});
