import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, parseConfigText } from '../../src/cmd/config.ts';

const minimal = 'targets:\n  - url: http://127.0.0.1:8000/v1\n';

test('fills defaults: the target name from the URL, the openai module, the module\'s timeout', () => {
  const config = parseConfigText(minimal);
  assert.deepEqual(config.targets[0], {
    name: 'http://127.0.0.1:8000/v1',
    url: 'http://127.0.0.1:8000/v1',
    module: 'openai',
    server: 'openai',
    interval: 15_000,
    timeout: 10_000,
  });
  assert.deepEqual(config.remediator, { match: { remediate: 'restart' }, max_body_bytes: 1 << 20, stale_after: 3_600_000 });
  assert.deepEqual(config.exporter, {});
});

test('an empty config is valid: an exporter with no targets serves /probe only', () => {
  const config = parseConfigText('');
  assert.deepEqual(config.targets, []);
  assert.deepEqual(Object.keys(config.modules), ['vllm', 'sglang', 'llamacpp', 'ollama', 'openai']);
});

test('ships one module per server type, named after it, with that type\'s probes', () => {
  const { modules } = parseConfigText('');
  assert.deepEqual(Object.fromEntries(Object.values(modules).map((m) => [m.name, [m.server, m.probes.join(',')]])), {
    vllm: ['vllm', 'models,health,progress,chat'],
    sglang: ['sglang', 'models,health,progress,chat'],
    llamacpp: ['llamacpp', 'models,health,progress,chat'],
    ollama: ['ollama', 'models,progress,chat'],
    openai: ['openai', 'models,chat'],
  });
  assert.deepEqual(modules.vllm!.options.chat, { prompt: 'Count from 1 to 50, separated by spaces.', max_tokens: 32, vary_prompt: false, load_timeout: 300_000, stall_timeout: 5000 });
});

test('a target names a module, or gets its server type\'s; config modules override shipped ones and add new ones', () => {
  const config = parseConfigText(`
modules:
  vllm: { probes: [models, chat], timeout: 5s, chat: { max_tokens: 32, expect: "^OK" } }
  qwen-think:
    server: vllm
    probes: [models, chat, thinking]
    thinking: { max_tokens: 128, vary_prompt: true }
targets:
  - { name: a, url: "http://x:1/v1", server: vllm }
  - { name: b, url: "http://x:2/v1", module: qwen-think, timeout: 3s }
  - { name: c, url: "http://x:3/v1", server: ollama, model: "qwen3:0.6b" }
`);
  const [a, b, c] = config.targets;
  assert.deepEqual([a!.module, a!.server, a!.timeout], ['vllm', 'vllm', 5000]);
  assert.deepEqual(config.modules.vllm!.probes, ['models', 'chat']);
  assert.equal(config.modules.vllm!.options.chat.expect, '^OK');
  assert.deepEqual([b!.module, b!.server, b!.timeout], ['qwen-think', 'vllm', 3000]);
  assert.deepEqual(config.modules['qwen-think']!.options.thinking, { prompt: 'Count from 1 to 50, separated by spaces.', max_tokens: 128, vary_prompt: true, load_timeout: 300_000, stall_timeout: 5000 });
  assert.deepEqual([c!.module, c!.server], ['ollama', 'ollama']);
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
  const common = { startup_timeout: 300_000, confirm: true, circuit: { max_restarts: 3, window: 900_000 } };
  assert.deepEqual(config.targets[0]!.remediation, { action: 'process', command: ['vllm', 'serve', 'Qwen/Qwen3-0.6B'], env: {}, grace_period: 10_000, restart_on_exit: true, cooldown: 120_000, ...common });
  assert.deepEqual(config.targets[1]!.remediation, { action: 'command', command: ['systemctl', 'restart', 'vllm.service'], env: {}, timeout: 60_000, cooldown: 300_000, ...common });
  const managers = parseConfigText(`
targets:
  - { name: a, url: "http://x:1/v1", remediation: { action: systemd, unit: vllm.service, circuit: { max_restarts: 5 } } }
  - { name: b, url: "http://x:2/v1", remediation: { action: docker, container: vllm, startup_timeout: 10m } }
`);
  assert.deepEqual(managers.targets[0]!.remediation, { action: 'systemd', unit: 'vllm.service', user: false, systemctl: 'systemctl', timeout: 120_000, cooldown: 120_000, startup_timeout: 300_000, confirm: true, circuit: { max_restarts: 5, window: 900_000 } });
  assert.deepEqual(managers.targets[1]!.remediation, { action: 'docker', container: 'vllm', socket: '/var/run/docker.sock', stop_timeout: 30_000, timeout: 120_000, cooldown: 120_000, startup_timeout: 600_000, confirm: true, circuit: { max_restarts: 3, window: 900_000 } });
});

