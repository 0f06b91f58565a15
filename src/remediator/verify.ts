// Does the server answer? The listing and a one-token generation, in the server type's own dialect
// (the probing core's own probes): the remediator's confirm stage and its check after a restart.
import { Registry } from '../lib/prom-client.ts';
import { moduleFields, resolveModule, type Module, type Target } from '../probing/module.ts';
import { runRound } from '../probing/round.ts';
import { SeriesStore } from '../probing/series.ts';
import { serverNames, type ServerName } from '../servers/index.ts';
import type { Endpoint } from './actions/types.ts';
import type { Clock } from './clock.ts';

export interface Verifier {
  /** One check, within timeoutMs; host: instead of the URL's (an instance's address, see Action.probeHost). */
  answers(target: string, timeoutMs: number, host?: string): Promise<{ ok: boolean; message: string }>;
  /** Where the check reaches the target (its URL's host and port): what answers there is checked to be the target's own server. */
  address?(target: string, host?: string): Endpoint | undefined;
}

/** The URL with another host (a name or an IP literal, IPv6 without brackets); port and path kept. */
export function withHost(url: string, host: string | undefined): string {
  if (host === undefined) return url;
  const u = new URL(url);
  u.hostname = host.includes(':') ? `[${host}]` : host;
  return u.toString().replace(/\/$/, url.endsWith('/') ? '/' : '');
}

/** The host and port a base URL reaches. */
export function addressOf(url: string): Endpoint | undefined {
  try {
    const u = new URL(url);
    const port = u.port === '' ? (u.protocol === 'https:' ? 443 : 80) : Number(u.port);
    return { host: u.hostname.replace(/^\[(.*)\]$/, '$1'), port };
  } catch {
    return undefined;
  }
}

/**
 * A module of models + a one-token chat for each server type: the smallest proof of life. It asks
 * whether the server answers now: a count of generated tokens that stood still for a second while
 * the one token was waited for is no answer (a busy server's count moves, and the check waits on
 * to its deadline), so a hung server is told in a second, not at the check's deadline.
 */
export const checkStallMs = 1000;
const checkModules = Object.fromEntries(
  serverNames.map((server) => {
    const fields = moduleFields.parse({ server, probes: ['models', 'chat'], chat: { max_tokens: 1, stall_timeout: `${checkStallMs}ms` } });
    const fail = () => { throw new Error(`the verify module for ${server} is invalid`); };
    return [server, resolveModule(`verify-${server}`, fields, [], { addIssue: fail } as never) ?? fail()];
  }),
) as Record<ServerName, Module>;

export function probeVerifier(o: { targets: () => ReadonlyMap<string, Target>; apiKey: (t: Target) => string | undefined; clock: Clock }): Verifier {
  return {
    address(name, host) {
      const target = o.targets().get(name);
      return target ? addressOf(withHost(target.url, host)) : undefined;
    },
    async answers(name, timeoutMs, host) {
      const target = o.targets().get(name);
      if (!target) return { ok: false, message: 'no such target' };
      const module = checkModules[target.server];
      const store = new SeriesStore(new Registry(), { targetLabel: false, cumulative: false });
      const report = await runRound({
        target: { name, url: withHost(target.url, host), model: target.model, timeout: timeoutMs, apiKey: o.apiKey(target) },
        module,
        store,
        stop: new AbortController().signal,
        now: () => o.clock.now(),
        deadline: o.clock.now() + timeoutMs,
      });
      const failed = report.probes.find((p) => !p.success);
      return report.up ? { ok: true, message: 'answers' } : { ok: false, message: failed ? `${failed.probe}: ${failed.reason}: ${failed.message}` : 'no answer' };
    },
  };
}
