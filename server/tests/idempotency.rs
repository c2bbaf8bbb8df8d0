//! `Idempotency-Key` over real HTTP on 127.0.0.1, on SQLite and PostgreSQL:
//! a retried mint answers the first response again and mints nothing more;
//! the same key with another request is a 409; 16 concurrent duplicates
//! mint one license and all get it; keys are per organisation and last 24
//! hours; a failure of ours (5xx) is not recorded, a client error is; the
//! token endpoint, whose response holds a secret, takes no key.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::atomic::Ordering;

use common::{Resp, TestServer, get, post, req};
use serde_json::{Value, json};

fn post_with_key(s: &TestServer, token: &str, path: &str, body: &Value, key: &str) -> Resp {
    req(
        s.addr,
        "POST",
        path,
        Some(token),
        Some(("application/json", body.to_string().as_bytes())),
        &[("Idempotency-Key", key)],
    )
}

fn setup(s: &TestServer, token: &str) -> String {
    let r = post(
        s.addr,
        "/v1/products",
        token,
        &json!({ "product": "acme-cad" }),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let r = post(s.addr, "/v1/customers", token, &json!({}));
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["customer_id"].as_str().unwrap().to_owned()
}

fn order(cus: &str, plan: &str) -> Value {
    json!({ "product": "acme-cad", "customer_id": cus, "plan": plan, "expires": "365d" })
}

fn license_count(s: &TestServer, token: &str) -> usize {
    get(s.addr, "/v1/licenses?limit=500", token).json()["items"]
        .as_array()
        .unwrap()
        .len()
}

#[test]
fn a_retried_mint_mints_once() {
    for s in common::backends() {
        let cus = setup(&s, &s.admin);
        let first = post_with_key(&s, &s.admin, "/v1/licenses", &order(&cus, "pro"), "order-1");
        assert_eq!(first.status, 201, "{}", first.text());
        assert_eq!(first.header("idempotent-replayed"), None);
        for _ in 0..3 {
            let again = post_with_key(&s, &s.admin, "/v1/licenses", &order(&cus, "pro"), "order-1");
            assert_eq!(again.status, 201);
            assert_eq!(again.header("idempotent-replayed"), Some("true"));
            assert_eq!(again.header("content-type"), Some("application/json"));
            assert_eq!(again.json(), first.json());
        }
        assert_eq!(license_count(&s, &s.admin), 1);

        // The same key with another body, or on another path: a 409.
        post_with_key(
            &s,
            &s.admin,
            "/v1/licenses",
            &order(&cus, "team"),
            "order-1",
        )
        .problem(409, "idempotency-key-reused");
        post_with_key(&s, &s.admin, "/v1/customers", &json!({}), "order-1")
            .problem(409, "idempotency-key-reused");
        // Another key mints again; so does a request without one.
        let other = post_with_key(&s, &s.admin, "/v1/licenses", &order(&cus, "pro"), "order-2");
        assert_eq!(other.status, 201);
        assert_ne!(other.json()["license_id"], first.json()["license_id"]);
        assert_eq!(
            post(s.addr, "/v1/licenses", &s.admin, &order(&cus, "pro")).status,
            201
        );
        assert_eq!(license_count(&s, &s.admin), 3);

        // A client error is an answer too: replayed, even once the cause is gone.
        let missing = order(&cus, "pro");
        let mut unknown = missing.clone();
        unknown["product"] = json!("acme-viewer");
        post_with_key(&s, &s.admin, "/v1/licenses", &unknown, "order-3")
            .problem(422, "invalid-value");
        assert_eq!(
            post(
                s.addr,
                "/v1/products",
                &s.admin,
                &json!({ "product": "acme-viewer" })
            )
            .status,
            201
        );
        let r = post_with_key(&s, &s.admin, "/v1/licenses", &unknown, "order-3");
        r.problem(422, "invalid-value");
        assert_eq!(r.header("idempotent-replayed"), Some("true"));

        // Keys are per organisation: B's "order-1" is B's own.
        let cus_b = setup(&s, &s.other);
        let b = post_with_key(
            &s,
            &s.other,
            "/v1/licenses",
            &order(&cus_b, "pro"),
            "order-1",
        );
        assert_eq!(b.status, 201, "{}", b.text());
        assert_eq!(b.header("idempotent-replayed"), None);
        assert_eq!(license_count(&s, &s.other), 1);

        // Other POSTs take keys too: a retried revocation is the same 200.
        let id = first.json()["license_id"].as_str().unwrap().to_owned();
        let path = format!("/v1/licenses/{id}/revoke");
        let reason = json!({ "reason": "refund" });
        let r1 = post_with_key(&s, &s.admin, &path, &reason, "refund-1");
        assert_eq!(r1.status, 200, "{}", r1.text());
        let r2 = post_with_key(&s, &s.admin, &path, &reason, "refund-1");
        assert_eq!((r2.status, r2.json()), (200, r1.json()));
        // Without the key the second revocation is the conflict it is.
        post(s.addr, &path, &s.admin, &reason).problem(409, "conflict");

        // Malformed keys, and the token endpoint (its answer holds a secret).
        for bad in [" ".to_owned(), "k".repeat(256)] {
            post_with_key(&s, &s.admin, "/v1/licenses", &order(&cus, "pro"), &bad)
                .problem(400, "bad-request");
        }
        post_with_key(
            &s,
            &s.admin,
            "/v1/tokens",
            &json!({ "name": "ci", "scopes": ["read"] }),
            "token-1",
        )
        .problem(400, "bad-request");
        // Unauthenticated: refused as without a key, nothing claimed.
        let r = req(
            s.addr,
            "POST",
            "/v1/licenses",
            None,
            Some((
                "application/json",
                order(&cus, "pro").to_string().as_bytes(),
            )),
            &[("Idempotency-Key", "order-9")],
        );
        r.problem(401, "unauthorized");
        let r = post_with_key(&s, &s.admin, "/v1/licenses", &order(&cus, "pro"), "order-9");
        assert_eq!((r.status, r.header("idempotent-replayed")), (201, None));
    }
}

#[test]
fn concurrent_duplicates_mint_one_license() {
    for s in common::backends() {
        let cus = setup(&s, &s.admin);
        let body = order(&cus, "pro");
        let answers: Vec<(u16, Value)> = std::thread::scope(|t| {
            let handles: Vec<_> = (0..16)
                .map(|_| {
                    let (s, body) = (&s, &body);
                    t.spawn(move || {
                        let r = post_with_key(s, &s.admin, "/v1/licenses", body, "webhook-evt-1");
                        (r.status, r.json())
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (status, body) in &answers {
            assert_eq!(*status, 201, "{body}");
            assert_eq!(body["license_id"], answers[0].1["license_id"]);
        }
        assert_eq!(license_count(&s, &s.admin), 1);
    }
}

#[test]
fn keys_last_a_day() {
    for backend in common::backend_list() {
        let (offset, clock) = common::offset_clock();
        let s = common::start_with_clock(backend, clock);
        let cus = setup(&s, &s.admin);
        let body = order(&cus, "pro");
        let first = post_with_key(&s, &s.admin, "/v1/licenses", &body, "k");
        offset.store(23 * 3600, Ordering::SeqCst);
        let again = post_with_key(&s, &s.admin, "/v1/licenses", &body, "k");
        assert_eq!(again.json(), first.json());
        offset.store(24 * 3600 + 1, Ordering::SeqCst);
        let later = post_with_key(&s, &s.admin, "/v1/licenses", &body, "k");
        assert_eq!(
            (later.status, later.header("idempotent-replayed")),
            (201, None)
        );
        assert_ne!(later.json()["license_id"], first.json()["license_id"]);
        assert_eq!(license_count(&s, &s.admin), 2);
    }
}
