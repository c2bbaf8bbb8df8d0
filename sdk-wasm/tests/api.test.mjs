// The JavaScript surface: options, errors, clock and state adapters,
// revocation lists, advisory mode, device fingerprints.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { CODES, KeysealError, Validator, deviceFingerprint, localStorageState } from 'keyseal';
import { fileState } from 'keyseal/node';
import { memoryStore, stateText, unhex, vectors } from './common.mjs';

const cases = Object.fromEntries(vectors('licenses.json').map((c) => [c.name, c]));
const perpetual = cases.valid_perpetual_minimal;
const NOW = perpetual.now;
const HOUR = 3600;

/** A validator for the vectors' keyring and product at `now` (seconds). */
const validatorAt = (now, options = {}) =>
  new Validator({ keyring: perpetual.keyring, product: 'acme-cad', clock: () => now * 1000, ...options });

/** Asserts `fn` throws a KeysealError with `code`; returns it. */
function throwsCode(fn, code) {
  let error;
  assert.throws(fn, (e) => {
    error = e;
    return true;
  });
  assert.ok(error instanceof KeysealError, `not a KeysealError: ${error}`);
  assert.equal(error.code, code, error.message);
  return error;
}

test('a refusal is a real Error with a stable code and a customer message', () => {
  const e = throwsCode(() => validatorAt(NOW).validate(cases.bad_signature_tampered_plan.key), 'bad_signature');
  assert.ok(e instanceof Error);
  assert.equal(e.name, 'KeysealError');
  assert.equal(e.message, 'license rejected: invalid signature');
  assert.match(e.customerMessage, /^This license key is not genuine or was altered\..*\.$/);
  assert.deepEqual(e.warnings, []);
  assert.match(e.stack, /KeysealError/);
  assert.equal(Object.prototype.toString.call(e), '[object Error]');
});

test('CODES lists every code once, in the Rust SDK order', () => {
  assert.equal(CODES.length, 26);
  assert.equal(new Set(CODES).size, CODES.length);
  assert.ok(Object.isFrozen(CODES));
  assert.deepEqual(CODES.slice(0, 4), ['malformed', 'unsupported_version', 'unknown_key', 'bad_signature']);
  assert.equal(CODES.at(-1), 'invalid_config');
  for (const c of vectors('licenses.json')) if (!c.expect.valid) assert.ok(CODES.includes(c.expect.error), c.expect.error);
  for (const c of vectors('leases.json')) if (!c.expect.valid) assert.ok(CODES.includes(c.expect.error), c.expect.error);
  assert.deepEqual(CODES.slice(16, 18), ['lease_invalid', 'lease_expired']);
});

test('the license is a plain object with the claims and the verdict', () => {
  const c = cases.valid_with_not_before_grace_and_extensions;
  const l = validatorAt(c.now, { appVersion: '5.2.0' }).validate(c.key);
  assert.equal(Object.getPrototypeOf(l), Object.prototype);
  assert.deepEqual(JSON.parse(JSON.stringify(l)), l, 'survives JSON');
  assert.equal(typeof l.issuedAt, 'number');
  assert.equal(l.status, 'active');
  assert.match(l.keyId, /^[0-9a-f]{16}$/);
  assert.match(l.licenseId, /^[0-9a-f]{32}$/);
  assert.ok(Object.keys(l.extensions).length > 0);
  assert.deepEqual(l.warnings, []);
});

