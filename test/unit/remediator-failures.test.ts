// The remediator's own failures (issue 16), each reproduced on the clock seam: a reload removing a
// target mid-restart, a stage that throws, a failed restart of a target it does not own, a SIGKILL
// between a restart and its verification, an alert dated in the future.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { pino } from 'pino';
import { ActionHistory } from '../../src/remediator/history.ts';
import { RemediatorMetrics } from '../../src/remediator/metrics.ts';
import { Remediator } from '../../src/remediator/remediator.ts';
import type { ManagedTarget, Trigger } from '../../src/remediator/stages.ts';
import { StateStore } from '../../src/remediator/state.ts';
import { decisionCounts, FakeAction, FakeClock, FakeVerifier, payload, setupRemediator } from '../helpers/fakes.ts';

const iso = (unix: number) => new Date(unix).toISOString();
const tick = () => new Promise((r) => setImmediate(r));

/** Unhandled rejections while fn runs (each one would end the real process with exit code 1). */
async function unhandledDuring(fn: () => Promise<void>): Promise<unknown[]> {
  const seen: unknown[] = [];
  const listener = (reason: unknown) => void seen.push(reason);
  process.on('unhandledRejection', listener);
  try {
    await fn();
    for (let i = 0; i < 5; i++) await tick();
  } finally {
    process.off('unhandledRejection', listener);
  }
  return seen;
}

/** A remediator over one FakeAction target whose log lines are kept. */
async function logged(o: Partial<ManagedTarget> = {}) {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  const clock = new FakeClock();
  const action = new FakeAction();
  const verifier = new FakeVerifier();
  const metrics = new RemediatorMetrics();
  const store = new StateStore({ dir: undefined, clock, logger });
  const history = new ActionHistory({ dir: undefined, logger });
  const target: ManagedTarget = { name: 'qwen3', action, owns: false, cooldownMs: 60_000, startupTimeoutMs: 30_000, confirm: false, circuit: { maxRestarts: 3, windowMs: 900_000 }, restartOnExit: false, ...o };
  metrics.addTarget('qwen3', 'command');
  const remediator = new Remediator({ targets: [target], match: { remediate: 'restart' }, staleAfterMs: 3_600_000, logger, metrics, clock, store, history, verifier });
  await remediator.start();
  const triggers = (p: ReturnType<typeof payload>): Trigger[] => p.alerts.map((a) => ({ source: 'webhook', status: a.status, labels: a.labels, fingerprint: a.fingerprint, startsAt: a.startsAt, endsAt: a.endsAt }));
  return { remediator, action, verifier, clock, metrics, history, lines, triggers };
}

test('a reload removing a target while its restart is being verified: no crash, the action ends `interrupted`, nothing is written for the gone target', async () => {
  const s = await setupRemediator({ confirm: false, startupTimeoutMs: 30_000 });
  s.action.restart = async () => ({ ok: true, message: 'restarted' });
  // The check after the restart is in flight when the reload comes; it answers afterwards.
  let checking!: () => void;
  const inFlight = new Promise<void>((r) => (checking = r));
  let answer!: () => void;
  const answered = new Promise<void>((r) => (answer = r));
  s.verifier.answers = async () => {
    checking();
    await answered;
    return { ok: true, message: 'answers' };
  };
  const rejections = await unhandledDuring(async () => {
    s.remediator.handle([{ source: 'webhook', status: 'firing', labels: { alertname: 'LLMServerDown', target: 'qwen3', remediate: 'restart' }, fingerprint: 'f', startsAt: iso(s.clock.wall()) }]);
    await inFlight;
    const reload = s.remediator.reconfigure([], { remediate: 'restart' }, 3_600_000);
    await tick();
    answer();
    await reload;
    await s.remediator.idle();
  });
  assert.deepEqual(rejections.map(String), [], 'nothing rejected unhandled (the process would exit 1)');
  const [entry] = s.history.recent();
  assert.equal(entry!.outcome, 'interrupted', 'not left `running`');
  assert.match(entry!.message, /removed by a reload/);
  assert.deepEqual(s.remediator.snapshot(), []);
  assert.equal(s.store.get('qwen3'), undefined, 'the gone target\'s record is forgotten once its work is over');
});

test('a stage that throws: the trigger is decided `error`, counted and logged, never lost', async () => {
  const s = await logged();
  s.action.starting = async () => {
    throw new Error('systemctl exploded');
  };
  const rejections = await unhandledDuring(async () => {
    s.remediator.handle(s.triggers(payload({})));
    await s.remediator.idle();
  });
  assert.deepEqual(rejections, []);
  assert.deepEqual(await decisionCounts(s.metrics), { error: 1 });
  const line = s.lines.find((l) => l.decision === 'error');
  assert.ok(line, JSON.stringify(s.lines));
  assert.equal(line.level, 50, 'logged as an error');
  assert.equal(line.target, 'qwen3');
  assert.match(String(line.err), /systemctl exploded/);
  // The next alert is decided as usual once the stage works again.
  s.action.starting = async () => undefined;
  s.remediator.handle(s.triggers(payload({ fingerprint: 'b' })));
  await s.remediator.idle();
  assert.deepEqual(await decisionCounts(s.metrics), { error: 1, restart: 1 });
});

