// Entry of `keyseal/seats` for Node (the exports map's "node" condition):
// loads the seats .wasm synchronously, as node.js loads the verify-only one.
import { webcrypto } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { initSync } from './wasm/keyseal_seats.js';
import { setup } from './seats.js';

// Installation keys come from crypto.getRandomValues (the Rust SDK's
// getrandom, through its Web backend). Node 19 and later have the global
// `crypto`; Node 18 has it only as node:crypto's `webcrypto`, which is
// installed as the global here, as later Nodes have it, and only if missing.
if (typeof globalThis.crypto?.getRandomValues !== 'function') {
  Object.defineProperty(globalThis, 'crypto', { value: webcrypto, writable: true, configurable: true });
}
initSync({ module: readFileSync(new URL('./wasm/keyseal_seats_bg.wasm', import.meta.url)) });
setup();

export {
  CODES,
  KeysealError,
  OfflineRequest,
  Seat,
  SeatClient,
  SeatError,
  Validator,
  deviceFingerprint,
  localStorageState,
  verifyEd25519Strict,
  verifyWebhook,
  WebhookError,
} from './seats.js';
