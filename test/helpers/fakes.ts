import type { Action, ActionOutcome, RestartContext, StartingState } from '../../src/remediator/actions/types.ts';
import type { WebhookPayload } from '../../src/remediator/alert-schema.ts';
import type { Clock } from '../../src/remediator/clock.ts';
import { ActionHistory } from '../../src/remediator/history.ts';
import { RemediatorMetrics } from '../../src/remediator/metrics.ts';
import { Remediator } from '../../src/remediator/remediator.ts';
import type { ManagedTarget, Trigger } from '../../src/remediator/stages.ts';
import { StateStore } from '../../src/remediator/state.ts';
import type { Verifier } from '../../src/remediator/verify.ts';
import { silentLogger } from '../../src/lib/log.ts';

/** An action that records its calls; restart resolves when the test says so (or at once). */
export class FakeAction implements Action {
  readonly kind = 'command';
  calls: RestartContext[] = [];
  outcome: ActionOutcome = { ok: true, message: 'restarted' };
  /** What starting() answers (a systemd unit or container seen starting). */
  seen: StartingState | undefined;
  #release: Array<() => void> = [];
  manual = false;

  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  kill(): void {}
  pid(): number {
    return 4242;
  }
  async starting() {
    return this.seen;
  }
  async restart(context: RestartContext): Promise<ActionOutcome> {
    this.calls.push(context);
    if (this.manual) await new Promise<void>((resolve) => this.#release.push(resolve));
    return this.outcome;
  }
  /** Lets every pending restart finish. */
  release(): void {
    for (const resolve of this.#release.splice(0)) resolve();
  }
}

/** A clock that moves only when told; sleeping moves it (nothing waits in real time). */
export class FakeClock implements Clock {
  mono = 1_000_000;
  unix = Date.now();
  now(): number {
    return this.mono;
  }
  wall(): number {
    return this.unix;
  }
  advance(ms: number): void {
    this.mono += ms;
    this.unix += ms;
  }
  async sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return;
    this.advance(ms);
    await new Promise((r) => setImmediate(r));
  }
}

/** Answers what the test says: the server answers now, or not. */
export class FakeVerifier implements Verifier {
  answering = false;
  checks = 0;
  async answers() {
    this.checks += 1;
    return this.answering ? { ok: true, message: 'answers' } : { ok: false, message: 'models: connect_refused' };
  }
}

export interface RemediatorSetup {
  remediator: Remediator;
  action: FakeAction;
  clock: FakeClock;
  verifier: FakeVerifier;
  metrics: RemediatorMetrics;
  store: StateStore;
  history: ActionHistory;
  decide: (p: ReturnType<typeof payload>) => Promise<string[]>;
}

/** A remediator with one target "qwen3" whose action is a FakeAction, on a fake clock, state in memory. */
export async function setupRemediator(o: Partial<Omit<ManagedTarget, 'name' | 'action'>> = {}, storage?: string): Promise<RemediatorSetup> {
  const clock = new FakeClock();
  const action = new FakeAction();
  const verifier = new FakeVerifier();
  const metrics = new RemediatorMetrics();
  const store = new StateStore({ dir: storage, clock, logger: silentLogger });
  const history = new ActionHistory({ dir: storage, logger: silentLogger });
  const target: ManagedTarget = { name: 'qwen3', action, owns: false, cooldownMs: 60_000, startupTimeoutMs: 30_000, confirm: true, circuit: { maxRestarts: 3, windowMs: 900_000 }, restartOnExit: false, ...o };
  metrics.addTarget('qwen3', 'command');
  const remediator = new Remediator({ targets: [target], match: { remediate: 'restart' }, staleAfterMs: 3_600_000, logger: silentLogger, metrics, clock, store, history, verifier });
  await remediator.start();
  // A restart succeeds once the server answers: the fake answers as soon as the action ran.
  const restart = action.restart.bind(action);
  action.restart = async (c) => {
    const r = await restart(c);
    verifier.answering = true;
    return r;
  };
  /** Hands a payload over and returns the decisions it got (sorted), once every stage has run. */
  const decide = async (p: ReturnType<typeof payload>) => {
    const triggers: Trigger[] = p.alerts.map((a) => ({ source: 'webhook', status: a.status, labels: a.labels, fingerprint: a.fingerprint, startsAt: a.startsAt, endsAt: a.endsAt }));
    const before = await decisionCounts(metrics);
    remediator.handle(triggers);
    await remediator.idle();
    const after = await decisionCounts(metrics);
    return Object.entries(after).flatMap(([d, n]) => Array<string>(n - (before[d] ?? 0)).fill(d)).sort();
  };
  return { remediator, action, clock, verifier, metrics, store, history, decide };
}

/** The decisions counted so far, as decision -> count (sources summed). */
export async function decisionCounts(metrics: RemediatorMetrics): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const v of (await metrics.alerts.get()).values) if (v.value > 0) out[String(v.labels.decision)] = (out[String(v.labels.decision)] ?? 0) + v.value;
  return out;
}

export interface AlertInput {
  status?: 'firing' | 'resolved';
  labels?: Record<string, string>;
  fingerprint?: string;
  startsAt?: string;
  endsAt?: string;
}

/** An Alertmanager v4 payload shaped as 0.25 sends it. */
export function payload(...alerts: AlertInput[]): WebhookPayload & Record<string, unknown> {
  const full = alerts.map((a) => ({
    status: a.status ?? 'firing',
    labels: { alertname: 'LLMServerDown', target: 'qwen3', remediate: 'restart', severity: 'critical', ...a.labels },
    annotations: { summary: 'down' },
    startsAt: a.startsAt ?? new Date(Date.now() - 30_000).toISOString(),
    endsAt: a.endsAt ?? '0001-01-01T00:00:00Z',
    generatorURL: 'http://127.0.0.1:19090/graph',
    fingerprint: a.fingerprint ?? 'a1b2c3d4e5f60718',
  }));
  return {
    receiver: 'qwen-sentinel-remediator',
    status: full.some((a) => a.status === 'firing') ? 'firing' : 'resolved',
    alerts: full,
    groupLabels: { alertname: 'LLMServerDown' },
    commonLabels: {},
    commonAnnotations: {},
    externalURL: 'http://127.0.0.1:19093',
    version: '4',
    groupKey: '{}/{remediate="restart"}:{alertname="LLMServerDown", target="qwen3"}',
    truncatedAlerts: 0,
  };
}