test('over 20 alerts in one payload whose stages throw: no unhandled rejection, the summary counts them as `error`', async () => {
  const s = await logged();
  s.action.starting = async () => {
    throw new Error('docker socket gone');
  };
  const alerts = Array.from({ length: 25 }, (_, i) => payload({ fingerprint: `f${i}` }).alerts[0]!);
  const rejections = await unhandledDuring(async () => {
    s.remediator.handle(s.triggers({ ...payload({}), alerts }));
    await s.remediator.idle();
  });
  assert.deepEqual(rejections.map(String), []);
  assert.deepEqual(await decisionCounts(s.metrics), { error: 25 });
  const summary = s.lines.find((l) => l.msg === 'alerts received (summary)');
  assert.deepEqual(summary?.decisions, { error: 25 });
  assert.match(String(summary?.err), /docker socket gone/, 'the summary names the error');
});

test('a check that throws after the action ran is a failed remediation: recorded, counted, the target free again', async () => {
  const s = await logged();
  s.verifier.answers = async () => {
    throw new Error('EMFILE: too many open files');
  };
  const rejections = await unhandledDuring(async () => {
    s.remediator.handle(s.triggers(payload({})));
    await s.remediator.idle();
  });
  assert.deepEqual(rejections.map(String), []);
  const [entry] = s.history.recent();
  assert.equal(entry!.outcome, 'failure', 'not left `running`');
  assert.match(entry!.message, /EMFILE/);
  assert.equal(s.remediator.snapshot()[0]!.state === 'restarting', false, 'no restart left in progress forever');
  assert.equal((await s.metrics.actions.get()).values.find((v) => v.labels.outcome === 'failure')?.value, 1, 'LLMRemediationFailed sees it');
});

test('a failed restart of a target the remediator does not own opens no start-up window: the next alert after the cooldown restarts', async () => {
  const s = await setupRemediator({ confirm: false, cooldownMs: 1000, startupTimeoutMs: 300_000 });
  s.action.outcome = { ok: false, message: 'exit code 1' };
  assert.deepEqual(await s.decide(payload({ fingerprint: 'a' })), ['restart']);
  assert.equal(s.remediator.snapshot()[0]!.last_action?.outcome, 'failure');
  assert.equal(s.remediator.snapshot()[0]!.started_at, null, 'nothing was started');
  s.clock.advance(2000);
  assert.deepEqual(await s.decide(payload({ fingerprint: 'b', startsAt: iso(s.clock.wall() - 1000) })), ['restart'], 'not `starting`: nothing starts');
});

test('a SIGKILL between a restart and its verification does not erase the restart: it is on disk before the action runs, and the circuit opens', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'qs-intent-'));
  try {
    for (let run = 1; run <= 3; run++) {
      // A remediator that is "killed" while it verifies: its check never returns and it never
      // writes again, so what is on disk is what a SIGKILL would leave.
      const s = await setupRemediator({ confirm: false, cooldownMs: 0, startupTimeoutMs: 300_000 }, dir);
      assert.equal(s.remediator.snapshot()[0]!.recent_restarts, run - 1, `run ${run} reads the restarts of the killed runs`);
      let struck!: () => void;
      const killed = new Promise<void>((r) => (struck = r));
      s.action.restart = async () => ({ ok: true, message: 'restarted' });
      s.verifier.answers = () => {
        struck();
        return new Promise(() => {});
      };
      s.remediator.handle([{ source: 'webhook', status: 'firing', labels: { alertname: 'LLMServerDown', target: 'qwen3', remediate: 'restart' }, fingerprint: `f${run}`, startsAt: iso(s.clock.wall()) }]);
      await killed;
      await s.store.flush();
      const file = JSON.parse(await readFile(join(dir, 'targets', 'qwen3.json'), 'utf8')) as { restarts: number; restart_times: number[]; in_progress?: unknown };
      assert.equal(file.restarts, run, 'the restart is recorded before it is verified');
      assert.equal(file.restart_times.length, run);
      assert.ok(file.in_progress);
    }
    const last = await setupRemediator({ confirm: false, cooldownMs: 0 }, dir);
    assert.equal(last.remediator.snapshot()[0]!.state, 'circuit_open');
    assert.deepEqual(await last.decide(payload({ fingerprint: 'f4', startsAt: iso(last.clock.wall()) })), ['circuit_open']);
    assert.equal(last.action.calls.length, 0);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('an alert that starts more than a small skew in the future is `invalid`, with the reason in the log; nothing is used up', async () => {
  const s = await logged();
  s.remediator.handle(s.triggers(payload({ startsAt: iso(s.clock.wall() + 24 * 3600_000) })));
  await s.remediator.idle();
  assert.deepEqual(await decisionCounts(s.metrics), { invalid: 1 });
  assert.equal(s.action.calls.length, 0);
  const line = s.lines.find((l) => l.decision === 'invalid');
  assert.match(String(line?.reason), /startsAt is 86400 s in the future/);
  // From Alertmanager's API too, and a future end does not matter.
  s.remediator.handle([{ ...s.triggers(payload({ startsAt: iso(s.clock.wall() + 3600_000) }))[0]!, source: 'reconcile' }]);
  await s.remediator.idle();
  assert.deepEqual(await decisionCounts(s.metrics), { invalid: 2 });
  // A few seconds ahead (clocks a little apart) is fine.
  s.remediator.handle(s.triggers(payload({ startsAt: iso(s.clock.wall() + 20_000) })));
  await s.remediator.idle();
  assert.deepEqual(await decisionCounts(s.metrics), { invalid: 2, restart: 1 });
});
