//! Binary license decode against a keyring holding one fixed key: accepted
//! claims re-encode to the same body, and verify never panics.
#![no_main]

use keyseal_core::{Expectations, Fingerprint, Keyring, SigningKey, TrustedKey, UnverifiedLicense};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(lic) = UnverifiedLicense::from_bytes(data) else { return };
    let claims = lic.dangerous_unverified_claims();
    let mut buf = [0u8; 4096];
    let body = claims.encode(&mut buf).expect("decoded claims encode");
    assert_eq!(&data[9..data.len() - 64], &body[..], "claims not canonical");
    let key = SigningKey::from_seed(&[1; 32]).expect("fixed seed");
    let mut ring = Keyring::new();
    ring.add(TrustedKey::new(key.public_key())).expect("room");
    let fp = Fingerprint::from_components(&[[7; 16]]).expect("one component");
    let _ = lic.verify(&ring, &Expectations::new(claims.product, claims.issued_at).device(&fp));
});
