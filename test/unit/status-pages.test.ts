// The status pages as rendered on the server, at a fixed "now": how long a target has been down,
// the remediator's badges and circuit, the links, and /logs for a round that is gone.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfig } from '../../src/cmd/config.ts';
import { statusPageLinks } from '../../src/cmd/stack/loop.ts';
import { RoundHistory } from '../../src/exporter/history.ts';
import { exporterStatusPage, roundLog } from '../../src/exporter/status-page.ts';
import { duration, page, parseLinks, html } from '../../src/lib/html.ts';
import { UsageError } from '../../src/lib/flags.ts';
import type { RoundReport } from '../../src/probing/round.ts';
import { circuitClosesAt, remediatorStatusPage, type TargetRow } from '../../src/remediator/status-page.ts';

const t0 = Date.UTC(2026, 4, 1, 12, 0, 0);
const text = (markup: string) => markup.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ');

test('durations read in their two largest units', () => {
  assert.deepEqual([0, 999, 42_000, 180_000, 192_000, 7_500_000, 3 * 86_400_000 + 4 * 3_600_000 + 5000, -5].map(duration), ['0 s', '0 s', '42 s', '3 min', '3 min 12 s', '2 h 5 min', '3 d 4 h', '0 s']);
});

test('--web.link takes NAME=URL with an http(s) URL, repeatable', () => {
  assert.deepEqual(parseLinks(['remediator=http://127.0.0.1:19151', 'grafana=https://g.example/d/x?a=b=c']), { remediator: 'http://127.0.0.1:19151/', grafana: 'https://g.example/d/x?a=b=c' });
  assert.deepEqual(parseLinks(undefined), {});
  for (const bad of ['remediator', '=http://x/', 'x=ftp://y/', 'x=not a url', 'x=']) {
    assert.throws(() => parseLinks([bad]), (err: Error) => err instanceof UsageError && err.message === `--web.link: expected NAME=URL with an http(s) URL, e.g. remediator=http://127.0.0.1:19151/, got "${bad}"`);
  }
});

test('a page says when it was rendered, reloads itself (with or without scripts) and links the other components', () => {
  const out = page('t', { links: { Metrics: 'metrics' }, external: { remediator: 'http://127.0.0.1:19151/' }, updated: t0 + 3000, refreshSeconds: 10 }, html`<p>x</p>`);
  assert.match(out, /<html lang="en" data-refresh="10">/);
  assert.match(out, /<noscript><meta http-equiv="refresh" content="10"><\/noscript>/);
  assert.match(out, /Updated <time datetime="2026-05-01T12:00:03.000Z">2026-05-01 12:00:03Z<\/time> · reloads every 10 s/);
  assert.match(out, /<a href="metrics">Metrics<\/a> · <a class="external" href="http:\/\/127.0.0.1:19151\/">remediator<\/a>/);
});

test('the stack links each page to the other components', () => {
  const a = (port: number) => ({ host: '127.0.0.1', port });
  const links = statusPageLinks({ exporter: a(1), remediator: a(2), prometheus: { bin: 'p', address: a(3) }, alertmanager: { bin: 'a', address: { host: '::1', port: 4 } }, links: { grafana: 'http://g/' } });
  assert.deepEqual(links.exporter, { remediator: 'http://127.0.0.1:2/', prometheus: 'http://127.0.0.1:3/', alertmanager: 'http://[::1]:4/', grafana: 'http://g/' });
  assert.deepEqual(links.remediator, { exporter: 'http://127.0.0.1:1/', prometheus: 'http://127.0.0.1:3/', alertmanager: 'http://[::1]:4/', grafana: 'http://g/' });
  assert.deepEqual(statusPageLinks({ exporter: a(1), remediator: a(2) }), { exporter: { remediator: 'http://127.0.0.1:2/' }, remediator: { exporter: 'http://127.0.0.1:1/' } });
});

const config = parseConfig({ targets: [{ name: 'flaky', url: 'http://flaky:8000/v1' }, { name: 'never', url: 'http://never:8000/v1' }, { name: 'fine', url: 'http://fine:8000/v1' }, { name: 'new', url: 'http://new:8000/v1' }] });
const report = (target: string, up: boolean, startedAt: number): RoundReport => ({ target, url: `http://${target}:8000/v1`, module: 'openai', server: 'openai', model: undefined, startedAt, durationSeconds: 0.01, up, probes: [{ probe: 'models', success: up, durationSeconds: 0.01, ...(up ? {} : { reason: 'connect_refused', message: 'connection refused' }) }], log: ['x'] });

test('the exporter page says how long each target has been down, or up', () => {
  const history = new RoundHistory();
  const last: Record<string, ReturnType<RoundHistory['add']>> = {};
  // flaky: up, then down from 12:00:30 on; never: down from its first round; fine: up all along.
  last.flaky = history.add(report('flaky', true, t0));
  for (let at = t0 + 30_000; at <= t0 + 120_000; at += 15_000) last.flaky = history.add(report('flaky', false, at));
  for (let at = t0; at <= t0 + 120_000; at += 15_000) last.never = history.add(report('never', false, at));
  for (let at = t0 - 7_200_000; at <= t0 + 120_000; at += 600_000) last.fine = history.add(report('fine', true, at));
  const now = t0 + 222_000;
  const out = exporterStatusPage({ targets: config.targets.map((target) => ({ target, last: last[target.name] })), modules: config.modules, history, now });
  const row = (name: string) => text(new RegExp(`<tr>\\s*<td>${name}</td>.*?</tr>`, 's').exec(out)![0]);
  assert.match(row('flaky'), /DOWN for 3 min 12 s since 2026-05-01 12:00:30Z/);
  assert.match(row('never'), /DOWN for at least 3 min 42 s since the first round, 2026-05-01 12:00:00Z/);
  assert.match(row('fine'), /UP for 2 h 3 min since the first round, 2026-05-01 10:00:00Z/);
  assert.match(row('new'), /pending/);
  assert.doesNotMatch(row('new'), / for /);
  assert.match(out, /Updated <time datetime="2026-05-01T12:03:42.000Z">/);
  assert.match(text(out), /Logs kept: the last 20 rounds of each target, and the last 100 \/probe requests\./);
});

