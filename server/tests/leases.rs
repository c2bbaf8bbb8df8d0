//! Apps take, renew and free seats with their license key
//! (`/v1/public/leases`), on SQLite and PostgreSQL: the leases validate
//! offline through the Rust SDK with the organisation's public keyring;
//! seats hold; leases lapse with the clock; proofs are the installation's;
//! refusals are problems.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use common::{Backend, Resp, get, post, req};
use keyseal::{Keyring, ManualClock, MemoryStateStore, Validator};
use keyseal_core::{SeatId, SigningKey};
use keyseal_issuer::seats::{
    DEFAULT_LEASE_GRACE_SECS, DEFAULT_LEASE_SECS, SEAT_MARGIN_SECS, check_in_message,
    release_message,
};
use serde_json::json;

fn instance(n: u32) -> SigningKey {
    let mut seed = [9u8; 32];
    seed[..4].copy_from_slice(&n.to_be_bytes());
    SigningKey::from_seed(&seed).unwrap()
}

fn activate(addr: SocketAddr, key: &str, n: u32) -> Resp {
    common::public_post(
        addr,
        "/v1/public/leases",
        &json!({
            "license_key": key,
            "fingerprint": common::device(n).to_string(),
            "public_key": instance(n).public_key().to_string(),
        }),
        &[],
    )
}

fn signed(
    addr: SocketAddr,
    what: &str,
    key: &str,
    n: u32,
    seat: &str,
    at: u64,
    signer: u32,
) -> Resp {
    let id: SeatId = seat.parse().unwrap();
    let (path, msg) = match what {
        "check-in" => ("/v1/public/leases/check-in", check_in_message(id, at)),
        _ => ("/v1/public/leases/release", release_message(id, at)),
    };
    let mut body = json!({
        "license_key": key,
        "seat_id": seat,
        "at": at,
        "signature": keyseal_core::hex::encode(&instance(signer).sign_raw(&msg)),
    });
    if what == "check-in" {
        body["fingerprint"] = json!(common::device(n).to_string());
    }
    common::public_post(addr, path, &body, &[])
}

/// Validates `key` with `lease` as an app on device `n` would, at `now`,
/// with the organisation's public keyring.
fn validate(
    addr: SocketAddr,
    key: &str,
    lease: &str,
    n: u32,
    now: u64,
) -> Result<keyseal::License, String> {
    let ring = req(addr, "GET", "/v1/public/keyring", None, None, &[]).json();
    let keyring: Keyring = ring["keyring"].as_str().unwrap().parse().unwrap();
    let v = Validator::builder(keyring, "acme-cad")
        .clock(ManualClock::new(now))
        .state(MemoryStateStore::new())
        .device(common::device(n))
        .build()
        .unwrap();
    v.validate_with_lease(key, lease)
        .map_err(|r| r.code().to_owned())
}

