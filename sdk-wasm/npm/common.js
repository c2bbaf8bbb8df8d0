// The parts of the API that touch no .wasm, shared by both entries
// (`keyseal` and `keyseal/seats`), so that one KeysealError class serves
// both: `instanceof KeysealError` holds whichever entry threw.

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
