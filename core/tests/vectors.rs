//! Runs the shared vectors in `testdata/vectors/` through keyseal-core.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use keyseal_core::license::{self, MAX_LICENSE_LEN};
use keyseal_core::revocation::RevocationList;
use keyseal_core::{
    Claims, DeviceRule, Error, Expectations, Fingerprint, Keyring, SIGNATURE_LEN, SigningKey,
    Status, UnverifiedLicense, Version, armor,
};
use keyseal_testdata::{cases, claims_json, unhex};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Refusals checked against a forged signature: [after it, before it].
static ORDER_CHECKED: [AtomicUsize; 2] = [AtomicUsize::new(0), AtomicUsize::new(0)];

fn decode<'b>(key: &str, buf: &'b mut [u8; MAX_LICENSE_LEN]) -> Result<&'b [u8], Error> {
    if key.contains("-----BEGIN KEYSEAL") {
        let block = armor::blocks(key).next().unwrap()?;
        assert_eq!(block.label(), armor::LICENSE);
        block.decode(buf)
    } else {
        license::decode_text(key, buf)
    }
}

fn run_license_case(case: &Value, precompute: bool) -> Result<Value, Error> {
    let mut keyring: Keyring = case["keyring"].as_str().unwrap().parse()?;
    if precompute {
        keyring.precompute();
    }
    let fp: Option<Fingerprint> = case["device"].as_str().map(str::parse).transpose()?;
    let list = case["revocation_list_hex"]
        .as_str()
        .map(|h| RevocationList::verify(&unhex(h), &keyring))
        .transpose()?;
    let mut exp = Expectations::new(
        case["product"].as_str().unwrap(),
        case["now"].as_u64().unwrap(),
    )
    .leeway(case["leeway"].as_u64().unwrap());
    if let Some(v) = case["app_version"].as_str() {
        exp = exp.app_version(v.parse::<Version>()?);
    }
    if let Some(fp) = &fp {
        exp = exp.device(fp);
    }
    if let Some(list) = &list {
        exp = exp.revocations(list);
    }
    let mut buf = [0u8; MAX_LICENSE_LEN];
    let bytes = decode(case["key"].as_str().unwrap(), &mut buf)?;
    let unverified = UnverifiedLicense::from_bytes(bytes)?;
    let verdict = unverified.verify(&keyring, &exp);
    if let Err(e) = &verdict
        && *e != Error::BadSignature
    {
        // `signature_checked_before` tells verify's order truly: with a
        // forged signature, exactly the refusals it names become bad_signature.
        let mut forged = bytes.to_vec();
        let last = forged.len() - 1;
        forged[last - SIGNATURE_LEN / 2] ^= 0x01;
        let forged_verdict = UnverifiedLicense::from_bytes(&forged)?.verify(&keyring, &exp);
        assert_eq!(
            unverified.signature_checked_before(e),
            forged_verdict == Err(Error::BadSignature),
            "{}: refused with {e:?}; with a forged signature, {forged_verdict:?}",
            case["name"]
        );
        let after = unverified.signature_checked_before(e);
        ORDER_CHECKED[usize::from(!after)].fetch_add(1, Ordering::Relaxed);
    }
    let verified = verdict?;
    let (status, grace_ends) = match verified.status() {
        Status::Active => ("active", None),
        Status::InGrace { grace_ends } => ("in_grace", Some(grace_ends)),
    };
    Ok(
        json!({"valid": true, "status": status, "grace_ends": grace_ends, "claims": claims_json(verified.claims())}),
    )
}

