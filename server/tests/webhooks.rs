//! Outgoing webhooks through the API, on SQLite and PostgreSQL: an
//! endpoint that keeps failing is disabled (announced to the others,
//! counted, audited) and resumes once enabled; endpoints are their
//! organisation's own, admin only, checked on input, and their secrets
//! never reach the ledger in the clear. Order, exactly-once processing
//! across a SIGKILL, replicas and the reference library's checks are in
//! `server/scripts/webhooks_e2e.py`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(60);
    while Instant::now() < end {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

fn endpoint(s: &TestServer, url: &str, events: &[&str]) -> String {
    let r = post(
        s.addr,
        "/v1/webhooks",
        &s.admin,
        &json!({ "url": url, "events": events }),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["endpoint_id"].as_str().unwrap().to_owned()
}

#[test]
fn an_endpoint_that_keeps_failing_is_disabled_announced_and_resumes_once_enabled() {
    for backend in backend_list() {
        let (offset, clock) = offset_clock();
        let s = start_with_clock(backend, clock);
        let failing = receiver(503);
        let watcher = receiver(200);
        let a = endpoint(&s, &failing.url, &["license.created"]);
        let b = endpoint(&s, &watcher.url, &["webhook_endpoint.disabled"]);
        let (_, license_id) = seat_license(s.addr, &s.admin, 1);
        let deliveries =
            |id: &str| get(s.addr, &format!("/v1/webhooks/{id}/deliveries"), &s.admin).json();
        // Each attempt fails; the clock jumps past each wait (at most a day).
        for n in 1..=11u64 {
            wait_until(&format!("attempt {n}"), || {
                deliveries(&a)["items"][0]["attempts"].as_u64() == Some(n)
            });
            offset.fetch_add(86_400 + 1, Ordering::SeqCst);
        }
        let d = &deliveries(&a)["items"][0];
        assert_eq!(d["status"], "failed", "{d}");
        assert_eq!(d["last_status"], 503);
        let one = get(
            s.addr,
            &format!(
                "/v1/webhooks/{a}/deliveries/{}",
                d["delivery_id"].as_str().unwrap()
            ),
            &s.admin,
        )
        .json();
        let log = one["attempt_log"].as_array().unwrap();
        assert_eq!(log.len(), 11);
        assert!(
            log.iter()
                .all(|x| x["status"] == 503 && x["error"].is_string())
        );
        let ep = get(s.addr, &format!("/v1/webhooks/{a}"), &s.admin).json();
        assert!(ep["disabled_at"].is_u64(), "{ep}");
        assert!(
            ep["disabled_reason"]
                .as_str()
                .unwrap()
                .contains("failed 11 times")
        );
        // Announced to the other endpoint, counted, audited.
        wait_until("the disabled event", || {
            !watcher.got.lock().unwrap().is_empty()
        });
        let ev = watcher.got.lock().unwrap()[0].clone();
        assert_eq!(ev["type"], "webhook_endpoint.disabled");
        assert_eq!(ev["data"]["endpoint_id"], a.as_str());
        let metrics = get(s.addr, "/metrics", "").text();
        assert!(
            metrics.contains("keyseal_webhook_endpoints_disabled_total 1"),
            "{metrics}"
        );
        let audit = get(s.addr, "/v1/audit?limit=500", &s.admin).text();
        assert!(audit.contains("webhook.disable"));
        // Nothing more goes to a disabled endpoint, though events keep coming.
        let (_, second) = seat_license(s.addr, &s.admin, 1);
        std::thread::sleep(Duration::from_millis(600));
        assert_eq!(deliveries(&a)["items"].as_array().unwrap().len(), 1);
        // Healthy and enabled again: a replay since the start sends what it
        // missed and what failed, in order.
        failing.status.store(204, Ordering::SeqCst);
        let r = post(
            s.addr,
            &format!("/v1/webhooks/{a}"),
            &s.admin,
            &json!({ "enabled": true }),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(r.json()["disabled_at"].is_null());
        let r = post(
            s.addr,
            &format!("/v1/webhooks/{a}/replay"),
            &s.admin,
            &json!({ "since": 0 }),
        );
        assert_eq!(r.status, 202, "{}", r.text());
        assert_eq!(r.json()["queued"], 2);
        wait_until("the replayed events", || {
            failing.got.lock().unwrap().len() == 2
        });
        let got = failing.got.lock().unwrap().clone();
        let ids: Vec<&str> = got
            .iter()
            .map(|e| e["data"]["license_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, [license_id.as_str(), second.as_str()]);
        drop(b);
    }
}

#[test]
fn endpoints_are_the_organisations_own_checked_and_their_secrets_sealed() {
    for s in backends() {
        let secret = "whsec_c2VhbGVkLXNlY3JldC1ieXRlcy1mb3ItdGhlLXRlc3Q=";
        let r = post(
            s.addr,
            "/v1/webhooks",
            &s.admin,
            &json!({ "url": "http://127.0.0.1:9/x", "secret": secret, "description": "mine" }),
        );
        assert_eq!(r.status, 201, "{}", r.text());
        let id = r.json()["endpoint_id"].as_str().unwrap().to_owned();
        assert!(
            !r.text().contains("whsec_"),
            "the secret is in no answer but its own"
        );
        let got = get(s.addr, &format!("/v1/webhooks/{id}/secret"), &s.admin).json();
        assert_eq!(got["secret"], secret);
        // Another organisation sees nothing of it; other scopes are refused.
        for path in [
            format!("/v1/webhooks/{id}"),
            format!("/v1/webhooks/{id}/secret"),
            format!("/v1/webhooks/{id}/deliveries"),
        ] {
            get(s.addr, &path, &s.other).problem(404, "not-found");
            get(s.addr, &path, &s.read).problem(403, "forbidden");
        }
        post(
            s.addr,
            &format!("/v1/webhooks/{id}/replay"),
            &s.other,
            &json!({ "since": 0 }),
        )
        .problem(404, "not-found");
        post(
            s.addr,
            &format!("/v1/webhooks/{id}"),
            &s.other,
            &json!({ "enabled": false }),
        )
        .problem(404, "not-found");
        let r = req(
            s.addr,
            "DELETE",
            &format!("/v1/webhooks/{id}"),
            Some(&s.other),
            None,
            &[],
        );
        r.problem(404, "not-found");
        assert_eq!(
            get(s.addr, "/v1/webhooks", &s.other).json()["items"],
            json!([])
        );
        post(
            s.addr,
            "/v1/webhooks",
            &s.issue,
            &json!({ "url": "https://example.com/" }),
        )
        .problem(403, "forbidden");
        // Bad input: clear problems, nothing written.
        for body in [
            json!({ "url": "ftp://example.com/" }),
            json!({ "url": "https://user:pw@example.com/" }),
            json!({ "url": "https://example.com/", "events": ["license.deleted"] }),
            json!({ "url": "https://example.com/", "secret": "hunter2" }),
            json!({ "url": "https://example.com/", "description": "a\u{202e}b" }),
            json!({ "url": format!("https://example.com/{}", "a".repeat(2000)) }),
        ] {
            post(s.addr, "/v1/webhooks", &s.admin, &body).problem(422, "invalid-value");
        }
        post(
            s.addr,
            &format!("/v1/webhooks/{id}/replay"),
            &s.admin,
            &json!({}),
        )
        .problem(422, "invalid-value");
        post(
            s.addr,
            &format!("/v1/webhooks/{id}/replay"),
            &s.admin,
            &json!({ "event_id": "evt_00" }),
        )
        .problem(404, "not-found");
        // A bound per organisation.
        for _ in 1..16 {
            endpoint(&s, "https://example.com/", &[]);
        }
        post(
            s.addr,
            "/v1/webhooks",
            &s.admin,
            &json!({ "url": "https://example.com/" }),
        )
        .problem(409, "limit-reached");
        // Rotation keeps the old secret beside the new one; the ledger holds
        // neither in the clear.
        let r = post(
            s.addr,
            &format!("/v1/webhooks/{id}/rotate-secret"),
            &s.admin,
            &json!({}),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        let new = get(s.addr, &format!("/v1/webhooks/{id}/secret"), &s.admin).json()["secret"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_ne!(new, secret);
        let bytes = tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(ledger_bytes(&s));
        for x in [secret, &new] {
            let b64 = x.strip_prefix("whsec_").unwrap();
            assert!(
                !holds(&bytes, b64),
                "a webhook secret is in the ledger in the clear"
            );
        }
        let r = req(
            s.addr,
            "DELETE",
            &format!("/v1/webhooks/{id}"),
            Some(&s.admin),
            None,
            &[],
        );
        assert_eq!(r.status, 204);
        get(s.addr, &format!("/v1/webhooks/{id}"), &s.admin).problem(404, "not-found");
    }
}
