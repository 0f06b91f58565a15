import { z } from 'zod';
import { positiveDuration } from '../../config/fields.ts';
import { childEnv } from './env.ts';
import { signalGroup, terminateGroup } from './signal.ts';
import { defineAction, type Action, type ActionDeps, type ActionOutcome, type RestartContext } from './types.ts';

export const commandSchema = z.strictObject({
  action: z.literal('command').describe('The action kind.'),
  command: z.array(z.string().min(1)).min(1, 'needs at least the program to run').describe('The argv that restarts the server, run without a shell.'),
  cwd: z.string().optional().describe('The working directory it runs in.'),
  env: z.record(z.string(), z.string()).default({}).describe('Its environment, besides PATH, HOME, USER, LOGNAME, LANG, LANGUAGE, LC_ALL, LC_CTYPE, TZ and TMPDIR.'),
  timeout: positiveDuration.default(120_000).describe('The command is ended (its whole process group) after this long: a failure.'),
  cooldown: positiveDuration.default(300_000).describe('After a restart, alerts for this target are not acted on for this long (a new failure after a heal passes it).'),
});
type CommandConfig = z.output<typeof commandSchema>;

export interface CommandActionOptions {
  target: string;
  config: CommandConfig;
  logger: ActionDeps['logger'];
}

const keptOutputChars = 4000;
const killAfterMs = 5000;

/**
 * Runs a fixed argv (e.g. `systemctl restart vllm.service`) without a shell. Alert details reach it
 * only as fixed environment variables, never spliced into argv nor named after labels.
 * It runs in its own process group so a timeout (or a shutdown) ends everything it started; once
 * it exits, a daemon it left behind (`nohup server &`) keeps running and no longer holds it up.
 */
export class CommandAction implements Action {
  readonly kind = 'command';
  readonly owns = false;
  readonly #o: CommandActionOptions;

  constructor(options: CommandActionOptions) {
    this.#o = options;
  }

  /** Process groups of commands running now, ended by stop() so a shutdown is not held up. */
  readonly #running = new Set<number>();

  async start(): Promise<void> {}

  /** Ends the running commands; safe to call again (a group already being ended is not signalled twice). */
  async stop(): Promise<void> {
    for (const pgid of this.#running) this.#end(pgid);
  }

  readonly #ending = new Set<number>();

  /** SIGTERM to the command's group, SIGKILL after killAfterMs if it is still running then. */
  #end(pgid: number): void {
    if (this.#ending.has(pgid)) return;
    this.#ending.add(pgid);
    terminateGroup(pgid);
    setTimeout(() => {
      this.#ending.delete(pgid);
      if (this.#running.has(pgid)) signalGroup(pgid, 'SIGKILL');
    }, killAfterMs).unref();
  }
  pid(): undefined {
    return undefined;
  }

  kill(): void {
    for (const pgid of this.#running) signalGroup(pgid, 'SIGKILL');
  }

  async starting() {
    return undefined;
  }

  async restart(context: RestartContext): Promise<ActionOutcome> {
    const [file, ...args] = this.#o.config.command as [string, ...string[]];
    // execa is loaded when an action first runs a program, not with the remediator (~4 MB of RSS).
    const { execa } = await import('execa');
    const child = execa(file, args, {
      detached: true,
      cleanup: false,
      reject: false,
      buffer: false,
      stdin: 'ignore',
      all: true,
      extendEnv: false,
      env: childEnv({
        ...this.#o.config.env,
        QWEN_SENTINEL_TARGET: this.#o.target,
        QWEN_SENTINEL_ALERTNAME: context.alertname,
        QWEN_SENTINEL_FINGERPRINT: context.fingerprint,
      }),
      ...(this.#o.config.cwd ? { cwd: this.#o.config.cwd } : {}),
    });
    if (child.pid !== undefined) this.#running.add(child.pid);
    let output = '';
    child.all?.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-keptOutputChars)));

    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid !== undefined) this.#end(child.pid);
    }, this.#o.config.timeout);
    // The exit event, not the end of output: a background child may hold the pipes for hours.
    const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    const ended = child.then((r) => ({ code: r.exitCode ?? null, signal: r.signal ?? null, spawnError: r.exitCode === undefined && r.signal === undefined ? r.message : undefined }));
    const result: { code: number | null; signal: string | null; spawnError?: string | undefined } = await Promise.race([exited, ended]);
    clearTimeout(timer);
    this.#running.delete(child.pid ?? -1);
    if (timedOut && child.pid !== undefined) signalGroup(child.pid, 'SIGKILL');
    // The pipes stay open and drained (the output listener keeps only a tail): closing them would
    // kill a daemon the command left behind with SIGPIPE at its next log line.
    void ended.catch(() => {});

    const ok = !timedOut && result.code === 0;
    const message = ok
      ? 'exit 0'
      : timedOut
        ? `timed out after ${this.#o.config.timeout} ms`
        : result.spawnError ?? (result.signal ? `killed by ${result.signal}` : `exit code ${result.code}`);
    this.#o.logger[ok ? 'info' : 'error']({ target: this.#o.target, command: this.#o.config.command, exit_code: result.code, output }, ok ? 'restart command succeeded' : 'restart command failed');
    return { ok, message };
  }
}

export const commandAction = defineAction({
  name: 'command',
  description: 'Runs a fixed argv (e.g. a deploy script), no shell; the alert reaches it only as QWEN_SENTINEL_TARGET, _ALERTNAME and _FINGERPRINT.',
  owns: false,
  schema: commandSchema,
  create: (config, deps) => new CommandAction({ target: deps.target, config, logger: deps.logger }),
});
