//! Outgoing webhooks: an organisation's endpoints, the events sent to them,
//! and how a delivery is signed and retried.
//!
//! - **The outbox.** An event is written by the transaction that made the
//!   change it announces: [`crate::store::WriteTx`]'s commit turns each
//!   audit entry of a kind an endpoint listens to ([`event_type`]) into an
//!   event row and one delivery row per endpoint. So an event exists
//!   exactly when its change committed, and a crash loses none.
//! - **Order.** An endpoint's deliveries go out one at a time, oldest first
//!   (the ledger-wide audit order, which is commit order), each only after
//!   the one before it was accepted or given up on. One replica delivers
//!   to an endpoint at a time: it claims the endpoint in the ledger for a
//!   while ([`CLAIM_SECS`] past the request timeout), renewed on each
//!   delivery; another replica takes over only once a claim runs out.
//! - **At least once.** A delivery is marked sent once the endpoint
//!   answered 2xx; a replica sends a batch of an endpoint's deliveries in
//!   order and records them in one transaction. A replica that dies between
//!   the endpoint's answers and that record leaves them to be sent again,
//!   with the same `webhook-id`: receivers drop an id they have seen (as
//!   the Standard Webhooks specification asks).
//! - **Retries.** A delivery not answered 2xx is tried again after
//!   [`RETRY_SCHEDULE`] (5 s, then up to a day apart: 11 attempts over
//!   4 days). When they run out, the delivery is marked failed and the
//!   endpoint is disabled (`webhook_endpoint.disabled` goes to the
//!   organisation's other endpoints, and the audit log records it);
//!   enabling it again resumes its queue, and a replay sends the failed
//!   one again.
//! - **Signatures.** Each request carries the headers of the Standard
//!   Webhooks specification: `webhook-id` (the event id), `webhook-timestamp`
//!   (unix seconds) and `webhook-signature`: `v1,` and the base64
//!   HMAC-SHA256 of `id.timestamp.body` under the endpoint's secret
//!   (`whsec_` and base64 of 32 random bytes), space-separated from a
//!   second one under the previous secret for a day after a rotation.
//! - **Payloads** are `{"type", "timestamp", "data"}`; `data` is the audit
//!   entry's details: opaque ids, never a key, a secret or personal data
//!   (a receiver reads the license it names through the API).

use base64ct::{Base64, Encoding};
use hmac::Mac;
use serde::Serialize;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// The event types, as endpoints subscribe to them.
pub const EVENT_TYPES: &[&str] = &[
    "license.created",
    "license.revoked",
    "license.suspended",
    "license.resumed",
    "license.renewed",
    "activation.created",
    "activation.released",
    "lease.lapsed",
    "key.rotated",
    "key.revoked",
    "revocation_list.published",
    "webhook_endpoint.disabled",
];

/// The event an audit entry announces (`None`: none). A batch announces
/// one `license.created` per license ([`events_of`]).
#[must_use]
pub fn event_type(action: &str, details: &serde_json::Value) -> Option<&'static str> {
    Some(match action {
        "license.issue" | "license.issue_batch" => "license.created",
        "license.revoke" => "license.revoked",
        "license.suspend" => "license.suspended",
        "license.resume" => "license.resumed",
        "license.renew" => "license.renewed",
        "license.activate" => "activation.created",
        // A device that takes its own seat again is no new activation.
        "seat.activate" if details.get("again") != Some(&serde_json::Value::Bool(true)) => {
            "activation.created"
        }
        "license.deactivate" | "seat.release" => "activation.released",
        "seat.lapse" => "lease.lapsed",
        "key.rotate" => "key.rotated",
        "key.revoke" => "key.revoked",
        "revocations.publish" => "revocation_list.published",
        "webhook.disable" => "webhook_endpoint.disabled",
        _ => return None,
    })
}

