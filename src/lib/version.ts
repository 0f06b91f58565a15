import { readFileSync } from 'node:fs';

// Works from src/ (type stripping) and from dist/ (compiled): both sit one level below package.json.
const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

export const version: string = pkg.version;
