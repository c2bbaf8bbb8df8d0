// Types of `keyseal/web`: the API of `keyseal`, and init().
export * from './index.js';

/**
 * Loads the .wasm, once (later calls return the same promise): from `wasm`
 * (its URL, a Response or its promise, its bytes, or a compiled
 * WebAssembly.Module), else from next to this module (where it has an
 * `import.meta.url`: give the .wasm in an IIFE bundle). Nothing else in the
 * package may be used before the promise resolves; a failed load rejects,
 * and the next call tries again.
 */
export declare function init(
  wasm?: string | URL | Request | Response | Promise<Response> | BufferSource | WebAssembly.Module,
): Promise<void>;
