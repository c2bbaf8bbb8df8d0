//! Third-party Ed25519 conformance vectors (`testdata/ed25519/`, see its
//! README) through the product's own strict verifier: `PublicKey::from_bytes`
//! (which refuses invalid and weak keys) then `PublicKey::verify_strict`, and
//! `PrecomputedKey::verify_strict` (the tables validators verify through),
//! which must agree on every case.
//!
//! Each suite runs every case, collects every mismatch and fails listing them
//! all; each also checks how many cases it ran, so a file that fails to load
//! (or loads empty) fails the test instead of passing vacuously.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::path::PathBuf;

use keyseal_core::{PrecomputedKey, PublicKey, SigningKey};
use serde_json::Value;

fn load(name: &str) -> Value {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "..",
        "testdata",
        "ed25519",
        name,
    ]
    .iter()
    .collect();
    let text =
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

/// Decodes hex (either case); `None` on odd length or a non-hex digit.
fn hex(s: &str) -> Option<Vec<u8>> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let s = s.as_bytes();
    if !s.len().is_multiple_of(2) {
        return None;
    }
    s.chunks_exact(2)
        .map(|p| Some((nibble(p[0])? << 4) | nibble(p[1])?))
        .collect()
}

/// A field that must be present and valid hex: the vector file is broken otherwise.
fn hex_field(case: &Value, field: &str) -> Vec<u8> {
    let s = case[field]
        .as_str()
        .unwrap_or_else(|| panic!("missing string field {field} in {case}"));
    hex(s).unwrap_or_else(|| panic!("field {field} is not hex in {case}"))
}

/// The product's verdict: key loaded by `PublicKey::from_bytes` (a refusal
/// is a rejection), then `verify_strict`. A key or signature of the wrong
/// length is a rejection too.
fn accepts(public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    let Ok(public_key) = <&[u8; 32]>::try_from(public_key) else {
        return false;
    };
    let Ok(signature) = <&[u8; 64]>::try_from(signature) else {
        return false;
    };
    let Ok(key) = PublicKey::from_bytes(public_key) else {
        return false;
    };
    let plain = key.verify_strict(message, signature).is_ok();
    // Validators verify through precomputed tables: the same answer, always.
    let precomputed = PrecomputedKey::new(&key)
        .verify_strict(message, signature)
        .is_ok();
    assert_eq!(
        plain,
        precomputed,
        "the two verification paths disagree on key {}, signature {}",
        to_hex(public_key),
        to_hex(signature)
    );
    plain
}

fn verdict(accepted: bool) -> &'static str {
    if accepted { "accepted" } else { "rejected" }
}

fn assert_no_mismatches(suite: &str, ran: usize, expected_cases: usize, mismatches: &[String]) {
    assert!(
        mismatches.is_empty(),
        "{suite}: {} of {ran} cases gave the wrong answer:\n  {}",
        mismatches.len(),
        mismatches.join("\n  ")
    );
    assert_eq!(
        ran, expected_cases,
        "{suite}: ran {ran} cases, expected {expected_cases}"
    );
}

#[test]
fn wycheproof() {
    let file = load("wycheproof_ed25519_test.json");
    let declared = file["numberOfTests"].as_u64().expect("numberOfTests") as usize;
    let mut ran = 0;
    let mut mismatches = Vec::new();
    for group in file["testGroups"].as_array().expect("testGroups") {
        let public_key = hex_field(&group["publicKey"], "pk");
        for case in group["tests"].as_array().expect("tests") {
            let id = &case["tcId"];
            let expected = match case["result"].as_str() {
                Some("valid") => true,
                Some("invalid") => false,
                other => panic!("tcId {id}: unexpected result {other:?}"),
            };
            let got = accepts(
                &public_key,
                &hex_field(case, "msg"),
                &hex_field(case, "sig"),
            );
            if got != expected {
                mismatches.push(format!(
                    "tcId {id} ({}, flags {}): {}, expected {}",
                    case["comment"],
                    case["flags"],
                    verdict(got),
                    verdict(expected)
                ));
            }
            ran += 1;
        }
    }
    assert_eq!(
        declared, 151,
        "the vector file changed: review the expectations"
    );
    assert_no_mismatches("wycheproof", ran, declared, &mismatches);
}

