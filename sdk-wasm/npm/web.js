// Entry `keyseal/web`: the API without top-level await, for bundles that
// cannot have one (an IIFE, a target below ES2022, esbuild's CommonJS
// output) and for pages that serve the .wasm from elsewhere (a CDN). Nothing
// is usable until the promise of init() resolves.
import initWasm from './wasm/keyseal_wasm.js';
import { setup } from './keyseal.js';

let ready;

/**
 * Loads the .wasm, once (later calls return the same promise): from `wasm`
 * (its URL, a Response or its promise, its bytes, or a compiled
 * WebAssembly.Module), else from next to this file.
 */
export function init(wasm) {
  ready ??= initWasm({
    module_or_path: wasm ?? new URL('./wasm/keyseal_wasm_bg.wasm', import.meta.url),
  }).then(() => setup());
  return ready;
}

export { CODES, KeysealError, Validator, deviceFingerprint, localStorageState, verifyEd25519Strict } from './keyseal.js';
