// Seats and trials, from `keyseal/seats`: SeatClient over a transport that
// answers as the licensing service does (the requests checked field by field
// as the Rust SDK sends them, the check-in and release proofs verified here
// with node:crypto), every refusal's code (the trials' too), transient
// failures, the default fetch
// transport against a local HTTP server, saved seats in the Rust SDK's text
// format; the air-gapped round trip with a vendor that signs with
// keyseal-core (examples/test_vendor.rs, which scripts/test.sh builds:
// KEYSEAL_TEST_VENDOR); and, when a keyseal CLI binary is at hand
// (KEYSEAL_CLI), end to end against a real `keyseal serve` (a seat, a trial)
// and `keyseal activate`.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createPrivateKey, createPublicKey, verify } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import * as validateOnly from 'keyseal';
import {
  CODES,
  KeysealError,
  OfflineRequest,
  Seat,
  SeatClient,
  SeatError,
  Validator,
  deviceFingerprint,
} from 'keyseal/seats';
import { vectors } from './common.mjs';

const leases = Object.fromEntries(vectors('leases.json').map((c) => [c.name, c]));
/** The seat the fake service grants: its license key, keyring, device and lease. */
const granted = leases.lease_active;
/** The same seat's lease after a check-in (renewed an hour later). */
const renewed = leases.lease_issued_an_hour_ahead;
const NOW = granted.now;
const SEAT_ID = granted.expect.lease.seat_id;

const CHECK_IN_DOMAIN = Buffer.from('keyseal/lease-check-in/v1\0');
const RELEASE_DOMAIN = Buffer.from('keyseal/lease-release/v1\0');

const problem = (slug, detail = '') => ({ type: `urn:keyseal:problem:${slug}`, title: slug, detail });
const json = (status, body) => new Response(typeof body === 'string' ? body : JSON.stringify(body), { status });

/** An Ed25519 public key as node:crypto reads it, from its `kspub1.` text. */
const publicKey = (text) =>
  createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: text.slice('kspub1.'.length) }, format: 'jwk' });

/** Whether `signature` (hex) is the installation key's proof over DOMAIN || seat id || at (big-endian u64). */
function proves(key, domain, seatId, at, signature) {
  const at8 = Buffer.alloc(8);
  at8.writeBigUInt64BE(BigInt(at));
  const message = Buffer.concat([domain, Buffer.from(seatId, 'hex'), at8]);
  return verify(null, message, key, Buffer.from(signature, 'hex'));
}

/**
 * A transport that answers as `keyseal serve` does for one seat of
 * `granted`'s license, after checking each request: its URL, method,
 * headers, the exact fields of its body, and the proofs (signed by the
 * installation key the activation sent, at times that grow, as the service
 * requires). `requests` records what was sent.
 */
function fakeService() {
  const state = { key: null, lastAt: 0, released: false, requests: [] };
  state.transport = async (url, init) => {
    assert.equal(init.method, 'POST');
    assert.equal(init.headers['Content-Type'], 'application/json');
    assert.ok(init.signal instanceof AbortSignal, 'a timeout signal');
    const body = JSON.parse(init.body);
    const path = new URL(url).pathname;
    state.requests.push({ url, path, body });
    assert.equal(body.license_key, granted.key, 'the key, trimmed');
    if (path === '/v1/public/leases') {
      assert.deepEqual(Object.keys(body).sort(), ['fingerprint', 'license_key', 'public_key']);
      assert.equal(body.fingerprint, granted.device);
      assert.match(body.public_key, /^kspub1\.[A-Za-z0-9_-]{43}$/);
      state.key = publicKey(body.public_key);
      return json(201, { seat_id: SEAT_ID, license_id: granted.expect.license_id, lease: granted.lease });
    }
    assert.ok(state.key, 'activated first');
    assert.equal(body.seat_id, SEAT_ID);
    assert.ok(Number.isInteger(body.at) && body.at > state.lastAt, `at ${body.at} after ${state.lastAt}`);
    state.lastAt = body.at;
    if (path === '/v1/public/leases/check-in') {
      assert.deepEqual(Object.keys(body).sort(), ['at', 'fingerprint', 'license_key', 'seat_id', 'signature']);
      assert.equal(body.fingerprint, granted.device);
      if (!proves(state.key, CHECK_IN_DOMAIN, SEAT_ID, body.at, body.signature)) {
        return json(403, problem('bad-proof', 'the signature does not verify'));
      }
      if (state.released) return json(409, problem('seat-released', 'the seat was released; activate again'));
      return json(200, { seat_id: SEAT_ID, license_id: granted.expect.license_id, lease: renewed.lease });
    }
    assert.equal(path, '/v1/public/leases/release');
    assert.deepEqual(Object.keys(body).sort(), ['at', 'license_key', 'seat_id', 'signature']);
    if (!proves(state.key, RELEASE_DOMAIN, SEAT_ID, body.at, body.signature)) {
      return json(403, problem('bad-proof', 'the signature does not verify'));
    }
    state.released = true;
    return json(200, { seat_id: SEAT_ID, released_at: body.at });
  };
  return state;
}

