// The third-party Ed25519 suites of testdata/ed25519/ (see its README for the
// expected answers) through verifyEd25519Strict: keyseal-core's
// PublicKey::from_bytes, then strict verification compiled to WebAssembly,
// both through precomputed tables (what validators use for their keyring's
// keys) and plainly (`precompute: false`); the two must agree on every case.
// Mirrors core/tests/ed25519_conformance.rs: every case runs, every mismatch
// is listed, and the case count is checked so a file that loads empty cannot
// pass.
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, sign } from 'node:crypto';
import { test } from 'node:test';
import { verifyEd25519Strict } from 'keyseal';
import { testdata } from './common.mjs';

/** Hex to bytes; a field that is not hex means the vector file is broken. */
function hex(s, what) {
  assert.ok(typeof s === 'string' && /^([0-9a-fA-F]{2})*$/.test(s), `${what} is not hex: ${s}`);
  return new Uint8Array(Buffer.from(s, 'hex'));
}

/** keyseal's verdict by both paths, which must agree. */
function verify(publicKey, message, signature) {
  const tables = verifyEd25519Strict(publicKey, message, signature);
  const plain = verifyEd25519Strict(publicKey, message, signature, { precompute: false });
  assert.equal(tables, plain, `the paths disagree: key ${Buffer.from(publicKey).toString('hex')}, signature ${Buffer.from(signature).toString('hex')}`);
  return tables;
}

const verdict = (accepted) => (accepted ? 'accepted' : 'rejected');

function assertNoMismatches(suite, ran, expected, mismatches) {
  assert.deepEqual(mismatches, [], `${suite}: ${mismatches.length} of ${ran} cases gave the wrong answer`);
  assert.equal(ran, expected, `${suite}: ran ${ran} cases, expected ${expected}`);
}

test('wycheproof: exactly the `result` field', () => {
  const file = testdata('ed25519', 'wycheproof_ed25519_test.json');
  assert.equal(file.numberOfTests, 151, 'the vector file changed: review the expectations');
  let ran = 0;
  const mismatches = [];
  for (const group of file.testGroups) {
    const pk = hex(group.publicKey.pk, 'pk');
    for (const c of group.tests) {
      assert.ok(c.result === 'valid' || c.result === 'invalid', `tcId ${c.tcId}: result ${c.result}`);
      const expected = c.result === 'valid';
      const got = verify(pk, hex(c.msg, 'msg'), hex(c.sig, 'sig'));
      if (got !== expected) {
        mismatches.push(`tcId ${c.tcId} (${c.comment}, flags ${c.flags}): ${verdict(got)}, expected ${verdict(expected)}`);
      }
      ran += 1;
    }
  }
  assertNoMismatches('wycheproof', ran, file.numberOfTests, mismatches);
});

test('speccheck: only case 3 accepted', () => {
  const cases = testdata('ed25519', 'speccheck_cases.json');
  const mismatches = [];
  cases.forEach((c, number) => {
    const expected = number === 3;
    const got = verify(hex(c.pub_key, 'pub_key'), hex(c.message, 'message'), hex(c.signature, 'signature'));
    if (got !== expected) mismatches.push(`case ${number}: ${verdict(got)}, expected ${verdict(expected)}`);
  });
  assertNoMismatches('speccheck', cases.length, 12, mismatches);
});

test('cctv: accepted iff the flags are within {low_order_component_A, low_order_component_R}', () => {
  const tolerated = new Set(['low_order_component_A', 'low_order_component_R']);
  const cases = testdata('ed25519', 'cctv_ed25519vectors.json');
  const mismatches = [];
  for (const c of cases) {
    // `flags` is null for the one plain valid case; `msg` is ASCII text.
    const flags = c.flags ?? [];
    const expected = flags.every((f) => tolerated.has(f));
    const got = verify(hex(c.key, 'key'), new TextEncoder().encode(c.msg), hex(c.sig, 'sig'));
    if (got !== expected) mismatches.push(`case ${c.number} (flags ${flags}): ${verdict(got)}, expected ${verdict(expected)}`);
  }
  assertNoMismatches('cctv', cases.length, 914, mismatches);
});

test('rfc8032 section 7.1: all accepted, and the file is self-consistent', () => {
  const file = testdata('ed25519', 'rfc8032_7.1_ed25519.json');
  const mismatches = [];
  for (const c of file.tests) {
    const pk = hex(c.public_key, 'public_key');
    const message = hex(c.message, 'message');
    const signature = hex(c.signature, 'signature');
    if (c.message_len !== undefined) assert.equal(message.length, c.message_len, `${c.name}: message_len`);
    if (!verify(pk, message, signature)) mismatches.push(`${c.name}: rejected, expected accepted`);
    // The package cannot sign (verify-only); node:crypto checks that the
    // seed gives this key and signature, so the accepted cases are the RFC's.
    const key = createPrivateKey({
      key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), hex(c.secret_key, 'secret_key')]),
      format: 'der',
      type: 'pkcs8',
    });
    if (createPublicKey(key).export({ format: 'jwk' }).x !== Buffer.from(pk).toString('base64url')) {
      mismatches.push(`${c.name}: seed derives another public key`);
    }
    if (!sign(null, message, key).equals(signature)) mismatches.push(`${c.name}: signing does not reproduce the signature`);
  }
  assertNoMismatches('rfc8032', file.tests.length, 5, mismatches);
});

test('wrong lengths are rejected, not thrown', () => {
  const file = testdata('ed25519', 'rfc8032_7.1_ed25519.json');
  const c = file.tests[0];
  const pk = hex(c.public_key, 'pk');
  const msg = hex(c.message, 'msg');
  const sig = hex(c.signature, 'sig');
  assert.equal(verify(pk, msg, sig), true);
  assert.equal(verify(pk.subarray(1), msg, sig), false);
  assert.equal(verify(pk, msg, sig.subarray(1)), false);
  assert.equal(verify(new Uint8Array(0), msg, new Uint8Array(0)), false);
});

test('options other than { precompute: boolean } are invalid_config errors', () => {
  const c = testdata('ed25519', 'rfc8032_7.1_ed25519.json').tests[0];
  const [pk, msg, sig] = [hex(c.public_key, 'pk'), hex(c.message, 'msg'), hex(c.signature, 'sig')];
  assert.equal(verifyEd25519Strict(pk, msg, sig, {}), true);
  assert.equal(verifyEd25519Strict(pk, msg, sig, { precompute: true }), true);
  assert.throws(() => verifyEd25519Strict(pk, msg, sig, { precompute: 'no' }), (e) => e.code === 'invalid_config' && /`precompute`/.test(e.message));
});
