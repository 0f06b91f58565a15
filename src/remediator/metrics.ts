import { isDeepStrictEqual } from 'node:util';
import { Counter, Gauge, Histogram } from '../lib/prom-client.ts';
import { componentRegistry } from '../lib/build-info.ts';
import { decisions } from './stages.ts';

const sources = ['webhook', 'reconcile', 'exit'] as const;
/**
 * How long each remediation's notice series is exported, and how many per target at most: long
 * enough for Prometheus to scrape and evaluate it several times at any scrape interval up to 60 s
 * (LLMRemediationPerformed has no `for`), short enough not to pile up.
 */
export const noticeKeepMs = 10 * 60_000;
export const noticeKeepPerTarget = 10;
// Refused alert instances already told, per target (the same instance is refused at every
// re-send and every reconcile while the circuit stays open).
const refusalsRemembered = 50;

/** One remediation as people are told of it: a restart that finished, or one the circuit refused. */
export interface RemediationNotice {
  target: string;
  /** The target's action kind (process, command, systemd, ...). */
  action: string;
  /** The alert that asked for it (ModelServerExited for an exit of an owned server). */
  trigger: string;
  outcome: 'success' | 'failure' | 'refused';
  /** The action's id in GET /api/v1/actions; for a refusal, when it happened (ISO 8601). */
  id: string;
  /** success: seconds from the action to the server answering again. */
  timeToHealthySeconds?: number | undefined;
}

interface KeptNotice {
  labels: { target: string; action: string; trigger: string; outcome: string; id: string };
  at: number;
  healthy: boolean;
}
/** Every code the webhook answers with, pre-initialised so rate() sees the first of each. */
export const webhookCodes = ['200', '400', '401', '413', '415', '422'] as const;

export class RemediatorMetrics {
  readonly registry = componentRegistry();
  readonly actions = new Counter({ name: 'llm_remediation_actions_total', help: 'Remediation actions run, by outcome (success: the server answered again within startup_timeout; stale, blocked, invalid: the action found it had nothing to do, and did nothing: not a restart).', labelNames: ['target', 'action', 'outcome'], registers: [this.registry] });
  readonly alerts = new Counter({ name: 'llm_remediation_alerts_total', help: 'Triggers (alerts from the webhook or the Alertmanager reconciler, exits of owned servers) by the decision taken (error: deciding it failed; see the log).', labelNames: ['decision', 'source'], registers: [this.registry] });
  readonly requests = new Counter({ name: 'llm_remediation_webhook_requests_total', help: 'Webhook requests by HTTP status code.', labelNames: ['code'], registers: [this.registry] });
  readonly processUp = new Gauge({ name: 'llm_remediation_managed_process_up', help: '1 while the model server the remediator owns is running.', labelNames: ['target'], registers: [this.registry] });
  readonly processExits = new Counter({ name: 'llm_remediation_managed_process_exits_total', help: 'Unexpected exits of the model server the remediator owns.', labelNames: ['target'], registers: [this.registry] });
  readonly lastAction = new Gauge({ name: 'llm_remediation_last_action_timestamp_seconds', help: 'Unix time the last remediation action finished.', labelNames: ['target'], registers: [this.registry] });
  readonly lastActionInfo = new Gauge({ name: 'llm_remediation_last_action_info', help: 'Always 1, for the last action of each target only: what it was, why (the alert), how it ended.', labelNames: ['target', 'action', 'alertname', 'outcome'], registers: [this.registry] });
  readonly lastTimeToHealthy = new Gauge({ name: 'llm_remediation_last_time_to_healthy_seconds', help: 'From the last successful action to the server answering again.', labelNames: ['target'], registers: [this.registry] });
  readonly timeToHealthy = new Histogram({ name: 'llm_remediation_time_to_healthy_seconds', help: 'From a remediation action to the server answering again (listing and a one-token generation).', labelNames: ['target'], buckets: [1, 2, 5, 10, 20, 30, 60, 120, 300, 600], registers: [this.registry] });
  readonly notifications = new Counter({ name: 'llm_remediation_notifications_total', help: 'Messages about finished remediation actions sent to a chat channel (DingTalk), by outcome; failures are logged.', labelNames: ['channel', 'outcome'], registers: [this.registry] });
  readonly reconciles = new Counter({ name: 'llm_remediation_reconcile_total', help: "Reads of Alertmanager's active alerts, by outcome.", labelNames: ['outcome'], registers: [this.registry] });
  /** One series per remediation of the last noticeKeepMs: each is its own LLMRemediationPerformed alert. */
  readonly actionInfo: Gauge;
  readonly actionTimeToHealthy = new Gauge({ name: 'llm_remediation_action_time_to_healthy_seconds', help: 'For each successful action in llm_remediation_action_info (same target and id): seconds from the action to the server answering again.', labelNames: ['target', 'id'], registers: [this.registry] });
  /** Read at each scrape: the circuit closes by time passing, with no event to update it. */
  readonly circuitOpen: Gauge;
  readonly recentRestarts: Gauge;
  #collect: () => void = () => {};
  readonly #lastInfo = new Map<string, Record<string, string>>();
  readonly #now: () => number;
  /** Per target, newest first. */
  readonly #notices = new Map<string, KeptNotice[]>();
  readonly #refusalsTold = new Map<string, string[]>();

