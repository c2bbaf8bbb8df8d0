//! Payment events in: a Stripe account's events turned into licenses.
//!
//! - **Checking.** Stripe signs each event it posts with the endpoint's
//!   secret: `Stripe-Signature: t=TIMESTAMP,v1=HEX[,v1=HEX...]`, where each
//!   `v1` is the hex HMAC-SHA256 of `TIMESTAMP.BODY` under the secret (its
//!   text, `whsec_...`, as the key). [`verify_stripe`] accepts exactly what
//!   Stripe's own libraries accept (`stripe.Webhook.construct_event`
//!   in Python, with its default tolerance): the first `t`, every `v1`
//!   (several while a secret is rolled), a constant-time comparison, a
//!   timestamp no older than [`STRIPE_TOLERANCE_SECS`], a UTF-8 body that
//!   is a JSON object. The service also keeps the previous secret for a day
//!   after the vendor changes it.
//! - **Acting once.** An event is acted on once by its id
//!   (`payment_events`); the same event again is a duplicate and changes
//!   nothing. What it mints has an external id made from the provider's
//!   object (`stripe:cs_...`, `stripe:in_...`), so even two distinct events
//!   about one checkout mint one license.
//! - **What events do**, by the price's mapping ([`PriceMapping`]):
//!   `checkout.session.completed` (paid) makes the customer (an opaque id;
//!   the name and email only sealed in the service) and mints the license;
//!   `invoice.paid` for a subscription's next period mints its successor,
//!   valid for the mapping's duration past the last one's expiry (or now),
//!   and at least to the end of the paid period (`license.renewed`
//!   announces it); a first invoice links its payment to the checkout's
//!   license; `charge.refunded` (in full) and
//!   `customer.subscription.deleted` revoke the licenses paid for, or let
//!   them lapse, as the mapping says. Other types are recorded as ignored.

use hmac::Mac;
use serde::Serialize;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};

/// How old a signed event may be (Stripe's libraries' default: 5 minutes).
pub const STRIPE_TOLERANCE_SECS: u64 = 300;

/// How long the previous Stripe secret still checks after a change (a day).
pub const PREVIOUS_STRIPE_SECRET_SECS: u64 = 86_400;

/// The purpose the Stripe secret is sealed under.
pub(crate) const STRIPE_SECRET_PURPOSE: &[u8] = b"keyseal/stripe-secret/v1\0";

/// Most price mappings an organisation may have.
pub const MAX_PRICES: u64 = 200;

/// Why a Stripe event was refused before it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StripeRefusal {
    /// No `Stripe-Signature` header.
    NoHeader,
    /// The header has no timestamp, or a part without `=`.
    Malformed,
    /// No `v1` signature in the header.
    NoSignature,
    /// No `v1` signature matches the body under the secret.
    BadSignature,
    /// The timestamp is older than the tolerance.
    TooOld {
        /// The header's timestamp.
        timestamp: i128,
    },
    /// The body is not UTF-8, or not a JSON object Stripe sends.
    NotAnEvent,
}

impl StripeRefusal {
    /// A slug for problem types and logs.
    #[must_use]
    pub fn slug(&self) -> &'static str {
        match self {
            StripeRefusal::NoHeader => "stripe-signature-missing",
            StripeRefusal::Malformed => "stripe-signature-malformed",
            StripeRefusal::NoSignature => "stripe-signature-missing-v1",
            StripeRefusal::BadSignature => "stripe-signature-mismatch",
            StripeRefusal::TooOld { .. } => "stripe-timestamp-too-old",
            StripeRefusal::NotAnEvent => "stripe-event-malformed",
        }
    }

    /// What went wrong, for the problem's detail.
    #[must_use]
    pub fn detail(&self) -> String {
        match self {
            StripeRefusal::NoHeader => "no Stripe-Signature header".into(),
            StripeRefusal::Malformed => {
                "the Stripe-Signature header has no timestamp (t=...) or a part without `=`".into()
            }
            StripeRefusal::NoSignature => "the Stripe-Signature header has no v1 signature".into(),
            StripeRefusal::BadSignature => {
                "no v1 signature matches the body under the organisation's Stripe secret".into()
            }
            StripeRefusal::TooOld { timestamp } => format!(
                "the signature's timestamp {timestamp} is more than {STRIPE_TOLERANCE_SECS} s old (a replay, or a clock far behind)"
            ),
            StripeRefusal::NotAnEvent => "the body is not a JSON object as Stripe sends".into(),
        }
    }
}

