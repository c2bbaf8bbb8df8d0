// The demo page in a real browser: Debian's Chromium, headless, driven by
// playwright-core. Pastes a valid key and a tampered one, checks what the
// page shows, and saves screenshots (KEYSEAL_SCREENSHOTS, outside the repo).
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { vectors } from '../common.mjs';

const demoDir = process.env.KEYSEAL_DEMO_DIR ?? new URL('../../demo', import.meta.url).pathname;
const shots = process.env.KEYSEAL_SCREENSHOTS ?? join(process.cwd(), 'screenshots');
const ref = vectors('licenses.json').find((c) => c.name === 'valid_reference');

let server;
let browser;
let page;
const problems = [];

before(async () => {
  mkdirSync(shots, { recursive: true });
  const { serve } = await import(pathToFileURL(join(demoDir, 'serve.mjs')).href);
  server = await serve(process.cwd());
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  page = await browser.newPage({ viewport: { width: 1000, height: 900 } });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => m.type() === 'error' && problems.push(`console: ${m.text()}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()}`));
  page.on('response', (r) => r.status() >= 400 && problems.push(`HTTP ${r.status()}: ${r.url()}`));
  await page.goto(server.url);
  await page.waitForSelector('#check:not([disabled])', { timeout: 15_000 });
});

after(async () => {
  await browser?.close();
  server?.close();
});

test('the import map points at the browser entry of the exports map', () => {
  const require = createRequire(join(process.cwd(), 'package.json'));
  const pkg = JSON.parse(readFileSync(require.resolve('keyseal/package.json'), 'utf8'));
  const html = readFileSync(join(demoDir, 'index.html'), 'utf8');
  const map = JSON.parse(html.match(/<script type="importmap">(.*?)<\/script>/s)[1]);
  assert.equal(map.imports.keyseal, `./node_modules/keyseal/${pkg.exports['.'].default.replace(/^\.\//, '')}`);
});

/** Fills the form as a person would paste it, checks, and returns what the page shows. */
async function check(key) {
  await page.fill('#keyring', ref.keyring);
  await page.fill('#product', ref.product);
  await page.fill('#app-version', ref.app_version);
  await page.fill('#device', ref.device);
  // The vectors' time, 1800000000 = 2027-01-15T08:00:00Z, so the test does not age.
  await page.fill('#as-of', '2027-01-15T08:00:00');
  await page.fill('#key', key);
  await page.click('#check');
  await page.waitForSelector('#result:not([hidden])');
  const cell = (field) => page.locator(`#claims tr[data-field="${field}"] td`).textContent();
  return {
    verdict: await page.textContent('#verdict'),
    className: await page.getAttribute('#verdict', 'class'),
    message: await page.textContent('#message'),
    detail: await page.textContent('#detail'),
    claimsShown: await page.isVisible('#claims'),
    cell,
  };
}

test('a valid key: the verdict and the claims', async () => {
  const shown = await check(ref.key);
  assert.equal(shown.verdict, 'Valid: pro license for cus_8f3a2b');
  assert.equal(shown.className, 'valid');
  assert.ok(shown.claimsShown);
  assert.equal(await shown.cell('customer'), 'cus_8f3a2b');
  assert.equal(await shown.cell('license-id'), ref.expect.claims.license_id);
  assert.equal(await shown.cell('entitlements'), 'cloud-sync, export-pdf, plugins');
  assert.equal(await shown.cell('max-version'), '5.x');
  assert.equal(await shown.cell('device-binding'), 'exact');
  assert.equal(await shown.cell('expires'), '2027-11-18T11:06:40Z (1826536000)');
  await page.screenshot({ path: join(shots, 'demo-valid.png'), fullPage: true });
});

test('a tampered key: refused, with the customer message', async () => {
  // One character of the signature changed, as a copy-paste accident or a forger would.
  const i = ref.key.length - 20;
  const tampered = ref.key.slice(0, i) + (ref.key[i] === 'A' ? 'B' : 'A') + ref.key.slice(i + 1);
  const shown = await check(tampered);
  assert.equal(shown.verdict, 'Refused: bad_signature');
  assert.equal(shown.className, 'refused');
  assert.match(shown.message, /^This license key is not genuine or was altered\./);
  assert.equal(shown.detail, 'license rejected: invalid signature');
  assert.equal(shown.claimsShown, false);
  await page.screenshot({ path: join(shots, 'demo-tampered.png'), fullPage: true });
});

test('no errors in the page', () => {
  assert.deepEqual(problems, []);
});
