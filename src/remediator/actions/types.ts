import type { z } from 'zod';
import type { Logger } from '../../lib/log.ts';
import type { Clock } from '../clock.ts';
import type { TargetRecord } from '../state.ts';

/** Why an action runs: for logs and a command's environment, never spliced into argv. Sanitised. */
export interface RestartContext {
  alertname: string;
  fingerprint: string;
}

/** Where a server is reached: a host (a name, or an IP literal without brackets) and a TCP port. */
export interface Endpoint {
  host: string;
  port: number;
}

export interface ActionOutcome {
  ok: boolean;
  message: string;
}

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
  /** What the server's manager says of its start-up; undefined when the action cannot tell. */
  starting(): Promise<StartingState | undefined>;
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
