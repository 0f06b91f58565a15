import { execa } from 'execa';
import type { Remediation } from '../../config/schema.ts';
import type { Logger } from '../../log.ts';
import type { Action, ActionOutcome, RestartContext } from './types.ts';

type CommandConfig = Extract<Remediation, { action: 'command' }>;

export interface CommandActionOptions {
  target: string;
  config: CommandConfig;
  logger: Logger;
}

const maxOutputBytes = 64 * 1024;

/**
 * Runs a fixed argv (e.g. `systemctl restart vllm.service`) without a shell. Alert details reach it
 * only as fixed environment variables, never spliced into argv nor named after labels.
 */
export class CommandAction implements Action {
  readonly kind = 'command';
  readonly #o: CommandActionOptions;

  constructor(options: CommandActionOptions) {
    this.#o = options;
  }

  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  pid(): undefined {
    return undefined;
  }

  async restart(context: RestartContext): Promise<ActionOutcome> {
    const [file, ...args] = this.#o.config.command as [string, ...string[]];
    const result = await execa(file, args, {
      reject: false,
      stdin: 'ignore',
      all: true,
      maxBuffer: maxOutputBytes,
      timeout: this.#o.config.timeout,
      forceKillAfterDelay: 5000,
      env: {
        ...this.#o.config.env,
        QWEN_SENTINEL_TARGET: this.#o.target,
        QWEN_SENTINEL_ALERTNAME: context.alertname,
        QWEN_SENTINEL_FINGERPRINT: context.fingerprint,
      },
      ...(this.#o.config.cwd ? { cwd: this.#o.config.cwd } : {}),
    });
    const output = String(result.all ?? '').slice(-2000);
    const ok = !result.failed && result.exitCode === 0;
    const message = ok ? 'exit 0' : result.timedOut ? `timed out after ${this.#o.config.timeout} ms` : (result.shortMessage ?? `exit ${result.exitCode}`);
    this.#o.logger[ok ? 'info' : 'error']({ target: this.#o.target, command: this.#o.config.command, exit_code: result.exitCode, output }, ok ? 'restart command succeeded' : 'restart command failed');
    return { ok, message };
  }
}
