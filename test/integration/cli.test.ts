import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { exporterFlags } from '../../src/cmd/exporter.ts';
import { probeFlags } from '../../src/cmd/probe.ts';
import { remediatorFlags } from '../../src/cmd/remediator.ts';
import { simFlags } from '../../src/cmd/sim.ts';
import { stackFlags } from '../../src/cmd/stack/main.ts';
import { freePort } from '../../src/lib/system.ts';
import { startSim } from '../../src/sim/server.ts';
import { eventually } from '../helpers/stack-child.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const dir = await mkdtemp(join(tmpdir(), 'qs-cli-'));
after(() => rm(dir, { recursive: true, force: true }));

function run(args: string[], entry = 'src/cli.ts'): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [join(root, entry), ...args], { timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

test('--version and --help', async () => {
  const version = await run(['--version']);
  assert.equal(version.code, 0);
  assert.match(version.stdout, /^qwen-sentinel \d+\.\d+\.\d+ \(node v2[4-9]\.\d+\.\d+\)\n$/);
  const help = await run(['--help']);
  assert.equal(help.code, 0);
  for (const command of ['stack', 'exporter', 'probe', 'remediator', 'sim']) assert.match(help.stdout, new RegExp(`^  ${command} `, 'm'));
});

test('every command documents every one of its flags in --help', async () => {
  const tables = { exporter: exporterFlags, probe: probeFlags, remediator: remediatorFlags, sim: simFlags, stack: stackFlags };
  for (const [command, flags] of Object.entries(tables)) {
    const help = await run([command, '--help']);
    assert.equal(help.code, 0, command);
    for (const flag of Object.keys(flags)) assert.match(help.stdout, new RegExp(`--${flag.replace('.', '\\.')}\\b`), `${command} --${flag}`);
  }
});

test('`npx qwen-sentinel` works in the project, as the README says', async () => {
  const result = await new Promise<{ code: number; out: string }>((resolve) => {
    execFile('npx', ['--no-install', 'qwen-sentinel', '--version'], { cwd: root, timeout: 60_000 }, (err, stdout, stderr) => resolve({ code: err ? 1 : 0, out: stdout + stderr }));
  });
  assert.equal(result.code, 0, result.out);
  assert.match(result.out, /^qwen-sentinel \d+\.\d+\.\d+ \(node v2[4-9]\./m);
});

test('exporter --target (repeatable) probes URLs with no config file', { timeout: 30_000 }, async () => {
  const sims = await Promise.all([startSim({ host: '127.0.0.1', port: 0 }), startSim({ host: '127.0.0.1', port: 0 })]);
  const port = await freePort('127.0.0.1');
  const child = spawn(process.execPath, [join(root, 'src/cli.ts'), 'exporter', ...sims.map((s) => `--target=${s.url}/v1`), `--web.listen-address=127.0.0.1:${port}`, '--log.level=error'], { stdio: 'ignore' });
  try {
    const text = await eventually('both targets up', 20_000, async () => {
      const t = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      return sims.every((s) => t.includes(`llm_server_up{target="${s.url}/v1",model="Qwen/Qwen3-0.6B"} 1`)) ? t : undefined;
    });
    assert.match(text, /llm_probe_success\{target="[^"]+",probe="chat"\} 1/);
  } finally {
    child.kill('SIGTERM');
    await Promise.all(sims.map((s) => s.close()));
  }
});

test('the installed bin runs the compiled CLI', async () => {
  assert.ok(existsSync(join(root, 'dist/cli.js')), 'dist/ is built by `npm ci` (the prepare script)');
  const version = await run(['--version'], 'bin/qwen-sentinel.js');
  assert.equal(version.code, 0);
  assert.match(version.stdout, /^qwen-sentinel /);
});

// The machines here have an end-of-life system Node.js; the bin must say what to do instead of crashing.
const systemNode = '/usr/bin/node';
const oldNode = existsSync(systemNode) && Number(execFileSync(systemNode, ['-p', 'process.versions.node.split(".")[0]']).toString()) < 24;
test('the bin refuses an old Node.js with a clear message', { skip: !oldNode && 'no Node.js older than 24 at /usr/bin/node' }, () => {
  const result = spawnSync(systemNode, [join(root, 'bin/qwen-sentinel.js'), '--version']);
  assert.equal(result.status, 1);
  assert.match(result.stderr.toString(), /^qwen-sentinel needs Node\.js 24 or newer; this is v\d+/);
});

test('usage mistakes exit 2 with a message naming the flag', async () => {
  assert.equal((await run([])).code, 2);
  const unknown = await run(['frobnicate']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown command "frobnicate"/);
  const both = await run(['exporter', '--config.file=x.yml', '--target=http://127.0.0.1:8000/v1']);
  assert.equal(both.code, 2);
  assert.match(both.stderr, /use either --config\.file or --target, not both/);
  const badAddress = await run(['exporter', '--target=http://127.0.0.1:8000/v1', '--web.listen-address=nowhere']);
  assert.equal(badAddress.code, 2);
  assert.match(badAddress.stderr, /--web\.listen-address: expected HOST:PORT, got "nowhere"/);
  const badLevel = await run(['exporter', '--target=http://127.0.0.1:8000/v1', '--log.level=loud']);
  assert.equal(badLevel.code, 2);
  assert.match(badLevel.stderr, /--log\.level: expected one of/);
});

test('a bad config refuses to start, naming the field; --config.check accepts a good one', async () => {
  const bad = join(dir, 'bad.yml');
  await writeFile(bad, 'targets:\n  - url: http://127.0.0.1:8000/v1\n    interval: soon\n');
  const exporter = await run(['exporter', `--config.file=${bad}`, '--web.listen-address=127.0.0.1:0']);
  assert.equal(exporter.code, 1);
  assert.match(exporter.stderr, /invalid config: .*bad\.yml: targets\[0\]\.interval: not a duration: "soon"/);
  const good = join(dir, 'good.yml');
  await writeFile(good, 'targets:\n  - name: qwen3\n    url: http://127.0.0.1:8000/v1\n');
  const check = await run(['exporter', `--config.file=${good}`, '--config.check']);
  assert.equal(check.code, 0);
  assert.match(check.stdout, /config OK: 1 target/);
  const noAuth = await run(['remediator', `--config.file=${good}`]);
  assert.equal(noAuth.code, 1);
  assert.match(noAuth.stderr, /remediator\.auth: required/);
  assert.equal((await run(['exporter', `--config.file=${join(dir, 'missing.yml')}`])).code, 1);
});

test('the shipped example configs pass --config.check', async () => {
  const example = await run(['exporter', `--config.file=${join(root, 'examples/sentinel.yml')}`, '--config.check']);
  assert.equal(example.code, 0, example.stderr);
  const compose = await run(['exporter', `--config.file=${join(root, 'examples/compose/sentinel.yml')}`, '--config.check']);
  assert.equal(compose.code, 0, compose.stderr);
});

test('each command loads only its own code: the exporter never loads the remediator\'s process handling or HTTP client', async () => {
  const config = join(dir, 'exporter-only.yml');
  await writeFile(config, 'targets:\n  - name: t\n    url: http://127.0.0.1:8000/v1\n');
  const loaded = (args: string[]) => {
    const r = spawnSync(process.execPath, ['--import', join(root, 'test/helpers/loaded-packages.mjs'), join(root, 'src/cli.ts'), ...args], { encoding: 'utf8', timeout: 20_000 });
    const line = /^loaded-packages (.*)$/m.exec(r.stderr)?.[1];
    assert.ok(line, r.stderr);
    return JSON.parse(line) as string[];
  };
  const exporter = loaded(['exporter', `--config.file=${config}`, '--config.check']);
  assert.ok(exporter.includes('zod') && exporter.includes('prom-client'), exporter.join(' '));
  for (const pkg of ['execa', 'undici']) assert.ok(!exporter.includes(pkg), `the exporter loaded ${pkg}`);
  assert.deepEqual(loaded(['--version']).filter((p) => p !== 'node'), [], 'nothing for --version');
});

/** Runs a service with the loaded-packages hook until `ready` says so, stops it, returns what it loaded. */
async function loadedWhileRunning(args: string[], ready: (url: string) => Promise<boolean>): Promise<{ packages: string[]; builtins: string[] }> {
  const port = await freePort('127.0.0.1');
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(process.execPath, ['--import', join(root, 'test/helpers/loaded-packages.mjs'), join(root, 'src/cli.ts'), ...args, `--web.listen-address=127.0.0.1:${port}`, '--log.level=error'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    await eventually(`${args[0]} ready`, 20_000, async () => ((await ready(url)) ? true : undefined));
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
  const line = (name: string) => JSON.parse(new RegExp(`^${name} (.*)$`, 'm').exec(stderr)?.[1] ?? 'null') as string[] | null;
  const packages = line('loaded-packages');
  const builtins = line('loaded-builtins');
  assert.ok(packages && builtins, stderr);
  return { packages, builtins };
}

test('running idle, the exporter and remediator hold only what they use: no TLS and no Pushgateway; execa and undici wait for an action', { timeout: 60_000 }, async () => {
  const sim = await startSim({ host: '127.0.0.1', port: 0 });
  try {
    const exporterConfig = join(dir, 'idle-exporter.yml');
    await writeFile(exporterConfig, `targets:\n  - name: t\n    url: ${sim.url}/v1\n    server: vllm\n`);
    // Ready once every target has a round; one scrape collects the process metrics too.
    const exporter = await loadedWhileRunning(['exporter', `--config.file=${exporterConfig}`], async (url) => {
      const res = await fetch(`${url}/-/ready`).catch(() => undefined);
      return res?.status === 200 && (await fetch(`${url}/metrics`)).status === 200;
    });
    const tokenFile = join(dir, 'idle-token');
    await writeFile(tokenFile, 'idle-token-idle-token', { mode: 0o600 });
    const remediatorConfig = join(dir, 'idle-remediator.yml');
    await writeFile(remediatorConfig, [
      'targets:',
      `  - { name: t, url: '${sim.url}/v1', server: vllm, remediation: { action: command, command: [/bin/true], confirm: false } }`,
      `remediator: { auth: { bearer_token_file: ${tokenFile} } }`,
    ].join('\n'));
    const remediator = await loadedWhileRunning(['remediator', `--config.file=${remediatorConfig}`, `--storage.path=${join(dir, 'idle-storage')}`], async (url) => {
      const res = await fetch(`${url}/-/ready`).catch(() => undefined);
      return res?.status === 200 && (await fetch(`${url}/metrics`)).status === 200;
    });
    for (const [name, { packages, builtins }] of Object.entries({ exporter, remediator })) {
      assert.ok(packages.includes('prom-client') && packages.includes('pino'), `${name}: ${packages.join(' ')}`);
      assert.ok(builtins.includes('http'), `${name}: ${builtins.join(' ')}`);
      for (const builtin of ['tls', 'https']) assert.ok(!builtins.includes(builtin), `${name} loaded node:${builtin}`);
      for (const pkg of ['execa', 'undici']) assert.ok(!packages.includes(pkg), `${name} loaded ${pkg}`);
    }
    assert.ok(remediator.packages.includes('express'), remediator.packages.join(' '));
  } finally {
    await sim.close();
  }
});

test('stack: two components given one port is a usage error naming the flag, before anything starts', async () => {
  const port = await freePort('127.0.0.1');
  // Two ports found one after the other may be the same one (bind, release): this test needs two.
  let sim = await freePort('127.0.0.1');
  while (sim === port) sim = await freePort('127.0.0.1');
  const r = await run(['stack', `--sim.listen-address=127.0.0.1:${sim}`, `--exporter.listen-address=127.0.0.1:${port}`, `--remediator.listen-address=127.0.0.1:${port}`]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, new RegExp(`--remediator.listen-address: port ${port} is given to another component too`));
});
