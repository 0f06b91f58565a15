// The decision a trigger gets, as Alertmanager's notification pipeline decides: a list of named
// stages in one visible order, each of which may stop the trigger with its decision. The stage
// names are the decisions counted in llm_remediation_alerts_total and written to the history.
import type { Action } from './actions/types.ts';
import type { TargetRecord } from './state.ts';

export const decisions = ['resolved', 'not_matching', 'invalid', 'unknown_target', 'stale', 'duplicate', 'starting', 'in_progress', 'cooldown', 'circuit_open', 'recovered', 'restart'] as const;
export type Decision = (typeof decisions)[number];

/** What asks for a restart: an alert from the webhook or from Alertmanager's API, or an exit. */
export interface Trigger {
  source: 'webhook' | 'reconcile' | 'exit';
  status: 'firing' | 'resolved';
  labels: Record<string, string>;
  fingerprint: string;
  startsAt: string;
  endsAt?: string | undefined;
}

/** A target the remediator acts for, with the settings its stages read. */
export interface ManagedTarget {
  name: string;
  action: Action;
  owns: boolean;
  cooldownMs: number;
  startupTimeoutMs: number;
  confirm: boolean;
  circuit: { maxRestarts: number; windowMs: number };
  restartOnExit: boolean;
}

export interface StageInput {
  trigger: Trigger;
  target: ManagedTarget;
  record: TargetRecord;
  /** Monotonic and Unix milliseconds. */
  now: number;
  wall: number;
  staleAfterMs: number;
  /** The quick check just before acting: does the server answer now? */
  answersNow: () => Promise<boolean>;
}

export interface Stage {
  name: Decision;
  /** Exits skip the stages about alerts (a dead process is neither stale nor starting). */
  forExits: boolean;
  decide(input: StageInput): boolean | Promise<boolean>;
}

const maxLabelChars = 256;

/** Labels that name things we act on must be sane before they reach logs, env or argv. */
export function invalidReason(labels: Record<string, string>): string | undefined {
  for (const key of ['alertname', 'target']) {
    const value = labels[key] ?? '';
    if (value.length > maxLabelChars) return `label ${key} is longer than ${maxLabelChars} characters`;
    if (value.includes('\0')) return `label ${key} holds a NUL character`;
  }
  return undefined;
}

export const dedupeKey = (t: Trigger) => `${t.fingerprint}@${t.startsAt}`;

/** Whether the server is inside its start-up window: the remediator started it, or its manager says so. */
async function starting({ target, record, now, wall }: StageInput): Promise<boolean> {
  if (record.startedAt !== undefined && now - record.startedAt < target.startupTimeoutMs) return true;
  const seen = await target.action.starting();
  if (!seen) return false;
  return seen.starting || (seen.since !== undefined && wall - seen.since < target.startupTimeoutMs);
}

/** Restarts (failed ones included) still inside the circuit window. */
export function recentRestarts(target: ManagedTarget, record: TargetRecord, now: number): number {
  return record.restartTimes.filter((t) => now - t < target.circuit.windowMs).length;
}

/**
 * The per-target stages, in order. A trigger reaching the end is a restart. (Before these:
 * resolved, not_matching, invalid and unknown_target, which need no target.)
 */
export const stages: readonly Stage[] = [
  {
    name: 'stale',
    forExits: false,
    decide: ({ trigger, wall, staleAfterMs }) => {
      const starts = Date.parse(trigger.startsAt);
      const ends = trigger.endsAt === undefined ? Number.NaN : Date.parse(trigger.endsAt);
      // Not a date, started too long ago (a replay), or already ended (0001-01-01 means "not yet").
      return !Number.isFinite(starts) || wall - starts > staleAfterMs || (Number.isFinite(ends) && ends > 0 && ends < wall);
    },
  },
  {
    name: 'duplicate',
    forExits: false,
    // The same alert instance acted on within the cooldown (Alertmanager re-sends, HA pairs, the
    // reconciler). After the cooldown the same instance may restart again: the first did not help.
    decide: ({ trigger, target, record, now }) => {
      const at = record.seen[dedupeKey(trigger)];
      return at !== undefined && now - at < Math.max(target.cooldownMs, 1);
    },
  },
  { name: 'starting', forExits: false, decide: starting },
  { name: 'in_progress', forExits: true, decide: ({ record }) => record.inProgress !== undefined },
  { name: 'cooldown', forExits: false, decide: ({ record, now }) => now < record.cooldownUntil },
  { name: 'circuit_open', forExits: true, decide: ({ target, record, now }) => recentRestarts(target, record, now) >= target.circuit.maxRestarts },
  { name: 'recovered', forExits: false, decide: async ({ target, answersNow }) => target.confirm && (await answersNow()) },
];
