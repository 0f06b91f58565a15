import { processGroup } from './proc.ts';

/** What became of a signal: sent, the group is gone, not ours to signal (EPERM), or refused here. */
export type SignalResult = 'sent' | 'gone' | 'denied' | 'refused';

/**
 * Signals a whole process group (the pgid of a leader we started). Never throws for a group that
 * is gone or belongs to someone else (EPERM): the caller decides what that means. Group 0 or 1, or
 * our own group, are refused: kill(-1) would reach every process we may signal, kill(-0) ourselves.
 */
export function signalGroup(pgid: number, signal: NodeJS.Signals): SignalResult {
  if (!Number.isInteger(pgid) || pgid <= 1 || pgid === processGroup(process.pid)) return 'refused';
  try {
    process.kill(-pgid, signal);
    return 'sent';
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ESRCH') return 'gone';
    if (code === 'EPERM') return 'denied';
    throw err;
  }
}

/**
 * SIGTERM to a group, then SIGCONT, as systemd ends a unit: a stopped (frozen, SIGSTOPped) process
 * only acts on SIGTERM once it runs again, and would otherwise sit out the whole grace period.
 */
export function terminateGroup(pgid: number): SignalResult {
  const sent = signalGroup(pgid, 'SIGTERM');
  if (sent === 'sent') signalGroup(pgid, 'SIGCONT');
  return sent;
}