/** A validator of `granted`'s keyring and product on `device` at NOW. */
const validatorOn = (device) =>
  new Validator({ keyring: granted.keyring, product: granted.product, device, clock: () => NOW * 1000 });

/** The SeatError (or other error) a promise rejects with. */
async function rejection(promise) {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  assert.fail('expected a rejection');
}

test('the vectors the fake service answers with: one seat, renewed', () => {
  for (const name of ['key', 'keyring', 'device', 'product']) assert.equal(renewed[name], granted[name], name);
  assert.equal(renewed.expect.lease.seat_id, SEAT_ID);
  assert.ok(renewed.expect.lease.renew_at > granted.expect.lease.renew_at);
});

test('activate, check in twice and release through an injected transport', async () => {
  const service = fakeService();
  let now = NOW;
  const client = new SeatClient('https://licensing.example.com//', { transport: service.transport, clock: () => now * 1000 });
  assert.equal(client.baseUrl, 'https://licensing.example.com');

  const seat = await client.activate(`  ${granted.key}\n`, granted.device);
  assert.ok(seat instanceof Seat);
  assert.equal(service.requests[0].url, 'https://licensing.example.com/v1/public/leases');
  assert.deepEqual(
    [seat.seatId, seat.lease, seat.renewAt, seat.expiresAt],
    [SEAT_ID, granted.lease, granted.expect.lease.renew_at, granted.expect.lease.expires_at],
  );
  // The lease validates with the key, on this device only.
  const license = validatorOn(granted.device).validateWithLease(granted.key, seat.lease);
  assert.equal(license.lease.seatId, seat.seatId);
  const other = deviceFingerprint(granted.product, [{ kind: 'install-id', id: 'another device' }]);
  assert.throws(() => validatorOn(other).validateWithLease(granted.key, seat.lease), (e) => e.fault === 'wrong_device');

  // Two check-ins in the same second: the second proof is signed a second later.
  await client.checkIn(granted.key, granted.device, seat);
  await client.checkIn(granted.key, granted.device, seat);
  const ats = service.requests.slice(1).map((r) => r.body.at);
  assert.deepEqual(ats, [NOW, NOW + 1]);
  assert.equal(service.requests[1].url, 'https://licensing.example.com/v1/public/leases/check-in');
  assert.deepEqual(
    [seat.lease, seat.renewAt, seat.expiresAt],
    [renewed.lease, renewed.expect.lease.renew_at, renewed.expect.lease.expires_at],
  );
  assert.equal(validatorOn(granted.device).validateWithLease(granted.key, seat.lease).lease.renewAt, seat.renewAt);

  // Saved and read back: the same seat, the same key (the next proof
  // verifies). A saved seat keeps no request time: the app's clock, a
  // minute later, orders the release after the check-ins.
  const again = Seat.fromText(seat.toText());
  assert.deepEqual([again.seatId, again.lease, again.renewAt], [seat.seatId, seat.lease, seat.renewAt]);
  now += 60;
  await client.release(granted.key, again);
  const release = service.requests.at(-1);
  assert.equal(release.path, '/v1/public/leases/release');
  assert.equal(release.body.at, NOW + 60);
  // The released seat is refused at its next check-in.
  now += 60;
  const e = await rejection(client.checkIn(granted.key, granted.device, seat));
  assert.ok(e instanceof SeatError);
  assert.deepEqual([e.code, e.status, e.isTransient], ['seat_released', 409, false]);
});

test('a tampered proof is refused by the service (the fake checks signatures)', async () => {
  const service = fakeService();
  const tamper = async (url, init) => {
    const body = JSON.parse(init.body);
    if (body.signature) body.signature = body.signature.replace(/^./, (c) => (c === '0' ? '1' : '0'));
    return service.transport(url, { ...init, body: JSON.stringify(body) });
  };
  const client = new SeatClient('https://x', { transport: tamper, clock: () => NOW * 1000 });
  const seat = await client.activate(granted.key, granted.device);
  const e = await rejection(client.checkIn(granted.key, granted.device, seat));
  assert.deepEqual([e.code, e.status, e.isTransient], ['bad_proof', 403, false]);
  assert.equal(e.customerMessage, 'This device no longer holds its seat. Activate this device again.');
});

