// --log.format=logfmt: each pino JSON line rewritten as one logfmt line, as Prometheus logs.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import { logFlags, logfmtLine, parseLogFormat } from '../../src/lib/log.ts';
import { UsageError } from '../../src/lib/flags.ts';

/** The JSON lines a pino logger with our options writes, as createLogger makes it. */
function jsonLines(log: (logger: pino.Logger) => void): string[] {
  const lines: string[] = [];
  const logger = pino({ level: 'trace', base: { component: 'exporter' }, timestamp: pino.stdTimeFunctions.isoTime }, { write: (line: string) => void lines.push(line) });
  log(logger);
  return lines;
}

test('ts, level, component and msg come first, the level by name; then the fields in their order', () => {
  const [line] = jsonLines((l) => l.info({ target: 'qwen3', up: true, took: 1.5, none: null }, 'round done'));
  assert.match(logfmtLine(line!), /^ts=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z level=info component=exporter msg="round done" target=qwen3 up=true took=1.5 none=null\n$/);
  assert.match(logfmtLine(jsonLines((l) => l.warn('x'))[0]!), / level=warn component=exporter msg=x\n$/);
});

test('a value is quoted when it is empty or holds a space, =, " or a control character; escapes as Go\'s logfmt', () => {
  const line = logfmtLine(JSON.stringify({ a: 'plain', b: '', c: 'two words', d: 'k=v', e: 'say "hi"', f: 'line\nnext\ttab', g: 'C:\\dir', h: 'héllo' }));
  assert.equal(line, 'a=plain b="" c="two words" d="k=v" e="say \\"hi\\"" f="line\\nnext\\ttab" g=C:\\dir h=héllo\n');
});

test('nested objects and arrays are flattened into dotted keys; keys lose spaces, = and "', () => {
  const line = logfmtLine(JSON.stringify({ msg: 'm', target: { name: 'qwen3', url: 'http://x/v1' }, targets: ['a', 'b'], empty: {}, none: [], 'bad key=': 1 }));
  assert.equal(line, 'msg=m target.name=qwen3 target.url=http://x/v1 targets.0=a targets.1=b empty={} none=[] bad_key_=1\n');
});

test('an error becomes err.type, err.message and err.stack, the stack on one line', () => {
  const [line] = jsonLines((l) => l.error({ err: new Error('boom "x"') }, 'probe failed'));
  const out = logfmtLine(line!);
  assert.equal(out.split('\n').length, 2, 'one line');
  assert.match(out, / level=error component=exporter msg="probe failed" err\.type=Error err\.message="boom \\"x\\"" err\.stack="Error: boom \\"x\\"\\n {4}at /);
});

test('a line that is not JSON is passed through as it is', () => {
  assert.equal(logfmtLine('not json\n'), 'not json\n');
});

test('--log.format: json or logfmt, anything else a usage error naming the flag; the flag documented once, for every command', () => {
  assert.equal(parseLogFormat('logfmt'), 'logfmt');
  assert.equal(parseLogFormat('json'), 'json');
  assert.throws(() => parseLogFormat('text'), (err: Error) => err instanceof UsageError && /^--log\.format: expected one of json, logfmt, got "text"$/.test(err.message));
  assert.deepEqual(Object.keys(logFlags), ['log.level', 'log.format']);
  assert.equal(logFlags['log.format'].default, 'json');
});
