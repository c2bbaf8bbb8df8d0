//! `keyseal verify` and `keyseal inspect`.

use std::path::Path;
use std::process::ExitCode;

use keyseal_core::license::{Expectations, Status, UnverifiedLicense};
use keyseal_core::{Error as CoreError, Fingerprint, Keyring, RevocationList, Version, armor};
use keyseal_issuer::Access;
use keyseal_issuer::time::{When, format};
use serde_json::json;

use crate::cli::{InspectArgs, VerifyArgs};
use crate::commands::with_vault;
use crate::env;
use crate::error::{CliError, exit};
use crate::show::{claims_json, claims_text, print_json, read_license};

/// A negative verdict: printed, exit code 1.
fn invalid(json: bool, code: &str, reason: &str, hint: Option<&str>) -> ExitCode {
    if json {
        print_json(&json!({ "valid": false, "code": code, "reason": reason, "hint": hint }));
    } else {
        println!("INVALID: {reason}");
        if let Some(h) = hint {
            println!("  {h}");
        }
    }
    ExitCode::from(exit::NEGATIVE)
}

pub(crate) async fn verify(dir: &Path, a: VerifyArgs, json: bool) -> Result<ExitCode, CliError> {
    let now = match &a.at {
        Some(s) => match s.parse::<When>() {
            Ok(When::Never) | Err(_) => {
                return Err(CliError::input(
                    format!("--at: `{s}` is not a time"),
                    "give a date or an RFC 3339 time",
                ));
            }
            Ok(w) => w.resolve(env::now()?).unwrap_or(0),
        },
        None => env::now()?,
    };
    let device = match &a.device {
        None => None,
        Some(s) => Some(s.parse::<Fingerprint>().map_err(|_| {
            CliError::input(
                format!("--device: `{s}` is not a device fingerprint"),
                "pass the ksfp1. line `keyseal fingerprint` prints",
            )
        })?),
    };
    let app_version = match &a.app_version {
        None => None,
        Some(s) => Some(s.parse::<Version>().map_err(|_| {
            CliError::input(
                format!("--app-version: `{s}` is not a version"),
                "give a version such as 5.2.1",
            )
        })?),
    };
    let bytes = match read_license(&a.key)? {
        Ok(b) => b,
        Err(why) => {
            return Ok(invalid(
                json,
                "malformed",
                &why,
                Some("pass the ks1. key as sent, a license file, or - to read standard input"),
            ));
        }
    };
    let lic = match UnverifiedLicense::from_bytes(&bytes) {
        Ok(l) => l,
        Err(e) => {
            return Ok(invalid(
                json,
                e.code(),
                &e.to_string(),
                Some("the key is damaged or was not made by keyseal"),
            ));
        }
    };

    if let Some(path) = &a.keyring {
        return verify_offline(path, &a, &lic, now, device.as_ref(), app_version, json).await;
    }
    with_vault(dir, Access::Read, async |vault| {
        let store = vault.store();
        let keyring = store.verification_keyring(lic.key_id()).await?;
        // The organisation whose key signed it (its keyring, revocations,
        // products and ledger are the ones that count).
        let org = store.key_owner(lic.key_id()).await?.unwrap_or_default();
        let revoked = store.org_revoked(&org).await?;
        let products = store.all_products(&org).await?;
        let claimed = lic.dangerous_unverified_claims().product;
        let product = match &a.product {
            Some(p) => p.clone(),
            None if products.iter().any(|p| p == claimed) => claimed.to_owned(),
            None => {
                return Ok(invalid(
                    json,
                    "wrong_product",
                    &format!(
                        "the license names product `{claimed}`, which this vault does not issue for"
                    ),
                    Some("pass --product to check it against one of yours"),
                ));
            }
        };
        let mut exp = Expectations::new(&product, now).revocations(&revoked);
        if let Some(d) = &device {
            exp = exp.device(d);
        }
        if let Some(v) = app_version {
            exp = exp.app_version(v);
        }
        match lic.verify(&keyring, &exp) {
            Ok(v) => Ok(valid(json, now, &v, None)),
            Err(e) => {
                let (reason, hint) = explain(&e, &lic, &a, Some(store)).await;
                Ok(invalid(json, e.code(), &reason, hint.as_deref()))
            }
        }
    })
    .await
}

