import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ConfigError, parseConfig } from '../../src/cmd/config.ts';
import { keyFingerprint, readApiKeys } from '../../src/probing/api-keys.ts';

const dir = await mkdtemp(join(tmpdir(), 'qs-secrets-'));
after(() => rm(dir, { recursive: true, force: true }));

test('API keys come from a file or an environment variable; a target\'s own key wins over its module\'s', async () => {
  const file = join(dir, 'key');
  await writeFile(file, 'sk-from-file\n');
  const config = parseConfig({
    modules: { vllm: { api_key_file: file } },
    targets: [
      { name: 'a', url: 'http://x:1/v1', server: 'vllm' },
      { name: 'b', url: 'http://x:2/v1', server: 'vllm', api_key_env: 'B_KEY' },
      { name: 'c', url: 'http://x:3/v1' },
    ],
  });
  const keys = await readApiKeys(config, { B_KEY: ' sk-from-env ' });
  assert.deepEqual(config.targets.map((t) => keys.forTarget(t)), ['sk-from-file', 'sk-from-env', undefined]);
  assert.equal(keys.forModule('vllm'), 'sk-from-file');
  // A rotated key changes the fingerprint a reload compares.
  const env = { B_KEY: 'sk-from-env' };
  const before = await keyFingerprint(config, env);
  assert.equal(await keyFingerprint(config, env), before);
  await writeFile(file, 'sk-rotated');
  assert.notEqual(await keyFingerprint(config, env), before);
});

test('a key that cannot be read refuses the config, naming the field; a FIFO or a huge file is not read', async () => {
  const fifo = join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  const big = join(dir, 'big');
  await writeFile(big, 'x'.repeat(100 * 1024));
  const empty = join(dir, 'empty');
  await writeFile(empty, '\n');
  const cases: Array<[object, RegExp]> = [
    [{ targets: [{ url: 'http://x:1/v1', api_key_file: join(dir, 'missing') }] }, /^targets\[0\]\.api_key_file: cannot read .*missing: ENOENT$/],
    [{ targets: [{ url: 'http://x:1/v1', api_key_env: 'NOT_SET' }] }, /^targets\[0\]\.api_key_env: environment variable NOT_SET is not set$/],
    [{ modules: { vllm: { api_key_file: fifo } } }, /^modules\.vllm\.api_key_file: .*fifo is not a regular file$/],
    [{ modules: { vllm: { api_key_file: big } } }, /^modules\.vllm\.api_key_file: .*big is larger than 65536 bytes$/],
    [{ modules: { vllm: { api_key_file: empty } } }, /^modules\.vllm\.api_key_file: .*empty is empty$/],
  ];
  for (const [raw, message] of cases) {
    await assert.rejects(readApiKeys(parseConfig(raw), {}), (err: Error) => err instanceof ConfigError && message.test(err.message));
  }
});