/** The customer messages of sdk-rust's `SeatError::customer_message`, by code. */
const CUSTOMER = {
  seat_limit: 'Every seat of this license is in use. Release one on another device, or try again later.',
  revoked: 'This license was revoked. Contact the vendor.',
  expired: 'This license expired. Renew it to activate this device.',
  not_yet_valid: 'This license is not valid yet. Try again when it starts.',
  suspended: 'This license is suspended. Contact the vendor.',
  invalid_license_key: 'The licensing service does not know this license key. Check that it was entered in full.',
  wrong_device: 'This seat belongs to another device. Activate this device again.',
  seat_lapsed: "This device's seat lapsed and another device took it. Try again when a seat is free.",
  seat_released: 'This device no longer holds its seat. Activate this device again.',
  unknown_seat: 'This device no longer holds its seat. Activate this device again.',
  bad_proof: 'This device no longer holds its seat. Activate this device again.',
  rate_limited: 'The licensing service is busy. Try again in a moment.',
  allotment_ended:
    "The site's license server has no seats to give until the vendor renews them. Contact your administrator.",
  trial_used: 'This device has had its trial of this product. Buy a license to go on using it.',
  trials_disabled: 'This product has no trial. Buy a license to use it.',
  unknown_product: 'The licensing service does not know this product.',
  service_error: 'The licensing service had a problem. Try again later.',
  unreachable: 'The licensing service could not be reached. Check the network connection and try again.',
  bad_answer:
    "The licensing service's answer could not be read. If you typed an activation code, check it for typos.",
};

/** The service's problems as keyseal serve answers them, and the Rust SDK's code and transience for each. */
const REFUSALS = [
  [409, 'seat-limit', 'seat_limit', true],
  [409, 'license-revoked', 'revoked', false],
  [409, 'license-expired', 'expired', false],
  [409, 'license-not-yet-valid', 'not_yet_valid', false],
  [409, 'license-suspended', 'suspended', false],
  [403, 'invalid-license-key', 'invalid_license_key', false],
  [409, 'seat-lapsed', 'seat_lapsed', false],
  [409, 'seat-released', 'seat_released', false],
  [404, 'not-found', 'unknown_seat', false],
  [403, 'wrong-device', 'wrong_device', false],
  [403, 'bad-proof', 'bad_proof', false],
  [429, 'rate-limited', 'rate_limited', true],
  [503, 'allotment-ended', 'allotment_ended', true],
  [400, 'bad-request', 'service_error', false],
  [503, 'unavailable', 'service_error', true],
  [500, 'internal', 'service_error', true],
];

/** The trial service's problems (POST /v1/public/trials), and the Rust SDK's code and transience for each. */
const TRIAL_REFUSALS = [
  [409, 'trial-used', 'trial_used', false],
  [409, 'trials-disabled', 'trials_disabled', false],
  [404, 'not-found', 'unknown_product', false], // no such organisation or product
  [429, 'rate-limited', 'rate_limited', true],
  [409, 'no-active-key', 'service_error', false],
  [422, 'invalid-value', 'service_error', false],
  [503, 'unavailable', 'service_error', true],
];
const ORG = 'org_8e7d6c5b4a392817';

/** A client whose every answer is `status` with `body`. */
const answering = (status, body) => new SeatClient('https://x', { transport: async () => json(status, body) });

test('every refusal maps to the Rust SDK code, message and transience, on every call', async () => {
  const seat = Seat.fromText(`ksseat1.${SEAT_ID}${'07'.repeat(32)}\n${granted.lease}\n`);
  for (const [status, slug, code, transient] of REFUSALS) {
    const client = answering(status, problem(slug, `the service's words for ${slug}`));
    for (const call of [
      () => client.activate(granted.key, granted.device),
      () => client.checkIn(granted.key, granted.device, seat),
      () => client.release(granted.key, seat),
    ]) {
      const e = await rejection(call());
      assert.ok(e instanceof SeatError && e instanceof Error, `${slug}: ${e}`);
      assert.equal(e.name, 'SeatError');
      assert.deepEqual([e.code, e.status, e.isTransient], [code, status, transient], slug);
      assert.equal(e.message, `the licensing service refused (${code}): the service's words for ${slug}`);
      assert.equal(e.customerMessage, CUSTOMER[code]);
      assert.ok(!(e instanceof KeysealError), 'a family of its own');
    }
  }
  for (const [status, slug, code, transient] of TRIAL_REFUSALS) {
    const e = await rejection(answering(status, problem(slug, `the words for ${slug}`)).startTrial(ORG, 'acme-cad', granted.device));
    assert.ok(e instanceof SeatError, `${slug}: ${e}`);
    assert.deepEqual([e.code, e.status, e.isTransient], [code, status, transient], slug);
    assert.equal(e.message, `the licensing service refused (${code}): the words for ${slug}`);
    assert.equal(e.customerMessage, CUSTOMER[code]);
  }
  // Every code of the declared union is reachable and has its message.
  const reached = new Set([...REFUSALS, ...TRIAL_REFUSALS].map(([, , code]) => code));
  reached.add('unreachable').add('bad_answer');
  assert.deepEqual([...reached].sort(), Object.keys(CUSTOMER).sort());
});

/** A trial as `keyseal serve` answers it. */
const TRIAL = {
  license_id: '0193a4b2c5d6e7f8091a2b3c4d5e6f70',
  license_key: 'ks1.trial-key-not-checked-by-the-fake',
  product: 'acme-cad',
  plan: 'trial',
  entitlements: ['export-pdf', 'plugins'],
  started_at: NOW,
  expires_at: NOW + 14 * 86_400,
};

