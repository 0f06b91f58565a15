// The status pages in a real headless browser (Debian's chromium, driven by playwright-core): they
// render, show a failing target's reason and how long it has been down, reload themselves, and
// their links lead where they say (to a round's log even after a flood of /probe requests, to the
// other component, to a command that closes a circuit).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { chromium, type Browser, type Page } from 'playwright-core';
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

const token = 'a-token-of-at-least-16-chars';

async function exporterWithTargets(links?: Record<string, string>): Promise<RunningExporter> {
  const sim = await startSim({ host: '127.0.0.1', port: 0, ttftMs: 10, tokensPerSecond: 500 });
  running.push(sim);
  const gone = `http://127.0.0.1:${await freePort('127.0.0.1')}/v1`;
  const exporter = await startExporter({
    config: parseConfig({ targets: [{ name: 'qwen3', url: `${sim.url}/v1`, server: 'vllm', interval: '1s', timeout: '1s' }, { name: 'crashed', url: gone, interval: '1s', timeout: '1s' }] }),
    listen: { host: '127.0.0.1', port: 0 },
    logger: silentLogger,
    links,
  });
  running.push(exporter);
  while ((await fetch(`${exporter.url}/-/ready`)).status !== 200) await new Promise((r) => setTimeout(r, 50));
  return exporter;
}

/** A page whose timers the test moves (Playwright's clock): its reloads happen when told. */
async function clockedPage(): Promise<Page> {
  const page = await browser.newPage();
  await page.clock.install();
  return page;
}