// Each bad config is refused with a message that names the field.
const invalid: Array<[string, string]> = [
  [minimal + 'extra: 1', 'config: extra: unknown field'],
  ['targets:\n  - url: http://x:1/v1\n    intervall: 5s', 'config: targets[0].intervall: unknown field'],
  ['targets:\n  - url: http://x:1/v1\n    interval: 5x', 'config: targets[0].interval: not a duration: "5x" (use e.g. 500ms, 15s, 1m30s)'],
  ['targets:\n  - url: http://x:1/v1\n    interval: 5', 'config: targets[0].interval: expected a duration such as 10s or 1m30s'],
  ['targets:\n  - url: http://x:1/v1\n    interval: 30d', 'config: targets[0].interval: must be at most 24h'],
  ['targets:\n  - url: http://x:1/v1\n    interval: 0s\n    timeout: 0s', 'config: targets[0].interval: must be greater than 0; targets[0].timeout: must be greater than 0'],
  ['targets:\n  - url: ftp://x/v1', 'config: targets[0].url: must be an http(s) URL such as http://127.0.0.1:8000/v1'],
  ['targets:\n  - url: http://x:1/v1\n    interval: 5s\n    timeout: 10s', 'config: targets[0].timeout: the probe timeout (10000 ms) must not exceed the interval (5000 ms)'],
  ['targets:\n  - url: http://x:1/v1\n    interval: 5s', 'config: targets[0].interval: the probe timeout (10000 ms) must not exceed the interval (5000 ms)'],
  ['targets:\n  - {name: a, url: "http://x:1/v1"}\n  - {name: a, url: "http://x:2/v1"}', 'config: targets[1].name: duplicate target name "a"'],
  ['targets:\n  - url: http://x:1/v1\n    module: nope', 'config: targets[0].module: unknown module "nope" (known: vllm, sglang, llamacpp, ollama, openai)'],
  ['targets:\n  - url: http://x:1/v1\n    server: sglang2', 'config: targets[0].server: Invalid option: expected one of "vllm"|"sglang"|"llamacpp"|"ollama"|"openai"'],
  ['targets:\n  - url: http://x:1/v1\n    server: ollama', 'config: targets[0].model: required for server type ollama'],
  ['targets:\n  - url: http://x:1/v1\n    server: vllm\n    module: ollama\n    model: a', 'config: targets[0].server: module "ollama" is for server type ollama, not vllm'],
  ['modules:\n  m: {server: vllm, probes: [health, chat]}\ntargets:\n  - url: http://x:1/v1\n    module: m', 'config: targets[0].model: required: module "m" generates without the models probe'],
  ['modules:\n  m: {server: vllm, probes: [health, models]}\ntargets:\n  - url: http://x:1/v1\n    module: m\n    remediation: {action: command, command: [x]}', 'config: targets[0].module: module "m" lacks chat, which the restart rules read: add it to the module\'s probes, or drop remediation'],
  ['modules:\n  x: {probes: [models]}', 'config: modules.x.server: required: "x" is not a server type (vllm, sglang, llamacpp, ollama, openai)'],
  ['modules:\n  vllm: {probes: [models, tokens]}', 'config: modules.vllm.probes[1]: Invalid option: expected one of "models"|"health"|"progress"|"chat"|"thinking"'],
  ['modules:\n  vllm: {probes: [models, models]}', 'config: modules.vllm.probes: lists a probe twice'],
  ['modules:\n  vllm: {probes: [models], chat: {max_tokens: 4}}', 'config: modules.vllm.chat: options for a probe the module does not run: add chat to probes'],
  ['modules:\n  vllm: {chat: {max_tokens: 0}}', 'config: modules.vllm.chat.max_tokens: Too small: expected number to be >=1'],
  ['modules:\n  vllm: {chat: {expect: "("}}', 'config: modules.vllm.chat.expect: not a valid regular expression'],
  ['modules:\n  vllm: {chat: {temperature: 1}}', 'config: modules.vllm.chat.temperature: unknown field'],
  ['modules:\n  ollama: {probes: [health]}', 'config: modules.ollama.probes: the health probe needs health.path: ollama servers have no health endpoint'],
  ['modules:\n  openai: {probes: [models, progress, chat]}', 'config: modules.openai.probes: the progress probe reads a server\'s own progress signal, which openai servers do not have'],
  ['modules:\n  vllm: {api_key_file: /k, api_key_env: K}', 'config: modules.vllm.api_key_env: set one of api_key_file or api_key_env, not both'],
  ['targets:\n  - {url: "http://x:1/v1", api_key_file: /k, api_key_env: K}', 'config: targets[0].api_key_env: set one of api_key_file or api_key_env, not both'],
  ['modules:\n  vllm: {chat: {load_timeout: soon}}', 'config: modules.vllm.chat.load_timeout: not a duration: "soon" (use e.g. 500ms, 15s, 1m30s)'],
  ['exporter:\n  allowed_probe_hosts: ["http://x"]', 'config: exporter.allowed_probe_hosts[0]: expected a host name or address, optionally :port, or *.domain'],
  ['targets:\n  - url: http://x:1/v1\n    remediation: {action: reboot, command: [x]}', "config: targets[0].remediation.action: Invalid discriminator value. Expected 'process' | 'command' | 'systemd' | 'docker' | 'kubernetes'"],
  ['targets:\n  - url: http://x:1/v1\n    remediation: {action: process, command: "vllm serve"}', 'config: targets[0].remediation.command: Invalid input: expected array, received string'],
  ['targets:\n  - url: http://x:1/v1\n    remediation: {action: command, command: []}', 'config: targets[0].remediation.command: needs at least the program to run'],
  [minimal + 'remediator:\n  auth: {bearer_token_file: /a, bearer_token_env: B}', 'config: remediator.auth: set exactly one of bearer_token_file or bearer_token_env'],
  ['targets:\n  - url: http://x:1/v1\n    remediation: {action: systemd, unit: "vllm service"}', 'config: targets[0].remediation.unit: a unit name such as vllm.service'],
  ['targets:\n  - url: http://x:1/v1\n    remediation: {action: docker}', 'config: targets[0].remediation.container: Invalid input: expected string, received undefined'],
  ['targets:\n  - url: http://x:1/v1\n    remediation: {action: command, command: [x], circuit: {max_restarts: 0}}', 'config: targets[0].remediation.circuit.max_restarts: Too small: expected number to be >=1'],
  [minimal + 'remediator:\n  alertmanager: {url: "localhost:9093"}', 'config: remediator.alertmanager.url: must be an http(s) URL such as http://127.0.0.1:9093'],
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

test('remediator.notify.dingtalk: defaults, and the URL from exactly one of url, url_file or url_env', () => {
  const { remediator } = parseConfigText(`${minimal}remediator:\n  notify:\n    dingtalk: {url_file: /etc/qs/dingtalk-url, secret_env: DT_SECRET}\n`);
  assert.deepEqual(remediator.notify, { dingtalk: { url_file: '/etc/qs/dingtalk-url', secret_env: 'DT_SECRET', timeout: 5000, at_all: false } });
});

const invalidNotify: Array<[string, string]> = [
  ['dingtalk: {url: "https://oapi.dingtalk.com/robot/send?access_token=x", url_env: DT_URL}', 'config: remediator.notify.dingtalk.url_env: set one of url, url_file or url_env, not url and url_env'],
  ['dingtalk: {url_file: /u, url_env: DT_URL}', 'config: remediator.notify.dingtalk.url_env: set one of url, url_file or url_env, not url_file and url_env'],
  ['dingtalk: {secret_file: /s}', "config: remediator.notify.dingtalk.url: required: set one of url, url_file or url_env (the robot's webhook URL)"],
  ['dingtalk: {url_env: DT_URL, secret_file: /s, secret_env: S}', 'config: remediator.notify.dingtalk.secret_env: set one of secret_file or secret_env, not both'],
  ['dingtalk: {url: "oapi.dingtalk.com/robot/send"}', 'config: remediator.notify.dingtalk.url: must be an http(s) URL such as https://oapi.dingtalk.com/robot/send?access_token=...'],
  ['dingtalk: {url_env: DT_URL, timeout: 0s}', 'config: remediator.notify.dingtalk.timeout: must be greater than 0'],
  ['dingtalk: {url_env: DT_URL, at_mobiles: [boss]}', 'config: remediator.notify.dingtalk.at_mobiles[0]: a mobile number such as 13800000000'],
  ['wecom: {url_env: X}', 'config: remediator.notify.wecom: unknown field'],
];

for (const [notify, message] of invalidNotify) {
  test(`refuses: ${message}`, () => {
    assert.throws(() => parseConfigText(`${minimal}remediator:\n  notify: {${notify}}\n`), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.message, message);
      return true;
    });
  });
}
