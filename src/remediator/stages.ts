// The decision a trigger gets, as Alertmanager's notification pipeline decides: a list of named
// stages in one visible order, each of which may stop the trigger with its decision. The stage
// names are the decisions counted in llm_remediation_alerts_total and written to the history.
import type { Action } from './actions/types.ts';
import { instanceKey, lastHealthy, type TargetRecord } from './state.ts';

// `error`: deciding failed (a stage or the action threw); logged with the error, never lost.
export const decisions = ['resolved', 'not_matching', 'invalid', 'unknown_target', 'stale', 'duplicate', 'starting', 'in_progress', 'cooldown', 'circuit_open', 'recovered', 'restart', 'error'] as const;
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
// Alertmanager's fingerprints are 16 hex digits, its startsAt an RFC 3339 time (about 35 chars).
const maxFingerprintChars = 256;
const maxStartsAtChars = 64;
/** An alert may start this far ahead of our clock (clocks a little apart); further is not believable. */
export const maxFutureSkewMs = 5 * 60_000;

/** Labels that name things we act on must be sane before they reach logs, env or argv. */
export function invalidReason(labels: Record<string, string>): string | undefined {
  for (const key of ['alertname', 'target']) {
    const value = labels[key] ?? '';
    if (value.length > maxLabelChars) return `label ${key} is longer than ${maxLabelChars} characters`;
    if (value.includes('\0')) return `label ${key} holds a NUL character`;
  }
  return undefined;
}

/**
 * The whole trigger: its labels, and its fingerprint and startsAt, which reach the dedupe key, the
 * state file, the history and a command's environment (where a NUL makes the command fail). With
 * the wall clock (Unix ms), a start more than maxFutureSkewMs ahead of it is invalid too: a forged
 * or badly clocked alert must not act (nor be kept as "seen" until that day comes).
 */
export function invalidTriggerReason(trigger: Pick<Trigger, 'labels' | 'fingerprint' | 'startsAt'>, wall?: number): string | undefined {
  const labels = invalidReason(trigger.labels);
  if (labels) return labels;
  if (trigger.fingerprint.length > maxFingerprintChars) return `fingerprint is longer than ${maxFingerprintChars} characters`;
  if (trigger.fingerprint.includes('\0')) return 'fingerprint holds a NUL character';
  if (trigger.startsAt.length > maxStartsAtChars) return `startsAt is longer than ${maxStartsAtChars} characters`;
  if (trigger.startsAt.includes('\0')) return 'startsAt holds a NUL character';
  const ahead = wall === undefined ? Number.NaN : Date.parse(trigger.startsAt) - wall;
  if (ahead > maxFutureSkewMs) return `startsAt is ${Math.round(ahead / 1000)} s in the future (more than ${maxFutureSkewMs / 1000} s ahead of this clock)`;
  return undefined;
}

/** One alert instance: fingerprint and start as an instant (the webhook and /api/v2/alerts format it differently). */
export const dedupeKey = (t: Trigger) => instanceKey(t.fingerprint, t.startsAt);

/** A Unix-ms instant on the monotonic clock of this process. */
const mono = ({ now, wall }: StageInput, unix: number) => unix - wall + now;

/**
 * Whether the server is inside its start-up window: the remediator started it, or its manager says
 * so. A start the remediator has since seen answering is over, and so is one of an owned server
 * that is gone (it crashed while loading: nothing to wait for).
 */
async function starting(input: StageInput): Promise<boolean> {
  const { target, record, now, wall } = input;
  const healthy = lastHealthy(record, now, wall);
  const gone = target.owns && target.action.pid() === undefined;
  const ours = record.startedAt;
  if (!gone && ours !== undefined && now - ours < target.startupTimeoutMs && !(healthy !== undefined && healthy >= ours)) return true;
  const seen = await target.action.starting(input.trigger.labels);
  if (!seen) return false;
  if (seen.starting) return true;
  // The manager's start time counts while it says the server runs (the action reports it only then).
  if (seen.since === undefined || wall - seen.since >= target.startupTimeoutMs) return false;
  return !(healthy !== undefined && healthy >= mono(input, seen.since));
}

/** Restarts (failed ones included) still inside the circuit window. */
export function recentRestarts(target: ManagedTarget, record: TargetRecord, now: number): number {
  return record.restartTimes.filter((t) => now - t < target.circuit.windowMs).length;
}

/**
 * When an open circuit closes by itself (monotonic ms): once enough of its restarts have left the
 * window that fewer than max_restarts remain. Undefined while it is closed.
 */
export function circuitClosesAt(target: ManagedTarget, record: TargetRecord, now: number): number | undefined {
  const inside = record.restartTimes.filter((t) => now - t < target.circuit.windowMs).sort((a, b) => a - b);
  const surplus = inside.length - target.circuit.maxRestarts;
  return surplus < 0 ? undefined : inside[surplus]! + target.circuit.windowMs;
}

/**
 * The per-target stages, in order. A trigger reaching the end is a restart. (Before these:
 * resolved, not_matching, invalid labels and unknown_target, which need no target; then
 * `invalid` again for an alert the target's action refuses, see Action.refuse.)
 */
export const stages: readonly Stage[] = [
  {
    name: 'stale',
    forExits: false,
    decide: ({ trigger, wall, staleAfterMs }) => {
      const starts = Date.parse(trigger.startsAt);
      const ends = trigger.endsAt === undefined ? Number.NaN : Date.parse(trigger.endsAt);
      // Not a date, or already ended (0001-01-01 means "not yet").
      if (!Number.isFinite(starts) || (Number.isFinite(ends) && ends > 0 && ends < wall)) return true;
      // Started too long ago: a webhook replayed. Not an alert Alertmanager reports active now (the
      // reconciler): that one still fires, however long ago it began (an outage longer than
      // stale_after must still be restarted once the circuit closes).
      return trigger.source !== 'reconcile' && wall - starts > staleAfterMs;
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
  {
    name: 'cooldown',
    forExits: false,
    decide: (input) => {
      const { trigger, record, now, wall } = input;
      if (now >= record.cooldownUntil) return false;
      // A new alert instance that began after the server was last seen answering: it was healthy
      // and failed again, which the cooldown (against restarts that did not help) is not about.
      const healthy = lastHealthy(record, now, wall);
      const starts = Date.parse(trigger.startsAt);
      return !(healthy !== undefined && Number.isFinite(starts) && mono(input, starts) > healthy);
    },
  },
  { name: 'circuit_open', forExits: true, decide: ({ target, record, now }) => recentRestarts(target, record, now) >= target.circuit.maxRestarts },
  {
    name: 'recovered',
    forExits: false,
    decide: async ({ target, record, now, answersNow }) => {
      if (!target.confirm || !(await answersNow())) return false;
      record.healthyAt = Math.max(record.healthyAt ?? now, now);
      return true;
    },
  },
];