#[test]
fn license_vectors() {
    let cases = cases("licenses.json");
    assert!(cases.len() >= 30, "too few cases: {}", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        for precompute in [false, true] {
            let got = match run_license_case(case, precompute) {
                Ok(v) => v,
                Err(e) => json!({"valid": false, "error": e.code()}),
            };
            if got != case["expect"] {
                failures.push(format!(
                    "{} (precomputed keyring: {precompute}): got {got}, want {}",
                    case["name"], case["expect"]
                ));
            }
        }
        let name = case["name"].as_str().unwrap();
        let code = case["expect"]["error"].as_str();
        assert!(
            code.is_none_or(|c| name.starts_with(c)),
            "{name} is not named for its error {code:?}"
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let [after, before] = ORDER_CHECKED.each_ref().map(|n| n.load(Ordering::Relaxed));
    assert!(
        after >= 5 && before >= 2,
        "too few refusals on either side of the signature: {after} after, {before} before"
    );
}

fn run_list_case(case: &Value, precompute: bool) -> Result<Value, Error> {
    let mut keyring: Keyring = case["keyring"].as_str().unwrap().parse()?;
    if precompute {
        keyring.precompute();
    }
    let list = RevocationList::verify(&unhex(case["list_hex"].as_str().unwrap()), &keyring)?;
    list.check_not_rolled_back(keyseal_core::ListOrder {
        rank: case["seen_rank"].as_u64().unwrap(),
        sequence: case["seen_sequence"].as_u64().unwrap(),
    })?;
    list.check_fresh(case["now"].as_u64().unwrap())?;
    Ok(json!({
        "valid": true, "sequence": list.sequence(), "issued_at": list.issued_at(),
        "next_update": list.next_update(),
        "revoked_licenses": list.revoked_licenses().map(|i| i.to_string()).collect::<Vec<_>>(),
        "revoked_keys": list.revoked_keys().map(|i| i.to_string()).collect::<Vec<_>>(),
    }))
}

#[test]
fn revocation_list_vectors() {
    let cases = cases("revocation_lists.json");
    assert!(cases.len() >= 10);
    let mut failures = Vec::new();
    for case in &cases {
        for precompute in [false, true] {
            let got = run_list_case(case, precompute)
                .unwrap_or_else(|e| json!({"valid": false, "error": e.code()}));
            if got != case["expect"] {
                failures.push(format!(
                    "{} (precomputed keyring: {precompute}): got {got}, want {}",
                    case["name"], case["expect"]
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn issue_vectors_are_reproducible() {
    let cases = cases("issue.json");
    assert!(!cases.is_empty());
    for case in cases {
        let seed: [u8; 32] = unhex(case["seed_hex"].as_str().unwrap())
            .try_into()
            .unwrap();
        let key = SigningKey::from_seed(&seed).unwrap();
        let c = &case["claims"];
        let mut claims = Claims::new(
            c["license_id"].as_str().unwrap().parse().unwrap(),
            c["product"].as_str().unwrap(),
            c["customer"].as_str().unwrap(),
            c["plan"].as_str().unwrap(),
            c["issued_at"].as_u64().unwrap(),
        );
        claims.not_before = c["not_before"].as_u64();
        claims.expires_at = c["expires_at"].as_u64();
        claims.grace_secs = c["grace_secs"].as_u64().unwrap() as u32;
        for e in c["entitlements"].as_array().unwrap() {
            claims.entitlements.push(e.as_str().unwrap()).unwrap();
        }
        claims.max_version = c["max_version"].as_str().map(|v| v.parse().unwrap());
        for (k, v) in c["extensions"].as_object().unwrap() {
            claims
                .extensions
                .push((k.as_str(), v.as_str().unwrap()))
                .unwrap();
        }
        let fp: Option<Fingerprint> = case["device"].as_str().map(|s| s.parse().unwrap());
        let rule = match case["device_rule"].as_str() {
            Some("exact") => Some(DeviceRule::Exact),
            None => None,
            Some(other) => panic!("rule {other}"),
        };
        let device = fp.as_ref().zip(rule);
        let bytes = license::issue(&key, &claims, device).unwrap();
        assert_eq!(
            license::to_text(&bytes),
            case["expect_key"].as_str().unwrap(),
            "{}",
            case["name"]
        );
    }
}

/// `activation_codes.json`: request codes encode exactly; request and
/// response codes decode to their fields, or to the error code.
#[test]
fn activation_code_vectors() {
    use keyseal_core::activation_code::{ActivationRequest, lease_from_response};
    use keyseal_core::lease::{MAX_LEASE_LEN, to_text};
    let cases = cases("activation_codes.json");
    assert!(cases.len() >= 15, "too few cases: {}", cases.len());
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let mut failures = Vec::new();
    for case in &cases {
        let name = case["name"].as_str().unwrap();
        let got = match case["kind"].as_str().unwrap() {
            "request" => {
                let mut buf = [0u8; MAX_LICENSE_LEN];
                let lic =
                    license::decode_text(case["license_key"].as_str().unwrap(), &mut buf).unwrap();
                let fp: Fingerprint = case["device"].as_str().unwrap().parse().unwrap();
                let pk = case["public_key"].as_str().unwrap().parse().unwrap();
                let code = ActivationRequest::new(lic, &fp, pk).unwrap().to_code();
                if code != case["expect_code"].as_str().unwrap() {
                    failures.push(format!("{name}: encodes as {code}"));
                }
                continue;
            }
            "decode_request" => {
                match ActivationRequest::from_code(case["code"].as_str().unwrap()) {
                    Ok(r) => json!({
                        "valid": true,
                        "license_id": r.license_id.to_string(),
                        "license_proof_hex": hex(&r.license_proof),
                        "binding_hash_hex": hex(&r.binding_hash),
                        "device_hint_hex": hex(&r.device_hint),
                        "public_key": r.public_key.to_string(),
                    }),
                    Err(e) => json!({"valid": false, "error": e.code()}),
                }
            }
            "decode_response" => {
                let mut buf = [0u8; MAX_LEASE_LEN + 8];
                match lease_from_response(case["code"].as_str().unwrap(), &mut buf) {
                    Ok(l) => json!({"valid": true, "lease": to_text(l)}),
                    Err(e) => json!({"valid": false, "error": e.code()}),
                }
            }
            other => panic!("{name}: kind {other}"),
        };
        if got != case["expect"] {
            failures.push(format!("{name}: got {got}, want {}", case["expect"]));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
