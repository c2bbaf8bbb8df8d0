//! Revocation lists: raw input, and the input re-signed as a list body so the
//! body decoder is reached. An accepted list is sorted and answers lookups of
//! its own ids.
#![no_main]

use keyseal_core::{Keyring, RevocationCheck, RevocationList, SigningKey, TrustedKey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = SigningKey::from_seed(&[2; 32]).expect("fixed seed");
    let mut ring = Keyring::new();
    ring.add(TrustedKey::new(key.public_key())).expect("room");
    let _ = RevocationList::verify(data, &ring);
    let mut bytes = vec![1u8];
    bytes.extend_from_slice(&key.key_id().to_bytes());
    bytes.extend_from_slice(data);
    let mut msg = b"keyseal/revocation-list/v1\0".to_vec();
    msg.extend_from_slice(&bytes);
    bytes.extend_from_slice(&key.sign_raw(&msg));
    if let Ok(list) = RevocationList::verify(&bytes, &ring) {
        let ids: Vec<_> = list.revoked_licenses().collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        assert!(ids.iter().all(|id| list.is_license_revoked(*id)));
        assert!(list.revoked_keys().all(|k| list.is_key_revoked(k)));
    }
});