test('exporter: targets with their state, how long they have been down and the failure reason; a round\'s log link opens its log', { skip, timeout: 60_000 }, async () => {
  const exporter = await exporterWithTargets();
  const page = await browser.newPage();
  await page.goto(`${exporter.url}/`);
  assert.equal(await page.title(), 'qwen-sentinel exporter');
  const crashed = page.locator('#targets tr', { hasText: 'crashed' });
  assert.match(await crashed.innerText(), /DOWN\s+for at least \d+ s\s+since the first round, \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ/);
  assert.match(await crashed.innerText(), /connect_refused\s+connection refused/);
  assert.match(await page.locator('#targets tr', { hasText: 'qwen3' }).innerText(), /UP\s+for \d+ s\s+since the first round/);
  assert.match(await page.locator('#updated').innerText(), /^Updated \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ · reloads every 10 s$/);

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

test('exporter: a flood of /probe requests evicts no target\'s log the page links to; a log that is gone says so and links back', { skip, timeout: 60_000 }, async () => {
  const exporter = await exporterWithTargets();
  const page = await browser.newPage();
  await page.goto(`${exporter.url}/`);
  const link = page.locator('#targets tr', { hasText: 'crashed' }).getByRole('link', { name: /^log #\d+$/ });
  const shownId = Number((await link.getAttribute('href'))!.split('=')[1]);

  // 150 /probe requests (more than their ring holds) while the page is open.
  const refused = `http://127.0.0.1:${await freePort('127.0.0.1')}/v1`;
  const ids: number[] = [];
  for (let i = 0; i < 150; i++) {
    const text = await (await fetch(`${exporter.url}/probe?target=${encodeURIComponent(refused)}&module=openai&debug=true`)).text();
    ids.push(Number(/round #(\d+)/.exec(text)![1]));
  }
  await link.click();
  await page.waitForURL(new RegExp(`/logs\\?id=${shownId}$`));
  assert.match(await page.locator('body').innerText(), new RegExp(`^Round #${shownId} of crashed \\(module openai\\)`));

  // The first /probe round is gone: a 404 that says so, and leads back to the status page.
  const res = await page.goto(`${exporter.url}/logs?id=${ids[0]}`);
  assert.equal(res?.status(), 404);
  assert.equal(await page.title(), 'Round not found');
  assert.match(await page.locator('body').innerText(), new RegExp(`The log of round #${ids[0]} is no longer kept: the exporter keeps the last \\d+ rounds of each target and the last 100 /probe requests\\.`));
  await page.getByRole('link', { name: 'Back to the status page' }).click();
  await page.waitForURL(`${exporter.url}/`);
  assert.equal(await page.title(), 'qwen-sentinel exporter');
  // The last /probe round is kept, and the recent rounds table says which rounds /probe ran.
  assert.equal((await fetch(`${exporter.url}/logs?id=${ids.at(-1)}`)).status, 200);
  assert.match(await page.locator('#rounds').innerText(), /\(\/probe\)/);
  await page.close();
});

test('the pages reload themselves, but not while text is selected', { skip, timeout: 60_000 }, async () => {
  const exporter = await exporterWithTargets();
  const page = await clockedPage();
  await page.goto(`${exporter.url}/`);
  let loads = 0;
  page.on('load', () => loads++);
  // (Browser-side code as strings: the tests are type-checked without the DOM's types.)
  await page.evaluate('window.marker = 1');
  const marked = async () => (await page.evaluate('window.marker === 1')) === true;
  await page.clock.runFor(9_000);
  assert.equal(await marked(), true, 'not reloaded before 10 s');
  // Someone is selecting a command to copy: the reload waits.
  await page.evaluate("getSelection().selectAllChildren(document.querySelector('h1'))");
  await page.clock.runFor(3_000);
  assert.equal(await marked(), true, 'not reloaded while text is selected');
  await page.evaluate('getSelection().removeAllRanges()');
  const loaded = page.waitForEvent('load');
  await page.clock.runFor(2_000);
  await loaded;
  assert.equal(await marked(), false);
  assert.equal(loads, 1);
  assert.equal(page.url(), `${exporter.url}/`);
  await page.close();
});

test('remediator: state badges, restarts, the circuit one restart from opening, an open one and the command that closes it', { skip, timeout: 60_000 }, async () => {
  const sim = await startSim({ host: '127.0.0.1', port: 0, ttftMs: 5, tokensPerSecond: 500 });
  running.push(sim);
  // confirm off: the server answers, and the test wants the action taken and verified.
  const remediation = (max: number) => ({ action: 'command', command: ['true'], cooldown: '1m', confirm: false, circuit: { max_restarts: max, window: '15m' } });
  const config = parseConfig({
    targets: [
      { name: 'qwen3', url: `${sim.url}/v1`, remediation: remediation(2) },
      { name: 'looping', url: `${sim.url}/v1`, remediation: remediation(1) },
      { name: 'quiet', url: `${sim.url}/v1`, remediation: remediation(3) },
    ],
    remediator: { auth: { bearer_token_env: 'UNUSED' } },
  });
  const remediator = await startRemediator({ config, token, listen: { host: '127.0.0.1', port: 0 }, logger: silentLogger });
  running.push(remediator);
  const res = await fetch(`${remediator.url}/webhook`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(payload({}, { labels: { target: 'looping' }, fingerprint: 'f00f00f00f00f00f' })) });
  assert.equal(res.status, 200);
  await remediator.remediator.idle();

  const context = await browser.newContext();
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: remediator.url });
  const page = await context.newPage();
  await page.goto(`${remediator.url}/`);
  assert.equal(await page.title(), 'qwen-sentinel remediator');
  assert.match(await page.locator('#updated').innerText(), /^Updated .*Z · reloads every 10 s$/);
  const row = page.locator('#targets tr', { hasText: 'qwen3' });
  assert.match(await row.innerText(), /command\s+cooldown\s+until /);
  assert.match(await row.innerText(), /\b1\b/, 'one restart');
  assert.match(await row.innerText(), /1 of 2 restarts in the last 15 min\s+the next restart opens the circuit/);
  // The badges are styled: a quiet target's is green, an open circuit's red.
  const badge = (name: string) => page.locator('#targets tr', { hasText: name }).locator('.badge');
  assert.equal(await badge('quiet').innerText(), 'idle');
  assert.equal(await badge('quiet').evaluate((e) => e.ownerDocument.defaultView!.getComputedStyle(e).color), 'rgb(26, 127, 55)');
  assert.equal(await badge('looping').innerText(), 'circuit open');
  assert.equal(await badge('looping').evaluate((e) => e.ownerDocument.defaultView!.getComputedStyle(e).backgroundColor), 'rgb(198, 40, 40)');
  assert.equal(await badge('qwen3').innerText(), 'cooldown');

  const looping = page.locator('#targets tr', { hasText: 'looping' });
  assert.match(await looping.innerText(), /open: 1 of 1 restarts in the last 15 min\. No restart until it closes: by itself at \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ \(in 1[45] min( \d+ s)?\), once its restarts are older than 15 min; or close it now:/);
  // The command, copied from the page: the token is not on it, the page's own URL is.
  await looping.getByRole('button', { name: 'copy' }).click();
  const command = String(await page.evaluate('navigator.clipboard.readText()'));
  assert.equal(command, `curl -X POST -H "Authorization: Bearer $TOKEN" ${remediator.url}/api/v1/targets/looping/circuit/close`);
  assert.ok(!(await page.content()).includes(token), 'the token is nowhere on the page');
  assert.equal(await looping.getByRole('button').innerText(), 'copied');
  // Run as copied, with the token in $TOKEN: the circuit closes.
  const curl = requireBinary('curl');
  if (curl) {
    const { stdout } = await promisify(execFile)('sh', ['-c', `${command} -s`], { env: { PATH: process.env.PATH, TOKEN: token } });
    assert.deepEqual(JSON.parse(stdout), { status: 'closed', target: 'looping' });
    await page.reload();
    assert.equal(await badge('looping').innerText(), 'cooldown');
    assert.match(await looping.innerText(), /0 of 1 restarts in the last 15 min\s+the next restart opens the circuit/);
  }

  assert.match(await page.locator('#actions').innerText(), /looping\s+command\s+LLMServerDown \(webhook\)\s+success\s+exit 0; answering after [\d.]+ s/);
  await page.getByRole('link', { name: 'Targets' }).click();
  assert.match(await page.locator('body').innerText(), /"restarts":\s*1/);
  await page.goBack();
  await page.getByRole('link', { name: 'Actions' }).click();
  assert.match(await page.locator('body').innerText(), /"outcome":\s*"success"/);
  await context.close();
});

test('the exporter\'s page links to the remediator (--web.link)', { skip, timeout: 60_000 }, async () => {
  const remediator = await startRemediator({ config: parseConfig({ targets: [{ name: 'qwen3', url: 'http://127.0.0.1:1/v1', remediation: { action: 'command', command: ['true'] } }], remediator: { auth: { bearer_token_env: 'UNUSED' } } }), token, listen: { host: '127.0.0.1', port: 0 }, logger: silentLogger });
  running.push(remediator);
  const exporter = await exporterWithTargets({ remediator: `${remediator.url}/` });
  const page = await browser.newPage();
  await page.goto(`${exporter.url}/`);
  await page.getByRole('link', { name: 'remediator' }).click();
  await page.waitForURL(`${remediator.url}/`);
  assert.equal(await page.title(), 'qwen-sentinel remediator');
  await page.close();
});

// Waits for src/remediator/server.ts to take `links` (RemediatorServerOptions.links, handed to
// remediatorStatusPage as `external`): until then the remediator's page has no link back.
test('the remediator\'s page links to the exporter (--web.link)', { skip, timeout: 60_000 }, async () => {
  const exporter = await exporterWithTargets();
  const remediator = await startRemediator({ config: parseConfig({ targets: [{ name: 'qwen3', url: 'http://127.0.0.1:1/v1', remediation: { action: 'command', command: ['true'] } }], remediator: { auth: { bearer_token_env: 'UNUSED' } } }), token, listen: { host: '127.0.0.1', port: 0 }, logger: silentLogger, ...{ links: { exporter: `${exporter.url}/` } } });
  running.push(remediator);
  const page = await browser.newPage();
  await page.goto(`${remediator.url}/`);
  await page.getByRole('link', { name: 'exporter' }).click({ timeout: 2000 });
  await page.waitForURL(`${exporter.url}/`);
  assert.equal(await page.title(), 'qwen-sentinel exporter');
  await page.close();
});
