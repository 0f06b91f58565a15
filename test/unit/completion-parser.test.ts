import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CompletionParser, decodeRate, measureDecodeRate, type Generation } from '../../src/probing/probes/stream.ts';

const chunk = (delta: object, finish: string | null = null) => JSON.stringify({ choices: [{ index: 0, delta, finish_reason: finish }] });
const usage = (completion: number, reasoning?: number) =>
  JSON.stringify({ choices: [], usage: { prompt_tokens: 12, completion_tokens: completion, total_tokens: 12 + completion, ...(reasoning === undefined ? {} : { completion_tokens_details: { reasoning_tokens: reasoning } }) } });

/** Feeds [time, payload] pairs; the times are the clock seam, so the figures are exact. */
function parse(started: number, events: Array<[number, string]>) {
  const p = new CompletionParser(started);
  for (const [t, payload] of events) assert.equal(p.push(payload, t), undefined);
  return p.result() as Generation;
}

test('TTFT ends at the first token; the EOS chunk (empty delta with finish_reason) ends the decode window', () => {
  // vLLM-shaped: role chunk with "OK" at 100 ms, "." at 200 ms, EOS at 300 ms; usage counts 3 tokens.
  const g = parse(0, [[100, chunk({ role: 'assistant', content: '' })], [100, chunk({ content: 'OK' })], [200, chunk({ content: '.' })], [300, chunk({ content: '' }, 'stop')], [300, usage(3)], [301, '[DONE]']]);
  assert.equal(g.firstToken - g.started, 100);
  assert.equal(g.tokens, 3);
  assert.equal(decodeRate(g), 10); // 2 intervals in 200 ms
  assert.equal(g.content, 'OK.');
  assert.equal(g.finishReason, 'stop');
});

test('a first token the server does not show (Qwen3\'s <think>) still starts the decode window: the role chunk came with it', () => {
  // As llama-server streams a thinking probe: the role chunk when <think> is generated (hidden by
  // the reasoning parser, counted by usage), the first reasoning one token (10 ms) later.
  const g = parse(0, [[90, chunk({ role: 'assistant', content: null })], [100, chunk({ reasoning_content: 'Okay' })], [110, chunk({ reasoning_content: '.' })], [120, chunk({ content: 'OK' })], [130, chunk({}, 'stop')], [130, usage(5)], [131, '[DONE]']]);
  assert.equal(g.firstToken, 100, 'TTFT still ends at the first token shown');
  assert.equal(g.firstOutput, 90);
  assert.equal(decodeRate(g), 100); // 4 intervals in 40 ms; from the first shown token it would read 133
  // Without a role chunk (Ollama), the first token is the first output.
  assert.equal(parse(0, [[100, chunk({ role: 'assistant', content: 'a' })], [110, chunk({ content: 'b' }, 'stop')], [110, usage(2)], [111, '[DONE]']]).firstOutput, 100);
});

test('usage counts tokens when a chunk holds several; without usage, chunks are counted', () => {
  const several = parse(0, [[10, chunk({ content: 'one two' })], [110, chunk({ content: ' three four' }, 'length')], [110, usage(4)], [111, '[DONE]']]);
  assert.equal(several.tokens, 4);
  assert.equal(decodeRate(several), 30);
  const noUsage = parse(0, [[10, chunk({ content: 'a' })], [20, chunk({ content: 'b' })], [30, '[DONE]']]);
  assert.equal(noUsage.tokens, 2);
  assert.equal(decodeRate(noUsage), 100);
});

test('reasoning counts as a token for TTFT, apart from the answer; vLLM\'s duplicated field counts once', () => {
  const g = parse(0, [
    [20, chunk({ reasoning: 'Okay,', reasoning_content: 'Okay,' })],
    [30, chunk({ reasoning: ' sure.', reasoning_content: ' sure.' })],
    [40, chunk({ content: 'OK' })],
    [50, chunk({}, 'stop')],
    [50, usage(4)],
    [51, '[DONE]'],
  ]);
  assert.equal(g.firstToken, 20);
  assert.equal(g.firstContent, 40);
  assert.equal(g.reasoningTokens, 2);
  // Four tokens, two shown as reasoning, one as the answer: the fourth (EOS) is neither.
  assert.equal(g.contentTokens, 1);
  assert.equal(g.content, 'OK');
  // The server's own count wins when it gives one.
  assert.equal(parse(0, [[20, chunk({ reasoning_content: 'x' })], [30, chunk({ content: 'y' })], [30, usage(9, 7)], [31, '[DONE]']]).reasoningTokens, 7);
});

test('bad streams fail with their reason', () => {
  const p = new CompletionParser(0);
  assert.equal(p.push('{not json', 1)?.reason, 'bad_response');
  assert.match(new CompletionParser(0).push('{"error":{"message":"engine dead"}}', 1)?.message ?? '', /engine dead/);
  const empty = new CompletionParser(0);
  empty.push('[DONE]', 1);
  assert.equal((empty.result() as { reason: string }).reason, 'no_tokens');
  const unfinished = new CompletionParser(0);
  unfinished.push(chunk({ content: 'hi' }), 1);
  assert.equal((unfinished.result() as { reason: string }).reason, 'bad_response');
});

