// Loaded with --import: on exit, writes to stderr the npm packages the process loaded and the
// public Node.js built-ins it loaded (node:tls, ...), each as JSON.
import { registerHooks } from 'node:module';

const packages = new Set();
registerHooks({
  resolve(specifier, context, next) {
    const result = next(specifier, context);
    const name = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(result.url)?.[1];
    if (name) packages.add(name);
    return result;
  },
});
process.on('exit', () => {
  const builtins = process.moduleLoadList.filter((m) => m.startsWith('NativeModule ') && !m.includes('internal/')).map((m) => m.slice('NativeModule '.length));
  process.stderr.write(`loaded-packages ${JSON.stringify([...packages].sort())}\nloaded-builtins ${JSON.stringify(builtins.sort())}\n`);
});
