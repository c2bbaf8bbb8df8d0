// Node bench of the packed `keyseal` package against its JavaScript peers, in
// one run on one machine:
//   - keyseal: `validator.validate(key)` of the reference key (warm validator:
//     decode, strict Ed25519 verify, device binding, claims checks, clock guard);
//   - jose: `jwtVerify` of an EdDSA JWT carrying the same claims (as
//     benches/src/lib.rs builds them for the Rust peers);
//   - node:crypto: `crypto.verify` (OpenSSL Ed25519) of that JWT's bytes, the
//     raw-signature floor in Node;
//   - keyseal again, with `precompute: false` (no verification tables: what a
//     validator that checks one key and is dropped pays per call);
//   - building a validator, tables included (what `precompute` costs once).
//
// Run from a directory where `keyseal` (the packed tarball) and `jose` are installed:
//   KEYSEAL_ROOT=/path/to/repo node bench.mjs            full run (~20 s)
//   KEYSEAL_ROOT=/path/to/repo node bench.mjs --smoke    seconds; figures not meaningful
import { createPrivateKey, createPublicKey, verify as cryptoVerify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { SignJWT, importJWK, jwtVerify } from 'jose';
import { Validator } from 'keyseal';

const smoke = process.argv.includes('--smoke');
const root = process.env.KEYSEAL_ROOT ?? new URL('../..', import.meta.url).pathname;
const NOW = 1_800_000_000;

// The reference key: testdata/vectors/licenses.json `valid_reference` (product
// acme-cad, customer cus_8f3a2b, plan pro, issued 1795000000, expires
// 1826536000, exact device binding, three entitlements, max version 5.x).
const cases = JSON.parse(readFileSync(join(root, 'testdata/vectors/licenses.json'), 'utf8')).cases;
const ref = cases.find((c) => c.name === 'valid_reference');
const options = {
  keyring: ref.keyring,
  product: ref.product,
  appVersion: ref.app_version,
  device: ref.device,
  clock: () => NOW * 1000,
};
const validator = new Validator(options);
const plain = new Validator({ ...options, precompute: false });

// The JWT peer: the same claims as JSON (benches/src/lib.rs `json_claims`),
// signed with an Ed25519 key from a fixed seed.
const seed = Buffer.alloc(32, 42);
const privateKey = createPrivateKey({
  key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]),
  format: 'der',
  type: 'pkcs8',
});
const publicKey = createPublicKey(privateKey);
const jwk = publicKey.export({ format: 'jwk' });
const jwt = await new SignJWT({
  plan: 'pro',
  device: 'q3YpAlbNMJAQ1Hy3IZMtKEnf9GYgLQpZEutqrhAh9bE',
  entitlements: ['cloud-sync', 'export-pdf', 'plugins'],
  max_version: '5.x',
})
  .setProtectedHeader({ alg: 'EdDSA', typ: 'JWT' })
  .setJti('5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a')
  .setAudience('acme-cad')
  .setSubject('cus_8f3a2b')
  .setIssuedAt(1_795_000_000)
  .setExpirationTime(1_826_536_000)
  .sign(privateKey);
const joseKey = await importJWK(jwk, 'EdDSA');
const joseOptions = { algorithms: ['EdDSA'], audience: 'acme-cad', currentDate: new Date(NOW * 1000) };
const dot = jwt.lastIndexOf('.');
const signingInput = Buffer.from(jwt.slice(0, dot));
const signature = Buffer.from(jwt.slice(dot + 1), 'base64url');

// Every contender must accept before it is timed.
const license = validator.validate(ref.key);
if (license.customer !== 'cus_8f3a2b' || license.status !== 'active') throw new Error('keyseal refused the reference key');
if ((await jwtVerify(jwt, joseKey, joseOptions)).payload.sub !== 'cus_8f3a2b') throw new Error('jose refused the JWT');
if (!cryptoVerify(null, signingInput, publicKey, signature)) throw new Error('node:crypto refused the JWT bytes');
if (plain.validate(ref.key).customer !== 'cus_8f3a2b') throw new Error('keyseal (precompute: false) refused the reference key');

