import { collectDefaultMetrics, Gauge, Registry } from './prom-client.ts';
import { version } from './version.ts';

// prom-client exports these gauges with a _total suffix, which promtool's lint rejects (only
// counters end in _total); nodejs_active_handles and nodejs_active_requests carry the same counts.
const mislabelled = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

/** How often the event-loop delay monitor samples; its lag gauges include this interval. */
export const eventLoopSampleSeconds = 1;

/**
 * A component's own registry: process and Node.js metrics, and
 * qwen_sentinel_build_info{version,nodejs} 1, as every Prometheus component exports its build.
 */
export function componentRegistry(): Registry {
  const registry = new Registry();
  // The event-loop delay monitor samples with a timer, and each wake-up costs an idle process
  // about 0.1 ms of CPU (measured here): 9 ms per second at prom-client's default 10 ms, 1 ms at
  // 100 ms, which was most of an idle exporter's CPU. Once a second still sees every stall of a
  // second or more, and a shorter one in proportion to its length; nodejs_eventloop_lag_seconds
  // (measured at each scrape) adds its own sample. The nodejs_eventloop_lag_*_seconds gauges report
  // each sample's whole interval, so they read 1 s plus the lag (the dashboard subtracts it).
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: eventLoopSampleSeconds * 1000 });
  for (const name of mislabelled) registry.removeSingleMetric(name);
  new Gauge({ name: 'qwen_sentinel_build_info', help: 'Always 1; labels carry the version and the Node.js runtime.', labelNames: ['version', 'nodejs'], registers: [registry] })
    .set({ version, nodejs: process.version }, 1);
  return registry;
}