/// An integer as Python's `int()` reads one: surrounding whitespace, a
/// sign, digits with single underscores between them.
fn python_int(s: &str) -> Option<i128> {
    let t = s.trim_matches(|c: char| c.is_ascii_whitespace());
    let (neg, digits) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
        || !digits.bytes().all(|b| b.is_ascii_digit() || b == b'_')
    {
        return None;
    }
    let clean: String = digits.chars().filter(|c| *c != '_').collect();
    let v: i128 = clean.parse().ok()?;
    Some(if neg { -v } else { v })
}

/// Checks a Stripe event: its `Stripe-Signature` header against each of
/// `secrets` (the organisation's, and the previous one while it still
/// checks), at `now`; the event as JSON.
pub fn verify_stripe(
    header: Option<&str>,
    body: &[u8],
    secrets: &[&str],
    now: u64,
) -> std::result::Result<serde_json::Value, StripeRefusal> {
    let header = header
        .filter(|h| !h.is_empty())
        .ok_or(StripeRefusal::NoHeader)?;
    let text = std::str::from_utf8(body).map_err(|_| StripeRefusal::NotAnEvent)?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for item in header.split(',') {
        let mut parts = item.splitn(3, '=');
        let key = parts.next().unwrap_or("");
        let value = parts.next();
        if key == "t" {
            let v = value.ok_or(StripeRefusal::Malformed)?;
            if timestamp.is_none() {
                timestamp = Some(python_int(v).ok_or(StripeRefusal::Malformed)?);
            }
        } else if key == "v1" {
            signatures.push(value.ok_or(StripeRefusal::Malformed)?);
        }
    }
    let timestamp = timestamp.ok_or(StripeRefusal::Malformed)?;
    if signatures.is_empty() {
        return Err(StripeRefusal::NoSignature);
    }
    let matched = secrets.iter().any(|secret| {
        let expected = stripe_v1(secret, timestamp, text);
        signatures.iter().fold(false, |ok, s| {
            ok | bool::from(expected.as_bytes().ct_eq(s.as_bytes()))
        })
    });
    if !matched {
        return Err(StripeRefusal::BadSignature);
    }
    if timestamp < i128::from(now) - i128::from(STRIPE_TOLERANCE_SECS) {
        return Err(StripeRefusal::TooOld { timestamp });
    }
    let event: serde_json::Value =
        serde_json::from_str(text).map_err(|_| StripeRefusal::NotAnEvent)?;
    if !event.is_object() || event.get("object").and_then(|o| o.as_str()) == Some("v2.core.event") {
        return Err(StripeRefusal::NotAnEvent);
    }
    Ok(event)
}

/// A `v1` signature as Stripe makes it: the hex HMAC-SHA256 of
/// `timestamp.body` under the secret's text.
#[must_use]
pub fn stripe_v1(secret: &str, timestamp: i128, body: &str) -> String {
    let mut mac = <hmac::Hmac<Sha256> as hmac::KeyInit>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(format!("{timestamp}.{body}").as_bytes());
    keyseal_core::hex::encode(&mac.finalize().into_bytes())
}

/// Checks a Stripe endpoint secret as the vendor gives it.
pub fn check_stripe_secret(secret: &str) -> Result<()> {
    if !secret.starts_with("whsec_")
        || secret.len() < 16
        || secret.len() > 200
        || !secret.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(Error::invalid(
            "signing_secret",
            "must be the endpoint's signing secret from Stripe's dashboard (whsec_...)",
        ));
    }
    Ok(())
}

/// What to do with a license whose payment was refunded or whose
/// subscription ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ending {
    /// Revoke it at once (it goes on the revocation list).
    Revoke,
    /// Let it run to its expiry.
    Lapse,
}

