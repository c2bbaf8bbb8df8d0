//! Checking a webhook from the keyseal issuing service with the
//! organisation's public keyring, no shared secret: the `keyseal-signature`
//! header (docs/FORMAT.md, "Webhook signature").
//!
//! The service also signs every delivery the Standard Webhooks way
//! (`webhook-signature`, HMAC-SHA256 under the endpoint's secret); a
//! receiver may check either. This one needs only what apps already embed:
//! the keyring of `/v1/public/orgs/{org_id}/keyring`.
//!
//! ```
//! # fn receive(keyring: &keyseal::Keyring, headers: &std::collections::HashMap<String, String>, body: &[u8]) -> Result<(), keyseal::webhooks::WebhookError> {
//! let now = std::time::SystemTime::now()
//!     .duration_since(std::time::UNIX_EPOCH)
//!     .map_or(0, |d| d.as_secs());
//! let get = |name: &str| headers.get(name).map(String::as_str).unwrap_or("");
//! keyseal::webhooks::verify(
//!     keyring,
//!     get("webhook-id"),
//!     get("webhook-timestamp"),
//!     get("keyseal-signature"),
//!     body,
//!     now,
//! )?;
//! // Then drop a webhook-id seen before: a delivery may come twice.
//! # Ok(())
//! # }
//! ```

use keyseal_core::{KeyId, Keyring};

/// How far a delivery's timestamp may be from now (5 minutes, as the
/// Standard Webhooks libraries allow): an older delivery replayed is refused.
pub const TOLERANCE_SECS: u64 = 300;

/// Why a webhook was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// A header is missing or not as the format says.
    #[error("the webhook's headers are missing or malformed")]
    Malformed,
    /// The signing key is not in the keyring (another organisation's, or
    /// revoked and left out of it).
    #[error("the webhook is signed by key {0}, which the keyring does not trust")]
    UnknownKey(KeyId),
    /// The key is in the keyring, but its window does not cover the
    /// delivery's time.
    #[error("the webhook is signed by key {0} outside the key's window")]
    KeyNotValid(KeyId),
    /// The signature does not match the id, timestamp and body.
    #[error("the webhook's signature does not match its contents")]
    BadSignature,
    /// The timestamp is more than [`TOLERANCE_SECS`] from now.
    #[error("the webhook's timestamp {timestamp} is too far from now ({now})")]
    Stale {
        /// The delivery's `webhook-timestamp`.
        timestamp: u64,
        /// The receiver's now.
        now: u64,
    },
}

impl WebhookError {
    /// The stable code of the refusal, the same in every keyseal SDK and in
    /// `testdata/vectors/webhooks.json`: `malformed`, `unknown_key`,
    /// `key_not_valid`, `bad_signature` or `stale`.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            WebhookError::Malformed => "malformed",
            WebhookError::UnknownKey(_) => "unknown_key",
            WebhookError::KeyNotValid(_) => "key_not_valid",
            WebhookError::BadSignature => "bad_signature",
            WebhookError::Stale { .. } => "stale",
        }
    }

    /// The key the delivery names, for [`WebhookError::UnknownKey`] and
    /// [`WebhookError::KeyNotValid`].
    #[must_use]
    pub fn key_id(&self) -> Option<KeyId> {
        match self {
            WebhookError::UnknownKey(k) | WebhookError::KeyNotValid(k) => Some(*k),
            _ => None,
        }
    }
}

/// Checks a delivery: its `webhook-id`, `webhook-timestamp` and
/// `keyseal-signature` headers and the raw body, at `now` (unix seconds).
/// Returns the key that signed. The header may hold several signatures
/// separated by spaces; one from a key of `keyring` whose window covers the
/// timestamp must verify (strict Ed25519).
pub fn verify(
    keyring: &Keyring,
    id: &str,
    timestamp: &str,
    signature: &str,
    body: &[u8],
    now: u64,
) -> Result<KeyId, WebhookError> {
    let ts: u64 = (!timestamp.is_empty()
        && timestamp.len() <= 20
        && timestamp.bytes().all(|b| b.is_ascii_digit()))
    .then(|| timestamp.parse().ok())
    .flatten()
    .ok_or(WebhookError::Malformed)?;
    if id.is_empty() || signature.is_empty() {
        return Err(WebhookError::Malformed);
    }
    if ts.abs_diff(now) > TOLERANCE_SECS {
        return Err(WebhookError::Stale { timestamp: ts, now });
    }
    let message = keyseal_core::webhook::signed_message(id, timestamp, body);
    let mut refusal = WebhookError::Malformed;
    for one in signature.split(' ').filter(|s| !s.is_empty()) {
        let mut parts = one.split(',');
        let (Some("v1"), Some(key), Some(sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let mut key_id = [0u8; 8];
        let mut sig_bytes = [0u8; 64];
        if key.len() != 16
            || sig.len() != 128
            || keyseal_core::hex::decode(key, &mut key_id).is_err()
            || keyseal_core::hex::decode(sig, &mut sig_bytes).is_err()
        {
            continue;
        }
        let key_id = KeyId::from_bytes(key_id);
        let Some(trusted) = keyring.get(key_id) else {
            refusal = WebhookError::UnknownKey(key_id);
            continue;
        };
        if !trusted.window_covers(ts) {
            refusal = WebhookError::KeyNotValid(key_id);
            continue;
        }
        if trusted
            .public_key()
            .verify_strict(&message, &sig_bytes)
            .is_ok()
        {
            return Ok(key_id);
        }
        refusal = WebhookError::BadSignature;
    }
    Err(refusal)
}
