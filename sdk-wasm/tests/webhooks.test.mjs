// verifyWebhook: every case of testdata/vectors/webhooks.json with the
// answers sdk-rust/tests/webhooks.rs expects, through `keyseal`,
// `keyseal/seats` and require('keyseal'); and the JavaScript edges (the
// clock, a Date, missing headers, argument types, a bad keyring).
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { KeysealError, WebhookError, verifyWebhook } from 'keyseal';
import * as seats from 'keyseal/seats';
import { vectors } from './common.mjs';

const cases = vectors('webhooks.json');
const require = createRequire(import.meta.url);

function check(verify, Refusal, c, now) {
  try {
    return { valid: true, key_id: verify(c.keyring, c.id, c.timestamp, c.signature, c.body, { now }) };
  } catch (e) {
    assert.ok(e instanceof Refusal, `${c.name}: ${e}`);
    return { valid: false, error: e.code };
  }
}

test('the shared webhook vectors: keyseal, keyseal/seats, require(), now as milliseconds or a Date', () => {
  assert.ok(cases.length >= 20);
  const cjs = require('keyseal');
  for (const c of cases) {
    const ms = c.now * 1000;
    assert.deepEqual(check(verifyWebhook, WebhookError, c, ms), c.expect, c.name);
    assert.deepEqual(check(verifyWebhook, WebhookError, c, new Date(ms)), c.expect, c.name);
    assert.deepEqual(check(seats.verifyWebhook, seats.WebhookError, c, ms), c.expect, `seats: ${c.name}`);
    assert.deepEqual(check(cjs.verifyWebhook, cjs.WebhookError, c, ms), c.expect, `require: ${c.name}`);
    // The body as bytes gives the same answer as its text.
    const bytes = new TextEncoder().encode(c.body);
    const asBytes = { ...c, body: bytes };
    assert.deepEqual(check(verifyWebhook, WebhookError, asBytes, ms), c.expect, `bytes: ${c.name}`);
  }
  const codes = new Set(cases.map((c) => c.expect.error).filter(Boolean));
  assert.deepEqual([...codes].sort(), ['bad_signature', 'key_not_valid', 'malformed', 'stale', 'unknown_key']);
});

test('a refusal is a WebhookError naming the key, not a KeysealError', () => {
  const c = cases.find((x) => x.expect.error === 'unknown_key');
  let caught;
  try {
    verifyWebhook(c.keyring, c.id, c.timestamp, c.signature, c.body, { now: c.now * 1000 });
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof WebhookError && caught instanceof Error);
  assert.ok(!(caught instanceof KeysealError));
  assert.equal(caught.name, 'WebhookError');
  assert.equal(caught.code, 'unknown_key');
  assert.ok(c.signature.includes(caught.keyId), caught.keyId);
  const stale = cases.find((x) => x.expect.error === 'stale');
  assert.throws(
    () => verifyWebhook(stale.keyring, stale.id, stale.timestamp, stale.signature, stale.body, { now: stale.now * 1000 }),
    (e) => e instanceof WebhookError && e.code === 'stale' && e.keyId === null && /too far from now/.test(e.message),
  );
});

test('now defaults to the system clock; a missing header is malformed', () => {
  const c = cases.find((x) => x.name === 'valid');
  if (Math.abs(Date.now() / 1000 - Number(c.timestamp)) > 300) {
    assert.throws(() => verifyWebhook(c.keyring, c.id, c.timestamp, c.signature, c.body), { code: 'stale' });
  }
  const headers = {}; // as Node gives them: undefined when missing
  assert.throws(
    () => verifyWebhook(c.keyring, headers['webhook-id'], c.timestamp, c.signature, c.body, { now: c.now * 1000 }),
    (e) => e instanceof WebhookError && e.code === 'malformed',
  );
  assert.throws(
    () => verifyWebhook(c.keyring, c.id, c.timestamp, null, c.body, { now: c.now * 1000 }),
    (e) => e instanceof WebhookError && e.code === 'malformed',
  );
});

test('bad arguments: a keyring that is not one, wrong types, a bad now', () => {
  const c = cases.find((x) => x.name === 'valid');
  const now = c.now * 1000;
  assert.throws(() => verifyWebhook('not a keyring', c.id, c.timestamp, c.signature, c.body, { now }), (e) => e instanceof KeysealError && e.code === 'malformed');
  for (const bad of [undefined, 42, {}]) {
    assert.throws(() => verifyWebhook(bad, c.id, c.timestamp, c.signature, c.body, { now }), { code: 'invalid_config' });
    assert.throws(() => verifyWebhook(c.keyring, c.id, c.timestamp, c.signature, bad, { now }), { code: 'invalid_config' });
  }
  assert.throws(() => verifyWebhook(c.keyring, ['evt_1'], c.timestamp, c.signature, c.body, { now }), { code: 'invalid_config' });
  // A bad now is refused in JavaScript, with the customer message the
  // Rust SDK gives every invalid_config (as for a body of the wrong type).
  let rust;
  try {
    verifyWebhook(c.keyring, c.id, c.timestamp, c.signature, 42, { now });
  } catch (e) {
    rust = e;
  }
  for (const bad of [-1, NaN, Infinity, '1800000000000', new Date(NaN)]) {
    assert.throws(
      () => verifyWebhook(c.keyring, c.id, c.timestamp, c.signature, c.body, { now: bad }),
      (e) => e instanceof KeysealError && e.code === 'invalid_config' && e.customerMessage === rust.customerMessage,
    );
  }
});
