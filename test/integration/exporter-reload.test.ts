import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { readConfigFile } from '../../src/cmd/config.ts';
import { startExporter } from '../../src/exporter/server.ts';
import { silentLogger } from '../../src/lib/log.ts';
import { startSim } from '../../src/sim/server.ts';
import { freePort } from '../../src/lib/system.ts';
import { eventually } from '../helpers/stack-child.ts';

const dir = await mkdtemp(join(tmpdir(), 'qs-reload-'));
const sim = await startSim({ host: '127.0.0.1', port: 0, ttftMs: 10, tokensPerSecond: 500 });
after(async () => {
  await sim.close();
  await rm(dir, { recursive: true, force: true });
});
const configText = (name: string, extra = '') => `targets:\n  - name: ${name}\n    url: ${sim.url}/v1\n    interval: 300ms\n    timeout: 300ms\n${extra}`;

test('/-/reload swaps in a valid config, skips an unchanged one, rejects a bad one and keeps the old', { timeout: 30_000 }, async () => {
  const file = join(dir, 'sentinel.yml');
  await writeFile(file, configText('first'));
  const { config, text } = await readConfigFile(file);
  const exporter = await startExporter({ config, listen: { host: '127.0.0.1', port: 0 }, logger: silentLogger, configFile: { path: file, text, read: readConfigFile }, enableLifecycle: true });
  const reload = async () => {
    const res = await fetch(`${exporter.url}/-/reload`, { method: 'POST' });
    return [res.status, await res.text()] as const;
  };
  const metrics = async () => (await fetch(`${exporter.url}/metrics`)).text();
  try {
    await eventually('target first probed', 10_000, async () => ((await metrics()).includes('llm_server_up{target="first"') ? true : undefined));
    assert.deepEqual(await reload(), [200, 'config unchanged\n']);

    await writeFile(file, configText('first', '    intervall: 5s\n'));
    const [status, body] = await reload();
    assert.equal(status, 500);
    assert.match(body, /targets\[0\]\.intervall: unknown field/);
    const failed = await metrics();
    assert.match(failed, /^qwen_sentinel_config_last_reload_successful 0$/m);
    const before = Number(/llm_probes_total\{target="first",probe="models"\} (\d+)/.exec(failed)![1]);
    await eventually('the old config to keep probing', 10_000, async () => {
      const n = Number(/llm_probes_total\{target="first",probe="models"\} (\d+)/.exec(await metrics())![1]);
      return n > before ? true : undefined;
    });

    await writeFile(file, configText('second'));
    assert.deepEqual(await reload(), [200, 'config reloaded\n']);
    const swapped = await eventually('target second probed', 10_000, async () => {
      const m = await metrics();
      return m.includes('llm_server_up{target="second"') ? m : undefined;
    });
    assert.match(swapped, /^qwen_sentinel_config_last_reload_successful 1$/m);
    assert.doesNotMatch(swapped, /target="first"/, 'the removed target\'s series are gone');
  } finally {
    await exporter.close();
  }
});

