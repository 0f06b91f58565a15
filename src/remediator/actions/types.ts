import type { z } from 'zod';
import type { Logger } from '../../lib/log.ts';
import type { Clock } from '../clock.ts';
import type { TargetRecord, Verdict } from '../state.ts';

/** Why an action runs: for logs and a command's environment, never spliced into argv. Sanitised. */
export interface RestartContext {
  alertname: string;
  fingerprint: string;
  /**
   * The alert's labels, for an action that acts on what the alert names (a pod): given only to one
   * with refuse(), which has checked them before any stage ran. None for an exit of an owned server.
   */
  labels?: Readonly<Record<string, string>> | undefined;
}

/** Where a server is reached: a host (a name, or an IP literal without brackets) and a TCP port. */
export interface Endpoint {
  host: string;
  port: number;
}

export type { Verdict };

export interface ActionOutcome {
  ok: boolean;
  message: string;
  verdict?: Verdict | undefined;
}

/** Where the check of a server should reach it, when that is not the target URL's host. */
export type ProbeHost = { host: string } | { host?: undefined; message: string };

/** What an action can see of a server it does not own (a systemd unit, a container). */
export interface StartingState {
  /** It says it is starting (unit activating, container restarting or health "starting"). */
  starting: boolean;
  /** When it last (re)started, Unix ms, when that is known. */
  since?: number;
  detail: string;
}

/** Lifecycle events the remediator turns into state, metrics and decisions. */
export interface ActionHooks {
  /** The owned server started (pid) or is gone (undefined). */
  running(pid: number | undefined): void;
  /** The owned server exited without being asked to. */
  unexpectedExit(detail: { code: number | null; signal: string | null }): void;
}

export interface ActionDeps {
  target: string;
  logger: Logger;
  hooks: ActionHooks;
  /** The target's state record: an owning action keeps its server's identity here. */
  record: TargetRecord;
  persist: () => Promise<void>;
  clock: Clock;
  /** Where an owned server's output goes (tests silence it). */
  stdio?: 'inherit' | 'ignore' | undefined;
}

/** One way of bringing a model server back; one file per kind, in the table in index.ts. */
export interface Action {
  readonly kind: string;
  /** Called once at start-up: an owning action adopts its server, or starts it. */
  start(): Promise<void>;
  restart(context: RestartContext): Promise<ActionOutcome>;
  /** Called at shutdown: an owning action stops its server; a running command is ended. */
  stop(): Promise<void>;
  /** A second signal during shutdown: end everything now. */
  kill(): void;
  /**
   * What the server's manager says of its start-up; undefined when the action cannot tell. labels:
   * the alert's, for an action whose alert names the instance (a pod) to look at.
   */
  starting(labels?: Readonly<Record<string, string>>): Promise<StartingState | undefined>;
  /**
   * Why an alert cannot be acted on by this action (a label it needs is missing or malformed):
   * the decision is `invalid` and nothing is done. undefined: it can.
   */
  refuse?(labels: Readonly<Record<string, string>>): string | undefined;
  /**
   * Where the checks reach the server instead of the target URL's host (same port and path):
   * `confirm`, the instance the alert names; `verify`, after restart(), the instance that replaced
   * it. A message instead of a host: there is nothing to check yet (not answering, and why).
   * Without this hook, the URL as configured.
   */
  probeHost?(purpose: 'confirm' | 'verify', context: RestartContext): Promise<ProbeHost>;
  /** The pid of an owned server. */
  pid(): number | undefined;
  /**
   * Whether what listens at this address is the server the action started or manages (its process
   * group, the unit's processes, the container): ok, or not with why; undefined when it cannot
   * tell. A restart counts as answering only when this is not `false`: another process answering
   * on the port (a stranger's server, one left behind) is not the server restarted.
   */
  identify?(address: Endpoint): Promise<ActionOutcome | undefined>;
}

export interface ActionKind<S extends z.ZodType = z.ZodType> {
  readonly name: string;
  readonly description: string;
  /** The remediator starts and owns the server (it must never run two of them). */
  readonly owns: boolean;
  /** An owned server that exits unasked is started again at once (its own config says whether). */
  restartsOnExit?(config: z.output<S>): boolean;
  /** The action's own config fields, `action: NAME` included. */
  readonly schema: S;
  create(config: z.output<S>, deps: ActionDeps): Action;
}

export const defineAction = <S extends z.ZodType>(kind: ActionKind<S>): ActionKind<S> => kind;
