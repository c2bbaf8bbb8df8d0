// keyseal/web: init() with the .wasm's URL, then the API.
import { Validator, init } from 'keyseal/web';

export async function check(wasmUrl: string, keyring: string, key: string): Promise<string> {
  await init(new URL(wasmUrl, 'https://example.com/'));
  const v = new Validator({ keyring, product: 'acme-cad' });
  try {
    return v.validate(key).customer;
  } finally {
    v.free();
  }
}
