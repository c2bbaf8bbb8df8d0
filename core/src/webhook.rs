//! What the issuing service signs for a webhook delivery with the
//! organisation's key (docs/FORMAT.md, "Webhook signature"): the domain,
//! then `id.timestamp.body` as the Standard Webhooks HMAC covers it. The
//! service signs it (keyseal-issuer) and receivers check it
//! (`keyseal::webhooks::verify`) from this one definition.

use alloc::vec::Vec;

/// The domain of a delivery's Ed25519 signature.
pub const DOMAIN: &[u8] = b"keyseal/webhook/v1\0";

/// `DOMAIN || id || "." || timestamp || "." || body`, with `id` and
/// `timestamp` the `webhook-id` and `webhook-timestamp` headers' text.
#[must_use]
pub fn signed_message(id: &str, timestamp: &str, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(DOMAIN.len() + id.len() + timestamp.len() + 2 + body.len());
    m.extend_from_slice(DOMAIN);
    m.extend_from_slice(id.as_bytes());
    m.push(b'.');
    m.extend_from_slice(timestamp.as_bytes());
    m.push(b'.');
    m.extend_from_slice(body);
    m
}
