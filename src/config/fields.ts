// Field schemas shared by the config and the probes' option schemas (which sit in their own files).
import { z } from 'zod';
import { parseDuration } from '../lib/duration.ts';

/** A Prometheus duration string ("15s", "1m30s"), parsed to milliseconds. */
export const duration = z.string({ error: 'expected a duration such as 10s or 1m30s' }).meta({ format: 'duration' }).transform((text, ctx) => {
  const ms = parseDuration(text);
  if (ms === undefined) {
    ctx.addIssue({ code: 'custom', message: `not a duration: "${text}" (use e.g. 500ms, 15s, 1m30s)` });
    return z.NEVER;
  }
  return ms;
});

// Durations that drive timers: Node clamps a timer beyond ~24.8 days to 1 ms, so cap them.
const maxTimerMs = 24 * 3600_000;
export const positiveDuration = duration
  .refine((ms) => ms > 0, 'must be greater than 0')
  .refine((ms) => ms <= maxTimerMs, 'must be at most 24h');
