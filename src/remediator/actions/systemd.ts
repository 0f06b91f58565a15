import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { positiveDuration } from '../../config/fields.ts';
import { childEnv } from './env.ts';
import { listenerHeldBy, withDescendants } from './proc.ts';
import { defineAction, type Action, type ActionDeps, type ActionOutcome, type Endpoint, type StartingState } from './types.ts';

export const systemdSchema = z.strictObject({
  action: z.literal('systemd').describe('The action kind.'),
  unit: z.string().regex(/^[A-Za-z0-9:_.@\\-]+$/, 'a unit name such as vllm.service').describe('The unit that runs the model server.'),
  user: z.boolean().default(false).describe("The user's service manager (systemctl --user) instead of the system's."),
  systemctl: z.string().min(1).default('systemctl').describe('The systemctl to run (a path, or found on PATH).'),
  timeout: positiveDuration.default(120_000).describe('systemctl restart may take this long (it waits for the unit to stop and start).'),
  cooldown: positiveDuration.default(120_000).describe('After a restart, alerts for this target are not acted on for this long (a new failure after a heal passes it).'),
});
type SystemdConfig = z.output<typeof systemdSchema>;

/** `systemctl show` output: KEY=VALUE lines. */
function properties(text: string): Record<string, string> {
  return Object.fromEntries(text.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

/** CLOCK_MONOTONIC now, in µs: what systemd's *TimestampMonotonic properties count (libuv's hrtime reads it). */
export const monotonicMicros = () => Number(process.hrtime.bigint() / 1000n);

/**
 * What `systemctl --user` needs to reach the user's service manager, besides childEnv's variables:
 * its runtime directory (where the manager's socket is: XDG_RUNTIME_DIR, /run/user/UID by default)
 * and the session bus, when the remediator has one.
 */
export function userManagerEnv(from: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const uid = process.getuid?.();
  const runtime = from.XDG_RUNTIME_DIR ?? (uid === undefined ? undefined : `/run/user/${uid}`);
  return { ...(runtime ? { XDG_RUNTIME_DIR: runtime } : {}), ...(from.DBUS_SESSION_BUS_ADDRESS ? { DBUS_SESSION_BUS_ADDRESS: from.DBUS_SESSION_BUS_ADDRESS } : {}) };
}

/**
 * systemd owns the server: `systemctl restart UNIT` stops its whole control group (SIGTERM, then
 * SIGKILL after TimeoutStopSec) and starts it again. The unit's ActiveState and the time it
 * entered it tell the remediator that somebody (boot, a person, systemd's own Restart=) just
 * started it, so it is left to load.
 */
class SystemdAction implements Action {
  readonly kind = 'systemd';
  readonly #c: SystemdConfig;
  readonly #d: ActionDeps;

  constructor(config: SystemdConfig, deps: ActionDeps) {
    this.#c = config;
    this.#d = deps;
  }

  async #systemctl(args: string[], timeout: number) {
    const user = this.#c.user;
    // execa is loaded when an action first runs a program, not with the remediator (~4 MB of RSS).
    const { execa } = await import('execa');
    return execa(this.#c.systemctl, [...(user ? ['--user'] : []), ...args], { reject: false, timeout, stdin: 'ignore', extendEnv: false, env: childEnv(user ? userManagerEnv() : {}) });
  }

  async restart(): Promise<ActionOutcome> {
    const r = await this.#systemctl(['restart', this.#c.unit], this.#c.timeout);
    if (r.exitCode === 0) return { ok: true, message: `systemctl restart ${this.#c.unit}` };
    const why = r.timedOut ? `timed out after ${this.#c.timeout} ms` : r.exitCode === undefined ? r.message : `exit code ${r.exitCode}: ${String(r.stderr).trim().slice(0, 300)}`;
    this.#d.logger.error({ target: this.#d.target, unit: this.#c.unit, err: why }, 'systemctl restart failed');
    return { ok: false, message: `systemctl restart ${this.#c.unit}: ${why}` };
  }

  /**
   * The unit's state, and when it last became active. Read as ActiveEnterTimestampMonotonic
   * (CLOCK_MONOTONIC µs, in every systemd; `--timestamp=unix` needs systemd 251, and the default
   * timestamp text depends on locale and time zone), turned into Unix ms against our own
   * CLOCK_MONOTONIC. That start counts only while the unit is up: a unit that failed soon after it
   * started is not starting.
   */
  async starting(): Promise<StartingState | undefined> {
    const r = await this.#systemctl(['show', this.#c.unit, '--property=ActiveState,SubState,ActiveEnterTimestampMonotonic'], 10_000);
    if (r.exitCode !== 0) return undefined;
    const p = properties(String(r.stdout));
    const active = p.ActiveState ?? '?';
    const enteredUs = Number(p.ActiveEnterTimestampMonotonic ?? '0');
    const up = active === 'active' || active === 'activating' || active === 'reloading';
    const since = up && Number.isFinite(enteredUs) && enteredUs > 0 ? Math.round(this.#d.clock.wall() - (monotonicMicros() - enteredUs) / 1000) : undefined;
    return {
      starting: active === 'activating' || active === 'reloading',
      ...(since === undefined ? {} : { since }),
      detail: `unit ${this.#c.unit} ${active}/${p.SubState ?? '?'}`,
    };
  }

  /**
   * Whether the unit's processes hold the socket listening at the address: those of its control
   * group (cgroup.procs under /sys/fs/cgroup), or MainPID and its descendants when that cannot be
   * read. A unit that is not up is not what answers. It cannot tell (undefined) when the unit runs
   * without a main process (Type=oneshot), when systemctl cannot be asked, or when its processes
   * belong to another user whose file descriptors an unprivileged remediator may not read.
   */
  async identify(address: Endpoint): Promise<ActionOutcome | undefined> {
    const unit = `unit ${this.#c.unit}`;
    const r = await this.#systemctl(['show', this.#c.unit, '--property=ActiveState,MainPID,ControlGroup'], 10_000);
    if (r.exitCode !== 0) return undefined;
    const p = properties(String(r.stdout));
    const active = p.ActiveState ?? '?';
    if (!['active', 'activating', 'reloading'].includes(active)) return { ok: false, message: `${unit} is ${active}: what answers on port ${address.port} is not it` };
    const main = Number(p.MainPID ?? '0');
    const pids = cgroupProcesses(p.ControlGroup) ?? (Number.isInteger(main) && main > 0 ? withDescendants(main) : []);
    return pids.length === 0 ? undefined : listenerHeldBy(address, pids, unit);
  }

  async start(): Promise<void> {}
  /** Nothing to stop: systemd runs the server. Safe to call any number of times. */
  async stop(): Promise<void> {}
  kill(): void {}
  pid(): undefined {
    return undefined;
  }
}

/** The processes of a control group (cgroup v2, or v1's systemd hierarchy); undefined when unreadable. */
function cgroupProcesses(group: string | undefined): number[] | undefined {
  if (!group?.startsWith('/') || group.includes('..')) return undefined;
  for (const root of ['/sys/fs/cgroup', '/sys/fs/cgroup/systemd']) {
    try {
      return readFileSync(`${root}${group}/cgroup.procs`, 'utf8').split('\n').filter(Boolean).map(Number);
    } catch {
      // not this hierarchy
    }
  }
  return undefined;
}

export const systemdAction = defineAction({
  name: 'systemd',
  description: 'systemctl restart UNIT; the unit\'s ActiveState and ActiveEnterTimestampMonotonic tell a server somebody just started.',
  owns: false,
  schema: systemdSchema,
  create: (config, deps) => new SystemdAction(config, deps),
});
