// The remediator's own section of the config, and what the remediator reads of the whole.
import { z } from 'zod';
import { positiveDuration } from '../config/fields.ts';
import type { ProbingConfig, Target } from '../probing/module.ts';
import type { Remediation } from './actions/index.ts';

export type { Remediation };

// The robot's webhook URL carries its access_token, so it may come from a file or the environment
// instead, as API keys and the webhook token do.
const dingtalkSchema = z
  .strictObject({
    url: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL such as https://oapi.dingtalk.com/robot/send?access_token=...' }).optional().describe("The custom robot's webhook URL (it carries the access_token); or url_file / url_env."),
    url_file: z.string().min(1).optional().describe('A file holding that URL.'),
    url_env: z.string().min(1).optional().describe('The environment variable holding that URL.'),
    secret_file: z.string().min(1).optional().describe('The robot\'s signing secret (加签, SEC...): each message is then signed with HMAC-SHA256.'),
    secret_env: z.string().min(1).optional().describe('The environment variable holding the signing secret, instead of a file.'),
    timeout: positiveDuration.default(5000).describe('Deadline of one send; a send never holds up a restart.'),
    at_mobiles: z.array(z.string().regex(/^\+?[0-9][0-9-]{2,19}$/, 'a mobile number such as 13800000000')).optional().describe('Mobile numbers to @-mention in each message.'),
    at_all: z.boolean().default(false).describe('@-mention everyone in the group.'),
  })
  .superRefine((d, ctx) => {
    const given = (['url', 'url_file', 'url_env'] as const).filter((k) => d[k] !== undefined);
    if (given.length === 0) ctx.addIssue({ code: 'custom', path: ['url'], message: "required: set one of url, url_file or url_env (the robot's webhook URL)" });
    if (given.length > 1) ctx.addIssue({ code: 'custom', path: [given[1]!], message: `set one of url, url_file or url_env, not ${given.join(' and ')}` });
    if (d.secret_file !== undefined && d.secret_env !== undefined) ctx.addIssue({ code: 'custom', path: ['secret_env'], message: 'set one of secret_file or secret_env, not both' });
  });

export const remediatorSchema = z
  .strictObject({
    auth: z
      .strictObject({
        bearer_token_file: z.string().min(1).optional().describe('A file holding the bearer token Alertmanager sends (at least 16 characters).'),
        bearer_token_env: z.string().min(1).optional().describe('The environment variable holding it, instead of a file.'),
      })
      .refine((a) => (a.bearer_token_file === undefined) !== (a.bearer_token_env === undefined), {
        message: 'set exactly one of bearer_token_file or bearer_token_env',
      })
      .optional()
      .describe('How webhook senders authenticate; required to run the remediator.'),
    match: z.record(z.string(), z.string()).default({ remediate: 'restart' }).describe('Labels an alert must carry (all of them, equal values) to be acted on.'),
    max_body_bytes: z.int().min(1024).default(1 << 20).describe('A larger webhook body is refused with 413.'),
    stale_after: positiveDuration.default(3_600_000).describe('A webhook alert that started longer ago than this (a replay) is stale: nothing is done. Alerts read from Alertmanager (active now) are never stale by age.'),
    alertmanager: z
      .strictObject({
        url: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL such as http://127.0.0.1:9093' }).describe("Alertmanager's base URL."),
        interval: positiveDuration.default(15_000).describe('How often its active alerts are read.'),
        receiver: z.string().min(1).default('qwen-sentinel-remediator').describe('Only alerts routed to this receiver are read.'),
      })
      .optional()
      .describe('Reconcile with Alertmanager\'s active alerts (GET /api/v2/alerts) on this interval, through the same stages: a firing alert is acted on even when no notification comes.'),
    notify: z
      .strictObject({ dingtalk: dingtalkSchema.optional().describe('A DingTalk group, through a custom robot.') })
      .optional()
      .describe('Where the remediator itself reports every action it ran (Alertmanager has no DingTalk receiver).'),
  })
  .default({ match: { remediate: 'restart' }, max_body_bytes: 1 << 20, stale_after: 3_600_000 });


export type RemediatorSection = z.output<typeof remediatorSchema>;

/** A target as the remediator reads it: how to restart it, when it has a remediation. */
export type RemediationTarget = Target & { remediation?: Remediation | undefined };

/** What the remediator reads of a config. */
export interface RemediatorConfig extends ProbingConfig {
  targets: readonly RemediationTarget[];
  remediator: RemediatorSection;
}
