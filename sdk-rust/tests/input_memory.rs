//! An armored file costs memory in proportion to its size, however many
//! blocks it holds. Its own test binary, so no other test moves the
//! process's peak memory.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{NOW, Vendor};
use keyseal::keyseal_core::armor;
use keyseal::keyseal_core::license;

/// The process's peak virtual memory (VmPeak), in KiB.
fn peak_vm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmPeak:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn many_small_list_blocks_do_not_each_reserve_the_whole_text() {
    let v = Vendor::new();
    let validator = v.builder(NOW).build().unwrap();
    // 4,000 one-byte REVOCATION LIST blocks: about 350 KB of text.
    let mut text = license::to_armored(&license::issue(&v.key, &v.claims(1), None).unwrap());
    for _ in 0..4_000 {
        armor::write_block(&mut text, armor::REVOCATION_LIST, &[1]).unwrap();
    }
    let before = peak_vm_kib();
    let r = validator.validate(&text).unwrap_err();
    assert_eq!(r.code(), "malformed");
    let grown_kib = peak_vm_kib().saturating_sub(before);
    assert!(
        grown_kib < 64 << 10,
        "a {} KB file raised peak memory by {grown_kib} KiB",
        text.len() / 1000
    );
}