#[test]
fn speccheck() {
    let file = load("speccheck_cases.json");
    let mut ran = 0;
    let mut mismatches = Vec::new();
    for (number, case) in file.as_array().expect("array of cases").iter().enumerate() {
        // "Taming the many EdDSAs": under strict verification only case 3
        // (a valid signature with a mixed-order A and R) verifies.
        let expected = number == 3;
        let got = accepts(
            &hex_field(case, "pub_key"),
            &hex_field(case, "message"),
            &hex_field(case, "signature"),
        );
        if got != expected {
            mismatches.push(format!(
                "case {number}: {}, expected {}",
                verdict(got),
                verdict(expected)
            ));
        }
        ran += 1;
    }
    assert_no_mismatches("speccheck", ran, 12, &mismatches);
}

#[test]
fn cctv() {
    const TOLERATED: &[&str] = &["low_order_component_A", "low_order_component_R"];
    let file = load("cctv_ed25519vectors.json");
    let mut ran = 0;
    let mut mismatches = Vec::new();
    for case in file.as_array().expect("array of cases") {
        let number = &case["number"];
        // `flags` is null for the one plain valid case.
        let flags: Vec<&str> = match &case["flags"] {
            Value::Null => Vec::new(),
            Value::Array(flags) => flags
                .iter()
                .map(|f| f.as_str().expect("flag string"))
                .collect(),
            other => panic!("case {number}: unexpected flags {other}"),
        };
        let expected = flags.iter().all(|f| TOLERATED.contains(f));
        let msg = case["msg"]
            .as_str()
            .unwrap_or_else(|| panic!("case {number}: missing msg"));
        let got = accepts(
            &hex_field(case, "key"),
            msg.as_bytes(),
            &hex_field(case, "sig"),
        );
        if got != expected {
            mismatches.push(format!(
                "case {number} (flags {flags:?}): {}, expected {}",
                verdict(got),
                verdict(expected)
            ));
        }
        ran += 1;
    }
    assert_no_mismatches("cctv", ran, 914, &mismatches);
}

#[test]
fn rfc8032() {
    let file = load("rfc8032_7.1_ed25519.json");
    let mut ran = 0;
    let mut mismatches = Vec::new();
    for case in file["tests"].as_array().expect("tests") {
        let name = case["name"].as_str().expect("name");
        let seed: [u8; 32] = hex_field(case, "secret_key")
            .try_into()
            .expect("32-byte seed");
        let public_key = hex_field(case, "public_key");
        let message = hex_field(case, "message");
        let signature = hex_field(case, "signature");
        if let Some(len) = case["message_len"].as_u64() {
            assert_eq!(
                message.len() as u64,
                len,
                "{name}: message_len does not match the message"
            );
        }
        if !accepts(&public_key, &message, &signature) {
            mismatches.push(format!("{name}: rejected, expected accepted"));
        }
        match SigningKey::from_seed(&seed) {
            Ok(key) => {
                if key.public_key().to_bytes()[..] != public_key[..] {
                    mismatches.push(format!("{name}: seed derives another public key"));
                }
                if key.sign_raw(&message)[..] != signature[..] {
                    mismatches.push(format!("{name}: signing does not reproduce the signature"));
                }
            }
            Err(e) => mismatches.push(format!("{name}: seed refused: {e}")),
        }
        ran += 1;
    }
    assert_no_mismatches("rfc8032", ran, 5, &mismatches);
}

/// RFC 8032 section 5.1.3 decoding, which the third-party suites only probe
/// with small-order points: every encoding with y >= p (y = p + k, k < 19,
/// either sign bit) and every x = 0 with the sign bit set (y = 1 and y = -1)
/// must be refused as a key, whatever point it would decode to. (The two
/// canonical encodings among them, y = 1 and y = -1, are small-order.)
#[test]
fn rfc8032_non_canonical_key_encodings() {
    // p = 2^255 - 19, little-endian.
    let mut p = [0xff; 32];
    p[0] = 0xed;
    p[31] = 0x7f;
    let mut encodings = Vec::new();
    for k in 0..19u8 {
        let mut y = p;
        y[0] += k;
        encodings.push(y);
    }
    let mut one = [0u8; 32];
    one[0] = 1;
    let mut minus_one = p;
    minus_one[0] -= 1;
    encodings.push(one);
    encodings.push(minus_one);
    let mut ran = 0;
    let mut mismatches = Vec::new();
    for mut bytes in encodings {
        for sign in [0, 0x80] {
            bytes[31] = (bytes[31] & 0x7f) | sign;
            if PublicKey::from_bytes(&bytes).is_ok() {
                mismatches.push(format!(
                    "key {}: accepted, expected rejected",
                    to_hex(&bytes)
                ));
            }
            ran += 1;
        }
    }
    assert_no_mismatches("rfc8032 key decoding", ran, 42, &mismatches);
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
