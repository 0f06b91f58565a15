#!/usr/bin/env node
// Thin launcher: refuse an unsupported runtime with a clear message, then run the compiled CLI.
const [major] = process.versions.node.split('.').map(Number);
if (major < 24) {
  process.stderr.write(
    `qwen-sentinel needs Node.js 24 or newer; this is ${process.version} (${process.execPath}).\n` +
      'Inside the project, run it through npm (npx qwen-sentinel, npm start): npm ci brings Node 24 as a devDependency.\n',
  );
  process.exit(1);
}
await import('../dist/cli.js');
