// The package's API over the wasm-bindgen glue (wasm/keyseal_wasm.js). The
// entry modules (node.js, browser.js) load the .wasm, then call setup().
// Everything here is naming and plumbing: the logic is the Rust SDK's.
import { Validator, __setErrorClass, codes, deviceFingerprint, verifyEd25519Strict } from './wasm/keyseal_wasm.js';

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

/** Every code a KeysealError or a warning can carry; filled by setup(). */
export const CODES = [];

/** Called once by the entry module after the .wasm is instantiated. */
export function setup() {
  __setErrorClass(KeysealError);
  CODES.push(...codes());
  Object.freeze(CODES);
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

export { Validator, deviceFingerprint, verifyEd25519Strict };