#[test]
fn apps_take_renew_and_free_seats_with_their_license_key() {
    for backend in common::backend_list() {
        let (offset, clock) = common::offset_clock();
        let s = common::start_with_clock(backend, clock);
        let addr = s.addr;
        let key = common::seat_license(addr, &s.admin, 3).0;
        let t0 = common::now();

        // Three seats; a fourth device waits. No token is needed, and an
        // Idempotency-Key is ignored rather than asking for one.
        let first = activate(addr, &key, 1);
        assert_eq!(first.status, 201, "{backend:?}: {}", first.text());
        let first = first.json();
        let seat1 = first["seat_id"].as_str().unwrap().to_owned();
        let renew = first["renew_at"].as_u64().unwrap();
        assert!(renew >= t0 + DEFAULT_LEASE_SECS && renew <= t0 + DEFAULT_LEASE_SECS + 5);
        assert_eq!(
            first["expires_at"].as_u64().unwrap(),
            renew + DEFAULT_LEASE_GRACE_SECS
        );
        let lease1 = first["lease"].as_str().unwrap().to_owned();
        let ok = validate(addr, &key, &lease1, 1, t0 + 60).unwrap();
        assert_eq!(ok.lease().unwrap().seat_id().to_string(), seat1);
        assert_eq!(
            validate(addr, &key, &lease1, 2, t0 + 60).unwrap_err(),
            "lease_invalid"
        );
        assert_eq!(
            validate(addr, &key, &lease1, 1, renew + DEFAULT_LEASE_GRACE_SECS + 1).unwrap_err(),
            "lease_expired"
        );
        let again = common::public_post(
            addr,
            "/v1/public/leases",
            &json!({"license_key": key, "fingerprint": common::device(1).to_string(), "public_key": instance(1).public_key().to_string()}),
            &[("Idempotency-Key", "same-device")],
        );
        assert_eq!(again.status, 201, "{}", again.text());
        assert_eq!(again.json()["seat_id"], json!(seat1));
        let seat2 = activate(addr, &key, 2).json()["seat_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let seat3 = activate(addr, &key, 3).json()["seat_id"]
            .as_str()
            .unwrap()
            .to_owned();
        activate(addr, &key, 4).problem(409, "seat-limit");

        // Check-in by the installation, not by another; not twice.
        let now = common::now() + offset.load(Ordering::SeqCst);
        let r = signed(addr, "check-in", &key, 2, &seat2, now, 2);
        assert_eq!(r.status, 200, "{}", r.text());
        let renewed = validate(addr, &key, r.json()["lease"].as_str().unwrap(), 2, now).unwrap();
        assert_eq!(renewed.lease().unwrap().seat_id().to_string(), seat2);
        signed(addr, "check-in", &key, 2, &seat2, now, 2).problem(403, "bad-proof");
        signed(addr, "check-in", &key, 2, &seat2, now + 1, 7).problem(403, "bad-proof");
        signed(addr, "check-in", &key, 1, &seat2, now + 2, 2).problem(403, "wrong-device");
        signed(addr, "check-in", &key, 2, &"0".repeat(32), now + 3, 2).problem(404, "not-found");

        // A release frees a seat at once, for the fourth device.
        let r = signed(addr, "release", &key, 3, &seat3, now + 4, 3);
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(
            signed(addr, "release", &key, 3, &seat3, now + 5, 3).status,
            200
        );
        signed(addr, "check-in", &key, 3, &seat3, now + 6, 3).problem(409, "seat-released");
        assert_eq!(activate(addr, &key, 4).status, 201);
        activate(addr, &key, 5).problem(409, "seat-limit");

        // Seat 1's lease ends (plus the margin) without a check-in: free.
        let lapse = renew + DEFAULT_LEASE_GRACE_SECS + SEAT_MARGIN_SECS + 10 - common::now();
        offset.store(lapse, Ordering::SeqCst);
        let r = activate(addr, &key, 5);
        assert_eq!(r.status, 201, "{backend:?}: {}", r.text());

        // Refusals: a key changed by one character; a revoked license.
        let mut bad = key.clone();
        let last = bad.pop().unwrap();
        bad.push(if last == 'A' { 'B' } else { 'A' });
        activate(addr, &bad, 6).problem(403, "invalid-license-key");
        let lid = first["license_id"].as_str().unwrap();
        let r = post(
            addr,
            &format!("/v1/licenses/{lid}/revoke"),
            &s.admin,
            &json!({"reason": "refund"}),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        activate(addr, &key, 6).problem(409, "license-revoked");
        // Seats are in the audit log, with no fingerprint.
        let audit = get(addr, "/v1/audit?limit=200", &s.admin).text();
        assert!(
            audit.contains("seat.activate") && audit.contains("seat.release"),
            "{audit}"
        );
        assert!(!audit.contains(&common::device(1).to_string()));
        drop(s);
        if backend == Backend::Sqlite {
            eprintln!("sqlite: ok");
        }
    }
}

/// Floating seats: a product whose leases last ten minutes plus two; a
/// client that crashed (no check-in) gives its seat back when its lease
/// ends, while one that checks in keeps its own.
#[test]
fn floating_seats_come_back_from_crashed_clients() {
    let (offset, clock) = common::offset_clock();
    let s = common::start_with_clock(Backend::Sqlite, clock);
    let addr = s.addr;
    let key = common::seat_license(addr, &s.admin, 2).0;
    let p = post(
        addr,
        "/v1/products/acme-cad/lease-policy",
        &s.admin,
        &json!({"lease_secs": 600, "lease_grace_secs": 120}),
    );
    assert_eq!(p.status, 200, "{}", p.text());
    assert_eq!(p.json()["lease_secs"], json!(600));
    post(
        addr,
        "/v1/products/acme-cad/lease-policy",
        &s.admin,
        &json!({"lease_secs": 5, "lease_grace_secs": 0}),
    )
    .problem(422, "invalid-value");
    let a = activate(addr, &key, 1).json();
    let t = a["issued_at"].as_u64().unwrap();
    assert_eq!(a["renew_at"], json!(t + 600));
    assert_eq!(a["expires_at"], json!(t + 720));
    let b = activate(addr, &key, 2).json();
    activate(addr, &key, 3).problem(409, "seat-limit");
    // Client 2 heartbeats every 5 minutes; client 1 crashed.
    let mut at = t;
    for _ in 0..3 {
        at += 300;
        offset.store(at - common::now().min(at), Ordering::SeqCst);
        let r = signed(
            addr,
            "check-in",
            &key,
            2,
            b["seat_id"].as_str().unwrap(),
            at,
            2,
        );
        assert_eq!(r.status, 200, "{}", r.text());
    }
    // At t + 900: client 1's lease ended at t + 720, and the margin passed
    // at t + 1020; not yet.
    activate(addr, &key, 3).problem(409, "seat-limit");
    offset.store(
        t + 720 + SEAT_MARGIN_SECS + 1 - common::now().min(t + 1021),
        Ordering::SeqCst,
    );
    let c = activate(addr, &key, 3);
    assert_eq!(c.status, 201, "{}", c.text());
    // Client 1 comes back: its seat is gone.
    let back = signed(
        addr,
        "check-in",
        &key,
        1,
        a["seat_id"].as_str().unwrap(),
        common::now() + offset.load(Ordering::SeqCst),
        1,
    );
    back.problem(409, "seat-lapsed");
}

/// An expired license takes no seat, through the vendor's activation
/// endpoint either (it signed a device-bound key for it).
#[test]
fn an_expired_license_is_not_activated() {
    let (offset, clock) = common::offset_clock();
    let s = common::start_with_clock(Backend::Sqlite, clock);
    let key = common::seat_license(s.addr, &s.admin, 2).0;
    let lid = {
        let mut buf = [0u8; keyseal_core::license::MAX_LICENSE_LEN];
        let b = keyseal_core::license::decode_text(&key, &mut buf).unwrap();
        keyseal_core::UnverifiedLicense::from_bytes(b)
            .unwrap()
            .dangerous_unverified_claims()
            .license_id
            .to_string()
    };
    let fp = json!({ "fingerprint": common::device(1).to_string() });
    let r = post(
        s.addr,
        &format!("/v1/licenses/{lid}/activations"),
        &s.admin,
        &fp,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    offset.store(366 * 86_400, Ordering::SeqCst);
    let fp = json!({ "fingerprint": common::device(2).to_string() });
    post(
        s.addr,
        &format!("/v1/licenses/{lid}/activations"),
        &s.admin,
        &fp,
    )
    .problem(409, "license-expired");
    activate(s.addr, &key, 2).problem(409, "license-expired");
}

/// The Rust SDK's seat client (feature `online`, its default ureq
/// transport) against the service: activate, validate the lease offline,
/// save and restore the seat, check in, release; refusals as codes.
#[test]
fn the_rust_sdk_takes_and_frees_a_seat() {
    use keyseal::seats::{Seat, SeatClient};
    let s = common::start();
    let key = common::seat_license(s.addr, &s.admin, 1).0;
    let client = SeatClient::new(format!("http://{}/", s.addr));
    let me = common::device(1);
    let seat = client.activate(&key, &me).unwrap();
    let now = common::now();
    let ok = validate(s.addr, &key, seat.lease(), 1, now).unwrap();
    assert_eq!(ok.lease().unwrap().seat_id(), seat.seat_id());
    assert_eq!(ok.lease().unwrap().renew_at(), seat.renew_at());
    let saved = seat.to_text();
    drop(seat);
    let mut seat = Seat::from_text(&saved).unwrap();
    // Two check-ins in a row (the client makes each signed time later).
    client.check_in(&key, &me, &mut seat).unwrap();
    client.check_in(&key, &me, &mut seat).unwrap();
    let _ = validate(s.addr, &key, seat.lease(), 1, common::now()).unwrap();
    let e = client.activate(&key, &common::device(2)).unwrap_err();
    assert_eq!((e.code(), e.is_transient()), ("seat_limit", true));
    client.release(&key, &mut seat).unwrap();
    let mut other = client.activate(&key, &common::device(2)).unwrap();
    assert_eq!(
        client.check_in(&key, &me, &mut other).unwrap_err().code(),
        "wrong_device"
    );
    let lid = ok.id().to_string();
    let r = post(
        s.addr,
        &format!("/v1/licenses/{lid}/revoke"),
        &s.admin,
        &json!({"reason": "refund"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(client.activate(&key, &me).unwrap_err().code(), "revoked");
    assert_eq!(
        client.activate("ks1.AAAA", &me).unwrap_err().code(),
        "invalid_license_key"
    );
    let down = SeatClient::new("http://127.0.0.1:9");
    assert_eq!(down.activate(&key, &me).unwrap_err().code(), "unreachable");
}

/// A vendor's backend answers an air-gapped device through the API
/// (`POST /v1/activation-requests`, `issue` scope): the device installs the
/// response code and validates its license with the lease; another
/// organisation's token cannot answer for this license; a typo is a 422.
#[test]
fn the_api_answers_an_air_gapped_device() {
    for backend in common::backend_list() {
        air_gapped_through_the_api(backend);
    }
}

fn air_gapped_through_the_api(backend: Backend) {
    use keyseal::seats::OfflineRequest;
    let s = common::start_on(backend);
    let key = common::seat_license(s.addr, &s.admin, 1).0;
    let me = common::device(9);
    let pending = OfflineRequest::new(&key, &me).unwrap();
    post(
        s.addr,
        "/v1/activation-requests",
        &s.other,
        &json!({"request_code": pending.code()}),
    )
    .problem(404, "not-found");
    post(
        s.addr,
        "/v1/activation-requests",
        &s.read,
        &json!({"request_code": pending.code()}),
    )
    .problem(403, "forbidden");
    let mut typo = pending.code().to_owned();
    let last = typo.pop().unwrap();
    typo.push(if last == '2' { '3' } else { '2' });
    post(
        s.addr,
        "/v1/activation-requests",
        &s.issue,
        &json!({"request_code": typo}),
    )
    .problem(422, "invalid-value");
    let r = post(
        s.addr,
        "/v1/activation-requests",
        &s.issue,
        &json!({"request_code": pending.code()}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let seat = pending
        .install(r.json()["response_code"].as_str().unwrap())
        .unwrap();
    assert_eq!(r.json()["seat_id"], json!(seat.seat_id().to_string()));
    let ok = validate(s.addr, &key, seat.lease(), 9, common::now()).unwrap();
    assert_eq!(ok.lease().unwrap().seat_id(), seat.seat_id());
    // Its one seat is held: another device's request is refused.
    let other = OfflineRequest::new(&key, &common::device(10)).unwrap();
    post(
        s.addr,
        "/v1/activation-requests",
        &s.issue,
        &json!({"request_code": other.code()}),
    )
    .problem(409, "seat-limit");
}

/// A lease that runs out with no check-in is announced once, as
/// `lease.lapsed` to the organisation's webhooks (and `seat.lapse` in the
/// audit log); a seat released in time is not.
#[test]
fn a_lapsed_lease_is_announced_once() {
    for backend in common::backend_list() {
        let (offset, clock) = common::offset_clock();
        let s = common::start_with_clock(backend, clock);
        let addr = s.addr;
        let key = common::seat_license(addr, &s.admin, 3).0;
        let p = post(
            addr,
            "/v1/products/acme-cad/lease-policy",
            &s.admin,
            &json!({"lease_secs": 60, "lease_grace_secs": 0}),
        );
        assert_eq!(p.status, 200, "{}", p.text());
        let hooks = common::receiver(204);
        let r = post(
            addr,
            "/v1/webhooks",
            &s.admin,
            &json!({ "url": hooks.url, "events": ["lease.lapsed"] }),
        );
        assert_eq!(r.status, 201, "{}", r.text());
        let got = hooks.got.clone();
        let lapsing = activate(addr, &key, 1).json();
        let released = activate(addr, &key, 2).json();
        let r = signed(
            addr,
            "release",
            &key,
            2,
            released["seat_id"].as_str().unwrap(),
            common::now(),
            2,
        );
        assert_eq!(r.status, 200, "{}", r.text());
        // Past both leases' ends: the sweep (every 10 s of the service's
        // clock) announces the one that lapsed.
        offset.store(120, Ordering::SeqCst);
        let end = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while got.lock().unwrap().is_empty() && std::time::Instant::now() < end {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        offset.store(240, Ordering::SeqCst);
        std::thread::sleep(std::time::Duration::from_millis(1500));
        let got = got.lock().unwrap().clone();
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0]["type"], "lease.lapsed");
        assert_eq!(got[0]["data"]["seat_id"], lapsing["seat_id"]);
        let audit = get(addr, "/v1/audit?limit=500", &s.admin).text();
        assert_eq!(audit.matches("seat.lapse").count(), 1, "{audit}");
    }
}