/// The events (type and data) of an audit entry.
#[must_use]
pub fn events_of(
    action: &str,
    details: &serde_json::Value,
) -> Vec<(&'static str, serde_json::Value)> {
    let Some(t) = event_type(action, details) else {
        return Vec::new();
    };
    if action == "license.issue_batch" {
        let ids = details.get("license_ids").and_then(|v| v.as_array());
        return ids
            .into_iter()
            .flatten()
            .map(|id| {
                (
                    t,
                    serde_json::json!({
                        "org_id": details.get("org_id"),
                        "license_id": id,
                        "key_id": details.get("key_id"),
                        "batch_id": details.get("batch_id"),
                    }),
                )
            })
            .collect();
    }
    vec![(t, details.clone())]
}

/// An event's JSON body.
#[must_use]
pub fn payload(event_type: &str, at: u64, data: &serde_json::Value) -> String {
    serde_json::json!({
        "type": event_type,
        "timestamp": crate::time::Rfc3339(at).to_string(),
        "data": data,
    })
    .to_string()
}

/// Waits before each retry: after the first attempt failed, 5 s; then
/// 1 min, 5 min, 30 min, 2 h, 6 h, 12 h and a day three times. Eleven
/// attempts over 4 days and 20 hours (more than the 3 days a receiver's
/// outage over a long weekend needs), then the delivery fails and its
/// endpoint is disabled.
pub const RETRY_SCHEDULE: &[u64] = &[
    5, 60, 300, 1_800, 7_200, 21_600, 43_200, 86_400, 86_400, 86_400,
];

/// When a delivery that failed its `attempts`-th attempt (from 1) is tried
/// again, from `now`; `None`: never (it failed for good).
#[must_use]
pub fn retry_at(attempts: u64, now: u64) -> Option<u64> {
    let i = usize::try_from(attempts.checked_sub(1)?).ok()?;
    RETRY_SCHEDULE.get(i).map(|d| now.saturating_add(*d))
}

/// How long past its request timeout a replica's claim on an endpoint lasts
/// without renewal (a replica that died lets another take over then).
pub const CLAIM_SECS: u64 = 10;

/// How long a previous secret still signs after a rotation (a day).
pub const PREVIOUS_SECRET_SECS: u64 = 86_400;

/// Most endpoints an organisation may have.
pub const MAX_ENDPOINTS: u64 = 16;

/// Longest endpoint URL.
pub const MAX_URL: usize = 2_000;

/// The secret's prefix (Standard Webhooks).
pub const SECRET_PREFIX: &str = "whsec_";

/// A new endpoint secret: `whsec_` and base64 of 32 random bytes.
pub fn new_secret() -> Result<Zeroizing<String>> {
    let mut raw = Zeroizing::new([0u8; 32]);
    getrandom::fill(raw.as_mut())?;
    Ok(Zeroizing::new(format!(
        "{SECRET_PREFIX}{}",
        Base64::encode_string(raw.as_ref())
    )))
}

/// The key bytes of an endpoint secret (`whsec_` and base64 of 24 to 64
/// bytes, as the specification bounds them).
pub fn secret_key(secret: &str) -> Result<Zeroizing<Vec<u8>>> {
    let bad = || {
        Error::invalid(
            "secret",
            "must be whsec_ and the standard base64 of 24 to 64 random bytes",
        )
    };
    let b64 = secret.strip_prefix(SECRET_PREFIX).ok_or_else(bad)?;
    let key = Zeroizing::new(Base64::decode_vec(b64).map_err(|_| bad())?);
    if !(24..=64).contains(&key.len()) {
        return Err(bad());
    }
    Ok(key)
}

/// One signature of the `webhook-signature` header: `v1,` and the base64
/// HMAC-SHA256 of `id.timestamp.body` under `key`.
#[must_use]
pub fn sign(key: &[u8], id: &str, timestamp: u64, body: &[u8]) -> String {
    let mut mac = <hmac::Hmac<Sha256> as hmac::KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", Base64::encode_string(&mac.finalize().into_bytes()))
}