const rounds = smoke ? 2 : 21;
const batchMs = smoke ? 5 : 100;

// CPU time of the whole process (every thread: WebCrypto runs jose's verify
// on libuv's pool), so other jobs on a shared machine skew figures less than
// with wall time; wall time is reported beside it.
const cpuMicros = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const contenders = [
  ['keyseal validate(reference key)', () => validator.validate(ref.key), false],
  ['jose jwtVerify(EdDSA JWT, same claims)', () => jwtVerify(jwt, joseKey, joseOptions), true],
  ['node:crypto verify(JWT bytes)', () => cryptoVerify(null, signingInput, publicKey, signature), false],
  ['keyseal validate, precompute: false', () => plain.validate(ref.key), false],
  ['new Validator(...) with its tables (once)', () => new Validator(options).free(), false],
];

/** Runs `fn` `iters` times; microseconds per call, CPU and wall. */
async function batch(fn, isAsync, iters) {
  const c0 = cpuMicros();
  const t0 = performance.now();
  if (isAsync) for (let i = 0; i < iters; i++) await fn();
  else for (let i = 0; i < iters; i++) fn();
  return [(cpuMicros() - c0) / iters, ((performance.now() - t0) * 1000) / iters];
}

// Warm up (V8 tiers the wasm up), then size each contender's batch to about
// `batchMs` of wall time.
for (const [, fn, isAsync] of contenders) await batch(fn, isAsync, smoke ? 2 : 200);
const iters = [];
for (const [, fn, isAsync] of contenders) {
  let n = 1;
  while ((await batch(fn, isAsync, n))[1] * n < batchMs * 1000) n *= 2;
  iters.push(n);
}
// Interleaved: every round times one batch of each contender, so a change in
// the shared machine's speed hits them all alike; ratios are taken within a
// round, then the median over rounds. The order rotates from round to round,
// so work one batch leaves behind (garbage collection, say, which process
// CPU time counts) does not always land on the same neighbour.
const cpu = contenders.map(() => []);
const wall = contenders.map(() => []);
const joseRatio = [];
const cryptoRatio = [];
const plainRatio = [];
for (let r = 0; r < rounds; r++) {
  for (let k = 0; k < contenders.length; k++) {
    const i = (r + k) % contenders.length;
    const [, fn, isAsync] = contenders[i];
    const [c, w] = await batch(fn, isAsync, iters[i]);
    cpu[i].push(c);
    wall[i].push(w);
  }
  joseRatio.push(cpu[1][r] / cpu[0][r]);
  cryptoRatio.push(cpu[0][r] / cpu[2][r]);
  plainRatio.push(cpu[1][r] / cpu[3][r]);
}
const rows = contenders.map(([what], i) => [what, [median(cpu[i]), median(wall[i])]]);

const [keyseal] = rows.map(([, [c]]) => c);
if (smoke) console.log('(smoke mode: figures are not meaningful)');
console.log(`node ${process.version}, ${rounds} interleaved rounds, median microseconds per call (process CPU time; wall time beside)`);
console.log('| what | CPU µs/call | wall µs/call | CPU vs keyseal validate (ratio of medians) |');
console.log('|---|---:|---:|---:|');
for (const [what, [c, w]] of rows) {
  console.log(`| ${what} | ${c.toFixed(1)} | ${w.toFixed(1)} | ${(c / keyseal).toFixed(2)}x |`);
}
const [lo, hi] = [Math.min(...joseRatio), Math.max(...joseRatio)];
console.log(`jose jwtVerify / keyseal validate, median of per-round ratios: ${median(joseRatio).toFixed(2)} (range ${lo.toFixed(2)} to ${hi.toFixed(2)}; target: at least 2)`);
console.log(`keyseal validate / node:crypto verify, median of per-round ratios: ${median(cryptoRatio).toFixed(2)}`);
console.log(`jose jwtVerify / keyseal validate with precompute: false, median of per-round ratios: ${median(plainRatio).toFixed(2)}`);
