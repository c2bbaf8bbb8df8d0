//! Several replicas on one PostgreSQL database and one vault directory:
//! one organisation and token for all, each sees what the others minted, and
//! a key rotated through one is picked up by the others. Skipped unless
//! `KEYSEAL_TEST_POSTGRES_URL` is set.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use common::{get, post, post_empty};
use keyseal_server::{Options, Service};
use serde_json::json;

struct Replica {
    addr: SocketAddr,
    token: Option<String>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Replica {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn replica_with(vault_dir: PathBuf, url: String, network: keyseal_server::Network) -> Replica {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let opts = Options {
                vault_dir,
                database_url: Some(url),
                passphrase: common::secret(common::PASS),
                kdf: Some(common::kdf()),
                clock: Arc::new(common::now),
                auth_failures_per_minute: None,
                drain_timeout: None,
                list_refresh: None,
                webhooks: Default::default(),
                network,
            };
            let mut svc = Service::open(opts).await.expect("open replica");
            let token = svc.take_admin_token();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            ready_tx
                .send((listener.local_addr().unwrap(), token))
                .unwrap();
            let shutdown = async move {
                tokio::select! {
                    _ = stop_rx => {}
                    () = tokio::time::sleep(Duration::from_secs(120)) => {}
                }
            };
            svc.serve(listener, shutdown).await.unwrap();
        });
    });
    let (addr, token) = ready_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("replica started");
    Replica {
        addr,
        token,
        stop: Some(stop_tx),
        thread: Some(thread),
    }
}

/// Two replicas on a fresh PostgreSQL database and one vault directory (A
/// started first), or `None` when `KEYSEAL_TEST_POSTGRES_URL` is not set.
fn two_replicas() -> Option<(tempfile::TempDir, Replica, Replica)> {
    two_replicas_with(keyseal_server::Network::default())
}

/// [`two_replicas`] with these network settings.
fn two_replicas_with(
    network: keyseal_server::Network,
) -> Option<(tempfile::TempDir, Replica, Replica)> {
    if std::env::var("KEYSEAL_TEST_POSTGRES_URL").is_err() {
        eprintln!("skipped: KEYSEAL_TEST_POSTGRES_URL is not set");
        return None;
    }
    let url = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(common::fresh_postgres());
    let dir = tempfile::tempdir().unwrap();
    let vault = dir.path().join("vault");
    let a = replica_with(vault.clone(), url.clone(), network.clone());
    let b = replica_with(vault, url, network);
    Some((dir, a, b))
}

