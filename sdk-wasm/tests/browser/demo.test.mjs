// The demo page in a real browser: Debian's Chromium, headless, driven by
// playwright-core. Pastes a valid key and a tampered one, checks what the
// page shows, and saves screenshots (KEYSEAL_SCREENSHOTS, outside the repo);
// then loads `keyseal/seats` in the same page.
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
async function check(key, c = ref, lease = '') {
  await page.fill('#keyring', c.keyring);
  await page.fill('#product', c.product);
  await page.fill('#app-version', c.app_version ?? '');
  await page.fill('#device', c.device);
  // The vectors' time, 1800000000 = 2027-01-15T08:00:00Z, so the test does not age.
  await page.fill('#as-of', '2027-01-15T08:00:00');
  await page.fill('#key', key);
  await page.fill('#lease', lease);
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

test('a key with its lease: the seat and when to check in; a lease for another device refused', async () => {
  const c = vectors('leases.json').find((x) => x.name === 'lease_active');
  assert.equal(c.now, 1800000000);
  const shown = await check(c.key, c, c.lease);
  assert.equal(shown.className, 'valid', shown.detail);
  assert.match(shown.message, /This device holds a seat\.$/);
  assert.equal(await shown.cell('seat'), c.expect.lease.seat_id);
  assert.equal(await shown.cell('check-in-by'), '2027-01-15T09:00:00Z (1800003600)');
  assert.equal(await shown.cell('lease-ends'), '2027-01-15T10:00:00Z (1800007200)');
  await page.screenshot({ path: join(shots, 'demo-lease.png'), fullPage: true });
  const other = vectors('leases.json').find((x) => x.name === 'lease_wrong_device');
  const refused = await check(other.key, other, other.lease);
  assert.equal(refused.className, 'refused');
  assert.equal(refused.verdict, `Refused: ${other.expect.error}`);
  assert.equal(refused.claimsShown, false);
});

test('no errors in the page', () => {
  assert.deepEqual(problems, []);
});

test('keyseal/seats in the browser: its own .wasm, Web Crypto keys, fetch', async () => {
  const c = vectors('leases.json').find((x) => x.name === 'lease_active');
  const sent = [];
  // The licensing service, answered by the browser's network layer: busy.
  await page.route('**/v1/public/leases', (route) => {
    const r = route.request();
    sent.push({ method: r.method(), type: r.headers()['content-type'], body: JSON.parse(r.postData()) });
    return route.fulfill({
      status: 429,
      contentType: 'application/problem+json',
      body: JSON.stringify({ type: 'urn:keyseal:problem:rate-limited', detail: 'slow down' }),
    });
  });
  const shown = await page.evaluate(async (c) => {
    const seats = await import(new URL('/node_modules/keyseal/seats-browser.js', location.href).href);
    const main = await import(new URL('/node_modules/keyseal/browser.js', location.href).href);
    const fail = (promise) => promise.then(() => null, (e) => e);
    // Two requests, two installation keys from crypto.getRandomValues.
    const codes = [new seats.OfflineRequest(c.key, c.device).code, new seats.OfflineRequest(c.key, c.device).code];
    const busy = await fail(new seats.SeatClient(location.origin).activate(c.key, c.device));
    const injected = await fail(
      new seats.SeatClient('https://licensing.example.com', {
        transport: async () => new Response(JSON.stringify({ type: 'urn:keyseal:problem:seat-limit' }), { status: 409 }),
      }).activate(c.key, c.device),
    );
    const validator = new seats.Validator({ keyring: c.keyring, product: c.product, device: c.device, clock: () => c.now * 1000 });
    return {
      codes,
      busy: [busy instanceof seats.SeatError, busy.code, busy.isTransient, busy.status, busy.message],
      injected: [injected.name, injected.code, injected.isTransient],
      sameErrorClass: seats.KeysealError === main.KeysealError,
      seatId: validator.validateWithLease(c.key, c.lease).lease.seatId,
    };
  }, c);
  await page.unroute('**/v1/public/leases');
  assert.match(shown.codes[0], /^KSREQ1\./);
  assert.notEqual(shown.codes[0], shown.codes[1], 'a new installation key each time');
  assert.deepEqual(shown.busy, [true, 'rate_limited', true, 429, 'the licensing service refused (rate_limited): slow down']);
  assert.deepEqual(shown.injected, ['SeatError', 'seat_limit', true]);
  assert.equal(shown.sameErrorClass, true);
  assert.equal(shown.seatId, c.expect.lease.seat_id);
  assert.equal(sent.length, 1);
  assert.deepEqual([sent[0].method, sent[0].type, sent[0].body.fingerprint], ['POST', 'application/json', c.device]);
  // The only problem the page saw is the service's 429 (and the console's note of it).
  const expected = (p) => p.endsWith('/v1/public/leases') || p.includes('responded with a status of 429');
  assert.deepEqual(problems.filter((p) => !expected(p)), []);
});
