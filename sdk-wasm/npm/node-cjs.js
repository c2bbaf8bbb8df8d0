// Source of node.cjs, the CommonJS entry of `keyseal` for Node
// (`require('keyseal')`, on every Node the package supports, where
// require() of an ES module fails before Node 20.19). scripts/build.sh
// bundles it with esbuild into one CommonJS file; it loads the same .wasm,
// synchronously, as node.js does.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { initSync } from './wasm/keyseal_wasm.js';
import { setup } from './keyseal.js';

// eslint-disable-next-line no-undef -- CommonJS, once bundled
initSync({ module: readFileSync(join(__dirname, 'wasm', 'keyseal_wasm_bg.wasm')) });
setup();

export { CODES, KeysealError, Validator, WebhookError, deviceFingerprint, localStorageState, verifyEd25519Strict, verifyWebhook } from './keyseal.js';
