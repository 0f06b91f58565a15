import { createHash } from 'node:crypto';
import { readSecret } from '../config/secrets.ts';
import type { ProbingConfig, Target } from './module.ts';

/** The API keys probes send, read once per (re)load; never logged or exported. */
export interface ApiKeys {
  forTarget(target: Target): string | undefined;
  forModule(name: string): string | undefined;
}

export async function readApiKeys(config: ProbingConfig, env: NodeJS.ProcessEnv = process.env): Promise<ApiKeys> {
  const modules = new Map<string, string>();
  for (const m of Object.values(config.modules)) {
    const key = await readSecret({ file: m.api_key_file, env: m.api_key_env }, `modules.${m.name}.api_key`, env);
    if (key !== undefined) modules.set(m.name, key);
  }
  const targets = new Map<string, string>();
  for (const [i, t] of config.targets.entries()) {
    const key = await readSecret({ file: t.api_key_file, env: t.api_key_env }, `targets[${i}].api_key`, env);
    if (key !== undefined) targets.set(t.name, key);
  }
  return {
    forTarget: (t) => targets.get(t.name) ?? modules.get(t.module),
    forModule: (name) => modules.get(name),
  };
}

/** A digest of every key the config names, so a reload notices a rotated key file. */
export async function keyFingerprint(config: ProbingConfig, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  try {
    const keys = await readApiKeys(config, env);
    const all = [...config.targets.map((t) => keys.forTarget(t)), ...Object.keys(config.modules).map((m) => keys.forModule(m))];
    return createHash('sha256').update(JSON.stringify(all)).digest('hex');
  } catch (err) {
    return (err as Error).message;
  }
}
