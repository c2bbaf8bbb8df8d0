//! Trials over HTTP, on SQLite and PostgreSQL: a product's trial policy
//! (`issue` to set, `read` to see, the caller's organisation only); an app
//! with no license asks `POST /v1/public/trials` with its fingerprint, no
//! token, and gets a key bound to its device that validates through the
//! Rust SDK; the same device (k of n components) is refused with when its
//! trial started and ends; the very same fingerprint gets its key again;
//! concurrent requests make one trial; refusals are problems; the ledger
//! keeps no component; the endpoint is rate-limited per client.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use common::{Backend, Resp, TestServer, get, post, req};
use keyseal::{Fingerprint, Keyring, ManualClock, MemoryStateStore, Validator};
use serde_json::{Value, json};

const DAY: u64 = 86_400;

/// One component of machine `name`.
fn part(name: &str, kind: &str) -> [u8; 16] {
    Fingerprint::component("acme-cad", kind, format!("{name}-{kind}").as_bytes())
}

/// Machine `name`'s three components.
fn machine(name: &str) -> [[u8; 16]; 3] {
    [
        part(name, "machine-id"),
        part(name, "dmi-product-uuid"),
        part(name, "mac"),
    ]
}

fn fp(parts: &[[u8; 16]]) -> Fingerprint {
    Fingerprint::from_components(parts).unwrap()
}

fn trial(addr: SocketAddr, org: &str, product: &str, device: &Fingerprint) -> Resp {
    common::public_post(
        addr,
        "/v1/public/trials",
        &json!({ "org_id": org, "product": product, "fingerprint": device.to_string() }),
        &[],
    )
}

/// Validates `key` as the app on `device` would at `now`, with the
/// organisation's public keyring.
fn validate(
    addr: SocketAddr,
    org: &str,
    key: &str,
    device: &Fingerprint,
    now: u64,
) -> Result<keyseal::License, String> {
    let ring = req(
        addr,
        "GET",
        &format!("/v1/public/orgs/{org}/keyring"),
        None,
        None,
        &[],
    )
    .json();
    let keyring: Keyring = ring["keyring"].as_str().unwrap().parse().unwrap();
    Validator::builder(keyring, "acme-cad")
        .clock(ManualClock::new(now))
        .state(MemoryStateStore::new())
        .device(*device)
        .build()
        .unwrap()
        .validate(key)
        .map_err(|r| r.code().to_owned())
}

fn set_policy(s: &TestServer, token: &str, body: &Value) -> Resp {
    post(s.addr, "/v1/products/acme-cad/trial-policy", token, body)
}

#[test]
fn apps_get_one_trial_per_device() {
    for backend in common::backend_list() {
        one_trial_per_device(backend);
    }
}

