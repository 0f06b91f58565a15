// Prometheus-style durations ("1h30m", "15s", "250ms"): units largest first, each at most once.
const msPer = { y: 365 * 86_400_000, w: 7 * 86_400_000, d: 86_400_000, h: 3_600_000, m: 60_000, s: 1000, ms: 1 } as const;
type Unit = keyof typeof msPer;
const order: readonly Unit[] = ['y', 'w', 'd', 'h', 'm', 's', 'ms'];
const pattern = new RegExp(`^${order.map((u) => `(?:(?<${u}>\\d+)${u}${u === 'm' ? '(?!s)' : ''})?`).join('')}$`);

/** Parses a Prometheus duration into milliseconds; undefined when the text is not one. */
export function parseDuration(text: string): number | undefined {
  if (text === '0') return 0;
  const groups = pattern.exec(text)?.groups;
  if (!groups || text === '') return undefined;
  return order.reduce((total, unit) => total + Number(groups[unit] ?? 0) * msPer[unit], 0);
}
