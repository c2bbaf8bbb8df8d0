//! Payment events through the API, on SQLite and PostgreSQL: the buyer's
//! email is sealed wherever the service keeps it (the customer, the email
//! outbox); events are the organisation's own; the settings and mappings
//! are admin only and checked. The whole selling path, the Stripe library's
//! agreement and the SMTP delivery are in `server/scripts/payments_e2e.py`;
//! two replicas racing on one event in `replicas.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::json;

const SECRET: &str = "whsec_payments_test_0123456789";

fn stripe_post(s: &TestServer, org: &str, body: &str) -> Resp {
    let now = now();
    let header = format!(
        "t={now},v1={}",
        keyseal_issuer::payments::stripe_v1(SECRET, i128::from(now), body)
    );
    req(
        s.addr,
        "POST",
        &format!("/v1/public/orgs/{org}/payments/stripe"),
        None,
        Some(("application/json", body.as_bytes())),
        &[("stripe-signature", &header)],
    )
}

fn checkout(event: &str, session: &str, email: &str) -> String {
    json!({
        "id": event, "object": "event", "type": "checkout.session.completed",
        "data": { "object": {
            "id": session, "object": "checkout.session", "payment_status": "paid", "mode": "payment",
            "customer": null, "payment_intent": format!("pi_{session}"),
            "customer_details": { "email": email, "name": "Grace Hopper" },
            "metadata": { "keyseal_price": "price_1" }
        }}
    })
    .to_string()
}

#[test]
fn the_buyers_email_is_sealed_and_events_stay_in_their_organisation() {
    for s in backends() {
        post(
            s.addr,
            "/v1/products",
            &s.admin,
            &json!({ "product": "acme-cad" }),
        );
        // Admin only, checked.
        post(
            s.addr,
            "/v1/payments/stripe",
            &s.issue,
            &json!({ "signing_secret": SECRET }),
        )
        .problem(403, "forbidden");
        post(
            s.addr,
            "/v1/payments/stripe",
            &s.admin,
            &json!({ "signing_secret": "hunter2" }),
        )
        .problem(422, "invalid-value");
        let r = post(
            s.addr,
            "/v1/payments/stripe",
            &s.admin,
            &json!({ "signing_secret": SECRET }),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(!r.text().contains(SECRET));
        for bad in [
            json!({ "price_id": "price_1", "product": "nope", "plan": "pro", "duration_secs": 86400 }),
            json!({ "price_id": "price_1", "product": "acme-cad", "plan": "pro", "duration_secs": 5 }),
            json!({ "price_id": "price_1", "product": "acme-cad", "plan": "pro", "duration_secs": 86400, "seats": 0 }),
            json!({ "price_id": "", "product": "acme-cad", "plan": "pro", "duration_secs": 86400 }),
            json!({ "price_id": "price_1", "product": "acme-cad", "plan": "pro", "duration_secs": 86400, "on_refund": "shrug" }),
        ] {
            let r = post(s.addr, "/v1/payments/prices", &s.admin, &bad);
            assert!(matches!(r.status, 400 | 422), "{bad}: {}", r.text());
        }
        let r = post(
            s.addr,
            "/v1/payments/prices",
            &s.admin,
            &json!({ "price_id": "price_1", "product": "acme-cad", "plan": "pro", "duration_secs": 86400 }),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        // SMTP settings to a server that refuses: the email waits, sealed.
        let r = post(
            s.addr,
            "/v1/email/settings",
            &s.admin,
            &json!({ "host": "127.0.0.1", "port": 9, "security": "none", "from": "licenses@acme.example",
                     "username": "smtp-user", "password": "smtp-password-secret" }),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(!r.text().contains("smtp-password-secret"));
        // The same event eight times at once (Stripe retrying while the
        // first answer is slow): one license, one customer, one record.
        let body = checkout("evt_1", "cs_1", "grace@example.com");
        let answers: Vec<serde_json::Value> = std::thread::scope(|sc| {
            let hs: Vec<_> = (0..8)
                .map(|_| {
                    sc.spawn(|| {
                        let r = stripe_post(&s, &s.org_a, &body);
                        assert_eq!(r.status, 200, "{}", r.text());
                        r.json()
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let firsts = answers.iter().filter(|a| a["duplicate"].is_null()).count();
        assert_eq!(firsts, 1, "{answers:?}");
        let lid = answers[0]["license_id"].as_str().unwrap().to_owned();
        let count = |path: &str| {
            get(s.addr, path, &s.admin).json()["items"]
                .as_array()
                .unwrap()
                .len()
        };
        assert_eq!((count("/v1/licenses"), count("/v1/customers")), (1, 1));
        let lic = get(s.addr, &format!("/v1/licenses/{lid}"), &s.admin).json();
        assert_eq!(lic["external_id"], "stripe:cs_1");
        std::thread::sleep(std::time::Duration::from_millis(800));
        let bytes = tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(ledger_bytes(&s));
        for plain in [
            "grace@example.com",
            "Grace Hopper",
            "smtp-password-secret",
            SECRET,
        ] {
            assert!(
                !holds(&bytes, plain),
                "{plain} is in the ledger in the clear"
            );
        }
        // Another organisation: its endpoint has no secret; the event is not
        // its own, and its lists show nothing of this one's.
        let r = stripe_post(&s, &s.org_b, &checkout("evt_2", "cs_2", "x@example.com"));
        r.problem(409, "payments-not-configured");
        assert_eq!(
            get(s.addr, "/v1/payments/events", &s.other).json()["items"],
            json!([])
        );
        assert_eq!(
            get(s.addr, "/v1/payments/prices", &s.other).json()["items"],
            json!([])
        );
        get(s.addr, "/v1/email/settings", &s.other).problem(404, "not-found");
        // An unknown organisation.
        stripe_post(
            &s,
            "org_0000000000000000",
            &checkout("evt_3", "cs_3", "x@example.com"),
        )
        .problem(404, "not-found");
    }
}