impl Ending {
    /// Its name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Ending::Revoke => "revoke",
            Ending::Lapse => "lapse",
        }
    }

    /// From its name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "revoke" => Some(Ending::Revoke),
            "lapse" => Some(Ending::Lapse),
            _ => None,
        }
    }
}

/// What a price buys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PriceMapping {
    /// The provider's price id (`price_...`).
    pub price_id: String,
    /// The product licensed.
    pub product: String,
    /// The plan.
    pub plan: String,
    /// Entitlements.
    pub entitlements: Vec<String>,
    /// The license's length (seconds) from the purchase, or from the end of
    /// a subscription's paid period.
    pub duration_secs: u64,
    /// Device seats (max_devices).
    pub seats: u64,
    /// On a full refund.
    pub on_refund: Ending,
    /// When a subscription ends.
    pub on_cancel: Ending,
    /// Whether the key is emailed to the buyer.
    pub email: bool,
    /// When it was last set.
    pub updated_at: u64,
}

/// Checks a price id: 1 to 100 printable ASCII bytes.
pub fn check_price_id(p: &str) -> Result<()> {
    if p.is_empty() || p.len() > 100 || !p.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::invalid(
            "price_id",
            "must be the provider's price id: 1 to 100 printable ASCII characters",
        ));
    }
    Ok(())
}

/// What an event asks of the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// A paid checkout: a customer and a license.
    Checkout {
        /// The checkout session (`cs_...`).
        session: String,
        /// The provider's customer, if the session made or named one.
        customer: Option<String>,
        /// The buyer's email and name (sealed in the service).
        email: Option<String>,
        /// The buyer's name.
        name: Option<String>,
        /// The price bought (`metadata.keyseal_price`, or the first line item).
        price: Option<String>,
        /// The payment intent (one-off payments), for refunds.
        payment_intent: Option<String>,
        /// The subscription (subscriptions), for renewals and cancellations.
        subscription: Option<String>,
    },
    /// A subscription's invoice paid for a period after the first.
    Renewal {
        /// The invoice (`in_...`).
        invoice: String,
        /// Its subscription.
        subscription: String,
        /// The price of its first line, if shown.
        price: Option<String>,
        /// The end of the paid period.
        period_end: Option<u64>,
        /// Its payment intent, for refunds.
        payment_intent: Option<String>,
    },
    /// A subscription's first invoice paid: its payment intent paid for
    /// the checkout's license (so a refund of it revokes).
    FirstInvoice {
        /// The subscription.
        subscription: String,
        /// The invoice's payment intent.
        payment_intent: String,
    },
    /// A charge refunded in full.
    Refund {
        /// The charge's payment intent.
        payment_intent: String,
    },
    /// A subscription ended.
    SubscriptionEnded {
        /// The subscription.
        subscription: String,
    },
    /// Nothing to do (the reason).
    Ignore(&'static str),
}

fn text(v: &serde_json::Value, path: &[&str]) -> Option<String> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    // An expanded object: its id.
    let s = cur
        .as_str()
        .or_else(|| cur.get("id").and_then(|i| i.as_str()))?;
    // Stripe's ids, the vendor's metadata, the buyer's details: a control
    // character or a page of text is nothing to keep or look up.
    (!s.is_empty() && s.len() <= 320 && !s.chars().any(char::is_control)).then(|| s.to_owned())
}

/// The event's id and type.
pub fn event_head(event: &serde_json::Value) -> Result<(String, String)> {
    let id = text(event, &["id"]).filter(|i| i.len() <= 255);
    let t = text(event, &["type"]).filter(|i| i.len() <= 255);
    match (id, t) {
        (Some(id), Some(t)) => Ok((id, t)),
        _ => Err(Error::invalid(
            "event",
            "has no id or type (is it a Stripe event?)",
        )),
    }
}

