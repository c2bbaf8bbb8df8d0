// A CommonJS module using the package through require() (node16
// resolution picks the exports map's "require" types, index.d.cts).
import keyseal = require('keyseal');

export function plan(keyring: string, key: string): string {
  const v = new keyseal.Validator({ keyring, product: 'acme-cad' });
  try {
    return v.validate(key).plan;
  } catch (e) {
    if (e instanceof keyseal.KeysealError) return e.code;
    throw e;
  } finally {
    v.free();
  }
}
