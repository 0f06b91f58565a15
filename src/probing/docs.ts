// docs/probes.md, generated from the same tables the config schema and the code use:
// `npm run docs` writes it, and a test fails when the committed file is out of date.
import { z } from 'zod';
import { servers } from '../servers/index.ts';
import { probes } from './probes/index.ts';
import type { AnyProbe } from './probes/types.ts';
import { roundMetrics } from './round.ts';
import type { MetricDef } from './series.ts';

interface JsonProperty {
  type?: string;
  default?: unknown;
  description?: string;
}

function optionRows(probe: AnyProbe): string[] {
  const schema = z.toJSONSchema(probe.options, { io: 'input', unrepresentable: 'any' }) as { properties?: Record<string, JsonProperty> };
  const entries = Object.entries(schema.properties ?? {});
  if (entries.length === 0) return ['No options.'];
  return [
    '| option | type | default | meaning |',
    '|---|---|---|---|',
    ...entries.map(([name, p]) => `| \`${name}\` | ${p.type ?? ''} | ${p.default === undefined ? '' : `\`${JSON.stringify(p.default)}\``} | ${p.description ?? ''} |`),
  ];
}

const metricRow = (m: MetricDef) => `| \`${m.name}\` | ${m.type} | ${['target', ...m.labelNames].join(', ')} | ${m.help} |`;

export function probesReference(): string {
  const lines = [
    '# Probes, modules and server types',
    '',
    '<!-- Generated from src/exporter/probes, src/servers and src/config/schema.ts by `npm run docs`; do not edit. -->',
    '',
    'A **module** is a named list of probes, run in order each round, with their options (`modules:` in the config, as',
    "blackbox_exporter's). qwen-sentinel ships one module per **server type**, named after it; a config may override",
    "them or add its own. A target names a `module`, or gets its `server` type's; a target with neither is `openai`.",
    '',
    '## Server types and their shipped modules',
    '',
    '| server | probes, in order | what it means |',
    '|---|---|---|',
    ...Object.values(servers).map((s) => `| \`${s.name}\` | ${s.defaultProbes.join(', ')} | ${s.description} |`),
    '',
    'Module keys: `server`, `probes` (in the order a round runs them), `timeout` (each probe\'s deadline, default `10s`),',
    '`max_response_bytes` (default 1 MiB), and one key per probe with its options.',
    '',
    '## Metrics every probe has',
    '',
    'Recorded by the round for each probe of a module (`/probe` answers the gauges only, without the `target` label).',
    '',
    '| metric | type | labels | meaning |',
    '|---|---|---|---|',
    ...roundMetrics.map(metricRow),
    '',
  ];
  for (const probe of Object.values(probes) as AnyProbe[]) {
    lines.push(`## \`${probe.name}\``, '', probe.description, '', ...optionRows(probe), '', `Failure reasons: ${probe.reasons.map((r) => `\`${r}\``).join(', ')}.`, '');
    if (probe.metrics.length > 0) lines.push('| metric | type | labels | meaning |', '|---|---|---|---|', ...probe.metrics.map(metricRow), '');
  }
  return `${lines.join('\n').trimEnd()}\n`;
}
