//! The release engineer's whole workflow through the real binary, checked
//! by the SDK apps link: init, issue, verify, rotate, issue again, verify
//! both keys, revoke one license, publish the list; the app's Validator
//! then rejects the revoked license and accepts the other.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;
use keyseal::{Keyring, MemoryStateStore, Validator};
use serde_json::Value;

fn keyseal(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::cargo_bin("keyseal")
        .unwrap()
        .current_dir(dir)
        .env("KEYSEAL_PASSPHRASE", "correct horse battery staple")
        .env("KEYSEAL_KDF_PARAMS", "m=64,t=1,p=1")
        .env("KEYSEAL_ACTOR", "release-engineer")
        .env_remove("KEYSEAL_NOW")
        .env_remove("KEYSEAL_VAULT")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let (code, out, err) = keyseal(dir, args);
    assert_eq!(code, 0, "keyseal {args:?} failed: {err}");
    out
}

fn issue(dir: &Path, customer: &str) -> Value {
    let out = ok(
        dir,
        &[
            "issue",
            "--product",
            "acme-cad",
            "--customer",
            customer,
            "--plan",
            "pro",
            "--expires",
            "365d",
            "--entitlement",
            "export",
            "--json",
        ],
    );
    serde_json::from_str(&out).unwrap()
}

