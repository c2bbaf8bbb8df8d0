//! API token management over real HTTP on 127.0.0.1, on SQLite and
//! PostgreSQL: create (secret shown once), list (no secrets), revoke
//! (refused at once), the last admin token, scopes, bad input, and another
//! organisation's tokens.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{TestServer, get, post, post_empty};
use serde_json::{Value, json};

fn create(s: &TestServer, token: &str, name: &str, scopes: &[&str]) -> Value {
    let r = post(
        s.addr,
        "/v1/tokens",
        token,
        &json!({ "name": name, "scopes": scopes }),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()
}

fn token_id_of(s: &TestServer, admin: &str, name: &str) -> String {
    let r = get(s.addr, "/v1/tokens", admin);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no token named {name}: {}", r.text()))["token_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn tokens_create_list_revoke_with_scopes() {
    for s in common::backends() {
        // A store backend's issue-only token: the secret once, then it works.
        let t = create(&s, &s.admin, "store backend", &["issue"]);
        let secret = t["token"].as_str().unwrap().to_owned();
        assert!(keyseal_server::auth::well_formed(&secret), "{t}");
        assert_eq!(t["scopes"], json!(["issue"]));
        assert_eq!(t["revoked_at"], Value::Null);
        let id = t["token_id"].as_str().unwrap().to_owned();
        assert!(id.starts_with("tok_"));
        let r = post(
            s.addr,
            "/v1/products",
            &secret,
            &json!({ "product": "acme-cad" }),
        );
        assert_eq!(r.status, 201, "{}", r.text());
        // An issue token cannot manage tokens or keys.
        get(s.addr, "/v1/tokens", &secret).problem(403, "forbidden");
        post(
            s.addr,
            "/v1/tokens",
            &secret,
            &json!({ "name": "x", "scopes": ["admin"] }),
        )
        .problem(403, "forbidden");

        // A read token reads, and cannot create or revoke tokens.
        let ro = create(&s, &s.admin, "dashboard", &["read"]);
        let ro_secret = ro["token"].as_str().unwrap().to_owned();
        assert_eq!(get(s.addr, "/v1/products", &ro_secret).status, 200);
        post(
            s.addr,
            "/v1/tokens",
            &ro_secret,
            &json!({ "name": "x", "scopes": ["read"] }),
        )
        .problem(403, "forbidden");
        post_empty(s.addr, &format!("/v1/tokens/{id}/revoke"), &ro_secret)
            .problem(403, "forbidden");
        post(
            s.addr,
            "/v1/tokens",
            &s.read,
            &json!({ "name": "x", "scopes": ["read"] }),
        )
        .problem(403, "forbidden");

        // The list: every token of the organisation, no secret, no hash.
        let r = get(s.addr, "/v1/tokens", &s.admin);
        assert_eq!(r.status, 200);
        let text = r.text();
        assert!(!text.contains(&secret) && !text.contains(&ro_secret));
        assert!(!text.contains(&keyseal_server::auth::token_hash(&secret)));
        assert!(!text.contains("\"token\""), "{text}");
        let items = r.json()["items"].as_array().unwrap().clone();
        // initial admin, read and issue tokens of the fixture, and the two new ones.
        assert_eq!(items.len(), 5, "{text}");
        for t in &items {
            assert!(t.get("token_hash").is_none() && t.get("token").is_none());
        }

        // Revoke: refused at once (the cache entry goes), idempotent.
        let r = post_empty(s.addr, &format!("/v1/tokens/{id}/revoke"), &s.admin);
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(r.json()["revoked_at"].as_u64().is_some());
        get(s.addr, "/v1/products", &secret).problem(401, "unauthorized");
        post(s.addr, "/v1/products", &secret, &json!({ "product": "b" }))
            .problem(401, "unauthorized");
        let again = post_empty(s.addr, &format!("/v1/tokens/{id}/revoke"), &s.admin);
        assert_eq!(again.status, 200);
        assert_eq!(again.json()["revoked_at"], r.json()["revoked_at"]);
        // The revoked token is still listed, as revoked.
        let r = get(s.addr, "/v1/tokens", &s.admin);
        let listed = r.json()["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["token_id"] == id.as_str())
            .cloned()
            .unwrap();
        assert!(listed["revoked_at"].as_u64().is_some());

        // Audit entries for create and revoke.
        let r = get(s.addr, "/v1/audit?limit=500", &s.admin);
        let actions: Vec<String> = r.json()["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap().to_owned())
            .collect();
        // Two through the API, and the test setup's three (the first
        // admin token and two the operator made on this organisation: its
        // audit shows them too).
        assert_eq!(actions.iter().filter(|a| *a == "token.create").count(), 5);
        assert_eq!(actions.iter().filter(|a| *a == "token.revoke").count(), 1);
    }
}

#[test]
fn the_last_admin_token_cannot_be_revoked() {
    for s in common::backends() {
        let first = token_id_of(&s, &s.admin, "initial");
        post_empty(s.addr, &format!("/v1/tokens/{first}/revoke"), &s.admin)
            .problem(409, "last-admin-token");
        // With a second admin token, the first can go; then the second is the last.
        let second = create(&s, &s.admin, "ops", &["admin"]);
        let second_secret = second["token"].as_str().unwrap().to_owned();
        let second_id = second["token_id"].as_str().unwrap().to_owned();
        let r = post_empty(
            s.addr,
            &format!("/v1/tokens/{first}/revoke"),
            &second_secret,
        );
        assert_eq!(r.status, 200, "{}", r.text());
        get(s.addr, "/v1/tokens", &s.admin).problem(401, "unauthorized");
        post_empty(
            s.addr,
            &format!("/v1/tokens/{second_id}/revoke"),
            &second_secret,
        )
        .problem(409, "last-admin-token");
        assert_eq!(get(s.addr, "/v1/tokens", &second_secret).status, 200);
    }
}

#[test]
fn tokens_of_another_organisation_are_invisible() {
    for s in common::backends() {
        let a = create(&s, &s.admin, "a's backend", &["issue"]);
        let a_id = a["token_id"].as_str().unwrap().to_owned();
        // B sees only its own token, and cannot revoke A's (not found, as
        // for a token that does not exist).
        let r = get(s.addr, "/v1/tokens", &s.other);
        assert_eq!(r.status, 200);
        let b_items = r.json()["items"].as_array().unwrap().clone();
        assert_eq!(b_items.len(), 1, "{}", r.text());
        assert!(!r.text().contains(&a_id));
        post_empty(s.addr, &format!("/v1/tokens/{a_id}/revoke"), &s.other)
            .problem(404, "not-found");
        let a_secret = a["token"].as_str().unwrap();
        assert_eq!(get(s.addr, "/v1/products", a_secret).status, 200);
        // B's own token is not revocable by A either.
        let b_id = b_items[0]["token_id"].as_str().unwrap();
        post_empty(s.addr, &format!("/v1/tokens/{b_id}/revoke"), &s.admin)
            .problem(404, "not-found");
        // A token B creates acts for B only.
        let b2 = create(&s, &s.other, "b's reader", &["read"]);
        let r = get(s.addr, "/v1/tokens", b2["token"].as_str().unwrap());
        r.problem(403, "forbidden");
        let r = get(s.addr, "/v1/products", b2["token"].as_str().unwrap());
        assert_eq!(r.json()["items"], json!([]));
    }
}

#[test]
fn token_requests_are_checked() {
    for s in common::backends() {
        for body in [
            json!({ "name": "x", "scopes": [] }),
            json!({ "name": "", "scopes": ["read"] }),
            json!({ "name": "x".repeat(201), "scopes": ["read"] }),
            json!({ "name": "a\u{7}b", "scopes": ["read"] }),
        ] {
            post(s.addr, "/v1/tokens", &s.admin, &body).problem(422, "invalid-value");
        }
        for body in [
            json!({ "name": "x", "scopes": ["root"] }),
            json!({ "name": "x" }),
            json!({ "name": "x", "scopes": ["read"], "secret": "ksk_" }),
            json!({ "name": 5, "scopes": ["read"] }),
        ] {
            post(s.addr, "/v1/tokens", &s.admin, &body).problem(400, "bad-request");
        }
        post_empty(s.addr, "/v1/tokens/tok_0000000000000000/revoke", &s.admin)
            .problem(404, "not-found");
        post_empty(s.addr, "/v1/tokens/%ff/revoke", &s.admin).problem(400, "bad-request");
    }
}

/// A token used continuously while it is revoked through the same replica:
/// every request that starts after the revocation answered is refused (a
/// request that read the token just before the revocation committed must
/// not cache it again, and cache hits must not extend its entry).
#[test]
fn a_revoked_token_in_use_is_refused_at_once_here() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    for s in common::backends() {
        let t = create(&s, &s.admin, "busy", &["read"]);
        let secret = t["token"].as_str().unwrap().to_owned();
        let id = t["token_id"].as_str().unwrap().to_owned();
        let stop = Arc::new(AtomicBool::new(false));
        let threads = common::hammer(s.addr, &secret, 3, &stop);
        std::thread::sleep(std::time::Duration::from_millis(500));
        let r = post_empty(s.addr, &format!("/v1/tokens/{id}/revoke"), &s.admin);
        assert_eq!(r.status, 200, "{}", r.text());
        let revoked = std::time::Instant::now();
        std::thread::sleep(std::time::Duration::from_millis(1500));
        stop.store(true, Ordering::Relaxed);
        let seen: Vec<_> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        assert!(
            seen.iter().any(|(at, st)| *at < revoked && *st == 200),
            "{:?}: the token worked before",
            s.backend
        );
        let after: Vec<u16> = seen
            .iter()
            .filter(|(at, _)| *at > revoked)
            .map(|(_, st)| *st)
            .collect();
        assert!(!after.is_empty(), "{:?}: no request after", s.backend);
        // 401, then 429 once the client's failures pass the limit.
        assert!(
            after.iter().all(|st| *st == 401 || *st == 429),
            "{:?}: a request after the revocation was answered: {after:?}",
            s.backend
        );
    }
}
