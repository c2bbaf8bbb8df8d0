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
 * WebAssembly.Module), else from next to this file (where the module has an
 * `import.meta.url`: not in an IIFE bundle). A failed load rejects, and the
 * next call tries again.
 */
export function init(wasm) {
  ready ??= (async () => {
    await initWasm({ module_or_path: wasm ?? new URL('./wasm/keyseal_wasm_bg.wasm', import.meta.url) });
    setup();
  })().catch((e) => {
    ready = undefined;
    throw e;
  });
  return ready;
}

export { CODES, KeysealError, Validator, WebhookError, deviceFingerprint, localStorageState, verifyEd25519Strict, verifyWebhook } from './keyseal.js';
