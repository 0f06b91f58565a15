// What the figures were measured on: they only mean something beside this.
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { cpus, homedir, loadavg, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { findBlackbox } from './peers.ts';
import { versionOf, which } from './product.ts';

const run = promisify(execFile);

export interface Machine {
  cores: number;
  cpu: string;
  memoryGB: number;
  kernel: string;
  node: string;
  prometheus: string | undefined;
  alertmanager: string | undefined;
  blackboxExporter: string | undefined;
  llamaServer: string | undefined;
  /** 1, 5 and 15 minute load averages when the run started, and when it ended. */
  loadStart: number[];
  loadEnd?: number[] | undefined;
  git: { commit: string | undefined; changedFiles: number | undefined };
}

const firstLine = (s: string | undefined) => s?.split('\n')[0]?.trim();

async function git(repo: string, args: string[]): Promise<string | undefined> {
  try {
    return (await run('git', ['-C', repo, ...args])).stdout;
  } catch {
    return undefined;
  }
}

/** The cached llama.cpp build the tests use, if any: ~/.cache/qwen-sentinel/llama.cpp-VERSION/. */
export function llamaCacheDirs(): string[] {
  const root = process.env.QWEN_SENTINEL_CACHE || join(homedir(), '.cache', 'qwen-sentinel');
  try {
    return readdirSync(root).filter((n) => n.startsWith('llama.cpp-')).map((n) => join(root, n));
  } catch {
    return [];
  }
}

export async function describeMachine(repo: string): Promise<Machine> {
  const am = (await which('prometheus-alertmanager')) ?? (await which('alertmanager'));
  const porcelain = await git(repo, ['status', '--porcelain', '--', 'src']);
  const blackbox = await findBlackbox();
  return {
    cores: cpus().length,
    cpu: cpus()[0]?.model.trim() ?? 'unknown',
    memoryGB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    kernel: release(),
    node: process.version,
    prometheus: firstLine(await versionOf('prometheus')),
    alertmanager: am ? firstLine(await versionOf(am)) : undefined,
    blackboxExporter: blackbox ? firstLine(await versionOf(blackbox)) : undefined,
    llamaServer: llamaCacheDirs()[0]?.split('/').pop(),
    loadStart: loadavg().map((l) => Math.round(l * 100) / 100),
    git: { commit: (await git(repo, ['rev-parse', '--short', 'HEAD']))?.trim(), changedFiles: porcelain === undefined ? undefined : porcelain.split('\n').filter(Boolean).length },
  };
}