test('bad options are invalid_config errors naming the problem', () => {
  const base = { keyring: perpetual.keyring, product: 'acme-cad' };
  const bad = [
    [undefined, /options object/],
    [{ product: 'acme-cad' }, /`keyring`/],
    [{ keyring: perpetual.keyring }, /`product`/],
    [{ ...base, appversion: '5.2.0' }, /unknown option `appversion`/],
    [{ ...base, mode: 'strict' }, /`mode`/],
    [{ ...base, leeway: -1 }, /`leeway`/],
    [{ ...base, leeway: 1.5 }, /`leeway`/],
    [{ ...base, precompute: 'yes' }, /`precompute`/],
    [{ ...base, clockTolerance: '60' }, /`clockTolerance`/],
    [{ ...base, clock: 1_800_000_000_000 }, /`clock`/],
    [{ ...base, state: { get() { return null; } } }, /`state`/],
    [{ ...base, staleness: 'never' }, /`staleness`/],
    [{ ...base, staleness: { refuseAfterDays: -2 } }, /`refuseAfterDays`/],
    [{ ...base, onClockSuspect: 'panic' }, /`onClockSuspect`/],
    [{ ...base, revocationList: [1, 2, 3] }, /`revocationList`/],
    [{ ...base, product: 'Not A Product!' }, /product id/],
  ];
  for (const [options, message] of bad) {
    const e = throwsCode(() => new Validator(options), 'invalid_config');
    assert.match(e.message, message);
    assert.match(e.customerMessage, /not set up correctly/);
  }
  throwsCode(() => validatorAt(NOW).validate(42), 'invalid_config');
  // What sdk-rust parses is refused as sdk-rust refuses it.
  throwsCode(() => new Validator({ ...base, keyring: 'key nonsense' }), 'malformed');
  throwsCode(() => new Validator({ ...base, appVersion: 'five' }), 'malformed');
  throwsCode(() => new Validator({ ...base, device: 'ksfp1.!!' }), 'malformed');
});

test('the clock: milliseconds or a Date; Date.now by default', () => {
  const c = cases.expired;
  // `expired` expired before NOW (with leeway 300 it is still expired).
  throwsCode(() => validatorAt(c.now, { appVersion: '5.2.0' }).validate(c.key), 'expired');
  const early = new Validator({ keyring: c.keyring, product: 'acme-cad', clock: () => new Date(1_796_000_000_000) });
  assert.equal(early.validate(c.key).status, 'active');
  // The default clock (today) accepts a perpetual license issued in the past.
  const today = new Validator({ keyring: perpetual.keyring, product: 'acme-cad' });
  assert.equal(today.validate(perpetual.key).expiresAt, null);
});

test('advisory mode accepts a verified license and leads with the problem', () => {
  const c = cases.expired_after_grace;
  const l = validatorAt(c.now, { mode: 'advisory' }).validate(c.key);
  assert.equal(l.status, 'expired');
  assert.equal(l.warnings[0].code, 'expired');
  assert.match(l.warnings[0].customerMessage, /expired on/);
  // A signature that does not verify is refused even so.
  throwsCode(() => validatorAt(NOW, { mode: 'advisory' }).validate(cases.bad_signature_tampered_plan.key), 'bad_signature');
});

test('the clock-rollback guard keeps its state in any { get, set } object', () => {
  const store = memoryStore();
  validatorAt(NOW, { state: store }).validate(perpetual.key);
  assert.ok(store.writes >= 1);
  assert.match(store.value, /^keyseal-state 2\nproduct acme-cad\nseen 1800000000\n/);
  // The format is the documented one (checksum recomputed independently).
  const [, signed] = store.value.match(/^signed (\d+)$/m);
  assert.equal(store.value, stateText('acme-cad', { seen: NOW, signed: Number(signed) }));

  // Two hours back: still licensed, with a warning; or refused if asked.
  const back = validatorAt(NOW - 2 * HOUR, { state: store });
  const l = back.validate(perpetual.key);
  assert.deepEqual(l.warnings.map((w) => w.code), ['clock_suspect']);
  assert.match(l.warnings[0].customerMessage, /about 2 hours/);
  const e = throwsCode(
    () => validatorAt(NOW - 2 * HOUR, { state: store, onClockSuspect: 'refuse' }).validate(perpetual.key),
    'clock_suspect',
  );
  assert.deepEqual(e.warnings, []);
  // Within the tolerance, no warning.
  assert.deepEqual(validatorAt(NOW - 60, { state: store }).validate(perpetual.key).warnings, []);
  assert.deepEqual(validatorAt(NOW - 2 * HOUR, { state: store, clockTolerance: 3 * HOUR }).validate(perpetual.key).warnings, []);
});

