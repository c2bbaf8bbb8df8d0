//! `PrecomputedKey::verify_strict` against `PublicKey::verify_strict`: the
//! same answer for valid signatures, tampered ones, and arbitrary `R` and
//! `S` (non-canonical scalars and small-order points included). The
//! conformance vectors run both paths too (`ed25519_conformance.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use keyseal_core::license::{self, MAX_LICENSE_LEN};
use keyseal_core::{
    Claims, Expectations, Keyring, LicenseId, PrecomputedKey, PublicKey, SigningKey, TrustedKey,
};
use proptest::prelude::*;
use sha2::{Digest, Sha512};

/// The group order L, little-endian.
const L: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

/// Encodings of small-order points: the identity, the point of order 2,
/// an order-4 point and an order-8 point, and non-canonical forms
/// (`y + p`, and `x = 0` with the sign bit set).
fn small_order_encodings() -> Vec<[u8; 32]> {
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let mut order2 = [0xffu8; 32];
    order2[0] = 0xec;
    order2[31] = 0x7f;
    let order4 = [0u8; 32];
    let order8 = [
        0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98,
        0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53,
        0xfc, 0x05,
    ];
    let mut identity_non_canonical = [0xffu8; 32];
    identity_non_canonical[0] = 0xee;
    identity_non_canonical[31] = 0x7f;
    let mut identity_negative_zero = identity;
    identity_negative_zero[31] |= 0x80;
    vec![
        identity,
        order2,
        order4,
        order8,
        identity_non_canonical,
        identity_negative_zero,
    ]
}

fn add_le(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut carry = 0u16;
    for i in 0..32 {
        let v = u16::from(a[i]) + u16::from(b[i]) + carry;
        out[i] = v as u8;
        carry = v >> 8;
    }
    out
}

fn same_answer(key: &PublicKey, table: &PrecomputedKey, msg: &[u8], sig: &[u8; 64]) -> bool {
    let plain = key.verify_strict(msg, sig);
    let fast = table.verify_strict(msg, sig);
    assert_eq!(plain, fast, "paths disagree on {sig:02x?}");
    plain.is_ok()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn same_answers_for_valid_tampered_and_forged_signatures(
        seed in any::<[u8; 32]>(),
        msg in proptest::collection::vec(any::<u8>(), 0..300),
        flip in any::<(usize, u8)>(),
        r in any::<[u8; 32]>(),
        s in any::<[u8; 32]>(),
        small in 0usize..6,
    ) {
        let signer = SigningKey::from_seed(&seed).unwrap();
        let key = signer.public_key();
        let table = PrecomputedKey::new(&key);
        let sig = signer.sign_raw(&msg);
        prop_assert!(same_answer(&key, &table, &msg, &sig));

        // One bit flipped in the signature or the message.
        let (at, bit) = flip;
        let mut tampered_sig = sig;
        let mut tampered_msg = msg.clone();
        let at = at % (64 + msg.len());
        if at < 64 {
            tampered_sig[at] ^= 1 << (bit % 8);
        } else {
            tampered_msg[at - 64] ^= 1 << (bit % 8);
        }
        prop_assert!(!same_answer(&key, &table, &tampered_msg, &tampered_sig));

        // S + L: the same scalar, not canonical.
        let mut malleated = sig;
        let s_plus_l = add_le(sig[32..].try_into().unwrap(), &L);
        malleated[32..].copy_from_slice(&s_plus_l);
        prop_assert!(!same_answer(&key, &table, &msg, &malleated));

        // Arbitrary R and S, and small-order R with the real S.
        let mut forged = [0u8; 64];
        forged[..32].copy_from_slice(&r);
        forged[32..].copy_from_slice(&s);
        same_answer(&key, &table, &msg, &forged);
        let mut small_r = sig;
        small_r[..32].copy_from_slice(&small_order_encodings()[small]);
        prop_assert!(!same_answer(&key, &table, &msg, &small_r));
    }
}

/// The secret scalar of an Ed25519 seed (RFC 8032: clamped hash).
fn secret_scalar(seed: &[u8; 32]) -> Scalar {
    let h = Sha512::digest(seed);
    let mut a = [0u8; 32];
    a.copy_from_slice(&h[..32]);
    a[0] &= 248;
    a[31] &= 127;
    a[31] |= 64;
    Scalar::from_bytes_mod_order(a)
}

fn challenge(r: &[u8; 32], key: &[u8; 32], msg: &[u8]) -> Scalar {
    let h = Sha512::new()
        .chain_update(r)
        .chain_update(key)
        .chain_update(msg);
    Scalar::from_bytes_mod_order_wide(&h.finalize().into())
}

fn signature(r: &[u8; 32], s: &Scalar) -> [u8; 64] {
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(r);
    sig[32..].copy_from_slice(s.as_bytes());
    sig
}

