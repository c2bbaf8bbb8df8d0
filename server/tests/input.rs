//! Hostile input over real HTTP, on SQLite and PostgreSQL: control
//! characters in paths and queries, times past what the ledger stores,
//! repeated extension keys, email addresses in keys, bidi and invisible
//! characters in names; and which answers may be cached.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{TestServer, get, post, req};
use serde_json::json;

fn setup(s: &TestServer) -> String {
    let r = post(
        s.addr,
        "/v1/products",
        &s.admin,
        &json!({ "product": "acme-cad", "name": "Acme CAD" }),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let r = post(s.addr, "/v1/customers", &s.admin, &json!({ "name": "Ada" }));
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["customer_id"].as_str().unwrap().to_owned()
}

#[test]
fn control_characters_in_paths_and_queries_are_400s() {
    for s in common::backends() {
        let cus = setup(&s);
        let org = s.org_a.clone();
        let gets = [
            "/v1/customers/cus_%00x".to_owned(),
            "/v1/customers/cus_%00x/export".to_owned(),
            "/v1/licenses/lic_%00".to_owned(),
            "/v1/licenses/lic_%1f/activations".to_owned(),
            "/v1/products/acme%00".to_owned(),
            format!("/v1/licenses?customer_id={cus}%00"),
            "/v1/licenses?product=acme%00cad".to_owned(),
            "/v1/licenses?cursor=%00".to_owned(),
            "/v1/customers?cursor=a%7Fb".to_owned(),
            "/v1/audit?action=%00".to_owned(),
            format!("/v1/public/orgs/{org}%00/keyring"),
            format!("/v1/public/orgs/{org}%00/revocations"),
        ];
        for path in &gets {
            let r = get(s.addr, path, &s.admin);
            r.problem(400, "bad-request");
        }
        for path in [
            "/v1/customers/cus_%00/erase",
            "/v1/licenses/lic_%00/revoke",
            "/v1/tokens/tok_%00/revoke",
            "/v1/keys/%00/retire",
        ] {
            let r = post(s.addr, path, &s.admin, &json!({ "reason": "superseded" }));
            r.problem(400, "bad-request");
        }
        // A percent sign that is not a control character is still fine.
        let r = get(s.addr, "/v1/customers/cus_%41", &s.admin);
        r.problem(404, "not-found");
    }
}

#[test]
fn mint_input_is_checked_before_it_is_signed() {
    for s in common::backends() {
        let cus = setup(&s);
        let mint = |body: serde_json::Value| post(s.addr, "/v1/licenses", &s.admin, &body);
        let base =
            json!({ "product": "acme-cad", "customer_id": cus, "plan": "pro", "expires": "365d" });
        let with = |k: &str, v: serde_json::Value| {
            let mut b = base.clone();
            b[k] = v;
            b
        };
        // Times past 9999-12-30T22:00:00Z: the key, the ledger and the API
        // would disagree on them (u64, i64, RFC 3339).
        for late in [
            "18446744073709551615",
            "9223372036854775807",
            "253402207201",
            "9999999999999w",
        ] {
            let r = mint(with("expires", json!(late)));
            r.problem(422, "invalid-value");
            assert!(r.text().contains("latest time"), "{late}: {}", r.text());
        }
        let r = mint(with("not_before", json!("253402207201")));
        r.problem(422, "invalid-value");
        // The latest time itself is taken, and reads back as what the key says.
        let r = mint(with("expires", json!("253402207200")));
        assert_eq!(r.status, 201, "{}", r.text());
        assert_eq!(r.json()["expires_at"], json!(253_402_207_200_u64));

        // An extension key given twice is refused, not silently the last.
        let body = format!(
            r#"{{"product":"acme-cad","customer_id":"{cus}","plan":"pro","expires":"365d","ext":{{"seats":"5","seats":"500"}}}}"#
        );
        let r = req(
            s.addr,
            "POST",
            "/v1/licenses",
            Some(&s.admin),
            Some(("application/json", body.as_bytes())),
            &[],
        );
        r.problem(400, "bad-request");
        assert!(r.text().contains("given twice"), "{}", r.text());

        // Personal data never goes into a key.
        for email in ["jane@example.com", "j.doe+eu@mail.example.org"] {
            let r = mint(with("ext", json!({ "contact": email })));
            r.problem(422, "invalid-value");
            assert!(r.text().contains("email address"), "{}", r.text());
        }
        let r = mint(with("ext", json!({ "region": "eu-west" })));
        assert_eq!(r.status, 201, "{}", r.text());
    }
}

#[test]
fn names_refuse_bidi_control_and_invisible_characters() {
    for s in common::backends() {
        setup(&s);
        for bad in [
            "Ada\u{202E}gpj.exe",
            "Ada\u{2066}x",
            "Ada\u{200B}",
            "A\u{FEFF}da",
            "Ada\u{0}",
            "Ada\u{7}",
        ] {
            let r = post(s.addr, "/v1/customers", &s.admin, &json!({ "name": bad }));
            r.problem(422, "invalid-value");
            let r = post(
                s.addr,
                "/v1/tokens",
                &s.admin,
                &json!({ "name": bad, "scopes": ["read"] }),
            );
            r.problem(422, "invalid-value");
            let r = post(
                s.addr,
                "/v1/products",
                &s.admin,
                &json!({ "product": "acme-web", "name": bad }),
            );
            r.problem(422, "invalid-value");
        }
        // Letters of any script are names.
        let r = post(
            s.addr,
            "/v1/customers",
            &s.admin,
            &json!({ "name": "Zoë Ångström 王" }),
        );
        assert_eq!(r.status, 201, "{}", r.text());
    }
}

#[test]
fn answers_with_secrets_keys_or_personal_data_are_not_stored() {
    let s = common::start();
    let cus = setup(&s);
    let r = post(
        s.addr,
        "/v1/licenses",
        &s.admin,
        &json!({ "product": "acme-cad", "customer_id": cus, "plan": "pro", "expires": "365d" }),
    );
    assert_eq!(r.status, 201);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let lic = r.json()["license_id"].as_str().unwrap().to_owned();
    for path in [
        format!("/v1/licenses/{lic}"),
        "/v1/licenses".to_owned(),
        format!("/v1/customers/{cus}"),
        format!("/v1/customers/{cus}/export"),
        "/v1/tokens".to_owned(),
        "/v1/audit".to_owned(),
        "/v1/nope".to_owned(),
    ] {
        let r = get(s.addr, &path, &s.admin);
        assert_eq!(r.header("cache-control"), Some("no-store"), "{path}");
    }
    let r = post(
        s.addr,
        "/v1/tokens",
        &s.admin,
        &json!({ "name": "ci", "scopes": ["read"] }),
    );
    assert_eq!(r.status, 201);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    // Errors too: a 401 says nothing worth caching either.
    let r = get(s.addr, "/v1/licenses", "ks_wrong");
    assert_eq!(r.header("cache-control"), Some("no-store"));
    // Public, signed documents stay cacheable.
    let r = req(s.addr, "GET", "/v1/public/keyring", None, None, &[]);
    assert_eq!(r.status, 200);
    assert_ne!(r.header("cache-control"), Some("no-store"));
}

#[test]
fn scopes_are_checked_before_bodies_are_read() {
    let s = common::start();
    // A read token's write is a 403 whatever its body: malformed,
    // oversized or of the wrong type.
    let bodies: [(&str, &[u8]); 3] = [
        ("application/json", b"{not json"),
        ("text/plain", b"x"),
        ("application/json", &[b'x'; 300_000]),
    ];
    for (ct, body) in bodies {
        for path in ["/v1/licenses", "/v1/customers", "/v1/products"] {
            let r = req(s.addr, "POST", path, Some(&s.read), Some((ct, body)), &[]);
            r.problem(403, "forbidden");
        }
        // An issue token on admin routes, with or without an Idempotency-Key.
        for extra in [&[][..], &[("Idempotency-Key", "k1")][..]] {
            let r = req(
                s.addr,
                "POST",
                "/v1/keys/rotate",
                Some(&s.issue),
                Some((ct, body)),
                extra,
            );
            r.problem(403, "forbidden");
        }
    }
    // Exports need read:pii (or admin).
    let cus = setup(&s);
    get(s.addr, &format!("/v1/customers/{cus}/export"), &s.issue).problem(403, "forbidden");
    assert_eq!(
        get(s.addr, &format!("/v1/customers/{cus}/export"), &s.admin).status,
        200
    );
}
