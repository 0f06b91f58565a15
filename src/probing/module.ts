// What probing reads of the config: modules (a server type, its probes in order, their options)
// and targets. The probe table and the server-type table are the schema: a new probe or server
// type needs no change here.
import { z } from 'zod';
import { positiveDuration } from '../config/fields.ts';
import { defaultServer, isServerName, serverNames, servers, type ServerName } from '../servers/index.ts';
import { probeNames, probes, type ProbeName } from './probes/index.ts';

export const name = z.string().regex(/^[A-Za-z0-9_.:-]+$/, 'use letters, digits and _ . : - only');

// Each probe's options sit under its own name in a module: the table is the schema.
const probeOptions = Object.fromEntries(probeNames.map((p) => [p, probes[p].options.describe(`Options of the ${p} probe: see probes.md.`)])) as { [P in ProbeName]: (typeof probes)[P]['options'] };

export const moduleFields = z.strictObject({
  server: z.enum(serverNames).optional().describe('The server type the module talks to (request shape, health endpoint, model matching); default: the module\'s name, which must then be a server type.'),
  probes: z
    .array(z.enum(probeNames))
    .min(1)
    .refine((list) => new Set(list).size === list.length, 'lists a probe twice')
    .optional()
    .describe('The probes a round runs, in this order; default: the server type\'s own list.'),
  timeout: positiveDuration.default(10_000).describe('Deadline of each probe.'),
  api_key_file: z.string().min(1).optional().describe('A file holding the API key sent as Authorization: Bearer (vLLM --api-key, ...); for /probe requests and targets of this module.'),
  api_key_env: z.string().min(1).optional().describe('The environment variable holding that key, instead of a file.'),
  max_response_bytes: z.int().min(1024).default(1 << 20).describe('A larger answer (or stream) fails with bad_response.'),
  ...probeOptions,
});

export const oneKeySource = (o: { api_key_file?: string | undefined; api_key_env?: string | undefined }) => o.api_key_file === undefined || o.api_key_env === undefined;
export const oneKeySourceIssue = { message: 'set one of api_key_file or api_key_env, not both', path: ['api_key_env'] };

/** Options given for a probe the module does not run are a mistake, not something to ignore. */
export const moduleSchema = z.preprocess((raw, ctx) => {
  if (typeof raw !== 'object' || raw === null || !Array.isArray((raw as { probes?: unknown }).probes)) return raw;
  const listed = (raw as { probes: unknown[] }).probes;
  for (const probe of probeNames) {
    if ((raw as Record<string, unknown>)[probe] !== undefined && !listed.includes(probe)) {
      ctx.addIssue({ code: 'custom', path: [probe], message: `options for a probe the module does not run: add ${probe} to probes` });
    }
  }
  return raw;
}, moduleFields.refine(oneKeySource, oneKeySourceIssue));

/** A target's own fields, as written in the config (the commands add what other parts read). */
export const targetFields = {
  name: name.optional().describe('The target label; default: the URL.'),
  url: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL such as http://127.0.0.1:8000/v1' }).describe('The server\'s OpenAI-compatible base URL.'),
  server: z.enum(serverNames).optional().describe('The server type; default: the module\'s.'),
  module: z.string().min(1).optional().describe('The module that probes it; default: the module named after its server type, else openai.'),
  model: z.string().min(1).optional().describe('The model id to probe; default: the first one listed.'),
  interval: positiveDuration.default(15_000).describe('How often a round runs.'),
  timeout: positiveDuration.optional().describe('Deadline of each probe; default: the module\'s.'),
  api_key_file: z.string().min(1).optional().describe('A file holding this target\'s API key (overrides the module\'s).'),
  api_key_env: z.string().min(1).optional().describe('The environment variable holding it, instead of a file.'),
};

type ModuleFields = z.output<typeof moduleFields>;
export type ProbeOptions = { [P in ProbeName]: z.output<(typeof probes)[P]['options']> };

/** A module with everything resolved: its server type, its probes in order, their options. */
export interface Module {
  name: string;
  server: ServerName;
  probes: ProbeName[];
  timeout: number;
  max_response_bytes: number;
  api_key_file?: string | undefined;
  api_key_env?: string | undefined;
  options: ProbeOptions;
}

/** A target with its module resolved and its defaults filled. */
export interface Target {
  name: string;
  url: string;
  module: string;
  server: ServerName;
  model?: string | undefined;
  interval: number;
  timeout: number;
  api_key_file?: string | undefined;
  api_key_env?: string | undefined;
}

