// The floor a Node HTTP service can reach on this machine: a bare `node:http` server that reads the
// request body and answers 200 with a small JSON body, nothing else (no routing, auth, parsing or
// logging), in its own process like the service it stands beside. Node's defaults (keep-alive
// 5 s), as the product's own servers. Bounded: it exits by itself after capMs, and is stopped by pid.
import { join } from 'node:path';
import { freePort, waitFor } from './net.ts';
import type { RunningService } from './product.ts';
import type { BenchContext } from './types.ts';

const script = (port: number, capMs: number) => `
const http = require('node:http');
const server = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"status":"ok"}');
  });
});
server.listen(${port}, '127.0.0.1');
setTimeout(() => process.exit(0), ${Math.round(capMs)}).unref();
process.on('SIGTERM', () => process.exit(0));
`;

/**
 * The floor of any Node /probe built on node:http: for each GET /probe?target=BASE, one GET of
 * BASE/models on its own connection (Connection: close, as the exporter's probes and
 * blackbox_exporter's), the body read, then a fixed answer with what the exporter's listing probe
 * answers (`llm_probe_success{probe="models"} 1`, or 0 when the GET failed). No routing, module,
 * deadline, series store, logging or metrics library: what is left is Node's own server and client.
 */
const probeScript = (port: number, capMs: number) => `
const http = require('node:http');
const agent = new http.Agent({ keepAlive: false });
const answer = (ok) => '# HELP llm_probe_success 1 if the probe succeeded.\\n# TYPE llm_probe_success gauge\\nllm_probe_success{probe="models"} ' + (ok ? 1 : 0) + '\\n';
const server = http.createServer((req, res) => {
  const target = new URL(req.url, 'http://x').searchParams.get('target') ?? '';
  const send = (ok) => res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(answer(ok));
  const up = http.get(target + '/models', { agent, headers: { connection: 'close' } }, (r) => {
    r.resume();
    r.on('end', () => send(r.statusCode === 200));
  });
  up.on('error', () => send(false));
});
server.listen(${port}, '127.0.0.1');
setTimeout(() => process.exit(0), ${Math.round(capMs)}).unref();
process.on('SIGTERM', () => process.exit(0));
`;

/** `echo` (the default): answers every request at once; `probe`: the /probe floor above. */
export type BareKind = 'echo' | 'probe';

export async function startBareServer(ctx: BenchContext, name: string, capMs = 60 * 60_000, kind: BareKind = 'echo'): Promise<RunningService> {
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const child = ctx.procs.spawn(name, ctx.product.node, ['-e', (kind === 'echo' ? script : probeScript)(port, capMs)], { logFile: join(ctx.dir, `${name}.log`) });
    const url = `http://127.0.0.1:${port}`;
    try {
      await waitFor(`${name} listening`, 10_000, async () => {
        if (!child.running) throw new Error(`${name} exited`);
        const res = await fetch(kind === 'echo' ? url : `${url}/probe?target=${encodeURIComponent('http://127.0.0.1:9/v1')}`, { method: kind === 'echo' ? 'POST' : 'GET', body: kind === 'echo' ? '{}' : undefined, signal: AbortSignal.timeout(1000) });
        await res.arrayBuffer();
        return res.status === 200 ? true : undefined;
      }, ctx.signal, 100);
      return { child, url };
    } catch (err) {
      await child.stop(2000);
      if (attempt >= 2 || ctx.signal.aborted) throw err;
    }
  }
}
