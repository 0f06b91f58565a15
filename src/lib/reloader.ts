import { createHash } from 'node:crypto';
import { Gauge, type Registry } from './prom-client.ts';
import type { Logger } from './log.ts';

export type ReloadResult = 'reloaded' | 'unchanged';

/** What /-/reload and SIGHUP need of a reloader. */
export interface Reloadable {
  reload(): Promise<ReloadResult>;
}

/** A config file: where it is, the text the process started with, and how to read it again. */
export interface ConfigSource<C> {
  path: string;
  text: string;
  /** Reads and validates the file; throws (a ConfigError naming the field) when it is invalid. */
  read(path: string): Promise<{ config: C; text: string }>;
}

export interface ReloaderOptions<C> {
  source: ConfigSource<C>;
  registry: Registry;
  logger: Logger;
  /** Puts a validated config into effect; throws (a ConfigError) to reject it. */
  apply: (config: C) => Promise<void>;
  /** What "unchanged" means: by default the file's text; the remediator adds its token file. */
  identity?: (config: C, text: string) => Promise<string>;
}

/**
 * Re-reads the config file on /-/reload or SIGHUP, as Prometheus does: an unchanged file is
 * skipped, an invalid one is rejected and the running config kept, and the outcome is exported.
 */
export class ConfigReloader<C> implements Reloadable {
  readonly file: string;
  readonly #o: Required<ReloaderOptions<C>>;
  readonly #successful: Gauge;
  readonly #lastSuccess: Gauge;
  #hash: string | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;

  constructor(options: ReloaderOptions<C>) {
    this.file = options.source.path;
    this.#o = { identity: async (_config, text) => text, ...options };
    this.#successful = new Gauge({ name: 'qwen_sentinel_config_last_reload_successful', help: 'Whether the last configuration reload attempt was successful.', registers: [options.registry] });
    this.#lastSuccess = new Gauge({ name: 'qwen_sentinel_config_last_reload_success_timestamp_seconds', help: 'Timestamp of the last successful configuration reload.', registers: [options.registry] });
  }

  /** Records the config the process started with. */
  async started(config: C, text: string): Promise<void> {
    this.#hash = digest(await this.#o.identity(config, text));
    this.#successful.set(1);
    this.#lastSuccess.set(Date.now() / 1000);
  }

  /** Reloads one at a time; rejects with a ConfigError (naming the field) and keeps the old config. */
  reload(): Promise<ReloadResult> {
    const next = this.#queue.then(() => this.#reload());
    this.#queue = next.catch(() => {});
    return next;
  }

  /** Waits for a reload in progress; later ones are refused, so nothing restarts after a shutdown. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#queue;
  }

  async #reload(): Promise<ReloadResult> {
    if (this.#closed) throw new Error('shutting down');
    const { logger } = this.#o;
    try {
      const { config, text } = await this.#o.source.read(this.file);
      const hash = digest(await this.#o.identity(config, text));
      if (hash === this.#hash) {
        logger.info({ file: this.file }, 'config unchanged, not reloaded');
        this.#successful.set(1);
        return 'unchanged';
      }
      await this.#o.apply(config);
      this.#hash = hash;
      this.#successful.set(1);
      this.#lastSuccess.set(Date.now() / 1000);
      logger.info({ file: this.file }, 'config reloaded');
      return 'reloaded';
    } catch (err) {
      this.#successful.set(0);
      logger.error({ file: this.file, err: (err as Error).message }, 'config reload failed; keeping the running config');
      throw err;
    }
  }
}

const digest = (text: string) => createHash('sha256').update(text).digest('hex');