// The clock seam and the read seam: [time, read, payload].
function parseReads(events: Array<[number, number, string]>) {
  const p = new CompletionParser(0);
  for (const [t, read, payload] of events) assert.equal(p.push(payload, t, read), undefined);
  return p.result() as Generation;
}

test('a decode rate is published only when the client could time the tokens: spread over enough reads, few of them shared', () => {
  // Eight tokens 10 ms apart, each in its own read (role and first token together, EOS with usage): 100 tokens/s.
  const spread = parseReads([
    [100, 1, chunk({ role: 'assistant', content: '' })],
    [100, 1, chunk({ content: 'a' })],
    ...[1, 2, 3, 4, 5, 6].map((i): [number, number, string] => [100 + 10 * i, 1 + i, chunk({ content: 'b' })]),
    [170, 8, chunk({}, 'stop')],
    [170, 8, usage(8)],
    [171, 9, '[DONE]'],
  ]);
  assert.deepEqual(measureDecodeRate(spread), { tokensPerSecond: 100 });
  // Behind a buffering proxy: the whole stream in one read. The raw window reads nonsense; nothing is published.
  const buffered = parseReads([[100, 1, chunk({ role: 'assistant', content: '' })], ...[0, 1, 2, 3, 4, 5, 6].map((i): [number, number, string] => [100.001 + i * 0.0001, 1, chunk({ content: 'b' })]), [100.002, 1, chunk({}, 'stop')], [100.002, 1, usage(8)], [100.003, 1, '[DONE]']]);
  assert.ok((decodeRate(buffered) ?? 0) > 1_000_000);
  assert.match((measureDecodeRate(buffered) as { unmeasured: string }).unmeasured, /8 token chunks in 1 reads/);
  // A busy client: the first half of the tokens piled up and came in one read, late.
  const piled = parseReads([
    [140, 1, chunk({ role: 'assistant', content: '' })],
    ...[0, 1, 2, 3].map((i): [number, number, string] => [140, 1, chunk({ content: 'a' })]),
    ...[4, 5, 6].map((i): [number, number, string] => [100 + 10 * i, i - 2, chunk({ content: 'b' })]),
    [170, 5, chunk({}, 'stop')],
    [170, 5, usage(8)],
    [171, 6, '[DONE]'],
  ]);
  assert.equal(decodeRate(piled), 7000 / 30, 'the raw window shrank to 30 ms: 2.3x the true 100 tokens/s');
  assert.ok('unmeasured' in measureDecodeRate(piled));
  // Three intervals are the least: two could be halved by one late first read.
  const short = parseReads([[100, 1, chunk({ content: 'a' })], [110, 2, chunk({ content: 'b' })], [120, 3, chunk({}, 'stop')], [120, 3, usage(3)], [121, 4, '[DONE]']]);
  assert.ok('unmeasured' in measureDecodeRate(short));
  // No interval at all.
  assert.match((measureDecodeRate(parseReads([[100, 1, chunk({ content: 'a' }, 'stop')], [100, 1, usage(1)], [101, 2, '[DONE]']])) as { unmeasured: string }).unmeasured, /no interval/);
});

test('a rate no server reaches for one stream is not published, however the reads fell', () => {
  const fast = parseReads([...[0, 1, 2, 3, 4, 5, 6, 7].map((i): [number, number, string] => [100 + i * 0.05, i + 1, chunk({ content: 'x' })]), [100.4, 9, chunk({}, 'stop')], [100.4, 9, usage(9)], [100.5, 10, '[DONE]']]);
  assert.ok((decodeRate(fast) ?? 0) > 10_000);
  assert.match((measureDecodeRate(fast) as { unmeasured: string }).unmeasured, /no server's decode rate/);
});

test('without the server\'s split, tokens no chunk shows (<think>, </think>, blank lines, EOS) count as neither reasoning nor answer', () => {
  // The tiny Qwen3 on llama-server: 14 tokens, 8 shown as reasoning, 2 as the answer, 4 hidden.
  const g = parse(0, [
    [10, chunk({ role: 'assistant', content: null })],
    ...[1, 2, 3, 4, 5, 6, 7, 8].map((i): [number, string] => [10 + i, chunk({ reasoning_content: 'r' })]),
    [20, chunk({ content: 'OK' })],
    [21, chunk({ content: '!' })],
    [22, chunk({}, 'stop')],
    [22, usage(14)],
    [23, '[DONE]'],
  ]);
  assert.equal(g.tokens, 14);
  assert.equal(g.reasoningTokens, 8);
  assert.equal(g.contentTokens, 2);
  // With the server's split (vLLM's completion_tokens_details), its count wins.
  assert.equal(parse(0, [[10, chunk({ reasoning: 'r' })], [20, chunk({ content: 'OK' })], [20, usage(14, 11)], [21, '[DONE]']]).contentTokens, 3);
});
