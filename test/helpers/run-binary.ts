import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));

export interface RunResult {
  code: number;
  output: string;
}

/** Runs a binary without a shell (in the repository by default); never rejects, so callers assert on the exit code and output. */
export function run(file: string, args: string[], cwd = root): Promise<RunResult> {
  return new Promise((done) => {
    execFile(file, args, { cwd, timeout: 60_000, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
      done({ code, output: `${stdout}${stderr}` });
    });
  });
}
