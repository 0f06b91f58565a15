// A reverse proxy on loopback that holds a streamed answer back, as proxies in front of model
// servers do: `whole` buffers the entire answer and sends it at its end (nginx with
// proxy_buffering on, its default, for an answer that fits its buffers); `flushMs` forwards what
// has arrived every so many milliseconds (a proxy that writes its buffer out on a timer), so the
// client reads the tokens in groups. The bench's own (it shares no code with the tests).
import { createServer, request, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

export type Buffering = { whole: true } | { flushMs: number };

export interface RunningProxy {
  /** http://127.0.0.1:PORT */
  origin: string;
  /** Answers forwarded so far. */
  readonly answers: number;
  close(): Promise<void>;
}

const hopByHop = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'proxy-connection', 'upgrade']);

function endToEnd(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  return Object.fromEntries(Object.entries(headers).filter(([k]) => !hopByHop.has(k.toLowerCase())));
}

export async function startBufferingProxy(upstream: string, mode: Buffering): Promise<RunningProxy> {
  const target = new URL(upstream);
  let answers = 0;
  const server = createServer((req, res) => {
    const up = request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: { ...req.headers, host: target.host } }, (answer) => {
      const parts: Buffer[] = [];
      answer.on('error', () => res.destroy());
      if ('whole' in mode) {
        answer.on('data', (part: Buffer) => parts.push(part));
        answer.on('end', () => {
          const body = Buffer.concat(parts);
          answers++;
          res.writeHead(answer.statusCode ?? 502, { ...endToEnd(answer.headers), 'content-length': body.length }).end(body);
        });
        return;
      }
      res.writeHead(answer.statusCode ?? 502, endToEnd(answer.headers));
      const flush = () => {
        if (parts.length) res.write(Buffer.concat(parts.splice(0)));
      };
      const timer = setInterval(flush, mode.flushMs);
      answer.on('data', (part: Buffer) => parts.push(part));
      answer.on('end', () => {
        clearInterval(timer);
        flush();
        answers++;
        res.end();
      });
      answer.on('close', () => clearInterval(timer));
    });
    up.on('error', () => (res.headersSent ? res.destroy() : res.writeHead(502).end()));
    req.pipe(up);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    get answers() {
      return answers;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
