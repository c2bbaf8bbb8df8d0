// The installed package itself: what the exports map resolves to, that the
// TypeScript declarations name exactly what the modules export, and what
// the tarball holds.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { vectors } from './common.mjs';
import * as keyseal from 'keyseal';
import * as keysealNode from 'keyseal/node';
import * as keysealSeats from 'keyseal/seats';

const require = createRequire(import.meta.url);
const pkgDir = dirname(require.resolve('keyseal/package.json'));
const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));

test('the package comes from the tarball in node_modules, not the source tree', () => {
  assert.match(pkgDir, /node_modules[\\/]keyseal$/);
  assert.equal(fileURLToPath(import.meta.resolve('keyseal')), join(pkgDir, 'node.js'));
  assert.equal(fileURLToPath(import.meta.resolve('keyseal/node')), join(pkgDir, 'node-state.js'));
  assert.equal(fileURLToPath(import.meta.resolve('keyseal/seats')), join(pkgDir, 'seats-node.js'));
});

test('one exports map: Node (import and require), browsers (default), keyseal/web, the .wasm files, types', () => {
  const root = pkg.exports['.'];
  const seats = pkg.exports['./seats'];
  // Node first, with require()'s own types (CommonJS's), then types, default last.
  assert.deepEqual(Object.keys(root), ['node', 'types', 'default']);
  assert.deepEqual(root.node, { require: { types: './index.d.cts', default: './node.cjs' }, types: './index.d.ts', default: './node.js' });
  assert.deepEqual(Object.keys(seats), ['types', 'node', 'default'], 'keyseal/seats: ES modules only');
  assert.equal(root.default, './browser.js');
  assert.equal(seats.default, './seats-browser.js');
  assert.deepEqual(Object.keys(pkg.exports['./node']), ['types', 'node'], 'keyseal/node is Node-only');
  assert.deepEqual(pkg.exports['./web'], { types: './web.d.ts', default: './web.js' });
  for (const wasm of ['./wasm/keyseal_wasm_bg.wasm', './wasm/keyseal_seats_bg.wasm']) assert.equal(pkg.exports[wasm], wasm);
  const targets = (t) => (typeof t === 'string' ? [t] : Object.values(t).flatMap(targets));
  for (const target of targets(pkg.exports)) {
    assert.ok(readFileSync(join(pkgDir, target)).length > 0, target);
  }
  assert.equal(pkg.type, 'module');
  assert.equal(pkg.engines.node, '>=18');
});

test("require('keyseal') (CommonJS) on this Node: the same API and answers, the .wasm beside it", () => {
  assert.equal(require.resolve('keyseal'), join(pkgDir, 'node.cjs'));
  const cjs = require('keyseal');
  assert.deepEqual(Object.keys(cjs).sort(), Object.keys(keyseal).sort());
  assert.deepEqual(cjs.CODES, keyseal.CODES);
  // One more instance of the .wasm, from the same file: a key validated
  // through either gives the same claims.
  const c = vectors('licenses.json').find((x) => x.name === 'valid_reference');
  const opts = { keyring: c.keyring, product: c.product, appVersion: c.app_version, device: c.device, clock: () => c.now * 1000 };
  const [a, b] = [new cjs.Validator(opts), new keyseal.Validator(opts)];
  assert.deepEqual(JSON.parse(JSON.stringify(a.validate(c.key))), JSON.parse(JSON.stringify(b.validate(c.key))));
  const bad = c.key.slice(0, -2);
  let code;
  try {
    b.validate(bad);
  } catch (e) {
    code = e.code;
  }
  assert.ok(code, 'the ES module refuses the cut key');
  assert.throws(() => a.validate(bad), (e) => e instanceof cjs.KeysealError && e.code === code);
  a.free();
  b.free();
});

test('keyseal/web in a process of its own: a failed init() rejects, the next loads the .wasm from bytes, once', () => {
  // A fresh process: here `keyseal` has already loaded the .wasm, which
  // keyseal/web shares.
  const c = vectors('licenses.json').find((x) => x.name === 'valid_reference');
  const script = `
    import { readFileSync } from 'node:fs';
    import * as web from 'keyseal/web';
    const c = JSON.parse(process.env.KEYSEAL_CASE);
    let failed = false;
    try {
      await web.init(new Uint8Array([0, 97, 115, 109]));
    } catch {
      failed = true;
    }
    const first = web.init(readFileSync(process.env.KEYSEAL_WASM));
    const once = web.init() === first;
    await first;
    const v = new web.Validator({ keyring: c.keyring, product: c.product, appVersion: c.app_version, device: c.device, clock: () => c.now * 1000 });
    console.log(JSON.stringify({ failed, once, plan: v.validate(c.key).plan, codes: web.CODES.length, exports: Object.keys(web).sort() }));
  `;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
    env: { ...process.env, KEYSEAL_CASE: JSON.stringify(c), KEYSEAL_WASM: join(pkgDir, 'wasm', 'keyseal_wasm_bg.wasm') },
  });
  assert.deepEqual(JSON.parse(out), {
    failed: true,
    once: true,
    plan: c.expect.claims.plan,
    codes: keyseal.CODES.length,
    exports: [...Object.keys(keyseal), 'init'].sort(),
  });
});

test('the tarball holds the package and nothing else', () => {
  const files = [];
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(dir, e.name));
      else files.push(relative(pkgDir, join(dir, e.name)));
    }
  };
  walk(pkgDir);
  assert.deepEqual(files.sort(), [...pkg.files, 'package.json'].sort());
});

/** Names a .d.ts file exports (`export class|function|const NAME`). */
function declared(file) {
  const text = readFileSync(join(pkgDir, file), 'utf8');
  return [...text.matchAll(/^export (?:declare )?(?:class|function|const) (\w+)/gm)].map((m) => m[1]).sort();
}

test('the TypeScript declarations match the runtime exports', () => {
  assert.deepEqual(declared('index.d.ts'), Object.keys(keyseal).sort());
  assert.deepEqual(declared('node-state.d.ts'), Object.keys(keysealNode).sort());
  assert.equal(readFileSync(join(pkgDir, 'index.d.cts'), 'utf8'), readFileSync(join(pkgDir, 'index.d.ts'), 'utf8'));
  assert.match(readFileSync(join(pkgDir, 'web.d.ts'), 'utf8'), /^export \* from '\.\/index\.js';$/m);
  assert.deepEqual(declared('web.d.ts'), ['init']);
  // keyseal/seats: everything keyseal exports (`export * from './index.js'`), and seats.
  assert.match(readFileSync(join(pkgDir, 'seats.d.ts'), 'utf8'), /^export \* from '\.\/index\.js';$/m);
  assert.deepEqual([...declared('index.d.ts'), ...declared('seats.d.ts')].sort(), Object.keys(keysealSeats).sort());
  assert.deepEqual(keysealSeats.CODES, keyseal.CODES);
  const union = readFileSync(join(pkgDir, 'index.d.ts'), 'utf8').match(/export type KeysealCode =([^;]+);/)[1];
  assert.deepEqual([...union.matchAll(/'(\w+)'/g)].map((m) => m[1]), [...keyseal.CODES]);
});