#[test]
fn init_issue_rotate_revoke_publish_and_the_sdk_agrees() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    ok(dir, &["init", "--product", "acme-cad"]);

    // Key one signs license A.
    let a = issue(dir, "cus_a");
    let a_key = a["license_key"].as_str().unwrap().to_owned();
    let (code, out, _) = keyseal(dir, &["verify", &a_key]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("VALID"));

    // Rotate; key two signs license B.
    let rot: Value = serde_json::from_str(&ok(dir, &["keys", "rotate", "--json"])).unwrap();
    let b = issue(dir, "cus_b");
    let b_key = b["license_key"].as_str().unwrap().to_owned();
    assert_ne!(a["key_id"], b["key_id"]);
    assert_eq!(b["key_id"], rot["new"]["key_id"]);
    assert_eq!(a["key_id"], rot["retired"]["key_id"]);

    // Both verify with the vault, and both are in the exported keyring.
    for key in [&a_key, &b_key] {
        let (code, out, _) = keyseal(dir, &["verify", key, "--json"]);
        assert_eq!(code, 0, "{out}");
        assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["valid"], true);
    }
    let keyring_text = ok(dir, &["keys", "export"]);
    assert_eq!(
        keyring_text
            .lines()
            .filter(|l| l.starts_with("key "))
            .count(),
        2
    );

    // Revoke A, publish the list.
    ok(
        dir,
        &[
            "revoke",
            a["license_id"].as_str().unwrap(),
            "--reason",
            "refund",
        ],
    );
    let (code, out, _) = keyseal(dir, &["verify", &a_key]);
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("INVALID: the license is revoked"), "{out}");
    ok(dir, &["revocations", "publish", "--out", "revocations.txt"]);
    let list = std::fs::read(dir.join("revocations.txt")).unwrap();

    // Support staff without the vault: the public keyring (text or JSON)
    // and the published list give the app's verdicts.
    std::fs::write(dir.join("ring.txt"), &keyring_text).unwrap();
    ok(
        dir,
        &["keys", "export", "--format", "json", "--out", "ring.json"],
    );
    let elsewhere = tempfile::tempdir().unwrap();
    let here = elsewhere.path();
    for ring in ["ring.txt", "ring.json"] {
        let ring = dir.join(ring);
        let ring = ring.to_str().unwrap();
        let list = dir.join("revocations.txt");
        let list = list.to_str().unwrap();
        let (code, out, _) = keyseal(here, &["verify", &b_key, "--keyring", ring, "--json"]);
        assert_eq!(code, 0, "{out}");
        let (code, out, _) = keyseal(here, &["verify", &a_key, "--keyring", ring]);
        assert_eq!(
            code, 0,
            "without the list a revoked key still verifies: {out}"
        );
        assert!(out.contains("no revocation list given"), "{out}");
        let args = ["verify", &a_key, "--keyring", ring, "--revocations", list];
        let (code, out, _) = keyseal(here, &args);
        assert_eq!(code, 1, "{out}");
        assert!(out.starts_with("INVALID: the license is revoked"), "{out}");
    }
    let (code, _, err) = keyseal(here, &["verify", &b_key, "--keyring", "nope.txt"]);
    assert_eq!(code, 5, "{err}");
    assert!(!here.join("keyseal-vault").exists());

    // The app: the exported keyring, the published list, the SDK.
    let keyring: Keyring = keyring_text.parse().unwrap();
    let validator = Validator::builder(keyring.clone(), "acme-cad")
        .state(MemoryStateStore::new())
        .no_device()
        .revocation_list(list)
        .build()
        .unwrap();
    let rejected = validator.validate(&a_key).unwrap_err();
    assert_eq!(rejected.code(), "revoked");
    let license = validator.validate(&b_key).unwrap();
    assert_eq!(license.customer(), "cus_b");
    assert!(license.has("export"));

    // Without the list the app still accepts A: revocation travels in the list.
    let no_list = Validator::builder(keyring, "acme-cad")
        .state(MemoryStateStore::new())
        .no_device()
        .build()
        .unwrap();
    assert!(no_list.validate(&a_key).is_ok());

    // Everything was audited, and the chain holds.
    let audit: Value = serde_json::from_str(&ok(dir, &["audit", "list", "--json"])).unwrap();
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "org.create",
            "vault.init",
            "license.issue",
            "key.rotate",
            "license.issue",
            "license.revoke",
            "revocations.publish"
        ]
    );
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["actor"] == "release-engineer")
    );
    ok(dir, &["audit", "verify"]);

    // The ledger, which holds the sealed keys, is owner-only (its log
    // files too), inside an owner-only vault.
    use std::os::unix::fs::PermissionsExt;
    for entry in std::fs::read_dir(dir.join("keyseal-vault")).unwrap() {
        let entry = entry.unwrap();
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with("ledger.sqlite")
        {
            let meta = entry.metadata().unwrap();
            assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{entry:?}");
        }
    }
    let vault_mode = std::fs::metadata(dir.join("keyseal-vault"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(vault_mode, 0o700);
}

/// `keyseal fingerprint` prints exactly what the SDK computes in the app, or
/// says clearly that this machine has no id to fingerprint.
#[test]
fn fingerprint_matches_the_sdk() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, out, err) = keyseal(tmp.path(), &["fingerprint", "--product", "acme-cad"]);
    match keyseal::fingerprint::this_machine("acme-cad") {
        Ok(fp) => {
            assert_eq!(code, 0, "{err}");
            assert_eq!(out.trim(), fp.to_string());
            assert!(err.contains("send this line to the vendor"), "{err}");
            let (_, other, _) = keyseal(tmp.path(), &["fingerprint", "--product", "acme-viewer"]);
            assert_ne!(out, other, "fingerprints must differ per product");
        }
        Err(_) => {
            assert_eq!(code, 6, "{out}");
            assert!(err.contains("cannot fingerprint this machine"), "{err}");
        }
    }
    let (code, _, err) = keyseal(tmp.path(), &["fingerprint", "--product", "acme cad"]);
    assert_eq!(code, 5, "{err}");
}

