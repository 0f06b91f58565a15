import { Counter, Gauge } from 'prom-client';
import { componentRegistry } from '../build-info.ts';

/** What happened to each alert the webhook received. */
export const decisions = ['restart', 'duplicate', 'cooldown', 'in_progress', 'unknown_target', 'not_matching', 'resolved'] as const;
export type Decision = (typeof decisions)[number];

export class RemediatorMetrics {
  readonly registry = componentRegistry();
  readonly actions = new Counter({ name: 'llm_remediation_actions_total', help: 'Remediation actions run, by outcome.', labelNames: ['target', 'action', 'outcome'], registers: [this.registry] });
  readonly alerts = new Counter({ name: 'llm_remediation_alerts_total', help: 'Alerts received by the webhook, by the decision taken.', labelNames: ['decision'], registers: [this.registry] });
  readonly requests = new Counter({ name: 'llm_remediation_webhook_requests_total', help: 'Webhook requests by HTTP status code.', labelNames: ['code'], registers: [this.registry] });
  readonly processUp = new Gauge({ name: 'llm_remediation_managed_process_up', help: '1 while the model server the remediator owns is running.', labelNames: ['target'], registers: [this.registry] });
  readonly processExits = new Counter({ name: 'llm_remediation_managed_process_exits_total', help: 'Unexpected exits of the model server the remediator owns.', labelNames: ['target'], registers: [this.registry] });
  readonly lastAction = new Gauge({ name: 'llm_remediation_last_action_timestamp_seconds', help: 'Unix time the last remediation action finished.', labelNames: ['target'], registers: [this.registry] });

  constructor(targets: ReadonlyArray<{ name: string; action: string }>) {
    for (const d of decisions) this.alerts.inc({ decision: d }, 0);
    for (const { name, action } of targets) this.addTarget(name, action);
  }

  /** Drops the series of a target a reload removed. */
  removeTarget(name: string, action: string): void {
    for (const outcome of ['success', 'failure']) this.actions.remove({ target: name, action, outcome });
    this.processExits.remove({ target: name });
    this.processUp.remove({ target: name });
    this.lastAction.remove({ target: name });
  }

  /** Pre-initialises a target's counters, so increase() in alert rules sees its first failure. */
  addTarget(name: string, action: string): void {
    for (const outcome of ['success', 'failure']) this.actions.inc({ target: name, action, outcome }, 0);
    this.processExits.inc({ target: name }, 0);
  }
}
