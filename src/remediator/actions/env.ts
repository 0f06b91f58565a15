/**
 * The environment a server or command starts with: an explicit one. Only these variables of the
 * remediator's own pass on, then the target's `env`; the webhook token and any other secret of the
 * remediator never reach a child.
 */
const passed = ['PATH', 'HOME', 'USER', 'LOGNAME', 'LANG', 'LANGUAGE', 'LC_ALL', 'LC_CTYPE', 'TZ', 'TMPDIR'];

export function childEnv(extra: Record<string, string>, from: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of passed) if (from[name] !== undefined) env[name] = from[name]!;
  return { ...env, ...extra };
}
