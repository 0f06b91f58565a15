import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import type * as Actions from '../remediator/actions/index.ts';
import { positiveDuration } from './fields.ts';
import { probeNames, probes, probesReadByRestartRules, type ProbeName } from '../exporter/probes/index.ts';
import { defaultServer, isServerName, serverNames, servers, type ServerName } from '../servers/index.ts';

// The remediation schemas sit beside the actions' code (execa, undici, ...), which only the
// remediator runs: they are loaded, synchronously, the first time a config has a remediation
// section, so an exporter probing targets without one never loads them.
const actionsFile = fileURLToPath(new URL(`../remediator/actions/index${import.meta.url.slice(import.meta.url.lastIndexOf('.'))}`, import.meta.url));
// (Piped from unknown: zod asks an optional field's schema whether it takes undefined, which for a
// bare z.lazy() would load it at once.)
const remediationSchema = z.unknown().pipe(z.lazy(() => (createRequire(import.meta.url)(actionsFile) as typeof Actions).remediationSchema));

const name = z.string().regex(/^[A-Za-z0-9_.:-]+$/, 'use letters, digits and _ . : - only');

// Each probe's options sit under its own name in a module: the table is the schema.
const probeOptions = Object.fromEntries(probeNames.map((p) => [p, probes[p].options])) as { [P in ProbeName]: (typeof probes)[P]['options'] };

