import type { Agent } from 'undici';
import { z } from 'zod';
import { positiveDuration } from '../../config/fields.ts';
import { discard } from '../../probing/http.ts';
import { listenerHeldBy, withDescendants } from './proc.ts';
import { defineAction, type Action, type ActionDeps, type ActionOutcome, type Endpoint, type StartingState } from './types.ts';

export const dockerSchema = z.strictObject({
  action: z.literal('docker').describe('The action kind.'),
  container: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'a container name or id').describe('The container that runs the model server.'),
  socket: z.string().min(1).default('/var/run/docker.sock').describe("The Docker Engine API's unix socket."),
  stop_timeout: positiveDuration.default(30_000).describe('How long Docker waits after SIGTERM before SIGKILL (the restart `t`).'),
  timeout: positiveDuration.default(120_000).describe('The restart call may take this long.'),
  cooldown: positiveDuration.default(120_000).describe('After a restart, alerts for this target are not acted on for this long (a new failure after a heal passes it).'),
});
type DockerConfig = z.output<typeof dockerSchema>;

interface ContainerState {
  Status?: string;
  Running?: boolean;
  Restarting?: boolean;
  StartedAt?: string;
  Pid?: number;
  Health?: { Status?: string };
}

/** What /containers/NAME/json says of a container's ports. */
interface ContainerNetwork {
  HostConfig?: { NetworkMode?: string };
  NetworkSettings?: { Ports?: Record<string, Array<{ HostIp?: string; HostPort?: string }> | null> | null };
}

/**
 * Docker owns the server: POST /containers/NAME/restart on the Engine API (its unix socket, with
 * undici; no docker CLI needed). The container's start time and health status ("starting" while
 * its HEALTHCHECK has not passed yet) tell a server somebody just started.
 */
class DockerAction implements Action {
  readonly kind = 'docker';
  readonly #c: DockerConfig;
  readonly #d: ActionDeps;
  #agent: Promise<Agent> | undefined;
  #closing: Promise<void> | undefined;

  constructor(config: DockerConfig, deps: ActionDeps) {
    this.#c = config;
    this.#d = deps;
  }

  // undici is loaded with the first call, not with every remediator (~6 MB of RSS).
  #connect(): Promise<Agent> {
    if (this.#closing) return Promise.reject(new Error('the docker action is stopped'));
    this.#agent ??= import('undici').then(({ Agent }) => new Agent({ connect: { socketPath: this.#c.socket } }));
    return this.#agent;
  }

  async #call(method: 'GET' | 'POST', path: string, timeout: number) {
    const [{ request }, dispatcher] = await Promise.all([import('undici'), this.#connect()]);
    return request(`http://docker${path}`, { method, dispatcher, headersTimeout: timeout, bodyTimeout: timeout, signal: AbortSignal.timeout(timeout) });
  }

  async restart(): Promise<ActionOutcome> {
    const name = encodeURIComponent(this.#c.container);
    try {
      const res = await this.#call('POST', `/containers/${name}/restart?t=${Math.ceil(this.#c.stop_timeout / 1000)}`, this.#c.timeout);
      const text = await res.body.text();
      if (res.statusCode === 204) return { ok: true, message: `docker restart ${this.#c.container}` };
      const message = (JSON.parse(text || '{}') as { message?: string }).message ?? text;
      return { ok: false, message: `docker restart ${this.#c.container}: HTTP ${res.statusCode}: ${message.slice(0, 300)}` };
    } catch (err) {
      this.#d.logger.error({ target: this.#d.target, container: this.#c.container, err: (err as Error).message }, 'docker restart failed');
      return { ok: false, message: `docker restart ${this.#c.container}: ${(err as Error).message}` };
    }
  }

  async starting(): Promise<StartingState | undefined> {
    try {
      const res = await this.#call('GET', `/containers/${encodeURIComponent(this.#c.container)}/json`, 10_000);
      if (res.statusCode !== 200) {
        discard(res.body);
        return undefined;
      }
      const state = ((await res.body.json()) as { State?: ContainerState }).State ?? {};
      const restarting = state.Restarting === true || state.Status === 'restarting';
      const health = state.Health?.Status;
      // Its start time counts only while it runs: a container that exited soon after its start is
      // not starting, however recent that start.
      const since = state.Status === 'running' && state.StartedAt ? Date.parse(state.StartedAt) : Number.NaN;
      return {
        starting: restarting || (state.Status === 'running' && health === 'starting'),
        ...(Number.isFinite(since) ? { since } : {}),
        detail: `container ${this.#c.container} ${state.Status ?? '?'}${health ? ` (health ${health})` : ''}`,
      };
    } catch {
      return undefined;
    }
  }

  /**
   * Whether the container is what answers at the address: it must be running, and publish that
   * port on the host (NetworkSettings.Ports); on the host's network, its processes (State.Pid and
   * descendants) must hold the listening socket. A port it does not publish may still reach it
   * (the container's own address, a proxy in front): it cannot tell (undefined), nor when the
   * Engine API does not answer.
   */
  async identify(address: Endpoint): Promise<ActionOutcome | undefined> {
    const name = this.#c.container;
    let info: { State?: ContainerState } & ContainerNetwork;
    try {
      const res = await this.#call('GET', `/containers/${encodeURIComponent(name)}/json`, 10_000);
      if (res.statusCode !== 200) {
        discard(res.body);
        return undefined;
      }
      info = (await res.body.json()) as typeof info;
    } catch {
      return undefined;
    }
    const state = info.State ?? {};
    if (state.Running !== true) return { ok: false, message: `container ${name} is ${state.Status ?? 'not running'}: what answers on port ${address.port} is not it` };
    if (info.HostConfig?.NetworkMode === 'host') {
      return state.Pid ? listenerHeldBy(address, withDescendants(state.Pid), `container ${name}`) : undefined;
    }
    for (const [port, bindings] of Object.entries(info.NetworkSettings?.Ports ?? {})) {
      if (bindings?.some((b) => Number(b.HostPort) === address.port)) return { ok: true, message: `port ${address.port} is published by container ${name} (${port})` };
    }
    return undefined;
  }

  async start(): Promise<void> {}
  /** Closes the connection pool, once: the remediator may stop an action twice (shutdown). */
  stop(): Promise<void> {
    this.#closing ??= (this.#agent?.then((agent) => agent.close()) ?? Promise.resolve()).catch(() => {});
    return this.#closing;
  }
  kill(): void {}
  pid(): undefined {
    return undefined;
  }
}

export const dockerAction = defineAction({
  name: 'docker',
  description: 'Restarts a container through the Docker Engine API on its unix socket; its start time and health tell a server somebody just started.',
  owns: false,
  schema: dockerSchema,
  create: (config, deps) => new DockerAction(config, deps),
});
