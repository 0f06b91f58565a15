// Reference tables written from the code's own definitions: config keys from a zod schema (its
// types, defaults and .describe() texts), metrics from their definitions. Knows no domain.
import { z } from 'zod';

interface JsonSchema {
  type?: string | string[];
  enum?: unknown[];
  const?: unknown;
  default?: unknown;
  description?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  additionalProperties?: JsonSchema | boolean;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  minimum?: number;
  pattern?: string;
  format?: string;
}

const code = (v: unknown) => `\`${typeof v === 'string' ? v : JSON.stringify(v)}\``;
const cell = (text: string) => text.replaceAll('|', '\\|').replaceAll('\n', ' ');

function typeOf(s: JsonSchema): string {
  if (s.const !== undefined) return code(s.const);
  if (s.enum) return s.enum.map(code).join(', ');
  const alternatives = s.anyOf ?? s.oneOf;
  if (alternatives) return [...new Set(alternatives.map(typeOf))].join(' or ');
  if (s.type === 'array') return `list of ${s.items ? typeOf(s.items) : 'values'}`;
  if (s.type === 'object' && typeof s.additionalProperties === 'object' && !s.properties) return `map of ${typeOf(s.additionalProperties)}`;
  if (s.format === 'uri') return 'URL';
  if (s.format === 'duration') return 'duration';
  return Array.isArray(s.type) ? s.type.join(' or ') : (s.type ?? 'any');
}

/** 90000 -> "1m30s": a duration default as a config file writes it. */
function durationText(ms: number): string {
  if (ms % 1000 !== 0) return `${ms}ms`;
  const units: Array<[string, number]> = [['h', 3600], ['m', 60], ['s', 1]];
  let rest = ms / 1000;
  let text = '';
  for (const [unit, size] of units) if (rest >= size) [text, rest] = [`${text}${Math.floor(rest / size)}${unit}`, rest % size];
  return text;
}

const objectPart = (s: JsonSchema | undefined) => s?.anyOf?.find((a) => a.properties || a.items || typeof a.additionalProperties === 'object') ?? s;

/**
 * One row per key, nested keys dotted (`a.b`), list items as `a[]`, map values as `a.<name>`. Types
 * come from the input schema (what a file holds), defaults from the output one; a string field
 * whose default is a number is a duration.
 */
function rows(input: JsonSchema, output: JsonSchema | undefined, path: string, out: string[]): void {
  const [i, o] = [objectPart(input)!, objectPart(output)];
  if (i.type === 'array' && i.items) return rows(i.items, o?.items, `${path}[]`, out);
  if (typeof i.additionalProperties === 'object' && !i.properties) return rows(i.additionalProperties, typeof o?.additionalProperties === 'object' ? o.additionalProperties : undefined, `${path}.<name>`, out);
  for (const [key, p] of Object.entries(i.properties ?? {})) {
    const name = path ? `${path}.${key}` : key;
    const fallback = p.default ?? o?.properties?.[key]?.default;
    const isDuration = p.format === 'duration' || (p.type === 'string' && typeof fallback === 'number');
    const required = i.required?.includes(key) && fallback === undefined ? 'yes' : '';
    const shown = fallback === undefined || (typeof fallback === 'object' && fallback !== null && Object.keys(fallback).length > 1) ? '' : isDuration ? code(durationText(fallback as number)) : code(fallback);
    out.push(`| \`${name}\` | ${cell(isDuration ? 'duration' : typeOf(p))} | ${required} | ${cell(shown)} | ${cell(p.description ?? '')} |`);
    rows(p, o?.properties?.[key], name, out);
  }
}

/** A markdown table of every key of an object schema, as written in a config file. */
export function configTable(schema: z.ZodType, prefix = ''): string[] {
  const json = (io: 'input' | 'output') => z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as JsonSchema;
  const out = ['| key | type | required | default | meaning |', '|---|---|---|---|---|'];
  rows(json('input'), json('output'), prefix, out);
  return out;
}

export interface MetricDoc {
  name: string;
  type: string;
  labelNames: readonly string[];
  help: string;
}

/** A markdown table of metrics, sorted by name. */
export function metricsTable(metrics: readonly MetricDoc[]): string[] {
  return [
    '| metric | type | labels | meaning |',
    '|---|---|---|---|',
    ...[...metrics].sort((a, b) => a.name.localeCompare(b.name)).map((m) => `| \`${m.name}\` | ${m.type} | ${m.labelNames.join(', ')} | ${cell(m.help)} |`),
  ];
}