/// A positive verdict: printed, exit code 0. `list` is `Some` for a check
/// against a keyring file: the sequence of the list given, if one was.
fn valid(
    json: bool,
    now: u64,
    v: &keyseal_core::license::VerifiedLicense<'_>,
    list: Option<Option<u64>>,
) -> ExitCode {
    let c = v.claims();
    let status = match v.status() {
        Status::Active => "active".to_owned(),
        Status::InGrace { grace_ends } => format!("in grace until {}", format(grace_ends)),
    };
    if json {
        let mut out = json!({
            "valid": true,
            "status": status,
            "checked_at": format(now),
            "claims": claims_json(c, v.key_id()),
        });
        if let Some(seq) = list {
            out["revocation_list"] = json!(seq);
        }
        print_json(&out);
    } else {
        println!("VALID: license {} ({status})", c.license_id);
        print!("{}", claims_text(c, v.key_id()));
        if list == Some(None) {
            println!("(no revocation list given: a revoked license shows as valid here)");
        }
    }
    ExitCode::SUCCESS
}

/// Reads a file the user named, or says which and why not (exit 5).
fn read_named(flag: &str, path: &Path) -> Result<String, CliError> {
    std::fs::read_to_string(path).map_err(|e| {
        CliError::input(
            format!("{flag}: cannot read {}: {e}", path.display()),
            format!("check the path given to {flag}"),
        )
    })
}

/// `verify --keyring FILE [--revocations FILE]`: the app's check, with the
/// public keyring (and list) alone.
async fn verify_offline(
    path: &Path,
    a: &VerifyArgs,
    lic: &UnverifiedLicense<'_>,
    now: u64,
    device: Option<&Fingerprint>,
    app_version: Option<Version>,
    json: bool,
) -> Result<ExitCode, CliError> {
    let text = read_named("--keyring", path)?;
    // The JSON export carries the text form under "keyring".
    let ring_text = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v.get("keyring").and_then(|k| k.as_str()).map(str::to_owned))
        .unwrap_or(text);
    let keyring: Keyring = ring_text.parse().map_err(|e| {
        CliError::input(
            format!("--keyring: {} is not a keyring: {e}", path.display()),
            "pass the file `keyseal keys export` (text or --format json) wrote",
        )
    })?;
    let list = match &a.revocations {
        None => None,
        Some(p) => {
            let text = read_named("--revocations", p)?;
            let bytes = armor::blocks(&text)
                .filter_map(Result::ok)
                .find(|b| b.label() == armor::REVOCATION_LIST)
                .and_then(|b| b.decode_to_vec().ok())
                .ok_or_else(|| {
                    CliError::input(
                        format!("--revocations: {} holds no revocation list", p.display()),
                        "pass the file `keyseal revocations publish --out` wrote",
                    )
                })?;
            Some(RevocationList::verify(&bytes, &keyring).map_err(|e| {
                CliError::input(
                    format!("--revocations: the list does not check out against the keyring: {e}"),
                    "pass the list and the keyring of the same vendor, both current",
                )
            })?)
        }
    };
    // No vault: the product is the one asked for, or the one it names.
    let product = a
        .product
        .clone()
        .unwrap_or_else(|| lic.dangerous_unverified_claims().product.to_owned());
    let mut exp = Expectations::new(&product, now);
    if let Some(l) = &list {
        exp = exp.revocations(l);
    }
    if let Some(d) = device {
        exp = exp.device(d);
    }
    if let Some(v) = app_version {
        exp = exp.app_version(v);
    }
    match lic.verify(&keyring, &exp) {
        Ok(v) => Ok(valid(
            json,
            now,
            &v,
            Some(list.as_ref().map(RevocationList::sequence)),
        )),
        Err(e) => {
            let (reason, hint) = explain(&e, lic, a, None).await;
            Ok(invalid(json, e.code(), &reason, hint.as_deref()))
        }
    }
}

