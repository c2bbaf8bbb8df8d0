//! The service's log, captured as the JSON `keyseal serve --log-format json`
//! writes: an access line per request with its request id (also in the
//! `X-Request-Id` header), and no token, license key, customer name or
//! email on any line.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::{get, post, req};
use serde_json::{Value, json};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn access_lines_with_request_ids_and_no_secrets() {
    let buf = Captured::default();
    let writer = buf.clone();
    tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_writer(move || writer.clone())
        .try_init()
        .unwrap();
    let s = common::start();
    // A request id the client chose is kept; a bad one is replaced.
    let r = req(
        s.addr,
        "GET",
        "/healthz",
        None,
        None,
        &[("X-Request-Id", "lb-7f3a.9")],
    );
    assert_eq!(r.header("x-request-id"), Some("lb-7f3a.9"));
    let r = req(
        s.addr,
        "GET",
        "/healthz",
        None,
        None,
        &[("X-Request-Id", "a b")],
    );
    let generated = r.header("x-request-id").unwrap().to_owned();
    assert_eq!(generated.len(), 16);
    // Secrets and personal data go through the API...
    post(
        s.addr,
        "/v1/products",
        &s.admin,
        &json!({ "product": "acme-cad", "name": "A" }),
    );
    let cus = post(
        s.addr,
        "/v1/customers",
        &s.admin,
        &json!({ "name": "Quentin Logless", "email": "quentin.logless@example.org" }),
    )
    .json();
    let cus = cus["customer_id"].as_str().unwrap();
    let lic = post(
        s.addr,
        "/v1/licenses",
        &s.admin,
        &json!({ "product": "acme-cad", "customer_id": cus, "plan": "pro", "expires": "30d" }),
    )
    .json();
    let token = post(
        s.addr,
        "/v1/tokens",
        &s.admin,
        &json!({ "name": "ci", "scopes": ["read"] }),
    )
    .json()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    get(s.addr, &format!("/v1/customers/{cus}"), &token);
    get(
        s.addr,
        "/v1/licenses",
        "ksk_not_a_real_token_at_all_0000000000000000000",
    );
    let admin = s.admin.clone();
    drop(s);
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    // ...and none of it reaches the log.
    for secret in [
        admin.as_str(),
        token.as_str(),
        lic["license_key"].as_str().unwrap(),
        "Quentin Logless",
        "quentin.logless@example.org",
        cus,
        "ksk_not_a_real_token",
        "127.0.0.1",
    ] {
        assert!(!text.contains(secret), "`{secret}` is in the log:\n{text}");
    }
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let access: Vec<&Value> = lines
        .iter()
        .filter(|l| l["target"] == "keyseal::access")
        .collect();
    assert!(access.len() >= 7, "{text}");
    let first = access[0];
    assert_eq!(first["span"]["id"], "lb-7f3a.9");
    assert_eq!(first["fields"]["route"], "/healthz");
    assert_eq!(first["fields"]["status"], 200);
    assert!(access.iter().any(|l| l["span"]["id"] == generated.as_str()));
    assert!(
        access
            .iter()
            .any(|l| l["fields"]["route"] == "/v1/customers/{id}")
    );
    assert!(access.iter().any(|l| l["fields"]["status"] == 401));
}
