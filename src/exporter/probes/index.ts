import { chatProbe } from './chat.ts';
import { healthProbe } from './health.ts';
import { modelsProbe } from './models.ts';
import type { ProbeFn } from './types.ts';

/** Every probe by name, in the order a round runs them: models first, so chat knows the model. */
export const probes = {
  models: modelsProbe,
  health: healthProbe,
  chat: chatProbe,
} satisfies Record<string, ProbeFn>;

export type ProbeName = keyof typeof probes;
export const probeNames = Object.keys(probes) as [ProbeName, ...ProbeName[]];
