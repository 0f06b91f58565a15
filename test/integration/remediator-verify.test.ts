// The remediator's check (the confirm stage before acting, and the wait for a restarted server):
// the listing and a one-token generation against a real simulator. A hung server is told as soon
// as its own count of generated tokens stands still, not at the check's deadline.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { parseConfig } from '../../src/cmd/config.ts';
import { realClock } from '../../src/remediator/clock.ts';
import { checkStallMs, probeVerifier } from '../../src/remediator/verify.ts';
import { startSim, type RunningSim } from '../../src/sim/server.ts';

const sims: RunningSim[] = [];
after(async () => {
  await Promise.all(sims.map((s) => s.close()));
});

async function verifierFor() {
  const sim = await startSim({ host: '127.0.0.1', port: 0, ttftMs: 20, tokensPerSecond: 200 });
  sims.push(sim);
  const config = parseConfig({ targets: [{ name: 'qwen3', url: `${sim.url}/v1`, server: 'vllm' }] });
  const targets = new Map(config.targets.map((t) => [t.name, t]));
  return { sim, verifier: probeVerifier({ targets: () => targets, apiKey: () => undefined, clock: realClock }) };
}

test('the check: a healthy server answers; a hung one is no answer once its count stood still, long before the deadline', async () => {
  const { sim, verifier } = await verifierFor();
  assert.deepEqual(await verifier.answers('qwen3', 5000), { ok: true, message: 'answers' });
  sim.setFault('hang-generation');
  const deadlineMs = 20_000;
  const started = performance.now();
  const hung = await verifier.answers('qwen3', deadlineMs);
  const took = performance.now() - started;
  assert.equal(hung.ok, false);
  assert.match(hung.message, /^chat: hung: no token in 1\.\d s/);
  // Judged at the stall check (checkStallMs), not at the 20 s deadline: a wide band, not a timing test.
  assert.ok(took < deadlineMs / 2, `took ${took} ms`);
  assert.ok(took >= checkStallMs * 0.9, `took ${took} ms`);
  assert.deepEqual(await verifier.answers('nope', 1000), { ok: false, message: 'no such target' });
});
