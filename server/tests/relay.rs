//! The on-premises relay (`keyseal_server::relay`): the vendor allots seats
//! of a license to a relay's key (they count against the license on SQLite
//! and PostgreSQL), the vendor's service stops, and a relay on loopback
//! leases them to 20 clients through the Rust SDK's seat client; the leases
//! validate offline with the vendor's keyring; seats hold across a restart
//! of the relay; releases free them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use common::{get, post, req};
use keyseal::seats::{SeatClient, SeatError};
use keyseal::{Keyring, ManualClock, MemoryStateStore, Validator};
use keyseal_server::relay::{self, Relay, RelayOptions};
use serde_json::json;

/// The vendor's allotment of `seats` seats of license `lid` to the relay
/// key `relay_key` (`ksallot1.`).
fn allot(
    addr: std::net::SocketAddr,
    token: &str,
    lid: &str,
    relay_key: &str,
    seats: u64,
) -> String {
    let a = post(
        addr,
        &format!("/v1/licenses/{lid}/allotments"),
        token,
        &json!({"relay_key": relay_key, "seats": seats}),
    );
    assert_eq!(a.status, 201, "{}", a.text());
    a.json()["allotment"].as_str().unwrap().to_owned()
}

fn validator(keyring: &str, n: u32, now: u64) -> Validator {
    let keyring: Keyring = keyring.parse().unwrap();
    Validator::builder(keyring, "acme-cad")
        .clock(ManualClock::new(now))
        .state(MemoryStateStore::new())
        .device(common::device(n))
        .build()
        .unwrap()
}

/// A relay serving on loopback in its own thread until dropped.
struct Running {
    addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(relay: Arc<Relay>) -> Running {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(l.local_addr().unwrap()).unwrap();
            relay::serve(&relay, l, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
    });
    Running {
        addr: rx.recv().unwrap(),
        stop: Some(stop),
        thread: Some(thread),
    }
}

fn options(
    dir: &std::path::Path,
    keyring: &str,
    key: &str,
    allotment: &std::path::Path,
    clock: &Arc<AtomicU64>,
) -> RelayOptions {
    let clock = clock.clone();
    RelayOptions {
        dir: dir.to_owned(),
        keyring: keyring.to_owned(),
        license_key: key.to_owned(),
        allotment: allotment.to_owned(),
        lease_secs: 600,
        grace_secs: 300,
        clock: Arc::new(move || clock.load(Ordering::SeqCst)),
        renew_from: None,
    }
}

