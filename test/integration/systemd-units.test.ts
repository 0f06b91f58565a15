// The shipped systemd units, against the install they are written for: the release tarball
// (`npm pack`) installed into its own prefix with `npm install -g --prefix /opt/qwen-sentinel`, as
// docs/adoption.md's "Add it to your stack" does. The test does that install into a temporary
// root, offline (the tarball bundles its dependencies), maps /opt/qwen-sentinel into that root, and has
// `systemd-analyze verify` judge both units: a command that is not executable there (a path the
// install does not create), a misspelt or malformed directive, fails the test. Then it runs each
// unit's ExecStart as systemd would (the unit's PATH, a Node 24 in the prefix, the credential the
// unit loads) with --config.check, so the installed CLI must accept the unit's flags and the
// shipped example config. systemd need not run: `verify` reads unit files.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { requireBinary } from '../helpers/require-binary.ts';
import type { RunResult } from '../helpers/run-binary.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const systemdAnalyze = requireBinary('systemd-analyze');
const npm = requireBinary('npm');
const skip = (!systemdAnalyze && 'systemd-analyze missing') || (!npm && 'npm missing');

/** Where docs/adoption.md installs the package, and so where the units look for it. */
const PREFIX = '/opt/qwen-sentinel';
const UNIT_DIR = join(ROOT, 'deploy/systemd');
const UNITS = ['qwen-sentinel-exporter.service', 'qwen-sentinel-remediator.service'];
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string; bin: Record<string, string> };
/** Wrappers that would stay resident between systemd and the service, or resolve it at start. */
const WRAPPERS = new Set(['npm', 'npx', 'env', 'sh', 'bash', 'pnpm', 'yarn', 'corepack']);

const root = mkdtempSync(join(tmpdir(), 'qwen-sentinel-units-'));
after(() => rmSync(root, { recursive: true, force: true }));
/** A path of the installed system, inside the temporary root. */
const inRoot = (path: string): string => join(root, path);
/** Unit text or an argv word with every /opt/qwen-sentinel/ path moved into the temporary root. */
const mapPrefix = (text: string): string => text.replaceAll(`${PREFIX}/`, `${inRoot(PREFIX)}/`);

/** Like test/helpers/run-binary.ts' run, with an environment and a longer timeout (npm). */
function run(file: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; timeout?: number } = {}): Promise<RunResult> {
  return new Promise((done) => {
    execFile(file, args, { cwd: options.cwd ?? root, env: options.env ?? process.env, timeout: options.timeout ?? 60_000, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
      done({ code, output: `${stdout}${stderr}` });
    });
  });
}

/** This environment without the npm_* variables an enclosing `npm test` sets (its prefix, its package). */
const npmEnv = (): NodeJS.ProcessEnv => Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^npm_/i.test(key)));

type Unit = Record<string, Record<string, string[]>>;

/** A unit file's directives, by section, each with all its values in order (no continuation lines in ours). */
function parseUnit(text: string): Unit {
  const unit: Unit = {};
  let section: Record<string, string[]> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = unit[header[1]!] ??= {};
      continue;
    }
    assert.ok(section, `directive outside a section: ${line}`);
    assert.ok(!line.endsWith('\\'), `continuation lines are not parsed here: ${line}`);
    const eq = line.indexOf('=');
    assert.ok(eq > 0, `not a directive: ${line}`);
    (section[line.slice(0, eq).trim()] ??= []).push(line.slice(eq + 1).trim());
  }
  return unit;
}

/** The only value of a directive in [Service]. */
function serviceValue(unit: Unit, key: string): string {
  const values = unit.Service?.[key] ?? [];
  assert.equal(values.length, 1, `[Service] ${key}: expected one, got ${JSON.stringify(values)}`);
  return values[0]!;
}

