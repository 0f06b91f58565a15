import { z } from 'zod';
import { parseConfig } from '../../src/cmd/config.ts';
import type { Config } from '../../src/cmd/config.ts';
import type { AnyProbe, ProbeContext, ProbeResult } from '../../src/probing/probes/types.ts';
import { transportReasons } from '../../src/probing/probes/types.ts';

/** A stand-in probe whose run is the test's function. */
export function fakeProbe(name: string, run: (ctx: ProbeContext<unknown>) => Promise<ProbeResult> = async () => ({ success: true })): AnyProbe {
  return { name, description: `fake ${name}`, options: z.unknown(), reasons: [...transportReasons, 'model_missing'], metrics: [], run };
}

/** A config with one target, name "t", on a module running `probes` in that order. */
export function oneTarget(probes: string[], extra: Record<string, unknown> = {}): Config {
  return parseConfig({
    modules: { m: { server: 'vllm', probes, timeout: '1s' } },
    targets: [{ name: 't', url: 'http://127.0.0.1:1/v1', module: 'm', interval: '10s', ...extra }],
  });
}
