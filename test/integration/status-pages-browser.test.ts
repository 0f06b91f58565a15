// The status pages in a real headless browser (Debian's chromium, driven by playwright-core): they
// render, show a failing target's reason, and their links lead where they say.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import { parseConfig } from '../../src/cmd/config.ts';
import { startExporter, type RunningExporter } from '../../src/exporter/server.ts';
import { silentLogger } from '../../src/lib/log.ts';
import { startRemediator, type RunningRemediator } from '../../src/remediator/server.ts';
import { startSim, type RunningSim } from '../../src/sim/server.ts';
import { freePort } from '../../src/lib/system.ts';
import { payload } from '../helpers/fakes.ts';
import { requireBinary } from '../helpers/require-binary.ts';

const chromiumBin = requireBinary('chromium');
const skip = !chromiumBin && 'chromium missing';
let browser: Browser;
const running: Array<RunningSim | RunningExporter | RunningRemediator> = [];

before(async () => {
  if (skip) return;
  // Playwright gives the browser a fresh, temporary profile. As root, on a machine with no network: no sandbox, and nothing that phones home.
  browser = await chromium.launch({
    executablePath: chromiumBin!,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});
after(async () => {
  await browser?.close();
  for (const r of running.reverse()) await r.close();
});

test('exporter: targets with their state and failure reason; a round\'s log link opens its log', { skip, timeout: 60_000 }, async () => {
  const sim = await startSim({ host: '127.0.0.1', port: 0, ttftMs: 10, tokensPerSecond: 500 });
  running.push(sim);
  const gone = `http://127.0.0.1:${await freePort('127.0.0.1')}/v1`;
  const exporter = await startExporter({
    config: parseConfig({ targets: [{ name: 'qwen3', url: `${sim.url}/v1`, server: 'vllm', interval: '1s', timeout: '1s' }, { name: 'crashed', url: gone, interval: '1s', timeout: '1s' }] }),
    listen: { host: '127.0.0.1', port: 0 },
    logger: silentLogger,
  });
  running.push(exporter);
  while ((await fetch(`${exporter.url}/-/ready`)).status !== 200) await new Promise((r) => setTimeout(r, 50));

  const page = await browser.newPage();
  await page.goto(`${exporter.url}/`);
  assert.equal(await page.title(), 'qwen-sentinel exporter');
  const crashed = page.locator('#targets tr', { hasText: 'crashed' });
  assert.match(await crashed.innerText(), /DOWN/);
  assert.match(await crashed.innerText(), /connect_refused\s+connection refused/);
  assert.match(await page.locator('#targets tr', { hasText: 'qwen3' }).innerText(), /UP/);

  // The failing target's last-round link opens that round's log.
  await crashed.getByRole('link', { name: /^log #\d+$/ }).click();
  await page.waitForURL(/\/logs\?id=\d+$/);
  const log = await page.locator('body').innerText();
  assert.match(log, /^Round #\d+ of crashed \(module openai\)/);
  assert.match(log, /models: FAILED connect_refused: connection refused/);

  // The navigation links work: metrics, and an example /probe with its debug log.
  await page.goto(`${exporter.url}/`);
  await page.getByRole('link', { name: 'Metrics' }).click();
  assert.match(await page.locator('body').innerText(), /llm_server_up\{target="crashed",model=""\} 0/);
  await page.goto(`${exporter.url}/`);
  const probeHref = await page.getByRole('link', { name: 'Probe (example)' }).getAttribute('href');
  assert.match(probeHref ?? '', /^probe\?target=.*&module=openai&debug=true$/);
  await page.close();
});

test('remediator: each target\'s state and restarts, and the recent actions', { skip, timeout: 60_000 }, async () => {
  const sim = await startSim({ host: '127.0.0.1', port: 0, ttftMs: 5, tokensPerSecond: 500 });
  running.push(sim);
  // confirm off: the server answers, and the test wants the action taken and verified.
  const config = parseConfig({
    targets: [{ name: 'qwen3', url: `${sim.url}/v1`, remediation: { action: 'command', command: ['true'], cooldown: '1m', confirm: false } }],
    remediator: { auth: { bearer_token_env: 'UNUSED' } },
  });
  const token = 'a-token-of-at-least-16-chars';
  const remediator = await startRemediator({ config, token, listen: { host: '127.0.0.1', port: 0 }, logger: silentLogger });
  running.push(remediator);
  const res = await fetch(`${remediator.url}/webhook`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(payload({})) });
  assert.equal(res.status, 200);
  await remediator.remediator.idle();

  const page = await browser.newPage();
  await page.goto(`${remediator.url}/`);
  assert.equal(await page.title(), 'qwen-sentinel remediator');
  const row = await page.locator('#targets tr', { hasText: 'qwen3' }).innerText();
  assert.match(row, /command\s+cooldown/);
  assert.match(row, /\b1\b/, 'one restart');
  assert.match(await page.locator('#actions').innerText(), /qwen3\s+command\s+LLMServerDown \(webhook\)\s+success\s+exit 0; answering after [\d.]+ s/);
  await page.getByRole('link', { name: 'Targets' }).click();
  assert.match(await page.locator('body').innerText(), /"restarts":\s*1/);
  await page.goBack();
  await page.getByRole('link', { name: 'Actions' }).click();
  assert.match(await page.locator('body').innerText(), /"outcome":\s*"success"/);
  await page.close();
});
