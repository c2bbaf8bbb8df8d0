// Entry for browsers, bundlers and other runtimes (the exports map's
// "default" condition): fetches the .wasm next to this file, with top-level
// await, so the API is ready once the import resolves. Bundlers see the
// `new URL(..., import.meta.url)` and ship the .wasm as an asset.
import init from './wasm/keyseal_wasm.js';
import { setup } from './keyseal.js';

await init({ module_or_path: new URL('./wasm/keyseal_wasm_bg.wasm', import.meta.url) });
setup();

export { CODES, KeysealError, Validator, WebhookError, deviceFingerprint, localStorageState, verifyEd25519Strict, verifyWebhook } from './keyseal.js';
