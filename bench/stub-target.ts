// A recording target for the scale suite's marker targets: answers GET /m<k>/v1/models with the
// simulator's own listing (bytes copied from it) and records when each request arrived, so the
// bench can see when the exporter started each marker's round. Plain node:http with its default
// keep-alive, as the simulator. Run: node bench/stub-target.ts PORT LISTING_FILE
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

const [portText, listingFile] = process.argv.slice(2);
const listing = readFileSync(listingFile!);
const arrivals = new Map<string, number[]>();
const now = () => performance.timeOrigin + performance.now();

const server = createServer((req, res) => {
  const at = now();
  const match = /^\/(m\d+)\/v1\/models$/.exec(req.url ?? '');
  if (req.method === 'GET' && match) {
    const list = arrivals.get(match[1]!) ?? [];
    list.push(at);
    arrivals.set(match[1]!, list);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': listing.length }).end(listing);
    return;
  }
  if (req.method === 'GET' && req.url === '/arrivals') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(Object.fromEntries(arrivals)));
    return;
  }
  res.writeHead(404).end();
});
server.listen(Number(portText), '127.0.0.1');
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => process.exit(0));
