// What Linux says about a process, from /proc: enough to recognise a server we started after a
// restart of ours (same pid, same start time, same argv), and to find what is left of its group.
import { readdirSync, readFileSync } from 'node:fs';

/** Fields of /proc/PID/stat after the command name, which may itself hold spaces and parentheses. */
function statFields(pid: number): string[] | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** The start time in clock ticks since boot (field 22): a pid reused by another process differs. */
export function startTicks(pid: number): string | undefined {
  const fields = statFields(pid);
  // fields[0] is field 3 (state), so field 22 is fields[19]; a zombie has exited already.
  return fields && fields[0] !== 'Z' ? fields[19] : undefined;
}

export function argvOf(pid: number): string[] | undefined {
  try {
    const raw = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return raw === '' ? undefined : raw.replace(/\0$/, '').split('\0');
  } catch {
    return undefined;
  }
}

function pids(): number[] {
  return readdirSync('/proc').filter((name) => /^\d+$/.test(name)).map(Number);
}

/** Live members of a process group (field 5 is the pgrp). */
export function groupMembers(pgid: number): number[] {
  return pids().filter((pid) => {
    const fields = statFields(pid);
    return fields !== undefined && fields[0] !== 'Z' && Number(fields[2]) === pgid;
  });
}

/** Processes that run exactly this argv and lead their own group (as a server we spawn does). */
export function groupLeadersRunning(argv: readonly string[]): number[] {
  return pids().filter((pid) => {
    const fields = statFields(pid);
    if (!fields || fields[0] === 'Z' || Number(fields[2]) !== pid) return false;
    const actual = argvOf(pid);
    return actual !== undefined && actual.length === argv.length && actual.every((a, i) => a === argv[i]);
  });
}
