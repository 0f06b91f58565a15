import { Counter, Gauge, Histogram } from '../lib/prom-client.ts';
import { componentRegistry } from '../lib/build-info.ts';
import { decisions } from './stages.ts';

const sources = ['webhook', 'reconcile', 'exit'] as const;
/** Every code the webhook answers with, pre-initialised so rate() sees the first of each. */
export const webhookCodes = ['200', '400', '401', '413', '415', '422'] as const;

export class RemediatorMetrics {
  readonly registry = componentRegistry();
  readonly actions = new Counter({ name: 'llm_remediation_actions_total', help: 'Remediation actions run, by outcome (success: the server answered again within startup_timeout).', labelNames: ['target', 'action', 'outcome'], registers: [this.registry] });
  readonly alerts = new Counter({ name: 'llm_remediation_alerts_total', help: 'Triggers (alerts from the webhook or the Alertmanager reconciler, exits of owned servers) by the decision taken.', labelNames: ['decision', 'source'], registers: [this.registry] });
  readonly requests = new Counter({ name: 'llm_remediation_webhook_requests_total', help: 'Webhook requests by HTTP status code.', labelNames: ['code'], registers: [this.registry] });
  readonly processUp = new Gauge({ name: 'llm_remediation_managed_process_up', help: '1 while the model server the remediator owns is running.', labelNames: ['target'], registers: [this.registry] });
  readonly processExits = new Counter({ name: 'llm_remediation_managed_process_exits_total', help: 'Unexpected exits of the model server the remediator owns.', labelNames: ['target'], registers: [this.registry] });
  readonly lastAction = new Gauge({ name: 'llm_remediation_last_action_timestamp_seconds', help: 'Unix time the last remediation action finished.', labelNames: ['target'], registers: [this.registry] });
  readonly lastActionInfo = new Gauge({ name: 'llm_remediation_last_action_info', help: 'Always 1, for the last action of each target only: what it was, why (the alert), how it ended.', labelNames: ['target', 'action', 'alertname', 'outcome'], registers: [this.registry] });
  readonly lastTimeToHealthy = new Gauge({ name: 'llm_remediation_last_time_to_healthy_seconds', help: 'From the last successful action to the server answering again.', labelNames: ['target'], registers: [this.registry] });
  readonly timeToHealthy = new Histogram({ name: 'llm_remediation_time_to_healthy_seconds', help: 'From a remediation action to the server answering again (listing and a one-token generation).', labelNames: ['target'], buckets: [1, 2, 5, 10, 20, 30, 60, 120, 300, 600], registers: [this.registry] });
  readonly notifications = new Counter({ name: 'llm_remediation_notifications_total', help: 'Messages about finished remediation actions sent to a chat channel (DingTalk), by outcome; failures are logged.', labelNames: ['channel', 'outcome'], registers: [this.registry] });
  readonly reconciles = new Counter({ name: 'llm_remediation_reconcile_total', help: "Reads of Alertmanager's active alerts, by outcome.", labelNames: ['outcome'], registers: [this.registry] });
  /** Read at each scrape: the circuit closes by time passing, with no event to update it. */
  readonly circuitOpen: Gauge;
  readonly recentRestarts: Gauge;
  #collect: () => void = () => {};
  readonly #lastInfo = new Map<string, Record<string, string>>();

  /** The last action of a target, as an info series (the one before is removed). */
  setLastAction(labels: { target: string; action: string; alertname: string; outcome: string }): void {
    const before = this.#lastInfo.get(labels.target);
    if (before) this.lastActionInfo.remove(before);
    this.lastActionInfo.set(labels, 1);
    this.#lastInfo.set(labels.target, labels);
  }

  constructor() {
    const collect = () => this.#collect();
    this.circuitOpen = new Gauge({ name: 'llm_remediation_circuit_open', help: '1 while the crash-loop circuit of the target is open: no action until its window passes or it is closed by hand.', labelNames: ['target'], registers: [this.registry], collect });
    this.recentRestarts = new Gauge({ name: 'llm_remediation_recent_restarts', help: 'Restarts (failed ones included) inside the target\'s circuit window.', labelNames: ['target'], registers: [this.registry], collect });
    for (const decision of decisions) for (const source of sources) this.alerts.inc({ decision, source }, 0);
    for (const code of webhookCodes) this.requests.inc({ code }, 0);
    for (const outcome of ['success', 'failure']) this.reconciles.inc({ outcome }, 0);
  }

  /** Called before each scrape, to set the gauges that time alone changes. */
  onCollect(fn: () => void): void {
    let running = false;
    this.#collect = () => {
      // Both gauges share the callback: run it once per scrape.
      if (running) return;
      running = true;
      fn();
      queueMicrotask(() => (running = false));
    };
  }

  /** Pre-initialises a target's counters, so increase() in alert rules sees its first failure. */
  addTarget(name: string, action: string): void {
    for (const outcome of ['success', 'failure']) this.actions.inc({ target: name, action, outcome }, 0);
    this.processExits.inc({ target: name }, 0);
  }

  /** Pre-initialises a configured notification channel's counters; a channel a reload removed loses them. */
  setChannel(channel: string, configured: boolean): void {
    for (const outcome of ['success', 'failure']) {
      if (configured) this.notifications.inc({ channel, outcome }, 0);
      else this.notifications.remove({ channel, outcome });
    }
  }

  /** Drops the series of a target a reload removed. */
  removeTarget(name: string, action: string): void {
    for (const outcome of ['success', 'failure']) this.actions.remove({ target: name, action, outcome });
    for (const metric of [this.processExits, this.processUp, this.lastAction, this.timeToHealthy, this.circuitOpen, this.recentRestarts, this.lastTimeToHealthy]) metric.remove({ target: name });
    const info = this.#lastInfo.get(name);
    if (info) this.lastActionInfo.remove(info);
    this.#lastInfo.delete(name);
  }
}