/// What a Stripe event asks for (see the module's doc).
#[must_use]
pub fn action(event: &serde_json::Value) -> Action {
    let t = event.get("type").and_then(|t| t.as_str()).unwrap_or("");
    let o = &event["data"]["object"];
    match t {
        "checkout.session.completed" | "checkout.session.async_payment_succeeded" => {
            let status = o.get("payment_status").and_then(|s| s.as_str());
            if status != Some("paid") && status != Some("no_payment_required") {
                return Action::Ignore("the checkout is not paid yet");
            }
            let Some(session) = text(o, &["id"]) else {
                return Action::Ignore("the checkout session has no id");
            };
            let price = text(o, &["metadata", "keyseal_price"]).or_else(|| {
                o.get("line_items")
                    .and_then(|l| l.get("data"))
                    .and_then(|d| d.get(0))
                    .and_then(|l| text(l, &["price"]))
            });
            Action::Checkout {
                session,
                customer: text(o, &["customer"]),
                email: text(o, &["customer_details", "email"])
                    .or_else(|| text(o, &["customer_email"])),
                name: text(o, &["customer_details", "name"]),
                price,
                payment_intent: text(o, &["payment_intent"]),
                subscription: text(o, &["subscription"]),
            }
        }
        // (Stripe also sends `invoice.payment_succeeded` for each paid
        // invoice: acting on both would renew twice.)
        "invoice.paid" => {
            let reason = o.get("billing_reason").and_then(|r| r.as_str());
            let payment_intent = text(o, &["payment_intent"]).or_else(|| {
                o.get("payments")
                    .and_then(|p| p.get("data"))
                    .and_then(|d| d.get(0))
                    .and_then(|p| text(p, &["payment", "payment_intent"]))
            });
            let subscription = text(o, &["subscription"])
                .or_else(|| text(o, &["parent", "subscription_details", "subscription"]));
            if reason == Some("subscription_create") {
                return match (subscription, payment_intent) {
                    (Some(subscription), Some(payment_intent)) => Action::FirstInvoice {
                        subscription,
                        payment_intent,
                    },
                    _ => Action::Ignore("a first invoice with no subscription or payment intent"),
                };
            }
            if reason != Some("subscription_cycle") {
                return Action::Ignore("not a subscription's renewal");
            }
            let (Some(invoice), Some(subscription)) = (text(o, &["id"]), subscription) else {
                return Action::Ignore("the invoice names no subscription");
            };
            let line = o
                .get("lines")
                .and_then(|l| l.get("data"))
                .and_then(|d| d.get(0));
            let price = line.and_then(|l| {
                text(l, &["price"]).or_else(|| text(l, &["pricing", "price_details", "price"]))
            });
            let period_end = line
                .and_then(|l| l.get("period"))
                .and_then(|p| p.get("end"))
                .and_then(serde_json::Value::as_u64)
                .or_else(|| o.get("period_end").and_then(serde_json::Value::as_u64));
            Action::Renewal {
                invoice,
                subscription,
                price,
                period_end,
                payment_intent,
            }
        }
        "charge.refunded" => {
            if o.get("refunded").and_then(serde_json::Value::as_bool) != Some(true) {
                return Action::Ignore("a partial refund: the license stays");
            }
            match text(o, &["payment_intent"]) {
                Some(payment_intent) => Action::Refund { payment_intent },
                None => Action::Ignore("the charge names no payment intent"),
            }
        }
        "customer.subscription.deleted" => match text(o, &["id"]) {
            Some(subscription) => Action::SubscriptionEnded { subscription },
            None => Action::Ignore("the subscription has no id"),
        },
        _ => Action::Ignore("an event type keyseal does not act on"),
    }
}

