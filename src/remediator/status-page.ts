import { html, page } from '../html.ts';
import { version } from '../version.ts';
import type { ActionRecord, Remediator } from './policy.ts';

type TargetRow = ReturnType<Remediator['snapshot']>[number];

const outcomeClass = (outcome: string) => (outcome === 'success' ? 'ok' : 'bad');

/** The remediator's page at /: each target's state, restarts and the recent actions. */
export function remediatorStatusPage(targets: readonly TargetRow[], actions: readonly ActionRecord[]): string {
  const targetRows = targets.map((t) => html`<tr><td>${t.name}</td><td>${t.action}</td><td>${t.state}</td><td>${t.pid ?? ''}</td>
<td>${t.restarts}</td><td>${t.unexpected_exits}</td><td>${t.cooldown_until ?? ''}</td>
<td>${t.last_action ? html`<span class="${outcomeClass(t.last_action.outcome)}">${t.last_action.outcome}</span> ${t.last_action.at}: ${t.last_action.message}` : html`<span class="muted">none</span>`}</td></tr>`);
  const actionRows = actions.map((a) => html`<tr><td>${a.started_at}</td><td>${a.at}</td><td>${a.target}</td><td>${a.action}</td><td>${a.alertname}</td>
<td class="${outcomeClass(a.outcome)}">${a.outcome}</td><td>${a.message}</td></tr>`);
  const body = html`
<h2>Targets</h2>
<table id="targets"><tr><th>target</th><th>action</th><th>state</th><th>pid</th><th>restarts</th><th>unexpected exits</th><th>cooldown until</th><th>last action</th></tr>${targetRows}</table>
<h2>Recent actions</h2>
${actions.length === 0 ? html`<p class="muted">No action taken yet.</p>` : html`<table id="actions"><tr><th>started</th><th>finished</th><th>target</th><th>action</th><th>alert</th><th>outcome</th><th>message</th></tr>${actionRows}</table>`}
<p class="muted">qwen-sentinel ${version}</p>`;
  return page('qwen-sentinel remediator', { Metrics: 'metrics', Targets: 'api/v1/targets', Ready: '-/ready' }, body);
}
