/** Why an action runs: handed to it for logs and for the command's environment, never into argv. */
export interface RestartContext {
  alertname: string;
  fingerprint: string;
}

export interface ActionOutcome {
  ok: boolean;
  message: string;
}

/** Lifecycle events the remediator turns into metrics and state. */
export interface ActionHooks {
  /** The managed process started (pid) or is gone (undefined). */
  running(pid: number | undefined): void;
  /** The managed process exited without being asked to. */
  unexpectedExit(detail: { code: number | null; signal: string | null }): void;
}

/** One way of bringing a model server back; one file per kind, as the probes are. */
export interface Action {
  readonly kind: 'process' | 'command';
  /** Called once at start-up: a process action starts the server it owns. */
  start(): Promise<void>;
  restart(context: RestartContext): Promise<ActionOutcome>;
  /** Called at shutdown: a process action stops the server it owns. */
  stop(): Promise<void>;
  /** The pid of the managed server, for `process`. */
  pid(): number | undefined;
}