/// An event acted on, as the API lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PaymentEvent {
    /// The provider's event id.
    pub event_id: String,
    /// Its type.
    pub event_type: String,
    /// When it arrived (unix seconds).
    pub received_at: u64,
    /// `minted`, `renewed`, `linked`, `revoked`, `lapsed`, `ignored` or `refused`.
    pub outcome: String,
    /// Why.
    pub detail: String,
    /// The license it minted, renewed or revoked.
    pub license_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(secret: &str, t: &str, body: &str) -> String {
        let mut mac =
            <hmac::Hmac<Sha256> as hmac::KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{t}.{body}").as_bytes());
        keyseal_core::hex::encode(&mac.finalize().into_bytes())
    }

    #[test]
    fn stripe_signatures_as_stripe_checks_them() {
        let secret = "whsec_test_secret_0123456789";
        let body = r#"{"id":"evt_1","object":"event","type":"x"}"#;
        let now = 1_800_000_000u64;
        let sig = header(secret, "1800000000", body);
        let ok = format!("t=1800000000,v1={sig}");
        assert!(verify_stripe(Some(&ok), body.as_bytes(), &[secret], now).is_ok());
        // Several v1 (a secret being rolled): one matching is enough; a v0
        // is ignored; a later t is ignored.
        let rolled = format!("t=1800000000,v1={},v0=abc,v1={sig},t=5", "0".repeat(64));
        assert!(verify_stripe(Some(&rolled), body.as_bytes(), &[secret], now).is_ok());
        // The timestamp read as Python's int() reads it, then signed as a number.
        let odd = format!("t= +1_800_000_000 ,v1={sig}");
        assert!(verify_stripe(Some(&odd), body.as_bytes(), &[secret], now).is_ok());
        let cases: &[(&str, StripeRefusal)] = &[
            ("", StripeRefusal::NoHeader),
            ("v1=00", StripeRefusal::Malformed),
            ("t=abc,v1=00", StripeRefusal::Malformed),
            ("t,v1=00", StripeRefusal::Malformed),
            ("t=1800000000,v1", StripeRefusal::Malformed),
            ("t=1800000000,v0=00", StripeRefusal::NoSignature),
            ("t=1800000000,v1=00", StripeRefusal::BadSignature),
        ];
        for (h, want) in cases {
            assert_eq!(
                verify_stripe(Some(h), body.as_bytes(), &[secret], now).unwrap_err(),
                *want,
                "{h}"
            );
        }
        assert_eq!(
            verify_stripe(Some(&ok.to_uppercase()), body.as_bytes(), &[secret], now).unwrap_err(),
            StripeRefusal::Malformed
        );
        assert_eq!(
            verify_stripe(Some(&ok), b"{}", &[secret], now).unwrap_err(),
            StripeRefusal::BadSignature
        );
        assert_eq!(
            verify_stripe(Some(&ok), body.as_bytes(), &["whsec_other_secret"], now).unwrap_err(),
            StripeRefusal::BadSignature
        );
        assert_eq!(
            verify_stripe(Some(&ok), body.as_bytes(), &[secret], now + 301).unwrap_err(),
            StripeRefusal::TooOld {
                timestamp: 1_800_000_000
            }
        );
        // Newer than now: accepted, as Stripe's libraries accept it.
        assert!(verify_stripe(Some(&ok), body.as_bytes(), &[secret], now - 3600).is_ok());
        // Not UTF-8, not an object.
        let list = "[1]";
        let h = format!("t=1800000000,v1={}", header(secret, "1800000000", list));
        assert_eq!(
            verify_stripe(Some(&h), list.as_bytes(), &[secret], now).unwrap_err(),
            StripeRefusal::NotAnEvent
        );
        assert_eq!(
            verify_stripe(Some(&ok), &[0xff, 0xfe], &[secret], now).unwrap_err(),
            StripeRefusal::NotAnEvent
        );
    }

    #[test]
    fn ids_with_control_characters_are_not_read() {
        let ev = serde_json::json!({
            "type": "checkout.session.completed",
            "data": { "object": { "id": "cs_\u{0}x", "payment_status": "paid" } }
        });
        assert_eq!(
            action(&ev),
            Action::Ignore("the checkout session has no id")
        );
        let long = serde_json::json!({ "id": "e".repeat(400), "type": "x" });
        assert!(event_head(&long).is_err());
    }

    #[test]
    fn python_ints() {
        for (s, v) in [("12", 12), (" -3 ", -3), ("+1_0", 10), ("007", 7)] {
            assert_eq!(python_int(s), Some(v), "{s}");
        }
        for s in ["", "_1", "1_", "1__0", "0x10", "1.0", "- 1", "+"] {
            assert_eq!(python_int(s), None, "{s}");
        }
    }
}
