// The config file, composed where the program is: each part brings its own section (probing its
// modules and targets, the exporter and the remediator theirs), and this file joins them into one
// schema, parsed once, that also gives the types and the generated reference (docs/configuration.md).
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { parseWith, parseYamlWith, readYamlFileWith } from '../config/load.ts';
import { exporterSchema } from '../exporter/config.ts';
import { moduleSchema, name, oneKeySource, oneKeySourceIssue, resolveModules, resolveTarget, targetFields } from '../probing/module.ts';
import { probesReadByRestartRules } from '../probing/probes/index.ts';
import type * as Actions from '../remediator/actions/index.ts';
import { remediatorSchema } from '../remediator/config.ts';

export { ConfigError } from '../config/load.ts';

// The remediation schemas sit beside the actions' code, which only the remediator runs: they are
// loaded, synchronously, the first time a config has a remediation section, so an exporter probing
// targets without one never loads them.
const actionsFile = fileURLToPath(new URL(`../remediator/actions/index${import.meta.url.slice(import.meta.url.lastIndexOf('.'))}`, import.meta.url));
// (Piped from unknown: zod asks an optional field's schema whether it takes undefined, which for a
// bare z.lazy() would load it at once.)
const remediationSchema = z
  .unknown()
  .pipe(z.lazy(() => (createRequire(import.meta.url)(actionsFile) as typeof Actions).remediationSchema))
  .describe('How the remediator restarts this server (see docs/remediator.md); without it the remediator leaves the target alone.');

const targetSchema = z.strictObject({ ...targetFields, remediation: remediationSchema.optional() }).refine(oneKeySource, oneKeySourceIssue);

export const configSchema = z
  .strictObject({
    modules: z.record(name, moduleSchema).default({}).describe('Named modules: a server type, the probes a round runs and their options. One module per server type ships, named after it.'),
    targets: z.array(targetSchema).default([]).describe('The model servers the exporter probes on its own schedule (and the remediator may restart).'),
    exporter: exporterSchema.describe('The exporter\'s own settings.'),
    remediator: remediatorSchema.describe('The remediator\'s own settings.'),
  })
  .transform((config, ctx) => {
    const modules = resolveModules(config.modules, ctx);
    const seen = new Set<string>();
    const targets = config.targets.flatMap((t, i) => {
      const resolved = resolveTarget(t, i, modules, config.modules, seen, ctx);
      if (!resolved) return [];
      const missing = probesReadByRestartRules.filter((p) => !modules[resolved.module]!.probes.includes(p));
      if (t.remediation !== undefined && missing.length > 0) {
        ctx.addIssue({ code: 'custom', path: ['targets', i, 'module'], message: `module "${resolved.module}" lacks ${missing.join(' and ')}, which the restart rules read: add ${missing.length > 1 ? 'them' : 'it'} to the module's probes, or drop remediation` });
      }
      return [resolved];
    });
    return { modules, targets, exporter: config.exporter, remediator: config.remediator };
  });

export type Config = z.output<typeof configSchema>;
export type Target = Config['targets'][number];
export type { Remediation } from '../remediator/config.ts';

/** Validates already-parsed YAML/JSON data. */
export const parseConfig = (data: unknown, source = 'config'): Config => parseWith(configSchema, data, source);
/** Parses YAML text into a validated config. */
export const parseConfigText = (text: string, source = 'config'): Config => parseYamlWith(configSchema, text, source);
/** Reads and validates a config file. */
export const readConfigFile = (path: string): Promise<{ config: Config; text: string }> => readYamlFileWith(configSchema, path);