/** What probing reads of a config. */
export interface ProbingConfig {
  modules: Record<string, Module>;
  targets: readonly Target[];
}

export function resolveModule(moduleName: string, m: ModuleFields, path: PropertyKey[], ctx: z.RefinementCtx): Module | undefined {
  const server = m.server ?? (isServerName(moduleName) ? moduleName : undefined);
  if (server === undefined) {
    ctx.addIssue({ code: 'custom', path: [...path, 'server'], message: `required: "${moduleName}" is not a server type (${serverNames.join(', ')})` });
    return undefined;
  }
  const list = m.probes ?? (servers[server].defaultProbes as ProbeName[]);
  if (list.includes('health') && m.health.path === undefined && servers[server].healthPath === undefined) {
    ctx.addIssue({ code: 'custom', path: [...path, 'probes'], message: `the health probe needs health.path: ${server} servers have no health endpoint` });
  }
  if (list.includes('progress') && servers[server].progress === undefined) {
    ctx.addIssue({ code: 'custom', path: [...path, 'probes'], message: `the progress probe reads a server's own progress signal, which ${server} servers do not have` });
  }
  const options = Object.fromEntries(probeNames.map((p) => [p, m[p]])) as ProbeOptions;
  return { name: moduleName, server, probes: list, timeout: m.timeout, max_response_bytes: m.max_response_bytes, api_key_file: m.api_key_file, api_key_env: m.api_key_env, options };
}

/** The modules shipped with qwen-sentinel: one per server type, named after it. */
export const shippedModules: Readonly<Record<string, ModuleFields>> = Object.fromEntries(serverNames.map((s) => [s, moduleFields.parse({ server: s })]));

/** Every module, shipped and configured, resolved; issues are added to ctx. */
export function resolveModules(configured: Record<string, ModuleFields>, ctx: z.RefinementCtx): Record<string, Module> {
  const modules: Record<string, Module> = {};
  for (const [moduleName, fields] of Object.entries({ ...shippedModules, ...configured })) {
    const resolved = resolveModule(moduleName, fields, ['modules', moduleName], ctx);
    if (resolved) modules[moduleName] = resolved;
  }
  return modules;
}

type TargetInput = z.output<z.ZodObject<typeof targetFields>>;

/**
 * A target resolved against the modules: its name, module, server type and timeout, with the
 * cross-field rules (unique names, a known module, a timeout within the interval, a model where the
 * server type or the module needs one). Issues are added to ctx; undefined when unusable.
 */
export function resolveTarget<T extends TargetInput>(t: T, i: number, modules: Record<string, Module>, configured: Record<string, unknown>, seen: Set<string>, ctx: z.RefinementCtx): (Omit<T, 'name' | 'server' | 'module' | 'timeout'> & Target) | undefined {
  const path = (field: string) => ['targets', i, field];
  const targetName = t.name ?? t.url;
  if (seen.has(targetName)) ctx.addIssue({ code: 'custom', path: path('name'), message: `duplicate target name "${targetName}"` });
  seen.add(targetName);
  const moduleName = t.module ?? t.server ?? defaultServer;
  const module = modules[moduleName];
  if (!module) {
    if (!Object.hasOwn(configured, moduleName)) ctx.addIssue({ code: 'custom', path: path('module'), message: `unknown module "${moduleName}" (known: ${Object.keys(modules).join(', ')})` });
    return undefined;
  }
  if (t.server !== undefined && t.server !== module.server) {
    ctx.addIssue({ code: 'custom', path: path('server'), message: `module "${moduleName}" is for server type ${module.server}, not ${t.server}` });
  }
  const timeout = t.timeout ?? module.timeout;
  if (timeout > t.interval) ctx.addIssue({ code: 'custom', path: path(t.timeout === undefined ? 'interval' : 'timeout'), message: `the probe timeout (${timeout} ms) must not exceed the interval (${t.interval} ms)` });
  if (t.model === undefined && servers[module.server].requiresModel) {
    ctx.addIssue({ code: 'custom', path: path('model'), message: `required for server type ${module.server}` });
  }
  if (t.model === undefined && !module.probes.includes('models') && module.probes.some((p) => probes[p].generates)) {
    ctx.addIssue({ code: 'custom', path: path('model'), message: `required: module "${moduleName}" generates without the models probe` });
  }
  const { name: _name, server: _server, module: _module, timeout: _timeout, ...rest } = t;
  return { ...rest, name: targetName, url: t.url.replace(/\/+$/, ''), module: moduleName, server: module.server, timeout };
}
