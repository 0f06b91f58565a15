import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CompletionParser, decodeRate, type Generation } from '../../src/probing/probes/stream.ts';

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
  assert.equal(g.contentTokens, 2);
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
