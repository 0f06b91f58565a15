// webhook: how fast the remediator answers Alertmanager, and that a storm of copies of one alert
// restarts once. Latency is the whole HTTP exchange (request sent -> response body read) over
// kept-alive connections (undici Pool), as Alertmanager sends; beside it, in the same run from the
// same senders, a bare node:http server answering 200: the floor Node itself sets on these cores.
import { join } from 'node:path';
import { Pool } from 'undici';
import { startBareServer } from './lib/bare-server.ts';
import { benchTarget, startBenchRemediator, webhookPayload } from './lib/remediator.ts';
import { getJson, waitFor } from './lib/net.ts';
import { memoryMB } from './lib/procs.ts';
import { startSim } from './lib/product.ts';
import { percentile, value } from './lib/stats.ts';
import type { BenchContext, Figure, Suite, SuiteResult } from './lib/types.ts';

const p99Goal = { op: '<', value: 20, on: 'median', text: 'p99 < 20 ms' } as const;
const ratioGoal = { op: '<=', value: 2, on: 'median', text: "<= 2x the bare server's (issue 18)" } as const;

interface Action { target?: string; outcome?: string }

export const webhook: Suite = {
  name: 'webhook',
  summary: 'POST /webhook latency (p50/p99), sequential and 50 concurrent senders, beside a bare node:http server; 1,000 copies of one alert -> actions',
  estimate: { quick: 30, full: 120 },
  async run(ctx: BenchContext, out: SuiteResult) {
    const quick = ctx.mode === 'quick';
    const rounds = quick ? 1 : 3;
    const sequential = quick ? 1000 : 3000;
    const perSender = quick ? 40 : 100;
    const senders = 50;
    const sim = await startSim(ctx.procs, ctx.product, 'webhook-sim', [], join(ctx.dir, 'webhook-sim.log'), ctx.signal);
    const remediator = await startBenchRemediator(ctx, 'webhook-remediator', sim.base);
    const bare = await startBareServer(ctx, 'webhook-bare-node');
    const headers = { 'content-type': 'application/json', authorization: `Bearer ${remediator.token}` };
    const post = async (pool: Pool, body: string, hdrs: Record<string, string> = headers): Promise<{ ms: number; status: number }> => {
      const t0 = performance.now();
      const res = await pool.request({ path: '/webhook', method: 'POST', headers: hdrs, body });
      await res.body.arrayBuffer();
      return { ms: performance.now() - t0, status: res.statusCode };
    };

    // 1. 1,000 concurrent copies of one firing alert: exactly one action.
    const storm = { startsAt: new Date(Date.now() - 20_000).toISOString() };
    const stormBody = JSON.stringify(webhookPayload({ alertname: 'LLMServerDown', target: benchTarget, remediate: 'restart', severity: 'critical' }, 'a1b2c3d4e5f60718', storm.startsAt));
    const stormPool = new Pool(remediator.url, { connections: 256 });
    const t0 = performance.now();
    const replies = await Promise.all(Array.from({ length: 1000 }, () => post(stormPool, stormBody).catch(() => ({ ms: Number.NaN, status: 0 }))));
    const stormSeconds = (performance.now() - t0) / 1000;
    await stormPool.close();
    const accepted = replies.filter((r) => r.status === 200).length;
    // The action runs in the background: wait until none is running any more.
    const actions = await waitFor('the storm\'s action to finish', 60_000, async () => {
      const body = await getJson<{ actions: Action[] }>(`${remediator.url}/api/v1/actions`);
      const mine = body?.actions.filter((a) => a.target === benchTarget);
      return mine && mine.length > 0 && mine.every((a) => a.outcome !== 'running') ? mine : undefined;
    }, ctx.signal, 250).catch(() => [] as Action[]);
    out.figures.push(
      { id: 'webhook.storm.actions', label: '1,000 concurrent copies of one alert: actions run', unit: 'count', samples: [value(actions.length)], goal: { op: '==', value: 1, on: 'max', text: 'exactly 1' }, note: `outcome ${actions.map((a) => a.outcome).join(', ') || 'none'}` },
      { id: 'webhook.storm.accepted', label: '1,000 concurrent copies: answered 200', unit: 'count', samples: [value(accepted)] },
      { id: 'webhook.storm.p99', label: '1,000 concurrent copies (256 connections): p99 latency', unit: 'ms', samples: [value(percentile(replies.filter((r) => r.status === 200).map((r) => r.ms), 99))] },
      { id: 'webhook.storm.seconds', label: '1,000 concurrent copies: all answered after', unit: 's', samples: [value(stormSeconds)] },
    );

    // 2. Latency. Two payloads: one decided without reaching a target (no `remediate` label: the
    // HTTP path, auth, parsing, validation), and a matching alert for the target that began before
    // the storm's restart, so the stages hold it in cooldown (the same path plus the decision
    // stages, which run after the answer; the first copy decides `cooldown`, the rest `duplicate`
    // or `cooldown`, never an action).
    const payloads = {
      not_matching: JSON.stringify(webhookPayload({ alertname: 'LLMServerSaturated', target: benchTarget, severity: 'warning' }, '0f1e2d3c4b5a6978', new Date().toISOString())),
      matching: JSON.stringify(webhookPayload({ alertname: 'LLMServerHung', target: benchTarget, remediate: 'restart', severity: 'critical' }, '1234abcd5678ef90', storm.startsAt)),
    };
    const figures = new Map<string, Figure>();
    const add = (id: string, label: string, ms: number, goal?: Figure['goal'], unit = 'ms') => {
      const f: Figure = figures.get(id) ?? { id, label, unit, samples: [], goal };
      f.samples.push(value(ms));
      figures.set(id, f);
    };
    let rejected = 0;
    // One measurement: warm-up, sequential over one connection, then the senders at once.
    const measure = async (url: string, hdrs: Record<string, string>, body: string) => {
      const one = new Pool(url, { connections: 1 });
      for (let i = 0; i < 100; i++) await post(one, body, hdrs); // warm-up
      const seq: number[] = [];
      for (let i = 0; i < sequential; i++) {
        const r = await post(one, body, hdrs);
        if (r.status !== 200) rejected++;
        seq.push(r.ms);
      }
      await one.close();
      const many = new Pool(url, { connections: senders });
      const conc: number[] = [];
      const c0 = performance.now();
      await Promise.all(
        Array.from({ length: senders }, async () => {
          for (let i = 0; i < perSender; i++) {
            const r = await post(many, body, hdrs);
            if (r.status !== 200) rejected++;
            conc.push(r.ms);
          }
        }),
      );
      const rate = conc.length / ((performance.now() - c0) / 1000);
      await many.close();
      return { seq, conc, rate };
    };
    for (let round = 0; round < rounds; round++) {
      for (const [kind, body] of Object.entries(payloads)) {
        ctx.signal.throwIfAborted();
        // The bare server gets the same body from the same senders, right before or after (the
        // order alternates by round), so both meet the same machine.
        const bareFirst = round % 2 === 1;
        const bareRun = bareFirst ? await measure(bare.url, headers, body) : undefined;
        const ours = await measure(remediator.url, headers, body);
        const b = bareRun ?? (await measure(bare.url, headers, body));
        const what = kind === 'matching' ? 'matching alert (target in cooldown)' : 'alert without the match label';
        add(`webhook.${kind}.sequential.p50`, `sequential, ${what}: p50`, percentile(ours.seq, 50));
        add(`webhook.${kind}.sequential.p99`, `sequential, ${what}: p99`, percentile(ours.seq, 99), p99Goal);
        add(`webhook.${kind}.concurrent.p50`, `${senders} concurrent senders, ${what}: p50`, percentile(ours.conc, 50));
        add(`webhook.${kind}.concurrent.p99`, `${senders} concurrent senders, ${what}: p99`, percentile(ours.conc, 99), p99Goal);
        add(`webhook.${kind}.concurrent.rate`, `${senders} concurrent senders, ${what}: requests/s`, ours.rate, undefined, '/s');
        add(`webhook.${kind}.bare.sequential.p99`, `reference: a bare node:http server, the same body, sequential: p99`, percentile(b.seq, 99));
        add(`webhook.${kind}.bare.concurrent.p99`, `reference: a bare node:http server, the same body, ${senders} concurrent senders: p99`, percentile(b.conc, 99));
        add(`webhook.${kind}.sequential.p99_ratio`, `sequential, ${what}: p99 / the bare server's`, percentile(ours.seq, 99) / percentile(b.seq, 99), undefined, 'x');
        add(`webhook.${kind}.concurrent.p99_ratio`, `${senders} concurrent senders, ${what}: p99 / the bare server's`, percentile(ours.conc, 99) / percentile(b.conc, 99), ratioGoal, 'x');
      }
    }
    out.figures.push(...figures.values());
    // The idle figure (scale) is a remediator that has not acted; this one has run its action and
    // answered every request above, so it holds what an action loads (execa) and what the load left.
    out.figures.push({ id: 'webhook.remediator.rss', label: 'remediator after the storm, its action and the latency rounds: RSS', unit: 'MB', samples: [value(memoryMB(remediator.child.pid).rss)] });
    const after = await getJson<{ actions: Action[] }>(`${remediator.url}/api/v1/actions`);
    const total = after?.actions.filter((a) => a.target === benchTarget).length ?? Number.NaN;
    await bare.child.stop(2000);
    out.notes.push(
      `Remediator with one target whose action is \`command: [/bin/true]\` (cooldown 10m, confirm off), pointed at a simulator; Bearer token auth; keep-alive connections (undici Pool). Per round: 100 warm-up requests, then ${sequential} sequential requests over one connection and ${senders} senders x ${perSender} requests over ${senders} connections; ${rounds} round(s), each figure's samples are the rounds' percentiles.`,
      `Beside it, in the same run: a bare node:http server (bench/lib/bare-server.ts: its own process, reads the body, answers 200 with a small JSON body, Node's defaults) gets the same requests (same body and headers) from the same senders right after the remediator's (before it in odd rounds); the ratio row is the remediator's p99 over the bare server's of the same round and payload, so machine load that hits both cancels out.`,
      `Latency requests not answered 200 (both servers): ${rejected}. Actions after all the latency rounds: ${total} (expected 1: the matching alert began before the storm's restart, so the cooldown holds it).`,
    );
  },
};