test('startTrial sends the Rust SDK request and gives the trial as a plain object', async () => {
  const sent = [];
  const transport = async (url, init) => {
    assert.equal(init.method, 'POST');
    assert.equal(init.headers['Content-Type'], 'application/json');
    assert.ok(init.signal instanceof AbortSignal, 'a timeout signal');
    sent.push({ url, body: JSON.parse(init.body) });
    return json(sent.length === 1 ? 201 : 200, TRIAL); // a new trial, then the same again
  };
  const client = new SeatClient('https://licensing.example.com/', { transport });
  const trial = await client.startTrial(` ${ORG}\n`, ' acme-cad ', granted.device);
  assert.deepEqual(sent, [
    {
      url: 'https://licensing.example.com/v1/public/trials',
      body: { org_id: ORG, product: 'acme-cad', fingerprint: granted.device },
    },
  ]);
  assert.equal(Object.getPrototypeOf(trial), Object.prototype);
  assert.deepEqual(trial, {
    licenseKey: TRIAL.license_key,
    licenseId: TRIAL.license_id,
    plan: 'trial',
    entitlements: ['export-pdf', 'plugins'],
    startedAt: NOW,
    expiresAt: NOW + 14 * 86_400,
  });
  // The same device asking again (HTTP 200) gets the same trial.
  assert.deepEqual(await client.startTrial(ORG, 'acme-cad', granted.device), trial);
  assert.equal(sent.length, 2);
  const bare = await answering(201, { ...TRIAL, entitlements: [] }).startTrial(ORG, 'acme-cad', granted.device);
  assert.deepEqual(bare.entitlements, []);
});

test('startTrial: answers not understood, bad arguments and no answer', async () => {
  const { license_key: _, ...keyless } = TRIAL;
  for (const [status, body] of [[201, '<html>'], [201, { ...TRIAL, expires_at: 'soon' }], [200, keyless]]) {
    const e = await rejection(answering(status, body).startTrial(ORG, 'acme-cad', granted.device));
    assert.ok(e instanceof SeatError, `${e}`);
    assert.deepEqual([e.code, e.status, e.isTransient], ['bad_answer', null, false]);
  }
  let calls = 0;
  const client = new SeatClient('https://x', { transport: async () => (calls++, json(201, TRIAL)) });
  const reject = async (promise, code, message) => {
    const e = await rejection(promise);
    assert.ok(e instanceof KeysealError, `${e}`);
    assert.deepEqual([e.code, message.test(e.message)], [code, true], e.message);
  };
  await reject(client.startTrial(42, 'acme-cad', granted.device), 'invalid_config', /organisation id/);
  await reject(client.startTrial(ORG, undefined, granted.device), 'invalid_config', /product id/);
  await reject(client.startTrial(ORG, 'acme-cad', 'ksfp1.!!'), 'malformed', /fingerprint/);
  await reject(client.startTrial(ORG, 'acme-cad'), 'invalid_config', /startTrial\(\) takes the device fingerprint/);
  assert.equal(calls, 0, 'nothing sent');
  const timeout = new DOMException('The operation was aborted due to timeout', 'TimeoutError');
  const down = new SeatClient('https://x', { transport: async () => Promise.reject(timeout) });
  const e = await rejection(down.startTrial(ORG, 'acme-cad', granted.device));
  assert.deepEqual([e.code, e.status, e.isTransient, e.cause], ['unreachable', null, true, timeout]);
});

test('no answer is unreachable and transient, with what the transport threw as cause', async () => {
  const refused = Object.assign(new TypeError('fetch failed'), { cause: new Error('connect ECONNREFUSED 127.0.0.1:9') });
  const down = new SeatClient('https://x', { transport: async () => Promise.reject(refused) });
  const e = await rejection(down.activate(granted.key, granted.device));
  assert.ok(e instanceof SeatError);
  assert.deepEqual([e.code, e.status, e.isTransient], ['unreachable', null, true]);
  assert.equal(
    e.message,
    'the licensing service could not be reached: TypeError: fetch failed (connect ECONNREFUSED 127.0.0.1:9)',
  );
  assert.equal(e.cause, refused);
  assert.equal(e.customerMessage, CUSTOMER.unreachable);
  // A transport that throws at once, or whose body cannot be read, is the same.
  const throwing = new SeatClient('https://x', {
    transport() {
      throw new Error('offline');
    },
  });
  assert.equal((await rejection(throwing.activate(granted.key, granted.device))).code, 'unreachable');
  const cut = new SeatClient('https://x', { transport: async () => ({ status: 200, text: () => Promise.reject(new Error('reset')) }) });
  const e2 = await rejection(cut.activate(granted.key, granted.device));
  assert.deepEqual([e2.code, e2.isTransient, e2.cause.message], ['unreachable', true, 'reset']);
  // An answer over 1 MiB is not read into the .wasm.
  const huge = await rejection(answering(200, ' '.repeat((1 << 20) + 1)).activate(granted.key, granted.device));
  assert.equal(huge.code, 'unreachable');
  assert.match(huge.message, /over 1048576 bytes/);
});

