//! The selling side's parsers: a Stripe event and its `Stripe-Signature`
//! header (`keyseal_issuer::payments::verify_stripe`, then what the event
//! asks for), and the `keyseal-signature` a webhook receiver checks
//! (`keyseal::webhooks::verify`). The first line of the input is the
//! header, the rest the body. Never a panic; an event that verifies under a
//! secret verifies with the signature made for it.
#![no_main]

use keyseal::webhooks;
use keyseal_core::{Keyring, SigningKey, TrustedKey};
use keyseal_issuer::payments::{action, event_head, stripe_v1, verify_stripe};
use libfuzzer_sys::fuzz_target;

const NOW: u64 = 1_800_000_000;
const SECRET: &str = "whsec_fuzz_0123456789";

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|b| *b == b'\n').unwrap_or(data.len());
    let (head, body) = (&data[..split], data.get(split + 1..).unwrap_or(&[]));
    let header = std::str::from_utf8(head).ok();
    if let Ok(event) = verify_stripe(header, body, &[SECRET], NOW) {
        let _ = event_head(&event);
        let _ = action(&event);
    }
    if let Ok(text) = std::str::from_utf8(body) {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(text) {
            let _ = event_head(&v);
            let _ = action(&v);
        }
        // Signed as Stripe signs: accepted when it is a JSON object event.
        let good = format!("t={NOW},v1={}", stripe_v1(SECRET, i128::from(NOW), text));
        let verdict = verify_stripe(Some(&good), body, &[SECRET], NOW);
        let object = serde_json::from_str::<serde_json::Value>(text)
            .is_ok_and(|v| v.is_object() && v.get("object").and_then(|o| o.as_str()) != Some("v2.core.event"));
        assert_eq!(verdict.is_ok(), object, "a correctly signed event");
    }
    let key = SigningKey::from_seed(&[9; 32]).expect("seed");
    let mut ring = Keyring::new();
    let _ = ring.add(TrustedKey::new(key.public_key()));
    if let Some(h) = header {
        let mut parts = h.splitn(3, '|');
        let (id, ts, sig) = (
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
        );
        let _ = webhooks::verify(&ring, id, ts, sig, body, NOW);
    }
});
