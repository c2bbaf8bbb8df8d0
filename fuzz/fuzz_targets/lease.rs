//! Leases, text then binary: decoding never panics, an accepted lease's
//! terms (and a relayed lease's allotment) re-encode to the same body, and
//! verifying it for a fixed license never panics.
#![no_main]

use keyseal_core::allotment;
use keyseal_core::lease::{self, LEASE_BUF_LEN};
use keyseal_core::{
    Claims, Expectations, Fingerprint, Keyring, LicenseId, SigningKey, TrustedKey, UnverifiedLease,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut buf = [0u8; LEASE_BUF_LEN];
    let parsed = match std::str::from_utf8(data) {
        Ok(text) if text.starts_with("kslease") => UnverifiedLease::from_text(text, &mut buf),
        _ => UnverifiedLease::from_bytes(data),
    };
    let Ok(l) = parsed else { return };
    let t = *l.dangerous_unverified_terms();
    assert!(t.issued_at <= t.renew_at && t.renew_at <= t.expires_at);
    let key = SigningKey::from_seed(&[1; 32]).expect("fixed seed");
    let fp = Fingerprint::from_components(&[[7; 16]]).expect("one component");
    // Signing the decoded terms again gives an envelope of the same length.
    let again = lease::issue(&key, &t, &fp).expect("decoded terms sign");
    if !std::str::from_utf8(data).is_ok_and(|s| s.starts_with("kslease")) {
        assert_eq!(again.len(), data.len(), "terms not canonical");
    }
    if let Some(a) = l.allotment() {
        let at = *a.dangerous_unverified_terms();
        assert!(at.seats >= 1 && at.issued_at <= at.expires_at);
        let signed = allotment::issue(&key, &at).expect("decoded allotment terms sign");
        assert!(signed.len() <= allotment::MAX_ALLOTMENT_LEN);
    }
    let mut ring = Keyring::new();
    ring.add(TrustedKey::new(key.public_key())).expect("room");
    let c = Claims::new(LicenseId::from_bytes([3; 16]), "app", "cus_1", "pro", 1);
    let _ = l.verify(&ring, c.license_id, &Expectations::new(c.product, t.issued_at).device(&fp));
});
