import { z } from 'zod';
import { parseDuration } from '../duration.ts';
import { probeNames } from '../exporter/probes/index.ts';

/** A Prometheus duration string ("15s", "1m30s"), parsed to milliseconds. */
const duration = z.string({ error: 'expected a duration such as 10s or 1m30s' }).transform((text, ctx) => {
  const ms = parseDuration(text);
  if (ms === undefined) {
    ctx.addIssue({ code: 'custom', message: `not a duration: "${text}" (use e.g. 500ms, 15s, 1m30s)` });
    return z.NEVER;
  }
  return ms;
});
// Durations that drive timers: Node clamps a timer beyond ~24.8 days to 1 ms, so cap them.
const maxTimerMs = 24 * 3600_000;
const positiveDuration = duration
  .refine((ms) => ms > 0, 'must be greater than 0')
  .refine((ms) => ms <= maxTimerMs, 'must be at most 24h');

/** An argv array: the program and its arguments, run without a shell. */
const argv = z.array(z.string().min(1)).min(1, 'needs at least the program to run');

const processAction = z.strictObject({
  action: z.literal('process'),
  command: argv,
  cwd: z.string().optional(),
  env: z.record(z.string(), z.string()).default({}),
  grace_period: positiveDuration.default(10_000),
  restart_on_exit: z.boolean().default(false),
  cooldown: duration.default(120_000),
});

const commandAction = z.strictObject({
  action: z.literal('command'),
  command: argv,
  cwd: z.string().optional(),
  env: z.record(z.string(), z.string()).default({}),
  timeout: positiveDuration.default(120_000),
  cooldown: duration.default(300_000),
});

export const remediationSchema = z.discriminatedUnion('action', [processAction, commandAction]);

const targetSchema = z
  .strictObject({
    name: z.string().regex(/^[A-Za-z0-9_.:-]+$/, 'use letters, digits and _ . : - only').optional(),
    url: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL such as http://127.0.0.1:8000/v1' }),
    model: z.string().min(1).optional(),
    probes: z.array(z.enum(probeNames)).min(1).default(['models', 'chat']),
    interval: positiveDuration.default(15_000),
    timeout: positiveDuration.default(10_000),
    chat: z
      .strictObject({
        prompt: z.string().min(1).default('Reply with OK.'),
        max_tokens: z.int().min(1).max(256).default(8),
      })
      .default({ prompt: 'Reply with OK.', max_tokens: 8 }),
    max_response_bytes: z.int().min(1024).default(1 << 20),
    remediation: remediationSchema.optional(),
  })
  .transform((target) => ({ ...target, name: target.name ?? target.url, url: target.url.replace(/\/+$/, '') }));

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
  })
  .default({ match: { remediate: 'restart' }, max_body_bytes: 1 << 20 });

export const configSchema = z
  .strictObject({
    targets: z.array(targetSchema).min(1, 'list at least one target'),
    remediator: remediatorSchema,
  })
  .superRefine((config, ctx) => {
    const seen = new Set<string>();
    config.targets.forEach((target, i) => {
      if (seen.has(target.name)) ctx.addIssue({ code: 'custom', path: ['targets', i, 'name'], message: `duplicate target name "${target.name}"` });
      seen.add(target.name);
      if (target.probes.includes('chat') && !target.probes.includes('models') && target.model === undefined) {
        ctx.addIssue({ code: 'custom', path: ['targets', i, 'model'], message: 'required when the chat probe runs without the models probe' });
      }
      if (target.timeout > target.interval) {
        ctx.addIssue({ code: 'custom', path: ['targets', i, 'timeout'], message: 'must not exceed interval' });
      }
    });
  });

export type Config = z.output<typeof configSchema>;
export type Target = Config['targets'][number];
export type Remediation = z.output<typeof remediationSchema>;
export type RemediatorConfig = Config['remediator'];
