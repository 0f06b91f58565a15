import assert from 'node:assert/strict';
import { dirname } from 'node:path';
import { test } from 'node:test';
import { descendants, eventually, isAlive, startStack } from '../helpers/stack-child.ts';

// The embedded default without Prometheus and Alertmanager on PATH: it says how to get them,
// runs the rest, and stops what it started.
test('stack without Prometheus: says how to get it, runs the rest, stops everything on SIGTERM', { timeout: 60_000 }, async () => {
  const env = { ...process.env, PATH: dirname(process.execPath) };
  const any = '127.0.0.1:0';
  const stack = await startStack([`--sim.listen-address=${any}`, `--exporter.listen-address=${any}`, `--remediator.listen-address=${any}`, '--sim.startup-delay=0s', '--probe.interval=1s', '--log.level=warn'], env);
  try {
    assert.match(stack.output(), /Prometheus and Alertmanager are not on PATH/);
    assert.match(stack.output(), /apt-get install prometheus prometheus-alertmanager/);
    assert.deepEqual(Object.keys(stack.urls).sort(), ['exporter', 'model server (simulator)', 'remediator']);
    for (const url of Object.values(stack.urls)) assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
    await eventually('the simulated server to be probed up', 30_000, async () => {
      const metrics = await (await fetch(`${stack.urls.exporter}/metrics`)).text();
      return /^llm_server_up\{target="qwen3",model="Qwen\/Qwen3-0.6B"\} 1$/m.test(metrics) ? true : undefined;
    });
    const models = await (await fetch(`${stack.urls['model server (simulator)']}/v1/models`)).json() as { data: Array<{ id: string }> };
    assert.equal(models.data[0]!.id, 'Qwen/Qwen3-0.6B');
  } finally {
    const started = descendants(stack.child.pid!);
    assert.equal(await stack.stop(), 0);
    assert.ok(started.length >= 1);
    assert.deepEqual(started.filter(isAlive), []);
  }
});
