// Entry of `keyseal/seats` for browsers, bundlers and other runtimes (the
// exports map's "default" condition): fetches the seats .wasm next to this
// file with top-level await, as browser.js fetches the verify-only one.
import init from './wasm/keyseal_seats.js';
import { setup } from './seats.js';

await init({ module_or_path: new URL('./wasm/keyseal_seats_bg.wasm', import.meta.url) });
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
