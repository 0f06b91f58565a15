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

export async function startBareServer(ctx: BenchContext, name: string, capMs = 60 * 60_000): Promise<RunningService> {
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const child = ctx.procs.spawn(name, ctx.product.node, ['-e', script(port, capMs)], { logFile: join(ctx.dir, `${name}.log`) });
    const url = `http://127.0.0.1:${port}`;
    try {
      await waitFor(`${name} listening`, 10_000, async () => {
        if (!child.running) throw new Error(`${name} exited`);
        const res = await fetch(url, { method: 'POST', body: '{}', signal: AbortSignal.timeout(1000) });
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
