//! The SDK's state file: raw input, and the input as a body with the checksum
//! the docs define appended, so the field parser is reached. Anything
//! accepted is exactly what `State::encode` writes.
#![no_main]

use keyseal::State;
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha512};

const PRODUCT: &str = "acme-cad";

fuzz_target!(|data: &[u8]| {
    if let Ok(state) = State::decode(PRODUCT, data) {
        assert_eq!(state.encode(PRODUCT).as_bytes(), data);
    }
    let sum = Sha512::new()
        .chain_update(b"keyseal/state/v1\0")
        .chain_update((PRODUCT.len() as u64).to_be_bytes())
        .chain_update(PRODUCT)
        .chain_update(data)
        .finalize();
    let mut signed = data.to_vec();
    signed.extend_from_slice(b"checksum ");
    for b in sum {
        signed.extend_from_slice(format!("{b:02x}").as_bytes());
    }
    signed.push(b'\n');
    if let Ok(state) = State::decode(PRODUCT, &signed) {
        assert_eq!(state.encode(PRODUCT).as_bytes(), &signed[..]);
    }
});