#[test]
fn allotted_seats_count_against_the_license_on_every_backend() {
    for backend in common::backend_list() {
        let s = common::start_on(backend);
        let addr = s.addr;
        let (key, lid) = common::seat_license(addr, &s.admin, 10);
        let relay_dir = tempfile::tempdir().unwrap();
        let relay_key = relay::init(relay_dir.path()).unwrap().to_string();
        let path = format!("/v1/licenses/{lid}/allotments");
        let a = post(
            addr,
            &path,
            &s.admin,
            &json!({"relay_key": relay_key, "seats": 6}),
        );
        assert_eq!(a.status, 201, "{backend:?}: {}", a.text());
        let a = a.json();
        assert_eq!(a["seats"], json!(6));
        assert!(a["allotment"].as_str().unwrap().starts_with("ksallot1."));
        // Four seats left: a second relay may have four, not five.
        let other_dir = tempfile::tempdir().unwrap();
        let other = relay::init(other_dir.path()).unwrap().to_string();
        post(
            addr,
            &path,
            &s.admin,
            &json!({"relay_key": other, "seats": 5}),
        )
        .problem(409, "seat-limit");
        let b = post(
            addr,
            &path,
            &s.admin,
            &json!({"relay_key": other, "seats": 3}),
        );
        assert_eq!(b.status, 201, "{}", b.text());
        // A renewal of the first relay does not count its own allotment twice.
        let again = post(
            addr,
            &path,
            &s.admin,
            &json!({"relay_key": relay_key, "seats": 7}),
        );
        assert_eq!(again.status, 201, "{}", again.text());
        // 7 + 3 of 10: a device activating online finds no seat.
        let r = req(
            addr,
            "POST",
            "/v1/public/leases",
            None,
            Some((
                "application/json",
                json!({"license_key": key, "fingerprint": common::device(1).to_string(), "public_key": relay_key})
                    .to_string()
                    .as_bytes(),
            )),
            &[],
        );
        r.problem(409, "seat-limit");
        // Revoked: no further allotment; listed with its revocation; read
        // tokens may list, not allot; another organisation sees nothing.
        let relay_id = a["relay_key_id"].as_str().unwrap();
        let rv = post(
            addr,
            &format!("/v1/licenses/{lid}/relays/{relay_id}/revoke"),
            &s.admin,
            &json!({}),
        );
        assert_eq!(rv.status, 200, "{}", rv.text());
        post(
            addr,
            &path,
            &s.admin,
            &json!({"relay_key": relay_key, "seats": 1}),
        )
        .problem(409, "relay-revoked");
        let list = get(addr, &path, &s.read).json();
        let rows = list["allotments"].as_array().unwrap();
        assert_eq!(rows.len(), 3);
        assert!(rows.iter().any(|r| r["revoked_at"].is_u64()));
        post(
            addr,
            &path,
            &s.read,
            &json!({"relay_key": other, "seats": 1}),
        )
        .problem(403, "forbidden");
        get(addr, &path, &s.other).problem(404, "not-found");
        post(
            addr,
            &path,
            &s.admin,
            &json!({"relay_key": "kspub1.nope", "seats": 1}),
        )
        .problem(422, "invalid-value");
        post(
            addr,
            &path,
            &s.admin,
            &json!({"relay_key": other, "seats": 0}),
        )
        .problem(422, "invalid-value");
        let audit = get(addr, "/v1/audit?limit=200", &s.admin).text();
        assert!(audit.contains("allotment.grant") && audit.contains("allotment.revoke"));
    }
}