  /** The last action of a target, as an info series (the one before is removed). */
  setLastAction(labels: { target: string; action: string; alertname: string; outcome: string }): void {
    const before = this.#lastInfo.get(labels.target);
    if (before) this.lastActionInfo.remove(before);
    this.lastActionInfo.set(labels, 1);
    this.#lastInfo.set(labels.target, labels);
  }

  /** now: Unix ms, for how long notices are kept. */
  constructor(o: { now?: () => number } = {}) {
    this.#now = o.now ?? Date.now;
    this.actionInfo = new Gauge({ name: 'llm_remediation_action_info', help: `Always 1, one series per remediation of the last ${noticeKeepMs / 60_000} minutes (at most ${noticeKeepPerTarget} per target): a restart that finished (outcome success or failure) or one the crash-loop circuit refused (outcome refused, once per alert). trigger: the alert that asked for it (ModelServerExited: the owned server exited); id: the action's id in /api/v1/actions, or the time of the refusal.`, labelNames: ['target', 'action', 'trigger', 'outcome', 'id'], registers: [this.registry], collect: () => this.#expireNotices() });
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

  /**
   * A finished action or a refusal, told once: a series of its own for noticeKeepMs, so each is a
   * distinct LLMRemediationPerformed alert (no `for`) and a notification of its own.
   */
  recordAction(n: RemediationNotice): void {
    const labels = { target: n.target, action: n.action, trigger: n.trigger, outcome: n.outcome, id: n.id };
    const healthy = n.outcome === 'success' && n.timeToHealthySeconds !== undefined;
    // The same one again (it should not happen) stays one series, kept from now.
    const kept = (this.#notices.get(n.target) ?? []).filter((k) => !isDeepStrictEqual(k.labels, labels));
    this.#notices.set(n.target, [{ labels, at: this.#now(), healthy }, ...kept]);
    this.actionInfo.set(labels, 1);
    if (healthy) this.actionTimeToHealthy.set({ target: n.target, id: n.id }, n.timeToHealthySeconds!);
    this.#expireNotices();
  }

  /**
   * A trigger the crash-loop circuit refused: told once per alert instance (`instance`: its
   * fingerprint and start), however often Alertmanager re-sends it or the reconciler reads it.
   * Returns whether it was new.
   */
  recordRefusal(r: { target: string; action: string; trigger: string; instance: string }): boolean {
    const told = this.#refusalsTold.get(r.target) ?? [];
    if (told.includes(r.instance)) return false;
    this.#refusalsTold.set(r.target, [r.instance, ...told].slice(0, refusalsRemembered));
    this.recordAction({ target: r.target, action: r.action, trigger: r.trigger, outcome: 'refused', id: new Date(this.#now()).toISOString() });
    return true;
  }

  /** Drops notices older than noticeKeepMs and beyond the newest noticeKeepPerTarget of a target. */
  #expireNotices(): void {
    const now = this.#now();
    for (const [target, kept] of this.#notices) {
      const keep = kept.filter((k, i) => i < noticeKeepPerTarget && now - k.at < noticeKeepMs);
      for (const k of kept) if (!keep.includes(k)) this.#removeNotice(k);
      if (keep.length === 0) this.#notices.delete(target);
      else this.#notices.set(target, keep);
    }
  }

  #removeNotice(k: KeptNotice): void {
    this.actionInfo.remove(k.labels);
    if (k.healthy) this.actionTimeToHealthy.remove({ target: k.labels.target, id: k.labels.id });
  }

  /**
   * Pre-initialises a target's series, so increase() in alert rules sees its first failure and the
   * dashboard's histogram quantiles have a series before the first restart.
   */
  addTarget(name: string, action: string): void {
    for (const outcome of ['success', 'failure']) this.actions.inc({ target: name, action, outcome }, 0);
    this.processExits.inc({ target: name }, 0);
    this.timeToHealthy.zero({ target: name });
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
    for (const k of this.#notices.get(name) ?? []) this.#removeNotice(k);
    this.#notices.delete(name);
    this.#refusalsTold.delete(name);
  }
}
