//! Text key decode: anything accepted re-encodes to exactly the input, and
//! verification returns a typed verdict, never a panic.
#![no_main]

use keyseal_core::license::{self, MAX_LICENSE_LEN};
use keyseal_core::{Expectations, Keyring, UnverifiedLicense};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut buf = [0u8; MAX_LICENSE_LEN];
    let Ok(bytes) = license::decode_text(text, &mut buf) else { return };
    assert_eq!(license::to_text(bytes), text, "accepted text is not canonical");
    if let Ok(lic) = UnverifiedLicense::from_bytes(bytes) {
        let ring = Keyring::new();
        let verdict = lic.verify(&ring, &Expectations::new("acme-cad", 1_800_000_000));
        assert_eq!(verdict.err().map(|e| e.code()), Some("unknown_key"));
    }
});
