// Runs `qwen-sentinel sim` in a child process for tests, as the CLI dispatcher would: a UsageError exits 2.
import { UsageError } from '../../src/flags.ts';
import { runSim } from '../../src/sim/main.ts';

try {
  await runSim(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`${err instanceof UsageError ? 'usage error' : 'error'}: ${(err as Error).message}\n`);
  process.exit(err instanceof UsageError ? 2 : 1);
}
