//! Keyring text (and through it public keys, certificates and options): an
//! accepted keyring writes a text that parses back to the same keyring.
#![no_main]

use keyseal_core::Keyring;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(ring) = text.parse::<Keyring>() else { return };
    let written = ring.to_string();
    let again: Keyring = written.parse().expect("written keyring parses");
    assert_eq!(again, ring);
});