/// `R` = the identity and `S = k * a`: then `[S]B - [k]A` is the identity,
/// whose encoding is exactly `R`. Only the small-order check refuses it.
#[test]
fn a_signature_whose_r_is_the_identity_is_refused_by_both_paths() {
    for i in 0..8u8 {
        let seed = [i + 1; 32];
        let key = SigningKey::from_seed(&seed).unwrap().public_key();
        let a = secret_scalar(&seed);
        assert_eq!(
            (ED25519_BASEPOINT_POINT * a).compress().to_bytes(),
            key.to_bytes()
        );
        let msg = [i; 40];
        let r = small_order_encodings()[0];
        let s = challenge(&r, &key.to_bytes(), &msg) * a;
        let sig = signature(&r, &s);
        assert!(!same_answer(&key, &PrecomputedKey::new(&key), &msg, &sig));
    }
}

/// A key with a torsion component (`A + T`, `T` of order 8) is not small
/// order, so it loads. A signature `(R, r + k * a)` satisfies the
/// cofactorless equation exactly when `[k]T` vanishes, that is when 8
/// divides the integer `k`: both paths must agree on which, which holds
/// them to the same `k`, not just the same `k mod L`.
#[test]
fn mixed_order_keys_get_the_same_answers() {
    let t = CompressedEdwardsY(small_order_encodings()[3])
        .decompress()
        .unwrap();
    assert!(!t.is_torsion_free() && t.is_small_order());
    let seed = [0x42; 32];
    let a = secret_scalar(&seed);
    let mixed = ED25519_BASEPOINT_POINT * a + t;
    let key = PublicKey::from_bytes(&mixed.compress().to_bytes()).unwrap();
    let table = PrecomputedKey::new(&key);
    let msg = b"mixed-order key";
    let (mut accepted, mut refused) = (0, 0);
    for i in 0..64u64 {
        let r_scalar = Scalar::from(1_000 + i);
        let r: EdwardsPoint = ED25519_BASEPOINT_POINT * r_scalar;
        let r = r.compress().to_bytes();
        let k = challenge(&r, &key.to_bytes(), msg);
        let sig = signature(&r, &(r_scalar + k * a));
        let ok = same_answer(&key, &table, msg, &sig);
        assert_eq!(ok, k.as_bytes()[0].is_multiple_of(8), "k {k:?}");
        if ok { accepted += 1 } else { refused += 1 }
    }
    assert!(
        accepted > 0 && refused > 0,
        "{accepted} accepted, {refused} refused"
    );
}

#[test]
fn a_precomputed_keyring_builds_tables_for_keys_added_later() {
    let first = SigningKey::from_seed(&[1; 32]).unwrap();
    let later = SigningKey::from_seed(&[2; 32]).unwrap();
    let mut ring = Keyring::new();
    ring.add(TrustedKey::new(first.public_key())).unwrap();
    let plain = ring.clone();
    ring.precompute();
    assert!(ring.is_precomputed() && !plain.is_precomputed());
    // A cache only: the same trust either way.
    assert_eq!(ring, plain);
    let mut paused = ring.clone();
    ring.add(TrustedKey::new(later.public_key())).unwrap();
    assert!(
        format!("{ring:?}").contains("keys: 2, basepoint: true"),
        "{ring:?}"
    );
    paused.stop_precomputing();
    paused.add(TrustedKey::new(later.public_key())).unwrap();
    assert!(!paused.is_precomputed());
    assert!(
        format!("{paused:?}").contains("keys: 1, basepoint: true"),
        "{paused:?}"
    );

    // A license by the later key verifies through its table (ring) and
    // without one (paused); a forged one is refused by both.
    let claims = Claims::new(
        LicenseId::from_bytes([7; 16]),
        "acme-cad",
        "cus_1",
        "pro",
        100,
    );
    let bytes = license::issue(&later, &claims, None).unwrap();
    let mut forged = bytes.clone();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    let exp = Expectations::new("acme-cad", 200);
    for keyring in [&ring, &paused] {
        let mut buf = [0u8; MAX_LICENSE_LEN];
        let text = license::to_text(&bytes);
        assert!(license::verify_text(&text, &mut buf, keyring, &exp).is_ok());
        let text = license::to_text(&forged);
        assert_eq!(
            license::verify_text(&text, &mut buf, keyring, &exp).err(),
            Some(keyseal_core::Error::BadSignature)
        );
    }
}

/// With no issuing key there is nothing to verify licenses with: no tables,
/// not even the basepoint's.
#[test]
fn a_keyring_without_issuing_keys_builds_no_tables() {
    let mut ring = Keyring::new();
    ring.add_root(SigningKey::from_seed(&[3; 32]).unwrap().public_key())
        .unwrap();
    ring.precompute();
    assert!(
        format!("{ring:?}").contains("keys: 0, basepoint: false"),
        "{ring:?}"
    );
}
