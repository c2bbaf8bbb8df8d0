//! Claims behind a valid signature: the input is signed as a license body by
//! a trusted key, so decoding and every check past the signature are reached.
//! Anything that verifies has claims that re-encode to the input.
#![no_main]

use keyseal_core::{Expectations, Fingerprint, Keyring, SigningKey, TrustedKey, UnverifiedLicense};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = SigningKey::from_seed(&[1; 32]).expect("fixed seed");
    let mut ring = Keyring::new();
    ring.add(TrustedKey::new(key.public_key())).expect("room");
    let mut bytes = vec![1u8];
    bytes.extend_from_slice(&key.key_id().to_bytes());
    bytes.extend_from_slice(data);
    let mut msg = b"keyseal/license/v1\0".to_vec();
    msg.extend_from_slice(&bytes);
    bytes.extend_from_slice(&key.sign_raw(&msg));
    let Ok(lic) = UnverifiedLicense::from_bytes(&bytes) else { return };
    let c = lic.dangerous_unverified_claims();
    let fp = Fingerprint::from_components(&[[7; 16]]).expect("one component");
    for now in [0, c.issued_at, u64::MAX] {
        match lic.verify(&ring, &Expectations::new(c.product, now).device(&fp).leeway(u64::MAX / 2)) {
            Ok(v) => {
                let mut buf = [0u8; 4096];
                assert_eq!(v.claims().encode(&mut buf).expect("encodes"), data);
            }
            Err(e) => assert!(!e.code().is_empty()),
        }
    }
});
