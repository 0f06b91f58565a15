import type { Action, ActionOutcome, RestartContext } from '../../src/remediator/actions/types.ts';
import type { WebhookPayload } from '../../src/remediator/alert-schema.ts';

/** An action that records its calls; restart resolves when the test says so (or at once). */
export class FakeAction implements Action {
  readonly kind = 'process' as const;
  calls: RestartContext[] = [];
  outcome: ActionOutcome = { ok: true, message: 'restarted' };
  #release: Array<() => void> = [];
  manual = false;

  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  pid(): number {
    return 4242;
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

export interface AlertInput {
  status?: 'firing' | 'resolved';
  labels?: Record<string, string>;
  fingerprint?: string;
  startsAt?: string;
}

/** An Alertmanager v4 payload shaped as 0.25 sends it. */
export function payload(...alerts: AlertInput[]): WebhookPayload & Record<string, unknown> {
  const full = alerts.map((a) => ({
    status: a.status ?? 'firing',
    labels: { alertname: 'LLMServerDown', target: 'qwen3', remediate: 'restart', severity: 'critical', ...a.labels },
    annotations: { summary: 'down' },
    startsAt: a.startsAt ?? '2026-11-25T12:00:00.000Z',
    endsAt: '0001-01-01T00:00:00Z',
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
