// The package's API over the wasm-bindgen glue (wasm/keyseal_wasm.js). The
// entry modules (node.js, browser.js) load the .wasm, then call setup().
// Everything here is naming and plumbing: the logic is the Rust SDK's.
import { Validator, __setErrorClass, codes, deviceFingerprint, verifyEd25519Strict } from './wasm/keyseal_wasm.js';
import { KeysealError, localStorageState } from './common.js';

/** Every code a KeysealError or a warning can carry; filled by setup(). */
export const CODES = [];

/** Called once by the entry module after the .wasm is instantiated. */
export function setup() {
  __setErrorClass(KeysealError);
  CODES.push(...codes());
  Object.freeze(CODES);
}

export { KeysealError, Validator, deviceFingerprint, localStorageState, verifyEd25519Strict };
