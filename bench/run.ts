// npm run bench [-- --quick] [--only=mttr,webhook,...]: runs the suites against the current code,
// then writes bench/results/<date>-<mode>.{md,json} and latest-<mode>.{md,json}. See bench/README.md.
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { accuracy } from './accuracy.ts';
import { chaos } from './chaos.ts';
import { describeMachine } from './lib/machine.ts';
import { Procs } from './lib/procs.ts';
import { buildProduct } from './lib/product.ts';
import { markdown, writeResults, type RunRecord } from './lib/report.ts';
import type { BenchContext, Mode, Suite, SuiteResult } from './lib/types.ts';
import { mttr } from './mttr.ts';
import { scale } from './scale.ts';
import { webhook } from './webhook.ts';

const suites: Suite[] = [webhook, accuracy, scale, mttr, chaos];
const repo = fileURLToPath(new URL('..', import.meta.url));
const resultsDir = fileURLToPath(new URL('./results/', import.meta.url));

const usage = `Usage: npm run bench -- [--quick] [--only=SUITE,...] [flags]

Benchmarks the current code (compiled from src/) and writes bench/results/<date>-<mode>.md and
.json, and latest-<mode>.md and .json. Without --quick: the full run (about 75 minutes).

  --quick            the short run (about 11 minutes on 2 cores)
  --only=LIST        run only these suites: ${suites.map((s) => s.name).join(', ')}
  --seed=N           seed of the chaos schedule (default 9)
  --no-latest        do not overwrite latest-<mode>.{md,json}
  --keep             keep the run's directory (configs, every process's log)
  --max-minutes=N    stop the run after N minutes (default: quick 16, full 180)
  --mttr.settings=LIST  mttr at these settings only: fast, production (production runs in
                     --quick too, one repetition); a narrowed run implies --no-latest
  --mttr.faults=LIST    mttr with these faults only: sigkill, hang-generation, engine-dead, frozen
  --mttr.flavors=LIST   the server types a frozen server is tried as: vllm, sglang, llamacpp,
                     ollama (default: all four in the full run, vllm in --quick)
  --mttr.repeat=N       repetitions of each fault but frozen (default: 3 in the full run, 1 in
                     --quick); frozen runs once per server type

Suites:
${suites.map((s) => `  ${s.name.padEnd(10)} ${s.summary}`).join('\n')}
`;

function parse(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      full: { type: 'boolean', default: false },
      only: { type: 'string' },
      seed: { type: 'string', default: '9' },
      'no-latest': { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
      'max-minutes': { type: 'string' },
      'mttr.settings': { type: 'string' },
      'mttr.faults': { type: 'string' },
      'mttr.flavors': { type: 'string' },
      'mttr.repeat': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.quick && values.full) throw new Error('--quick and --full exclude each other');
  const names = values.only?.split(',').map((s) => s.trim()).filter(Boolean) ?? suites.map((s) => s.name);
  const unknown = names.filter((n) => !suites.some((s) => s.name === n));
  if (unknown.length) throw new Error(`unknown suite ${unknown.join(', ')} (known: ${suites.map((s) => s.name).join(', ')})`);
  const seed = Number(values.seed);
  if (!Number.isInteger(seed)) throw new Error('--seed: a whole number');
  const mode: Mode = values.quick ? 'quick' : 'full';
  const maxMinutes = Number(values['max-minutes'] ?? (mode === 'quick' ? 16 : 180));
  if (!(maxMinutes > 0)) throw new Error('--max-minutes: a positive number');
  const options = { 'mttr.settings': values['mttr.settings'], 'mttr.faults': values['mttr.faults'], 'mttr.flavors': values['mttr.flavors'], 'mttr.repeat': values['mttr.repeat'] };
  // A narrowed suite is not the suite: its results must not replace the latest complete ones.
  const narrowed = Object.values(options).some((v) => v !== undefined);
  return { mode, selected: suites.filter((s) => names.includes(s.name)), seed, latest: !values['no-latest'] && !narrowed, keep: values.keep, maxMinutes, options, help: values.help };
}

