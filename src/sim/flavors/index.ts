import { llamacpp } from './llamacpp.ts';
import { ollama } from './ollama.ts';
import { sglang } from './sglang.ts';
import type { ServerName } from '../../servers/index.ts';
import type { Flavor } from './types.ts';
import { vllm } from './vllm.ts';

/** Every flavor the simulator speaks, by the name `--flavor` takes. */
export const flavors = { vllm, sglang, llamacpp, ollama } satisfies Partial<Record<ServerName, Flavor>>;
export type FlavorName = keyof typeof flavors;
export const flavorNames = Object.keys(flavors) as [FlavorName, ...FlavorName[]];

export function isFlavorName(name: string): name is FlavorName {
  return Object.hasOwn(flavors, name);
}
