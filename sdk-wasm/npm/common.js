// The parts of the API that touch no .wasm, shared by both entries
// (`keyseal` and `keyseal/seats`), so that one KeysealError class serves
// both: `instanceof KeysealError` holds whichever entry threw.

/**
 * Every failure: a real Error with a stable `code` (the same in every keyseal
 * SDK); for `lease_invalid`, `fault` says why the lease does not hold.
 */
export class KeysealError extends Error {
  constructor(code, message, customerMessage, warnings = [], fault = null) {
    super(message);
    this.name = 'KeysealError';
    this.code = code;
    this.customerMessage = customerMessage;
    this.warnings = warnings;
    this.fault = fault;
  }
}

/**
 * State in Web Storage (localStorage by default) under `key`. A storage that
 * is missing or throws (private mode, quota) gives a `state_unavailable`
 * warning, never a failure.
 */
export function localStorageState(key, storage) {
  const store = () => storage ?? globalThis.localStorage;
  return {
    get: () => store().getItem(key),
    set: (text) => store().setItem(key, text),
  };
}

/**
 * A webhook delivery refused by `verifyWebhook`: a real Error whose `code`
 * is `malformed`, `unknown_key`, `key_not_valid`, `bad_signature` or
 * `stale` (the same in every keyseal SDK; verdicts on a delivery, not on a
 * license key, so not a KeysealError, as a SeatError is not); `keyId`
 * names the signing key for `unknown_key` and `key_not_valid`.
 */
export class WebhookError extends Error {
  constructor(code, message, keyId = null) {
    super(message);
    this.name = 'WebhookError';
    this.code = code;
    this.keyId = keyId;
  }
}

/** `verifyWebhook` over the glue's `__verifyWebhook` (of either .wasm). */
export function webhookVerifier(raw) {
  return function verifyWebhook(keyring, id, timestamp, signature, body, options = {}) {
    const now = options?.now === undefined ? Date.now() : options.now instanceof Date ? options.now.getTime() : options.now;
    if (typeof now !== 'number' || !Number.isFinite(now) || now < 0) {
      throw new KeysealError(
        'invalid_config',
        'invalid configuration: verifyWebhook(): `now` must be a Date or milliseconds since the epoch',
        "The app's license check is not set up correctly. Contact the vendor.",
      );
    }
    const answer = raw(keyring, id, timestamp, signature, body, Math.floor(now / 1000));
    if (answer.code) throw new WebhookError(answer.code, answer.message, answer.keyId);
    return answer.keyId;
  };
}
