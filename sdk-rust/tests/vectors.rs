//! Runs every case of `testdata/vectors/licenses.json` and
//! `revocation_lists.json` through the [`Validator`]'s own entry points
//! (`validate`, `load_revocation_list`) and compares with `expect` exactly as
//! `core/tests/vectors.rs` does. `issue.json` is a core test (issuing is not
//! part of this crate).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use keyseal::state::{ListMark, State};
use keyseal::{
    BindingKind, Fingerprint, Keyring, License, ManualClock, MemoryStateStore, Mode, Problem,
    Staleness, Status, Validator,
};
use keyseal_testdata::{cases, unhex};
use serde_json::{Value, json};

fn license_json(l: &License) -> Value {
    let device = match l.binding() {
        None => Value::Null,
        Some(BindingKind::Exact) => json!({"kind": "exact"}),
        Some(BindingKind::Tolerant {
            required,
            components,
        }) => {
            json!({"kind": "tolerant", "required": required, "components": components})
        }
        Some(other) => panic!("unknown binding {other:?}"),
    };
    let ext: serde_json::Map<String, Value> = l
        .extensions()
        .map(|(k, v)| (k.to_owned(), json!(v)))
        .collect();
    let (status, grace_ends) = match l.status() {
        Status::Active => ("active", None),
        Status::InGrace { grace_ends } => ("in_grace", Some(grace_ends)),
        other => panic!("enforcing validator gave {other:?}"),
    };
    json!({
        "valid": true, "status": status, "grace_ends": grace_ends,
        "claims": {
            "license_id": l.id().to_string(), "product": l.product(), "customer": l.customer(),
            "plan": l.plan(), "issued_at": l.issued_at(), "not_before": l.not_before(),
            "expires_at": l.expires_at(), "grace_secs": l.grace_secs(), "device": device,
            "entitlements": l.entitlements().collect::<Vec<_>>(),
            "max_version": l.max_version().map(|v| v.to_string()), "extensions": ext,
        }
    })
}

fn run_license_case(case: &Value, precompute: bool) -> Result<License, Problem> {
    let keyring: Keyring = case["keyring"].as_str().unwrap().parse()?;
    let product = case["product"].as_str().unwrap();
    let mut b = Validator::builder(keyring, product)
        .precompute(precompute)
        .clock(ManualClock::new(case["now"].as_u64().unwrap()))
        .state(MemoryStateStore::new())
        .leeway(case["leeway"].as_u64().unwrap())
        .no_device();
    if let Some(v) = case["app_version"].as_str() {
        b = b.app_version(v.parse()?);
    }
    if let Some(fp) = case["device"].as_str() {
        b = b.device(fp.parse::<Fingerprint>()?);
    }
    if let Some(h) = case["revocation_list_hex"].as_str() {
        b = b.revocation_list(unhex(h));
    }
    let validator = b.build()?;
    validator
        .validate(case["key"].as_str().unwrap())
        .map_err(|r| r.into_problem())
}