/** ExecStart's argv (our units use no quoting, specifiers or $VARIABLES in it). */
function execStart(unit: Unit): string[] {
  const line = serviceValue(unit, 'ExecStart');
  assert.doesNotMatch(line, /["'\\$%]/, `ExecStart is split on spaces here: ${line}`);
  const argv = line.split(/\s+/);
  assert.match(argv[0]!, /^\//, `ExecStart must name an absolute path (no prefixes such as - or @): ${line}`);
  return argv;
}

/** The unit's Environment=NAME=value settings. */
function environment(unit: Unit): Record<string, string> {
  return Object.fromEntries((unit.Service?.Environment ?? []).flatMap((value) => value.split(/\s+/)).map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]));
}

const unitText = (name: string): string => readFileSync(join(UNIT_DIR, name), 'utf8');
const units = Object.fromEntries(UNITS.map((name) => [name, parseUnit(unitText(name))]));

/** Writes unit text (mapped into the root) and runs `systemd-analyze verify` on it. */
async function verify(name: string, text: string): Promise<RunResult> {
  const dir = mkdtempSync(join(root, 'units-'));
  const file = join(dir, name);
  writeFileSync(file, mapPrefix(text));
  // No man page lookups (none are named), no colours, no pager.
  return run(systemdAnalyze!, ['verify', '--man=no', file], { env: { ...process.env, SYSTEMD_COLORS: '0', SYSTEMD_PAGER: '', SYSTEMD_LOG_COLOR: '0' } });
}

// --- the install ---------------------------------------------------------------------------------

let installed = false;
before(async () => {
  if (skip) return;
  // npm pack ships dist/ as it is (npm ci's `prepare` builds it); --ignore-scripts keeps this
  // test from rebuilding the checkout under other tests.
  assert.ok(existsSync(join(ROOT, 'dist/cli.js')), 'dist/cli.js missing: run npm ci (or npm run build) first; the tarball ships dist/');
  const packDir = join(root, 'pack');
  mkdirSync(packDir);
  const cache = join(root, 'npm-cache');
  const packed = await run(npm!, ['pack', '--ignore-scripts', '--pack-destination', packDir, '--cache', cache, '--json'], { cwd: ROOT, env: npmEnv(), timeout: 120_000 });
  assert.equal(packed.code, 0, packed.output);
  const tarball = join(packDir, `${pkg.name}-${pkg.version}.tgz`);
  assert.ok(existsSync(tarball), `npm pack made no ${basename(tarball)}: ${readdirSync(packDir).join(', ')}`);
  // The guide's command, with the prefix in the temporary root; --offline: the tarball must
  // install without a registry.
  const install = await run(npm!, ['install', '--global', '--prefix', inRoot(PREFIX), '--offline', '--no-audit', '--no-fund', '--cache', cache, tarball], { env: npmEnv(), timeout: 180_000 });
  assert.equal(install.code, 0, install.output);
  installed = true;
}, { timeout: 300_000 });

describe('systemd units, on the guide install (npm install -g --prefix /opt/qwen-sentinel)', { skip }, () => {
  test('the install has the qwen-sentinel command in /opt/qwen-sentinel/bin, the package and its deploy/ files', () => {
    assert.ok(installed);
    const [bin, script] = Object.entries(pkg.bin)[0]!;
    const command = inRoot(join(PREFIX, 'bin', bin));
    assert.ok(existsSync(command), `${command} missing`);
    assert.equal(realpathSync(command), realpathSync(inRoot(join(PREFIX, 'lib/node_modules', pkg.name, script))));
    for (const name of [...UNITS, 'qwen-sentinel.sysusers.conf', 'qwen-sentinel.tmpfiles.conf', 'qwen-sentinel.polkit.rules']) {
      assert.equal(readFileSync(inRoot(join(PREFIX, 'lib/node_modules', pkg.name, 'deploy/systemd', name)), 'utf8'), unitText(name), `${name} installed as shipped`);
    }
  });

  for (const name of UNITS) {
    test(`${name}: ExecStart is the installed qwen-sentinel command itself, not a wrapper`, () => {
      const argv = execStart(units[name]!);
      assert.equal(argv[0], join(PREFIX, 'bin', Object.keys(pkg.bin)[0]!), 'the command npm install -g --prefix /opt/qwen-sentinel creates');
      for (const key of ['ExecStart', 'ExecStartPre', 'ExecStartPost', 'ExecReload', 'ExecStop']) {
        for (const line of units[name]!.Service?.[key] ?? []) {
          const program = basename(line.split(/\s+/)[0]!.replace(/^[-@:+!]+/, ''));
          assert.ok(!WRAPPERS.has(program), `${key}=${line}: runs through ${program}`);
          assert.doesNotMatch(line, /\bnpm\s+exec\b|\bnpx\b/, `${key}=${line}`);
        }
      }
      assert.equal(argv[1], name.replace(/^qwen-sentinel-|\.service$/g, ''), 'the subcommand the unit is named after');
    });

    test(`${name}: systemd-analyze verify passes, silently, with the package installed`, async () => {
      assert.ok(installed);
      const result = await verify(name, unitText(name));
      assert.equal(result.code, 0, result.output);
      assert.equal(result.output.trim(), '', 'no warnings (systemd ignores an unknown or malformed directive with a warning, exit code 0)');
    });
  }

  test('the verify check catches a command the install does not have and a misspelt or malformed directive', async () => {
    assert.ok(installed);
    const text = unitText('qwen-sentinel-exporter.service');
    const oldLayout = await verify('qwen-sentinel-exporter.service', text.replace(/^ExecStart=\S+/m, `ExecStart=${PREFIX}/node_modules/.bin/node ${PREFIX}/dist/cli.js`));
    assert.notEqual(oldLayout.code, 0);
    assert.match(oldLayout.output, /Command \S+\/opt\/qwen-sentinel\/node_modules\/\.bin\/node is not executable: No such file or directory/);
    const typo = await verify('qwen-sentinel-exporter.service', text.replace(/^ProtectSystem=/m, 'ProtectSytem=').replace(/^RestartSec=\S+/m, 'RestartSec=5q'));
    assert.match(typo.output, /Unknown key .*ProtectSytem/);
    assert.match(typo.output, /Failed to parse sec value/);
  });

  for (const name of UNITS) {
    test(`${name}: ExecStart, run as systemd runs it, is the installed CLI on Node 24 and accepts the unit's flags and the example config`, async () => {
      assert.ok(installed);
      const unit = units[name]!;
      const env = environment(unit);
      assert.ok(env.PATH, 'the unit sets PATH');
      const path = env.PATH.split(':');
      assert.equal(path[0], join(PREFIX, 'bin'), 'the prefix comes first, so a Node 24 installed there wins over an older system node');
      for (const dir of ['/usr/local/bin', '/usr/bin']) assert.ok(path.includes(dir), `PATH has ${dir} (a system Node 24)`);
      // Node 24 in the prefix: the nodejs.org binary unpacked there would put bin/node here.
      // (This test runs on it: package.json's node devDependency.)
      assert.ok(Number(process.versions.node.split('.')[0]) >= 24, `the test runs on Node ${process.version}`);
      const node = inRoot(join(PREFIX, 'bin/node'));
      if (!existsSync(node)) symlinkSync(realpathSync(process.execPath), node);
      // /etc/qwen-sentinel/sentinel.yml as step 2 of the guide makes it: the shipped example.
      const etc = inRoot('/etc/qwen-sentinel');
      mkdirSync(etc, { recursive: true });
      copyFileSync(inRoot(join(PREFIX, 'lib/node_modules', pkg.name, 'examples/sentinel.yml')), join(etc, 'sentinel.yml'));
      writeFileSync(join(etc, 'webhook-token'), 'a'.repeat(64));
      // LoadCredential=ID:FILE appears at /run/credentials/UNIT/ID: made here, and the config's
      // references to that directory point into the root.
      const credentials = `/run/credentials/${name}`;
      const childEnv: NodeJS.ProcessEnv = { PATH: mapPrefix(env.PATH) };
      for (const spec of unit.Service?.LoadCredential ?? []) {
        const [id, source] = spec.split(':') as [string, string];
        mkdirSync(inRoot(credentials), { recursive: true });
        copyFileSync(inRoot(source), inRoot(join(credentials, id)));
        childEnv.CREDENTIALS_DIRECTORY = inRoot(credentials);
      }
      const config = join(etc, 'sentinel.yml');
      writeFileSync(config, readFileSync(config, 'utf8').replaceAll('/run/credentials/', `${inRoot('/run/credentials')}/`));
      const argv = execStart(unit).map((arg) => mapPrefix(arg).replace(/^(--[\w.-]+=)(\/(?:etc|var\/lib)\/qwen-sentinel\/.*)$/, (_, flag: string, file: string) => `${flag}${inRoot(file)}`));
      const [command, ...args] = argv;
      const version = await run(command!, ['--version'], { env: childEnv });
      assert.equal(version.code, 0, version.output);
      assert.match(version.output, new RegExp(`^qwen-sentinel ${pkg.version.replaceAll('.', '\\.')} \\(node v2[4-9]\\.`));
      const check = await run(command!, [...args, '--config.check'], { env: childEnv });
      assert.equal(check.code, 0, `${argv.join(' ')} --config.check\n${check.output}`);
      assert.match(check.output, /^config OK/m);
    });
  }

  test('the remediator reads its token where the unit\'s LoadCredential= puts it', () => {
    const loaded = units['qwen-sentinel-remediator.service']!.Service?.LoadCredential ?? [];
    const example = readFileSync(join(ROOT, 'examples/sentinel.yml'), 'utf8');
    const tokenFile = /^\s*bearer_token_file:\s*(\S+)/m.exec(example)?.[1];
    assert.ok(tokenFile, 'examples/sentinel.yml names no bearer_token_file');
    assert.deepEqual(loaded.map((spec) => `/run/credentials/qwen-sentinel-remediator.service/${spec.split(':')[0]}`), [tokenFile]);
    assert.equal(dirname(tokenFile), '/run/credentials/qwen-sentinel-remediator.service');
  });
});
