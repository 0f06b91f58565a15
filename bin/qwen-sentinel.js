#!/usr/bin/env node
// Thin launcher: refuse an unsupported runtime with a clear message, then run the compiled CLI.
const [major] = process.versions.node.split('.').map(Number);
if (major < 24) {
  process.stderr.write(
    `qwen-sentinel needs Node.js 24 or newer; this is ${process.version} (${process.execPath}).\n` +
      'In a git checkout, run it through npm (npx qwen-sentinel, npm start) or node_modules/.bin/node dist/cli.js: npm ci brings Node 24.\n' +
      'Installed with npm install -g: put Node.js 24 first on PATH (https://nodejs.org/en/download).\n',
  );
  process.exit(1);
}
await import('../dist/cli.js');
