// The packed package in apps built by the bundlers users have, with no
// bundler configuration: Vite and webpack 5 from the `keyseal` entry (its
// top-level await and `new URL('….wasm', import.meta.url)`), esbuild from
// `keyseal/web` (init() with the .wasm's URL from its file loader, in an
// IIFE for ES2017: no top-level await); and Vite's dev server, with no
// configuration, and with the one setting sdk-wasm/README.md gives for
// Vites before 8 (which must do no harm in 8). Each app validates the
// reference vector and a tampered copy in headless Chromium; the page must
// show both verdicts, with no failed request and no error.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { extname, join, normalize } from 'node:path';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';
import { createServer as viteDevServer } from 'vite';
import { vectors } from '../common.mjs';

const ref = vectors('licenses.json').find((c) => c.name === 'valid_reference');
const i = ref.key.length - 20;
const tampered = ref.key.slice(0, i) + (ref.key[i] === 'A' ? 'B' : 'A') + ref.key.slice(i + 1);
const EXPECTED = 'valid: pro for cus_8f3a2b; tampered: bad_signature';
const apps = join(process.cwd(), 'bundled');

/** The app's code after its imports: validates both keys, shows the verdicts. */
const APP = `
const c = ${JSON.stringify({ keyring: ref.keyring, product: ref.product, appVersion: ref.app_version, device: ref.device, now: ref.now, key: ref.key, tampered })};
function verdict(validator, key) {
  try {
    const l = validator.validate(key);
    return 'valid: ' + l.plan + ' for ' + l.customer;
  } catch (e) {
    if (!(e instanceof KeysealError)) throw e;
    return e.code;
  }
}
function run() {
  const v = new Validator({ keyring: c.keyring, product: c.product, appVersion: c.appVersion, device: c.device, clock: () => c.now * 1000 });
  document.getElementById('verdict').textContent = verdict(v, c.key) + '; tampered: ' + verdict(v, c.tampered);
  v.free();
}
`;

const page = (script) =>
  `<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>keyseal</title></head><body><p id="verdict"></p>${script}</body></html>`;

/** Writes an app's files under bundled/NAME. */
function app(name, files) {
  const dir = join(apps, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  for (const [file, text] of Object.entries(files)) writeFileSync(join(dir, file), text);
  return dir;
}

/** Runs a bundler installed in the scratch project (no download). */
function npx(dir, ...args) {
  execFileSync('npx', ['--no-install', ...args], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
}

const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm' };

/** Serves a directory at the root of a loopback origin of its own (as an app is deployed). */
async function serve(dir) {
  const server = createServer(async (req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url, 'http://x').pathname));
    try {
      if (path.includes('..')) throw new Error('no');
      const file = join(dir, path === '/' ? 'index.html' : path);
      const body = await readFile(file);
      res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' });
      res.end(body);
    } catch {
      res.writeHead(404).end('not found');
    }
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  return server;
}

const servers = {};
let browser;

before(async () => {
  const vite = app('vite', {
    'index.html': page('<script type="module" src="./main.js"></script>'),
    'main.js': `import { KeysealError, Validator } from 'keyseal';\n${APP}\nrun();\n`,
  });
  npx(vite, 'vite', 'build', '--logLevel', 'error', '--outDir', 'dist');

  const webpack = app('webpack', {
    'main.js': `import { KeysealError, Validator } from 'keyseal';\n${APP}\nrun();\n`,
  });
  npx(webpack, 'webpack', '--mode', 'production', '--entry', './main.js', '--output-path', './dist', '--no-stats');
  writeFileSync(join(webpack, 'dist', 'index.html'), page('<script src="./main.js"></script>'));

  const esbuild = app('esbuild', {
    'main.js':
      `import { KeysealError, Validator, init } from 'keyseal/web';\n` +
      `import wasm from 'keyseal/wasm/keyseal_wasm_bg.wasm';\n${APP}\ninit(wasm).then(run);\n`,
  });
  npx(esbuild, 'esbuild', 'main.js', '--bundle', '--format=iife', '--target=es2017', '--loader:.wasm=file',
    '--log-level=error', '--outdir=dist');
  writeFileSync(join(esbuild, 'dist', 'index.html'), page('<script src="./main.js"></script>'));

  for (const name of ['vite', 'webpack', 'esbuild']) servers[name] = await serve(join(apps, name, 'dist'));

  // Vite's dev server serves the sources, pre-bundling dependencies (but
  // those excluded) on the first request.
  for (const [name, config] of [
    ['vite-dev', 'export default {};\n'],
    ['vite-dev-exclude', `export default { optimizeDeps: { exclude: ['keyseal'] } };\n`],
  ]) {
    const root = app(name, {
      'index.html': page('<script type="module" src="./main.js"></script>'),
      'main.js': `import { KeysealError, Validator } from 'keyseal';\n${APP}\nrun();\n`,
      'vite.config.js': config,
    });
    // Each with a cache of its own (by default they would share the
    // scratch project's node_modules/.vite).
    const server = await viteDevServer({
      root,
      cacheDir: join(root, '.vite'),
      logLevel: 'error',
      server: { host: '127.0.0.1', port: 0 },
    });
    await server.listen();
    servers[name] = { address: () => server.httpServer.address(), close: () => server.close() };
  }
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
});

after(async () => {
  await browser?.close();
  await Promise.all(Object.values(servers).map((s) => s.close()));
});

/** Opens app NAME as served in Chromium; what the page shows. */
async function verdictOf(name) {
  const p = await browser.newPage();
  const problems = [];
  p.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  p.on('console', (m) => m.type() === 'error' && problems.push(`console: ${m.text()}`));
  p.on('requestfailed', (r) => problems.push(`request failed: ${r.url()}`));
  p.on('response', (r) => r.status() >= 400 && problems.push(`HTTP ${r.status()}: ${r.url()}`));
  await p.goto(`http://127.0.0.1:${servers[name].address().port}/`);
  try {
    await p.waitForFunction(() => document.getElementById('verdict').textContent !== '', null, { timeout: 15_000 });
  } catch {
    assert.fail(`${name}: the page showed no verdict; ${problems.join('; ')}`);
  }
  const shown = await p.textContent('#verdict');
  await p.close();
  assert.deepEqual(problems, [], name);
  return shown;
}

test('Vite, no configuration: the keyseal entry, its .wasm shipped as an asset', async () => {
  assert.equal(await verdictOf('vite'), EXPECTED);
});

test("Vite's dev server, no configuration", async () => {
  assert.equal(await verdictOf('vite-dev'), EXPECTED);
});

test("Vite's dev server with optimizeDeps.exclude: ['keyseal'] (what Vite 7 and older need)", async () => {
  assert.equal(await verdictOf('vite-dev-exclude'), EXPECTED);
});

test('webpack 5, no configuration: the keyseal entry, its .wasm shipped as an asset', async () => {
  assert.equal(await verdictOf('webpack'), EXPECTED);
});

test('esbuild, an ES2017 IIFE: keyseal/web with the .wasm from its file loader', async () => {
  assert.equal(await verdictOf('esbuild'), EXPECTED);
  // No top-level await survived into the bundle.
  assert.doesNotMatch(readFileSync(join(apps, 'esbuild', 'dist', 'main.js'), 'utf8'), /^await /m);
});