fn one_trial_per_device(backend: Backend) {
    let (offset, clock) = common::offset_clock();
    let s = common::start_with_clock(backend, clock);
    let (addr, org) = (s.addr, s.org_a.clone());
    let r = post(
        addr,
        "/v1/products",
        &s.admin,
        &json!({"product": "acme-cad"}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let a = machine("a");

    // No policy yet: trials are off, and the product says so.
    trial(addr, &org, "acme-cad", &fp(&a)).problem(409, "trials-disabled");
    let p = get(addr, "/v1/products/acme-cad/trial-policy", &s.read);
    assert_eq!(p.status, 200, "{}", p.text());
    assert_eq!(
        p.json(),
        json!({"product": "acme-cad", "enabled": false, "length_secs": 14 * DAY, "plan": "trial",
               "entitlements": [], "device_match": 2, "updated_at": null})
    );

    // The policy: `issue` sets it, `read` does not, another organisation
    // cannot see the product; bad values are 422s, a bad type a 400.
    set_policy(&s, &s.read, &json!({"enabled": true})).problem(403, "forbidden");
    set_policy(&s, &s.other, &json!({"enabled": true})).problem(404, "not-found");
    get(addr, "/v1/products/acme-cad/trial-policy", &s.other).problem(404, "not-found");
    for bad in [
        json!({"enabled": true, "length_secs": 60}),
        json!({"enabled": true, "device_match": 0}),
        json!({"enabled": true, "device_match": 9}),
        json!({"enabled": true, "plan": "two words"}),
        json!({"enabled": true, "entitlements": ["ok", "not ok"]}),
    ] {
        set_policy(&s, &s.issue, &bad).problem(422, "invalid-value");
    }
    for bad in [
        json!({"enabled": "yes"}),
        json!({"enabled": true, "device_match": 300}),
        json!({"enabled": true, "seats": 2}),
        json!({}),
    ] {
        set_policy(&s, &s.issue, &bad).problem(400, "bad-request");
    }
    let p = set_policy(
        &s,
        &s.issue,
        &json!({"enabled": true, "length_secs": 7 * DAY, "plan": "trial",
                "entitlements": ["plugins", "export-pdf"], "device_match": 2}),
    );
    assert_eq!(p.status, 200, "{}", p.text());
    let p = p.json();
    assert_eq!(p["entitlements"], json!(["export-pdf", "plugins"]));
    assert!(p["updated_at"].is_u64());
    assert_eq!(
        get(addr, "/v1/products/acme-cad/trial-policy", &s.read).json(),
        p
    );

    // Refusals before any trial: unknown organisation or product, a bad
    // fingerprint, a malformed body.
    trial(addr, "org_0000000000000000", "acme-cad", &fp(&a)).problem(404, "not-found");
    trial(addr, "org_\u{0}", "acme-cad", &fp(&a)).problem(404, "not-found");
    trial(addr, &org, "acme-viewer", &fp(&a)).problem(404, "not-found");
    trial(addr, &org, "acme\u{0}cad", &fp(&a)).problem(404, "not-found");
    for bad in ["", "ksfp1.", "ksfp1.AAAA", "hello", "ksfp1.\u{0}"] {
        common::public_post(
            addr,
            "/v1/public/trials",
            &json!({"org_id": org, "product": "acme-cad", "fingerprint": bad}),
            &[],
        )
        .problem(422, "invalid-value");
    }
    common::public_post(
        addr,
        "/v1/public/trials",
        &json!({"org_id": org, "product": "acme-cad"}),
        &[],
    )
    .problem(400, "bad-request");
    common::public_post(
        addr,
        "/v1/public/trials",
        &json!({"org_id": org, "product": "acme-cad", "fingerprint": fp(&a).to_string(), "ip": "1.2.3.4"}),
        &[],
    )
    .problem(400, "bad-request");

    // The first trial: 201, a key that validates on this device only.
    let t0 = common::now();
    let first = trial(addr, &org, "acme-cad", &fp(&a));
    assert_eq!(first.status, 201, "{backend:?}: {}", first.text());
    let first = first.json();
    let key = first["license_key"].as_str().unwrap().to_owned();
    let started = first["started_at"].as_u64().unwrap();
    let ends = first["expires_at"].as_u64().unwrap();
    assert!(started >= t0 && started <= t0 + 5);
    assert_eq!(ends, started + 7 * DAY);
    assert_eq!(first["plan"], json!("trial"));
    assert_eq!(first["entitlements"], json!(["export-pdf", "plugins"]));
    let ok = validate(addr, &org, &key, &fp(&a), started + 60).unwrap();
    assert_eq!(ok.customer(), "trial");
    assert_eq!(ok.plan(), "trial");
    assert!(ok.has("export-pdf") && ok.has("plugins"));
    assert_eq!(
        validate(addr, &org, &key, &fp(&machine("b")), started + 60).unwrap_err(),
        "wrong_device"
    );
    assert_eq!(
        validate(addr, &org, &key, &fp(&a), ends + 1).unwrap_err(),
        "expired"
    );

    // The very same fingerprint again (its answer was lost): 200, the same
    // key. Nothing minted: the vendor sees one trial license.
    let again = trial(addr, &org, "acme-cad", &fp(&a));
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(again.json(), first);

    // A new network card, or a reinstall with a new machine id: the same
    // device, refused with when its trial started and ends, and nothing else.
    let when = |t: u64| keyseal_issuer::time::format(t);
    for changed in [
        fp(&[a[0], a[1], part("a2", "mac")]),
        fp(&[part("a2", "machine-id"), a[1], a[2]]),
    ] {
        let r = trial(addr, &org, "acme-cad", &changed);
        r.problem(409, "trial-used");
        let detail = r.json()["detail"].as_str().unwrap().to_owned();
        assert!(
            detail.contains(&when(started)) && detail.contains(&format!("ends at {}", when(ends))),
            "{detail}"
        );
        assert!(!detail.contains(first["license_id"].as_str().unwrap()));
        assert!(!detail.contains("ks1."));
    }
    // Another machine gets its own trial.
    let b = trial(addr, &org, "acme-cad", &fp(&machine("b")));
    assert_eq!(b.status, 201, "{}", b.text());

    // 12 requests at once from one new machine: one trial, the others get it again.
    let c = fp(&machine("c"));
    let answers: Vec<Resp> = (0..12)
        .map(|_| {
            let org = org.clone();
            std::thread::spawn(move || trial(addr, &org, "acme-cad", &c))
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    let created: Vec<&Resp> = answers.iter().filter(|r| r.status == 201).collect();
    assert_eq!(
        created.len(),
        1,
        "{:?}",
        answers.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    let made = created[0].json();
    for r in &answers {
        assert!(r.status == 201 || r.status == 200, "{}", r.text());
        assert_eq!(r.json(), made);
    }

    // The trials are licenses of customer `trial`, listed as any.
    let list = get(
        addr,
        "/v1/licenses?customer_id=trial&product=acme-cad",
        &s.admin,
    );
    assert_eq!(list.status, 200, "{}", list.text());
    assert_eq!(list.json()["items"].as_array().unwrap().len(), 3);

    // Another organisation's trial is its own: the same machine gets one there.
    let r = post(
        addr,
        "/v1/products",
        &s.other,
        &json!({"product": "acme-cad"}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        set_policy(&s, &s.other, &json!({"enabled": true})).status,
        200
    );
    let there = trial(addr, &s.org_b, "acme-cad", &fp(&a));
    assert_eq!(there.status, 201, "{}", there.text());
    let in_b = validate(
        addr,
        &s.org_b,
        there.json()["license_key"].as_str().unwrap(),
        &fp(&a),
        started + 60,
    )
    .unwrap();
    assert_eq!(in_b.customer(), "trial");

    // After its end, the very same fingerprint is refused too, and told
    // when its trial ended.
    offset.store(8 * DAY, Ordering::SeqCst);
    let r = trial(addr, &org, "acme-cad", &fp(&a));
    r.problem(409, "trial-used");
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("ended at {}", when(ends))),
        "{}",
        r.text()
    );

    // Disabled again: 409 `trials-disabled` for everyone.
    assert_eq!(
        set_policy(&s, &s.admin, &json!({"enabled": false})).status,
        200
    );
    trial(addr, &org, "acme-cad", &fp(&machine("d"))).problem(409, "trials-disabled");

    // Audited (`trial.start`, `product.trial_policy`), with no fingerprint;
    // the ledger holds no component, no fingerprint, no address.
    let audit = get(addr, "/v1/audit?limit=500", &s.admin).text();
    assert!(
        audit.contains("trial.start") && audit.contains("product.trial_policy"),
        "{audit}"
    );
    assert!(!audit.contains(&fp(&a).to_string()));
    let ledger = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(common::ledger_bytes(&s));
    for p in a.iter().chain(machine("c").iter()) {
        let hex: String = p.iter().map(|b| format!("{b:02x}")).collect();
        assert!(
            !common::holds(&ledger, &hex),
            "{backend:?}: a component in the ledger"
        );
    }
    for f in [fp(&a), fp(&machine("b")), c] {
        let text = f.to_string();
        assert!(
            !common::holds(&ledger, &text[6..]),
            "{backend:?}: a fingerprint in the ledger"
        );
    }
    assert!(
        !common::holds(&ledger, "127.0.0.1"),
        "{backend:?}: an address in the ledger"
    );
    drop(s);
}

/// Trial requests from one client are limited per minute (an IPv6 client
/// by its /64), another client is not held up, and the vendor's own
/// requests are not counted.
#[test]
fn trials_are_rate_limited_per_client() {
    let s = common::start_with_network(keyseal_server::Network {
        public_requests_per_second: 0,
        trial_requests_per_client_per_minute: 3,
        trusted_proxies: vec!["127.0.0.1/32".parse().unwrap()],
        ..keyseal_server::Network::default()
    });
    let r = post(
        s.addr,
        "/v1/products",
        &s.admin,
        &json!({"product": "acme-cad"}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    for _ in 0..5 {
        assert_eq!(
            set_policy(&s, &s.admin, &json!({"enabled": true})).status,
            200
        );
    }
    let from = |client: &str, n: u32| {
        common::public_post(
            s.addr,
            "/v1/public/trials",
            &json!({"org_id": s.org_a, "product": "acme-cad",
                    "fingerprint": fp(&machine(&format!("{client}-{n}"))).to_string()}),
            &[("X-Forwarded-For", client)],
        )
    };
    for n in 0..3 {
        assert_eq!(from("203.0.113.7", n).status, 201);
    }
    from("203.0.113.7", 3).problem(429, "rate-limited");
    assert_eq!(from("203.0.113.8", 0).status, 201);
    for n in 0..3 {
        let ip = format!("2001:db8:0:1::{n}");
        assert_eq!(from(&ip, n).status, 201);
    }
    from("2001:db8:0:1:ffff::9", 9).problem(429, "rate-limited");
    assert_eq!(from("2001:db8:0:2::1", 0).status, 201);
}

/// The Rust SDK's `SeatClient::start_trial` over HTTP: the trial key
/// validates on its device; a reinstall with one component changed is
/// `trial_used`; a product with no trials and an unknown one have their
/// codes.
#[test]
fn the_rust_sdk_starts_a_trial() {
    use keyseal::seats::SeatClient;
    let s = common::start();
    let (addr, org) = (s.addr, s.org_a.clone());
    let r = post(
        addr,
        "/v1/products",
        &s.admin,
        &json!({"product": "acme-cad"}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let client = SeatClient::new(format!("http://{addr}"));
    let a = machine("a");
    let e = client.start_trial(&org, "acme-cad", &fp(&a)).unwrap_err();
    assert_eq!((e.code(), e.is_transient()), ("trials_disabled", false));
    let r = set_policy(
        &s,
        &s.admin,
        &json!({"enabled": true, "length_secs": 7 * 86_400, "entitlements": ["export-pdf"]}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let t = client.start_trial(&org, "acme-cad", &fp(&a)).unwrap();
    assert_eq!(t.expires_at - t.started_at, 7 * 86_400);
    assert_eq!(t.entitlements, vec!["export-pdf".to_owned()]);
    let lic = validate(addr, &org, &t.license_key, &fp(&a), t.started_at + 60).unwrap();
    assert_eq!(lic.id().to_string(), t.license_id);
    assert!(lic.has("export-pdf"));
    assert_eq!(
        validate(
            addr,
            &org,
            &t.license_key,
            &fp(&machine("b")),
            t.started_at + 60
        )
        .unwrap_err(),
        "wrong_device"
    );
    // A lost answer: the same device gets the same key again.
    assert_eq!(client.start_trial(&org, "acme-cad", &fp(&a)).unwrap(), t);
    let mut changed = a;
    changed[2] = part("a", "new-network-card");
    let e = client
        .start_trial(&org, "acme-cad", &fp(&changed))
        .unwrap_err();
    assert_eq!(e.code(), "trial_used");
    assert!(e.customer_message().contains("trial"));
    let e = client
        .start_trial(&org, "acme-viewer", &fp(&a))
        .unwrap_err();
    assert_eq!(e.code(), "unknown_product");
}