/// Air-gapped activation: the device's SDK makes a request code, the
/// vendor answers it with `keyseal activate --request`, the device installs
/// the response and validates its license with the lease; the license's
/// one seat is then taken, and a typo in the code is caught.
#[test]
fn an_air_gapped_device_activates_with_codes() {
    use keyseal::seats::OfflineRequest;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    ok(dir, &["init", "--product", "acme-cad"]);
    let key = issue(dir, "cus_airgap")["license_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let device = keyseal::Fingerprint::from_components(&[keyseal::Fingerprint::component(
        "acme-cad",
        "machine-id",
        b"air-gapped",
    )])
    .unwrap();
    let pending = OfflineRequest::new(&key, &device).unwrap();
    let code = pending.code().to_owned();
    assert!(code.len() <= 300 && code.starts_with("KSREQ1."), "{code}");
    // The app restarts while it waits for the vendor.
    let pending = OfflineRequest::from_text(&pending.to_text()).unwrap();
    let out: Value =
        serde_json::from_str(&ok(dir, &["activate", "--request", &code, "--json"])).unwrap();
    let response = out["response"].as_str().unwrap();
    assert!(
        response.len() <= 300 && response.starts_with("KSRES1."),
        "{response}"
    );
    // Read over the phone: lower case, spaces.
    let spoken = response.to_lowercase().replace('-', " ");
    let seat = pending.install(&spoken).unwrap();
    let ring = ok(dir, &["keys", "export"]);
    let keyring: Keyring = ring.parse().unwrap();
    let v = Validator::builder(keyring, "acme-cad")
        .state(MemoryStateStore::new())
        .device(device)
        .build()
        .unwrap();
    let lic = v.validate_with_lease(&key, seat.lease()).unwrap();
    assert_eq!(lic.lease().unwrap().seat_id(), seat.seat_id());
    assert_eq!(
        out["seat_id"],
        serde_json::json!(seat.seat_id().to_string())
    );
    // Its one seat is taken: another device's request is refused.
    let other = keyseal::Fingerprint::from_components(&[[7; 16]]).unwrap();
    let second = OfflineRequest::new(&key, &other).unwrap();
    let (code2, _, err) = keyseal(dir, &["activate", "--request", second.code()]);
    assert_eq!(code2, 5, "{err}");
    assert!(err.contains("seats"), "{err}");
    // A typo.
    let mut typo = code.clone();
    let last = typo.pop().unwrap();
    typo.push(if last == '2' { '3' } else { '2' });
    let (code3, _, err) = keyseal(dir, &["activate", "--request", &typo]);
    assert_eq!(code3, 5, "{err}");
    assert!(err.contains("typo"), "{err}");
}

/// `keyseal allot` signs a relay's allotment from the vault; `keyseal relay
/// serve` leases it on loopback with no vault or service, keeps its seats
/// across a SIGKILL, and its leases validate with the vault's keyring.
#[test]
fn a_relay_leases_an_allotment_from_the_vault_and_survives_a_kill() {
    use keyseal::seats::SeatClient;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    ok(dir, &["init", "--product", "acme-cad"]);
    let issued = issue(dir, "cus_relay");
    let key = issued["license_key"].as_str().unwrap().to_owned();
    let lid = issued["license_id"].as_str().unwrap().to_owned();
    std::fs::write(dir.join("license.txt"), &key).unwrap();
    std::fs::write(dir.join("keyring.txt"), ok(dir, &["keys", "export"])).unwrap();
    let relay_dir = dir.join("relay");
    let relay_key = ok(
        dir,
        &["relay", "init", "--dir", relay_dir.to_str().unwrap()],
    )
    .trim()
    .to_owned();
    assert!(relay_key.starts_with("kspub1."), "{relay_key}");
    let (code, _, err) = keyseal(
        dir,
        &["relay", "init", "--dir", relay_dir.to_str().unwrap()],
    );
    assert_eq!(code, 5, "{err}");
    // The license has one seat: a relay may have it, not two.
    let (code, _, err) = keyseal(
        dir,
        &[
            "allot",
            &lid,
            "--relay-key",
            &relay_key,
            "--seats",
            "2",
            "--out",
            "allotment.txt",
        ],
    );
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("only 1"), "{err}");
    assert!(!dir.join("allotment.txt").exists());
    let out: Value = serde_json::from_str(&ok(
        dir,
        &[
            "allot",
            &lid,
            "--relay-key",
            &relay_key,
            "--seats",
            "1",
            "--days",
            "2",
            "--out",
            "allotment.txt",
            "--json",
        ],
    ))
    .unwrap();
    assert_eq!(out["seats"], serde_json::json!(1));
    let allotment = std::fs::read_to_string(dir.join("allotment.txt")).unwrap();
    assert!(allotment.starts_with("ksallot1."));
    // Never over an existing file.
    let (code, _, _) = keyseal(
        dir,
        &[
            "allot",
            &lid,
            "--relay-key",
            &relay_key,
            "--seats",
            "1",
            "--out",
            "allotment.txt",
        ],
    );
    assert_eq!(code, 5);

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let start = || {
        let mut child = Command::cargo_bin("keyseal")
            .unwrap()
            .current_dir(dir)
            .args([
                "relay",
                "serve",
                "--dir",
                "relay",
                "--keyring",
                "keyring.txt",
                "--license",
                "license.txt",
                "--allotment",
                "allotment.txt",
                "--listen",
                &listen,
            ])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        for _ in 0..200 {
            if std::net::TcpStream::connect(&listen).is_ok() {
                return child;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("the relay did not start");
    };
    let device = |n: u8| keyseal::Fingerprint::from_components(&[[n; 16]]).unwrap();
    let mut child = start();
    let client = SeatClient::new(format!("http://{listen}"));
    let seat = client.activate(&key, &device(1)).unwrap();
    let keyring: Keyring = std::fs::read_to_string(dir.join("keyring.txt"))
        .unwrap()
        .parse()
        .unwrap();
    let v = Validator::builder(keyring, "acme-cad")
        .state(MemoryStateStore::new())
        .device(device(1))
        .build()
        .unwrap();
    let lic = v.validate_with_lease(&key, seat.lease()).unwrap();
    assert_eq!(lic.lease().unwrap().seat_id(), seat.seat_id());
    assert_eq!(
        client.activate(&key, &device(2)).unwrap_err().code(),
        "seat_limit"
    );
    // SIGKILL: the seat was written before the answer.
    child.kill().unwrap();
    child.wait().unwrap();
    let mut child = start();
    assert_eq!(
        client.activate(&key, &device(2)).unwrap_err().code(),
        "seat_limit"
    );
    assert_eq!(
        client.activate(&key, &device(1)).unwrap().seat_id(),
        seat.seat_id()
    );
    child.kill().unwrap();
    child.wait().unwrap();
    // Revoked: no further allotment.
    let relay_id = out["relay_key_id"].as_str().unwrap();
    ok(dir, &["allot", &lid, "--revoke-relay", relay_id]);
    let (code, _, err) = keyseal(
        dir,
        &["allot", &lid, "--relay-key", &relay_key, "--seats", "1"],
    );
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("revoked"), "{err}");
}

