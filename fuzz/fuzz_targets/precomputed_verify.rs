//! Verification through precomputed tables gives exactly the answer of the
//! plain `verify_strict`, for any key, message and signature: arbitrary
//! bytes, and valid signatures with bits flipped.
#![no_main]

use std::cell::RefCell;
use std::collections::HashMap;

use keyseal_core::{PrecomputedKey, PublicKey, SigningKey};
use libfuzzer_sys::fuzz_target;

thread_local! {
    // Building tables costs about 12 verifications: keep the last few keys'.
    static TABLES: RefCell<HashMap<[u8; 32], PrecomputedKey>> = RefCell::new(HashMap::new());
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let Some((key_bytes, rest)) = rest.split_first_chunk::<32>() else { return };
    let Some((sig_bytes, msg)) = rest.split_first_chunk::<64>() else { return };
    let (key, sig) = if mode & 1 == 0 {
        // The bytes as a key (most are not points, or are refused) and as a signature.
        let Ok(key) = PublicKey::from_bytes(key_bytes) else { return };
        (key, *sig_bytes)
    } else {
        // A real signature by one of eight keys (their tables stay cached),
        // with the input's bits flipped (all zero: the signature unchanged,
        // which must verify).
        let Ok(signer) = SigningKey::from_seed(&[key_bytes[0] % 8; 32]) else { return };
        let mut sig = signer.sign_raw(msg);
        for (s, flip) in sig.iter_mut().zip(sig_bytes) {
            *s ^= flip;
        }
        if sig_bytes.iter().all(|&b| b == 0) {
            assert!(signer.public_key().verify_strict(msg, &sig).is_ok());
        }
        (signer.public_key(), sig)
    };
    let plain = key.verify_strict(msg, &sig);
    let fast = TABLES.with(|t| {
        let mut t = t.borrow_mut();
        if t.len() >= 16 {
            t.clear();
        }
        t.entry(key.to_bytes())
            .or_insert_with(|| PrecomputedKey::new(&key))
            .verify_strict(msg, &sig)
    });
    assert_eq!(plain, fast, "key {key}, signature {sig:02x?}");
});
