// Every case of testdata/vectors/ through the packed package, compared with
// `expect` exactly as sdk-rust/tests/vectors.rs does, so the JavaScript SDK
// gives the Rust SDK's answers.
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { test } from 'node:test';
import { KeysealError, Validator } from 'keyseal';
import { codeOf, memoryStore, stateText, unhex, vectors } from './common.mjs';

/** The shape of `expect` in licenses.json, from a License object. */
function licenseJson(l) {
  return {
    valid: true,
    status: l.status,
    grace_ends: l.graceEnds,
    claims: {
      license_id: l.licenseId,
      product: l.product,
      customer: l.customer,
      plan: l.plan,
      issued_at: l.issuedAt,
      not_before: l.notBefore,
      expires_at: l.expiresAt,
      grace_secs: l.graceSecs,
      device: l.device,
      entitlements: l.entitlements,
      max_version: l.maxVersion,
      extensions: l.extensions,
    },
  };
}

function runLicenseCase(c, key = c.key, precompute = true) {
  return codeOf(() => {
    const validator = new Validator({
      precompute,
      keyring: c.keyring,
      product: c.product,
      clock: () => c.now * 1000,
      leeway: c.leeway,
      appVersion: c.app_version ?? undefined,
      device: c.device ?? undefined,
      revocationList: c.revocation_list_hex ? unhex(c.revocation_list_hex) : undefined,
    });
    const license = validator.validate(key);
    // A fixed clock at `now`, fresh state, fresh lists: nothing to warn about.
    assert.deepEqual(license.warnings, [], 'unexpected warnings');
    return licenseJson(license);
  });
}

test('licenses.json through the validator', async (t) => {
  const cases = vectors('licenses.json');
  assert.ok(cases.length >= 30, `too few cases: ${cases.length}`);
  for (const c of cases) {
    await t.test(c.name, () => assert.deepEqual(runLicenseCase(c), c.expect));
  }
});

test('licenses.json without precomputed tables gives the same verdicts', () => {
  for (const c of vectors('licenses.json')) {
    assert.deepEqual(runLicenseCase(c, c.key, false), c.expect, c.name);
  }
});

test('licenses.json with mail-client line breaks gives the same verdicts', () => {
  let checked = 0;
  for (const c of vectors('licenses.json')) {
    if (c.key.includes('-----BEGIN') || c.key.length < 120) continue;
    const wrapped = c.key.match(/.{1,60}/g).join('\r\n  ');
    assert.deepEqual(runLicenseCase(c, `\n${wrapped}\n`), c.expect, c.name);
    checked += 1;
  }
  assert.ok(checked >= 25, `only ${checked} cases wrapped`);
});

test('revocation_lists.json through loadRevocationList', async (t) => {
  const cases = vectors('revocation_lists.json');
  assert.ok(cases.length >= 10);
  for (const c of cases) {
    await t.test(c.name, () => {
      // The vectors' rule: refuse a list that does not supersede
      // (`seen_rank`, `seen_sequence`) (kept in the state, as
      // sdk-rust/tests/vectors.rs does) or is stale at `now`.
      const store = memoryStore(
        stateText('acme-cad', { list: { rank: c.seen_rank, sequence: c.seen_sequence, nextUpdate: 0 } }),
      );
      const got = codeOf(() => {
        const validator = new Validator({
          keyring: c.keyring,
          product: 'acme-cad',
          clock: () => c.now * 1000,
          state: store,
          staleness: { refuseAfterDays: 0 },
          mode: 'enforce',
        });
        const list = validator.loadRevocationList(unhex(c.list_hex));
        assert.deepEqual(validator.revocationList, list, 'the loaded list is in force');
        // The sequence is persisted at once, so a restart cannot roll it back.
        assert.match(store.value, new RegExp(`^list \\d+ ${list.sequence} ${list.nextUpdate}$`, 'm'));
        return {
          valid: true,
          sequence: list.sequence,
          issued_at: list.issuedAt,
          next_update: list.nextUpdate,
          revoked_licenses: list.revokedLicenses,
          revoked_keys: list.revokedKeys,
        };
      });
      assert.deepEqual(got, c.expect);
    });
  }
});

