import { Gauge, type Registry } from 'prom-client';
import { version } from './version.ts';

/** qwen_sentinel_build_info{version,nodejs} 1, as every Prometheus component exports its build. */
export function registerBuildInfo(registry: Registry): void {
  new Gauge({ name: 'qwen_sentinel_build_info', help: 'Always 1; labels carry the version and the Node.js runtime.', labelNames: ['version', 'nodejs'], registers: [registry] })
    .set({ version, nodejs: process.version }, 1);
}
