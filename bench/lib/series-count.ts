// Counting series the way a TSDB sees them: sample lines of a text exposition, whatever their
// names (names change between versions; lines are what Prometheus ingests and stores).

/** The sample lines of a text exposition: neither comments (# HELP, # TYPE) nor blank. */
export function sampleLines(text: string): string[] {
  return text.split('\n').filter((line) => line !== '' && !line.startsWith('#'));
}

/** How many sample lines carry the label target="<target>" (exactly that value). */
export function targetSeries(text: string, target: string): number {
  const label = `target="${target.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
  let count = 0;
  for (const line of sampleLines(text)) {
    const open = line.indexOf('{');
    const close = line.lastIndexOf('}');
    if (open < 0 || close < open) continue;
    // Labels start after '{' or ','; a value holding the same text elsewhere does not count.
    const body = line.slice(open + 1, close);
    if (body.startsWith(label) || body.includes(`,${label}`)) count++;
  }
  return count;
}

/** Sample lines per metric family (histogram _bucket/_sum/_count and counters' _total kept apart). */
export function linesByName(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of sampleLines(text)) {
    const m = /^[A-Za-z_:][A-Za-z0-9_:]*/.exec(line);
    if (m) out.set(m[0], (out.get(m[0]) ?? 0) + 1);
  }
  return out;
}