/// The `keyseal-signature` header: `v1,`, the signing key's id (16 hex
/// digits), `,` and the Ed25519 signature (128 hex digits) of
/// [`keyseal_core::webhook::signed_message`], by the
/// organisation's active key; receivers check it with the organisation's
/// public keyring.
#[must_use]
pub fn keyring_signature(signer: &crate::Signer, id: &str, timestamp: u64, body: &[u8]) -> String {
    let message = keyseal_core::webhook::signed_message(id, &timestamp.to_string(), body);
    let sig = signer.key().sign_raw(&message);
    format!("v1,{},{}", signer.key_id(), keyseal_core::hex::encode(&sig))
}

/// The purpose an endpoint's secret is sealed under (see
/// [`crate::privacy::DataKeys::seal_secret`]).
pub(crate) const SECRET_PURPOSE: &[u8] = b"keyseal/webhook-secret/v1\0";

/// Checks a subscription: known types, each once; sorted.
pub fn check_events(events: &[String]) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::with_capacity(events.len());
    for e in events {
        if !EVENT_TYPES.contains(&e.as_str()) {
            return Err(Error::invalid(
                "events",
                format!(
                    "`{}` is no event type (they are: {})",
                    e.chars().take(64).collect::<String>(),
                    EVENT_TYPES.join(", ")
                ),
            ));
        }
        if !out.contains(e) {
            out.push(e.clone());
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Checks an endpoint's URL as the ledger keeps it: `https://` or
/// `http://`, at most [`MAX_URL`] bytes, printable ASCII, no user or
/// password, no fragment. Which hosts a delivery may reach is the
/// service's to decide.
pub fn check_url(url: &str) -> Result<()> {
    let bad = |why: &str| Error::invalid("url", why.to_owned());
    if url.len() > MAX_URL {
        return Err(bad("is longer than 2000 bytes"));
    }
    if !url.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad(
            "must be printable ASCII without spaces (percent-encode the rest)",
        ));
    }
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| bad("must start with https:// or http://"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() {
        return Err(bad("has no host"));
    }
    if authority.contains('@') {
        return Err(bad(
            "must not carry a user or password (the endpoint's secret signs each delivery)",
        ));
    }
    if url.contains('#') {
        return Err(bad("must not have a fragment"));
    }
    Ok(())
}

/// An endpoint, as the API shows it (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    /// Its id (`whe_...`).
    pub endpoint_id: String,
    /// Where events are posted.
    pub url: String,
    /// What it is for.
    pub description: String,
    /// The event types it gets (empty: all).
    pub events: Vec<String>,
    /// When it was registered.
    pub created_at: u64,
    /// When it was disabled (its deliveries wait), if it is.
    pub disabled_at: Option<u64>,
    /// Why it was disabled.
    pub disabled_reason: Option<String>,
    /// Deliveries waiting to be sent.
    pub pending: u64,
}

/// A delivery of an event to an endpoint, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delivery {
    /// Its id (`whd_...`).
    pub delivery_id: String,
    /// The event (`webhook-id`).
    pub event_id: String,
    /// The event's type.
    pub event_type: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    /// Attempts made.
    pub attempts: u64,
    /// When the next attempt is due (pending only).
    pub next_at: Option<u64>,
    /// The last attempt's HTTP status, if it got an answer.
    pub last_status: Option<u64>,
    /// What went wrong on the last attempt, if anything did.
    pub last_error: Option<String>,
    /// When it was queued.
    pub created_at: u64,
    /// When it was delivered or given up on.
    pub done_at: Option<u64>,
}

/// One attempt to send a delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attempt {
    /// 1, 2, ...
    pub attempt: u64,
    /// When it was made.
    pub at: u64,
    /// The endpoint's HTTP status, if it answered.
    pub status: Option<u64>,
    /// What went wrong, if anything did.
    pub error: Option<String>,
    /// How long it took (milliseconds).
    pub millis: u64,
}

