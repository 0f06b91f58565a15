import { createHash } from 'node:crypto';
import { Gauge, type Registry } from 'prom-client';
import type { Logger } from '../log.ts';
import { readConfigFile } from './load.ts';
import type { Config } from './schema.ts';

export type ReloadResult = 'reloaded' | 'unchanged';

/**
 * Re-reads the config file on /-/reload or SIGHUP, as Prometheus does: an unchanged file is
 * skipped, an invalid one is rejected and the running config kept, and the outcome is exported.
 */
export class ConfigReloader {
  readonly file: string;
  readonly #apply: (config: Config) => Promise<void>;
  readonly #logger: Logger;
  readonly #successful: Gauge;
  readonly #lastSuccess: Gauge;
  #hash: string | undefined;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(file: string, registry: Registry, logger: Logger, apply: (config: Config) => Promise<void>) {
    this.file = file;
    this.#apply = apply;
    this.#logger = logger;
    this.#successful = new Gauge({ name: 'qwen_sentinel_config_last_reload_successful', help: 'Whether the last configuration reload attempt was successful.', registers: [registry] });
    this.#lastSuccess = new Gauge({ name: 'qwen_sentinel_config_last_reload_success_timestamp_seconds', help: 'Timestamp of the last successful configuration reload.', registers: [registry] });
  }

  /** Records the config the process started with. */
  started(text: string): void {
    this.#hash = digest(text);
    this.#successful.set(1);
    this.#lastSuccess.set(Date.now() / 1000);
  }

  /** Reloads one at a time; rejects with a ConfigError (naming the field) and keeps the old config. */
  reload(): Promise<ReloadResult> {
    const next = this.#queue.then(() => this.#reload());
    this.#queue = next.catch(() => {});
    return next;
  }

  async #reload(): Promise<ReloadResult> {
    try {
      const { config, text } = await readConfigFile(this.file);
      const hash = digest(text);
      if (hash === this.#hash) {
        this.#logger.info({ file: this.file }, 'config unchanged, not reloaded');
        this.#successful.set(1);
        return 'unchanged';
      }
      await this.#apply(config);
      this.#hash = hash;
      this.#successful.set(1);
      this.#lastSuccess.set(Date.now() / 1000);
      this.#logger.info({ file: this.file }, 'config reloaded');
      return 'reloaded';
    } catch (err) {
      this.#successful.set(0);
      this.#logger.error({ file: this.file, err: (err as Error).message }, 'config reload failed; keeping the running config');
      throw err;
    }
  }
}

const digest = (text: string) => createHash('sha256').update(text).digest('hex');
