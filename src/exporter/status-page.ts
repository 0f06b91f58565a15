import type { Module } from '../probing/module.ts';
import { duration, html, notice, page, seconds, when, type Html } from '../lib/html.ts';
import { version } from '../lib/version.ts';
import type { RoundHistory, StoredRound, Streak } from './history.ts';
import type { TargetStatus } from './scheduler.ts';

/** Seconds between the status page's reloads. */
export const refreshSeconds = 10;
/** Rows of the recent rounds table. */
const recentRows = 30;

const logLink = (round: StoredRound) => html`<a href="logs?id=${round.id}">log #${round.id}</a>`;

function probeCell(round: StoredRound | undefined, probe: string) {
  const report = round?.probes.find((p) => p.probe === probe);
  if (!report) return html`<td class="muted">not run</td>`;
  if (report.success) return html`<td class="ok">ok <span class="muted">${seconds(report.durationSeconds)}</span></td>`;
  return html`<td class="bad" title="${report.message}">${report.reason}<br><span class="muted">${report.message}</span></td>`;
}

/**
 * How long a target has been up or down, from its run of results: down since the first failed
 * round of the current outage. "At least" when the outage began with the exporter's first round.
 */
export function sinceText(streak: Streak | undefined, last: StoredRound | undefined, now: number): Html | undefined {
  if (!streak || !last || streak.up !== last.up) return undefined;
  const atLeast = !streak.up && streak.sinceFirstRound ? 'at least ' : '';
  const from = streak.sinceFirstRound ? `since the first round, ${when(streak.since)}` : `since ${when(streak.since)}`;
  return html`<span class="since">for ${atLeast}${duration(now - streak.since)}</span><br><span class="muted">${from}</span>`;
}

function stateCell(history: RoundHistory, name: string, last: StoredRound | undefined, now: number) {
  if (last === undefined) return html`<td class="muted">pending</td>`;
  const since = sinceText(history.streak(name), last, now);
  return html`<td class="${last.up ? 'ok' : 'bad'}">${last.up ? 'UP' : 'DOWN'}${since ? html`<br>${since}` : ''}</td>`;
}

function resultCell(r: StoredRound) {
  if (r.skipped !== undefined) return html`<td class="muted">skipped (${r.skipped})</td>`;
  return html`<td class="${r.up ? 'ok' : 'bad'}">${r.up ? 'up' : 'down'}</td>`;
}

export interface ExporterPageInput {
  targets: readonly TargetStatus[];
  modules: Readonly<Record<string, Module>>;
  history: RoundHistory;
  /** Unix milliseconds: when the page is rendered (tests pass their own). */
  now?: number;
  /** Links to the other components (--web.link). */
  external?: Readonly<Record<string, string>> | undefined;
}

/** The exporter's page at /: every target with its last round and how long it has been up or down, and the recent rounds' logs. */
export function exporterStatusPage({ targets, modules, history, now = Date.now(), external }: ExporterPageInput): string {
  const recent = history.recent(recentRows);
  const kept = history.limits();
  const probeColumns = [...new Set(targets.flatMap(({ target }) => modules[target.module]?.probes ?? []))];
  const targetRows = targets.map(({ target, last }) => html`<tr>
<td>${target.name}</td><td><code>${target.url}</code></td><td>${target.module} <span class="muted">(${target.server})</span></td>
<td>${last?.model ?? target.model ?? ''}</td>
${stateCell(history, target.name, last, now)}
${probeColumns.map((p) => probeCell(last, p))}
<td>${last ? html`${when(last.startedAt)}<br>${logLink(last)}` : ''}</td></tr>`);
  const roundRows = recent.map((r) => {
    const failed = r.probes.filter((p) => !p.success);
    return html`<tr><td>${logLink(r)}</td><td>${when(r.startedAt)}</td><td>${r.target}${r.probe ? html` <span class="muted">(/probe)</span>` : ''}</td><td>${r.module}</td>
${resultCell(r)}<td>${seconds(r.durationSeconds)}</td>
<td>${failed.map((p) => html`${p.probe}: ${p.reason} (${p.message}) `)}</td></tr>`;
  });
  const body = html`
<h2>Targets</h2>
${targets.length === 0 ? html`<p class="muted">No configured targets: this exporter answers <code>/probe?target=URL&amp;module=NAME</code> only.</p>` : html`<table id="targets">
<tr><th>target</th><th>url</th><th>module</th><th>model</th><th>state</th>${probeColumns.map((p) => html`<th>${p}</th>`)}<th>last round</th></tr>
${targetRows}</table>`}
<h2>Recent rounds</h2>
<p class="muted">Logs kept: the last ${kept.perTarget} rounds of each target, and the last ${kept.probes} <code>/probe</code> requests.</p>
${recent.length === 0 ? html`<p class="muted">None yet.</p>` : html`<table id="rounds"><tr><th>log</th><th>started</th><th>target</th><th>module</th><th>result</th><th>took</th><th>failures</th></tr>${roundRows}</table>`}
<h2>Modules</h2>
<table id="modules"><tr><th>module</th><th>server</th><th>probes, in order</th><th>timeout</th></tr>
${Object.values(modules).map((m) => html`<tr><td>${m.name}</td><td>${m.server}</td><td>${m.probes.join(', ')}</td><td>${seconds(m.timeout / 1000)}</td></tr>`)}</table>
<p class="muted">qwen-sentinel ${version}</p>`;
  const links = { Metrics: 'metrics', 'Probe (example)': 'probe?target=http://127.0.0.1:8000/v1&module=openai&debug=true', Ready: '-/ready' };
  return page('qwen-sentinel exporter', { links, external, updated: now, refreshSeconds }, body);
}

/** /logs?id=N: the round's log as text, or a 404 page saying whether it was evicted or never was. */
export function roundLog(history: RoundHistory, idText: unknown): { status: number; type: 'text/plain' | 'html'; body: string } {
  const id = Number(idText);
  const round = history.get(id);
  if (round) {
    const of = round.probe ? `a /probe request for ${round.target}` : round.target;
    return { status: 200, type: 'text/plain', body: `Round #${round.id} of ${of} (module ${round.module}) at ${new Date(round.startedAt).toISOString()}: ${round.skipped !== undefined ? `SKIPPED (${round.skipped})` : round.up ? 'up' : 'DOWN'}\n\n${round.log.join('\n')}\n` };
  }
  const kept = history.limits();
  const message = history.issued(id)
    ? html`The log of round #${id} is no longer kept: the exporter keeps the last ${kept.perTarget} rounds of each target and the last ${kept.probes} <code>/probe</code> requests.`
    : html`There is no round #${String(idText).slice(0, 40)}.`;
  return { status: 404, type: 'html', body: notice('Round not found', message, { href: './', text: 'Back to the status page' }) };
}
