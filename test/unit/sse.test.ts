import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SseDecoder } from '../../src/probing/sse.ts';

const bytes = (s: string) => new TextEncoder().encode(s);

test('yields one payload per event, across arbitrary chunk boundaries', () => {
  const stream = 'data: {"a":1}\n\ndata: {"b":2}\n\ndata: [DONE]\n\n';
  for (let cut = 1; cut < stream.length; cut++) {
    const d = new SseDecoder();
    const out = [...d.push(bytes(stream.slice(0, cut))), ...d.push(bytes(stream.slice(cut)))];
    assert.deepEqual(out, ['{"a":1}', '{"b":2}', '[DONE]'], `cut at ${cut}`);
  }
});

test('handles CRLF and CR line endings, comments and other fields', () => {
  const d = new SseDecoder();
  assert.deepEqual(d.push(bytes(': ping\r\nevent: message\r\ndata: x\r\n\r\ndata:y\r\rid: 3\n')), ['x', 'y']);
});

test('joins multi-line data and splits a UTF-8 character across chunks', () => {
  const d = new SseDecoder();
  const all = bytes('data: 千\ndata: 问\n\n');
  assert.deepEqual([...d.push(all.slice(0, 7)), ...d.push(all.slice(7))], ['千\n问']);
});

test('keeps an incomplete event pending until its blank line', () => {
  const d = new SseDecoder();
  assert.deepEqual(d.push(bytes('data: partial')), []);
  assert.deepEqual(d.push(bytes('\n\n')), ['partial']);
});
