//! Signing keys per organisation, over real HTTP on 127.0.0.1, on SQLite
//! and PostgreSQL: each organisation sees, rotates and retires only its own
//! keys; mints, activations and revocation lists use the caller's
//! organisation's key; a license one organisation minted does not validate
//! in another's app (the keyseal SDK with that organisation's public
//! keyring); each public revocation list holds only its organisation's
//! revocations and verifies against its keyring only; the unscoped public
//! endpoints serve the default organisation.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{TestServer, get, post, post_empty, req};
use keyseal::{Keyring, ManualClock, MemoryStateStore, Validator};
use serde_json::{Value, json};

fn setup(s: &TestServer, admin: &str) -> String {
    let r = post(
        s.addr,
        "/v1/products",
        admin,
        &json!({ "product": "acme-cad" }),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let r = post(s.addr, "/v1/customers", admin, &json!({}));
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["customer_id"].as_str().unwrap().to_owned()
}

fn mint(s: &TestServer, admin: &str, cus: &str) -> Value {
    let r = post(
        s.addr,
        "/v1/licenses",
        admin,
        &json!({ "product": "acme-cad", "customer_id": cus, "plan": "pro", "expires": "30d" }),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()
}

/// The organisation's keys as its admin lists them: (key id, status).
fn keys(s: &TestServer, admin: &str) -> Vec<(String, String)> {
    let r = get(s.addr, "/v1/keys", admin);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["key_id"].as_str().unwrap().to_owned(),
                k["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn public(s: &TestServer, path: &str) -> common::Resp {
    req(s.addr, "GET", path, None, None, &[])
}

/// An organisation's public keyring: the JSON document and the keyring in it.
fn org_keyring(s: &TestServer, org: &str) -> (Value, Keyring) {
    let r = public(s, &format!("/v1/public/orgs/{org}/keyring"));
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    let ring = j["keyring"]
        .as_str()
        .unwrap()
        .parse()
        .expect("keyring parses");
    (j, ring)
}

fn ring_key_ids(doc: &Value) -> Vec<String> {
    doc["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["key_id"].as_str().unwrap().to_owned())
        .collect()
}

fn validator(ring: &Keyring, list: Option<&[u8]>) -> Validator {
    let mut b = Validator::builder(ring.clone(), "acme-cad")
        .clock(ManualClock::new(common::now()))
        .state(MemoryStateStore::new())
        .no_device();
    if let Some(l) = list {
        b = b.revocation_list(l.to_vec());
    }
    b.build().expect("validator")
}

fn code(v: &Validator, key: &str) -> &'static str {
    match v.validate(key) {
        Ok(_) => "ok",
        Err(r) => r.code(),
    }
}

#[test]
fn each_organisation_has_its_own_keys() {
    for s in common::backends() {
        let (a, b) = (s.admin.as_str(), s.other.as_str());
        let ka = keys(&s, a);
        let kb = keys(&s, b);
        assert_eq!(ka.len(), 1, "{ka:?}");
        assert_eq!(kb.len(), 1, "{kb:?}");
        assert_eq!((ka[0].1.as_str(), kb[0].1.as_str()), ("active", "active"));
        assert_ne!(ka[0].0, kb[0].0, "A and B share a key");
        let (a1, b1) = (ka[0].0.clone(), kb[0].0.clone());

        // Neither can retire the other's key: it does not exist for them.
        post_empty(s.addr, &format!("/v1/keys/{b1}/retire"), a).problem(404, "not-found");
        post_empty(s.addr, &format!("/v1/keys/{a1}/retire"), b).problem(404, "not-found");
        assert_eq!(keys(&s, b), kb);

        // A rotates: A has a new active key, B's is untouched and still signs B's licenses.
        let r = post_empty(s.addr, "/v1/keys/rotate", a);
        assert_eq!(r.status, 201, "{}", r.text());
        let a2 = r.json()["key_id"].as_str().unwrap().to_owned();
        let mut now_a = keys(&s, a);
        now_a.sort();
        let mut want = vec![
            (a1.clone(), "retired".into()),
            (a2.clone(), "active".into()),
        ];
        want.sort();
        assert_eq!(now_a, want);
        assert_eq!(keys(&s, b), kb);
        let cus_a = setup(&s, a);
        let cus_b = setup(&s, b);
        assert_eq!(mint(&s, a, &cus_a)["key_id"], a2);
        assert_eq!(mint(&s, b, &cus_b)["key_id"], b1);

        // B rotates and retires its new key: A keeps minting with its own.
        let r = post_empty(s.addr, "/v1/keys/rotate", b);
        assert_eq!(r.status, 201, "{}", r.text());
        let b2 = r.json()["key_id"].as_str().unwrap().to_owned();
        assert_eq!(mint(&s, b, &cus_b)["key_id"], b2);
        assert_eq!(keys(&s, a).len(), 2);
        let r = post_empty(s.addr, &format!("/v1/keys/{b2}/retire"), b);
        assert_eq!(r.status, 200, "{}", r.text());
        post(
            s.addr,
            "/v1/licenses",
            b,
            &json!({ "product": "acme-cad", "customer_id": cus_b, "plan": "pro", "expires": "30d" }),
        )
        .problem(409, "no-active-key");
        assert_eq!(mint(&s, a, &cus_a)["key_id"], a2);
        assert!(keys(&s, a).contains(&(a2.clone(), "active".into())));

        // Each public keyring holds its organisation's keys, and only those.
        let (ring_a, _) = org_keyring(&s, &s.org_a);
        let (ring_b, _) = org_keyring(&s, &s.org_b);
        let sorted = |mut v: Vec<String>| {
            v.sort();
            v
        };
        assert_eq!(sorted(ring_key_ids(&ring_a)), sorted(vec![a1, a2]));
        assert_eq!(sorted(ring_key_ids(&ring_b)), sorted(vec![b1, b2]));
        // The unscoped keyring is the default organisation's (A, made first).
        assert_eq!(public(&s, "/v1/public/keyring").json(), ring_a);
    }
}

#[test]
fn licenses_validate_only_in_their_organisations_apps() {
    for s in common::backends() {
        let (a, b) = (s.admin.as_str(), s.other.as_str());
        // Both organisations sell a product called acme-cad.
        let cus_a = setup(&s, a);
        let cus_b = setup(&s, b);
        let lic_a = mint(&s, a, &cus_a);
        let lic_b = mint(&s, b, &cus_b);
        let (key_a, key_b) = (
            lic_a["license_key"].as_str().unwrap(),
            lic_b["license_key"].as_str().unwrap(),
        );
        let (_, ring_a) = org_keyring(&s, &s.org_a);
        let (_, ring_b) = org_keyring(&s, &s.org_b);
        let app_a = validator(&ring_a, None);
        let app_b = validator(&ring_b, None);
        assert_eq!(code(&app_a, key_a), "ok");
        assert_eq!(code(&app_b, key_b), "ok");
        assert_eq!(code(&app_a, key_b), "unknown_key", "B's license in A's app");
        assert_eq!(code(&app_b, key_a), "unknown_key", "A's license in B's app");
        // The same through the default keyring clients from before use.
        let old = public(&s, "/v1/public/keyring").json();
        let ring_default: Keyring = old["keyring"].as_str().unwrap().parse().unwrap();
        let app_default = validator(&ring_default, None);
        assert_eq!(code(&app_default, key_a), "ok");
        assert_eq!(code(&app_default, key_b), "unknown_key");

        // A device-bound key from B's activation is signed by B's key.
        let fp = {
            use keyseal_core::Fingerprint;
            let parts: Vec<_> = ["machine", "disk"]
                .iter()
                .map(|k| Fingerprint::component("acme-cad", k, &[7]))
                .collect();
            Fingerprint::from_components(&parts).unwrap()
        };
        let id_b = lic_b["license_id"].as_str().unwrap();
        let r = post(
            s.addr,
            &format!("/v1/licenses/{id_b}/activations"),
            b,
            &json!({ "fingerprint": fp.to_string() }),
        );
        assert_eq!(r.status, 201, "{}", r.text());
        assert_eq!(r.json()["key_id"], lic_b["key_id"]);
        let device_key = r.json()["device_key"].as_str().unwrap().to_owned();
        let on_device = |ring: &Keyring| {
            Validator::builder(ring.clone(), "acme-cad")
                .clock(ManualClock::new(common::now()))
                .state(MemoryStateStore::new())
                .device(fp)
                .build()
                .expect("validator")
        };
        assert_eq!(code(&on_device(&ring_b), &device_key), "ok");
        assert_eq!(code(&on_device(&ring_a), &device_key), "unknown_key");
    }
}

#[test]
fn revocation_lists_are_per_organisation() {
    for s in common::backends() {
        let (a, b) = (s.admin.as_str(), s.other.as_str());
        let cus_a = setup(&s, a);
        let cus_b = setup(&s, b);
        let (lic_a, kept_a) = (mint(&s, a, &cus_a), mint(&s, a, &cus_a));
        let (lic_b, kept_b) = (mint(&s, b, &cus_b), mint(&s, b, &cus_b));
        let list_b_before = public(&s, &format!("/v1/public/orgs/{}/revocations", s.org_b));
        assert_eq!(list_b_before.status, 200, "{}", list_b_before.text());
        let etag_b = list_b_before.header("etag").unwrap().to_owned();
        for (token, lic) in [(a, &lic_a), (b, &lic_b)] {
            let id = lic["license_id"].as_str().unwrap();
            let r = post(
                s.addr,
                &format!("/v1/licenses/{id}/revoke"),
                token,
                &json!({ "reason": "refund" }),
            );
            assert_eq!(r.status, 200, "{}", r.text());
        }
        // A cannot revoke B's license.
        let id_b = kept_b["license_id"].as_str().unwrap();
        post(
            s.addr,
            &format!("/v1/licenses/{id_b}/revoke"),
            a,
            &json!({ "reason": "refund" }),
        )
        .problem(404, "not-found");

        let (_, ring_a) = org_keyring(&s, &s.org_a);
        let (_, ring_b) = org_keyring(&s, &s.org_b);
        let fetch = |org: &str| {
            let r = public(&s, &format!("/v1/public/orgs/{org}/revocations"));
            assert_eq!(r.status, 200, "{}", r.text());
            r
        };
        let list_a = fetch(&s.org_a);
        let list_b = fetch(&s.org_b);
        assert_ne!(list_b.header("etag").unwrap(), etag_b, "B's list changed");
        // Cacheable: the same ETag gives 304.
        let again = req(
            s.addr,
            "GET",
            &format!("/v1/public/orgs/{}/revocations", s.org_b),
            None,
            None,
            &[("If-None-Match", list_b.header("etag").unwrap())],
        );
        assert_eq!(again.status, 304);
        // The default organisation's list is served unscoped too.
        assert_eq!(public(&s, "/v1/public/revocations").body, list_a.body);

        let names = |list: &[u8], ring: &Keyring| -> Vec<String> {
            let v = validator(ring, None);
            let l = v.load_revocation_list(list).expect("the list verifies");
            l.revoked_licenses().map(|id| id.to_string()).collect()
        };
        assert_eq!(
            names(&list_a.body, &ring_a),
            vec![lic_a["license_id"].as_str().unwrap().to_owned()]
        );
        assert_eq!(
            names(&list_b.body, &ring_b),
            vec![lic_b["license_id"].as_str().unwrap().to_owned()]
        );
        // Each list is signed by its organisation's key: the other's app refuses it.
        let app_a = validator(&ring_a, None);
        assert!(app_a.load_revocation_list(&list_b.body).is_err());
        let app_b = validator(&ring_b, None);
        assert!(app_b.load_revocation_list(&list_a.body).is_err());

        // With its own list, each app refuses its revoked license and keeps the other.
        let app_b = validator(&ring_b, Some(&list_b.body));
        assert_eq!(
            code(&app_b, lic_b["license_key"].as_str().unwrap()),
            "revoked"
        );
        assert_eq!(code(&app_b, kept_b["license_key"].as_str().unwrap()), "ok");
        let app_a = validator(&ring_a, Some(&list_a.body));
        assert_eq!(
            code(&app_a, lic_a["license_key"].as_str().unwrap()),
            "revoked"
        );
        assert_eq!(code(&app_a, kept_a["license_key"].as_str().unwrap()), "ok");
    }
}

#[test]
fn unknown_organisations_are_not_found() {
    for s in common::backends() {
        for path in [
            "/v1/public/orgs/org_0000000000000000/keyring",
            "/v1/public/orgs/org_0000000000000000/revocations",
            "/v1/public/orgs/nope/keyring",
            "/v1/public/orgs/org_%C3%A9/revocations",
            "/v1/public/orgs/%20/keyring",
        ] {
            public(&s, path).problem(404, "not-found");
        }
        // A control character is no id at all (tests/input.rs).
        for path in [
            "/v1/public/orgs/%00/keyring",
            "/v1/public/orgs/%00/revocations",
        ] {
            public(&s, path).problem(400, "bad-request");
        }
        let long = format!("/v1/public/orgs/{}/keyring", "a".repeat(5000));
        let r = public(&s, &long);
        assert!((400..500).contains(&r.status), "{}: {}", r.status, r.text());
        // The public endpoints need no token, and one is ignored.
        let r = get(
            s.addr,
            &format!("/v1/public/orgs/{}/keyring", s.org_b),
            &s.admin,
        );
        assert_eq!(r.status, 200, "{}", r.text());
    }
}

/// Forty rotations through the API: after every one (refused or not) both
/// public keyring endpoints answer 200 with a keyring the SDK loads, holding
/// every key of the organisation that is not revoked, the active one
/// included, and none that is; a 304 for its ETag. A rotation that would
/// make a 17th key is a 409 `keyring-full` naming the oldest retired key;
/// revoking that key through the API makes room, and its licenses then
/// fail as `key_revoked` under the published list. The other organisation
/// is untouched throughout.
#[test]
fn forty_rotations_keep_the_keyring_loadable() {
    for s in common::backends() {
        let (a, b) = (s.admin.as_str(), s.other.as_str());
        let cus = setup(&s, a);
        let b_keys = keys(&s, b);
        let first = keys(&s, a)[0].0.clone();
        let first_license = mint(&s, a, &cus);
        let (mut refused, mut revoked) = (0, Vec::<String>::new());
        for i in 0..40 {
            let r = post_empty(s.addr, "/v1/keys/rotate", a);
            if r.status == 409 {
                r.problem(409, "keyring-full");
                refused += 1;
                let listed = keys(&s, a);
                let live: Vec<_> = listed.iter().filter(|k| k.1 != "revoked").collect();
                assert_eq!(live.len(), 16, "rotation {i}: refused below the limit");
                // The retired key whose window ended first (ties: the lowest
                // id) is named; revoking it makes room.
                let all = get(s.addr, "/v1/keys", a).json();
                let oldest = all["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|k| k["status"] == "retired")
                    .min_by_key(|k| {
                        (
                            k["valid_until"].as_u64().unwrap(),
                            k["created_at"].as_u64().unwrap(),
                            k["key_id"].as_str().unwrap().to_owned(),
                        )
                    })
                    .unwrap()["key_id"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                assert!(r.text().contains(&oldest), "{}", r.text());
                let active = live.iter().find(|k| k.1 == "active").unwrap().0.clone();
                post(
                    s.addr,
                    &format!("/v1/keys/{active}/revoke"),
                    a,
                    &json!({ "reason": "retired" }),
                )
                .problem(409, "key-active");
                let r = post(
                    s.addr,
                    &format!("/v1/keys/{oldest}/revoke"),
                    a,
                    &json!({ "reason": "retired" }),
                );
                assert_eq!(r.status, 200, "{}", r.text());
                assert_eq!(r.json()["status"], "revoked");
                post(
                    s.addr,
                    &format!("/v1/keys/{oldest}/revoke"),
                    a,
                    &json!({ "reason": "retired" }),
                )
                .problem(409, "conflict");
                revoked.push(oldest);
                let r = post_empty(s.addr, "/v1/keys/rotate", a);
                assert_eq!(
                    r.status,
                    201,
                    "rotation {i} after a revocation: {}",
                    r.text()
                );
            } else {
                assert_eq!(r.status, 201, "rotation {i}: {}", r.text());
            }
            if i == 0 {
                // Windows end to the second: the first key's must end before
                // any other's for it to be the one the first refusal names
                // (keys retired in one second tie, and the lowest id wins).
                std::thread::sleep(std::time::Duration::from_millis(1100));
            }
            let listed = keys(&s, a);
            let (doc, ring) = org_keyring(&s, &s.org_a);
            let mut in_ring = ring_key_ids(&doc);
            let mut live: Vec<String> = listed
                .iter()
                .filter(|k| k.1 != "revoked")
                .map(|k| k.0.clone())
                .collect();
            in_ring.sort();
            live.sort();
            assert_eq!(in_ring, live, "rotation {i}: keyring != keys not revoked");
            assert!(in_ring.len() <= 16);
            assert_eq!(doc["left_out"], json!([]));
            assert_eq!(ring.keys().count(), in_ring.len());
            // The unscoped endpoint serves the same (A is the default).
            let unscoped = public(&s, "/v1/public/keyring");
            assert_eq!(unscoped.status, 200, "{}", unscoped.text());
            assert_eq!(unscoped.json(), doc);
            let etag = unscoped.header("etag").unwrap().to_owned();
            let again = req(
                s.addr,
                "GET",
                "/v1/public/keyring",
                None,
                None,
                &[("If-None-Match", &etag)],
            );
            assert_eq!(again.status, 304);
            // What the active key mints now validates against it.
            let lic = mint(&s, a, &cus);
            let app = validator(&ring, None);
            assert_eq!(code(&app, lic["license_key"].as_str().unwrap()), "ok");
        }
        // 1 key + 15 rotations fill the keyring; each later one needed a revocation.
        assert_eq!(refused, 25);
        assert_eq!(revoked.len(), 25);
        assert!(revoked.contains(&first), "the first key was never revoked");
        // The first key's license: unknown to the keyring now, and its key
        // revoked by name in the published list, for apps whose keyring
        // is older than the revocation.
        let list = public(&s, &format!("/v1/public/orgs/{}/revocations", s.org_a));
        assert_eq!(list.status, 200);
        let (_, ring) = org_keyring(&s, &s.org_a);
        let key = first_license["license_key"].as_str().unwrap();
        assert_eq!(code(&validator(&ring, None), key), "unknown_key");
        let l = validator(&ring, None)
            .load_revocation_list(&list.body)
            .expect("the list verifies");
        let mut named: Vec<String> = l.revoked_keys().map(|k| k.to_string()).collect();
        named.sort();
        revoked.sort();
        assert_eq!(named, revoked);
        assert_eq!(keys(&s, b), b_keys, "B's keys changed");

        // Revoked keys stay listed, so the list grows with rotations: it
        // comes in pages, oldest first, each key once.
        let all = keys(&s, a);
        assert_eq!(all.len(), 41);
        let mut paged = Vec::new();
        let mut path = "/v1/keys?limit=7".to_owned();
        loop {
            let j = get(s.addr, &path, a).json();
            let items = j["items"].as_array().unwrap();
            assert!(items.len() <= 7);
            paged.extend(items.iter().map(|k| {
                (
                    k["key_id"].as_str().unwrap().to_owned(),
                    k["status"].as_str().unwrap().to_owned(),
                )
            }));
            match j["next_cursor"].as_str() {
                Some(c) => path = format!("/v1/keys?limit=7&cursor={c}"),
                None => break,
            }
        }
        assert_eq!(paged, all);
        get(s.addr, "/v1/keys?cursor=nonsense", a).problem(400, "bad-request");
        get(s.addr, "/v1/keys?limit=0", a).problem(422, "invalid-value");
    }
}