test('answers that are not understood are bad_answer, not transient', async () => {
  const html = await rejection(answering(502, '<html>bad gateway</html>').activate(granted.key, granted.device));
  assert.deepEqual([html.code, html.status, html.isTransient], ['bad_answer', null, false]);
  assert.equal(html.message, 'not understood: HTTP 502, not JSON');
  assert.equal(html.customerMessage, CUSTOMER.bad_answer);
  for (const body of [{ seat_id: 'zz', lease: granted.lease }, { seat_id: SEAT_ID }, { seat_id: SEAT_ID, lease: 'kslease1.x' }]) {
    assert.equal((await rejection(answering(201, body).activate(granted.key, granted.device))).code, 'bad_answer');
  }
  // A check-in answered with another seat's lease leaves the seat as it was.
  const seat = Seat.fromText(`ksseat1.${SEAT_ID}${'07'.repeat(32)}\n${granted.lease}\n`);
  const otherSeat = { seat_id: '0'.repeat(32), lease: renewed.lease };
  const e = await rejection(answering(200, otherSeat).checkIn(granted.key, granted.device, seat));
  assert.equal(e.message, 'not understood: a lease for another seat');
  assert.equal(seat.lease, granted.lease);
});

test('bad arguments are KeysealErrors: invalid_config, or malformed for a fingerprint', async () => {
  const config = (fn, message) => {
    assert.throws(fn, (e) => e instanceof KeysealError && e.code === 'invalid_config' && message.test(e.message));
  };
  config(() => new SeatClient(42), /service URL/);
  config(() => new SeatClient('https://x', { fetch }), /unknown option `fetch`/);
  config(() => new SeatClient('https://x', { transport: 'fetch' }), /`transport`/);
  config(() => new SeatClient('https://x', { clock: 0 }), /`clock`/);
  config(() => new SeatClient('https://x', null), /options object/);
  const client = answering(500, problem('internal'));
  const reject = async (promise, code, message) => {
    const e = await rejection(promise);
    assert.ok(e instanceof KeysealError, `${e}`);
    assert.equal(e.code, code);
    assert.match(e.message, message);
  };
  await reject(client.activate(42, granted.device), 'invalid_config', /license key/);
  await reject(client.activate(granted.key, 'ksfp1.!!'), 'malformed', /fingerprint/);
  await reject(client.activate(granted.key, undefined), 'invalid_config', /device fingerprint/);
  await reject(client.checkIn(granted.key, granted.device, { seatId: SEAT_ID }), 'invalid_config', /takes the Seat/);
  await reject(client.release(granted.key, null), 'invalid_config', /takes the Seat/);
  const bad = new SeatClient('https://x', { transport: async () => ({ ok: true }) });
  await reject(bad.activate(granted.key, granted.device), 'invalid_config', /resolve to a Response/);
  const badClock = new SeatClient('https://x', { transport: async () => json(200, {}), clock: () => 'noon' });
  const seat = Seat.fromText(`ksseat1.${SEAT_ID}${'07'.repeat(32)}\n${granted.lease}\n`);
  await reject(badClock.checkIn(granted.key, granted.device, seat), 'invalid_config', /`clock` must return/);
  // One KeysealError class for both entries.
  assert.equal(KeysealError, validateOnly.KeysealError);
  assert.deepEqual(CODES, validateOnly.CODES);
});

test('saved seats and requests are the Rust SDK texts: written and read by any SDK', async () => {
  // A seat as sdk-rust's Seat::to_text writes it (docs in sdk-rust/src/seats.rs):
  // `ksseat1.` + hex(seat id, installation key seed), a line break, the lease.
  const seed = Buffer.alloc(32, 7);
  const text = `ksseat1.${SEAT_ID}${seed.toString('hex')}\n${granted.lease}\n`;
  const seat = Seat.fromText(`\n  ${text.replace('\n', '\r\n')}`);
  assert.deepEqual(
    [seat.seatId, seat.lease, seat.renewAt, seat.expiresAt],
    [SEAT_ID, granted.lease, granted.expect.lease.renew_at, granted.expect.lease.expires_at],
  );
  assert.equal(seat.toText(), text);
  // Its check-in is signed by that seed's key (node:crypto derives the public key).
  const pkcs8 = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]);
  const key = createPublicKey(createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }));
  let sent;
  const client = new SeatClient('https://x', {
    clock: () => new Date(NOW * 1000),
    transport: async (url, init) => {
      sent = JSON.parse(init.body);
      return json(200, { seat_id: SEAT_ID, lease: renewed.lease });
    },
  });
  await client.checkIn(granted.key, granted.device, seat);
  assert.equal(sent.at, NOW);
  assert.ok(proves(key, CHECK_IN_DOMAIN, SEAT_ID, sent.at, sent.signature));
  assert.ok(!proves(key, RELEASE_DOMAIN, SEAT_ID, sent.at, sent.signature), 'domain-separated');

  for (const bad of ['', 'ksseat1.00', `ksseat1.${SEAT_ID}`, `ksseat1.${SEAT_ID}${seed.toString('hex')}`, text.replace('kslease1.', 'kslease2.')]) {
    const e = (() => {
      try {
        Seat.fromText(bad);
      } catch (err) {
        return err;
      }
    })();
    assert.ok(e instanceof SeatError, `${JSON.stringify(bad)}: ${e}`);
    assert.deepEqual([e.code, e.isTransient, e.status], ['bad_answer', false, null]);
  }
  assert.throws(() => Seat.fromText(42), (e) => e instanceof KeysealError && e.code === 'invalid_config');
  // The secret stays out of what is printed.
  assert.ok(!JSON.stringify(seat).includes(seed.toString('hex')));
  assert.ok(!String(seat).includes(seed.toString('hex')));
  seat.free();
});

