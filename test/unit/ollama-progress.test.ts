// Ollama's /api/ps as the progress probe reads it: a model is warm only while it stays loaded.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ollama } from '../../src/servers/ollama.ts';

const ps = (expiresInMs: number | undefined) =>
  JSON.stringify({ models: [{ name: 'qwen3:0.6b', model: 'qwen3:0.6b', ...(expiresInMs === undefined ? {} : { expires_at: new Date(Date.now() + expiresInMs).toISOString() }) }] });

test('a listed model is warm; one about to unload (its keep_alive running out, or already past) is taken for cold', () => {
  const parse = (body: string, model = 'qwen3:0.6b') => ollama.progress!.parse(body, model);
  assert.deepEqual(parse(ps(5 * 60_000)), { modelLoaded: true });
  assert.deepEqual(parse(ps(undefined)), { modelLoaded: true });
  assert.deepEqual(parse(ps(10_000)), { modelLoaded: false }, 'expires within the minute');
  assert.deepEqual(parse(ps(-1000)), { modelLoaded: false }, 'expired, still listed while it unloads');
  assert.deepEqual(parse(ps(5 * 60_000), 'qwen3'), { modelLoaded: false }, 'another tag');
  assert.deepEqual(parse(JSON.stringify({ models: [] })), { modelLoaded: false });
});
