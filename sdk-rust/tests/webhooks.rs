//! `keyseal::webhooks::verify`: a delivery signed as docs/FORMAT.md says
//! ("Webhook signature") verifies with the organisation's keyring, and
//! nothing else does.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use keyseal::webhooks::{TOLERANCE_SECS, WebhookError, verify};
use keyseal::{Keyring, keyseal_core::SigningKey, keyseal_core::TrustedKey};

const NOW: u64 = 1_800_000_000;

fn header(key: &SigningKey, id: &str, ts: &str, body: &[u8]) -> String {
    let mut m = b"keyseal/webhook/v1\0".to_vec();
    m.extend_from_slice(format!("{id}.{ts}.").as_bytes());
    m.extend_from_slice(body);
    format!(
        "v1,{},{}",
        key.key_id(),
        keyseal::keyseal_core::hex::encode(&key.sign_raw(&m))
    )
}

#[test]
fn a_delivery_verifies_with_the_keyring_and_nothing_else_does() {
    let key = SigningKey::from_seed(&[7; 32]).unwrap();
    let other = SigningKey::from_seed(&[8; 32]).unwrap();
    let mut ring = Keyring::new();
    ring.add(TrustedKey::new(key.public_key())).unwrap();
    let body = br#"{"type":"license.revoked","timestamp":"2027-01-15T08:00:00Z","data":{}}"#;
    let ts = NOW.to_string();
    let good = header(&key, "evt_1", &ts, body);
    assert_eq!(
        verify(&ring, "evt_1", &ts, &good, body, NOW),
        Ok(key.key_id())
    );
    // Several signatures: one good one is enough.
    let both = format!("{} {good}", header(&other, "evt_1", &ts, body));
    assert_eq!(
        verify(&ring, "evt_1", &ts, &both, body, NOW),
        Ok(key.key_id())
    );
    // Another body, id or time; another key; a stale or future delivery.
    assert_eq!(
        verify(&ring, "evt_1", &ts, &good, b"{}", NOW),
        Err(WebhookError::BadSignature)
    );
    assert_eq!(
        verify(&ring, "evt_2", &ts, &good, body, NOW),
        Err(WebhookError::BadSignature)
    );
    let later = (NOW + 1).to_string();
    assert_eq!(
        verify(&ring, "evt_1", &later, &good, body, NOW),
        Err(WebhookError::BadSignature)
    );
    assert_eq!(
        verify(
            &ring,
            "evt_1",
            &ts,
            &header(&other, "evt_1", &ts, body),
            body,
            NOW
        ),
        Err(WebhookError::UnknownKey(other.key_id()))
    );
    let late = NOW + TOLERANCE_SECS + 1;
    assert_eq!(
        verify(&ring, "evt_1", &ts, &good, body, late),
        Err(WebhookError::Stale {
            timestamp: NOW,
            now: late
        })
    );
    assert!(verify(&ring, "evt_1", &ts, &good, body, NOW + TOLERANCE_SECS).is_ok());
    // The plain signature (no domain) is refused: it is not what keyseal signs.
    let mut plain = format!("evt_1.{ts}.").into_bytes();
    plain.extend_from_slice(body);
    let undomained = format!(
        "v1,{},{}",
        key.key_id(),
        keyseal::keyseal_core::hex::encode(&key.sign_raw(&plain))
    );
    assert_eq!(
        verify(&ring, "evt_1", &ts, &undomained, body, NOW),
        Err(WebhookError::BadSignature)
    );
    // A key outside its window.
    let mut narrow = Keyring::new();
    narrow
        .add(TrustedKey::new(key.public_key()).valid_until(NOW - 10))
        .unwrap();
    assert_eq!(
        verify(&narrow, "evt_1", &ts, &good, body, NOW),
        Err(WebhookError::KeyNotValid(key.key_id()))
    );
    // Malformed headers: refused, never a panic.
    for (id, t, sig) in [
        ("", ts.as_str(), good.as_str()),
        ("evt_1", "", good.as_str()),
        ("evt_1", "-5", good.as_str()),
        ("evt_1", "99999999999999999999999", good.as_str()),
        ("evt_1", ts.as_str(), ""),
        ("evt_1", ts.as_str(), "v1,zz,zz"),
        ("evt_1", ts.as_str(), "v2,0011223344556677,00"),
        ("evt_1", ts.as_str(), "v1,0011223344556677"),
    ] {
        assert_eq!(
            verify(&ring, id, t, sig, body, NOW),
            Err(WebhookError::Malformed),
            "{id} {t} {sig}"
        );
    }
}

/// The shared vectors (`testdata/vectors/webhooks.json`), as every
/// implementation of docs/FORMAT.md checks them.
#[test]
fn the_shared_webhook_vectors() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../testdata/vectors/webhooks.json"
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    assert!(cases.len() >= 20);
    for c in cases {
        let ring: Keyring = c["keyring"].as_str().unwrap().parse().unwrap();
        let got = verify(
            &ring,
            c["id"].as_str().unwrap(),
            c["timestamp"].as_str().unwrap(),
            c["signature"].as_str().unwrap(),
            c["body"].as_str().unwrap().as_bytes(),
            c["now"].as_u64().unwrap(),
        );
        let want = &c["expect"];
        let name = &c["name"];
        match got {
            Ok(k) => {
                assert_eq!(want["valid"], true, "{name}: valid, want {want}");
                assert_eq!(want["key_id"], k.to_string(), "{name}");
            }
            Err(e) => {
                assert_eq!(want["error"], e.code(), "{name}: {e}");
                // The key named for exactly the refusals about a key, and
                // it is one the signature header names.
                let about_key = matches!(e.code(), "unknown_key" | "key_not_valid");
                assert_eq!(e.key_id().is_some(), about_key, "{name}");
                if let Some(k) = e.key_id() {
                    assert!(
                        c["signature"].as_str().unwrap().contains(&k.to_string()),
                        "{name}"
                    );
                }
            }
        }
    }
}
