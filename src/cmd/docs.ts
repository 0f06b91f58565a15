// `npm run docs`: writes the reference pages that are generated from the code's own tables and
// schemas; a test fails when a committed page is out of date.
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { exporterSchema } from '../exporter/config.ts';
import { exporterRegistry } from '../exporter/server.ts';
import { ConfigReloader } from '../lib/reloader.ts';
import { silentLogger } from '../lib/log.ts';
import type { Registry } from '../lib/prom-client.ts';
import { configTable, metricsTable, type MetricDoc } from '../lib/schema-docs.ts';
import { probesReference } from '../probing/docs.ts';
import { moduleFields, targetFields } from '../probing/module.ts';
import { allMetrics } from '../probing/round.ts';
import { changed, nameEndings, renamed } from '../probing/renamed.ts';
import { actions, remediationMembers } from '../remediator/actions/index.ts';
import { remediatorSchema } from '../remediator/config.ts';
import { RemediatorMetrics } from '../remediator/metrics.ts';
import { z } from 'zod';
import type { FlagSpecs } from '../lib/flags.ts';
import { exporterFlags } from './exporter.ts';
import { probeFlags } from './probe.ts';
import { remediatorFlags } from './remediator.ts';
import { simFlags } from './sim.ts';
import { fleetAlertmanagerFlags } from './fleet.ts';
import { stackFlags } from './stack/main.ts';

const header = (title: string, sources: string) => [`# ${title}`, '', `<!-- Generated from ${sources} by \`npm run docs\`; do not edit. -->`, '', '[Back to the README](../README.md)', ''];

export function configurationReference(): string {
  const lines = [
    ...header('Configuration', 'the config schema (src/cmd/config.ts and the sections it joins)'),
    'One YAML file, read by the exporter, the remediator and the stack (`--config.file`), validated once',
    'as it is read: unknown keys, wrong types and broken cross-field rules are refused with the field named,',
    'at start-up and on reload (the running config is kept). `qwen-sentinel exporter --config.file=FILE',
    '--config.check` checks a file. Durations are Prometheus durations (`500ms`, `15s`, `1m30s`).',
    '',
    'Top-level keys: `modules`, `targets`, `exporter`, `remediator`. An annotated example:',
    '[examples/sentinel.yml](../examples/sentinel.yml).',
    '',
    '## `targets[]`',
    '',
    'The model servers the exporter probes on its own schedule, and the remediator may restart.',
    '',
    ...configTable(z.strictObject(targetFields), 'targets[]'),
    '| `targets[].remediation` | object | | | How the remediator restarts this server: one of the actions below. Without it the remediator leaves the target alone. |',
    '',
    '## `modules.<name>`',
    '',
    'A server type, the probes a round runs and their options; one module per server type ships, named',
    'after it. The probes\' own options are in [probes.md](probes.md).',
    '',
    ...configTable(moduleFields, 'modules.<name>').filter((row) => !/^\| `modules\.<name>\.(models|health|progress|chat|thinking)\./.test(row)),
    '',
    '## `targets[].remediation`',
    '',
    'One action kind per target (`action:`), with its own keys and the common ones (`startup_timeout`,',
    '`confirm`, `circuit`). How each action behaves: [remediator.md](remediator.md).',
    '',
  ];
  for (const [name, schema] of Object.entries(remediationMembers)) {
    lines.push(`### \`action: ${name}\``, '', actions[name as keyof typeof actions].description, '', ...configTable(schema, 'remediation'), '');
  }
  lines.push('## `exporter`', '', ...configTable(exporterSchema, 'exporter'), '', '## `remediator`', '', ...configTable(remediatorSchema, 'remediator'), '');
  return `${lines.join('\n').trimEnd()}\n`;
}

/** A registry's metrics, prom-client's default process and Node.js metrics left out. */
function own(registry: Registry): MetricDoc[] {
  return registry
    .getMetricsAsArray()
    .map((m) => m as unknown as { name: string; help: string; type: string; labelNames?: string[] })
    .filter((m) => !/^(process|nodejs)_/.test(m.name))
    .map((m) => ({ name: m.name, type: m.type, labelNames: m.labelNames ?? [], help: m.help }));
}

/** The config reloader's metrics, as each component that reads a file exports them. */
function reloaderMetrics(): MetricDoc[] {
  const registry = exporterRegistry().registry;
  registry.clear();
  new ConfigReloader({ source: { path: '', text: '', read: () => Promise.reject(new Error('unused')) }, registry, logger: silentLogger, apply: async () => {} });
  return own(registry);
}

/** The names contract (src/probing/renamed.ts): names gone since 0.1.0 and names whose series changed. */
function renamesSection(): string[] {
  const cell = (text: string) => text.replaceAll('|', '\\|');
  return [
    '## Renamed and removed',
    '',
    'Since 0.1.0. For a transition, [prometheus/rules/qwen-sentinel.legacy-names.yml](../prometheus/rules/qwen-sentinel.legacy-names.yml)',
    '(not loaded by default: add it to `rule_files`) records the renamed gauges under their old names.',
    '',
    '| old name | was | now | how to read it now |',
    '|---|---|---|---|',
    ...renamed.map((r) => `| \`${r.old}\` | ${r.oldType} | \`${r.now}\` | ${cell(r.note)} |`),
    '',
    'Kept, with other series:',
    '',
    '| name | what changed |',
    '|---|---|',
    ...changed.map((c) => `| \`${c.name}\` | ${cell(c.note)} |`),
    '',
  ];
}

export function metricsReference(): string {
  const exporter = own(exporterRegistry().registry);
  const remediator = own(new RemediatorMetrics().registry);
  const lines = [
    ...header('Metrics', 'the metric definitions in src/probing, src/exporter and src/remediator'),
    'Every component also exports prom-client\'s default `process_*` and `nodejs_*` metrics, and',
    '`qwen_sentinel_build_info`. One name per quantity, in base units: every name ends in a unit',
    `(${nameEndings.units.map((w) => `\`_${w}\``).join(', ')}), in ${nameEndings.kinds.map((w) => `\`_${w}\``).join(' or ')} (counters, info series), or in a word`,
    `for a count or a state without a unit (${nameEndings.unitless.map((w) => `\`_${w}\``).join(', ')}). Names that changed: [Renamed and removed](#renamed-and-removed).`,
    '',
    '## Exporter: the targets\' series',
    '',
    'One set per target (label `target`, plus `module`, `server` and `model` where shown). `/probe` answers',
    'the same gauges without the `target` label. What each probe records: [probes.md](probes.md).',
    '',
    ...metricsTable(allMetrics.map((m) => ({ ...m, labelNames: ['target', ...m.labelNames] }))),
    '',
    '## Exporter: its own',
    '',
    ...metricsTable([...exporter, ...reloaderMetrics()]),
    '',
    '## Remediator',
    '',
    ...metricsTable([...remediator, ...reloaderMetrics()]),
    '',
    ...renamesSection(),
  ];
  return `${lines.join('\n').trimEnd()}\n`;
}