async fn explain(
    e: &CoreError,
    lic: &UnverifiedLicense<'_>,
    a: &VerifyArgs,
    store: Option<&keyseal_issuer::Store>,
) -> (String, Option<String>) {
    let c = lic.dangerous_unverified_claims();
    match e {
        CoreError::UnknownKey(id) => (
            format!(
                "signed by key {id}, which this {} does not hold",
                if store.is_some() { "vault" } else { "keyring" }
            ),
            Some("another vendor's key, or a forged license".into()),
        ),
        CoreError::BadSignature => (
            "invalid signature".into(),
            Some("the key was altered or forged".into()),
        ),
        CoreError::KeyNotValid(id) => (
            format!(
                "key {id} was not allowed to sign a license issued at {}",
                format(c.issued_at)
            ),
            Some("the issue time lies outside the key's window (see `keyseal keys list`)".into()),
        ),
        CoreError::KeyRevoked(id) => (format!("signing key {id} is revoked"), None),
        CoreError::Expired { expired_at } => (format!("expired at {}", format(*expired_at)), None),
        CoreError::NotYetValid { not_before } => {
            (format!("not valid before {}", format(*not_before)), None)
        }
        CoreError::WrongProduct => (
            format!(
                "the license is for product `{}`, not `{}`",
                c.product,
                a.product.as_deref().unwrap_or("")
            ),
            None,
        ),
        CoreError::WrongDevice if a.device.is_none() => (
            "the license is bound to a device".into(),
            Some("pass --device with the customer's fingerprint to check it".into()),
        ),
        CoreError::WrongDevice => ("the license is bound to another device".into(), None),
        CoreError::VersionNotCovered => (
            format!(
                "the license covers app versions up to {}, not {}",
                c.max_version.map(|v| v.to_string()).unwrap_or_default(),
                a.app_version.as_deref().unwrap_or("")
            ),
            None,
        ),
        CoreError::Revoked => {
            let detail = match store {
                Some(store) => {
                    let org = store
                        .key_owner(lic.key_id())
                        .await
                        .ok()
                        .flatten()
                        .unwrap_or_default();
                    match store.license(&org, &c.license_id.to_string()).await {
                        Ok(rec) => rec
                            .revoked
                            .map(|(at, why)| format!(" since {} ({why})", format(at))),
                        Err(_) => None,
                    }
                }
                None => None,
            };
            (
                format!("the license is revoked{}", detail.unwrap_or_default()),
                None,
            )
        }
        other => (other.to_string(), None),
    }
}

pub(crate) fn inspect(a: InspectArgs, json: bool) -> Result<ExitCode, CliError> {
    const BANNER: &str = "UNVERIFIED: the signature was NOT checked. Anyone can write anything into these claims; \
                          use `keyseal verify` before trusting them.";
    let bytes = read_license(&a.key)?.map_err(|why| {
        CliError::input(
            format!("cannot decode the license: {why}"),
            "pass the ks1. key as sent, a license file, or -",
        )
    })?;
    let lic = UnverifiedLicense::from_bytes(&bytes).map_err(|e| {
        CliError::input(
            format!("cannot decode the license: {e}"),
            "the key is damaged or was not made by keyseal",
        )
    })?;
    let c = lic.dangerous_unverified_claims();
    if json {
        print_json(
            &json!({ "verified": false, "warning": BANNER, "claims": claims_json(c, lic.key_id()) }),
        );
    } else {
        eprintln!("{BANNER}");
        println!("UNVERIFIED license (decoded only, nothing checked)");
        print!("{}", claims_text(c, lic.key_id()));
        println!("UNVERIFIED: run `keyseal verify` to check the signature, dates and revocations");
    }
    Ok(ExitCode::SUCCESS)
}
