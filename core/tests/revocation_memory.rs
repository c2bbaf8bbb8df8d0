//! A forged revocation list costs the verifier about its own size in memory:
//! its ids are stored only once the signature has verified. Its own test
//! binary, so no other test moves the process's peak memory.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use keyseal_core::revocation::RevocationList;
use keyseal_core::{Error, Keyring, SigningKey, TrustedKey};

/// The process's peak resident memory (VmHWM), in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_forged_list_is_refused_before_its_ids_are_stored() {
    let key = SigningKey::from_seed(&[3; 32]).unwrap();
    let mut ring = Keyring::new();
    ring.add(TrustedKey::new(key.public_key())).unwrap();
    // 8 Mi revoked license ids of one byte each: 8 MiB of list, 128 MiB as u128s.
    const N: u32 = 8 << 20;
    let mut bytes = vec![1u8];
    bytes.extend_from_slice(&key.key_id().to_bytes());
    bytes.extend_from_slice(&[1, 0, 0, 0]); // sequence, issued at, next update, no keys
    let mut n = N;
    while n >= 0x80 {
        bytes.push((n as u8) | 0x80);
        n >>= 7;
    }
    bytes.push(n as u8);
    bytes.resize(bytes.len() + N as usize, 0);
    bytes.extend_from_slice(&[0; 64]); // not a signature
    let before = peak_rss_kib();
    assert_eq!(
        RevocationList::verify(&bytes, &ring),
        Err(Error::BadSignature)
    );
    let grown_kib = peak_rss_kib().saturating_sub(before);
    assert!(
        grown_kib < 48 << 10,
        "verifying a forged 8 MiB list raised peak memory by {grown_kib} KiB"
    );
}