const commandFlags: Record<string, FlagSpecs> = { stack: stackFlags, exporter: exporterFlags, remediator: remediatorFlags, probe: probeFlags, sim: simFlags, 'fleet alertmanager': fleetAlertmanagerFlags };

export function flagsReference(): string {
  const lines = [
    ...header('Flags', "each command's flag table (src/cmd/)"),
    'Prometheus-style flags: `--name=value`, booleans as `--name` or `--name=false`. Through npm:',
    '`npm start -- --flag=value` (the `stack` command). `qwen-sentinel COMMAND --help` prints the same.',
    '',
  ];
  for (const [command, flags] of Object.entries(commandFlags)) {
    lines.push(`## \`qwen-sentinel ${command}\``, '', '| flag | default | meaning |', '|---|---|---|');
    for (const [name, spec] of Object.entries(flags)) {
      const flag = `--${name}${spec.type === 'string' ? `=${spec.placeholder ?? 'VALUE'}` : ''}`;
      const fallback = spec.default === undefined || spec.default === false ? '' : `\`${String(spec.default)}\``;
      lines.push(`| \`${flag}\` | ${fallback} | ${spec.help.replaceAll('|', '\\|')}${spec.multiple ? ' Repeatable.' : ''} |`);
    }
    lines.push('');
  }
  return `${lines.join('\n').trimEnd()}\n`;
}

// The Helm chart (deploy/helm/qwen-sentinel) reads no file outside itself: the rules and the
// dashboard are copied into its files/ from the one source of each, never edited there.
const repoFile = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');

/** prometheus/rules/qwen-sentinel.rules.yml, as the chart's PrometheusRule embeds it. */
export const chartRules = () => `# Generated from prometheus/rules/qwen-sentinel.rules.yml by \`npm run docs\`; do not edit.\n${repoFile('prometheus/rules/qwen-sentinel.rules.yml')}`;

/** grafana/dashboards/qwen-sentinel.json (JSON has no comments: a plain copy), for the chart's dashboard ConfigMap. */
export const chartDashboard = () => repoFile('grafana/dashboards/qwen-sentinel.json');

export const generatedDocs: Record<string, () => string> = {
  'docs/probes.md': probesReference,
  'docs/configuration.md': configurationReference,
  'docs/metrics.md': metricsReference,
  'docs/flags.md': flagsReference,
  'deploy/helm/qwen-sentinel/files/qwen-sentinel.rules.yml': chartRules,
  'deploy/helm/qwen-sentinel/files/qwen-sentinel.json': chartDashboard,
};

if (import.meta.main) {
  for (const [file, render] of Object.entries(generatedDocs)) await writeFile(new URL(`../../${file}`, import.meta.url), render());
}
