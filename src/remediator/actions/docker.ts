import type { Agent } from 'undici';
import { z } from 'zod';
import { positiveDuration } from '../../config/fields.ts';
import { discard } from '../../probing/http.ts';
import { defineAction, type Action, type ActionDeps, type ActionOutcome, type StartingState } from './types.ts';

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
  Restarting?: boolean;
  StartedAt?: string;
  Health?: { Status?: string };
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
