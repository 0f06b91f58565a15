// A remediator of the bench's own: one target whose action is a harmless command (/bin/true), so
// a restart costs nothing and counts exactly; the target is a simulator, which the remediator's
// check after the action (listing and a one-token generation) then finds answering.
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BenchContext } from './types.ts';
import { startService, writeConfig, type RunningService } from './product.ts';

export const benchTarget = 'bench';

export interface BenchRemediator extends RunningService {
  token: string;
}

export async function startBenchRemediator(ctx: BenchContext, name: string, simBase: string): Promise<BenchRemediator> {
  const token = randomBytes(24).toString('hex');
  const tokenFile = join(ctx.dir, `${name}-token`);
  await writeFile(tokenFile, token, { mode: 0o600 });
  const config = await writeConfig(ctx.dir, `${name}.yml`, {
    targets: [{ name: benchTarget, url: simBase, server: 'vllm', remediation: { action: 'command', command: ['/bin/true'], cooldown: '10m', confirm: false } }],
    remediator: { auth: { bearer_token_file: tokenFile } },
  });
  const storage = join(ctx.dir, `${name}-data`);
  await mkdir(storage, { recursive: true });
  const service = await startService(ctx.procs, ctx.product, name, 'remediator', [`--config.file=${config}`, `--storage.path=${storage}`], join(ctx.dir, `${name}.log`), ctx.signal);
  return { ...service, token };
}

/** An Alertmanager v4 webhook body with one alert (as Alertmanager 0.25 sends it). */
export function webhookPayload(labels: Record<string, string>, fingerprint: string, startsAt: string): object {
  return {
    receiver: 'qwen-sentinel-remediator',
    status: 'firing',
    alerts: [{ status: 'firing', labels, annotations: { summary: 'bench' }, startsAt, endsAt: '0001-01-01T00:00:00Z', generatorURL: 'http://127.0.0.1:19090/graph', fingerprint }],
    groupLabels: { alertname: labels.alertname ?? '' },
    commonLabels: labels,
    commonAnnotations: { summary: 'bench' },
    externalURL: 'http://127.0.0.1:19093',
    version: '4',
    groupKey: `{}/{remediate="restart"}:{alertname="${labels.alertname ?? ''}", target="${labels.target ?? ''}"}`,
    truncatedAlerts: 0,
  };
}
