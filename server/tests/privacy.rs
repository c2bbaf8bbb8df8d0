//! Personal data over real HTTP, on SQLite and PostgreSQL: names, emails
//! and metadata are sealed at rest (no byte of them in the SQLite file, its
//! WAL, or any row of the PostgreSQL database), shown only to `admin` and
//! `read:pii` tokens, found by email through a keyed hash, exported whole
//! (licenses, activations, audit entries), and erased for good.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{TestServer, get, post, post_empty};
use serde_json::{Value, json};

const NAME: &str = "Zelda Quuxworth";
const EMAIL: &str = "zelda.quuxworth@example.org";
const META: &str = "loyalty-ZQ-99871";

fn token(s: &TestServer, scopes: &[&str]) -> String {
    let r = post(
        s.addr,
        "/v1/tokens",
        &s.admin,
        &json!({ "name": "t", "scopes": scopes }),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["token"].as_str().unwrap().to_owned()
}

fn activate(s: &TestServer, lic: &str) {
    use keyseal_core::Fingerprint;
    let parts: Vec<_> = ["machine", "disk"]
        .iter()
        .map(|k| Fingerprint::component("acme-cad", k, b"zelda-laptop"))
        .collect();
    let fp = Fingerprint::from_components(&parts).unwrap();
    let r = post(
        s.addr,
        &format!("/v1/licenses/{lic}/activations"),
        &s.issue,
        &json!({ "fingerprint": fp.to_string() }),
    );
    assert_eq!(r.status, 201, "{}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn personal_data_is_sealed_scoped_exported_and_erased() {
    for backend in common::backend_list() {
        let s = tokio::task::spawn_blocking(move || common::start_on(backend))
            .await
            .unwrap();
        let (s, cus, lic, pii, other_cus) = tokio::task::spawn_blocking(move || {
            let r = post(
                s.addr,
                "/v1/products",
                &s.admin,
                &json!({ "product": "acme-cad", "name": "Acme CAD" }),
            );
            assert_eq!(r.status, 201);
            let r = post(
                s.addr,
                "/v1/customers",
                &s.issue,
                &json!({ "name": NAME, "email": EMAIL, "metadata": { "crm": META } }),
            );
            assert_eq!(r.status, 201, "{}", r.text());
            // Its creator (an issue token) gets back what it sent.
            assert_eq!(r.json()["email"], EMAIL);
            let cus = r.json()["customer_id"].as_str().unwrap().to_owned();
            let r = post(
                s.addr,
                "/v1/customers",
                &s.issue,
                &json!({ "name": "Someone Else", "email": "else@example.org" }),
            );
            let other_cus = r.json()["customer_id"].as_str().unwrap().to_owned();
            let r = post(
                s.addr,
                "/v1/licenses",
                &s.issue,
                &json!({ "product": "acme-cad", "customer_id": cus, "plan": "pro", "expires": "30d" }),
            );
            assert_eq!(r.status, 201, "{}", r.text());
            let lic = r.json()["license_id"].as_str().unwrap().to_owned();
            activate(&s, &lic);
            let r = post(
                s.addr,
                &format!("/v1/licenses/{lic}/revoke"),
                &s.issue,
                &json!({ "reason": "superseded" }),
            );
            assert_eq!(r.status, 200, "{}", r.text());
            let pii = token(&s, &["read", "read:pii"]);
            (s, cus, lic, pii, other_cus)
        })
        .await
        .unwrap();

        // Sealed at rest: not one of the three values is in the ledger.
        let bytes = common::ledger_bytes(&s).await;
        for v in [NAME, EMAIL, META, "Someone Else", "else@example.org"] {
            assert!(
                !common::holds(&bytes, v),
                "{backend:?}: `{v}` is in the ledger"
            );
        }

        let s = tokio::task::spawn_blocking(move || {
            let path = format!("/v1/customers/{cus}");
            // read sees the customer, not the person; read:pii and admin do.
            let r = get(s.addr, &path, &s.read).json();
            assert_eq!(r["redacted"], true);
            assert_eq!(r["name"], Value::Null);
            assert_eq!(r["email"], Value::Null);
            let list = get(s.addr, "/v1/customers", &s.read).text();
            assert!(!list.contains(NAME) && !list.contains(EMAIL), "{list}");
            for t in [&pii, &s.admin] {
                let r = get(s.addr, &path, t).json();
                assert_eq!(r["redacted"], false);
                assert_eq!(r["name"], NAME);
                assert_eq!(r["email"], EMAIL);
                assert_eq!(r["metadata"]["crm"], META);
            }
            // License and device keys: not for read alone.
            let l = get(s.addr, &format!("/v1/licenses/{lic}"), &s.read).json();
            assert_eq!(l["license_key"], Value::Null);
            assert_eq!(l["redacted"], true);
            let acts = get(s.addr, &format!("/v1/licenses/{lic}/activations"), &s.read).json();
            assert_eq!(acts["items"][0]["device_key"], Value::Null);
            for t in [&s.issue, &pii, &s.admin] {
                let l = get(s.addr, &format!("/v1/licenses/{lic}"), t).json();
                assert!(l["license_key"].as_str().unwrap().starts_with("ks1."));
                assert_eq!(l["redacted"], false);
            }
            let list = get(s.addr, "/v1/licenses", &s.read).text();
            assert!(!list.contains("ks1."), "{list}");
            // A read:pii token alone may not mint or change anything.
            let r = post(
                s.addr,
                "/v1/customers",
                &token(&s, &["read:pii"]),
                &json!({}),
            );
            r.problem(403, "forbidden");

            // By email, case and spaces aside, through the keyed hash.
            let q = format!("/v1/customers?email={}", "ZELDA.Quuxworth%40example.org%20");
            get(s.addr, &q, &s.read).problem(403, "forbidden");
            let r = get(s.addr, &q, &pii).json();
            let items = r["items"].as_array().unwrap();
            assert_eq!(items.len(), 1, "{r}");
            assert_eq!(items[0]["customer_id"], cus.as_str());
            let r = get(s.addr, "/v1/customers?email=nobody%40example.org", &pii).json();
            assert_eq!(r["items"], json!([]));

            // The export is whole, and only for read:pii or admin.
            let ex = format!("/v1/customers/{cus}/export");
            get(s.addr, &ex, &s.read).problem(403, "forbidden");
            let e = get(s.addr, &ex, &pii).json();
            assert_eq!(e["customer"]["email"], EMAIL);
            assert_eq!(e["licenses"][0]["license_id"], lic.as_str());
            assert_eq!(e["activations"].as_array().unwrap().len(), 1);
            let actions: Vec<&str> = e["audit"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["action"].as_str().unwrap())
                .collect();
            assert_eq!(
                actions,
                [
                    "customer.create",
                    "license.issue",
                    "license.activate",
                    "license.revoke"
                ]
            );
            assert!(!e.to_string().contains(&other_cus));

            // Erasure: the fields, the key, the hash; the device fingerprints.
            let r = post_empty(s.addr, &format!("/v1/customers/{cus}/erase"), &s.issue);
            assert_eq!(r.status, 200, "{}", r.text());
            let e = get(s.addr, &ex, &s.admin).json();
            assert_eq!(e["customer"]["name"], Value::Null);
            assert_eq!(e["customer"]["email"], Value::Null);
            assert_eq!(e["customer"]["metadata"], json!({}));
            assert!(e["customer"]["erased_at"].is_u64());
            assert_eq!(e["activations"][0]["fingerprint"], "erased");
            assert_eq!(e["licenses"][0]["license_id"], lic.as_str());
            assert_eq!(
                e["audit"].as_array().unwrap().last().unwrap()["action"],
                "customer.erase"
            );
            let r = get(s.addr, &q, &pii).json();
            assert_eq!(r["items"], json!([]));
            // The other customer is untouched.
            let r = get(s.addr, &format!("/v1/customers/{other_cus}"), &s.admin).json();
            assert_eq!(r["name"], "Someone Else");
            s
        })
        .await
        .unwrap();
        let bytes = common::ledger_bytes(&s).await;
        for v in [NAME, EMAIL, META] {
            assert!(
                !common::holds(&bytes, v),
                "{backend:?}: `{v}` is in the ledger"
            );
        }
        tokio::task::spawn_blocking(move || drop(s)).await.unwrap();
    }
}

#[test]
fn customer_fields_are_checked() {
    let s = common::start();
    for (body, what) in [
        (json!({ "metadata": { "a b": "x" } }), "metadata"),
        (json!({ "metadata": { "k": "\u{202E}x" } }), "metadata"),
        (json!({ "metadata": { "k": "x".repeat(501) } }), "metadata"),
        (
            json!({ "metadata": (0..21).map(|i| (format!("k{i}"), json!("v"))).collect::<serde_json::Map<_, _>>() }),
            "metadata",
        ),
        (json!({ "email": "a".repeat(255) }), "email"),
    ] {
        let r = post(s.addr, "/v1/customers", &s.admin, &body);
        r.problem(422, "invalid-value");
        assert!(r.text().contains(what), "{}", r.text());
    }
    let raw = br#"{"metadata":{"k":"1","k":"2"}}"#;
    let r = common::req(
        s.addr,
        "POST",
        "/v1/customers",
        Some(&s.admin),
        Some(("application/json", raw)),
        &[],
    );
    r.problem(400, "bad-request");
}
