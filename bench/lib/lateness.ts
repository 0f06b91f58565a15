// Round lateness from a recording target's arrival times: how far each round started from where
// the schedule put it. Pure, so the arithmetic is tested apart from the processes.

export interface Lateness {
  /** ms each round started after it was due (gap between two round starts minus the interval). */
  late: number[];
  /** Over how much of the interval the markers' rounds are spread (s); 0 = all at once. */
  spread: number;
  rounds: number;
}

/**
 * From each marker's arrival times (epoch ms): the lateness of its rounds within [from, to], each
 * round against the one before it (the last before the window anchors the first in it).
 */
export function latenessOf(arrivals: Readonly<Record<string, readonly number[]>>, from: number, to: number, intervalMs: number): Lateness {
  const T = intervalMs;
  const late: number[] = [];
  const phases: number[] = [];
  let rounds = 0;
  for (const times of Object.values(arrivals)) {
    const inWindow = times.filter((t) => t >= from && t <= to);
    rounds += inWindow.length;
    const anchor = times.filter((t) => t < from).at(-1);
    const series = anchor === undefined ? inWindow : [anchor, ...inWindow];
    for (let i = 1; i < series.length; i++) late.push(series[i]! - series[i - 1]! - T);
    if (inWindow[0] !== undefined) phases.push((inWindow[0] - from) % T);
  }
  // The smallest arc of the interval holding every marker's phase.
  phases.sort((a, b) => a - b);
  let largestGap = phases.length ? T - (phases.at(-1)! - phases[0]!) : T;
  for (let i = 1; i < phases.length; i++) largestGap = Math.max(largestGap, phases[i]! - phases[i - 1]!);
  return { late, spread: phases.length > 1 ? (T - largestGap) / 1000 : 0, rounds };
}
