// Loopback helpers: free ports, polling until something holds, small HTTP reads.
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** A port free right now on 127.0.0.1 (a small race with other processes remains: callers retry). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Polls check every `everyMs` until it returns a value; throws after `ms` with what it saw last. */
export async function waitFor<T>(what: string, ms: number, check: () => Promise<T | undefined>, signal?: AbortSignal, everyMs = 250): Promise<T> {
  const end = performance.now() + ms;
  let last: unknown;
  for (;;) {
    signal?.throwIfAborted();
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (performance.now() > end) throw new Error(`timed out after ${(ms / 1000).toFixed(0)} s waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
    await sleep(everyMs, undefined, { signal });
  }
}

/** GET url as text; undefined on any transport error or non-2xx. */
export async function getText(url: string, timeoutMs = 5000): Promise<string | undefined> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    const text = await res.text();
    return res.ok ? text : undefined;
  } catch {
    return undefined;
  }
}

export async function getJson<T>(url: string, timeoutMs = 5000): Promise<T | undefined> {
  const text = await getText(url, timeoutMs);
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}

export async function postJson(url: string, body: unknown, timeoutMs = 5000): Promise<number | undefined> {
  try {
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(timeoutMs) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return undefined;
  }
}

export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of a Prometheus text exposition (the lines this bench reads; no escapes in values). */
export function parseExposition(text: string, only?: (name: string) => boolean): PromSample[] {
  const out: PromSample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const brace = line.indexOf('{');
    const space = line.lastIndexOf(' ');
    const name = brace >= 0 && brace < space ? line.slice(0, brace) : line.slice(0, line.indexOf(' '));
    if (only && !only(name)) continue;
    const labels: Record<string, string> = {};
    if (brace >= 0 && brace < space) {
      const body = line.slice(brace + 1, line.lastIndexOf('}'));
      for (const m of body.matchAll(/([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[m[1]!] = m[2]!;
    }
    out.push({ name, labels, value: Number(line.slice(space + 1)) });
  }
  return out;
}

/** Sum of every sample of one metric whose labels pass the filter. */
export function sumOf(samples: readonly PromSample[], name: string, where: (labels: Record<string, string>) => boolean = () => true): number {
  let total = 0;
  for (const s of samples) if (s.name === name && where(s.labels)) total += s.value;
  return total;
}
