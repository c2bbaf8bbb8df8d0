// The package's API over the wasm-bindgen glue (wasm/keyseal_wasm.js). The
// entry modules (node.js, browser.js) load the .wasm, then call setup().
// Everything here is naming and plumbing: the logic is the Rust SDK's.
import {
  Validator,
  __setErrorClass,
  __verifyWebhook,
  codes,
  deviceFingerprint,
  verifyEd25519Strict,
} from './wasm/keyseal_wasm.js';
import { KeysealError, WebhookError, localStorageState, webhookVerifier } from './common.js';

/** Checks a webhook delivery with the organisation's public keyring (see index.d.ts). */
export const verifyWebhook = webhookVerifier(__verifyWebhook);

/** Every code a KeysealError or a warning can carry; filled by setup(). */
export const CODES = [];

/** Called by each entry module after the .wasm is instantiated. */
export function setup() {
  __setErrorClass(KeysealError);
  // Once, however many entries of the package an app loads (`keyseal`
  // and `keyseal/web` share this module and the .wasm's).
  if (Object.isFrozen(CODES)) return;
  CODES.push(...codes());
  Object.freeze(CODES);
}

export { KeysealError, Validator, WebhookError, deviceFingerprint, localStorageState, verifyEd25519Strict };