#[test]
fn license_vectors_through_the_validator() {
    let cases = cases("licenses.json");
    assert!(cases.len() >= 30, "too few cases: {}", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let name = case["name"].as_str().unwrap();
        // The default verifies through precomputed tables; both must agree.
        for precompute in [true, false] {
            let got = match run_license_case(case, precompute) {
                Ok(l) => {
                    // A fixed clock at `now`, fresh state, fresh lists: nothing to warn about.
                    if !l.is_clean() {
                        failures.push(format!("{name}: unexpected warnings {:?}", l.warnings()));
                    }
                    license_json(&l)
                }
                Err(p) => json!({"valid": false, "error": p.code()}),
            };
            if got != case["expect"] {
                failures.push(format!(
                    "{name} (precompute {precompute}): got {got}, want {}",
                    case["expect"]
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The same cases with a line break inserted every 60 characters of the key
/// (what a mail client does) give the same verdicts; armored files are
/// left alone.
#[test]
fn license_vectors_survive_mail_client_line_breaks() {
    let mut checked = 0;
    for mut case in cases("licenses.json") {
        let key = case["key"].as_str().unwrap().to_owned();
        if key.contains("-----BEGIN") || key.len() < 120 {
            continue;
        }
        let wrapped: String = key
            .as_bytes()
            .chunks(60)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join("\r\n  ");
        case["key"] = json!(format!("\n{wrapped}\n"));
        let got = match run_license_case(&case, true) {
            Ok(l) => license_json(&l),
            Err(p) => json!({"valid": false, "error": p.code()}),
        };
        assert_eq!(got, case["expect"], "{}", case["name"]);
        checked += 1;
    }
    assert!(checked >= 25);
}

fn run_list_case(case: &Value) -> Result<Arc<keyseal::RevocationList>, Problem> {
    let keyring: Keyring = case["keyring"].as_str().unwrap().parse()?;
    // The vectors' rule: a list stale at `now` is refused.
    let seen = State {
        seen: 0,
        signed: 0,
        list: Some(ListMark {
            rank: case["seen_rank"].as_u64().unwrap(),
            sequence: case["seen_sequence"].as_u64().unwrap(),
            next_update: 0,
        }),
    };
    let validator = Validator::builder(keyring, "acme-cad")
        .clock(ManualClock::new(case["now"].as_u64().unwrap()))
        .state(MemoryStateStore::with_state("acme-cad", &seen))
        .staleness(Staleness::RefuseAfter { days: 0 })
        .mode(Mode::Enforce)
        .no_device()
        .build()?;
    let list = validator.load_revocation_list(&unhex(case["list_hex"].as_str().unwrap()))?;
    assert!(
        Arc::ptr_eq(&list, &validator.revocation_list().unwrap()),
        "the loaded list is in force"
    );
    Ok(list)
}

#[test]
fn revocation_list_vectors_through_the_validator() {
    let cases = cases("revocation_lists.json");
    assert!(cases.len() >= 10);
    let mut failures = Vec::new();
    for case in &cases {
        let got = match run_list_case(case) {
            Ok(list) => json!({
                "valid": true, "sequence": list.sequence(), "issued_at": list.issued_at(),
                "next_update": list.next_update(),
                "revoked_licenses": list.revoked_licenses().map(|i| i.to_string()).collect::<Vec<_>>(),
                "revoked_keys": list.revoked_keys().map(|i| i.to_string()).collect::<Vec<_>>(),
            }),
            Err(p) => json!({"valid": false, "error": p.code()}),
        };
        if got != case["expect"] {
            failures.push(format!(
                "{}: got {got}, want {}",
                case["name"], case["expect"]
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// One step of a trust.json scenario, as the vectors' JSON gives its outcome.
fn trust_step(validator: &Validator, clock: &ManualClock, step: &Value) -> Value {
    clock.set(step["now"].as_u64().unwrap());
    match step["action"].as_str().unwrap() {
        "load_list" => {
            match validator.load_revocation_list(step["list"].as_str().unwrap().as_bytes()) {
                Ok(list) => json!({"ok": true, "sequence": list.sequence()}),
                Err(p) => json!({"ok": false, "error": p.code()}),
            }
        }
        "validate" => match validator.validate(step["key"].as_str().unwrap()) {
            Ok(l) => {
                let status = match l.status() {
                    Status::Active => "active",
                    Status::InGrace { .. } => "in_grace",
                    other => panic!("enforcing validator gave {other:?}"),
                };
                let warnings: Vec<_> = l.warnings().iter().map(Problem::code).collect();
                json!({"ok": true, "status": status, "warnings": warnings})
            }
            Err(r) => json!({"ok": false, "error": r.code()}),
        },
        other => panic!("unknown action {other}"),
    }
}

/// trust.json: each scenario's steps against one validator, whose memory
/// state survives a `restart` (a new validator, no list loaded).
#[test]
fn trust_vectors_through_the_validator() {
    let scenarios = cases("trust.json");
    assert!(scenarios.len() >= 10, "too few scenarios");
    let mut failures = Vec::new();
    for sc in &scenarios {
        let name = sc["name"].as_str().unwrap();
        let keyring: Keyring = sc["keyring"].as_str().unwrap().parse().unwrap();
        let product = sc["product"].as_str().unwrap();
        let store = Arc::new(MemoryStateStore::new());
        let clock = Arc::new(ManualClock::new(0));
        let build = || {
            Validator::builder(keyring.clone(), product)
                .clock(Arc::clone(&clock))
                .state(Arc::clone(&store))
                .mode(Mode::Enforce)
                .no_device()
                .build()
                .unwrap()
        };
        let mut validator = build();
        for (i, step) in sc["steps"].as_array().unwrap().iter().enumerate() {
            if step["action"] == "restart" {
                validator = build();
                continue;
            }
            let got = trust_step(&validator, &clock, step);
            if got != step["expect"] {
                failures.push(format!(
                    "{name} step {i}: got {got}, want {}",
                    step["expect"]
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `leases.json`: a license with the lease of one of its seats, through
/// [`Validator::validate_with_lease`].
#[test]
fn lease_vectors_through_the_validator() {
    let cases = cases("leases.json");
    assert!(cases.len() >= 20, "too few cases: {}", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let name = case["name"].as_str().unwrap();
        for precompute in [true, false] {
            let keyring: Keyring = case["keyring"].as_str().unwrap().parse().unwrap();
            let mut b = Validator::builder(keyring, case["product"].as_str().unwrap())
                .precompute(precompute)
                .clock(ManualClock::new(case["now"].as_u64().unwrap()))
                .state(MemoryStateStore::new())
                .leeway(case["leeway"].as_u64().unwrap())
                .no_device();
            if let Some(fp) = case["device"].as_str() {
                b = b.device(fp.parse::<Fingerprint>().unwrap());
            }
            if let Some(h) = case["revocation_list_hex"].as_str() {
                b = b.revocation_list(unhex(h));
            }
            let v = b.build().unwrap();
            let got = match v.validate_with_lease(
                case["key"].as_str().unwrap(),
                case["lease"].as_str().unwrap(),
            ) {
                Ok(l) => {
                    if !l.is_clean() {
                        failures.push(format!("{name}: unexpected warnings {:?}", l.warnings()));
                    }
                    let lease = l.lease().expect("a lease");
                    json!({
                        "valid": true,
                        "license_id": l.id().to_string(),
                        "status": match l.status() { Status::Active => "active", _ => "in_grace" },
                        "lease": {
                            "seat_id": lease.seat_id().to_string(),
                            "issued_at": lease.issued_at(),
                            "renew_at": lease.renew_at(),
                            "expires_at": lease.expires_at(),
                            "check_in_due": lease.check_in_due(),
                        },
                    })
                }
                Err(r) => {
                    let fault = match r.problem().core_error() {
                        Some(keyseal::CoreError::LeaseInvalid(f)) => json!(f.code()),
                        _ => Value::Null,
                    };
                    json!({"valid": false, "error": r.code(), "fault": fault})
                }
            };
            if got != case["expect"] {
                failures.push(format!(
                    "{name} (precompute {precompute}): got {got}, want {}",
                    case["expect"]
                ));
            }
            // The lease alone, for a license validated first: the same verdict.
            if let Ok(l) = v.validate(case["key"].as_str().unwrap()) {
                let alone = match v.validate_lease(&l, case["lease"].as_str().unwrap()) {
                    Ok(lease) => {
                        json!({"valid": true, "seat_id": lease.seat_id().to_string(), "expires_at": lease.expires_at()})
                    }
                    Err(r) => json!({"valid": false, "error": r.code()}),
                };
                let e = &case["expect"];
                let want = if e["valid"] == json!(true) {
                    json!({"valid": true, "seat_id": e["lease"]["seat_id"], "expires_at": e["lease"]["expires_at"]})
                } else {
                    json!({"valid": false, "error": e["error"]})
                };
                if alone != want {
                    failures.push(format!("{name}: validate_lease gave {alone}, want {want}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
