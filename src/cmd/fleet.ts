// `qwen-sentinel fleet`: configuration for a fleet of hosts without Kubernetes, generated from an
// inventory. `fleet alertmanager` turns the shipped (or the operator's) alertmanager.yml into one
// with a route and a webhook receiver per host, so each host's remediator hears only the alerts of
// its own host. (Alertmanager could not template a webhook URL from an alert's labels until
// alertmanager PR #4798, merged late 2025; Debian 12 ships 0.25: one receiver per host is the
// pattern every release understands.) The subcommands are a table, as the CLI's commands are.
import { rename, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isMap, isScalar, isSeq, parseDocument, type Document, type YAMLSeq } from 'yaml';
import { z } from 'zod';
import { ConfigError, readYamlFileWith } from '../config/load.ts';
import { formatFlags, parseFlagsAndArgs, UsageError, type FlagSpecs } from '../lib/flags.ts';
import { shippedDir } from './stack/prometheus.ts';

/** The shipped receiver the remediator's route sends to: the template of each host's. */
export const remediatorReceiver = 'qwen-sentinel-remediator';
/** The receiver of one host's remediator. */
export const hostReceiver = (host: string): string => `${remediatorReceiver}-${host}`;

// A host name is a label value in a matcher and part of a receiver name: keep it to what DNS
// names and inventory tools use, so it never needs quoting rules of its own.
const hostName = z
  .string({ error: (issue) => (issue.input === undefined ? 'required: the host\'s name, as its targets\' `host` label has it' : 'must be a string') })
  .regex(/^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$/, 'letters, digits, ".", "_" and "-", starting and ending with a letter or digit (e.g. gpu-07)');

export const inventoryHostSchema = z.strictObject({
  name: hostName.describe('The host, exactly as the `host` label of its targets names it (prometheus/targets/*.yml). Its alerts match `host="NAME"`; its receiver is `qwen-sentinel-remediator-NAME`.'),
  url: z.url({ protocol: /^https?$/, error: (issue) => (issue.input === undefined ? "required: the webhook URL of this host's remediator, such as http://gpu-07:19151/webhook" : 'must be an http(s) URL such as http://gpu-07:19151/webhook') }).describe("The webhook URL of this host's remediator (its POST /webhook), as Alertmanager reaches it."),
  token_file: z.string({ error: (issue) => (issue.input === undefined ? "required: the file holding this remediator's webhook token" : 'must be a string') }).min(1).describe("The file, on the Alertmanager machine, holding this remediator's webhook token (its `remediator.auth`): the receiver's `credentials_file`."),
});

export const inventorySchema = z
  .strictObject({
    hosts: z.array(inventoryHostSchema).min(1, 'list at least one host').describe('The hosts of the fleet, each with its own remediator.'),
  })
  .superRefine((inventory, ctx) => {
    const seen = new Map<string, number>();
    inventory.hosts.forEach((host, i) => {
      const first = seen.get(host.name);
      if (first !== undefined) ctx.addIssue({ code: 'custom', path: ['hosts', i, 'name'], message: `duplicate host "${host.name}" (also hosts[${first}].name)` });
      else seen.set(host.name, i);
    });
  });

export type Inventory = z.output<typeof inventorySchema>;

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The YAML sequence at `path`, and the index of its item whose `field` is `value`. */
function findItem(doc: Document, path: string[], field: string, value: string, what: string): { seq: YAMLSeq; index: number; item: Json } {
  const seq = doc.getIn(path, true);
  if (!isSeq(seq)) throw new UsageError(`--base: ${path.join('.')} is not a list`);
  const index = seq.items.findIndex((node) => isMap(node) && node.get(field) === value);
  if (index < 0) throw new UsageError(`--base: no ${what} with ${field} "${value}" in ${path.join('.')}: it is the template of each host's (see prometheus/alertmanager.yml)`);
  return { seq, index, item: (seq.items[index] as { toJSON(): Json }).toJSON() };
}

/** One host's webhook receiver: the shipped one's settings, with the host's URL and token file. */
function receiverFor(template: Json, host: Inventory['hosts'][number]): Json {
  const receiver = structuredClone(template);
  receiver.name = hostReceiver(host.name);
  const webhooks = Array.isArray(receiver.webhook_configs) ? (receiver.webhook_configs as Json[]) : [];
  if (webhooks.length === 0) throw new UsageError(`--base: receiver "${remediatorReceiver}" has no webhook_configs`);
  for (const webhook of webhooks) {
    webhook.url = host.url;
    delete webhook.url_file;
    const http = isObject(webhook.http_config) ? webhook.http_config : (webhook.http_config = {});
    const authorization = isObject(http.authorization) ? http.authorization : (http.authorization = { type: 'Bearer' });
    delete authorization.credentials;
    authorization.credentials_file = host.token_file;
  }
  return receiver;
}

/**
 * The alertmanager.yml for a fleet: the base file with its remediator route and receiver replaced
 * by one of each per host, in the route's place (before the people routes, `continue: true` kept
 * as the template has it). Everything else of the base is kept, its comments too (but its header).
 */
