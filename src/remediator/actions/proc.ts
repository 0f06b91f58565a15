// What Linux says about a process, from /proc: enough to know a server we started again after a
// restart of ours (same boot, same pid, same start time), and to find what is left of it.
import { readdirSync, readFileSync, statSync } from 'node:fs';

/** Fields of /proc/PID/stat after the command name, which may itself hold spaces and parentheses. */
function statFields(pid: number): string[] | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

let boot: string | undefined;
/** This boot's id: a pid, a process group or a start time recorded in another boot means nothing now. */
export function bootId(): string | undefined {
  if (boot === undefined) {
    try {
      boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    } catch {
      return undefined;
    }
  }
  return boot;
}

/** The start time in clock ticks since boot (field 22): a pid reused by another process differs. */
export function startTicks(pid: number): string | undefined {
  const fields = statFields(pid);
  // fields[0] is field 3 (state), so field 22 is fields[19]; a zombie has exited already.
  return fields && fields[0] !== 'Z' ? fields[19] : undefined;
}

/** The process group of a live process (field 5). */
export function processGroup(pid: number): number | undefined {
  const fields = statFields(pid);
  return fields && fields[0] !== 'Z' ? Number(fields[2]) : undefined;
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

/** Processes that run exactly this argv and lead their own group (tests find their servers so). */
export function groupLeadersRunning(argv: readonly string[]): number[] {
  return pids().filter((pid) => {
    const fields = statFields(pid);
    if (!fields || fields[0] === 'Z' || Number(fields[2]) !== pid) return false;
    const actual = argvOf(pid);
    return actual !== undefined && actual.length === argv.length && actual.every((a, i) => a === argv[i]);
  });
}

/** Whether a live member of the group was started with NAME=VALUE in its environment. */
export function groupCarries(pgid: number, name: string, value: string): boolean {
  const entry = `${name}=${value}`;
  return groupMembers(pgid).some((pid) => {
    try {
      return readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(entry);
    } catch {
      return false;
    }
  });
}

/**
 * Live processes of our own user whose environment (as it was at their exec) sets `name` to a
 * value `wanted` accepts, with their process group. Another user's processes are never looked at:
 * they are not ours to end. Used to find servers we started whatever their argv says (a script, a
 * Python entry point) from the id we put in their environment.
 */
export function processesWithEnv(name: string, wanted: (value: string) => boolean): Array<{ pid: number; pgid: number; value: string }> {
  const uid = process.getuid?.();
  const prefix = `${name}=`;
  const found: Array<{ pid: number; pgid: number; value: string }> = [];
  for (const pid of pids()) {
    if (pid === process.pid) continue;
    let environ: string;
    try {
      if (uid !== undefined && statSync(`/proc/${pid}`).uid !== uid) continue;
      environ = readFileSync(`/proc/${pid}/environ`, 'latin1');
    } catch {
      continue; // gone meanwhile, or not readable: not ours
    }
    const entry = environ.split('\0').find((e) => e.startsWith(prefix));
    if (entry === undefined) continue;
    const value = entry.slice(prefix.length);
    const pgid = processGroup(pid);
    if (pgid !== undefined && wanted(value)) found.push({ pid, pgid, value });
  }
  return found;
}
