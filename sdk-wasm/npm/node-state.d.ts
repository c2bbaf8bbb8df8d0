// `keyseal/node`: Node-only helpers.
import type { StateStore } from './index.js';

/**
 * The validator's state in the file at `path` (created with its directory on
 * first save; written to a temporary file, flushed and renamed). The format
 * is the Rust SDK's, so a Node app and a Rust app of one product can share it.
 */
export function fileState(path: string): StateStore;