test('/logs: a kept round as text; a gone one is a 404 saying so, with a link back', () => {
  const history = new RoundHistory({ perTarget: 2 });
  const first = history.add(report('flaky', false, t0));
  history.add(report('flaky', false, t0 + 1));
  const probe = history.probes.add(report('http://x:1/v1', true, t0 + 2));
  const kept = history.add(report('flaky', false, t0 + 3));
  assert.deepEqual(roundLog(history, String(kept.id)), { status: 200, type: 'text/plain', body: `Round #${kept.id} of flaky (module openai) at 2026-05-01T12:00:00.003Z: DOWN\n\nx\n` });
  assert.match(roundLog(history, String(probe.id)).body, /^Round #\d+ of a \/probe request for http:\/\/x:1\/v1 \(module openai\)/);
  const gone = roundLog(history, String(first.id));
  assert.equal(gone.status, 404);
  assert.equal(gone.type, 'html');
  assert.match(text(gone.body), /The log of round #1 is no longer kept: the exporter keeps the last 2 rounds of each target and the last 100 \/probe requests\./);
  assert.match(gone.body, /<a href=".\/">Back to the status page<\/a>/);
  assert.match(text(roundLog(history, '999').body), /There is no round #999\./);
  assert.match(roundLog(history, '<script>').body, /There is no round #&#60;script&#62;\./);
  assert.equal(roundLog(history, undefined).status, 404);
});

const row = (o: Partial<TargetRow> = {}): TargetRow => ({
  name: 'qwen3',
  action: 'process',
  state: 'idle',
  pid: 42,
  restarts: 0,
  unexpected_exits: 0,
  recent_restarts: 0,
  circuit: { open: false, max_restarts: 3, window_seconds: 900 },
  cooldown_until: null,
  started_at: null,
  last_action: null,
  ...o,
});

test('the remediator page shows each state as a badge', () => {
  const out = remediatorStatusPage(
    [row({ name: 'a', state: 'idle' }), row({ name: 'b', state: 'restarting' }), row({ name: 'c', state: 'starting', started_at: '2026-05-01T12:00:00.000Z' }), row({ name: 'd', state: 'cooldown', cooldown_until: '2026-05-01T12:01:00.000Z' }), row({ name: 'e', state: 'circuit_open', recent_restarts: 3, circuit: { open: true, max_restarts: 3, window_seconds: 900 } })],
    [],
    { now: t0 },
  );
  for (const [state, label] of [['idle', 'idle'], ['restarting', 'restarting'], ['starting', 'starting'], ['cooldown', 'cooldown'], ['circuit_open', 'circuit open']]) {
    assert.match(out, new RegExp(`<span class="badge ${state}">${label}</span>`));
  }
  assert.match(text(out), /starting since 2026-05-01 12:00:00Z/);
  assert.match(text(out), /cooldown until 2026-05-01 12:01:00Z/);
});

test('the remediator page warns one restart before the circuit opens', () => {
  const cell = (recent: number, max: number) => text(remediatorStatusPage([row({ recent_restarts: recent, circuit: { open: false, max_restarts: max, window_seconds: 900 } })], [], { now: t0 }));
  assert.doesNotMatch(cell(1, 3), /next restart/);
  assert.match(cell(1, 3), /1 of 3 restarts in the last 15 min/);
  assert.match(cell(2, 3), /2 of 3 restarts in the last 15 min the next restart opens the circuit/);
  assert.match(cell(0, 1), /the next restart opens the circuit/);
});

test('an open circuit says when it closes by itself and how to close it now, without the token', () => {
  const lastAction = { at: '2026-05-01T11:58:00.000Z', alertname: 'LLMServerDown', outcome: 'failure', message: 'not answering' };
  const open = row({ name: 'qwen3:a', state: 'circuit_open', recent_restarts: 3, restarts: 7, circuit: { open: true, max_restarts: 3, window_seconds: 900 }, last_action: lastAction });
  // Without closes_at from the snapshot: one window after the last action at the latest.
  assert.deepEqual(circuitClosesAt(open), { at: Date.parse('2026-05-01T12:13:00.000Z'), exact: false });
  const out = remediatorStatusPage([open], [], { now: t0 });
  assert.match(text(out), /open : 3 of 3 restarts in the last 15 min\. No restart until it closes: by itself at the latest at 2026-05-01 12:13:00Z \(in 13 min\), once its restarts are older than 15 min; or close it now:/);
  assert.match(out, /<code id="close-qwen3:a">curl -X POST -H "Authorization: Bearer \$TOKEN" <span data-href="api\/v1\/targets\/qwen3%3Aa\/circuit\/close">\$REMEDIATOR_URL\/api\/v1\/targets\/qwen3%3Aa\/circuit\/close<\/span><\/code><button type="button" data-copy="close-qwen3:a">copy<\/button>/);
  // With closes_at: that instant, exactly.
  const exact = remediatorStatusPage([{ ...open, circuit: { ...open.circuit, closes_at: '2026-05-01T12:05:30.000Z' } }], [], { now: t0 });
  assert.match(text(exact), /by itself at 2026-05-01 12:05:30Z \(in 5 min 30 s\)/);
});