/// `keyseal products lease-policy` and `trial-policy`: set, refused out of
/// bounds or for an unknown product, and trials turned off again.
#[test]
fn product_policies_from_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    ok(dir, &["init", "--product", "acme-cad"]);
    let out: Value = serde_json::from_str(&ok(
        dir,
        &[
            "products",
            "lease-policy",
            "acme-cad",
            "--renew",
            "10m",
            "--grace",
            "2m",
            "--json",
        ],
    ))
    .unwrap();
    assert_eq!(out["lease_secs"], serde_json::json!(600));
    assert_eq!(out["lease_grace_secs"], serde_json::json!(120));
    let (code, _, err) = keyseal(
        dir,
        &[
            "products",
            "lease-policy",
            "acme-cad",
            "--renew",
            "10s",
            "--grace",
            "2m",
        ],
    );
    assert_eq!(code, 5, "{err}");
    let (code, _, err) = keyseal(
        dir,
        &[
            "products",
            "lease-policy",
            "nope",
            "--renew",
            "10m",
            "--grace",
            "2m",
        ],
    );
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("no product"), "{err}");
    let out: Value = serde_json::from_str(&ok(
        dir,
        &[
            "products",
            "trial-policy",
            "acme-cad",
            "--length",
            "30d",
            "--entitlement",
            "export-pdf",
            "--device-match",
            "3",
            "--json",
        ],
    ))
    .unwrap();
    assert_eq!(out["enabled"], serde_json::json!(true));
    assert_eq!(out["length_secs"], serde_json::json!(30 * 86_400));
    assert_eq!(out["entitlements"], serde_json::json!(["export-pdf"]));
    assert_eq!(out["device_match"], serde_json::json!(3));
    let (code, _, err) = keyseal(
        dir,
        &["products", "trial-policy", "acme-cad", "--length", "10m"],
    );
    assert_eq!(code, 5, "{err}");
    let off = ok(dir, &["products", "trial-policy", "acme-cad", "--disable"]);
    assert!(off.contains("no trials"), "{off}");
}
