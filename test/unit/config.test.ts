import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, parseConfigText } from '../../src/config/load.ts';

const minimal = 'targets:\n  - url: http://127.0.0.1:8000/v1\n';

test('fills defaults and derives the target name from the URL', () => {
  const config = parseConfigText(minimal);
  const [target] = config.targets;
  assert.deepEqual(target, {
    name: 'http://127.0.0.1:8000/v1',
    url: 'http://127.0.0.1:8000/v1',
    probes: ['models', 'chat'],
    interval: 15_000,
    timeout: 10_000,
    chat: { prompt: 'Reply with OK.', max_tokens: 8 },
    max_response_bytes: 1 << 20,
  });
  assert.deepEqual(config.remediator, { match: { remediate: 'restart' }, max_body_bytes: 1 << 20 });
});

test('parses remediation actions with their own defaults', () => {
  const config = parseConfigText(`
targets:
  - name: qwen3
    url: http://127.0.0.1:8000/v1/
    remediation: { action: process, command: [vllm, serve, Qwen/Qwen3-0.6B] }
  - name: other
    url: http://127.0.0.1:8001/v1
    remediation: { action: command, command: [systemctl, restart, vllm.service], timeout: 1m }
remediator:
  auth: { bearer_token_env: TOKEN }
`);
  assert.equal(config.targets[0]!.url, 'http://127.0.0.1:8000/v1');
  assert.deepEqual(config.targets[0]!.remediation, { action: 'process', command: ['vllm', 'serve', 'Qwen/Qwen3-0.6B'], env: {}, grace_period: 10_000, restart_on_exit: false, cooldown: 120_000 });
  assert.deepEqual(config.targets[1]!.remediation, { action: 'command', command: ['systemctl', 'restart', 'vllm.service'], env: {}, timeout: 60_000, cooldown: 300_000 });
});

// Each bad config is refused with a message that names the field.
const invalid: Array<[string, string]> = [
  ['targets: []', 'config: targets: list at least one target'],
  [minimal + 'extra: 1', 'config: extra: unknown field'],
  ['targets:\n  - url: http://x:1/v1\n    intervall: 5s', 'config: targets[0].intervall: unknown field'],
  ['targets:\n  - url: http://x:1/v1\n    interval: 5x', 'config: targets[0].interval: not a duration: "5x" (use e.g. 500ms, 15s, 1m30s)'],
  ['targets:\n  - url: http://x:1/v1\n    interval: 5', 'config: targets[0].interval: expected a duration such as 10s or 1m30s'],
  ['targets:\n  - url: http://x:1/v1\n    interval: 30d', 'config: targets[0].interval: must be at most 24h'],
  ['targets:\n  - url: http://x:1/v1\n    interval: 0s\n    timeout: 0s', 'config: targets[0].interval: must be greater than 0; targets[0].timeout: must be greater than 0'],
  ['targets:\n  - url: ftp://x/v1', 'config: targets[0].url: must be an http(s) URL such as http://127.0.0.1:8000/v1'],
  ['targets:\n  - url: http://x:1/v1\n    probes: [models, tokens]', 'config: targets[0].probes[1]: Invalid option: expected one of "models"|"health"|"chat"'],
  ['targets:\n  - url: http://x:1/v1\n    interval: 5s\n    timeout: 10s', 'config: targets[0].timeout: must not exceed interval'],
  ['targets:\n  - url: http://x:1/v1\n    probes: [chat]', 'config: targets[0].model: required when the chat probe runs without the models probe'],
  ['targets:\n  - {name: a, url: "http://x:1/v1"}\n  - {name: a, url: "http://x:2/v1"}', 'config: targets[1].name: duplicate target name "a"'],
  ['targets:\n  - url: http://x:1/v1\n    remediation: {action: reboot, command: [x]}', "config: targets[0].remediation.action: Invalid discriminator value. Expected 'process' | 'command'"],
  ['targets:\n  - url: http://x:1/v1\n    remediation: {action: process, command: "vllm serve"}', 'config: targets[0].remediation.command: Invalid input: expected array, received string'],
  ['targets:\n  - url: http://x:1/v1\n    remediation: {action: command, command: []}', 'config: targets[0].remediation.command: needs at least the program to run'],
  [minimal + 'remediator:\n  auth: {bearer_token_file: /a, bearer_token_env: B}', 'config: remediator.auth: set exactly one of bearer_token_file or bearer_token_env'],
  ['targets: [', 'config: invalid YAML: Flow sequence in block collection must be sufficiently indented and end with a ] at line 1, column 11'],
];

for (const [text, message] of invalid) {
  test(`refuses: ${message}`, () => {
    assert.throws(() => parseConfigText(text), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.message, message);
      return true;
    });
  });
}