test('a damaged or failing store is a warning, never a crash', () => {
  const corrupt = memoryStore(stateText('acme-cad', { seen: NOW }).replace('seen 1800000000', 'seen 1700000000'));
  const l = validatorAt(NOW, { state: corrupt }).validate(perpetual.key);
  assert.deepEqual(l.warnings.map((w) => w.code), ['state_corrupt']);
  throwsCode(() => validatorAt(NOW, { state: memoryStore('garbage'), onCorruptState: 'refuse' }).validate(perpetual.key), 'state_corrupt');

  const throwing = { get() { throw new Error('disk on fire'); }, set() { throw new Error('disk on fire'); } };
  const w = validatorAt(NOW, { state: throwing }).validate(perpetual.key).warnings;
  assert.deepEqual(w.map((x) => x.code), ['state_unavailable']);
  assert.match(w[0].message, /disk on fire/);
  const wrongType = { get: () => 42, set() {} };
  assert.deepEqual(validatorAt(NOW, { state: wrongType }).validate(perpetual.key).warnings.map((x) => x.code), ['state_unavailable']);
  // Bytes are accepted as well as text.
  const bytes = { get: () => new TextEncoder().encode(stateText('acme-cad', { seen: NOW })), set() {} };
  assert.deepEqual(validatorAt(NOW, { state: bytes }).validate(perpetual.key).warnings, []);
});

test('localStorageState over any Storage', () => {
  const map = new Map();
  const storage = { getItem: (k) => map.get(k) ?? null, setItem: (k, v) => map.set(k, String(v)) };
  validatorAt(NOW, { state: localStorageState('acme-cad.keyseal', storage) }).validate(perpetual.key);
  assert.match(map.get('acme-cad.keyseal'), /^keyseal-state 2\n/);
  const l = validatorAt(NOW - 2 * HOUR, { state: localStorageState('acme-cad.keyseal', storage) }).validate(perpetual.key);
  assert.deepEqual(l.warnings.map((w) => w.code), ['clock_suspect']);
  // No Web Storage (Node, a sandboxed iframe): a warning.
  const none = { getItem() { throw new Error('no storage'); }, setItem() { throw new Error('no storage'); } };
  assert.deepEqual(validatorAt(NOW, { state: localStorageState('k', none) }).validate(perpetual.key).warnings.map((w) => w.code), ['state_unavailable']);
});