const moduleFields = z.strictObject({
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

const oneKeySource = (o: { api_key_file?: string | undefined; api_key_env?: string | undefined }) => o.api_key_file === undefined || o.api_key_env === undefined;
const oneKeySourceIssue = { message: 'set one of api_key_file or api_key_env, not both', path: ['api_key_env'] };

/** Options given for a probe the module does not run are a mistake, not something to ignore. */
const moduleSchema = z.preprocess((raw, ctx) => {
  if (typeof raw !== 'object' || raw === null || !Array.isArray((raw as { probes?: unknown }).probes)) return raw;
  const listed = (raw as { probes: unknown[] }).probes;
  for (const probe of probeNames) {
    if ((raw as Record<string, unknown>)[probe] !== undefined && !listed.includes(probe)) {
      ctx.addIssue({ code: 'custom', path: [probe], message: `options for a probe the module does not run: add ${probe} to probes` });
    }
  }
  return raw;
}, moduleFields.refine(oneKeySource, oneKeySourceIssue));

const targetSchema = z.strictObject({
  name: name.optional(),
  url: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL such as http://127.0.0.1:8000/v1' }),
  server: z.enum(serverNames).optional(),
  module: z.string().min(1).optional(),
  model: z.string().min(1).optional(),
  interval: positiveDuration.default(15_000),
  timeout: positiveDuration.optional(),
  api_key_file: z.string().min(1).optional(),
  api_key_env: z.string().min(1).optional(),
  remediation: remediationSchema.optional(),
});

// The robot's webhook URL carries its access_token, so it may come from a file or the environment
// instead, as API keys and the webhook token do.
const dingtalkSchema = z
  .strictObject({
    url: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL such as https://oapi.dingtalk.com/robot/send?access_token=...' }).optional(),
    url_file: z.string().min(1).optional(),
    url_env: z.string().min(1).optional(),
    secret_file: z.string().min(1).optional().describe('The robot\'s signing secret (加签, SEC...): each message is then signed with HMAC-SHA256.'),
    secret_env: z.string().min(1).optional(),
    timeout: positiveDuration.default(5000).describe('Deadline of one send; a send never holds up a restart.'),
    at_mobiles: z.array(z.string().regex(/^\+?[0-9][0-9-]{2,19}$/, 'a mobile number such as 13800000000')).optional(),
    at_all: z.boolean().default(false),
  })
  .superRefine((d, ctx) => {
    const given = (['url', 'url_file', 'url_env'] as const).filter((k) => d[k] !== undefined);
    if (given.length === 0) ctx.addIssue({ code: 'custom', path: ['url'], message: "required: set one of url, url_file or url_env (the robot's webhook URL)" });
    if (given.length > 1) ctx.addIssue({ code: 'custom', path: [given[1]!], message: `set one of url, url_file or url_env, not ${given.join(' and ')}` });
    if (d.secret_file !== undefined && d.secret_env !== undefined) ctx.addIssue({ code: 'custom', path: ['secret_env'], message: 'set one of secret_file or secret_env, not both' });
  });

const remediatorSchema = z
  .strictObject({
    auth: z
      .strictObject({
        bearer_token_file: z.string().min(1).optional(),
        bearer_token_env: z.string().min(1).optional(),
      })
      .refine((a) => (a.bearer_token_file === undefined) !== (a.bearer_token_env === undefined), {
        message: 'set exactly one of bearer_token_file or bearer_token_env',
      })
      .optional(),
    match: z.record(z.string(), z.string()).default({ remediate: 'restart' }),
    max_body_bytes: z.int().min(1024).default(1 << 20),
    stale_after: positiveDuration.default(3_600_000).describe('A webhook alert that started longer ago than this (a replay) is stale: nothing is done. Alerts read from Alertmanager (active now) are never stale by age.'),
    alertmanager: z
      .strictObject({
        url: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL such as http://127.0.0.1:9093' }),
        interval: positiveDuration.default(15_000),
        receiver: z.string().min(1).default('qwen-sentinel-remediator'),
      })
      .optional()
      .describe('Reconcile with Alertmanager\'s active alerts (GET /api/v2/alerts) on this interval, through the same stages: a firing alert is acted on even when no notification comes.'),
    notify: z
      .strictObject({ dingtalk: dingtalkSchema.optional() })
      .optional()
      .describe('Where the remediator itself reports every action it ran (Alertmanager has no DingTalk receiver).'),
  })
  .default({ match: { remediate: 'restart' }, max_body_bytes: 1 << 20, stale_after: 3_600_000 });

/** host, host:port or *.domain: what /probe may reach. */
const hostPattern = z.string().regex(/^(\*\.)?[A-Za-z0-9_.-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/, 'expected a host name or address, optionally :port, or *.domain');

const exporterSchema = z
  .strictObject({
    allowed_probe_hosts: z
      .array(hostPattern)
      .optional()
      .describe('When set, GET /probe only reaches these hosts (host, host:port, [v6], or *.domain); other targets get 403.'),
  })
  .default({});

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

function resolveModule(moduleName: string, m: ModuleFields, path: PropertyKey[], ctx: z.RefinementCtx): Module | undefined {
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

export const configSchema = z
  .strictObject({
    modules: z.record(name, moduleSchema).default({}),
    targets: z.array(targetSchema.refine(oneKeySource, oneKeySourceIssue)).default([]),
    exporter: exporterSchema,
    remediator: remediatorSchema,
  })
  .transform((config, ctx) => {
    const modules: Record<string, Module> = {};
    for (const [moduleName, fields] of Object.entries({ ...shippedModules, ...config.modules })) {
      const resolved = resolveModule(moduleName, fields, ['modules', moduleName], ctx);
      if (resolved) modules[moduleName] = resolved;
    }
    const seen = new Set<string>();
    const targets = config.targets.map((t, i) => {
      const path = (field: string) => ['targets', i, field];
      const targetName = t.name ?? t.url;
      if (seen.has(targetName)) ctx.addIssue({ code: 'custom', path: path('name'), message: `duplicate target name "${targetName}"` });
      seen.add(targetName);
      const moduleName = t.module ?? t.server ?? defaultServer;
      const module = modules[moduleName];
      if (!module) {
        if (!Object.hasOwn(config.modules, moduleName)) ctx.addIssue({ code: 'custom', path: path('module'), message: `unknown module "${moduleName}" (known: ${Object.keys(modules).join(', ')})` });
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
      if (t.model === undefined && !module.probes.includes('models') && module.probes.some((p) => p === 'chat' || p === 'thinking')) {
        ctx.addIssue({ code: 'custom', path: path('model'), message: `required: module "${moduleName}" generates without the models probe` });
      }
      const missing = probesReadByRestartRules.filter((p) => !module.probes.includes(p));
      if (t.remediation && missing.length > 0) {
        ctx.addIssue({ code: 'custom', path: path('module'), message: `module "${moduleName}" lacks ${missing.join(' and ')}, which the restart rules read: add ${missing.length > 1 ? 'them' : 'it'} to the module's probes, or drop remediation` });
      }
      const { name: _name, server: _server, module: _module, timeout: _timeout, ...rest } = t;
      return { ...rest, name: targetName, url: t.url.replace(/\/+$/, ''), module: moduleName, server: module.server, timeout };
    });
    return { modules, targets: targets.filter((t) => t !== undefined), exporter: config.exporter, remediator: config.remediator };
  });

export type Config = z.output<typeof configSchema>;
export type Target = Config['targets'][number];
export type { Remediation } from '../remediator/actions/index.ts';
export type RemediatorConfig = Config['remediator'];
export type ExporterSection = Config['exporter'];
