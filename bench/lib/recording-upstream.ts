// A model server's listing that answers slowly and counts what it was asked: GET
// /<anything>/v1/models answers `listing` after `delayMs`, and `requests(path)` says how many
// requests that path got. In the bench's own process, on loopback; for the /probe coalescing row
// (two scrapes of one target at once: does the model server see one request or two?).
import { createServer, type Server } from 'node:http';

export interface RecordingUpstream {
  /** http://127.0.0.1:port */
  origin: string;
  requests(path: string): number;
  close(): Promise<void>;
}

export async function startRecordingUpstream(listing: Buffer, delayMs: number): Promise<RecordingUpstream> {
  const seen = new Map<string, number>();
  const timers = new Set<NodeJS.Timeout>();
  const server: Server = createServer((req, res) => {
    const path = req.url ?? '';
    seen.set(path, (seen.get(path) ?? 0) + 1);
    if (req.method !== 'GET' || !/^\/[\w-]+\/v1\/models$/.test(path)) return void res.writeHead(404).end();
    const timer = setTimeout(() => {
      timers.delete(timer);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': listing.length }).end(listing);
    }, delayMs);
    timers.add(timer);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as { port: number };
  return {
    origin: `http://127.0.0.1:${port}`,
    requests: (path) => seen.get(path) ?? 0,
    close: async () => {
      for (const t of timers) clearTimeout(t);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
