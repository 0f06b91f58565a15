import { html, page } from '../lib/html.ts';
import { version } from '../lib/version.ts';
import type { ActionEntry } from './history.ts';
import type { Remediator } from './remediator.ts';

type TargetRow = ReturnType<Remediator['snapshot']>[number];

const outcomeClass = (outcome: string) => (outcome === 'success' ? 'ok' : outcome === 'running' ? '' : 'bad');

/** The remediator's page at /: each target's state, restarts and the recent actions. */
export function remediatorStatusPage(targets: readonly TargetRow[], actions: readonly ActionEntry[]): string {
  const targetRows = targets.map((t) => html`<tr><td>${t.name}</td><td>${t.action}</td><td class="${t.state === 'circuit_open' ? 'bad' : ''}">${t.state}</td><td>${t.pid ?? ''}</td>
<td>${t.restarts}</td><td>${t.unexpected_exits}</td><td>${t.recent_restarts} of ${t.circuit.max_restarts} in ${t.circuit.window_seconds / 60} min</td><td>${t.cooldown_until ?? ''}</td>
<td>${t.last_action ? html`<span class="${outcomeClass(t.last_action.outcome)}">${t.last_action.outcome}</span> ${t.last_action.at}: ${t.last_action.message}` : html`<span class="muted">none</span>`}</td></tr>`);
  const actionRows = actions.map((a) => html`<tr><td>${a.started_at}</td><td>${a.finished_at ?? ''}</td><td>${a.target}</td><td>${a.action}</td><td>${a.trigger.alertname} <span class="muted">(${a.trigger.source})</span></td>
<td class="${outcomeClass(a.outcome)}">${a.outcome}</td><td>${a.message}</td><td class="muted">${a.decisions.map((d) => d.stage).join(' → ')}</td></tr>`);
  const body = html`
<h2>Targets</h2>
<table id="targets"><tr><th>target</th><th>action</th><th>state</th><th>pid</th><th>restarts</th><th>unexpected exits</th><th>circuit</th><th>cooldown until</th><th>last action</th></tr>${targetRows}</table>
<h2>Recent actions</h2>
${actions.length === 0 ? html`<p class="muted">No action taken yet.</p>` : html`<table id="actions"><tr><th>started</th><th>finished</th><th>target</th><th>action</th><th>trigger</th><th>outcome</th><th>message</th><th>stages passed</th></tr>${actionRows}</table>`}
<p class="muted">qwen-sentinel ${version}</p>`;
  return page('qwen-sentinel remediator', { Metrics: 'metrics', Targets: 'api/v1/targets', Actions: 'api/v1/actions', Ready: '-/ready' }, body);
}
