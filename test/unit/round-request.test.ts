// A probe's request as it leaves the exporter and its body as read (src/probing/http.ts): the
// allocation-lean paths (header list, cached URL options, listener-based body reader) must put the
// same bytes on the wire as Node's own handling of a header object, and give the same outcomes as
// reading the body with `for await`.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { once } from 'node:events';
import { Agent, request as nodeRequest, type IncomingMessage } from 'node:http';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { classifyError, discard, readLimited, send } from '../../src/probing/http.ts';
import { fail, type ProbeFailure } from '../../src/probing/probes/types.ts';

/** A raw TCP server: hands each request's head to `onHead`, then answers with `answer(socket)`. */
async function rawServer(answer: (socket: Socket) => void) {
  const heads: string[] = [];
  const server = createServer((socket) => {
    let data = '';
    socket.on('data', (chunk) => {
      data += chunk.toString('latin1');
      const end = data.indexOf('\r\n\r\n');
      if (end < 0) return;
      const length = Number(/\r\ncontent-length: (\d+)/i.exec(data.slice(0, end))?.[1] ?? 0);
      if (data.length < end + 4 + length) return;
      heads.push(data);
      data = '';
      answer(socket);
    });
    socket.on('error', () => {});
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return { heads, port, close: () => new Promise<void>((r) => server.close(() => r())) };
}

const ok = (socket: Socket) => socket.end('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}');

/** What Node writes for the same request with its headers as an object (what http.ts did before). */
function reference(url: string, method: string, headers: Record<string, string>, body?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const all = body === undefined ? headers : { ...headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) };
    const req = nodeRequest(new URL(url), { method, agent: new Agent({ keepAlive: false }), headers: all }, (res) => {
      res.resume();
      res.on('end', resolve);
    });
    req.on('error', reject);
    req.end(body);
  });
}

const ctxFor = (headers: Record<string, string>, lines: string[] = []) => ({ headers, signal: new AbortController().signal, now: () => performance.now(), log: (l: string) => void lines.push(l) });

test('a probe request puts the same bytes on the wire as Node does for its headers as an object: GET, POST with a body, a URL with user:password', async () => {
  const server = await rawServer(ok);
  try {
    const headers = { 'user-agent': 'qwen-sentinel/test', 'x-qwen-sentinel-probe': 'models', authorization: 'Bearer k' };
    const cases: Array<{ url: string; method: 'GET' | 'POST'; body?: unknown }> = [
      { url: `http://127.0.0.1:${server.port}/v1/models`, method: 'GET' },
      { url: `http://127.0.0.1:${server.port}/v1/chat/completions?x=1`, method: 'POST', body: { model: 'm', messages: [{ role: 'user', content: 'héllo' }] } },
      { url: `http://user:pa%20ss@127.0.0.1:${server.port}/v1/models`, method: 'GET' },
    ];
    for (const c of cases) {
      // Twice: the second request takes the URL's parsed options from the table.
      for (let i = 0; i < 2; i++) {
        const lines: string[] = [];
        const res = await send(ctxFor(headers, lines), c.url, c.body === undefined ? { method: c.method } : { method: c.method, body: c.body });
        if ('success' in res) assert.fail(`${c.method} ${c.url}: ${res.reason} ${res.message}`);
        discard(res.body);
        const id = /request id (\S+)\)/.exec(lines[0]!)![1]!;
        await reference(c.url, c.method, { ...headers, 'x-request-id': id }, c.body === undefined ? undefined : JSON.stringify(c.body));
        const [ours, node] = server.heads.splice(0, 2);
        assert.equal(ours, node, `${c.method} ${c.url} (request ${i + 1})`);
      }
    }
  } finally {
    await server.close();
  }
});

/** How http.ts read a body before: `for await`, the same limit and classification. */
async function readWithForAwait(body: Readable, maxBytes: number, signal: AbortSignal): Promise<string | ProbeFailure> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      size += (chunk as Buffer).length;
      if (size > maxBytes) {
        discard(body);
        return fail('bad_response', `response larger than ${maxBytes} bytes`);
      }
      chunks.push(chunk as Buffer);
    }
  } catch (err) {
    return classifyError(err, signal);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Gets a response from a raw server and reads its body with `read`. */
async function readFrom(answer: (socket: Socket) => void, read: typeof readLimited, maxBytes: number, abortAfterMs?: number): Promise<string | ProbeFailure> {
  const server = await rawServer(answer);
  const controller = new AbortController();
  try {
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = nodeRequest(`http://127.0.0.1:${server.port}/`, { agent: new Agent({ keepAlive: false }), signal: controller.signal }, resolve);
      req.on('error', reject);
      req.end();
    });
    if (abortAfterMs !== undefined) setTimeout(() => controller.abort(), abortAfterMs);
    return await read(res, maxBytes, controller.signal);
  } finally {
    await server.close();
  }
}

test('a body reads to the same text or failure as with `for await`: whole, in chunks, too large, cut off by the server, cut off by the deadline', async () => {
  const head = (extra: string) => `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n${extra}\r\n`;
  const cases: Array<{ name: string; answer: (s: Socket) => void; max: number; abortAfterMs?: number; expect: string | RegExp }> = [
    { name: 'whole', answer: (s) => s.end(`${head('content-length: 11\r\n')}{"data":[]}`), max: 1024, expect: '{"data":[]}' },
    { name: 'empty', answer: (s) => s.end(head('content-length: 0\r\n')), max: 1024, expect: '' },
    {
      name: 'chunked, in pieces, a two-byte character split between them',
      answer: (s) => {
        const e = Buffer.from('é', 'utf8');
        s.write(head('transfer-encoding: chunked\r\n'));
        s.write(Buffer.concat([Buffer.from('2\r\na'), e.subarray(0, 1), Buffer.from('\r\n')]));
        setTimeout(() => s.end(Buffer.concat([Buffer.from('2\r\n'), e.subarray(1), Buffer.from('z\r\n0\r\n\r\n')])), 20);
      },
      max: 1024,
      expect: 'aéz',
    },
    { name: 'too large', answer: (s) => s.end(`${head('content-length: 3000\r\n')}${'x'.repeat(3000)}`), max: 1024, expect: /^bad_response: response larger than 1024 bytes$/ },
    { name: 'cut off by the server', answer: (s) => { s.write(`${head('content-length: 100\r\n')}partial`); setTimeout(() => s.destroy(), 20); }, max: 1024, expect: /^connect_error: / },
    { name: 'cut off by the deadline', answer: (s) => s.write(`${head('content-length: 100\r\n')}partial`), max: 1024, abortAfterMs: 30, expect: /^timeout: deadline exceeded$/ },
  ];
  for (const c of cases) {
    const ours = await readFrom(c.answer, readLimited, c.max, c.abortAfterMs);
    const before = await readFrom(c.answer, readWithForAwait, c.max, c.abortAfterMs);
    assert.deepEqual(ours, before, c.name);
    const got = typeof ours === 'string' ? ours : `${ours.reason}: ${ours.message}`;
    if (typeof c.expect === 'string') assert.equal(got, c.expect, c.name);
    else assert.match(got, c.expect, c.name);
  }
});
