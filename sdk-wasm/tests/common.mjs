// Shared helpers of the sdk-wasm tests. They run in a scratch project where
// the packed `keyseal` tarball is installed; KEYSEAL_ROOT points at the
// repository for testdata/.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const ROOT = process.env.KEYSEAL_ROOT ?? new URL('../..', import.meta.url).pathname;

/** A JSON file under testdata/. */
export function testdata(...path) {
  return JSON.parse(readFileSync(join(ROOT, 'testdata', ...path), 'utf8'));
}

/** A vector file's cases. */
export const vectors = (name) => testdata('vectors', name).cases;

export const unhex = (s) => new Uint8Array(Buffer.from(s, 'hex'));

/**
 * The validator's state text as sdk-rust's README documents it (written here
 * independently of the Rust code, so the two are checked against each other).
 */
export function stateText(product, { seen = 0, signed = 0, list = null } = {}) {
  const body =
    `keyseal-state 2\nproduct ${product}\nseen ${seen}\nsigned ${signed}\n` +
    `list ${list ? `${list.rank ?? 0} ${list.sequence} ${list.nextUpdate}` : 'none'}\n`;
  const len = Buffer.alloc(8);
  len.writeBigUInt64BE(BigInt(Buffer.byteLength(product)));
  const sum = createHash('sha512').update('keyseal/state/v1\0').update(len).update(product).update(body).digest('hex');
  return `${body}checksum ${sum}\n`;
}

/** A state store in memory that records what it was given. */
export function memoryStore(initial = null) {
  const store = {
    value: initial,
    writes: 0,
    get: () => store.value,
    set: (text) => {
      store.value = text;
      store.writes += 1;
    },
  };
  return store;
}

/** The code of what `fn` throws (a KeysealError), or the value it returns. */
export function codeOf(fn) {
  try {
    return fn();
  } catch (e) {
    if (typeof e?.code !== 'string') throw e;
    return { valid: false, error: e.code };
  }
}