#[test]
fn replicas_share_one_postgres_ledger_and_follow_rotations() {
    let Some((_dir, a, b)) = two_replicas() else {
        return;
    };
    let token = a
        .token
        .clone()
        .expect("the first replica creates the admin token");
    assert!(b.token.is_none(), "only the first start prints a token");

    assert_eq!(
        post(
            a.addr,
            "/v1/products",
            &token,
            &json!({ "product": "acme-cad" })
        )
        .status,
        201
    );
    let cus = post(a.addr, "/v1/customers", &token, &json!({})).json()["customer_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mint = |addr| {
        let r = post(
            addr,
            "/v1/licenses",
            &token,
            &json!({ "product": "acme-cad", "customer_id": cus, "plan": "pro", "expires": "30d" }),
        );
        assert_eq!(r.status, 201, "{}", r.text());
        r.json()
    };
    let first = mint(b.addr);
    // A sees what B minted.
    assert_eq!(
        get(
            a.addr,
            &format!("/v1/licenses/{}", first["license_id"].as_str().unwrap()),
            &token
        )
        .status,
        200
    );

    // Rotate through A; B picks the new key up on its next mint.
    let rotated = post_empty(a.addr, "/v1/keys/rotate", &token);
    assert_eq!(rotated.status, 201, "{}", rotated.text());
    let new_key = rotated.json()["key_id"].clone();
    assert_ne!(new_key, first["key_id"]);
    assert_eq!(mint(b.addr)["key_id"], new_key);
    assert_eq!(mint(a.addr)["key_id"], new_key);
    assert_eq!(
        get(b.addr, "/v1/licenses", &token).json()["items"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
}

/// A token used continuously through replica B while it is revoked through
/// replica A: B refuses it within TOKEN_CACHE_SECS (a cache hit must not
/// extend the entry, or a token in steady use is never read again).
#[test]
fn a_token_revoked_through_another_replica_is_refused_there_in_time() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let Some((_dir, a, b)) = two_replicas() else {
        return;
    };
    let admin = a.token.clone().unwrap();
    let t = post(
        a.addr,
        "/v1/tokens",
        &admin,
        &json!({ "name": "busy", "scopes": ["read"] }),
    );
    assert_eq!(t.status, 201, "{}", t.text());
    let secret = t.json()["token"].as_str().unwrap().to_owned();
    let id = t.json()["token_id"].as_str().unwrap().to_owned();

    let stop = Arc::new(AtomicBool::new(false));
    let threads = common::hammer(b.addr, &secret, 2, &stop);
    std::thread::sleep(Duration::from_millis(500));
    let r = post_empty(a.addr, &format!("/v1/tokens/{id}/revoke"), &admin);
    assert_eq!(r.status, 200, "{}", r.text());
    let revoked = std::time::Instant::now();
    // Through A: at once.
    get(a.addr, "/v1/products", &secret).problem(401, "unauthorized");
    let cache = Duration::from_secs(keyseal_server::TOKEN_CACHE_SECS);
    std::thread::sleep(cache + Duration::from_secs(3));
    stop.store(true, Ordering::Relaxed);
    let seen: Vec<_> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    assert!(
        seen.iter().any(|(at, st)| *at < revoked && *st == 200),
        "the token worked through B before"
    );
    // Through B: refused once TOKEN_CACHE_SECS (and a second of margin for
    // the clock's whole seconds) have passed, although it never stopped
    // being used.
    let late: Vec<u16> = seen
        .iter()
        .filter(|(at, _)| *at > revoked + cache + Duration::from_secs(1))
        .map(|(_, st)| *st)
        .collect();
    assert!(!late.is_empty(), "no request late enough");
    assert!(
        late.iter().all(|st| *st == 401 || *st == 429),
        "B still answers the revoked token: {late:?}"
    );
}

/// The organisation's key rotated through replica B, then a license
/// revoked through replica A (whose signer is the old key): the revocation
/// answers 200 and A's public list names the license, signed by the new key.
#[test]
fn a_revocation_after_a_rotation_elsewhere_is_published() {
    let Some((_dir, a, b)) = two_replicas() else {
        return;
    };
    let token = a.token.clone().unwrap();
    let r = post(
        a.addr,
        "/v1/products",
        &token,
        &json!({ "product": "acme-cad" }),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let cus = post(a.addr, "/v1/customers", &token, &json!({})).json()["customer_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // A signs with the first key.
    let lic = post(
        a.addr,
        "/v1/licenses",
        &token,
        &json!({ "product": "acme-cad", "customer_id": cus, "plan": "pro", "expires": "30d" }),
    );
    assert_eq!(lic.status, 201, "{}", lic.text());
    let id = lic.json()["license_id"].as_str().unwrap().to_owned();

    let rotated = post_empty(b.addr, "/v1/keys/rotate", &token);
    assert_eq!(rotated.status, 201, "{}", rotated.text());
    let r = post(
        a.addr,
        &format!("/v1/licenses/{id}/revoke"),
        &token,
        &json!({ "reason": "refund" }),
    );
    assert_eq!(r.status, 200, "{}", r.text());

    let org = get(a.addr, "/v1/tokens", &token).json()["items"][0]["org_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let ring: keyseal::Keyring = common::req(
        a.addr,
        "GET",
        &format!("/v1/public/orgs/{org}/keyring"),
        None,
        None,
        &[],
    )
    .json()["keyring"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let list = common::req(
        a.addr,
        "GET",
        &format!("/v1/public/orgs/{org}/revocations"),
        None,
        None,
        &[],
    );
    assert_eq!(list.status, 200, "{}", list.text());
    let app = keyseal::Validator::builder(ring, "acme-cad")
        .clock(keyseal::ManualClock::new(common::now()))
        .state(keyseal::MemoryStateStore::new())
        .no_device()
        .build()
        .unwrap();
    let names: Vec<String> = app
        .load_revocation_list(&list.body)
        .expect("the list verifies")
        .revoked_licenses()
        .map(|l| l.to_string())
        .collect();
    assert_eq!(names, vec![id]);
}

/// Two replicas, one ledger: a webhook delivered to both at once, eight
/// times each with one `Idempotency-Key`, mints one license, and every
/// delivery gets it; 400 revocations in bursts of 40 through both replicas
/// all reach the newest revocation list, whose sequence only grows.
#[test]
fn replicas_share_idempotency_keys_and_revocations() {
    let Some((_dir, a, b)) = two_replicas() else {
        return;
    };
    let token = a.token.clone().expect("admin token");
    assert_eq!(
        post(
            a.addr,
            "/v1/products",
            &token,
            &json!({ "product": "acme-cad" })
        )
        .status,
        201
    );
    let cus = post(b.addr, "/v1/customers", &token, &json!({})).json()["customer_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let body =
        json!({ "product": "acme-cad", "customer_id": cus, "plan": "pro", "expires": "30d" });
    let text = body.to_string();
    let deliver = |addr: SocketAddr, key: &str| {
        common::req(
            addr,
            "POST",
            "/v1/licenses",
            Some(&token),
            Some(("application/json", text.as_bytes())),
            &[("Idempotency-Key", key)],
        )
    };
    for event in 0..3 {
        let key = format!("evt_{event}");
        let answers: Vec<(u16, serde_json::Value)> = std::thread::scope(|t| {
            let handles: Vec<_> = (0..16)
                .map(|n| {
                    let (addr, key, deliver) =
                        (if n % 2 == 0 { a.addr } else { b.addr }, &key, &deliver);
                    t.spawn(move || {
                        let r = deliver(addr, key);
                        (r.status, r.json())
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (status, j) in &answers {
            assert_eq!(*status, 201, "event {event}: {j}");
            assert_eq!(j["license_id"], answers[0].1["license_id"], "event {event}");
        }
    }
    let all = get(a.addr, "/v1/licenses?limit=500", &token).json();
    assert_eq!(
        all["items"].as_array().unwrap().len(),
        3,
        "one license per event"
    );

    // 400 revocations in 10 bursts of 40 at once, half through each
    // replica: after each burst, the newest list (from either replica)
    // holds every license revoked so far, and sequences only grow.
    let ring: keyseal_core::Keyring =
        common::req(a.addr, "GET", "/v1/public/keyring", None, None, &[]).json()["keyring"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
    let newest = |addr: SocketAddr| {
        let list = common::req(addr, "GET", "/v1/public/revocations", None, None, &[]);
        assert_eq!(list.status, 200);
        let text = list.text();
        let block = keyseal_core::armor::blocks(&text)
            .map(Result::unwrap)
            .find(|b| b.label() == keyseal_core::armor::REVOCATION_LIST)
            .unwrap();
        keyseal_core::RevocationList::verify(&block.decode_to_vec().unwrap(), &ring).unwrap()
    };
    let mut revoked = std::collections::BTreeSet::new();
    let mut last_sequence = 0;
    for burst in 0..10 {
        let ids: Vec<String> = (0..40)
            .map(|_| {
                let r = post(a.addr, "/v1/licenses", &token, &body);
                assert_eq!(r.status, 201, "{}", r.text());
                r.json()["license_id"].as_str().unwrap().to_owned()
            })
            .collect();
        std::thread::scope(|t| {
            for (n, id) in ids.iter().enumerate() {
                let (addr, token) = (if n % 2 == 0 { a.addr } else { b.addr }, &token);
                t.spawn(move || {
                    let r = post(
                        addr,
                        &format!("/v1/licenses/{id}/revoke"),
                        token,
                        &json!({ "reason": "refund" }),
                    );
                    assert_eq!(r.status, 200, "{}", r.text());
                });
            }
        });
        revoked.extend(ids);
        for addr in [a.addr, b.addr] {
            let l = newest(addr);
            let named: std::collections::BTreeSet<String> =
                l.revoked_licenses().map(|i| i.to_string()).collect();
            let missing: Vec<_> = revoked.difference(&named).collect();
            assert!(
                missing.is_empty(),
                "burst {burst}: list #{} misses {missing:?}",
                l.sequence()
            );
            assert!(l.sequence() > last_sequence || addr == b.addr);
            assert!(l.sequence() >= last_sequence);
            last_sequence = l.sequence();
        }
    }
    assert_eq!(revoked.len(), 400);
}

/// Two replicas, one ledger: customers with personal data created through
/// both at once (each replica opened the one data secret) read back the
/// same through either, erasures through one hold on the other, and the
/// organisation's audit chain stays whole under the concurrent writes.
#[test]
fn replicas_share_sealed_customers_and_one_audit_chain() {
    let Some((_dir, a, b)) = two_replicas() else {
        return;
    };
    let token = a.token.clone().expect("admin token");
    let ids: Vec<(String, String)> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..16)
            .map(|n| {
                let (addr, token) = (if n % 2 == 0 { a.addr } else { b.addr }, &token);
                s.spawn(move || {
                    let email = format!("person{n}@example.org");
                    let r = post(
                        addr,
                        "/v1/customers",
                        token,
                        &json!({ "name": format!("Person {n}"), "email": email }),
                    );
                    assert_eq!(r.status, 201, "{}", r.text());
                    (r.json()["customer_id"].as_str().unwrap().to_owned(), email)
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (n, (id, email)) in ids.iter().enumerate() {
        // Written through one replica, read through the other.
        let other = if n % 2 == 0 { b.addr } else { a.addr };
        let r = get(other, &format!("/v1/customers/{id}"), &token).json();
        assert_eq!(r["email"], email.as_str());
        let found = get(
            other,
            &format!("/v1/customers?email={}", email.replace('@', "%40")),
            &token,
        )
        .json();
        assert_eq!(found["items"][0]["customer_id"], id.as_str());
    }
    std::thread::scope(|s| {
        for (n, (id, _)) in ids.iter().enumerate().filter(|(n, _)| n % 4 == 0) {
            let (addr, token) = (if n % 8 == 0 { a.addr } else { b.addr }, &token);
            s.spawn(move || {
                let r = post_empty(addr, &format!("/v1/customers/{id}/erase"), token);
                assert_eq!(r.status, 200, "{}", r.text());
            });
        }
    });
    for (n, (id, _)) in ids.iter().enumerate() {
        let r = get(b.addr, &format!("/v1/customers/{id}"), &token).json();
        assert_eq!(r["email"].is_null(), n % 4 == 0, "{r}");
    }
    // One chain, numbered without gaps, whichever replica wrote each entry.
    let mut entries = Vec::new();
    let mut path = "/v1/audit?limit=500".to_owned();
    loop {
        let page = get(a.addr, &path, &token).json();
        for e in page["items"].as_array().unwrap() {
            entries.push(keyseal_issuer::audit::AuditEntry {
                seq: e["seq"].as_u64().unwrap(),
                at: e["at"].as_u64().unwrap(),
                actor: e["actor"].as_str().unwrap().to_owned(),
                action: e["action"].as_str().unwrap().to_owned(),
                details: e["details"].to_string(),
                prev_hash: e["prev_hash"].as_str().unwrap().to_owned(),
                hash: e["hash"].as_str().unwrap().to_owned(),
            });
        }
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/audit?limit=500&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(
        keyseal_issuer::audit::verify_chain(&entries, None),
        Ok(entries.len() as u64)
    );
    assert_eq!(
        entries
            .iter()
            .filter(|e| e.action == "customer.create")
            .count(),
        16
    );
    assert_eq!(
        entries
            .iter()
            .filter(|e| e.action == "customer.erase")
            .count(),
        4
    );
}

/// Sixteen mints with one external id at once, half through each replica
/// (a payment event delivered many times, without an Idempotency-Key):
/// one license, one 201; every other answer is a 409 `external-id-exists`
/// naming it. The id then lists it through either replica.
#[test]
fn one_external_id_mints_one_license_across_replicas() {
    let Some((_dir, a, b)) = two_replicas() else {
        return;
    };
    let token = a.token.clone().expect("admin token");
    post(
        a.addr,
        "/v1/products",
        &token,
        &json!({ "product": "acme-cad" }),
    );
    let cus = post(b.addr, "/v1/customers", &token, &json!({})).json()["customer_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = json!({ "product": "acme-cad", "customer_id": cus, "plan": "pro", "expires": "30d",
                       "external_id": "order-1001" });
    let answers: Vec<(u16, serde_json::Value)> = std::thread::scope(|t| {
        let handles: Vec<_> = (0..16)
            .map(|n| {
                let (addr, token, body) = (if n % 2 == 0 { a.addr } else { b.addr }, &token, &body);
                t.spawn(move || {
                    let r = post(addr, "/v1/licenses", token, body);
                    (r.status, r.json())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let made: Vec<&serde_json::Value> = answers
        .iter()
        .filter(|(s, _)| *s == 201)
        .map(|(_, j)| j)
        .collect();
    assert_eq!(made.len(), 1, "{answers:?}");
    let id = made[0]["license_id"].as_str().unwrap();
    assert_eq!(made[0]["external_id"], "order-1001");
    for (status, j) in answers.iter().filter(|(s, _)| *s != 201) {
        assert_eq!(*status, 409, "{j}");
        assert_eq!(j["type"], "urn:keyseal:problem:external-id-exists", "{j}");
        assert!(j["detail"].as_str().unwrap().contains(id), "{j}");
    }
    for r in [a.addr, b.addr] {
        let all = get(r, "/v1/licenses?limit=500", &token).json();
        assert_eq!(all["items"].as_array().unwrap().len(), 1);
    }
}

/// 50 devices ask two replicas for seats of one 5-seat license at once,
/// and two in three of those that get one release it: the organisation's
/// audit log (one chain, in commit order) never shows more seats held
/// than the license has, and seats released were taken again.
#[test]
fn fifty_devices_through_two_replicas_never_hold_more_seats_than_the_license() {
    use keyseal_core::{SeatId, SigningKey};
    use keyseal_issuer::seats::release_message;
    let Some((_dir, a, b)) = two_replicas() else {
        return;
    };
    let token = a.token.clone().expect("admin token");
    let _ = post(
        a.addr,
        "/v1/products",
        &token,
        &json!({ "product": "acme-cad" }),
    );
    let cus = post(a.addr, "/v1/customers", &token, &json!({})).json()["customer_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = post(
        a.addr,
        "/v1/licenses",
        &token,
        &json!({ "product": "acme-cad", "customer_id": cus, "plan": "floating", "expires": "30d", "max_devices": 5 }),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let key = r.json()["license_key"].as_str().unwrap().to_owned();
    let grants = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let threads: Vec<_> = (0..50u32)
        .map(|n| {
            let addr = if n % 2 == 0 { a.addr } else { b.addr };
            let (key, grants) = (key.clone(), Arc::clone(&grants));
            std::thread::spawn(move || {
                let fp = common::device(n);
                let mut seed = [5u8; 32];
                seed[..4].copy_from_slice(&n.to_be_bytes());
                let me = SigningKey::from_seed(&seed).unwrap();
                let body = json!({"license_key": key, "fingerprint": fp.to_string(), "public_key": me.public_key().to_string()});
                // One address for all: the public rate limit (20 a second
                // per client) makes some wait; they ask again.
                let ask = |path: &str, body: &serde_json::Value| loop {
                    let r = common::req(addr, "POST", path, None, Some(("application/json", body.to_string().as_bytes())), &[]);
                    if r.status != 429 {
                        return r;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                };
                for _ in 0..10 {
                    let r = ask("/v1/public/leases", &body);
                    if r.status == 201 {
                        if grants.fetch_add(1, std::sync::atomic::Ordering::SeqCst) % 3 != 2 {
                            let seat = r.json()["seat_id"].as_str().unwrap().to_owned();
                            let at = common::now();
                            let sig = me.sign_raw(&release_message(seat.parse::<SeatId>().unwrap(), at));
                            let sig: String = sig.iter().map(|x| format!("{x:02x}")).collect();
                            let rel = json!({"license_key": key, "seat_id": seat, "at": at, "signature": sig});
                            let r = ask("/v1/public/leases/release", &rel);
                            assert_eq!(r.status, 200, "{}", r.text());
                            return (1, 1);
                        }
                        return (1, 0);
                    }
                    r.problem(409, "seat-limit");
                    std::thread::sleep(Duration::from_millis(5));
                }
                (0, 0)
            })
        })
        .collect();
    let (mut granted, mut released) = (0i64, 0i64);
    for t in threads {
        let (g, r) = t.join().unwrap();
        granted += g;
        released += r;
    }
    assert!(
        granted > 5 && released > 0,
        "{granted} granted, {released} released"
    );
    let mut held = 0i64;
    let mut cursor = String::new();
    loop {
        let page = get(b.addr, &format!("/v1/audit?limit=100{cursor}"), &token).json();
        for e in page["items"].as_array().unwrap() {
            match e["action"].as_str().unwrap() {
                "seat.activate" if e["details"]["again"] == json!(false) => held += 1,
                "seat.release" => held -= 1,
                _ => {}
            }
            assert!(held <= 5, "{held} seats held at {}", e["seq"]);
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(held, granted - released);
}

/// Check-ins of ten seats through both replicas at once, alternating: every
/// one renews its seat; the very same signed check-in sent to both replicas
/// at the same moment renews once, the other is a replay (403 `bad-proof`).
#[test]
fn check_ins_through_two_replicas_renew_once_each() {
    use keyseal_core::{Fingerprint, SeatId, SigningKey};
    use keyseal_issuer::seats::check_in_message;
    let Some((_dir, a, b)) = two_replicas() else {
        return;
    };
    let token = a.token.clone().expect("admin token");
    let _ = post(
        a.addr,
        "/v1/products",
        &token,
        &json!({ "product": "acme-cad" }),
    );
    let cus = post(a.addr, "/v1/customers", &token, &json!({})).json()["customer_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = post(
        a.addr,
        "/v1/licenses",
        &token,
        &json!({ "product": "acme-cad", "customer_id": cus, "plan": "floating", "expires": "30d", "max_devices": 10 }),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let key = r.json()["license_key"].as_str().unwrap().to_owned();
    let ask = |addr: SocketAddr, path: &str, body: &serde_json::Value| loop {
        let r = common::req(
            addr,
            "POST",
            path,
            None,
            Some(("application/json", body.to_string().as_bytes())),
            &[],
        );
        if r.status != 429 {
            return r;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let devices: Vec<(Fingerprint, SigningKey, String)> = (0..10u32)
        .map(|n| {
            let fp = common::device(n);
            let mut seed = [6u8; 32];
            seed[..4].copy_from_slice(&n.to_be_bytes());
            let me = SigningKey::from_seed(&seed).unwrap();
            let body = json!({"license_key": key, "fingerprint": fp.to_string(), "public_key": me.public_key().to_string()});
            let r = ask(if n % 2 == 0 { a.addr } else { b.addr }, "/v1/public/leases", &body);
            assert_eq!(r.status, 201, "{}", r.text());
            let seat = r.json()["seat_id"].as_str().unwrap().to_owned();
            (fp, me, seat)
        })
        .collect();
    let check_in = |(fp, me, seat): &(Fingerprint, SigningKey, String), at: u64| {
        let sig = me.sign_raw(&check_in_message(seat.parse::<SeatId>().unwrap(), at));
        let sig: String = sig.iter().map(|x| format!("{x:02x}")).collect();
        json!({"license_key": key, "fingerprint": fp.to_string(), "seat_id": seat, "at": at, "signature": sig})
    };
    let t0 = common::now();
    std::thread::scope(|sc| {
        for d in &devices {
            let (check_in, ask) = (&check_in, &ask);
            sc.spawn(move || {
                for k in 1..=6u64 {
                    let addr = if k % 2 == 0 { a.addr } else { b.addr };
                    let r = ask(addr, "/v1/public/leases/check-in", &check_in(d, t0 + k));
                    assert_eq!(r.status, 200, "{}", r.text());
                }
            });
        }
    });
    // The same request at both replicas at once, for every seat.
    let mut renewed = 0;
    std::thread::scope(|sc| {
        let handles: Vec<_> = devices
            .iter()
            .flat_map(|d| {
                let body = check_in(d, t0 + 10);
                [a.addr, b.addr].map(|addr| {
                    let (body, ask) = (body.clone(), &ask);
                    sc.spawn(move || ask(addr, "/v1/public/leases/check-in", &body))
                })
            })
            .collect();
        for h in handles {
            let r = h.join().unwrap();
            if r.status == 200 {
                renewed += 1;
            } else {
                r.problem(403, "bad-proof");
            }
        }
    });
    assert_eq!(renewed, devices.len());
}

/// No public rate limits: these tests ask as fast as they can from one
/// address.
fn unlimited() -> keyseal_server::Network {
    keyseal_server::Network {
        public_requests_per_second: 0,
        lease_requests_per_license_per_minute: 0,
        trial_requests_per_client_per_minute: 0,
        ..keyseal_server::Network::default()
    }
}

/// Device `n`'s activation request for `key`: fingerprint, installation key.
fn activation(key: &str, n: u32) -> serde_json::Value {
    use keyseal_core::SigningKey;
    let fp = common::device(n);
    let mut seed = [9u8; 32];
    seed[..4].copy_from_slice(&n.to_be_bytes());
    let me = SigningKey::from_seed(&seed).unwrap();
    json!({"license_key": key, "fingerprint": fp.to_string(), "public_key": me.public_key().to_string()})
}

/// Relay `n`'s public key (`kspub1.`).
fn relay_key(n: u32) -> String {
    let mut seed = [11u8; 32];
    seed[..4].copy_from_slice(&n.to_be_bytes());
    keyseal_core::SigningKey::from_seed(&seed)
        .unwrap()
        .public_key()
        .to_string()
}

/// The organisation's audit log, oldest first (one chain, in commit order).
fn audit_log(addr: SocketAddr, token: &str) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = get(addr, &format!("/v1/audit?limit=100{cursor}"), token).json();
        out.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => return out,
        }
    }
}

/// Twelve devices and eight relays (two seats each) ask two replicas at
/// once for seats of one 10-seat license: the audit log, in commit order,
/// never shows leases and allotments holding more than ten seats, and the
/// seats all went to someone.
#[test]
fn leases_and_allotments_through_two_replicas_never_exceed_the_seats() {
    let Some((_dir, a, b)) = two_replicas_with(unlimited()) else {
        return;
    };
    let token = a.token.clone().expect("admin token");
    let (key, lid) = common::seat_license(a.addr, &token, 10);
    let barrier = std::sync::Barrier::new(20);
    std::thread::scope(|sc| {
        for n in 0..12u32 {
            let (key, barrier) = (&key, &barrier);
            let addr = if n % 2 == 0 { a.addr } else { b.addr };
            sc.spawn(move || {
                barrier.wait();
                let r = common::public_post(addr, "/v1/public/leases", &activation(key, n), &[]);
                if r.status != 201 {
                    r.problem(409, "seat-limit");
                }
            });
        }
        for n in 0..8u32 {
            let (lid, token, barrier) = (&lid, &token, &barrier);
            let addr = if n % 2 == 0 { b.addr } else { a.addr };
            sc.spawn(move || {
                barrier.wait();
                let r = post(
                    addr,
                    &format!("/v1/licenses/{lid}/allotments"),
                    token,
                    &json!({"relay_key": relay_key(n), "seats": 2}),
                );
                if r.status != 201 {
                    r.problem(409, "seat-limit");
                }
            });
        }
    });
    let mut held = 0u64;
    for e in audit_log(b.addr, &token) {
        match e["action"].as_str().unwrap() {
            "seat.activate" if e["details"]["again"] == json!(false) => held += 1,
            "allotment.grant" => held += e["details"]["seats"].as_u64().unwrap(),
            _ => {}
        }
        assert!(held <= 10, "{held} seats held at {}", e["seq"]);
    }
    // Two-seat allotments may leave one seat that only a device could take.
    assert!(held >= 9, "{held} of 10 seats went to someone");
}

/// A license revoked through one replica while devices activate and
/// relays ask for allotments through both, as fast as they can: in the
/// audit log (commit order) no seat or allotment of it comes after its
/// revocation, every request is answered (201, or a refusal; never a
/// 5xx), and the requests after it are refused.
#[test]
fn nothing_is_granted_after_a_revocation_through_another_replica() {
    let Some((_dir, a, b)) = two_replicas_with(unlimited()) else {
        return;
    };
    let token = a.token.clone().expect("admin token");
    let (key, lid) = common::seat_license(a.addr, &token, 1_000);
    let revoked = std::sync::atomic::AtomicBool::new(false);
    let granted = std::sync::atomic::AtomicU64::new(0);
    std::thread::scope(|sc| {
        for t in 0..6u32 {
            let (key, lid, token, revoked, granted) = (&key, &lid, &token, &revoked, &granted);
            let addr = if t % 2 == 0 { a.addr } else { b.addr };
            sc.spawn(move || {
                for k in 0..400u32 {
                    let n = t * 1_000 + k;
                    let after = revoked.load(std::sync::atomic::Ordering::SeqCst);
                    let r = if t < 4 {
                        common::public_post(addr, "/v1/public/leases", &activation(key, n), &[])
                    } else {
                        post(
                            addr,
                            &format!("/v1/licenses/{lid}/allotments"),
                            token,
                            &json!({"relay_key": relay_key(n), "seats": 1}),
                        )
                    };
                    if r.status == 201 {
                        assert!(
                            !after,
                            "granted after the revocation answered: {}",
                            r.text()
                        );
                        granted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        continue;
                    }
                    assert!(
                        r.status == 403 || r.status == 409,
                        "{} {}",
                        r.status,
                        r.text()
                    );
                    if after {
                        break;
                    }
                }
            });
        }
        // Revoke once requests are flowing.
        while granted.load(std::sync::atomic::Ordering::SeqCst) < 30 {
            std::thread::sleep(Duration::from_millis(2));
        }
        let r = post(
            b.addr,
            &format!("/v1/licenses/{lid}/revoke"),
            &token,
            &json!({"reason": "refund"}),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        revoked.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    let log = audit_log(a.addr, &token);
    let at = log
        .iter()
        .position(|e| {
            e["action"] == json!("license.revoke") && e["details"]["license_id"] == json!(lid)
        })
        .expect("the revocation is in the audit log");
    let before = log[..at]
        .iter()
        .filter(|e| {
            matches!(
                e["action"].as_str(),
                Some("seat.activate" | "allotment.grant")
            )
        })
        .count();
    assert!(before >= 30, "{before} grants before the revocation");
    for e in &log[at..] {
        assert!(
            !matches!(
                e["action"].as_str(),
                Some("seat.activate" | "allotment.grant")
            ),
            "granted after the revocation: {e}"
        );
    }
}

/// Devices ask both replicas at once for a trial, each with its exact
/// fingerprint or with one component changed (a new network card): each
/// device gets one trial license, whichever replica answered, and every
/// other answer is that same key again (the same fingerprint) or
/// `trial-used`.
#[test]
fn one_trial_per_device_through_two_replicas() {
    use keyseal_core::Fingerprint;
    let Some((_dir, a, b)) = two_replicas_with(unlimited()) else {
        return;
    };
    let token = a.token.clone().expect("admin token");
    let _ = post(
        a.addr,
        "/v1/products",
        &token,
        &json!({ "product": "acme-cad" }),
    );
    let r = post(
        b.addr,
        "/v1/products/acme-cad/trial-policy",
        &token,
        &json!({"enabled": true}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let org = get(a.addr, "/v1/tokens", &token).json()["items"][0]["org_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let part = |m: u32, kind: &str, v: u32| {
        Fingerprint::component("acme-cad", kind, format!("{m}-{kind}-{v}").as_bytes())
    };
    std::thread::scope(|sc| {
        for m in 0..4u32 {
            let org = &org;
            sc.spawn(move || {
                let barrier = std::sync::Barrier::new(8);
                let answers: Vec<common::Resp> = std::thread::scope(|inner| {
                    let handles: Vec<_> = (0..8u32)
                        .map(|k| {
                            let barrier = &barrier;
                            // Half the requests with another network card.
                            let fp = Fingerprint::from_components(&[
                                part(m, "machine-id", 0),
                                part(m, "dmi-product-uuid", 0),
                                part(m, "mac", k % 2),
                            ])
                            .unwrap();
                            let addr = if k % 4 < 2 { a.addr } else { b.addr };
                            inner.spawn(move || {
                                barrier.wait();
                                common::public_post(
                                    addr,
                                    "/v1/public/trials",
                                    &json!({"org_id": org, "product": "acme-cad", "fingerprint": fp.to_string()}),
                                    &[],
                                )
                            })
                        })
                        .collect();
                    handles.into_iter().map(|h| h.join().unwrap()).collect()
                });
                let minted: Vec<_> = answers.iter().filter(|r| r.status == 201).collect();
                assert_eq!(minted.len(), 1, "device {m}: {:?}", answers.iter().map(|r| r.status).collect::<Vec<_>>());
                let key = minted[0].json()["license_key"].clone();
                for r in &answers {
                    match r.status {
                        201 => {}
                        200 => assert_eq!(r.json()["license_key"], key, "device {m}"),
                        _ => r.problem(409, "trial-used"),
                    }
                }
            });
        }
    });
}

/// The same Stripe checkout event, posted to two replicas at once many
/// times (as Stripe retries while a slow answer is pending): one customer,
/// one license, one event acted on; every other answer a duplicate.
#[test]
fn one_stripe_event_mints_once_across_replicas() {
    let Some((_dir, a, b)) = two_replicas() else {
        return;
    };
    let token = a.token.clone().unwrap();
    post(
        a.addr,
        "/v1/products",
        &token,
        &json!({ "product": "acme-cad" }),
    );
    let secret = "whsec_replica_race_0123456789";
    let r = post(
        a.addr,
        "/v1/payments/stripe",
        &token,
        &json!({ "signing_secret": secret }),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let org = r.json()["endpoint"]
        .as_str()
        .unwrap()
        .split('/')
        .nth(4)
        .unwrap()
        .to_owned();
    let r = post(
        b.addr,
        "/v1/payments/prices",
        &token,
        &json!({ "price_id": "price_race", "product": "acme-cad", "plan": "pro", "duration_secs": 86400 }),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let body = json!({
        "id": "evt_race", "object": "event", "type": "checkout.session.completed",
        "data": { "object": {
            "id": "cs_race", "object": "checkout.session", "payment_status": "paid", "mode": "payment",
            "customer": "cus_stripe_race", "payment_intent": "pi_race",
            "customer_details": { "email": "race@example.com", "name": null },
            "metadata": { "keyseal_price": "price_race" }
        }}
    })
    .to_string();
    let now = common::now();
    let header = format!(
        "t={now},v1={}",
        keyseal_issuer::payments::stripe_v1(secret, i128::from(now), &body)
    );
    let path = format!("/v1/public/orgs/{org}/payments/stripe");
    let answers: Vec<serde_json::Value> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..8)
            .map(|n| {
                let addr = if n % 2 == 0 { a.addr } else { b.addr };
                let (path, body, header) = (&path, &body, &header);
                s.spawn(move || {
                    let r = common::req(
                        addr,
                        "POST",
                        path,
                        None,
                        Some(("application/json", body.as_bytes())),
                        &[("stripe-signature", header)],
                    );
                    assert_eq!(r.status, 200, "{}", r.text());
                    r.json()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let firsts: Vec<_> = answers
        .iter()
        .filter(|a| a["duplicate"].is_null())
        .collect();
    assert_eq!(firsts.len(), 1, "{answers:?}");
    let licenses = get(a.addr, "/v1/licenses", &token).json();
    assert_eq!(licenses["items"].as_array().unwrap().len(), 1, "{licenses}");
    let customers = get(a.addr, "/v1/customers", &token).json();
    assert_eq!(
        customers["items"].as_array().unwrap().len(),
        1,
        "{customers}"
    );
    let events = get(b.addr, "/v1/payments/events", &token).json();
    assert_eq!(events["items"].as_array().unwrap().len(), 1, "{events}");
}
