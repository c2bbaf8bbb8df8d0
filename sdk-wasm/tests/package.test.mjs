// The installed package itself: what the exports map resolves to, that the
// TypeScript declarations name exactly what the modules export, and what
// the tarball holds.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
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

test('one exports map: Node, browsers (default) and types', () => {
  const root = pkg.exports['.'];
  const seats = pkg.exports['./seats'];
  assert.deepEqual(Object.keys(root), ['types', 'node', 'default'], 'types first, default last');
  assert.deepEqual(Object.keys(seats), ['types', 'node', 'default'], 'keyseal/seats: the same conditions');
  assert.equal(root.default, './browser.js');
  assert.equal(seats.default, './seats-browser.js');
  assert.deepEqual(Object.keys(pkg.exports['./node']), ['types', 'node'], 'keyseal/node is Node-only');
  for (const target of [...Object.values(root), ...Object.values(seats), ...Object.values(pkg.exports['./node'])]) {
    assert.ok(readFileSync(join(pkgDir, target)).length > 0, target);
  }
  assert.equal(pkg.type, 'module');
  assert.equal(pkg.engines.node, '>=18');
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
  // keyseal/seats: everything keyseal exports (`export * from './index.js'`), and seats.
  assert.match(readFileSync(join(pkgDir, 'seats.d.ts'), 'utf8'), /^export \* from '\.\/index\.js';$/m);
  assert.deepEqual([...declared('index.d.ts'), ...declared('seats.d.ts')].sort(), Object.keys(keysealSeats).sort());
  assert.deepEqual(keysealSeats.CODES, keyseal.CODES);
  const union = readFileSync(join(pkgDir, 'index.d.ts'), 'utf8').match(/export type KeysealCode =([^;]+);/)[1];
  assert.deepEqual([...union.matchAll(/'(\w+)'/g)].map((m) => m[1]), [...keyseal.CODES]);
});
