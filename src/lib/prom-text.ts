// Reads a model server's own /metrics: only sample lines, summed per metric name over its labels
// (vLLM labels by engine, SGLang by rank); comments, exemplars and timestamps are ignored.

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
