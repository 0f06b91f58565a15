// webhook: how fast the remediator answers Alertmanager, and that a storm of copies of one alert
// restarts once. Latency is the whole HTTP exchange (request sent -> response body read) over
// kept-alive connections (undici Pool), as Alertmanager sends.
import { join } from 'node:path';
import { Pool } from 'undici';
import { benchTarget, startBenchRemediator, webhookPayload } from './lib/remediator.ts';
import { getJson, waitFor } from './lib/net.ts';
import { memoryMB } from './lib/procs.ts';
import { startSim } from './lib/product.ts';
import { percentile, value } from './lib/stats.ts';
import type { BenchContext, Figure, Suite, SuiteResult } from './lib/types.ts';

const p99Goal = { op: '<', value: 20, on: 'median', text: 'p99 < 20 ms' } as const;

interface Action { target?: string; outcome?: string }

export const webhook: Suite = {
  name: 'webhook',
  summary: 'POST /webhook latency (p50/p99), sequential and 50 concurrent senders; 1,000 copies of one alert -> actions',
  estimate: { quick: 15, full: 60 },
  async run(ctx: BenchContext, out: SuiteResult) {
    const quick = ctx.mode === 'quick';
    const rounds = quick ? 1 : 3;
    const sequential = quick ? 1000 : 3000;
    const perSender = quick ? 40 : 100;
    const senders = 50;
    const sim = await startSim(ctx.procs, ctx.product, 'webhook-sim', [], join(ctx.dir, 'webhook-sim.log'), ctx.signal);
    const rem = await startBenchRemediator(ctx, 'webhook-remediator', sim.base);
    const headers = { 'content-type': 'application/json', authorization: `Bearer ${rem.token}` };
    const post = async (pool: Pool, body: string): Promise<{ ms: number; status: number }> => {
      const t0 = performance.now();
      const res = await pool.request({ path: '/webhook', method: 'POST', headers, body });
      await res.body.arrayBuffer();
      return { ms: performance.now() - t0, status: res.statusCode };
    };

    // 1. 1,000 concurrent copies of one firing alert: exactly one action.
    const storm = { startsAt: new Date(Date.now() - 20_000).toISOString() };
    const stormBody = JSON.stringify(webhookPayload({ alertname: 'LLMServerDown', target: benchTarget, remediate: 'restart', severity: 'critical' }, 'a1b2c3d4e5f60718', storm.startsAt));
    const stormPool = new Pool(rem.url, { connections: 256 });
    const t0 = performance.now();
    const replies = await Promise.all(Array.from({ length: 1000 }, () => post(stormPool, stormBody).catch(() => ({ ms: Number.NaN, status: 0 }))));
    const stormSeconds = (performance.now() - t0) / 1000;
    await stormPool.close();
    const accepted = replies.filter((r) => r.status === 200).length;
    // The action runs in the background: wait until none is running any more.
    const actions = await waitFor('the storm\'s action to finish', 60_000, async () => {
      const body = await getJson<{ actions: Action[] }>(`${rem.url}/api/v1/actions`);
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
    const add = (id: string, label: string, ms: number, goal?: typeof p99Goal) => {
      const f: Figure = figures.get(id) ?? { id, label, unit: 'ms', samples: [], goal };
      f.samples.push(value(ms));
      figures.set(id, f);
    };
    let rejected = 0;
    for (let round = 0; round < rounds; round++) {
      for (const [kind, body] of Object.entries(payloads)) {
        ctx.signal.throwIfAborted();
        const one = new Pool(rem.url, { connections: 1 });
        for (let i = 0; i < 100; i++) await post(one, body); // warm-up
        const seq: number[] = [];
        for (let i = 0; i < sequential; i++) {
          const r = await post(one, body);
          if (r.status !== 200) rejected++;
          seq.push(r.ms);
        }
        await one.close();
        const many = new Pool(rem.url, { connections: senders });
        const conc: number[] = [];
        const c0 = performance.now();
        await Promise.all(
          Array.from({ length: senders }, async () => {
            for (let i = 0; i < perSender; i++) {
              const r = await post(many, body);
              if (r.status !== 200) rejected++;
              conc.push(r.ms);
            }
          }),
        );
        const rate = conc.length / ((performance.now() - c0) / 1000);
        await many.close();
        const what = kind === 'matching' ? 'matching alert (target in cooldown)' : 'alert without the match label';
        add(`webhook.${kind}.sequential.p50`, `sequential, ${what}: p50`, percentile(seq, 50));
        add(`webhook.${kind}.sequential.p99`, `sequential, ${what}: p99`, percentile(seq, 99), p99Goal);
        add(`webhook.${kind}.concurrent.p50`, `${senders} concurrent senders, ${what}: p50`, percentile(conc, 50));
        add(`webhook.${kind}.concurrent.p99`, `${senders} concurrent senders, ${what}: p99`, percentile(conc, 99), p99Goal);
        const tput: Figure = figures.get(`webhook.${kind}.concurrent.rate`) ?? { id: `webhook.${kind}.concurrent.rate`, label: `${senders} concurrent senders, ${what}: requests/s`, unit: '/s', samples: [] };
        tput.samples.push(value(rate));
        figures.set(tput.id, tput);
      }
    }
    out.figures.push(...figures.values());
    // The idle figure (scale) is a remediator that has not acted; this one has run its action and
    // answered every request above, so it holds what an action loads (execa) and what the load left.
    out.figures.push({ id: 'webhook.remediator.rss', label: 'remediator after the storm, its action and the latency rounds: RSS', unit: 'MB', samples: [value(memoryMB(rem.child.pid).rss)] });
    const after = await getJson<{ actions: Action[] }>(`${rem.url}/api/v1/actions`);
    const total = after?.actions.filter((a) => a.target === benchTarget).length ?? Number.NaN;
    out.notes.push(
      `Remediator with one target whose action is \`command: [/bin/true]\` (cooldown 10m, confirm off), pointed at a simulator; Bearer token auth; keep-alive connections (undici Pool). Per round: 100 warm-up requests, then ${sequential} sequential requests over one connection and ${senders} senders x ${perSender} requests over ${senders} connections; ${rounds} round(s), each figure's samples are the rounds' percentiles.`,
      `Latency requests not answered 200: ${rejected}. Actions after all the latency rounds: ${total} (expected 1: the matching alert began before the storm's restart, so the cooldown holds it).`,
    );
  },
};