async function main(argv: string[]): Promise<number> {
  let args: ReturnType<typeof parse>;
  try {
    args = parse(argv);
  } catch (err) {
    process.stderr.write(`bench: ${(err as Error).message}\n\n${usage}`);
    return 2;
  }
  if (args.help) {
    process.stdout.write(usage);
    return 0;
  }
  const started = performance.now();
  const startedAt = new Date().toISOString();
  const log = (line: string) => process.stderr.write(`[bench ${((performance.now() - started) / 1000).toFixed(0).padStart(4)} s] ${line}\n`);
  const procs = new Procs();
  const abort = new AbortController();
  // However the bench ends, nothing it started may outlive it.
  process.on('exit', () => procs.killAllNow());
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) {
      procs.killAllNow();
      process.exit(130);
    }
    interrupted = true;
    log(`${signal}: stopping (again to force)`);
    abort.abort(new Error(`interrupted by ${signal}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const watchdog = setTimeout(() => {
    log(`--max-minutes=${args.maxMinutes} reached: stopping`);
    abort.abort(new Error(`stopped after --max-minutes=${args.maxMinutes}`));
  }, args.maxMinutes * 60_000);
  watchdog.unref();

  const dir = await mkdtemp(join(tmpdir(), 'qwen-sentinel-bench-'));
  const machine = await describeMachine(repo);
  const estimate = args.selected.reduce((t, s) => t + s.estimate[args.mode], 0);
  log(`${args.mode} run of ${args.selected.map((s) => s.name).join(', ')} (about ${Math.round(estimate / 60)} min); load average ${machine.loadStart.join(' ')}; logs in ${dir}`);
  log('compiling src/ (the build the product ships as dist/) ...');
  const product = await buildProduct(repo, join(dir, 'build'));
  const notes: string[] = [];
  if (product.buildWarnings.length) notes.push(`tsc reported type errors in src/ while compiling it (the emitted code was measured): ${product.buildWarnings.slice(0, 3).join('; ')}`);
  if (machine.loadStart[0]! > machine.cores * 0.5) notes.push(`The machine was busy at the start (load ${machine.loadStart[0]} on ${machine.cores} cores): other work shared the CPU, so read ratios and same-run comparisons rather than absolute times.`);

  const narrowing = Object.entries(args.options).filter(([, v]) => v !== undefined);
  if (narrowing.length) notes.push(`A narrowed run (${narrowing.map(([k, v]) => `--${k}=${v}`).join(' ')}): latest-${args.mode}.* left as they were.`);
  const ctx: BenchContext = { mode: args.mode, signal: abort.signal, procs, product, dir, seed: args.seed, options: args.options, log };
  const results: SuiteResult[] = [];
  let failed = false;
  for (const suite of args.selected) {
    if (abort.signal.aborted) break;
    const out: SuiteResult = { suite: suite.name, figures: [], notes: [], seconds: 0 };
    results.push(out);
    const t0 = performance.now();
    log(`== ${suite.name}: ${suite.summary}`);
    try {
      await suite.run({ ...ctx, log: (line) => log(`${suite.name}: ${line}`) }, out);
    } catch (err) {
      failed = true;
      out.error = abort.signal.aborted ? String((abort.signal.reason as Error)?.message ?? 'aborted') : (err as Error).stack?.split('\n').slice(0, 3).join(' ') ?? String(err);
      log(`${suite.name} failed: ${out.error}`);
    } finally {
      await procs.stopAll(5000);
      out.seconds = (performance.now() - t0) / 1000;
    }
  }
  clearTimeout(watchdog);
  machine.loadEnd = loadavg().map((l) => Math.round(l * 100) / 100);
  const record: RunRecord = {
    mode: args.mode,
    startedAt,
    seconds: (performance.now() - started) / 1000,
    argv,
    suites: args.selected.map((s) => s.name),
    seed: args.seed,
    interrupted: abort.signal.aborted,
    machine,
    notes,
    results,
  };
  // An interrupted run (a signal, --max-minutes) holds part of its suites: never the latest.
  if (record.interrupted && args.latest) notes.push(`Interrupted: latest-${args.mode}.* left as they were.`);
  const written = await writeResults(resultsDir, record, args.latest && !record.interrupted);
  process.stdout.write(`${markdown(record)}\n`);
  log(`wrote ${written.filter((f) => f.endsWith('.md')).join(', ')}`);
  if (args.keep || failed) log(`logs kept in ${dir}`);
  else await rm(dir, { recursive: true, force: true });
  return abort.signal.aborted ? 130 : failed ? 1 : 0;
}

process.exitCode = await main(process.argv.slice(2));
// Exit now: an idle keep-alive socket must not hold the run open.
process.exit();
