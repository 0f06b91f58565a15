import type { Module } from '../probing/module.ts';
import { html, page, seconds } from '../lib/html.ts';
import { version } from '../lib/version.ts';
import type { StoredRound } from './history.ts';
import type { TargetStatus } from './scheduler.ts';

const when = (ms: number) => new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
const logLink = (round: StoredRound) => html`<a href="logs?id=${round.id}">log #${round.id}</a>`;

function probeCell(round: StoredRound | undefined, probe: string) {
  const report = round?.probes.find((p) => p.probe === probe);
  if (!report) return html`<td class="muted">not run</td>`;
  if (report.success) return html`<td class="ok">ok <span class="muted">${seconds(report.durationSeconds)}</span></td>`;
  return html`<td class="bad" title="${report.message}">${report.reason}<br><span class="muted">${report.message}</span></td>`;
}

/** The exporter's page at /: every target with its last round, and the recent rounds' logs. */
export function exporterStatusPage(targets: readonly TargetStatus[], modules: Readonly<Record<string, Module>>, recent: readonly StoredRound[]): string {
  const probeColumns = [...new Set(targets.flatMap(({ target }) => modules[target.module]?.probes ?? []))];
  const targetRows = targets.map(({ target, last }) => html`<tr>
<td>${target.name}</td><td><code>${target.url}</code></td><td>${target.module} <span class="muted">(${target.server})</span></td>
<td>${last?.model ?? target.model ?? ''}</td>
<td class="${last === undefined ? 'muted' : last.up ? 'ok' : 'bad'}">${last === undefined ? 'pending' : last.up ? 'UP' : 'DOWN'}</td>
${probeColumns.map((p) => probeCell(last, p))}
<td>${last ? html`${when(last.startedAt)}<br>${logLink(last)}` : ''}</td></tr>`);
  const roundRows = recent.map((r) => {
    const failed = r.probes.filter((p) => !p.success);
    return html`<tr><td>${logLink(r)}</td><td>${when(r.startedAt)}</td><td>${r.target}</td><td>${r.module}</td>
<td class="${r.up ? 'ok' : 'bad'}">${r.up ? 'up' : 'down'}</td><td>${seconds(r.durationSeconds)}</td>
<td>${failed.map((p) => html`${p.probe}: ${p.reason} (${p.message}) `)}</td></tr>`;
  });
  const body = html`
<h2>Targets</h2>
${targets.length === 0 ? html`<p class="muted">No configured targets: this exporter answers <code>/probe?target=URL&amp;module=NAME</code> only.</p>` : html`<table id="targets">
<tr><th>target</th><th>url</th><th>module</th><th>model</th><th>state</th>${probeColumns.map((p) => html`<th>${p}</th>`)}<th>last round</th></tr>
${targetRows}</table>`}
<h2>Recent rounds</h2>
${recent.length === 0 ? html`<p class="muted">None yet.</p>` : html`<table id="rounds"><tr><th>log</th><th>started</th><th>target</th><th>module</th><th>result</th><th>took</th><th>failures</th></tr>${roundRows}</table>`}
<h2>Modules</h2>
<table id="modules"><tr><th>module</th><th>server</th><th>probes, in order</th><th>timeout</th></tr>
${Object.values(modules).map((m) => html`<tr><td>${m.name}</td><td>${m.server}</td><td>${m.probes.join(', ')}</td><td>${seconds(m.timeout / 1000)}</td></tr>`)}</table>
<p class="muted">qwen-sentinel ${version}</p>`;
  return page('qwen-sentinel exporter', { Metrics: 'metrics', 'Probe (example)': 'probe?target=http://127.0.0.1:8000/v1&module=openai&debug=true', Ready: '-/ready' }, body);
}
