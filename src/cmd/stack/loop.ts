import type { ConfigSource } from '../../lib/reloader.ts';
import { join } from 'node:path';
import type { Config } from '../config.ts';
import { startExporter, type RunningExporter } from '../../exporter/server.ts';
import type { ListenAddress } from '../../lib/flags.ts';
import type { Teardown } from '../../lib/lifecycle.ts';
import { createLogger, type Logger, type LogFormat, type LogLevel } from '../../lib/log.ts';
import { loadToken } from '../../remediator/token.ts';
import { startRemediator, type RunningRemediator } from '../../remediator/server.ts';
import { startExternal, writeAlertmanagerConfig, writePrometheusConfig } from './prometheus.ts';

export const hostPort = (a: ListenAddress) => `${a.host}:${a.port}`;

export interface LoopOptions {
  /** The sentinel config: targets with their remediation, the remediator's auth (a token file in dir). */
  config: Config;
  tokenFile: string;
  /** Where the configs, data and logs of Prometheus and Alertmanager go. */
  dir: string;
  exporter: ListenAddress;
  remediator: ListenAddress;
  /** Prometheus and Alertmanager, when their binaries are at hand. */
  prometheus?: { bin: string; address: ListenAddress } | undefined;
  alertmanager?: { bin: string; address: ListenAddress } | undefined;
  /** Scrape and rule evaluation interval (a Prometheus duration). */
  interval: string;
  /** The model server whose own /metrics Prometheus scrapes (job vllm). */
  model?: { job: string; address: string; target: string } | undefined;
  /** The config file both components were given: they then reload it and export its reload metrics. */
  configFile?: ConfigSource<Config> | undefined;
  /** More links for both status pages (--web.link); each also links the other components. */
  links?: Readonly<Record<string, string>> | undefined;
  level: LogLevel;
  format?: LogFormat | undefined;
  logger: Logger;
  teardown: Teardown;
  /** Where managed servers' output goes (tests silence it). */
  stdio?: 'inherit' | 'ignore';
}

/** The stack's config reconciles with its own Alertmanager, on the stack's interval. */
export const alertmanagerSection = (am: ListenAddress, interval: string) => ({ url: `http://${hostPort(am)}`, interval });

export interface RunningLoop {
  exporter: RunningExporter;
  remediator: RunningRemediator;
  /** name -> URL of every component started. */
  urls: Record<string, string>;
}

/** The links each status page shows to the other components (their addresses are known before they start). */
export function statusPageLinks(o: Pick<LoopOptions, 'exporter' | 'remediator' | 'prometheus' | 'alertmanager' | 'links'>): { exporter: Record<string, string>; remediator: Record<string, string> } {
  const url = (a: ListenAddress) => `http://${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}/`;
  const external = { ...(o.prometheus && o.alertmanager ? { prometheus: url(o.prometheus.address), alertmanager: url(o.alertmanager.address) } : {}), ...o.links };
  return { exporter: { remediator: url(o.remediator), ...external }, remediator: { exporter: url(o.exporter), ...external } };
}

/**
 * The loop on loopback: remediator (which starts the servers it owns), exporter, and Prometheus
 * and Alertmanager with the shipped configs and rules rewired to these addresses. Each start is
 * registered in teardown, so a failure half-way or a signal stops what was started.
 */
export async function startLoop(o: LoopOptions): Promise<RunningLoop> {
  const links = statusPageLinks(o);
  const remediator = await startRemediator({ config: o.config, token: await loadToken(o.config), listen: o.remediator, logger: createLogger('remediator', o.level, o.format), storagePath: join(o.dir, 'remediator-data'), ...(o.stdio ? { stdio: o.stdio } : {}), ...(o.configFile ? { configFile: o.configFile } : {}), links: links.remediator });
  o.teardown.add(() => remediator.close());
  const exporter = await startExporter({ config: o.config, listen: o.exporter, logger: createLogger('exporter', o.level, o.format), links: links.exporter, ...(o.configFile ? { configFile: o.configFile } : {}) });
  o.teardown.add(() => exporter.close());
  const urls: Record<string, string> = { exporter: exporter.url, remediator: remediator.url };
  if (o.prometheus && o.alertmanager) {
    const am = hostPort(o.alertmanager.address);
    const prom = hostPort(o.prometheus.address);
    const wiring = { exporter: hostPort(o.exporter), remediator: hostPort(o.remediator), alertmanager: am, tokenFile: o.tokenFile, interval: o.interval, model: o.model };
    const promConfig = await writePrometheusConfig(o.dir, wiring);
    const amConfig = await writeAlertmanagerConfig(o.dir, wiring);
    const alertmanager = startExternal('alertmanager', o.alertmanager.bin, [`--config.file=${amConfig}`, `--storage.path=${join(o.dir, 'alertmanager-data')}`, `--web.listen-address=${am}`, '--cluster.listen-address='], o.dir, o.logger);
    o.teardown.add(() => alertmanager.stop());
    const prometheus = startExternal('prometheus', o.prometheus.bin, [`--config.file=${promConfig}`, `--storage.tsdb.path=${join(o.dir, 'prometheus-data')}`, `--web.listen-address=${prom}`], o.dir, o.logger);
    o.teardown.add(() => prometheus.stop());
    // Their URLs count only once they serve: a taken port must fail the loop, not be shown as ours.
    await Promise.all([alertmanager.ready(`http://${am}`), prometheus.ready(`http://${prom}`)]);
    urls.prometheus = `http://${prom}`;
    urls.alertmanager = `http://${am}`;
  }
  return { exporter, remediator, urls };
}