test('fileState keeps the state in a file, shared across validators', () => {
  const dir = mkdtempSync(join(tmpdir(), 'keyseal-wasm-'));
  try {
    const path = join(dir, 'nested', 'acme-cad.state');
    assert.equal(fileState(path).get(), null);
    validatorAt(NOW, { state: fileState(path) }).validate(perpetual.key);
    const text = readFileSync(path, 'utf8');
    assert.match(text, /^keyseal-state 2\nproduct acme-cad\nseen 1800000000\n/);
    assert.equal(existsSync(`${path}.tmp`), false);
    const l = validatorAt(NOW - 2 * HOUR, { state: fileState(path) }).validate(perpetual.key);
    assert.deepEqual(l.warnings.map((w) => w.code), ['clock_suspect']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('revocation lists load from bytes and take effect', () => {
  const c = cases.revoked;
  const bytes = unhex(c.revocation_list_hex);
  const v = validatorAt(c.now, { appVersion: '5.2.0' });
  assert.equal(v.revocationList, null);
  assert.equal(v.validate(c.key).status, 'active');
  const list = v.loadRevocationList(bytes);
  assert.ok(list.revokedLicenses.length > 0);
  assert.match(list.signer, /^[0-9a-f]{16}$/);
  throwsCode(() => v.validate(c.key), 'revoked');
  // An ArrayBuffer works too; the same list again is fine.
  assert.deepEqual(v.loadRevocationList(bytes.slice().buffer), list);
  throwsCode(() => v.loadRevocationList(bytes.subarray(0, 10)), 'malformed');
  // Text that is not armor is read as binary: its first byte is the version.
  throwsCode(() => v.loadRevocationList('not a list'), 'unsupported_version');
  throwsCode(() => v.loadRevocationList(42), 'invalid_config');
  // Once seen, a missing list is reported (deleting it does not un-revoke).
  const store = memoryStore();
  validatorAt(c.now, { state: store }).loadRevocationList(bytes);
  const later = validatorAt(c.now, { state: store }).validate(perpetual.key);
  assert.deepEqual(later.warnings.map((w) => w.code), ['revocation_list_missing']);
});

test('deviceFingerprint: app-supplied ids, salted with the product', () => {
  const ids = [{ kind: 'install-id', id: 'c0ffee-1234' }];
  const fp = deviceFingerprint('acme-cad', ids);
  assert.match(fp, /^ksfp1\.[A-Za-z0-9_-]+$/);
  assert.equal(deviceFingerprint('acme-cad', [{ kind: 'install-id', id: ' c0ffee-1234\n' }]), fp, 'trimmed');
  assert.equal(deviceFingerprint('acme-cad', [{ kind: 'install-id', id: new TextEncoder().encode('c0ffee-1234') }]), fp);
  assert.notEqual(deviceFingerprint('acme-viewer', ids), fp);
  throwsCode(() => deviceFingerprint('acme-cad', []), 'device_unavailable');
  throwsCode(() => deviceFingerprint('acme-cad', [{ kind: 'x' }]), 'invalid_config');
  // The code is accepted as a validator's device.
  assert.equal(validatorAt(NOW, { device: fp }).validate(perpetual.key).device, null);
});

test('validator odds and ends', () => {
  const v = validatorAt(NOW, { state: memoryStore() });
  assert.equal(v.product, 'acme-cad');
  v.saveState();
  v.resetClockMark();
  v.free();
  assert.throws(() => v.validate(perpetual.key));
});

const leases = Object.fromEntries(vectors('leases.json').map((c) => [c.name, c]));

/** A validator for a leases.json case, at its `now` and on its device. */
const leaseValidator = (c, options = {}) =>
  new Validator({ keyring: c.keyring, product: c.product, device: c.device ?? undefined, clock: () => c.now * 1000, ...options });

test('a license validated with a lease carries it; without one, lease is null', () => {
  const c = leases.lease_in_check_in_grace;
  const v = leaseValidator(c);
  assert.equal(v.validate(c.key).lease, null);
  const l = v.validateWithLease(c.key, c.lease);
  assert.equal(Object.getPrototypeOf(l.lease), Object.prototype);
  assert.deepEqual(JSON.parse(JSON.stringify(l)), l, 'survives JSON');
  assert.deepEqual(Object.keys(l.lease), ['seatId', 'keyId', 'issuedAt', 'renewAt', 'expiresAt', 'checkInDue']);
  assert.match(l.lease.seatId, /^[0-9a-f]{32}$/);
  assert.equal(l.lease.checkInDue, true);
  // Whitespace a mail client adds to the lease is tolerated, as for keys.
  assert.deepEqual(v.validateWithLease(c.key, `\n  ${c.lease}\r\n`).lease, l.lease);
});

test('lease_invalid errors carry the fault; others carry fault null', () => {
  const c = leases.lease_wrong_device;
  const e = throwsCode(() => leaseValidator(c).validateWithLease(c.key, c.lease), 'lease_invalid');
  assert.equal(e.fault, 'wrong_device');
  assert.match(e.customerMessage, /^Your license is fine/);
  const expired = leases.lease_expired;
  assert.equal(throwsCode(() => leaseValidator(expired).validateWithLease(expired.key, expired.lease), 'lease_expired').fault, null);
  assert.equal(throwsCode(() => validatorAt(NOW).validate(cases.bad_signature_tampered_plan.key), 'bad_signature').fault, null);
  assert.equal(new KeysealError('expired', 'm', 'c').fault, null, 'the constructor defaults fault to null');
});

test('advisory mode: a lease for another license is a warning with its fault, and no lease', () => {
  const c = leases.lease_for_another_license;
  const l = leaseValidator(c, { mode: 'advisory' }).validateWithLease(c.key, c.lease);
  assert.equal(l.lease, null);
  assert.deepEqual(l.warnings.map((w) => [w.code, w.fault]), [['lease_invalid', 'other_license']]);
});

test('validateWithLease takes two strings', () => {
  const c = leases.lease_active;
  const v = leaseValidator(c);
  throwsCode(() => v.validateWithLease(c.key), 'invalid_config');
  throwsCode(() => v.validateWithLease(c.key, new Uint8Array(4)), 'invalid_config');
  throwsCode(() => v.validateWithLease(undefined, c.lease), 'invalid_config');
});
