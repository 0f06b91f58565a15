import { chatProbe } from './chat.ts';
import { healthProbe } from './health.ts';
import { modelsProbe } from './models.ts';
import { progressProbe } from './progress.ts';
import { thinkingProbe } from './thinking.ts';
import type { AnyProbe } from './types.ts';

/** Every probe by name: a module lists the ones it runs, in its own order. */
export const probes = {
  models: modelsProbe,
  health: healthProbe,
  progress: progressProbe,
  chat: chatProbe,
  thinking: thinkingProbe,
} satisfies Record<string, AnyProbe>;

export type ProbeName = keyof typeof probes;
export const probeNames = Object.keys(probes) as [ProbeName, ...ProbeName[]];

/**
 * The probes the shipped restart rules need (prometheus/rules: LLMServerDown reads models,
 * LLMServerHung reads chat and models): a target with remediation must run them. health only adds
 * LLMServerEngineDead, where the server type has one. A test keeps this list and the rules in step.
 */
export const probesReadByRestartRules: readonly ProbeName[] = ['models', 'chat'];
