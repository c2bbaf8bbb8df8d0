// Entry for Node (the exports map's "node" condition): loads the .wasm
// synchronously, so there is no top-level await and no fetch.
import { readFileSync } from 'node:fs';
import { initSync } from './wasm/keyseal_wasm.js';
import { setup } from './keyseal.js';

initSync({ module: readFileSync(new URL('./wasm/keyseal_wasm_bg.wasm', import.meta.url)) });
setup();

export { CODES, KeysealError, Validator, WebhookError, deviceFingerprint, localStorageState, verifyEd25519Strict, verifyWebhook } from './keyseal.js';