#[test]
fn a_relay_leases_its_allotment_to_twenty_clients_with_the_vendor_stopped() {
    let s = common::start();
    let addr = s.addr;
    let (key, lid) = common::seat_license(addr, &s.admin, 20);
    let keyring = req(addr, "GET", "/v1/public/keyring", None, None, &[]).json()["keyring"]
        .as_str()
        .unwrap()
        .to_owned();
    let relay_dir = tempfile::tempdir().unwrap();
    let relay_key = relay::init(relay_dir.path()).unwrap();
    // A second init never replaces the key.
    let again = relay::init(relay_dir.path()).unwrap_err().0;
    assert!(again.contains(&relay_key.to_string()), "{again}");
    let a = post(
        addr,
        &format!("/v1/licenses/{lid}/allotments"),
        &s.admin,
        &json!({"relay_key": relay_key.to_string(), "seats": 15, "secs": 86_400}),
    );
    assert_eq!(a.status, 201, "{}", a.text());
    let allotment = a.json();
    let allot_file = relay_dir.path().join("allotment.txt");
    std::fs::write(&allot_file, allotment["allotment"].as_str().unwrap()).unwrap();
    let allot_end = allotment["expires_at"].as_u64().unwrap();
    // The vendor's service stops: the relay needs nothing more from it.
    drop(s);

    let clock = Arc::new(AtomicU64::new(common::now()));
    let relay = Relay::open(options(
        relay_dir.path(),
        &keyring,
        &key,
        &allot_file,
        &clock,
    ))
    .unwrap();
    let running = run(relay);
    let base = format!("http://{}", running.addr);

    // Twenty clients at once: fifteen seats.
    let results: Vec<(u32, Result<keyseal::seats::Seat, SeatError>)> = std::thread::scope(|sc| {
        let handles: Vec<_> = (0..20u32)
            .map(|n| {
                let (base, key) = (&base, &key);
                sc.spawn(move || {
                    (
                        n,
                        SeatClient::new(base.clone()).activate(key, &common::device(n)),
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let (mut granted, refused): (Vec<_>, Vec<_>) =
        results.into_iter().partition(|(_, r)| r.is_ok());
    assert_eq!(granted.len(), 15, "{refused:?}");
    for (_, r) in &refused {
        assert_eq!(r.as_ref().unwrap_err().code(), "seat_limit");
    }
    let now = clock.load(Ordering::SeqCst);
    for (n, seat) in &granted {
        let seat = seat.as_ref().unwrap();
        assert!(seat.expires_at() <= allot_end);
        let lic = validator(&keyring, *n, now)
            .validate_with_lease(&key, seat.lease())
            .unwrap_or_else(|r| panic!("client {n}: {}", r.code()));
        let lease = lic.lease().unwrap();
        assert_eq!(lease.key_id(), relay_key.key_id());
        assert_eq!(lease.seat_id(), seat.seat_id());
        // On another device, or after its end, it does not hold.
        let other = validator(&keyring, n + 100, now).validate_with_lease(&key, seat.lease());
        assert_eq!(other.unwrap_err().code(), "lease_invalid");
        let late =
            validator(&keyring, *n, seat.expires_at() + 1).validate_with_lease(&key, seat.lease());
        assert_eq!(late.unwrap_err().code(), "lease_expired");
    }

    // A check-in renews; three releases free three seats for three of the
    // refused clients; the other two still wait.
    let client = SeatClient::new(base.clone());
    clock.fetch_add(60, Ordering::SeqCst);
    {
        let (n, seat) = &mut granted[0];
        let seat = seat.as_mut().unwrap();
        client.check_in(&key, &common::device(*n), seat).unwrap();
        let _renewed = validator(&keyring, *n, clock.load(Ordering::SeqCst))
            .validate_with_lease(&key, seat.lease())
            .unwrap();
    }
    for (_, seat) in granted.iter_mut().skip(1).take(3) {
        client.release(&key, seat.as_mut().unwrap()).unwrap();
    }
    let waiting: Vec<u32> = refused.iter().map(|(n, _)| *n).collect();
    let retried: Vec<_> = waiting
        .iter()
        .map(|n| client.activate(&key, &common::device(*n)))
        .collect();
    assert_eq!(
        retried.iter().filter(|r| r.is_ok()).count(),
        3,
        "{retried:?}"
    );

    // Killed and restarted: the relay holds the same fifteen seats.
    drop(running);
    let relay = Relay::open(options(
        relay_dir.path(),
        &keyring,
        &key,
        &allot_file,
        &clock,
    ))
    .unwrap();
    let running = run(relay);
    let client = SeatClient::new(format!("http://{}", running.addr));
    assert_eq!(
        client
            .activate(&key, &common::device(500))
            .unwrap_err()
            .code(),
        "seat_limit"
    );
    // A device that holds a seat gets it back (the same seat).
    let (n, seat) = &granted[4];
    let back = client.activate(&key, &common::device(*n)).unwrap();
    assert_eq!(back.seat_id(), seat.as_ref().unwrap().seat_id());
    // A key other than the allotted license's is refused.
    let mut bad = key.clone();
    let last = bad.pop().unwrap();
    bad.push(if last == 'A' { 'B' } else { 'A' });
    assert_eq!(
        client
            .activate(&bad, &common::device(600))
            .unwrap_err()
            .code(),
        "invalid_license_key"
    );
    // A replaced allotment file that does not verify is ignored.
    std::fs::write(&allot_file, "ksallot1.AAAA").unwrap();
    assert_eq!(
        client
            .activate(&key, &common::device(*n))
            .unwrap()
            .seat_id(),
        seat.as_ref().unwrap().seat_id()
    );
    // Past the allotment's end the relay leases nothing.
    clock.store(allot_end, Ordering::SeqCst);
    let ended = client.activate(&key, &common::device(*n)).unwrap_err();
    assert!(
        matches!(
            ended,
            SeatError::Refused {
                code: "allotment_ended",
                status: 503,
                ..
            }
        ),
        "{ended:?}"
    );
}

#[test]
fn a_relay_refuses_an_allotment_for_another_key_or_license() {
    let s = common::start();
    let addr = s.addr;
    let (key, lid) = common::seat_license(addr, &s.admin, 5);
    let (other_key, _) = common::seat_license(addr, &s.admin, 5);
    let keyring = req(addr, "GET", "/v1/public/keyring", None, None, &[]).json()["keyring"]
        .as_str()
        .unwrap()
        .to_owned();
    let mine = tempfile::tempdir().unwrap();
    relay::init(mine.path()).unwrap();
    let theirs = tempfile::tempdir().unwrap();
    let their_key = relay::init(theirs.path()).unwrap();
    let file = mine.path().join("allotment.txt");
    std::fs::write(
        &file,
        allot(addr, &s.admin, &lid, &their_key.to_string(), 2),
    )
    .unwrap();
    let clock = Arc::new(AtomicU64::new(common::now()));
    let e = Relay::open(options(mine.path(), &keyring, &key, &file, &clock))
        .err()
        .unwrap()
        .0;
    assert!(e.contains("another relay key"), "{e}");
    let e = Relay::open(options(theirs.path(), &keyring, &other_key, &file, &clock))
        .err()
        .unwrap()
        .0;
    assert!(e.contains("not of this license"), "{e}");
    let e = Relay::open(options(
        theirs.path(),
        "key kspub1.AAAA",
        &key,
        &file,
        &clock,
    ))
    .err()
    .unwrap()
    .0;
    assert!(e.contains("keyring"), "{e}");
}

/// Relays and devices asking at once: the leases and allotted seats in
/// force never exceed the license's, and every seat is taken.
#[test]
fn concurrent_allotments_and_activations_share_the_seats() {
    for backend in common::backend_list() {
        let s = common::start_on(backend);
        let addr = s.addr;
        let (key, lid) = common::seat_license(addr, &s.admin, 10);
        let dirs: Vec<_> = (0..12).map(|_| tempfile::tempdir().unwrap()).collect();
        let keys: Vec<String> = dirs
            .iter()
            .map(|d| relay::init(d.path()).unwrap().to_string())
            .collect();
        let path = format!("/v1/licenses/{lid}/allotments");
        let (allotted, leased): (usize, usize) = std::thread::scope(|sc| {
            let relays: Vec<_> = keys
                .iter()
                .map(|k| {
                    let (path, admin) = (&path, &s.admin);
                    sc.spawn(move || {
                        post(addr, path, admin, &json!({"relay_key": k, "seats": 1})).status
                    })
                })
                .collect();
            let devices: Vec<_> = (0..12u32)
                .map(|n| {
                    let key = &key;
                    sc.spawn(move || {
                        let body = json!({"license_key": key, "fingerprint": common::device(n).to_string(), "public_key": keys_pk(n)});
                        req(
                            addr,
                            "POST",
                            "/v1/public/leases",
                            None,
                            Some(("application/json", body.to_string().as_bytes())),
                            &[],
                        )
                        .status
                    })
                })
                .collect();
            let count = |hs: Vec<std::thread::ScopedJoinHandle<'_, u16>>| {
                hs.into_iter()
                    .map(|h| h.join().unwrap())
                    .inspect(|st| assert!(*st == 201 || *st == 409, "{st}"))
                    .filter(|st| *st == 201)
                    .count()
            };
            (count(relays), count(devices))
        });
        assert_eq!(
            allotted + leased,
            10,
            "{backend:?}: {allotted} allotted, {leased} leased"
        );
    }
}

fn keys_pk(n: u32) -> String {
    let mut seed = [7u8; 32];
    seed[..4].copy_from_slice(&n.to_be_bytes());
    keyseal_core::SigningKey::from_seed(&seed)
        .unwrap()
        .public_key()
        .to_string()
}

/// The relay's clock behind the vendor's: its leases are dated from the
/// allotment, so apps accept them. An older allotment put in place of the
/// one in force is ignored. Seats released a day ago are forgotten.
#[test]
fn a_relay_dates_its_leases_keeps_the_newest_allotment_and_forgets_old_seats() {
    let (offset, vendor_clock) = common::offset_clock();
    let s = common::start_with_clock(common::Backend::Sqlite, vendor_clock);
    let addr = s.addr;
    let (key, lid) = common::seat_license(addr, &s.admin, 20);
    let keyring = req(addr, "GET", "/v1/public/keyring", None, None, &[]).json()["keyring"]
        .as_str()
        .unwrap()
        .to_owned();
    let dir = tempfile::tempdir().unwrap();
    let relay_key = relay::init(dir.path()).unwrap().to_string();
    let grant = |seats: u64| {
        let a = post(
            addr,
            &format!("/v1/licenses/{lid}/allotments"),
            &s.admin,
            &json!({"relay_key": relay_key, "seats": seats}),
        );
        assert_eq!(a.status, 201, "{}", a.text());
        a.json()
    };
    let first = grant(10);
    offset.store(600, Ordering::SeqCst);
    let second = grant(4);
    let file = dir.path().join("allotment.txt");
    std::fs::write(&file, second["allotment"].as_str().unwrap()).unwrap();
    let issued = second["issued_at"].as_u64().unwrap();
    // This machine's clock is two minutes behind the vendor's.
    let clock = Arc::new(AtomicU64::new(issued - 120));
    let relay = Relay::open(options(dir.path(), &keyring, &key, &file, &clock)).unwrap();
    let running = run(relay.clone());
    let client = SeatClient::new(format!("http://{}", running.addr));
    let mut seat = client.activate(&key, &common::device(1)).unwrap();
    assert!(seat.renew_at() >= issued);
    let lic = validator(&keyring, 1, issued - 120)
        .validate_with_lease(&key, seat.lease())
        .unwrap();
    assert_eq!(lic.lease().unwrap().issued_at(), issued);
    // The older, larger allotment in its place is not taken.
    std::fs::write(&file, first["allotment"].as_str().unwrap()).unwrap();
    let _ = client.activate(&key, &common::device(2)).unwrap();
    let terms = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(relay.allotment());
    assert_eq!(terms.seats, 4);
    // Released, then forgotten a day later.
    // (The SDK signs with the real time.)
    let released = common::now();
    clock.store(released, Ordering::SeqCst);
    client.release(&key, &mut seat).unwrap();
    let state = std::fs::read_to_string(dir.path().join(relay::STATE_FILE)).unwrap();
    assert!(state.contains(&seat.seat_id().to_string()));
    clock.store(released + relay::FORGET_AFTER_SECS + 1, Ordering::SeqCst);
    let _ = client.activate(&key, &common::device(3)).unwrap();
    let state = std::fs::read_to_string(dir.path().join(relay::STATE_FILE)).unwrap();
    assert!(!state.contains(&seat.seat_id().to_string()), "{state}");
}

/// Revoking a relay puts its key on the revocation list at once: apps that
/// load that list refuse its leases, before its allotment ends.
#[test]
fn a_revoked_relays_leases_are_refused_by_apps_with_the_list() {
    let s = common::start();
    let addr = s.addr;
    let (key, lid) = common::seat_license(addr, &s.admin, 5);
    let keyring = req(addr, "GET", "/v1/public/keyring", None, None, &[]).json()["keyring"]
        .as_str()
        .unwrap()
        .to_owned();
    let dir = tempfile::tempdir().unwrap();
    let relay_key = relay::init(dir.path()).unwrap();
    let a = post(
        addr,
        &format!("/v1/licenses/{lid}/allotments"),
        &s.admin,
        &json!({"relay_key": relay_key.to_string(), "seats": 2}),
    );
    assert_eq!(a.status, 201, "{}", a.text());
    let file = dir.path().join("allotment.txt");
    std::fs::write(&file, a.json()["allotment"].as_str().unwrap()).unwrap();
    let clock = Arc::new(AtomicU64::new(common::now()));
    let relay = Relay::open(options(dir.path(), &keyring, &key, &file, &clock)).unwrap();
    let running = run(relay);
    let seat = SeatClient::new(format!("http://{}", running.addr))
        .activate(&key, &common::device(1))
        .unwrap();
    let list = |addr| req(addr, "GET", "/v1/public/revocations", None, None, &[]).body;
    let with_list = |list: Vec<u8>| {
        let keyring: Keyring = keyring.parse().unwrap();
        Validator::builder(keyring, "acme-cad")
            .state(MemoryStateStore::new())
            .device(common::device(1))
            .revocation_list(list)
            .build()
            .unwrap()
            .validate_with_lease(&key, seat.lease())
            .map(|_| ())
            .map_err(|r| (r.code().to_owned(), r.problem().core_error().cloned()))
    };
    // Minting published a list that does not name the relay.
    let before = list(addr);
    assert!(with_list(before).is_ok());
    let relay_id = relay_key.key_id().to_string();
    let r = post(
        addr,
        &format!("/v1/licenses/{lid}/relays/{relay_id}/revoke"),
        &s.admin,
        &json!({}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let (code, err) = with_list(list(addr)).unwrap_err();
    assert_eq!(code, "lease_invalid");
    assert_eq!(
        err,
        Some(keyseal::CoreError::LeaseInvalid(
            keyseal_core::LeaseFault::KeyRevoked(relay_key.key_id())
        ))
    );
}

/// A smaller allotment in force: the seats beyond it are given up at their
/// next check-in (and refused at activation), not renewed; a second relay
/// on the same directory is refused.
#[test]
fn a_smaller_allotment_gives_up_seats_and_one_relay_holds_a_directory() {
    let s = common::start();
    let addr = s.addr;
    let (key, lid) = common::seat_license(addr, &s.admin, 10);
    let keyring = req(addr, "GET", "/v1/public/keyring", None, None, &[]).json()["keyring"]
        .as_str()
        .unwrap()
        .to_owned();
    let dir = tempfile::tempdir().unwrap();
    let relay_key = relay::init(dir.path()).unwrap().to_string();
    let grant = |seats: u64| {
        let a = post(
            addr,
            &format!("/v1/licenses/{lid}/allotments"),
            &s.admin,
            &json!({"relay_key": relay_key, "seats": seats}),
        );
        assert_eq!(a.status, 201, "{}", a.text());
        a.json()["allotment"].as_str().unwrap().to_owned()
    };
    let file = dir.path().join("allotment.txt");
    std::fs::write(&file, grant(6)).unwrap();
    let clock = Arc::new(AtomicU64::new(common::now()));
    let relay = Relay::open(options(dir.path(), &keyring, &key, &file, &clock)).unwrap();
    let second = Relay::open(options(dir.path(), &keyring, &key, &file, &clock))
        .err()
        .unwrap()
        .0;
    assert!(second.contains("another relay"), "{second}");
    let running = run(relay);
    let client = SeatClient::new(format!("http://{}", running.addr));
    let mut seats: Vec<_> = (0..6u32)
        .map(|n| (n, client.activate(&key, &common::device(n)).unwrap()))
        .collect();
    // The vendor shrinks the relay to three seats.
    std::fs::write(&file, grant(3)).unwrap();
    let mut kept = Vec::new();
    for (n, seat) in &mut seats {
        match client.check_in(&key, &common::device(*n), seat) {
            Ok(()) => kept.push(*n),
            Err(e) => assert_eq!(e.code(), "seat_lapsed", "{e:?}"),
        }
    }
    assert_eq!(kept.len(), 3, "{kept:?}");
    assert_eq!(
        client
            .activate(&key, &common::device(100))
            .unwrap_err()
            .code(),
        "seat_limit"
    );
    let given_up = (0..6u32).find(|n| !kept.contains(n)).unwrap();
    assert_eq!(
        client
            .activate(&key, &common::device(given_up))
            .unwrap_err()
            .code(),
        "seat_limit"
    );
    // One kept is renewed again (a second later: a proof's time must grow).
    let (n, seat) = seats.iter_mut().find(|(n, _)| kept.contains(n)).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    client.check_in(&key, &common::device(*n), seat).unwrap();
}

/// A relay with `renew_from` renews its allotment from the vendor's service
/// (the vendor's clock and the relay's move together): as the vendor last
/// allotted it (a smaller allotment shrinks it), by itself once half of
/// the allotment has run, into its allotment file; a replayed, forged or
/// stranger's renewal is refused, and a revoked relay is stopped while the
/// allotment in force stays.
#[test]
fn a_relay_renews_its_allotment_online_as_the_vendor_last_allotted() {
    for backend in common::backend_list() {
        renews_online(backend);
    }
}

fn renews_online(backend: common::Backend) {
    let (offset, service_clock) = common::offset_clock();
    let s = common::start_with_clock(backend, service_clock);
    let addr = s.addr;
    let (key, lid) = common::seat_license(addr, &s.admin, 10);
    let keyring = req(addr, "GET", "/v1/public/keyring", None, None, &[]).json()["keyring"]
        .as_str()
        .unwrap()
        .to_owned();
    let dir = tempfile::tempdir().unwrap();
    let relay_key = relay::init(dir.path()).unwrap();
    let grant = |seats: u64, secs: u64| {
        let a = post(
            addr,
            &format!("/v1/licenses/{lid}/allotments"),
            &s.admin,
            &json!({"relay_key": relay_key.to_string(), "seats": seats, "secs": secs}),
        );
        assert_eq!(a.status, 201, "{}", a.text());
        a.json()["allotment"].as_str().unwrap().to_owned()
    };
    let file = dir.path().join("allotment.txt");
    std::fs::write(&file, grant(4, 7_200)).unwrap();
    let clock = Arc::new(AtomicU64::new(common::now()));
    let mut o = options(dir.path(), &keyring, &key, &file, &clock);
    o.renew_from = Some(format!("http://{addr}/"));
    let relay = Relay::open(o).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let first = rt.block_on(relay.allotment());
    assert!(!rt.block_on(relay.renewal_due()));

    // Renewed now: four seats for two hours again, signed later, written
    // to the file (which the relay would load again unchanged).
    clock.fetch_add(1, Ordering::SeqCst);
    offset.fetch_add(1, Ordering::SeqCst);
    let t = rt.block_on(relay.renew()).unwrap();
    assert_eq!((t.seats, t.expires_at - t.issued_at), (4, 7_200));
    assert!(t.issued_at > first.issued_at);
    assert_eq!(rt.block_on(relay.allotment()), t);
    let on_disk = std::fs::read_to_string(&file).unwrap();
    assert!(on_disk.trim().starts_with("ksallot1."), "{on_disk}");

    // The vendor shrinks the relay: its next renewal has two seats for an
    // hour, whatever the relay held.
    // Two grants in the same second: the later one counts.
    let _ = grant(3, 3_600);
    let _ = grant(2, 3_600);
    let t = rt.block_on(relay.renew()).unwrap();
    assert_eq!((t.seats, t.expires_at - t.issued_at), (2, 3_600));

    // Half of it later, the relay renews by itself. (The relay's clock is
    // first brought to the service's: real seconds passed since it was set,
    // on a loaded machine.)
    offset.fetch_add(1_800, Ordering::SeqCst);
    clock.store(
        common::now() + offset.load(Ordering::SeqCst),
        Ordering::SeqCst,
    );
    assert!(rt.block_on(relay.renewal_due()));
    let looping = rt.spawn(relay::keep_renewed(
        relay.clone(),
        std::time::Duration::from_millis(20),
    ));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while rt.block_on(relay.renewal_due()) {
        assert!(std::time::Instant::now() < deadline, "not renewed");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    looping.abort();
    let renewed = rt.block_on(relay.allotment());
    assert_eq!(renewed.seats, 2);
    // Signed by the service's clock (real time plus the offset), which the
    // relay's frozen clock trails by the test's running time.
    let behind = renewed
        .issued_at
        .saturating_sub(clock.load(Ordering::SeqCst));
    assert!(
        renewed.issued_at > t.issued_at && behind < 60,
        "{renewed:?}"
    );

    // By hand: the same signed request twice is a replay; a bad signature
    // and a relay the vendor never allotted to are refused.
    let me = relay::load_key(dir.path()).unwrap();
    let renewal = |key_of: &keyseal_core::SigningKey, at: u64| {
        let lid: keyseal_core::LicenseId = lid.parse().unwrap();
        let sig = key_of.sign_raw(&keyseal_issuer::allotments::renewal_message(
            lid,
            &key_of.public_key(),
            at,
        ));
        json!({"license_key": key, "relay_key": key_of.public_key().to_string(), "at": at,
               "signature": sig.iter().map(|b| format!("{b:02x}")).collect::<String>()})
    };
    let send = |body: &serde_json::Value| {
        req(
            addr,
            "POST",
            "/v1/public/allotments/renew",
            None,
            Some(("application/json", body.to_string().as_bytes())),
            &[],
        )
    };
    let at = clock.load(Ordering::SeqCst) + 5;
    let body = renewal(&me, at);
    assert_eq!(send(&body).status, 201);
    send(&body).problem(403, "bad-proof");
    let mut forged = renewal(&me, at + 1);
    forged["at"] = json!(at + 2);
    send(&forged).problem(403, "bad-proof");
    send(&renewal(&me, at + 400)).problem(403, "bad-proof");
    let stranger = keyseal_core::SigningKey::from_seed(&[42; 32]).unwrap();
    send(&renewal(&stranger, at + 3)).problem(404, "not-found");
    let mut bad_key = renewal(&me, at + 4);
    bad_key["license_key"] = json!("ks1.AAAA");
    send(&bad_key).problem(403, "invalid-license-key");
    let audit = get(addr, "/v1/audit?limit=100", &s.admin).json();
    let renewals = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == json!("allotment.renew"))
        .count();
    assert_eq!(renewals, 4);

    // The vendor revokes the relay: renewals are refused, the allotment in
    // force and its file stay.
    let held = rt.block_on(relay.allotment());
    let on_disk = std::fs::read_to_string(&file).unwrap();
    let r = post(
        addr,
        &format!("/v1/licenses/{lid}/relays/{}/revoke", relay_key.key_id()),
        &s.admin,
        &json!({}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let e = rt.block_on(relay.renew()).unwrap_err().0;
    assert!(e.contains("(409 relay-revoked)"), "{e}");
    assert_eq!(rt.block_on(relay.allotment()), held);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), on_disk);
    // A relay without the service is told so.
    let dir2 = tempfile::tempdir().unwrap();
    let other = relay::init(dir2.path()).unwrap();
    let file2 = dir2.path().join("allotment.txt");
    std::fs::write(&file2, allot(addr, &s.admin, &lid, &other.to_string(), 1)).unwrap();
    let offline = Relay::open(options(dir2.path(), &keyring, &key, &file2, &clock)).unwrap();
    let e = rt.block_on(offline.renew()).unwrap_err().0;
    assert!(e.contains("--renew-from"), "{e}");
}