test('trust.json: each scenario against one validator whose state survives a restart', async (t) => {
  const scenarios = vectors('trust.json');
  assert.ok(scenarios.length >= 10);
  for (const sc of scenarios) {
    await t.test(sc.name, () => {
      let now = 0;
      const store = memoryStore();
      const build = () =>
        new Validator({ keyring: sc.keyring, product: sc.product, clock: () => now * 1000, state: store, mode: 'enforce' });
      let validator = build();
      sc.steps.forEach((step, i) => {
        if (step.action === 'restart') {
          validator = build();
          return;
        }
        now = step.now;
        const got = codeOf(() => {
          if (step.action === 'load_list') {
            return { ok: true, sequence: validator.loadRevocationList(step.list).sequence };
          }
          const l = validator.validate(step.key);
          return { ok: true, status: l.status, warnings: l.warnings.map((w) => w.code) };
        });
        const want = step.expect.ok ? step.expect : { valid: false, error: step.expect.error };
        assert.deepEqual(got, want, `step ${i}`);
      });
    });
  }
});

test('issue.json: each expected key validates to the claims it was issued from', async (t) => {
  const cases = vectors('issue.json');
  assert.ok(cases.length >= 2);
  for (const c of cases) {
    await t.test(c.name, () => {
      // The package is verify-only: derive the public key from the seed
      // with node:crypto and check what the issued key says.
      const seed = Buffer.from(c.seed_hex, 'hex');
      const privateKey = createPrivateKey({
        key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]),
        format: 'der',
        type: 'pkcs8',
      });
      const x = createPublicKey(privateKey).export({ format: 'jwk' }).x;
      assert.equal(c.expect_key.length, c.expect_len);
      const validator = new Validator({
        keyring: `key kspub1.${x}\n`,
        product: c.claims.product,
        clock: () => c.claims.issued_at * 1000,
        device: c.device ?? undefined,
      });
      const l = validator.validate(c.expect_key);
      const claims = licenseJson(l).claims;
      assert.deepEqual(claims, { ...c.claims, device: c.device_rule ? { kind: c.device_rule } : null });
      assert.equal(l.status, 'active');
    });
  }
});

/**
 * sdk-rust's lease_vectors_through_the_validator: the license as in
 * licenses.json (no app version), then its lease on the case's device.
 */
function runLeaseCase(c, precompute) {
  const validator = new Validator({
    precompute,
    keyring: c.keyring,
    product: c.product,
    clock: () => c.now * 1000,
    leeway: c.leeway,
    device: c.device ?? undefined,
    revocationList: c.revocation_list_hex ? unhex(c.revocation_list_hex) : undefined,
  });
  let l;
  try {
    l = validator.validateWithLease(c.key, c.lease);
  } catch (e) {
    if (!(e instanceof KeysealError)) throw e;
    assert.equal(e.fault === null, e.code !== 'lease_invalid', 'a fault exactly for lease_invalid');
    return { valid: false, error: e.code, fault: e.fault };
  }
  // A fixed clock at `now`, fresh state, fresh lists: nothing to warn about.
  assert.deepEqual(l.warnings, [], 'unexpected warnings');
  assert.match(l.lease.keyId, /^[0-9a-f]{16}$/);
  return {
    valid: true,
    license_id: l.licenseId,
    status: l.status,
    lease: {
      seat_id: l.lease.seatId,
      issued_at: l.lease.issuedAt,
      renew_at: l.lease.renewAt,
      expires_at: l.lease.expiresAt,
      check_in_due: l.lease.checkInDue,
    },
  };
}

test('leases.json through validateWithLease', async (t) => {
  const cases = vectors('leases.json');
  assert.ok(cases.length >= 20, `too few cases: ${cases.length}`);
  for (const c of cases) {
    await t.test(c.name, () => {
      assert.deepEqual(runLeaseCase(c, true), c.expect);
      assert.deepEqual(runLeaseCase(c, false), c.expect, 'without precomputed tables');
    });
  }
});

test('a refusal is a KeysealError', () => {
  const c = vectors('licenses.json').find((v) => v.name === 'bad_signature_tampered_plan');
  const validator = new Validator({ keyring: c.keyring, product: c.product, clock: () => c.now * 1000 });
  assert.throws(() => validator.validate(c.key), (e) => e instanceof KeysealError && e.code === 'bad_signature');
});
