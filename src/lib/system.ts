import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { createServer } from 'node:net';
import { delimiter, join } from 'node:path';
import { ListenError, listenError } from './web.ts';

/** The full path of an executable on PATH, or undefined; no shell involved. */
export async function which(name: string, path = process.env.PATH ?? ''): Promise<string | undefined> {
  for (const dir of path.split(delimiter).filter(Boolean)) {
    const candidate = join(dir, name);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

/**
 * Checks that host:port can be bound (port 0: asks the kernel for a free one) and returns the
 * port. For components we start as processes (the simulator, Prometheus) that we cannot ask
 * afterwards; a small race remains between this check and their own bind.
 */
export function bindablePort(host: string, port = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) => reject(listenError({ host, port }, err)));
    server.listen(port, host, () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new ListenError(`cannot listen on ${host}:${port}`))));
    });
  });
}

/** A free port on host. */
export function freePort(host: string): Promise<number> {
  return bindablePort(host, 0);
}
