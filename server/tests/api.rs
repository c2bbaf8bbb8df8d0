//! Every endpoint over real HTTP on 127.0.0.1: success, bad input, wrong
//! tokens and scopes, and another organisation's objects.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{TestServer, get, post, post_empty, req};
use keyseal_core::Keyring;
use keyseal_core::license::{self, Expectations, MAX_LICENSE_LEN};
use serde_json::{Value, json};

fn product(s: &TestServer, token: &str, p: &str) {
    let r = post(
        s.addr,
        "/v1/products",
        token,
        &json!({ "product": p, "name": "Acme CAD" }),
    );
    assert_eq!(r.status, 201, "{}", r.text());
}

fn customer(s: &TestServer, token: &str) -> String {
    let r = post(
        s.addr,
        "/v1/customers",
        token,
        &json!({ "name": "Ada", "email": "ada@example.com" }),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["customer_id"].as_str().unwrap().to_owned()
}

fn mint(s: &TestServer, token: &str, p: &str, cus: &str) -> Value {
    let r = post(
        s.addr,
        "/v1/licenses",
        token,
        &json!({ "product": p, "customer_id": cus, "plan": "pro", "expires": "365d",
        "entitlements": ["export"], "ext": { "seats": "5" } }),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()
}

fn keys_listed(s: &TestServer) -> Vec<Value> {
    let r = get(s.addr, "/v1/keys", &s.admin);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["items"].as_array().unwrap().clone()
}

fn keyring(s: &TestServer) -> Keyring {
    let r = req(s.addr, "GET", "/v1/public/keyring", None, None, &[]);
    assert_eq!(r.status, 200);
    r.json()["keyring"]
        .as_str()
        .unwrap()
        .parse()
        .expect("keyring parses")
}

#[test]
fn health_readiness_metrics_and_openapi() {
    for s in common::backends() {
        let r = req(s.addr, "GET", "/healthz", None, None, &[]);
        assert_eq!((r.status, r.json()["status"].clone()), (200, json!("ok")));
        let r = req(s.addr, "GET", "/readyz", None, None, &[]);
        assert_eq!(
            (r.status, r.json()["status"].clone()),
            (200, json!("ready"))
        );
        let r = req(s.addr, "GET", "/metrics", None, None, &[]);
        assert_eq!(r.status, 200);
        assert!(
            r.text().contains(
                "keyseal_http_requests_total{method=\"GET\",route=\"/readyz\",status=\"200\"} 1"
            ),
            "{}",
            r.text()
        );
        assert!(r.text().contains("keyseal_licenses_minted_total 0"));
        // Made-up methods do not become labels: the exposition stays bounded.
        for n in 0..50 {
            let r = req(s.addr, &format!("FOO{n}"), "/healthz", None, None, &[]);
            assert_eq!(r.status, 405);
        }
        let text = req(s.addr, "GET", "/metrics", None, None, &[]).text();
        assert!(!text.contains("FOO"), "{text}");
        assert!(text.contains("method=\"other\""), "{text}");

        let r = req(s.addr, "GET", "/v1/openapi.json", None, None, &[]);
        assert_eq!(r.status, 200);
        let doc = r.json();
        assert_eq!(doc["openapi"], "3.1.0");
        // Every route the router serves is documented, with the methods it takes.
        for (path, methods) in [
            ("/healthz", &["get"][..]),
            ("/readyz", &["get"]),
            ("/metrics", &["get"]),
            ("/v1/openapi.json", &["get"]),
            ("/v1/public/keyring", &["get"]),
            ("/v1/public/revocations", &["get"]),
            ("/v1/public/orgs/{org_id}/keyring", &["get"]),
            ("/v1/public/orgs/{org_id}/revocations", &["get"]),
            ("/v1/public/leases", &["post"]),
            ("/v1/public/leases/check-in", &["post"]),
            ("/v1/public/leases/release", &["post"]),
            ("/v1/activation-requests", &["post"]),
            ("/v1/products", &["get", "post"]),
            ("/v1/products/{product}", &["get"]),
            ("/v1/products/{product}/lease-policy", &["post"]),
            ("/v1/products/{product}/trial-policy", &["get", "post"]),
            ("/v1/public/trials", &["post"]),
            ("/v1/customers", &["get", "post"]),
            ("/v1/customers/{id}", &["get"]),
            ("/v1/customers/{id}/export", &["get"]),
            ("/v1/customers/{id}/erase", &["post"]),
            ("/v1/licenses", &["get", "post"]),
            ("/v1/licenses/{id}", &["get"]),
            ("/v1/licenses/{id}/revoke", &["post"]),
            ("/v1/licenses/{id}/suspend", &["post"]),
            ("/v1/licenses/{id}/resume", &["post"]),
            ("/v1/licenses/{id}/activations", &["get", "post"]),
            (
                "/v1/licenses/{id}/activations/{activation_id}/deactivate",
                &["post"],
            ),
            ("/v1/keys", &["get"]),
            ("/v1/keys/rotate", &["post"]),
            ("/v1/keys/{key_id}/retire", &["post"]),
            ("/v1/keys/{key_id}/revoke", &["post"]),
            ("/v1/tokens", &["get", "post"]),
            ("/v1/tokens/{token_id}/revoke", &["post"]),
            ("/v1/audit", &["get"]),
            ("/v1/licenses/{id}/allotments", &["get", "post"]),
            ("/v1/licenses/{id}/relays/{relay_key_id}/revoke", &["post"]),
            ("/v1/public/allotments/renew", &["post"]),
            ("/v1/webhooks", &["get", "post"]),
            ("/v1/webhooks/{endpoint_id}", &["get", "post", "delete"]),
            ("/v1/webhooks/{endpoint_id}/secret", &["get"]),
            ("/v1/webhooks/{endpoint_id}/rotate-secret", &["post"]),
            ("/v1/webhooks/{endpoint_id}/deliveries", &["get"]),
            (
                "/v1/webhooks/{endpoint_id}/deliveries/{delivery_id}",
                &["get"],
            ),
            ("/v1/webhooks/{endpoint_id}/replay", &["post"]),
            ("/v1/payments/stripe", &["get", "post"]),
            ("/v1/payments/prices", &["get", "post"]),
            ("/v1/payments/prices/{price_id}", &["get", "delete"]),
            ("/v1/payments/events", &["get"]),
            ("/v1/email/settings", &["get", "post", "delete"]),
            ("/v1/public/orgs/{org_id}/payments/stripe", &["post"]),
        ] {
            for m in methods {
                assert!(
                    doc["paths"][path][m].is_object(),
                    "{m} {path} is not in the OpenAPI document"
                );
            }
        }
        assert_eq!(doc["paths"].as_object().unwrap().len(), 51);
        // Every operation says what it is, for people and for generated
        // clients: a unique camel-case id, a summary, a description, a tag.
        let mut ids = std::collections::BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (m, op) in item.as_object().unwrap() {
                let id = op["operationId"].as_str().unwrap_or_default();
                assert!(
                    !id.is_empty() && !id.contains('_') && ids.insert(id.to_owned()),
                    "{m} {path}: operationId {id:?}"
                );
                for field in ["summary", "description"] {
                    assert!(
                        op[field].as_str().is_some_and(|t| !t.is_empty()),
                        "{m} {path} has no {field}"
                    );
                }
                assert!(op["tags"][0].is_string(), "{m} {path} has no tag");
            }
        }
        // Every property of every schema has a type or names one, and every
        // time is stated in unix seconds.
        for (name, schema) in doc["components"]["schemas"].as_object().unwrap() {
            let Some(props) = schema["properties"].as_object() else {
                continue;
            };
            for (field, p) in props {
                assert!(
                    p.get("type").is_some() || p.get("$ref").is_some() || p.get("oneOf").is_some(),
                    "{name}.{field} has no type: {p}"
                );
                if field.ends_with("_at") || field.starts_with("valid_") {
                    assert!(
                        p["description"]
                            .as_str()
                            .is_some_and(|d| d.contains("nix seconds")),
                        "{name}.{field} states no unit: {p}"
                    );
                }
            }
        }
        // One definition per enum: the scopes and key states are named
        // schemas, never written inline.
        let text = doc.to_string();
        assert_eq!(
            text.matches("\"read:pii\"").count(),
            1,
            "the scope enum is written more than once"
        );
        // Every $ref resolves.
        for part in text.split("\"$ref\":\"#/components/").skip(1) {
            let target = &part[..part.find('"').unwrap()];
            let (kind, name) = target.split_once('/').unwrap();
            assert!(
                doc["components"][kind][name].is_object(),
                "dangling $ref {target}"
            );
        }
    }
}

#[test]
fn unknown_routes_and_methods_are_problems() {
    for s in common::backends() {
        get(s.addr, "/v1/nothing", &s.admin).problem(404, "not-found");
        req(s.addr, "DELETE", "/v1/licenses", Some(&s.admin), None, &[])
            .problem(405, "method-not-allowed");
        req(s.addr, "PUT", "/healthz", None, None, &[]).problem(405, "method-not-allowed");
    }
}

#[test]
fn authentication_and_scopes() {
    for s in common::backends() {
        // Missing, malformed, unknown tokens: 401 on every protected endpoint.
        for path in [
            "/v1/products",
            "/v1/customers",
            "/v1/licenses",
            "/v1/audit",
            "/v1/customers/cus_1",
            "/v1/licenses/00",
        ] {
            req(s.addr, "GET", path, None, None, &[]).problem(401, "unauthorized");
            get(s.addr, path, "not-a-token").problem(401, "unauthorized");
            let unknown = keyseal_server::auth::new_token().unwrap();
            get(s.addr, path, &unknown).problem(401, "unauthorized");
        }
        req(
            s.addr,
            "GET",
            "/v1/products",
            None,
            None,
            &[("Authorization", "Basic YTpi")],
        )
        .problem(401, "unauthorized");
        // Read scope reads but does not write.
        assert_eq!(get(s.addr, "/v1/products", &s.read).status, 200);
        post(s.addr, "/v1/products", &s.read, &json!({ "product": "x" })).problem(403, "forbidden");
        post(s.addr, "/v1/customers", &s.read, &json!({})).problem(403, "forbidden");
        // Issue scope writes.
        product(&s, &s.issue, "acme-cad");
        let cus = customer(&s, &s.issue);
        let lic = mint(&s, &s.issue, "acme-cad", &cus);
        let id = lic["license_id"].as_str().unwrap();
        post_empty(s.addr, &format!("/v1/licenses/{id}/suspend"), &s.read)
            .problem(403, "forbidden");
        post(
            s.addr,
            &format!("/v1/licenses/{id}/revoke"),
            &s.read,
            &json!({ "reason": "refund" }),
        )
        .problem(403, "forbidden");
        post_empty(s.addr, &format!("/v1/customers/{cus}/erase"), &s.read)
            .problem(403, "forbidden");
        post(
            s.addr,
            "/v1/licenses",
            &s.read,
            &json!({ "product": "acme-cad", "customer_id": cus, "plan": "pro", "expires": "1d" }),
        )
        .problem(403, "forbidden");
    }
}

#[test]
fn failed_authentication_is_rate_limited_per_client() {
    for s in common::backends() {
        // A client behind the same address (one load balancer) that has
        // authenticated before.
        assert_eq!(get(s.addr, "/v1/products", &s.read).status, 200);
        let bad = keyseal_server::auth::new_token().unwrap();
        for _ in 0..keyseal_server::auth::MAX_FAILURES {
            get(s.addr, "/v1/products", &bad).problem(401, "unauthorized");
        }
        get(s.addr, "/v1/products", &bad).problem(429, "too-many-failures");
        get(s.addr, "/v1/products", "not-a-token").problem(429, "too-many-failures");
        req(s.addr, "GET", "/v1/products", None, None, &[]).problem(429, "too-many-failures");
        // A token that authenticated here before keeps working; one never
        // seen here (not looked up: no ledger read for a blocked client)
        // waits like the bad ones.
        assert_eq!(get(s.addr, "/v1/products", &s.read).status, 200);
        get(s.addr, "/v1/products", &s.admin).problem(429, "too-many-failures");
        // Public endpoints still answer.
        assert_eq!(req(s.addr, "GET", "/healthz", None, None, &[]).status, 200);
    }
}

#[test]
fn request_bodies_are_closed_capped_and_typed() {
    for s in common::backends() {
        let a = s.addr;
        let t = s.admin.as_str();
        let send =
            |ct: &str, body: &[u8]| req(a, "POST", "/v1/products", Some(t), Some((ct, body)), &[]);
        send("application/json", br#"{"product":"acme","colour":"red"}"#)
            .problem(400, "bad-request");
        send("application/json", br#"{"product":42}"#).problem(400, "bad-request");
        send("application/json", br#"{"product":"acme""#).problem(400, "bad-request");
        send("application/json", b"").problem(400, "bad-request");
        send("application/json", b"[]").problem(400, "bad-request");
        send("application/json", br#"{}"#).problem(400, "bad-request");
        send("text/plain", br#"{"product":"acme"}"#).problem(415, "unsupported-media-type");
        req(a, "POST", "/v1/products", Some(t), None, &[]).problem(415, "unsupported-media-type");
        let huge = format!(r#"{{"product":"acme","name":"{}"}}"#, "x".repeat(200_000));
        send("application/json", huge.as_bytes()).problem(413, "body-too-large");
        send("application/json", "{\"product\":\"\u{0}\"}".as_bytes()).problem(400, "bad-request");
        send("application/json", br#"{"product":"a\u0000b"}"#).problem(422, "invalid-value");
        send(
            "application/json",
            br#"{"product":"acme","name":"a\u0007b"}"#,
        )
        .problem(422, "invalid-value");
        send("application/json", br#"{"product":"has space"}"#).problem(422, "invalid-value");
        send("application/json", br#"{"product":""}"#).problem(422, "invalid-value");
        let long = format!(r#"{{"product":"{}"}}"#, "a".repeat(300));
        send("application/json", long.as_bytes()).problem(422, "invalid-value");
        // Nothing was created.
        assert_eq!(get(a, "/v1/products", t).json()["items"], json!([]));
    }
}

#[test]
fn products_and_tenant_isolation() {
    for s in common::backends() {
        product(&s, &s.admin, "acme-cad");
        post(
            s.addr,
            "/v1/products",
            &s.admin,
            &json!({ "product": "acme-cad" }),
        )
        .problem(409, "conflict");
        let r = get(s.addr, "/v1/products/acme-cad", &s.admin);
        assert_eq!(r.json()["name"], "Acme CAD");
        assert_eq!(
            get(s.addr, "/v1/products", &s.admin).json()["items"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        get(s.addr, "/v1/products/nope", &s.admin).problem(404, "not-found");
        // Organisation B sees none of it, and may register the same id.
        get(s.addr, "/v1/products/acme-cad", &s.other).problem(404, "not-found");
        assert_eq!(
            get(s.addr, "/v1/products", &s.other).json()["items"],
            json!([])
        );
        product(&s, &s.other, "acme-cad");
    }
}

#[test]
fn customers_pagination_export_erasure_and_isolation() {
    for s in common::backends() {
        let ids: Vec<String> = (0..5).map(|_| customer(&s, &s.admin)).collect();
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..10 {
            let path = match &cursor {
                Some(c) => format!("/v1/customers?limit=2&cursor={c}"),
                None => "/v1/customers?limit=2".to_owned(),
            };
            let page = get(s.addr, &path, &s.admin).json();
            for c in page["items"].as_array().unwrap() {
                seen.push(c["customer_id"].as_str().unwrap().to_owned());
            }
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        let mut want = ids.clone();
        want.sort();
        assert_eq!(seen, want);
        get(s.addr, "/v1/customers?limit=0", &s.admin).problem(422, "invalid-value");
        get(s.addr, "/v1/customers?limit=501", &s.admin).problem(422, "invalid-value");
        get(s.addr, "/v1/customers?limit=x", &s.admin).problem(400, "bad-request");
        get(s.addr, "/v1/customers?colour=red", &s.admin).problem(400, "bad-request");

        let cus = &ids[0];
        product(&s, &s.admin, "acme-cad");
        let lic = mint(&s, &s.admin, "acme-cad", cus);
        let c = get(s.addr, &format!("/v1/customers/{cus}"), &s.admin).json();
        assert_eq!(
            (c["name"].clone(), c["email"].clone()),
            (json!("Ada"), json!("ada@example.com"))
        );
        let e = get(s.addr, &format!("/v1/customers/{cus}/export"), &s.admin).json();
        assert_eq!(e["customer"]["email"], "ada@example.com");
        assert_eq!(e["licenses"][0]["license_id"], lic["license_id"]);

        // Organisation B: not found everywhere, and cannot erase.
        get(s.addr, &format!("/v1/customers/{cus}"), &s.other).problem(404, "not-found");
        get(s.addr, &format!("/v1/customers/{cus}/export"), &s.other).problem(404, "not-found");
        post_empty(s.addr, &format!("/v1/customers/{cus}/erase"), &s.other)
            .problem(404, "not-found");
        assert_eq!(
            get(s.addr, "/v1/customers", &s.other).json()["items"],
            json!([])
        );
        // Nor mint for A's customer.
        product(&s, &s.other, "acme-cad");
        post(
            s.addr,
            "/v1/licenses",
            &s.other,
            &json!({ "product": "acme-cad", "customer_id": cus, "plan": "pro", "expires": "1d" }),
        )
        .problem(422, "invalid-value");

        // Erasure: the personal fields go, the opaque id and licenses stay.
        let c = post_empty(s.addr, &format!("/v1/customers/{cus}/erase"), &s.admin).json();
        assert_eq!(
            (c["name"].clone(), c["email"].clone()),
            (Value::Null, Value::Null)
        );
        assert!(c["erased_at"].is_u64());
        let e = get(s.addr, &format!("/v1/customers/{cus}/export"), &s.admin).json();
        assert_eq!(e["customer"]["email"], Value::Null);
        assert_eq!(e["licenses"].as_array().unwrap().len(), 1);
        // The audit log never held the personal fields.
        let audit = get(s.addr, "/v1/audit?limit=500", &s.admin).text();
        assert!(!audit.contains("ada@example.com") && !audit.contains("Ada"));
        get(s.addr, "/v1/customers/cus_nope", &s.admin).problem(404, "not-found");
        post_empty(s.addr, "/v1/customers/cus_nope/erase", &s.admin).problem(404, "not-found");
    }
}

#[test]
fn licenses_mint_verify_list_revoke_suspend_and_isolation() {
    for s in common::backends() {
        product(&s, &s.admin, "acme-cad");
        product(&s, &s.admin, "acme-viewer");
        let cus = customer(&s, &s.admin);
        let lic = mint(&s, &s.admin, "acme-cad", &cus);
        assert_eq!(lic["status"], "active");
        assert_eq!(lic["max_devices"], 1);
        let id = lic["license_id"].as_str().unwrap().to_owned();
        let key = lic["license_key"].as_str().unwrap().to_owned();

        // The key verifies offline against the public keyring.
        let ring = keyring(&s);
        let mut buf = [0u8; MAX_LICENSE_LEN];
        let v = license::verify_text(
            &key,
            &mut buf,
            &ring,
            &Expectations::new("acme-cad", common::now()),
        )
        .expect("the key verifies");
        assert!(v.has_entitlement("export"));

        // Bad mints.
        let base =
            json!({ "product": "acme-cad", "customer_id": cus, "plan": "pro", "expires": "365d" });
        let with = |k: &str, v: Value| {
            let mut b = base.clone();
            b[k] = v;
            b
        };
        for (body, status, slug) in [
            (with("product", json!("unknown")), 422, "invalid-value"),
            (
                with("customer_id", json!("cus_0000000000000000")),
                422,
                "invalid-value",
            ),
            (with("expires", json!("2001-01-01")), 422, "invalid-value"),
            (with("expires", json!("soon")), 422, "invalid-value"),
            (with("plan", json!("a b")), 422, "invalid-value"),
            (with("device", json!("ksfp1.nope")), 422, "invalid-value"),
            (with("device_match", json!(2)), 422, "invalid-value"),
            (with("max_devices", json!(0)), 422, "invalid-value"),
            (with("max_devices", json!(-1)), 400, "bad-request"),
            (with("device_match", json!(300)), 400, "bad-request"),
            (with("entitlements", json!("export")), 400, "bad-request"),
            (with("ext", json!({ "k": 1 })), 400, "bad-request"),
            (with("license_id", json!("x")), 400, "bad-request"),
            (json!({ "product": "acme-cad" }), 400, "bad-request"),
        ] {
            post(s.addr, "/v1/licenses", &s.admin, &body).problem(status, slug);
        }

        // Get, list with filters and cursor.
        assert_eq!(
            get(s.addr, &format!("/v1/licenses/{id}"), &s.admin).json()["license_key"],
            key
        );
        get(s.addr, "/v1/licenses/not-an-id", &s.admin).problem(404, "not-found");
        get(
            s.addr,
            "/v1/licenses/00000000000000000000000000000000",
            &s.admin,
        )
        .problem(404, "not-found");
        for _ in 0..3 {
            mint(&s, &s.admin, "acme-viewer", &cus);
        }
        let p = get(s.addr, "/v1/licenses?product=acme-viewer&limit=2", &s.admin).json();
        assert_eq!(p["items"].as_array().unwrap().len(), 2);
        let c = p["next_cursor"].as_str().unwrap();
        let p2 = get(
            s.addr,
            &format!("/v1/licenses?product=acme-viewer&limit=2&cursor={c}"),
            &s.admin,
        )
        .json();
        assert_eq!(p2["items"].as_array().unwrap().len(), 1);
        assert_eq!(p2["next_cursor"], Value::Null);
        assert_eq!(
            get(s.addr, &format!("/v1/licenses?customer_id={cus}"), &s.admin).json()["items"]
                .as_array()
                .unwrap()
                .len(),
            4
        );
        get(s.addr, "/v1/licenses?status=active", &s.admin).problem(400, "bad-request");
        assert_eq!(get(s.addr, "/v1/licenses?cursor=", &s.admin).status, 200);
        // A malformed cursor is a 400, not an empty page.
        for bad in ["zzz", "cus_00", "0123", "%20"] {
            get(s.addr, &format!("/v1/licenses?cursor={bad}"), &s.admin)
                .problem(400, "bad-request");
        }
        for bad in ["zzz", "cus_", "cus_xyz", "0123456789abcdef0123456789abcdef"] {
            get(s.addr, &format!("/v1/customers?cursor={bad}"), &s.admin)
                .problem(400, "bad-request");
        }

        // Organisation B cannot see or touch A's license.
        get(s.addr, &format!("/v1/licenses/{id}"), &s.other).problem(404, "not-found");
        assert_eq!(
            get(s.addr, "/v1/licenses", &s.other).json()["items"],
            json!([])
        );
        post(
            s.addr,
            &format!("/v1/licenses/{id}/revoke"),
            &s.other,
            &json!({ "reason": "refund" }),
        )
        .problem(404, "not-found");
        post_empty(s.addr, &format!("/v1/licenses/{id}/suspend"), &s.other)
            .problem(404, "not-found");
        post_empty(s.addr, &format!("/v1/licenses/{id}/resume"), &s.other)
            .problem(404, "not-found");
        assert_eq!(
            get(s.addr, &format!("/v1/licenses/{id}"), &s.admin).json()["status"],
            "active"
        );

        // Suspend and resume (idempotent).
        let r = post_empty(s.addr, &format!("/v1/licenses/{id}/suspend"), &s.admin).json();
        assert_eq!(r["status"], "suspended");
        assert_eq!(
            post_empty(s.addr, &format!("/v1/licenses/{id}/suspend"), &s.admin).json()["suspended_at"],
            r["suspended_at"]
        );
        assert_eq!(
            post_empty(s.addr, &format!("/v1/licenses/{id}/resume"), &s.admin).json()["status"],
            "active"
        );
        post_empty(s.addr, "/v1/licenses/nope/suspend", &s.admin).problem(404, "not-found");

        // Revoke: the public list changes (new ETag) and names the license.
        let before = req(s.addr, "GET", "/v1/public/revocations", None, None, &[]);
        let etag = before.header("etag").unwrap().to_owned();
        post(
            s.addr,
            &format!("/v1/licenses/{id}/revoke"),
            &s.admin,
            &json!({ "reason": "has space" }),
        )
        .problem(422, "invalid-value");
        post(
            s.addr,
            &format!("/v1/licenses/{id}/revoke"),
            &s.admin,
            &json!({ "reason": "refund", "x": 1 }),
        )
        .problem(400, "bad-request");
        let r = post(
            s.addr,
            &format!("/v1/licenses/{id}/revoke"),
            &s.admin,
            &json!({ "reason": "refund" }),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(
            (
                r.json()["status"].clone(),
                r.json()["revoke_reason"].clone()
            ),
            (json!("revoked"), json!("refund"))
        );
        post(
            s.addr,
            &format!("/v1/licenses/{id}/revoke"),
            &s.admin,
            &json!({ "reason": "refund" }),
        )
        .problem(409, "conflict");
        // Revocation is final: no suspend or resume after it, nothing written.
        let audit_len = |s: &TestServer| {
            get(s.addr, "/v1/audit?limit=500", &s.admin).json()["items"]
                .as_array()
                .unwrap()
                .len()
        };
        let entries = audit_len(&s);
        for op in ["suspend", "resume"] {
            post_empty(s.addr, &format!("/v1/licenses/{id}/{op}"), &s.admin)
                .problem(409, "conflict");
        }
        assert_eq!(audit_len(&s), entries);
        let l = get(s.addr, &format!("/v1/licenses/{id}"), &s.admin).json();
        assert_eq!(
            (l["status"].as_str(), &l["suspended_at"]),
            (Some("revoked"), &Value::Null)
        );
        post(
            s.addr,
            "/v1/licenses/00000000000000000000000000000000/revoke",
            &s.admin,
            &json!({ "reason": "refund" }),
        )
        .problem(404, "not-found");
        let after = req(s.addr, "GET", "/v1/public/revocations", None, None, &[]);
        assert_ne!(after.header("etag").unwrap(), etag);
        let list_text = after.text();
        let b64: String = list_text
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        let bytes = base64_decode(&b64);
        let list = keyseal_core::RevocationList::verify(&bytes, &ring).expect("the list verifies");
        assert!(list.revoked_licenses().any(|l| l.to_string() == id));

        let m = req(s.addr, "GET", "/metrics", None, None, &[]).text();
        assert!(m.contains("keyseal_licenses_minted_total 4"), "{m}");
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64ct::{Base64UrlUnpadded, Encoding};
    Base64UrlUnpadded::decode_vec(s).expect("base64url")
}

#[test]
fn public_documents_are_cacheable() {
    for s in common::backends() {
        for path in [
            "/v1/public/keyring",
            "/v1/public/revocations",
            "/v1/openapi.json",
        ] {
            let r = req(s.addr, "GET", path, None, None, &[]);
            assert_eq!(r.status, 200);
            let etag = r.header("etag").expect("etag").to_owned();
            assert!(etag.starts_with('"') && etag.ends_with('"'));
            assert!(
                r.header("cache-control")
                    .is_some_and(|c| c.contains("max-age"))
            );
            let again = req(s.addr, "GET", path, None, None, &[("If-None-Match", &etag)]);
            assert_eq!(again.status, 304);
            assert!(again.body.is_empty());
            assert_eq!(again.header("etag"), Some(etag.as_str()));
            let other = req(
                s.addr,
                "GET",
                path,
                None,
                None,
                &[("If-None-Match", "\"something-else\"")],
            );
            assert_eq!(other.status, 200);
        }
        // The keyring never holds a secret: public keys only.
        let k = req(s.addr, "GET", "/v1/public/keyring", None, None, &[]).json();
        for key in k["keys"].as_array().unwrap() {
            let fields: Vec<&str> = key
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            assert!(
                fields.iter().all(|f| !f.contains("secret")
                    && !f.contains("seed")
                    && !f.contains("private")),
                "{fields:?}"
            );
        }
    }
}

#[test]
fn audit_log_is_per_organisation_and_chained() {
    for s in common::backends() {
        product(&s, &s.admin, "acme-cad");
        let cus = customer(&s, &s.issue);
        mint(&s, &s.issue, "acme-cad", &cus);
        product(&s, &s.other, "other-app");
        let a = get(s.addr, "/v1/audit", &s.read).json();
        let actions: Vec<&str> = a["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        // The default organisation's setup (made with the vault, before
        // any of its tokens existed), then its own actions.
        let (setup, own) = actions.split_at(actions.len() - 3);
        assert_eq!(own, ["product.add", "customer.create", "license.issue"]);
        assert_eq!(setup[..2], ["org.create", "vault.init"]);
        assert!(
            setup[2..]
                .iter()
                .all(|a| ["token.create", "revocations.publish"].contains(a)),
            "{setup:?}"
        );
        let b = get(s.addr, "/v1/audit", &s.other).json();
        let b_actions: Vec<&str> = b["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        assert_eq!(b_actions, ["org.create", "product.add"]);
        // Each organisation's entries are its own chain, numbered from 1
        // (another's volume does not show), which the caller can check.
        for (items, org) in [(&a, "a"), (&b, "b")] {
            let entries: Vec<keyseal_issuer::audit::AuditEntry> = items["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| keyseal_issuer::audit::AuditEntry {
                    seq: e["seq"].as_u64().unwrap(),
                    at: e["at"].as_u64().unwrap(),
                    actor: e["actor"].as_str().unwrap().to_owned(),
                    action: e["action"].as_str().unwrap().to_owned(),
                    // The hash covers the details as compact JSON, keys in
                    // the order given.
                    details: e["details"].to_string(),
                    prev_hash: e["prev_hash"].as_str().unwrap().to_owned(),
                    hash: e["hash"].as_str().unwrap().to_owned(),
                })
                .collect();
            assert_eq!(entries[0].seq, 1, "{org}");
            assert_eq!(
                keyseal_issuer::audit::verify_chain(&entries, None),
                Ok(entries.len() as u64),
                "{org}"
            );
        }
        // Cursor paging.
        let p = get(s.addr, "/v1/audit?limit=2", &s.admin).json();
        let c = p["next_cursor"].as_str().unwrap();
        let p2 = get(s.addr, &format!("/v1/audit?limit=10&cursor={c}"), &s.admin).json();
        assert_eq!(p2["items"].as_array().unwrap().len(), actions.len() - 2);
        get(s.addr, "/v1/audit?cursor=abc", &s.admin).problem(400, "bad-request");
        req(s.addr, "POST", "/v1/audit", Some(&s.admin), None, &[])
            .problem(405, "method-not-allowed");
    }
}

fn fingerprint(n: u8) -> keyseal_core::Fingerprint {
    use keyseal_core::Fingerprint;
    let parts: Vec<_> = ["machine", "disk", "board"]
        .iter()
        .map(|k| Fingerprint::component("acme-cad", k, &[n, 1, 2]))
        .collect();
    Fingerprint::from_components(&parts).unwrap()
}

#[test]
fn activations_enforce_the_device_limit_and_bind_keys() {
    for s in common::backends() {
        product(&s, &s.admin, "acme-cad");
        let cus = customer(&s, &s.admin);
        let r = post(
            s.addr,
            "/v1/licenses",
            &s.admin,
            &json!({ "product": "acme-cad", "customer_id": cus, "plan": "pro",
            "expires": "365d", "max_devices": 2 }),
        );
        let id = r.json()["license_id"].as_str().unwrap().to_owned();
        let acts = format!("/v1/licenses/{id}/activations");
        let (f1, f2, f3) = (fingerprint(1), fingerprint(2), fingerprint(3));

        let a1 = post(
            s.addr,
            &acts,
            &s.issue,
            &json!({ "fingerprint": f1.to_string() }),
        );
        assert_eq!(a1.status, 201, "{}", a1.text());
        let a1 = a1.json();
        // The device key verifies on that device only.
        let ring = keyring(&s);
        let key = a1["device_key"].as_str().unwrap();
        let mut buf = [0u8; MAX_LICENSE_LEN];
        let now = common::now();
        assert!(
            license::verify_text(
                key,
                &mut buf,
                &ring,
                &Expectations::new("acme-cad", now).device(&f1)
            )
            .is_ok()
        );
        assert!(
            license::verify_text(
                key,
                &mut buf,
                &ring,
                &Expectations::new("acme-cad", now).device(&f2)
            )
            .is_err()
        );
        // The same device again: its activation, no new seat.
        let again = post(
            s.addr,
            &acts,
            &s.issue,
            &json!({ "fingerprint": f1.to_string() }),
        );
        assert_eq!(again.status, 200);
        assert_eq!(again.json()["activation_id"], a1["activation_id"]);
        assert_eq!(
            post(
                s.addr,
                &acts,
                &s.issue,
                &json!({ "fingerprint": f2.to_string(), "device_match": 2 })
            )
            .status,
            201
        );
        post(
            s.addr,
            &acts,
            &s.issue,
            &json!({ "fingerprint": f3.to_string() }),
        )
        .problem(409, "device-limit");
        // Deactivating frees the seat.
        let act1 = a1["activation_id"].as_str().unwrap();
        let d = post_empty(s.addr, &format!("{acts}/{act1}/deactivate"), &s.issue);
        assert_eq!(d.status, 200, "{}", d.text());
        assert!(d.json()["deactivated_at"].is_u64());
        assert_eq!(
            post(
                s.addr,
                &acts,
                &s.issue,
                &json!({ "fingerprint": f3.to_string() })
            )
            .status,
            201
        );
        let list = get(s.addr, &acts, &s.read).json();
        assert_eq!(list["items"].as_array().unwrap().len(), 3);

        // Bad input.
        post(
            s.addr,
            &acts,
            &s.issue,
            &json!({ "fingerprint": "ksfp1.bad" }),
        )
        .problem(422, "invalid-value");
        post(
            s.addr,
            &acts,
            &s.issue,
            &json!({ "fingerprint": f1.to_string(), "device_match": 9 }),
        )
        .problem(422, "invalid-value");
        post(
            s.addr,
            &acts,
            &s.issue,
            &json!({ "fingerprint": f1.to_string(), "x": 1 }),
        )
        .problem(400, "bad-request");
        post(s.addr, &acts, &s.issue, &json!({ "fingerprint": 7 })).problem(400, "bad-request");
        post(
            s.addr,
            &acts,
            &s.read,
            &json!({ "fingerprint": f1.to_string() }),
        )
        .problem(403, "forbidden");
        post_empty(s.addr, &format!("{acts}/act_nope/deactivate"), &s.issue)
            .problem(404, "not-found");
        post(
            s.addr,
            "/v1/licenses/nope/activations",
            &s.issue,
            &json!({ "fingerprint": f1.to_string() }),
        )
        .problem(404, "not-found");

        // Another organisation: nothing.
        post(
            s.addr,
            &acts,
            &s.other,
            &json!({ "fingerprint": f1.to_string() }),
        )
        .problem(404, "not-found");
        get(s.addr, &acts, &s.other).problem(404, "not-found");
        post_empty(s.addr, &format!("{acts}/{act1}/deactivate"), &s.other)
            .problem(404, "not-found");

        // Suspended and revoked licenses get no seat.
        post_empty(s.addr, &format!("/v1/licenses/{id}/suspend"), &s.issue);
        post(
            s.addr,
            &acts,
            &s.issue,
            &json!({ "fingerprint": fingerprint(4).to_string() }),
        )
        .problem(409, "license-suspended");
        post_empty(s.addr, &format!("/v1/licenses/{id}/resume"), &s.issue);
        post(
            s.addr,
            &format!("/v1/licenses/{id}/revoke"),
            &s.issue,
            &json!({ "reason": "refund" }),
        );
        post(
            s.addr,
            &acts,
            &s.issue,
            &json!({ "fingerprint": fingerprint(4).to_string() }),
        )
        .problem(409, "license-revoked");
    }
}

#[test]
fn signing_keys_list_rotate_retire_admin_only() {
    for s in common::backends() {
        for t in [&s.read, &s.issue] {
            get(s.addr, "/v1/keys", t).problem(403, "forbidden");
            post_empty(s.addr, "/v1/keys/rotate", t).problem(403, "forbidden");
            post_empty(s.addr, "/v1/keys/0000000000000000/retire", t).problem(403, "forbidden");
        }
        let keys = get(s.addr, "/v1/keys", &s.admin).json();
        let items = keys["items"].as_array().unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0]["status"], "active");
        let old = items[0]["key_id"].as_str().unwrap().to_owned();
        // No secret in any key view.
        assert!(
            items[0]
                .as_object()
                .unwrap()
                .keys()
                .all(|k| !k.contains("secret") && !k.contains("seed"))
        );

        product(&s, &s.admin, "acme-cad");
        let cus = customer(&s, &s.admin);
        let before = mint(&s, &s.admin, "acme-cad", &cus);
        let r = post_empty(s.addr, "/v1/keys/rotate", &s.admin);
        assert_eq!(r.status, 201, "{}", r.text());
        let new = r.json()["key_id"].as_str().unwrap().to_owned();
        assert_ne!(new, old);
        let after = mint(&s, &s.admin, "acme-cad", &cus);
        assert_eq!(after["key_id"], new);
        // Both keys verify: the keyring holds the retired one for its window.
        let ring = keyring(&s);
        for l in [&before, &after] {
            let mut buf = [0u8; MAX_LICENSE_LEN];
            let key = l["license_key"].as_str().unwrap();
            assert!(
                license::verify_text(
                    key,
                    &mut buf,
                    &ring,
                    &Expectations::new("acme-cad", common::now())
                )
                .is_ok()
            );
        }
        post_empty(s.addr, &format!("/v1/keys/{old}/retire"), &s.admin).problem(409, "conflict");
        post_empty(s.addr, "/v1/keys/0000000000000000/retire", &s.admin).problem(404, "not-found");
        post_empty(s.addr, "/v1/keys/zz/retire", &s.admin).problem(404, "not-found");
        // Retiring the active key stops minting until the next rotation.
        let r = post_empty(s.addr, &format!("/v1/keys/{new}/retire"), &s.admin);
        assert_eq!(r.status, 200, "{}", r.text());
        post(
            s.addr,
            "/v1/licenses",
            &s.admin,
            &json!({ "product": "acme-cad", "customer_id": cus, "plan": "pro", "expires": "1d" }),
        )
        .problem(409, "no-active-key");
        // So do revocations, before anything is written: no key could sign
        // the list that publishes them.
        let lid = after["license_id"].as_str().unwrap();
        post(
            s.addr,
            &format!("/v1/licenses/{lid}/revoke"),
            &s.admin,
            &json!({ "reason": "refund" }),
        )
        .problem(409, "no-active-key");
        post(
            s.addr,
            &format!("/v1/keys/{old}/revoke"),
            &s.admin,
            &json!({ "reason": "retired" }),
        )
        .problem(409, "no-active-key");
        assert_eq!(
            get(s.addr, &format!("/v1/licenses/{lid}"), &s.admin).json()["status"],
            "active"
        );
        assert!(keys_listed(&s).iter().all(|k| k["status"] != "revoked"));
        assert_eq!(post_empty(s.addr, "/v1/keys/rotate", &s.admin).status, 201);
        mint(&s, &s.admin, "acme-cad", &cus);
    }
}

/// A mint may carry the vendor's own id (an order number): it comes back
/// with the license, a second mint with it is a 409 naming the first
/// license (on both back ends), another organisation may use the same id,
/// and a malformed one is a 422.
#[test]
fn external_ids_are_unique_per_organisation() {
    for s in common::backends() {
        product(&s, &s.admin, "acme-cad");
        let cus = customer(&s, &s.issue);
        let body = json!({ "product": "acme-cad", "customer_id": cus, "plan": "pro",
                           "expires": "30d", "external_id": "order-42" });
        let first = post(s.addr, "/v1/licenses", &s.issue, &body);
        assert_eq!(first.status, 201, "{}", first.text());
        let first = first.json();
        assert_eq!(first["external_id"], "order-42");
        let id = first["license_id"].as_str().unwrap();
        let got = get(s.addr, &format!("/v1/licenses/{id}"), &s.read).json();
        assert_eq!(got["external_id"], "order-42");
        let again = post(s.addr, "/v1/licenses", &s.issue, &body);
        assert_eq!(again.status, 409, "{}", again.text());
        let p = again.json();
        assert_eq!(p["type"], "urn:keyseal:problem:external-id-exists", "{p}");
        assert!(p["detail"].as_str().unwrap().contains(id), "{p}");
        // Another organisation's ids are its own.
        product(&s, &s.other, "acme-cad");
        let other_cus = customer(&s, &s.other);
        let theirs = json!({ "product": "acme-cad", "customer_id": other_cus, "plan": "pro",
                             "expires": "30d", "external_id": "order-42" });
        assert_eq!(post(s.addr, "/v1/licenses", &s.other, &theirs).status, 201);
        let mut bad = body.clone();
        bad["external_id"] = json!("order 42");
        assert_eq!(post(s.addr, "/v1/licenses", &s.issue, &bad).status, 422);
    }
}

/// A license's metadata: bounded, returned with the license and in its
/// customer's export, never in the key, erased with the customer; an
/// email address in it is refused (personal data goes on the customer).
#[test]
fn license_metadata_is_kept_exported_and_erased() {
    for s in common::backends() {
        product(&s, &s.admin, "acme-cad");
        let cus = customer(&s, &s.issue);
        let body = json!({ "product": "acme-cad", "customer_id": cus, "plan": "pro", "expires": "30d",
                           "metadata": { "reseller": "r-17", "plan_id": "price_123" } });
        let r = post(s.addr, "/v1/licenses", &s.issue, &body);
        assert_eq!(r.status, 201, "{}", r.text());
        let made = r.json();
        assert_eq!(
            made["metadata"],
            json!({ "reseller": "r-17", "plan_id": "price_123" })
        );
        let key = made["license_key"].as_str().unwrap();
        let mut buf = [0u8; MAX_LICENSE_LEN];
        let bytes = license::decode_text(key, &mut buf).unwrap();
        assert!(
            !bytes.windows(4).any(|w| w == b"r-17"),
            "metadata is not in the key"
        );
        let id = made["license_id"].as_str().unwrap();
        let got = get(s.addr, &format!("/v1/licenses/{id}"), &s.read).json();
        assert_eq!(got["metadata"]["reseller"], "r-17");
        let export = get(s.addr, &format!("/v1/customers/{cus}/export"), &s.admin).json();
        assert_eq!(
            export["licenses"][0]["metadata"]["plan_id"], "price_123",
            "{export}"
        );

        for bad in [
            json!({ "who": "jane@example.com" }),
            json!({ "bad key": "x" }),
            serde_json::Value::Object((0..21).map(|n| (format!("k{n}"), json!("v"))).collect()),
        ] {
            let mut b = body.clone();
            b["metadata"] = bad;
            let r = post(s.addr, "/v1/licenses", &s.issue, &b);
            assert_eq!(r.status, 422, "{}", r.text());
        }
        let dup = r#"{"product":"acme-cad","customer_id":"CUS","plan":"pro","expires":"30d","metadata":{"a":"1","a":"2"}}"#
            .replace("CUS", &cus);
        let r = req(
            s.addr,
            "POST",
            "/v1/licenses",
            Some(&s.issue),
            Some(("application/json", dup.as_bytes())),
            &[],
        );
        assert_eq!(r.status, 400, "{}", r.text());

        let r = post_empty(s.addr, &format!("/v1/customers/{cus}/erase"), &s.admin);
        assert_eq!(r.status, 200, "{}", r.text());
        let got = get(s.addr, &format!("/v1/licenses/{id}"), &s.read).json();
        assert_eq!(got["metadata"], json!({}), "erased with the customer");
    }
}
