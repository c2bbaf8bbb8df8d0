//! The SDK's state file: raw input, and the input as a body with the checksum
//! the docs define appended, so the field parser is reached. Anything
//! accepted is exactly what `State::encode` writes, or (a version 1 state,
//! still read) decodes to the same state as what it writes.
#![no_main]

use keyseal::State;
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha512};

const PRODUCT: &str = "acme-cad";

/// `text` was accepted as `state`: it is what `encode` writes, or a version
/// 1 text whose re-encoding (version 2) reads back as the same state.
fn check(state: State, text: &[u8]) {
    let again = state.encode(PRODUCT);
    if text.starts_with(b"keyseal-state 1\n") {
        assert_eq!(State::decode(PRODUCT, again.as_bytes()), Ok(state));
    } else {
        assert_eq!(again.as_bytes(), text);
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(state) = State::decode(PRODUCT, data) {
        check(state, data);
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
        check(state, &signed);
    }
});
