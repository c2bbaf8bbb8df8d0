//! `PrecomputedKey::verify_strict` against `PublicKey::verify_strict`: the
//! same answer for valid signatures, tampered ones, and arbitrary `R` and
//! `S` (non-canonical scalars and small-order points included). The
//! conformance vectors run both paths too (`ed25519_conformance.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use keyseal_core::{Keyring, PrecomputedKey, PublicKey, SigningKey, TrustedKey};
use proptest::prelude::*;

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
    assert!(format!("{ring:?}").contains("2 precomputed"), "{ring:?}");
    paused.stop_precomputing();
    paused.add(TrustedKey::new(later.public_key())).unwrap();
    assert!(!paused.is_precomputed());
    assert!(
        format!("{paused:?}").contains("1 precomputed"),
        "{paused:?}"
    );
}
