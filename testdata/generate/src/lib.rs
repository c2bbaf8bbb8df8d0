//! The shared test vectors' JSON, for the program that writes them
//! (`src/main.rs`) and the tests that read them (keyseal-core's and the Rust
//! SDK's `tests/vectors.rs`): one definition of how claims look in
//! `expect`, and the readers every test needs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use keyseal_core::{Claims, DeviceBinding};
use serde_json::{Value, json};

/// The `cases` of `testdata/vectors/<name>`. Panics if the file is missing
/// or not a vector file: these are tests' inputs.
#[must_use]
pub fn cases(name: &str) -> Vec<Value> {
    let path = format!("{}/../vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let doc: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    doc["cases"]
        .as_array()
        .unwrap_or_else(|| panic!("{path} has no `cases` array"))
        .clone()
}

/// Bytes from lower- or upper-case hex. Panics on anything else.
#[must_use]
pub fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd-length hex");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digits"))
        .collect()
}

/// Lower-case hex.
#[must_use]
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Claims as the vectors' `expect.claims` give them.
#[must_use]
pub fn claims_json(c: &Claims<'_>) -> Value {
    let device = match &c.device {
        None => Value::Null,
        Some(DeviceBinding::Exact { .. }) => json!({"kind": "exact"}),
        Some(DeviceBinding::Tolerant { required, digests }) => {
            json!({"kind": "tolerant", "required": required, "components": digests.len()})
        }
    };
    let ext: serde_json::Map<String, Value> = c
        .extensions
        .as_slice()
        .iter()
        .map(|(k, v)| ((*k).to_owned(), json!(v)))
        .collect();
    json!({
        "license_id": c.license_id.to_string(),
        "product": c.product,
        "customer": c.customer,
        "plan": c.plan,
        "issued_at": c.issued_at,
        "not_before": c.not_before,
        "expires_at": c.expires_at,
        "grace_secs": c.grace_secs,
        "device": device,
        "entitlements": c.entitlements.as_slice(),
        "max_version": c.max_version.map(|v| v.to_string()),
        "extensions": ext,
    })
}
