import { duration, html, page, when, type Html } from '../lib/html.ts';
import { version } from '../lib/version.ts';
import type { ActionEntry } from './history.ts';

/** Seconds between the status page's reloads. */
export const refreshSeconds = 10;

/** What the page reads of a target: a row of Remediator.snapshot() (GET /api/v1/targets). */
export interface TargetRow {
  name: string;
  action: string;
  state: string;
  pid: number | null;
  restarts: number;
  unexpected_exits: number;
  recent_restarts: number;
  /** closes_at (ISO), when given, is when an open circuit closes by itself. */
  circuit: { open: boolean; max_restarts: number; window_seconds: number; closes_at?: string | null | undefined };
  cooldown_until: string | null;
  started_at: string | null;
  last_action: { at: string; outcome: string; message: string } | null;
}

const outcomeClass = (outcome: string) => (outcome === 'success' ? 'ok' : outcome === 'running' ? '' : 'bad');
const stateText: Record<string, string> = { circuit_open: 'circuit open' };
const iso = (text: string) => when(Date.parse(text));

/** The target's state as a badge: idle, starting, restarting, cooldown, circuit open. */
export function stateBadge(state: string): Html {
  return html`<span class="badge ${state}">${stateText[state] ?? state}</span>`;
}

/**
 * When an open circuit closes by itself: the snapshot's closes_at when it gives one, else at the
 * latest one window after the last action (the last restart cannot be later than that).
 */
export function circuitClosesAt(t: TargetRow): { at: number; exact: boolean } | undefined {
  if (t.circuit.closes_at) return { at: Date.parse(t.circuit.closes_at), exact: true };
  if (t.last_action) return { at: Date.parse(t.last_action.at) + t.circuit.window_seconds * 1000, exact: false };
  return undefined;
}

/** The command that closes a target's circuit by hand; the URL is written out by the page's script. */
function closeCommand(t: TargetRow): Html {
  const id = `close-${t.name}`;
  const path = `api/v1/targets/${encodeURIComponent(t.name)}/circuit/close`;
  return html`<div class="command"><code id="${id}">curl -X POST -H "Authorization: Bearer $TOKEN" <span data-href="${path}">$REMEDIATOR_URL/${path}</span></code><button type="button" data-copy="${id}">copy</button></div>
<span class="muted">$TOKEN: the webhook's bearer token (<code>remediator.auth</code> in the config).</span>`;
}

function circuitCell(t: TargetRow, now: number): Html {
  const { max_restarts: max, window_seconds: windowSeconds } = t.circuit;
  const window = duration(windowSeconds * 1000);
  const count = html`${t.recent_restarts} of ${max} restarts in the last ${window}`;
  if (!t.circuit.open) {
    if (t.recent_restarts + 1 < max) return html`<td>${count}</td>`;
    return html`<td class="circuit-warning">${count}<br><span class="warn">the next restart opens the circuit</span></td>`;
  }
  const closes = circuitClosesAt(t);
  const closesText = closes
    ? html`by itself ${closes.exact ? '' : 'at the latest '}at ${when(closes.at)} (in ${duration(closes.at - now)}), once its restarts are older than ${window}`
    : html`by itself once its restarts are older than ${window}`;
  return html`<td class="circuit-open"><span class="bad">open</span>: ${count}. No restart until it closes: ${closesText}; or close it now:${closeCommand(t)}</td>`;
}

function stateCell(t: TargetRow): Html {
  const details = [
    ...(t.state === 'starting' && t.started_at ? [`since ${iso(t.started_at)}`] : []),
    ...(t.cooldown_until ? [`${t.state === 'cooldown' ? '' : 'cooldown '}until ${iso(t.cooldown_until)}`] : []),
  ];
  return html`<td>${stateBadge(t.state)}${details.map((d) => html`<br><span class="muted">${d}</span>`)}</td>`;
}

export interface RemediatorPageOptions {
  /** Unix milliseconds: when the page is rendered (tests pass their own). */
  now?: number;
  /** Links to the other components (--web.link). */
  external?: Readonly<Record<string, string>> | undefined;
}

/** The remediator's page at /: each target's state, restarts and circuit, and the recent actions. */
export function remediatorStatusPage(targets: readonly TargetRow[], actions: readonly ActionEntry[], { now = Date.now(), external }: RemediatorPageOptions = {}): string {
  const targetRows = targets.map((t) => html`<tr><td>${t.name}</td><td>${t.action}</td>${stateCell(t)}<td>${t.pid ?? ''}</td>
<td>${t.restarts}</td><td>${t.unexpected_exits}</td>${circuitCell(t, now)}
<td>${t.last_action ? html`<span class="${outcomeClass(t.last_action.outcome)}">${t.last_action.outcome}</span> ${t.last_action.at}: ${t.last_action.message}` : html`<span class="muted">none</span>`}</td></tr>`);
  const actionRows = actions.map((a) => html`<tr><td>${a.started_at}</td><td>${a.finished_at ?? ''}</td><td>${a.target}</td><td>${a.action}</td><td>${a.trigger.alertname} <span class="muted">(${a.trigger.source})</span></td>
<td class="${outcomeClass(a.outcome)}">${a.outcome}</td><td>${a.message}</td><td class="muted">${a.decisions.map((d) => d.stage).join(' → ')}</td></tr>`);
  const body = html`
<h2>Targets</h2>
<table id="targets"><tr><th>target</th><th>action</th><th>state</th><th>pid</th><th>restarts</th><th>unexpected exits</th><th>circuit</th><th>last action</th></tr>${targetRows}</table>
<h2>Recent actions</h2>
${actions.length === 0 ? html`<p class="muted">No action taken yet.</p>` : html`<table id="actions"><tr><th>started</th><th>finished</th><th>target</th><th>action</th><th>trigger</th><th>outcome</th><th>message</th><th>stages passed</th></tr>${actionRows}</table>`}
<p class="muted">qwen-sentinel ${version}</p>`;
  const links = { Metrics: 'metrics', Targets: 'api/v1/targets', Actions: 'api/v1/actions', Ready: '-/ready' };
  return page('qwen-sentinel remediator', { links, external, updated: now, refreshSeconds }, body);
}
