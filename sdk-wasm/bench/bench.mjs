// Node bench of the packed `keyseal` package against its JavaScript peers, in
// one run on one machine:
//   - keyseal: `validator.validate(key)` of the reference key (warm validator:
//     decode, strict Ed25519 verify, device binding, claims checks, clock guard);
//   - jose: `jwtVerify` of an EdDSA JWT carrying the same claims (as
//     benches/src/lib.rs builds them for the Rust peers);
//   - node:crypto: `crypto.verify` (OpenSSL Ed25519) of that JWT's bytes, the
//     raw-signature floor in Node;
//   - keyseal's `verifyEd25519Strict` of the same bytes, the floor in WebAssembly.
//
// Run from a directory where `keyseal` (the packed tarball) and `jose` are installed:
//   KEYSEAL_ROOT=/path/to/repo node bench.mjs            full run (~30 s)
//   KEYSEAL_ROOT=/path/to/repo node bench.mjs --smoke    seconds; figures not meaningful
import { createPrivateKey, createPublicKey, verify as cryptoVerify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { SignJWT, importJWK, jwtVerify } from 'jose';
import { Validator, verifyEd25519Strict } from 'keyseal';

const smoke = process.argv.includes('--smoke');
const root = process.env.KEYSEAL_ROOT ?? new URL('../..', import.meta.url).pathname;
const NOW = 1_800_000_000;

// The reference key: testdata/vectors/licenses.json `valid_reference` (product
// acme-cad, customer cus_8f3a2b, plan pro, issued 1795000000, expires
// 1826536000, exact device binding, three entitlements, max version 5.x).
const cases = JSON.parse(readFileSync(join(root, 'testdata/vectors/licenses.json'), 'utf8')).cases;
const ref = cases.find((c) => c.name === 'valid_reference');
const validator = new Validator({
  keyring: ref.keyring,
  product: ref.product,
  appVersion: ref.app_version,
  device: ref.device,
  clock: () => NOW * 1000,
});

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
const rawPublicKey = Buffer.from(jwk.x, 'base64url');

// Every contender must accept before it is timed.
const license = validator.validate(ref.key);
if (license.customer !== 'cus_8f3a2b' || license.status !== 'active') throw new Error('keyseal refused the reference key');
if ((await jwtVerify(jwt, joseKey, joseOptions)).payload.sub !== 'cus_8f3a2b') throw new Error('jose refused the JWT');
if (!cryptoVerify(null, signingInput, publicKey, signature)) throw new Error('node:crypto refused the JWT bytes');
if (!verifyEd25519Strict(rawPublicKey, signingInput, signature)) throw new Error('verifyEd25519Strict refused the JWT bytes');

const rounds = smoke ? 2 : 9;
const minRoundMs = smoke ? 5 : 300;

// CPU time of the whole process (every thread: WebCrypto runs jose's verify
// on libuv's pool), so other jobs on a shared machine skew figures less than
// with wall time; wall time is reported beside it.
const cpuMicros = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

/** Median microseconds per call (CPU and wall) over `rounds` rounds of at least `minRoundMs`. */
async function measure(fn, isAsync) {
  let iters = 1;
  // Warm up (V8 tiers the wasm up) and size a round.
  for (;;) {
    const t0 = performance.now();
    for (let i = 0; i < iters; i++) (isAsync ? await fn() : fn());
    if (performance.now() - t0 >= minRoundMs / 4) break;
    iters *= 2;
  }
  iters *= 4;
  const cpu = [];
  const wall = [];
  for (let r = 0; r < rounds; r++) {
    const c0 = cpuMicros();
    const t0 = performance.now();
    if (isAsync) for (let i = 0; i < iters; i++) await fn();
    else for (let i = 0; i < iters; i++) fn();
    wall.push(((performance.now() - t0) * 1000) / iters);
    cpu.push((cpuMicros() - c0) / iters);
  }
  const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  return [median(cpu), median(wall)];
}

const rows = [
  ['keyseal validate(reference key)', await measure(() => validator.validate(ref.key), false)],
  ['jose jwtVerify(EdDSA JWT, same claims)', await measure(() => jwtVerify(jwt, joseKey, joseOptions), true)],
  ['node:crypto verify(JWT bytes)', await measure(() => cryptoVerify(null, signingInput, publicKey, signature), false)],
  ['keyseal verifyEd25519Strict(JWT bytes)', await measure(() => verifyEd25519Strict(rawPublicKey, signingInput, signature), false)],
];

const [keyseal, jose, nodeCrypto] = rows.map(([, [cpu]]) => cpu);
if (smoke) console.log('(smoke mode: figures are not meaningful)');
console.log(`node ${process.version}, ${rounds} rounds, median microseconds per call (process CPU time; wall time beside)`);
console.log('| what | CPU µs/call | wall µs/call | CPU vs keyseal validate |');
console.log('|---|---:|---:|---:|');
for (const [what, [cpu, wall]] of rows) {
  console.log(`| ${what} | ${cpu.toFixed(1)} | ${wall.toFixed(1)} | ${(cpu / keyseal).toFixed(2)}x |`);
}
console.log(`jose jwtVerify / keyseal validate: ${(jose / keyseal).toFixed(2)} (target: at least 2)`);
console.log(`keyseal validate / node:crypto verify: ${(keyseal / nodeCrypto).toFixed(2)}`);
