//! Revocation lists as apps fetch them, over real HTTP on 127.0.0.1, on
//! SQLite and PostgreSQL: concurrent revocations all reach the published
//! list (each list is built under the ledger's writer lock), concurrent
//! revocations of one license give one 200 and 409s (never a 500), and a
//! list past half its lifetime is published again when fetched, so it never
//! goes stale while the organisation has an active key.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{TestServer, get, post, post_empty, req};
use keyseal_core::{Keyring, RevocationList};
use serde_json::json;

const DAY: u64 = 24 * 3600;

fn setup(s: &TestServer) -> String {
    let r = post(
        s.addr,
        "/v1/products",
        &s.admin,
        &json!({ "product": "acme-cad" }),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let r = post(s.addr, "/v1/customers", &s.admin, &json!({}));
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["customer_id"].as_str().unwrap().to_owned()
}

fn mint(s: &TestServer, cus: &str) -> String {
    let r = post(
        s.addr,
        "/v1/licenses",
        &s.admin,
        &json!({ "product": "acme-cad", "customer_id": cus, "plan": "pro", "expires": "30d" }),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["license_id"].as_str().unwrap().to_owned()
}

fn keyring(s: &TestServer, org: &str) -> Keyring {
    let r = req(
        s.addr,
        "GET",
        &format!("/v1/public/orgs/{org}/keyring"),
        None,
        None,
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["keyring"].as_str().unwrap().parse().unwrap()
}

/// The organisation's public list, verified against its public keyring,
/// and the response's ETag.
fn list(s: &TestServer, org: &str) -> (RevocationList, String) {
    let r = req(
        s.addr,
        "GET",
        &format!("/v1/public/orgs/{org}/revocations"),
        None,
        None,
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.text();
    let block = keyseal_core::armor::blocks(&text).next().unwrap().unwrap();
    let bytes = block.decode_to_vec().unwrap();
    let l = RevocationList::verify(&bytes, &keyring(s, org)).expect("the list verifies");
    (l, r.header("etag").unwrap().to_owned())
}

/// The organisation's newest list as the ledger holds it (read straight
/// from the database: a public request would publish one itself),
/// verified against its public keyring.
fn newest_list(s: &TestServer, org: &str) -> RevocationList {
    let url = match &s.database_url {
        Some(u) => u.clone(),
        None => format!(
            "sqlite://{}?mode=rw",
            s.dir.path().join("vault").join("ledger.sqlite").display()
        ),
    };
    let bytes = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let store = keyseal_issuer::store::Store::connect(&url).await.unwrap();
            let l = store.org_latest_list(org).await.unwrap().expect("a list");
            store.close().await;
            l.bytes
        });
    RevocationList::verify(&bytes, &keyring(s, org)).expect("the list verifies")
}

fn revoke(s: &TestServer, id: &str) -> common::Resp {
    post(
        s.addr,
        &format!("/v1/licenses/{id}/revoke"),
        &s.admin,
        &json!({ "reason": "refund" }),
    )
}

#[test]
fn concurrent_revocations_all_reach_the_list() {
    for s in common::backends() {
        let cus = setup(&s);
        for burst in 0..6 {
            let ids: Vec<String> = (0..8).map(|_| mint(&s, &cus)).collect();
            let statuses: Vec<u16> = std::thread::scope(|t| {
                let handles: Vec<_> = ids
                    .iter()
                    .map(|id| {
                        let s = &s;
                        t.spawn(move || revoke(s, id).status)
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            assert_eq!(statuses, vec![200; 8], "burst {burst}");
            let (l, _) = list(&s, &s.org_a);
            let named: Vec<String> = l.revoked_licenses().map(|i| i.to_string()).collect();
            for id in &ids {
                assert!(
                    named.contains(id),
                    "burst {burst}: {id} is not in list #{}",
                    l.sequence()
                );
            }
        }

        // One license revoked eight times at once: one 200, seven 409s.
        let id = mint(&s, &cus);
        let statuses: Vec<u16> = std::thread::scope(|t| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    let (s, id) = (&s, &id);
                    t.spawn(move || revoke(s, id).status)
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut sorted = statuses.clone();
        sorted.sort_unstable();
        assert_eq!(
            sorted,
            [200, 409, 409, 409, 409, 409, 409, 409],
            "{statuses:?}"
        );
        let (l, _) = list(&s, &s.org_a);
        assert!(l.revoked_licenses().any(|i| i.to_string() == id));
        // One revocation entry in the audit log for it.
        let audit = get(s.addr, "/v1/audit?limit=500", &s.admin).json();
        let entries = audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "license.revoke" && e["details"]["license_id"] == json!(id))
            .count();
        assert_eq!(entries, 1);
    }
}

#[test]
fn lists_are_published_again_before_they_go_stale() {
    for backend in common::backend_list() {
        let (offset, clock) = common::offset_clock();
        let s = common::start_with_clock(backend, clock.clone());
        let cus = setup(&s);
        let id = mint(&s, &cus);
        assert_eq!(revoke(&s, &id).status, 200);
        let (first, etag) = list(&s, &s.org_a);
        let names = |l: &RevocationList| -> Vec<String> {
            l.revoked_licenses().map(|i| i.to_string()).collect()
        };
        assert_eq!(names(&first), std::slice::from_ref(&id));
        assert!(first.next_update() >= clock() + 7 * DAY - 60);

        // Fresh for more than half its lifetime: served as it is.
        offset.store(3 * DAY, Ordering::SeqCst);
        let (same, etag2) = list(&s, &s.org_a);
        assert_eq!((same.sequence(), &etag2), (first.sequence(), &etag));

        // Past half its lifetime: published again when fetched, with the
        // same revocations, the next sequence and a new week.
        offset.store(4 * DAY, Ordering::SeqCst);
        let (again, etag3) = list(&s, &s.org_a);
        assert_eq!(again.sequence(), first.sequence() + 1);
        assert_eq!(names(&again), names(&first));
        assert!(again.next_update() >= clock() + 7 * DAY - 60);
        assert!(!again.is_stale(clock()));
        assert_ne!(etag3, etag);
        // Once: later fetches (and a conditional one) get that list.
        for _ in 0..3 {
            assert_eq!(list(&s, &s.org_a).0.sequence(), again.sequence());
        }
        let cached = req(
            s.addr,
            "GET",
            &format!("/v1/public/orgs/{}/revocations", s.org_a),
            None,
            None,
            &[("If-None-Match", &etag3)],
        );
        assert_eq!(cached.status, 304);
        // The unscoped endpoint (the default organisation) serves it too.
        let unscoped = req(s.addr, "GET", "/v1/public/revocations", None, None, &[]);
        assert_eq!(unscoped.header("etag"), Some(etag3.as_str()));

        // Weeks without a revocation: never stale when fetched.
        for week in 1..=4 {
            offset.store(4 * DAY + week * 7 * DAY, Ordering::SeqCst);
            let (l, _) = list(&s, &s.org_a);
            assert!(!l.is_stale(clock()), "week {week}");
            assert_eq!(names(&l), std::slice::from_ref(&id));
        }

        // An organisation with no active key: its last list is served as
        // it is (stale: apps decide), never a 5xx.
        let kb = get(s.addr, "/v1/keys", &s.other).json()["items"][0]["key_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let (b_list, _) = list(&s, &s.org_b);
        assert_eq!(
            post_empty(s.addr, &format!("/v1/keys/{kb}/retire"), &s.other).status,
            200
        );
        offset.fetch_add(30 * DAY, Ordering::SeqCst);
        let r = req(
            s.addr,
            "GET",
            &format!("/v1/public/orgs/{}/revocations", s.org_b),
            None,
            None,
            &[],
        );
        assert_eq!(r.status, 200, "{}", r.text());
        let (b_now, _) = list(&s, &s.org_b);
        assert_eq!(b_now.sequence(), b_list.sequence());
        assert!(b_now.is_stale(clock()));
        // The metrics tell: both lists are stale 30 days on (A's has not
        // been fetched since), then only B's once A's is fetched (no ids).
        let metrics = || req(s.addr, "GET", "/metrics", None, None, &[]).text();
        let m = metrics();
        assert!(m.contains("\nkeyseal_revocation_lists_stale 2\n"), "{m}");
        assert!(
            m.contains("\nkeyseal_revocation_list_min_fresh_seconds -"),
            "{m}"
        );
        assert!(
            !m.contains(&s.org_a) && !m.contains(&s.org_b),
            "no organisation ids"
        );
        assert!(!list(&s, &s.org_a).0.is_stale(clock()));
        assert!(metrics().contains("\nkeyseal_revocation_lists_stale 1\n"));
    }
}

/// With no fetch at all (a list served through a CDN, or exported), the
/// service's refresher signs each list again before it goes stale: across
/// 30 simulated days with no revocation, the newest list in the ledger is
/// never stale, holds the same revocations, and is signed about every half
/// lifetime (not on every look).
#[test]
fn lists_stay_fresh_with_no_one_fetching_them() {
    for backend in common::backend_list() {
        let (offset, clock) = common::offset_clock();
        let s = common::start_with_refresh(backend, clock.clone(), Duration::from_millis(50));
        let cus = setup(&s);
        let id = mint(&s, &cus);
        assert_eq!(revoke(&s, &id).status, 200);
        let first = newest_list(&s, &s.org_a);
        let metrics = || req(s.addr, "GET", "/metrics", None, None, &[]).text();
        for day in 1..=30u64 {
            offset.store(day * DAY, Ordering::SeqCst);
            // The refresher's next rounds (every 50 ms; a loaded machine
            // may take longer).
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            let mut l = newest_list(&s, &s.org_a);
            while l.next_update() <= clock() + 3 * DAY && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
                l = newest_list(&s, &s.org_a);
            }
            assert!(!l.is_stale(clock()), "day {day}: stale");
            assert!(
                l.next_update() > clock() + 3 * DAY,
                "day {day}: not signed again past half its lifetime"
            );
            assert_eq!(
                l.revoked_licenses()
                    .map(|i| i.to_string())
                    .collect::<Vec<_>>(),
                std::slice::from_ref(&id)
            );
            let m = metrics();
            assert!(
                m.contains("\nkeyseal_revocation_lists_stale 0\n"),
                "day {day}: {m}"
            );
        }
        // Every 3 to 4 days over 30: 8 or 9 lists after the first, for each
        // organisation (B's too: it has an active key).
        let signed = newest_list(&s, &s.org_a).sequence() - first.sequence();
        assert!((7..=10).contains(&signed), "{signed} lists in 30 days");
    }
}
