// The product under test, driven only through its CLI and HTTP endpoints (never its internals,
// which the optimisations will rewrite). It runs compiled, as deployed (bin/ runs dist/): the bench
// compiles the current src/ into a build directory of its own first, so it measures the code of
// the checkout, not a stale dist/, and leaves dist/ alone.
import { execFile } from 'node:child_process';
import { copyFile, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Child, Procs } from './procs.ts';
import { freePort, getText, waitFor } from './net.ts';

const run = promisify(execFile);

export interface Product {
  node: string;
  /** The compiled CLI (dist/cli.js of the build). */
  cli: string;
  repo: string;
  /** Type errors tsc reported while building (it emits anyway), for the results' notes. */
  buildWarnings: string[];
}

/** Compiles src/ with the project's own build config into `buildDir`, laid out like the checkout. */
export async function buildProduct(repo: string, buildDir: string): Promise<Product> {
  await rm(buildDir, { recursive: true, force: true });
  await mkdir(buildDir, { recursive: true });
  // The code finds package.json and the shipped prometheus/ configs one and two levels above itself.
  await copyFile(join(repo, 'package.json'), join(buildDir, 'package.json'));
  await symlink(join(repo, 'prometheus'), join(buildDir, 'prometheus'));
  await symlink(join(repo, 'node_modules'), join(buildDir, 'node_modules'));
  const tsc = join(repo, 'node_modules', '.bin', 'tsc');
  const warnings: string[] = [];
  try {
    await run(tsc, ['-p', join(repo, 'tsconfig.build.json'), '--outDir', join(buildDir, 'dist'), '--sourceMap', 'false'], { cwd: repo, maxBuffer: 1 << 24 });
  } catch (err) {
    // tsc exits 2 on type errors but still emits: note them, measure what was built.
    const out = `${(err as { stdout?: string }).stdout ?? ''}${(err as { stderr?: string }).stderr ?? ''}`.trim();
    warnings.push(...out.split('\n').filter((l) => l.includes('error TS')).slice(0, 10));
    if (warnings.length === 0) throw err;
  }
  return { node: process.execPath, cli: join(buildDir, 'dist', 'cli.js'), repo, buildWarnings: warnings };
}

export interface RunningSim {
  child: Child;
  port: number;
  /** Origin, without /v1. */
  origin: string;
  base: string;
}

/** Starts `qwen-sentinel sim` on a free port and waits until it lists its model (after its start-up delay). */
export async function startSim(procs: Procs, product: Product, name: string, flags: string[], logFile: string, signal: AbortSignal, readyWithinMs = 30_000): Promise<RunningSim> {
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const child = procs.spawn(name, product.node, [product.cli, 'sim', `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn', ...flags], { logFile });
    const origin = `http://127.0.0.1:${port}`;
    try {
      await waitFor(`${name} listening`, readyWithinMs, async () => {
        if (!child.running) throw new Error(`${name} exited`);
        return (await getText(`${origin}/v1/models`, 2000)) ? true : undefined;
      }, signal, 100);
      return { child, port, origin, base: `${origin}/v1` };
    } catch (err) {
      await child.stop(2000);
      if (attempt >= 2 || signal.aborted) throw err;
    }
  }
}

export interface RunningService {
  child: Child;
  url: string;
}

/** Starts an exporter or remediator on a free port (retrying if another process took it). */
export async function startService(procs: Procs, product: Product, name: string, command: 'exporter' | 'remediator', flags: string[], logFile: string, signal: AbortSignal, readyWithinMs = 60_000): Promise<RunningService> {
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const child = procs.spawn(name, product.node, [product.cli, command, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn', ...flags], { logFile });
    const url = `http://127.0.0.1:${port}`;
    try {
      await waitFor(`${name} healthy`, readyWithinMs, async () => {
        if (!child.running) throw new Error(`${name} exited (see ${logFile})`);
        return (await getText(`${url}/-/healthy`, 2000)) !== undefined ? true : undefined;
      }, signal, 100);
      return { child, url };
    } catch (err) {
      await child.stop(2000);
      if (attempt >= 2 || signal.aborted) throw err;
    }
  }
}

export interface RunningStack {
  child: Child;
  urls: Record<string, string>;
  /** The simulator's origin (no /v1). */
  sim: string;
  stop(): Promise<void>;
}

/**
 * `qwen-sentinel stack` on free ports, as test/helpers/stack-child.ts starts it: every address
 * port 0, the component URLs read from the banner it prints once everything is up.
 */
export async function startStack(procs: Procs, product: Product, name: string, flags: string[], logFile: string, signal: AbortSignal): Promise<RunningStack> {
  const any = '127.0.0.1:0';
  const child = procs.spawn(name, product.node, [
    product.cli, 'stack',
    `--sim.listen-address=${any}`, `--exporter.listen-address=${any}`, `--remediator.listen-address=${any}`,
    `--prometheus.listen-address=${any}`, `--alertmanager.listen-address=${any}`, '--log.level=warn', ...flags,
  ], { logFile, capture: true });
  try {
    await waitFor(`${name} banner`, 90_000, async () => {
      if (!child.running) throw new Error(`stack exited:\n${child.output().slice(-2000)}`);
      return /^ {2}files /m.test(child.output()) ? true : undefined;
    }, signal, 100);
  } catch (err) {
    await child.stop(20_000);
    throw err;
  }
  const urls: Record<string, string> = {};
  for (const [, key, url] of child.output().matchAll(/^ {2}(\S[\w ()]*?) {2,}(http:\/\/127\.0\.0\.1:\d+)\S*$/gm)) urls[key!] = url!;
  const sim = urls['model server (simulator)'];
  if (!sim || !urls.exporter || !urls.remediator) throw new Error(`stack banner without the component URLs:\n${child.output()}`);
  return { child, urls, sim, stop: () => child.stop(25_000) };
}

/** Writes a config file (JSON is YAML) into dir and returns its path. */
export async function writeConfig(dir: string, file: string, config: unknown): Promise<string> {
  const path = join(dir, file);
  await writeFile(path, JSON.stringify(config, null, 1));
  return path;
}

/** First line of `bin --version` (or of its stderr, where Go programs print it). */
export async function versionOf(bin: string): Promise<string | undefined> {
  try {
    const { stdout, stderr } = await run(bin, ['--version'], { timeout: 10_000 });
    return `${stdout}${stderr}`.split('\n')[0]?.trim();
  } catch {
    return undefined;
  }
}

export async function which(bin: string): Promise<string | undefined> {
  try {
    const { stdout } = await run('sh', ['-c', `command -v ${bin}`]);
    return stdout.trim() || undefined;
  } catch {
    return undefined;
  }
}