/// What a delivery worker sends next to an endpoint it claimed.
pub struct Job {
    /// The delivery.
    pub delivery_id: String,
    /// The endpoint.
    pub endpoint_id: String,
    /// Its organisation.
    pub org_id: String,
    /// Where to post.
    pub url: String,
    /// The event id (`webhook-id`).
    pub event_id: String,
    /// The event's type.
    pub event_type: String,
    /// The body.
    pub payload: String,
    /// Attempts made so far.
    pub attempts: u64,
    /// When it is due.
    pub next_at: u64,
    /// The keys to sign with: the endpoint's secret, and the previous one
    /// while it still signs.
    pub keys: Vec<Zeroizing<Vec<u8>>>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("delivery_id", &self.delivery_id)
            .field("endpoint_id", &self.endpoint_id)
            .field("event_id", &self.event_id)
            .finish_non_exhaustive()
    }
}

impl Job {
    /// The `webhook-signature` header for a request sent at `timestamp`.
    #[must_use]
    pub fn signature(&self, timestamp: u64) -> String {
        self.keys
            .iter()
            .map(|k| sign(k, &self.event_id, timestamp, self.payload.as_bytes()))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// How an attempt went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The HTTP status, if the endpoint answered.
    pub status: Option<u16>,
    /// What went wrong (a status outside 2xx, a timeout, a refused
    /// connection...), if anything did.
    pub error: Option<String>,
    /// How long it took (milliseconds).
    pub millis: u64,
}

impl Outcome {
    /// Whether the endpoint accepted the event (a 2xx answer).
    #[must_use]
    pub fn accepted(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s)) && self.error.is_none()
    }
}

/// What became of a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// Delivered.
    Delivered,
    /// Tried again at this time.
    Retry(u64),
    /// Its retries ran out: it failed, and its endpoint is disabled.
    Failed,
    /// This replica's claim on the endpoint ran out meanwhile: another may
    /// be delivering to it; nothing was recorded.
    LostClaim,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_as_the_specification_does() {
        // The example of the Standard Webhooks specification's reference
        // libraries (their test suites share it).
        let key = secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            sign(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn secrets_and_urls_are_checked() {
        let s = new_secret().unwrap();
        assert_eq!(secret_key(&s).unwrap().len(), 32);
        for bad in [
            "",
            "whsec_",
            "whsec_!!!",
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "whsec_AAAA",
        ] {
            assert!(secret_key(bad).is_err(), "{bad}");
        }
        for ok in ["https://example.com/hooks", "http://127.0.0.1:8080/x?y=1"] {
            check_url(ok).unwrap();
        }
        for bad in [
            "ftp://example.com",
            "https://",
            "https://user:pw@example.com/",
            "https://example.com/a b",
            "https://example.com/#x",
            "javascript:alert(1)",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn retries_span_more_than_three_days() {
        let mut at = 0;
        let mut n = 1;
        while let Some(next) = retry_at(n, at) {
            at = next;
            n += 1;
        }
        assert_eq!(n, 11);
        assert!(at > 3 * 86_400, "{at}");
    }

    #[test]
    fn audit_actions_map_to_events() {
        let again = serde_json::json!({ "again": true });
        assert_eq!(event_type("seat.activate", &again), None);
        assert_eq!(
            event_type("seat.activate", &serde_json::json!({})),
            Some("activation.created")
        );
        assert_eq!(event_type("token.create", &serde_json::json!({})), None);
        let batch = serde_json::json!({ "org_id": "o", "license_ids": ["a", "b"] });
        let ev = events_of("license.issue_batch", &batch);
        assert_eq!(ev.len(), 2);
        assert_eq!(ev[1].1["license_id"], "b");
        assert!(
            EVENT_TYPES
                .iter()
                .all(|t| check_events(&[(*t).to_owned()]).is_ok())
        );
        assert!(check_events(&["license.deleted".into()]).is_err());
    }
}