test('SIGHUP reloads the exporter process; --target mode has nothing to reload; /-/reload needs --web.enable-lifecycle', { timeout: 30_000 }, async () => {
  const file = join(dir, 'hup.yml');
  await writeFile(file, configText('before-hup'));
  const port = await freePort('127.0.0.1');
  const cli = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));
  const child = spawn(process.execPath, [cli, 'exporter', `--config.file=${file}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=error'], { stdio: 'ignore' });
  const metrics = async () => (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  try {
    await eventually('the exporter to probe', 10_000, async () => ((await metrics()).includes('target="before-hup"') ? true : undefined));
    await writeFile(file, configText('after-hup'));
    child.kill('SIGHUP');
    await eventually('the reloaded target', 10_000, async () => ((await metrics()).includes('llm_server_up{target="after-hup"') ? true : undefined));
  } finally {
    child.kill('SIGTERM');
  }
  const flagsOnly = await startExporter({ config: (await readConfigFile(file)).config, listen: { host: '127.0.0.1', port: 0 }, logger: silentLogger, enableLifecycle: true });
  assert.equal((await fetch(`${flagsOnly.url}/-/reload`, { method: 'POST' })).status, 400);
  await flagsOnly.close();
  // Without --web.enable-lifecycle, as in Prometheus, the HTTP endpoint is refused.
  const { config, text } = await readConfigFile(file);
  const locked = await startExporter({ config, listen: { host: '127.0.0.1', port: 0 }, logger: silentLogger, configFile: { path: file, text, read: readConfigFile } });
  const res = await fetch(`${locked.url}/-/reload`, { method: 'POST' });
  assert.deepEqual([res.status, await res.text()], [403, 'Lifecycle API is not enabled.\n']);
  await locked.close();
});

test('a reload that takes the chat probe away from a target that stays drops its TTFT and rate series', { timeout: 30_000 }, async () => {
  const file = join(dir, 'drop-chat.yml');
  const withModule = (probes: string) => `modules:\n  m: { server: vllm, probes: [${probes}], timeout: 300ms }\n${configText('kept', '    module: m\n')}`;
  await writeFile(file, withModule('models, chat'));
  const { config, text } = await readConfigFile(file);
  const exporter = await startExporter({ config, listen: { host: '127.0.0.1', port: 0 }, logger: silentLogger, configFile: { path: file, text, read: readConfigFile } });
  const metrics = async () => (await fetch(`${exporter.url}/metrics`)).text();
  try {
    await eventually('a TTFT for the target', 10_000, async () => ((await metrics()).includes('llm_probe_time_to_first_token_seconds{target="kept",probe="chat"}') ? true : undefined));
    await writeFile(file, withModule('models'));
    assert.equal(await exporter.reloader!.reload(), 'reloaded');
    const after = await eventually('a round under the new config', 10_000, async () => {
      const m = await metrics();
      return /llm_probes_total\{target="kept",probe="models"\} [1-9]/.test(m) ? m : undefined;
    });
    for (const family of ['llm_probe_time_to_first_token_seconds', 'llm_probe_tokens_per_second', 'llm_probe_success', 'llm_probes_total', 'llm_probe_failures_total', 'llm_probe_completion_tokens']) {
      assert.doesNotMatch(after, new RegExp(`^${family}\\{target="kept",(le="[^"]+",)?probe="chat"`, 'm'), `${family} of the removed chat probe`);
    }
    assert.match(after, /^llm_probe_success\{target="kept",probe="models"\} 1$/m);
    // Still ready: the target stayed, and a reload only waits for targets whose probing changed.
    assert.equal((await fetch(`${exporter.url}/-/ready`)).status, 200);
  } finally {
    await exporter.close();
  }
});

test('a reload keeps what did not change: no stale llm_server_up label, no reason gauge reset for an unchanged target', { timeout: 30_000 }, async () => {
  const file = join(dir, 'keep.yml');
  const gone = `http://127.0.0.1:${await freePort('127.0.0.1')}/v1`;
  const config = (model: string) => `targets:\n  - name: a\n    url: ${sim.url}/v1\n    model: ${model}\n    interval: 300ms\n    timeout: 300ms\n  - name: down\n    url: ${gone}\n    interval: 300ms\n    timeout: 300ms\n`;
  await writeFile(file, config('Qwen/Qwen3-0.6B'));
  const { config: c, text } = await readConfigFile(file);
  const exporter = await startExporter({ config: c, listen: { host: '127.0.0.1', port: 0 }, logger: silentLogger, configFile: { path: file, text, read: readConfigFile } });
  const metrics = async () => (await fetch(`${exporter.url}/metrics`)).text();
  try {
    await eventually('both targets probed', 10_000, async () => {
      const m = await metrics();
      return m.includes('llm_server_up{target="a",model="Qwen/Qwen3-0.6B"} 1') && m.includes('llm_probe_failure_reason{target="down",probe="models",reason="connect_refused"} 1') ? true : undefined;
    });
    // Target a asks for another model now; target down is unchanged.
    await writeFile(file, config('other-model'));
    assert.equal(await exporter.reloader!.reload(), 'reloaded');
    const right = await metrics();
    assert.match(right, /^llm_probe_failure_reason\{target="down",probe="models",reason="connect_refused"\} 1$/m, 'not removed by the reload');
    const after = await eventually('a round of a under the new config', 10_000, async () => {
      const m = await metrics();
      return m.includes('llm_server_up{target="a",model="other-model"}') ? m : undefined;
    });
    assert.doesNotMatch(after, /llm_server_up\{target="a",model="Qwen\/Qwen3-0\.6B"\}/, 'the old model label is gone');
  } finally {
    await exporter.close();
  }
});