export function fleetAlertmanagerConfig(inventory: Inventory, baseText: string, sources: { inventory: string; base: string }): { text: string; warnings: string[] } {
  const doc = parseDocument(baseText);
  if (doc.errors.length > 0) throw new UsageError(`--base: ${sources.base}: invalid YAML: ${doc.errors[0]!.message.split('\n')[0]}`);
  const routes = findItem(doc, ['route', 'routes'], 'receiver', remediatorReceiver, 'route');
  const receivers = findItem(doc, ['receivers'], 'name', remediatorReceiver, 'receiver');
  const template = routes.item;
  const matchers = Array.isArray(template.matchers) ? (template.matchers as string[]) : [];

  const hostRoutes = inventory.hosts.map((host) => {
    const node = doc.createNode({ ...template, receiver: hostReceiver(host.name), matchers: [`host="${host.name}"`, ...matchers] });
    const list = node.get('matchers', true);
    if (isSeq(list)) {
      list.flow = true;
      for (const item of list.items) if (isScalar(item)) item.type = 'QUOTE_SINGLE';
    }
    return node;
  });
  hostRoutes[0]!.commentBefore = ` One route per host of ${sources.inventory} (qwen-sentinel fleet alertmanager): its restart alerts go to
 its own remediator, and on to people (continue). A restart alert without a known host label
 reaches people only.`;
  routes.seq.items.splice(routes.index, 1, ...hostRoutes);
  receivers.seq.items.splice(receivers.index, 1, ...inventory.hosts.map((host) => doc.createNode(receiverFor(receivers.item, host))));

  // The base's header describes the base; this file's says where it came from.
  if (isMap(doc.contents)) {
    doc.contents.commentBefore = null;
    const first = doc.contents.items[0]?.key;
    if (isScalar(first)) first.commentBefore = null;
  }
  doc.commentBefore = ` Generated by \`qwen-sentinel fleet alertmanager\` from ${sources.inventory} and ${sources.base}:
 regenerate it when the inventory changes rather than edit it. One webhook receiver per host:
 Alertmanager could not take a webhook URL from the alert's labels until alertmanager PR #4798
 (December 2025; Debian 12 ships 0.25). See docs/fleets.md.`;

  // An inhibition equal on `target` alone lets one host's crash mute another host's alert for a
  // server of the same name.
  const warnings: string[] = [];
  const inhibit = (doc.toJS() as Json).inhibit_rules;
  for (const [i, rule] of (Array.isArray(inhibit) ? (inhibit as Json[]) : []).entries()) {
    const equal = Array.isArray(rule.equal) ? (rule.equal as string[]) : [];
    if (equal.includes('target') && !equal.includes('host')) warnings.push(`inhibit_rules[${i}].equal has target but not host: one host's alert may mute another's for a server of the same name; add host (as prometheus/alertmanager.yml does)`);
  }
  return { text: doc.toString({ lineWidth: 0, flowCollectionPadding: false }), warnings };
}

export const fleetAlertmanagerFlags = {
  inventory: { type: 'string', placeholder: 'FILE', help: 'The inventory (YAML): the hosts, each with its remediator\'s webhook URL and token file (docs/fleets.md).' },
  base: { type: 'string', placeholder: 'FILE', help: "The alertmanager.yml whose remediator route and receiver are repeated per host; everything else is kept. Default: the shipped prometheus/alertmanager.yml." },
  output: { type: 'string', placeholder: 'FILE', help: 'Write the result to FILE (replaced atomically, only when the inventory and base are valid) instead of standard output.' },
} satisfies FlagSpecs;

async function runFleetAlertmanager(argv: string[]): Promise<number> {
  const { flags } = parseFlagsAndArgs(argv, fleetAlertmanagerFlags, 0);
  if (!flags.inventory) throw new UsageError('--inventory is required');
  let inventory: Inventory;
  try {
    inventory = (await readYamlFileWith(inventorySchema, flags.inventory)).config;
  } catch (err) {
    // A bad inventory is a bad invocation of a generator: exit 2, the field named.
    if (err instanceof ConfigError) throw new UsageError(`--inventory: ${err.message}`);
    throw err;
  }
  const base = flags.base ?? join(shippedDir, 'alertmanager.yml');
  let baseText: string;
  try {
    baseText = await readFile(base, 'utf8');
  } catch (err) {
    throw new UsageError(`--base: ${base}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const { text, warnings } = fleetAlertmanagerConfig(inventory, baseText, { inventory: flags.inventory, base: flags.base ?? 'prometheus/alertmanager.yml' });
  for (const warning of warnings) process.stderr.write(`qwen-sentinel fleet alertmanager: warning: ${warning}\n`);
  if (flags.output === undefined) {
    process.stdout.write(text);
  } else {
    const temp = `${flags.output}.tmp-${process.pid}`;
    await writeFile(temp, text);
    await rename(temp, flags.output);
  }
  return 0;
}

/** The subcommands: what each does, its flags and its code. */
const subcommands: Record<string, { summary: string; flags: FlagSpecs; run: (argv: string[]) => Promise<number> }> = {
  alertmanager: {
    summary: 'Print an alertmanager.yml with a route and a webhook receiver per host of the inventory.',
    flags: fleetAlertmanagerFlags,
    run: runFleetAlertmanager,
  },
};

export const fleetUsage = `Usage: qwen-sentinel fleet SUBCOMMAND [flags]

Configuration for a fleet of hosts without Kubernetes, generated from an inventory of the hosts
(docs/fleets.md). Exit status: 0 written, 2 bad invocation (unknown flag, an invalid inventory or
base, the field named).

${Object.entries(subcommands)
  .map(([name, s]) => `qwen-sentinel fleet ${name} [flags]\n  ${s.summary}\n\n${formatFlags(s.flags)}`)
  .join('\n\n')}`;

export async function runFleet(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name.startsWith('-')) throw new UsageError(`give a subcommand: ${Object.keys(subcommands).join(', ')}`);
  const sub = Object.hasOwn(subcommands, name) ? subcommands[name] : undefined;
  if (!sub) throw new UsageError(`unknown subcommand "${name}" (known: ${Object.keys(subcommands).join(', ')})`);
  return sub.run(rest);
}
