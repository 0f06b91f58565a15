// The Prometheus text format (0.0.4), both ways. Writing: escapes and numbers as prom-client
// writes them, for the exporter's own stores. Reading a model server's own /metrics: only sample
// lines, summed per metric name over its labels (vLLM labels by engine, SGLang by rank); comments,
// exemplars and timestamps are ignored.

/** A label value, escaped: backslash, double quote and newline. */
export const escapeLabelValue = (v: string) => (/[\\"\n]/.test(v) ? v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n') : v);
/** HELP text, escaped: backslash and newline. */
export const escapeHelp = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
/** A sample value: NaN, +Inf and -Inf spelled as the format wants. */
export const formatValue = (v: number) => (Number.isNaN(v) ? 'NaN' : v === Infinity ? '+Inf' : v === -Infinity ? '-Inf' : String(v));

/** Sums every sample of each wanted metric family; names absent from the text are absent here. */
export function sumSamples(text: string, names: readonly string[]): Map<string, number> {
  const wanted = new Set(names);
  const sums = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!match || !wanted.has(match[1]!)) continue;
    const value = Number(match[3]);
    if (Number.isFinite(value)) sums.set(match[1]!, (sums.get(match[1]!) ?? 0) + value);
  }
  return sums;
}

/** The value of one sample whose labels include `label="value"`, summed. */
export function sumWithLabel(text: string, name: string, label: string, value: string): number | undefined {
  let sum: number | undefined;
  const needle = `${label}="${value}"`;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) || !line.includes(needle)) continue;
    const v = Number(/\}\s+(\S+)/.exec(line)?.[1]);
    if (Number.isFinite(v)) sum = (sum ?? 0) + v;
  }
  return sum;
}
