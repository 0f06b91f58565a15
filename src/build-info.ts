import { collectDefaultMetrics, Gauge, Registry } from './prom-client.ts';
import { version } from './version.ts';

// prom-client exports these gauges with a _total suffix, which promtool's lint rejects (only
// counters end in _total); nodejs_active_handles and nodejs_active_requests carry the same counts.
const mislabelled = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

/**
 * A component's own registry: process and Node.js metrics, and
 * qwen_sentinel_build_info{version,nodejs} 1, as every Prometheus component exports its build.
 */
export function componentRegistry(): Registry {
  const registry = new Registry();
  // The event-loop delay monitor samples with a timer: at prom-client's default 10 ms it costs an
  // idle process about 10 ms of CPU per second; every 100 ms still sees each stall (a blocked loop
  // delays the next sample) at a tenth of the cost. Its nodejs_eventloop_lag_*_seconds gauges
  // report each sample's whole interval, so they read 0.1 s plus the lag (the dashboard subtracts it).
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 100 });
  for (const name of mislabelled) registry.removeSingleMetric(name);
  new Gauge({ name: 'qwen_sentinel_build_info', help: 'Always 1; labels carry the version and the Node.js runtime.', labelNames: ['version', 'nodejs'], registers: [registry] })
    .set({ version, nodejs: process.version }, 1);
  return registry;
}
