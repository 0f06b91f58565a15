import { llamacpp } from './llamacpp.ts';
import { ollama } from './ollama.ts';
import { openai } from './openai.ts';
import { sglang } from './sglang.ts';
import type { ServerType } from './types.ts';
import { vllm } from './vllm.ts';

/** Every server type by name: the values of a target's `server`, and the shipped modules' names. */
export const servers = { vllm, sglang, llamacpp, ollama, openai } satisfies Record<string, ServerType>;

export type ServerName = keyof typeof servers;
export const serverNames = Object.keys(servers) as [ServerName, ...ServerName[]];
/** The type of a target that names neither a server nor a module. */
export const defaultServer: ServerName = 'openai';

export function isServerName(name: string): name is ServerName {
  return Object.hasOwn(servers, name);
}
