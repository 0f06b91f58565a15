// Loaded with --import: on exit, writes the npm packages the process loaded to stderr as JSON.
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
process.on('exit', () => process.stderr.write(`loaded-packages ${JSON.stringify([...packages].sort())}\n`));