test('the default transport is fetch: a POST of JSON, an error status is an answer', async () => {
  const seen = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      seen.push({ method: req.method, url: req.url, type: req.headers['content-type'], body: JSON.parse(body) });
      const answer = JSON.stringify(problem('rate-limited', 'slow down'));
      res.writeHead(429, { 'Content-Type': 'application/problem+json', 'Retry-After': '1' });
      res.end(answer);
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  try {
    const e = await rejection(new SeatClient(`http://127.0.0.1:${port}/`).activate(granted.key, granted.device));
    assert.deepEqual([e.code, e.status, e.isTransient], ['rate_limited', 429, true]);
    assert.equal(e.message, 'the licensing service refused (rate_limited): slow down');
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
  const [{ method, url, type, body }] = seen;
  assert.deepEqual([method, url, type], ['POST', '/v1/public/leases', 'application/json']);
  assert.equal(body.license_key, granted.key);
  // Nobody listens there now: no answer.
  const e = await rejection(new SeatClient(`http://127.0.0.1:${port}`).activate(granted.key, granted.device));
  assert.deepEqual([e.code, e.isTransient], ['unreachable', true]);
  assert.ok(e.cause instanceof Error);
});

const VENDOR = process.env.KEYSEAL_TEST_VENDOR;

/** Runs examples/test_vendor.rs: its output lines. */
const vendor = (...args) => execFileSync(VENDOR, args, { encoding: 'utf8' }).trim().split('\n');

test('air-gapped: request code, the vendor signs a response, install; saved between the two', () => {
  assert.ok(VENDOR, 'KEYSEAL_TEST_VENDOR: run through scripts/test.sh, which builds examples/test_vendor.rs');
  const product = 'acme-cad';
  const [keyring, licenseKey] = vendor('license', product, String(NOW));
  const me = deviceFingerprint(product, [{ kind: 'install-id', id: 'air-gapped machine' }]);

  const request = new OfflineRequest(licenseKey, me);
  assert.match(request.code, /^KSREQ1\.[0-9A-HJKMNP-TV-Z]{5}(-[0-9A-HJKMNP-TV-Z]{1,5})+$/);
  assert.equal(request.code.length, 189);
  // The app may be restarted while the vendor answers.
  const saved = request.toText();
  assert.match(saved, /^ksseatreq1\.[0-9a-f]{64}\n/);
  assert.equal(saved, `${saved.split('\n')[0]}\n${request.code}\n`);
  const restored = OfflineRequest.fromText(saved);
  assert.equal(restored.code, request.code);
  request.free();

  const [response, seatId, lease] = vendor('respond', licenseKey, restored.code, String(NOW));
  assert.match(response, /^KSRES1\./);
  // A one-character typo is caught by the checksum; the request stays usable.
  const i = 'KSRES1.'.length + 10;
  const typo = response.slice(0, i) + (response[i] === 'A' ? 'B' : 'A') + response.slice(i + 1);
  const e = (() => {
    try {
      restored.install(typo);
    } catch (err) {
      return err;
    }
  })();
  assert.ok(e instanceof SeatError, `${e}`);
  assert.deepEqual([e.code, e.isTransient, e.status], ['bad_answer', false, null]);

  const seat = restored.install(response.toLowerCase().replaceAll('-', ' '));
  assert.deepEqual([seat.seatId, seat.lease, seat.expiresAt - seat.renewAt], [seatId, lease, 3600]);
  const validator = (device) => new Validator({ keyring, product, device, clock: () => NOW * 1000 });
  const license = validator(me).validateWithLease(licenseKey, seat.lease);
  assert.equal(license.lease.seatId, seat.seatId);
  const other = deviceFingerprint(product, [{ kind: 'install-id', id: 'another machine' }]);
  assert.throws(() => validator(other).validateWithLease(licenseKey, seat.lease), (err) => err.fault === 'wrong_device');
  // The installed seat is saved as any seat, with the request's key.
  assert.equal(Seat.fromText(seat.toText()).lease, seat.lease);
  assert.equal(seat.toText().slice(8 + 32, 8 + 96), saved.slice('ksseatreq1.'.length, 'ksseatreq1.'.length + 64));
  // A request for another license does not prove this one (the vendor refuses it).
  const [, otherKey] = vendor('license', 'acme-viewer', String(NOW));
  const foreign = new OfflineRequest(otherKey, me);
  assert.throws(() => execFileSync(VENDOR, ['respond', licenseKey, foreign.code, String(NOW)], { stdio: 'pipe' }));
  // What is not a license key or a request is bad_answer.
  assert.throws(() => new OfflineRequest('ks1.AAAA', me), (err) => err instanceof SeatError && err.code === 'bad_answer');
  assert.throws(() => OfflineRequest.fromText('ksseatreq1.00\nKSREQ1.0'), (err) => err instanceof SeatError && err.code === 'bad_answer');
  assert.throws(() => new OfflineRequest(licenseKey, 'ksfp1.!!'), (err) => err instanceof KeysealError && err.code === 'malformed');
});

// --- end to end: keyseal serve and keyseal activate (the CLI binary) ---------

const CLI = process.env.KEYSEAL_CLI || '';
const skipCli = CLI ? false : 'no keyseal CLI binary (scripts/test.sh sets KEYSEAL_CLI when one is built)';
const PASSPHRASE = 'throwaway-only';

const vaultEnv = (vault) => ({ ...process.env, KEYSEAL_PASSPHRASE: PASSPHRASE, KEYSEAL_KDF_PARAMS: 'm=256,t=1,p=1', KEYSEAL_VAULT: vault });

/** A throwaway `keyseal serve` on a free loopback port: `{ base, call(method, path, body), stop() }`. */
async function serve(vault) {
  const proc = spawn(CLI, ['serve', '--listen', '127.0.0.1:0', '--public-requests-per-second', '0'], {
    env: vaultEnv(vault),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stdout.on('data', (d) => (out += d));
  const stop = () =>
    new Promise((resolve) => {
      if (proc.exitCode !== null) return resolve();
      proc.on('exit', resolve);
      proc.kill('SIGTERM');
    });
  try {
    const base = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`keyseal serve did not start:\n${err}`)), 120_000);
      proc.stderr.on('data', (d) => {
        err += d;
        // Up to the space after the address: a chunk may end inside the port number.
        const m = err.match(/listening on (http:\/\/\S+)\s/);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      });
      proc.on('exit', (code) => reject(new Error(`keyseal serve exited (${code}):\n${err}`)));
    });
    const token = out.split('\n').find((l) => l.startsWith('ksk_'));
    assert.ok(token, `no admin token printed:\n${out}`);
    const call = async (method, path, body) => {
      const r = await fetch(base + path, {
        method,
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      assert.ok(r.ok, `${method} ${path}: ${r.status} ${await r.clone().text()}`);
      return r.json();
    };
    return { base, call, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

test('a seat end to end against keyseal serve, over the default fetch', { skip: skipCli, timeout: 240_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'keyseal-wasm-serve-'));
  const service = await serve(join(dir, 'vault'));
  try {
    const product = 'acme-cad';
    await service.call('POST', '/v1/products', { product });
    const { customer_id: customer } = await service.call('POST', '/v1/customers', {});
    const { license_key: key } = await service.call('POST', '/v1/licenses', {
      product,
      customer_id: customer,
      plan: 'pro',
      expires: '365d',
      max_devices: 1,
    });
    const { keyring } = await service.call('GET', '/v1/public/keyring');
    const me = deviceFingerprint(product, [{ kind: 'install-id', id: 'first' }]);
    const other = deviceFingerprint(product, [{ kind: 'install-id', id: 'second' }]);
    const validator = (device) => new Validator({ keyring, product, device });

    const client = new SeatClient(`${service.base}/`);
    let seat = await client.activate(key, me);
    assert.match(seat.seatId, /^[0-9a-f]{32}$/);
    const lic = validator(me).validateWithLease(key, seat.lease);
    assert.deepEqual([lic.lease.seatId, lic.lease.renewAt, lic.lease.expiresAt], [seat.seatId, seat.renewAt, seat.expiresAt]);
    assert.throws(() => validator(other).validateWithLease(key, seat.lease), (e) => e.fault === 'wrong_device');

    seat = Seat.fromText(seat.toText());
    const renewAt = seat.renewAt;
    await client.checkIn(key, me, seat);
    await client.checkIn(key, me, seat);
    assert.ok(seat.renewAt >= renewAt);
    assert.equal(validator(me).validateWithLease(key, seat.lease).lease.seatId, seat.seatId);

    // One seat: another device is refused until this one releases it.
    const full = await rejection(client.activate(key, other));
    assert.deepEqual([full.code, full.isTransient, full.status], ['seat_limit', true, 409]);
    assert.match(full.message, /all 1 seats of this license are held/);
    await client.release(key, seat);
    const theirs = await client.activate(key, other);
    assert.ok(validator(other).validateWithLease(key, theirs.lease).lease);
    const wrong = await rejection(client.checkIn(key, me, theirs));
    assert.deepEqual([wrong.code, wrong.isTransient, wrong.status], ['wrong_device', false, 403]);
    const unknown = await rejection(client.activate('ks1.AAAA', me));
    assert.deepEqual([unknown.code, unknown.status], ['invalid_license_key', 403]);
  } finally {
    await service.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a trial end to end against keyseal serve, over the default fetch', { skip: skipCli, timeout: 240_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'keyseal-wasm-trial-'));
  const service = await serve(join(dir, 'vault'));
  try {
    const product = 'acme-cad';
    await service.call('POST', '/v1/products', { product });
    const {
      items: [{ org_id: orgId }],
    } = await service.call('GET', '/v1/tokens');
    const { keyring } = await service.call('GET', `/v1/public/orgs/${orgId}/keyring`);
    /** Machine `name`'s three ids, the network card's `nic`. */
    const machine = (name, nic = `${name}-nic`) =>
      deviceFingerprint(product, [
        { kind: 'machine-id', id: `${name}-machine-id` },
        { kind: 'disk', id: `${name}-disk` },
        { kind: 'mac', id: nic },
      ]);
    const validator = (device) => new Validator({ keyring, product, device });
    const client = new SeatClient(service.base);
    const me = machine('a');

    // No trial policy yet: the product gives none.
    const off = await rejection(client.startTrial(orgId, product, me));
    assert.deepEqual([off.code, off.isTransient, off.status], ['trials_disabled', false, 409]);
    await service.call('POST', `/v1/products/${product}/trial-policy`, {
      enabled: true,
      length_secs: 7 * 86_400,
      entitlements: ['export-pdf'],
    });

    const trial = await client.startTrial(orgId, product, me);
    assert.equal(trial.expiresAt - trial.startedAt, 7 * 86_400);
    assert.deepEqual([trial.plan, trial.entitlements], ['trial', ['export-pdf']]);
    const license = validator(me).validate(trial.licenseKey);
    assert.deepEqual(
      [license.licenseId, license.plan, license.expiresAt, license.entitlements, license.device],
      [trial.licenseId, trial.plan, trial.expiresAt, trial.entitlements, { kind: 'exact' }],
    );
    assert.throws(() => validator(machine('b')).validate(trial.licenseKey), (e) => e.code === 'wrong_device');

    // A lost answer: the very same device gets the very same trial again.
    assert.deepEqual(await client.startTrial(orgId, product, me), trial);
    // One component changed (a new network card): the same device, its trial used.
    const used = await rejection(client.startTrial(orgId, product, machine('a', 'new-network-card')));
    assert.deepEqual([used.code, used.isTransient, used.status], ['trial_used', false, 409]);
    assert.equal(used.customerMessage, CUSTOMER.trial_used);
    assert.match(used.message, /started at/);
    // Another device gets its own.
    const theirs = await client.startTrial(orgId, product, machine('b'));
    assert.notEqual(theirs.licenseId, trial.licenseId);
    assert.equal(validator(machine('b')).validate(theirs.licenseKey).licenseId, theirs.licenseId);
    // A product or an organisation the service does not know.
    for (const [org, p] of [[orgId, 'acme-viewer'], ['org_0000000000000000', product]]) {
      const unknown = await rejection(client.startTrial(org, p, me));
      assert.deepEqual([unknown.code, unknown.isTransient, unknown.status], ['unknown_product', false, 404]);
    }
  } finally {
    await service.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an air-gapped seat end to end with keyseal activate', { skip: skipCli, timeout: 240_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'keyseal-wasm-activate-'));
  try {
    const env = vaultEnv(join(dir, 'vault'));
    const run = (...args) => execFileSync(CLI, args, { env, encoding: 'utf8', timeout: 120_000 });
    const product = 'acme-cad';
    run('init', '--product', product);
    const { license_key: key } = JSON.parse(
      run('issue', '--product', product, '--customer', 'cus_1', '--plan', 'pro', '--expires', '365d', '--json'),
    );
    const keyring = run('keys', 'export');
    const me = deviceFingerprint(product, [{ kind: 'install-id', id: 'offline' }]);

    const request = OfflineRequest.fromText(new OfflineRequest(key, me).toText());
    const answer = JSON.parse(run('activate', '--request', request.code, '--json'));
    assert.match(answer.response, /^KSRES1\./);
    const seat = request.install(answer.response.toLowerCase());
    assert.deepEqual([seat.seatId, seat.lease, seat.expiresAt], [answer.seat_id, answer.lease, answer.expires_at]);
    const lic = new Validator({ keyring, product, device: me }).validateWithLease(key, seat.lease);
    assert.equal(lic.lease.seatId, seat.seatId);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
