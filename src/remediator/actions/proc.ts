// What Linux says about a process, from /proc: enough to know a server we started again after a
// restart of ours (same boot, same pid, same start time), and to find what is left of it.
import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { isIPv4, isIPv6 } from 'node:net';
import { networkInterfaces } from 'node:os';

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

/** Whether a process was started with NAME=VALUE in its environment (as it was at its exec). */
export function carries(pid: number, name: string, value: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(`${name}=${value}`);
  } catch {
    return false;
  }
}

/** Whether a live member of the group was started with NAME=VALUE in its environment. */
export function groupCarries(pgid: number, name: string, value: string): boolean {
  return groupMembers(pgid).some((pid) => carries(pid, name, value));
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

/** The parent pid (field 4) of a live process. */
function parentOf(pid: number): number | undefined {
  const fields = statFields(pid);
  return fields && fields[0] !== 'Z' ? Number(fields[1]) : undefined;
}

/** A process and every live descendant of it (by parent pid). */
export function withDescendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const pid of pids()) {
    const parent = parentOf(pid);
    if (parent !== undefined) children.set(parent, [...(children.get(parent) ?? []), pid]);
  }
  const found: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.shift()!;
    if (found.includes(pid)) continue;
    found.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return found;
}

/** An address of /proc/net/tcp{,6} (hex, each 32-bit word in host order) as 4 or 16 bytes, IPv4-mapped ones as 4. */
function procAddress(hex: string): Buffer {
  const bytes = Buffer.from(hex, 'hex');
  // Each 32-bit word is written in the host's byte order (little-endian on the machines we run on).
  for (let i = 0; i < bytes.length; i += 4) bytes.subarray(i, i + 4).reverse();
  const mapped = bytes.length === 16 && bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
  return mapped ? bytes.subarray(12) : bytes;
}

/** An IP literal as 4 or 16 bytes (IPv4-mapped IPv6 as 4); undefined for a host name. */
export function ipBytes(host: string): Buffer | undefined {
  if (isIPv4(host)) return Buffer.from(host.split('.').map(Number));
  if (!isIPv6(host)) return undefined;
  const [head, tail] = host.includes('::') ? host.split('::') as [string, string] : [host, undefined];
  const words = (part: string) => (part === '' ? [] : part.split(':')).flatMap((w) => (isIPv4(w) ? [(Number(w.split('.')[0]) << 8) | Number(w.split('.')[1]), (Number(w.split('.')[2]) << 8) | Number(w.split('.')[3])] : [parseInt(w, 16)]));
  const first = words(head);
  const last = tail === undefined ? [] : words(tail);
  const all = [...first, ...Array<number>(8 - first.length - last.length).fill(0), ...last];
  const bytes = Buffer.alloc(16);
  all.forEach((w, i) => bytes.writeUInt16BE(w, i * 2));
  const mapped = bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
  return mapped ? bytes.subarray(12) : bytes;
}

/** TCP sockets listening on a port in this network namespace (/proc/net/tcp and tcp6): local address and inode. */
export function listeningSockets(port: number): Array<{ address: Buffer; inode: string }> {
  const found: Array<{ address: Buffer; inode: string }> = [];
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue; // no IPv6 here
    }
    for (const line of text.split('\n').slice(1)) {
      // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || f[3] !== '0A') continue; // 0A: TCP_LISTEN
      const [hex, portHex] = f[1]!.split(':') as [string, string];
      if (parseInt(portHex, 16) === port && f[9] !== '0') found.push({ address: procAddress(hex), inode: f[9]! });
    }
  }
  return found;
}

/** The inodes of the sockets a process holds open; undefined when its fds cannot be read (another user's, gone). */
export function socketInodes(pid: number): Set<string> | undefined {
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return undefined;
  }
  const inodes = new Set<string>();
  for (const fd of fds) {
    try {
      const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      if (target.startsWith('socket:[')) inodes.add(target.slice(8, -1));
    } catch {
      // closed meanwhile
    }
  }
  return inodes;
}

/** The addresses of this machine's interfaces (and loopback): a host that is none of them is elsewhere. */
function isLocal(bytes: Buffer): boolean {
  if (bytes.length === 4 ? bytes[0] === 127 : bytes.equals(ipBytes('::1')!)) return true;
  return Object.values(networkInterfaces()).some((list) => list?.some((i) => ipBytes(i.address)?.equals(bytes)));
}

/**
 * Whether `pids` (what the action started or manages, described by `what`) hold the socket listening
 * on the address: /proc/net/tcp{,6} lists the listening sockets of the port with their inodes,
 * /proc/PID/fd the sockets each process holds. ok, or not with who holds it instead; undefined when
 * it cannot tell: a host elsewhere, nothing listening on the port here (NAT, another network
 * namespace), or a process of `pids` whose fds cannot be read.
 */
export function listenerHeldBy(address: { host: string; port: number }, pids: Iterable<number>, what: string): { ok: boolean; message: string } | undefined {
  const ip = ipBytes(address.host);
  if (ip && !isLocal(ip)) return undefined;
  // A listener on the host's address, or on any address (0.0.0.0; :: takes IPv4 too).
  const any = (a: Buffer) => a.every((b) => b === 0);
  const listeners = listeningSockets(address.port).filter((l) => !ip || l.address.equals(ip) || (any(l.address) && (l.address.length === 16 || ip.length === 4)));
  if (listeners.length === 0) return undefined;
  const inodes = new Set(listeners.map((l) => l.inode));
  let unreadable = false;
  for (const pid of pids) {
    const held = socketInodes(pid);
    if (held === undefined) {
      unreadable ||= startTicks(pid) !== undefined;
      continue;
    }
    if ([...inodes].some((inode) => held.has(inode))) return { ok: true, message: `port ${address.port} is held by pid ${pid} (${what})` };
  }
  if (unreadable) return undefined;
  const holder = socketHolder(inodes);
  const who = holder === undefined ? 'a process it cannot see holds it' : `pid ${holder} (${(argvOf(holder) ?? ['?'])[0]}) holds it`;
  return { ok: false, message: `port ${address.port} answers, but not ${what}: ${who}` };
}

/** The first process (whose fds we may read) holding one of these socket inodes. */
function socketHolder(inodes: Set<string>): number | undefined {
  for (const pid of pids()) {
    const held = socketInodes(pid);
    if (held && [...inodes].some((inode) => held.has(inode))) return pid;
  }
  return undefined;
}
