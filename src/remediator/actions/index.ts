import { z } from 'zod';
import { positiveDuration } from '../../config/fields.ts';
import { commandAction } from './command.ts';
import { dockerAction } from './docker.ts';
import { kubernetesAction } from './kubernetes.ts';
import { processAction } from './process.ts';
import { systemdAction } from './systemd.ts';
import type { ActionKind } from './types.ts';

/** Every action kind by name: the config's `action` values, their schemas and their factories. */
export const actions = { process: processAction, command: commandAction, systemd: systemdAction, docker: dockerAction, kubernetes: kubernetesAction } satisfies Record<string, ActionKind<z.ZodObject>>;
export type ActionName = keyof typeof actions;

/** What every remediation has, whatever restarts the server. */
const common = {
  startup_timeout: positiveDuration.default(300_000).describe('How long a (re)started server may take to answer again (listing and a one-token generation); inside it no alert restarts it, past it the restart failed.'),
  confirm: z.boolean().default(true).describe('Check the server once more just before acting; if it answers now, the decision is `recovered` and nothing is restarted.'),
  circuit: z
    .strictObject({
      max_restarts: z.int().min(1).default(3).describe('At most this many restarts (failed ones included) per window; then the circuit opens.'),
      window: positiveDuration.default(900_000).describe('The window the restarts are counted in.'),
    })
    .default({ max_restarts: 3, window: 900_000 })
    .describe('The crash-loop circuit: it closes once the window has passed, or by POST /api/v1/targets/NAME/circuit/close.'),
};
type Common = z.output<z.ZodObject<typeof common>>;

/** One remediation: an action kind's own fields (`action: NAME` among them) and the common ones. */
export type Remediation = { [K in ActionName]: z.output<(typeof actions)[K]['schema']> & Common }[ActionName];

/** One member per entry of the table (its own fields and the common ones), told apart by `action`. */
export const remediationMembers = Object.fromEntries(Object.entries(actions).map(([name, kind]) => [name, (kind.schema as z.ZodObject).extend(common)])) as unknown as Record<ActionName, z.ZodObject>;
export const remediationSchema = z.discriminatedUnion('action', Object.values(remediationMembers) as [z.ZodObject, ...z.ZodObject[]]) as unknown as z.ZodType<Remediation>;
