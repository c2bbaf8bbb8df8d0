//! Vault administration: init, keys, products, licenses, revocations, audit.

use std::path::Path;
use std::process::ExitCode;

use keyseal_issuer::time::{When, format};
use keyseal_issuer::{
    Access, InitOptions, KdfParams, KeyInfo, LicenseFilter, LicenseRecord, Vault,
};
use keyseal_issuer::{KeyError, VaultError};
use serde_json::{Value, json};

use crate::cli::{
    ActivateArgs, AuditArgs, AuditCommand, ExportFormat, FingerprintArgs, InitArgs, KeysCommand,
    LicensesCommand, ProductsCommand, RevocationsCommand, RevokeArgs,
};
use crate::commands::with_vault;
use crate::env;
use crate::error::{CliError, exit};
use crate::show::{opt_time, print_json};

pub(crate) async fn init(dir: &Path, a: InitArgs, json: bool) -> Result<ExitCode, CliError> {
    let ctx = env::context()?;
    for p in &a.products {
        keyseal_issuer::request::check_product(p)?;
    }
    let url = env::database_url();
    if url.is_none() && dir.join(keyseal_issuer::vault::LEDGER_FILE).exists() {
        return Err(keyseal_issuer::Error::Vault(VaultError::VaultExists {
            dir: dir.to_path_buf(),
        })
        .into());
    }
    let kdf = env::kdf_override()?.unwrap_or(KdfParams::DEFAULT);
    let pass = env::passphrase(true)?;
    let opts = InitOptions {
        products: a.products.clone(),
        kdf,
    };
    let vault = match url {
        Some(url) => Vault::init_postgres(url, &pass, &opts, &ctx).await?,
        None => Vault::init(dir, &pass, &opts, &ctx).await?,
    };
    let key = vault.store().active_key().await;
    vault.close().await;
    let key = key?.ok_or(keyseal_issuer::Error::Key(KeyError::NoActiveKey))?;
    let place = match url {
        Some(u) => format!("PostgreSQL {}", keyseal_issuer::store::url_host(u)),
        None => dir.display().to_string(),
    };
    if json {
        print_json(&json!({
            "vault": place,
            "key_id": key.key_id.to_string(),
            "products": a.products,
            "kdf": kdf.to_string(),
        }));
    } else {
        println!("created vault {place}");
        println!(
            "  signing key  {} (sealed with Argon2id {kdf}, XChaCha20-Poly1305)",
            key.key_id
        );
        if a.products.is_empty() {
            println!("  products     none yet: add one with `keyseal products add NAME`");
        } else {
            println!("  products     {}", a.products.join(", "));
        }
        println!(
            "next: back up the {}, then `keyseal keys export` for your app's keyring",
            if url.is_some() {
                "database"
            } else {
                "vault directory"
            }
        );
    }
    if url.is_none()
        && let Some(repo) = unignored_in_git_tree(dir)
    {
        eprintln!(
            "warning: the vault is inside the git working tree {} and its .gitignore does not name it: \
             add it (the vault holds the sealed keys and the customer ledger), or use --vault DIR",
            repo.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The git working tree `dir` is in, when the tree's top-level
/// `.gitignore` names no part of `dir`'s path within it (so `git add -A`
/// would commit the vault).
fn unignored_in_git_tree(dir: &Path) -> Option<std::path::PathBuf> {
    let abs = std::path::absolute(dir).ok()?;
    let repo = abs.ancestors().skip(1).find(|a| a.join(".git").exists())?;
    let inside = abs.strip_prefix(repo).ok()?;
    let ignore = std::fs::read_to_string(repo.join(".gitignore")).unwrap_or_default();
    let named = ignore.lines().map(str::trim).any(|l| {
        let l = l.trim_start_matches('/').trim_end_matches('/');
        !l.is_empty()
            && inside
                .ancestors()
                .any(|p| p.as_os_str() == std::ffi::OsStr::new(l))
    });
    (!named).then(|| repo.to_path_buf())
}

fn key_json(k: &KeyInfo) -> Value {
    json!({
        "key_id": k.key_id.to_string(),
        "public_key": k.public_key.to_string(),
        "status": k.status,
        "created_at": format(k.created_at),
        "valid_from": format(k.valid_from),
        "valid_until": k.valid_until.map(format),
        "revoked_at": k.revoked_at.map(format),
        "revoke_reason": k.revoke_reason,
    })
}

fn status_word(k: &KeyInfo) -> &'static str {
    match k.status {
        keyseal_issuer::KeyStatus::Active => "active",
        keyseal_issuer::KeyStatus::Retired => "retired",
        keyseal_issuer::KeyStatus::Revoked => "revoked",
    }
}

pub(super) fn resolve_time(s: &str, flag: &str) -> Result<u64, CliError> {
    match s.parse::<When>() {
        Ok(When::Never) | Err(_) => Err(CliError::input(
            format!("{flag}: `{s}` is not a time"),
            "give a date, an RFC 3339 time or a duration",
        )),
        Ok(w) => Ok(w.resolve(env::now()?).unwrap_or(0)),
    }
}

pub(crate) async fn keys(dir: &Path, c: KeysCommand, json: bool) -> Result<ExitCode, CliError> {
    match c {
        KeysCommand::List => {
            with_vault(dir, Access::Read, async |v| {
                let org = super::org_of(v.store()).await?;
                let keys = v.store().org_keys(&org).await?;
                if json {
                    print_json(&Value::Array(keys.iter().map(key_json).collect()));
                } else {
                    println!(
                        "{:<16}  {:<7}  {:<20}  SIGNS UNTIL",
                        "KEY ID", "STATUS", "SIGNS FROM"
                    );
                    for k in &keys {
                        println!(
                            "{}  {:<7}  {:<20}  {}",
                            k.key_id,
                            status_word(k),
                            format(k.valid_from),
                            opt_time(k.valid_until)
                        );
                    }
                }
                Ok(ExitCode::SUCCESS)
            })
            .await
        }
        KeysCommand::Rotate => {
            let ctx = env::context()?;
            let kdf = env::kdf_override()?;
            with_vault(dir, Access::Write, async |v| {
                let pass = env::passphrase(false)?;
                let org = super::org_of(v.store()).await?;
                let (new, old) = v.rotate_org(&org, &pass, kdf, &ctx).await?;
                if json {
                    print_json(&json!({ "new": key_json(&new), "retired": old.as_ref().map(key_json) }));
                } else {
                    println!("new active signing key {}", new.key_id);
                    if let Some(o) = old {
                        println!(
                            "retired key {}: licenses it signed until {} stay valid",
                            o.key_id,
                            opt_time(o.valid_until)
                        );
                    }
                    println!("next: `keyseal keys export` and ship the new keyring before handing out new keys");
                }
                Ok(ExitCode::SUCCESS)
            })
            .await
        }
        KeysCommand::Retire { key, at } => {
            let ctx = env::context()?;
            let at = match at {
                Some(s) => resolve_time(&s, "--at")?,
                None => ctx.now,
            };
            with_vault(dir, Access::Write, async |v| {
                let org = super::org_of(v.store()).await?;
                let k = v.store().org_retire_key(&org, &key, at, &ctx).await?;
                if json {
                    print_json(&key_json(&k));
                } else {
                    println!(
                        "retired key {}: it signs nothing issued after {}",
                        k.key_id,
                        opt_time(k.valid_until)
                    );
                    if v.store().org_active_key(&org).await?.is_none() {
                        println!(
                            "the vault has no active key now: make one with `keyseal keys rotate`"
                        );
                    }
                    println!("next: `keyseal keys export` so apps see the key's end");
                }
                Ok(ExitCode::SUCCESS)
            })
            .await
        }
        KeysCommand::Revoke { key, reason } => {
            let ctx = env::context()?;
            with_vault(dir, Access::Write, async |v| {
                let org = super::org_of(v.store()).await?;
                let k = v.store().org_revoke_key(&org, &key, &reason, &ctx).await?;
                if json {
                    print_json(&key_json(&k));
                } else {
                    println!("revoked key {} ({reason})", k.key_id);
                    if v.store().org_active_key(&org).await?.is_none() {
                        println!("the vault has no active key now: make one with `keyseal keys rotate`");
                    }
                    println!("next: `keyseal revocations publish --out FILE` so apps reject everything it signed");
                }
                Ok(ExitCode::SUCCESS)
            })
            .await
        }
        KeysCommand::ExportSealed { key, out } => {
            with_vault(dir, Access::Read, async |v| {
                let org = super::org_of(v.store()).await?;
                let k = match key {
                    Some(k) => v.store().org_find_key(&org, &k).await?,
                    None => v
                        .store()
                        .org_active_key(&org)
                        .await?
                        .ok_or(keyseal_issuer::Error::Key(KeyError::NoActiveKey))?,
                };
                let (file, _) = v.sealed_key(k.key_id).await?;
                if out.exists() {
                    return Err(CliError::input(
                        format!("{} exists", out.display()),
                        "give a new file name (a key file is never overwritten)",
                    ));
                }
                file.write(&out)?;
                if json {
                    print_json(&json!({ "key": key_json(&k), "file": out.display().to_string() }));
                } else {
                    eprintln!(
                        "wrote signing key {} ({}), sealed under the vault's passphrase, to {}",
                        k.key_id,
                        status_word(&k),
                        out.display()
                    );
                }
                Ok(ExitCode::SUCCESS)
            })
            .await
        }
        KeysCommand::Export { format: f, out } => {
            with_vault(dir, Access::Read, async |v| {
                let org = super::org_of(v.store()).await?;
                let export = v.store().org_keyring(&org).await?;
                if !export.left_out.is_empty() {
                    eprintln!(
                        "warning: {} keys that are not revoked do not fit in one keyring and are left out \
                         (their licenses will not validate): {}; revoke the retired keys you no longer need",
                        export.left_out.len(),
                        export
                            .left_out
                            .iter()
                            .map(|k| k.key_id.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                }
                let text = match f {
                    ExportFormat::Text => export.text(),
                    ExportFormat::Rust => export.rust(),
                    ExportFormat::Json => export.json(),
                };
                match out {
                    Some(path) => {
                        std::fs::write(&path, text).map_err(|e| {
                            CliError::input(
                                format!("cannot write {}: {e}", path.display()),
                                "check the path and its permissions",
                            )
                        })?;
                        eprintln!(
                            "wrote the keyring ({} keys) to {}",
                            export.keys.len(),
                            path.display()
                        );
                    }
                    None => print!("{text}"),
                }
                Ok(ExitCode::SUCCESS)
            })
            .await
        }
    }
}

pub(crate) async fn products(
    dir: &Path,
    c: ProductsCommand,
    json: bool,
) -> Result<ExitCode, CliError> {
    match c {
        ProductsCommand::Add { name } => {
            let ctx = env::context()?;
            with_vault(dir, Access::Write, async |v| {
                let org = super::org_of(v.store()).await?;
                v.store()
                    .org_add_product(&org, &name, &name, None, &ctx)
                    .await?;
                if json {
                    print_json(&json!({ "product": name }));
                } else {
                    println!("registered product {name}");
                }
                Ok(ExitCode::SUCCESS)
            })
            .await
        }
        ProductsCommand::LeasePolicy {
            product,
            renew,
            grace,
        } => {
            let ctx = env::context()?;
            let policy = keyseal_issuer::LeasePolicy {
                lease_secs: renew,
                lease_grace_secs: grace,
            };
            with_vault(dir, Access::Write, async |v| {
                let org = super::org_of(v.store()).await?;
                v.store()
                    .org_set_lease_policy(&org, &product, policy, &ctx)
                    .await?
                    .ok_or_else(|| no_product(&product))?;
                if json {
                    print_json(&json!({ "product": product, "lease_secs": renew, "lease_grace_secs": grace }));
                } else {
                    println!("{product}: leases renew after {renew} s and hold {grace} s more when check-ins fail");
                }
                Ok(ExitCode::SUCCESS)
            })
            .await
        }
        ProductsCommand::TrialPolicy {
            product,
            disable,
            length,
            plan,
            entitlement,
            device_match,
        } => {
            let ctx = env::context()?;
            let policy = keyseal_issuer::trials::TrialPolicy {
                enabled: !disable,
                length_secs: length,
                plan,
                entitlements: entitlement,
                device_match,
            };
            with_vault(dir, Access::Write, async |v| {
                let org = super::org_of(v.store()).await?;
                let set = v
                    .store()
                    .org_set_trial_policy(&org, &product, &policy, &ctx)
                    .await?
                    .ok_or_else(|| no_product(&product))?;
                let p = &set.policy;
                if json {
                    print_json(&json!({
                        "product": product, "enabled": p.enabled, "length_secs": p.length_secs,
                        "plan": p.plan, "entitlements": p.entitlements, "device_match": p.device_match,
                        "org_id": org,
                    }));
                } else if p.enabled {
                    println!(
                        "{product}: one trial per device, {} s on plan {} (a device is an earlier one when {} of its fingerprint components match); apps ask POST /v1/public/trials with org_id {org}",
                        p.length_secs, p.plan, p.device_match
                    );
                } else {
                    println!("{product}: no trials");
                }
                Ok(ExitCode::SUCCESS)
            })
            .await
        }
        ProductsCommand::List => {
            with_vault(dir, Access::Read, async |v| {
                let org = super::org_of(v.store()).await?;
                let p = v.store().all_products(&org).await?;
                if json {
                    print_json(&json!(p));
                } else {
                    for name in p {
                        println!("{name}");
                    }
                }
                Ok(ExitCode::SUCCESS)
            })
            .await
        }
    }
}

fn no_product(product: &str) -> CliError {
    CliError::input(
        format!("no product `{product}` in this vault"),
        "see `keyseal products list`, or register it with `keyseal products add`",
    )
}

fn license_json(l: &LicenseRecord) -> Value {
    json!({
        "license_id": l.license_id.to_string(),
        "key_id": l.key_id.to_string(),
        "product": l.product,
        "customer": l.customer,
        "plan": l.plan,
        "issued_at": format(l.issued_at),
        "expires_at": l.expires_at.map(format),
        "license_key": l.license_key,
        "batch_id": l.batch_id,
        "batch_row": l.batch_row,
        "revoked_at": l.revoked.as_ref().map(|r| format(r.0)),
        "revoke_reason": l.revoked.as_ref().map(|r| r.1.clone()),
        "external_id": l.external_id,
    })
}

pub(crate) async fn licenses(
    dir: &Path,
    c: LicensesCommand,
    json: bool,
) -> Result<ExitCode, CliError> {
    with_vault(dir, Access::Read, async |v| {
        match c {
            LicensesCommand::List {
                product,
                customer,
                batch,
                external_id,
                limit,
            } => {
                let filter = LicenseFilter {
                    product,
                    customer,
                    batch_id: batch,
                    external_id,
                    limit,
                };
                let org = super::org_of(v.store()).await?;
                let list = v.store().licenses(&org, &filter).await?;
                if json {
                    print_json(&Value::Array(list.iter().map(license_json).collect()));
                } else {
                    println!(
                        "{:<32}  {:<20}  {:<16}  {:<12}  {:<20}  STATE",
                        "LICENSE ID", "PRODUCT", "CUSTOMER", "PLAN", "EXPIRES"
                    );
                    for l in &list {
                        println!(
                            "{}  {:<20}  {:<16}  {:<12}  {:<20}  {}",
                            l.license_id,
                            l.product,
                            l.customer,
                            l.plan,
                            opt_time(l.expires_at),
                            if l.revoked.is_some() {
                                "revoked"
                            } else {
                                "issued"
                            }
                        );
                    }
                }
            }
            LicensesCommand::Show { id } => {
                let org = super::org_of(v.store()).await?;
                let l = v.store().license(&org, &license_id_of(&id)?).await?;
                if json {
                    print_json(&license_json(&l));
                } else {
                    println!("license      {}", l.license_id);
                    println!("product      {}", l.product);
                    println!("customer     {}", l.customer);
                    println!("plan         {}", l.plan);
                    println!("issued       {}", format(l.issued_at));
                    println!(
                        "expires      {}",
                        l.expires_at.map_or_else(|| "never".into(), format)
                    );
                    println!("signing key  {}", l.key_id);
                    if let (Some(b), Some(r)) = (&l.batch_id, l.batch_row) {
                        println!("batch        {b} row {r}");
                    }
                    if let Some(x) = &l.external_id {
                        println!("external id  {x}");
                    }
                    if let Some((at, why)) = &l.revoked {
                        println!("revoked      {} ({why})", format(*at));
                    }
                    println!("key          {}", l.license_key);
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
    .await
}

/// A license named by its id, its key, or its license file.
pub(super) fn license_id_of(arg: &str) -> Result<String, CliError> {
    if arg.len() == 32 && arg.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(arg.to_owned());
    }
    let bytes = crate::show::read_license(arg)?.map_err(|why| {
        CliError::input(
            format!("`{arg}` is not a license id, key or file: {why}"),
            "pass the 32-hex-digit license id, the ks1. key, or the license file",
        )
    })?;
    let lic = keyseal_core::UnverifiedLicense::from_bytes(&bytes).map_err(|e| {
        CliError::input(
            format!("`{arg}` is not a license: {e}"),
            "pass the 32-hex-digit license id",
        )
    })?;
    Ok(lic.dangerous_unverified_claims().license_id.to_string())
}

pub(crate) async fn activate(
    dir: &Path,
    a: ActivateArgs,
    json: bool,
) -> Result<ExitCode, CliError> {
    use keyseal_issuer::seats::SeatRefused;
    let ctx = env::context()?;
    let request =
        keyseal_core::activation_code::ActivationRequest::from_code(&a.request).map_err(|e| {
            CliError::input(
                format!("not an activation request code: {e}"),
                "copy the whole KSREQ1. code the device shows, or scan its QR code",
            )
        })?;
    let out = with_vault(dir, Access::Write, async |v| {
        let org = super::org_of(v.store()).await?;
        let pass = env::passphrase(false)?;
        let signer = v.unlock_org(&org, &pass).await?;
        Ok(v.store()
            .lease_activate_offline(&org, &signer, &request, &ctx)
            .await?
            .or_stale()?)
    })
    .await?;
    let lease = out.map_err(|r| {
        let (what, hint) = match r {
            SeatRefused::UnknownLicense => (
                format!("license {} is not in this vault, or the request is not from its key", request.license_id),
                "check the --org and that the device has the license key this vault issued".to_owned(),
            ),
            SeatRefused::SeatLimit { seats, free_at } => (
                format!("all {seats} seats of license {} are held", request.license_id),
                format!("a seat frees at {free_at} (unix seconds) unless its device checks in; or raise the license's seats"),
            ),
            other => {
                let why = match other {
                    SeatRefused::Revoked => "is revoked".to_owned(),
                    SeatRefused::Suspended => "is suspended".to_owned(),
                    SeatRefused::Expired { expired_at } => format!("expired at {expired_at}"),
                    SeatRefused::NotYetValid { not_before } => {
                        format!("is not valid before {not_before}")
                    }
                    _ => "may not take a seat".to_owned(),
                };
                (
                    format!("license {} {why}", request.license_id),
                    format!("see `keyseal licenses show {}`", request.license_id),
                )
            }
        };
        CliError::input(what, hint)
    })?;
    let bytes = {
        let mut buf = [0u8; keyseal_core::lease::MAX_LEASE_LEN];
        keyseal_core::lease::decode_text(&lease.lease, &mut buf)
            .map_err(|e| {
                CliError::system(
                    format!("the signed lease does not decode: {e}"),
                    "report this",
                )
            })?
            .to_vec()
    };
    let code = keyseal_core::activation_code::response_code(&bytes);
    if json {
        print_json(&serde_json::json!({
            "response": code,
            "seat_id": lease.seat_id,
            "license_id": lease.license_id,
            "lease": lease.lease,
            "issued_at": lease.issued_at,
            "renew_at": lease.renew_at,
            "expires_at": lease.expires_at,
        }));
    } else {
        println!("{code}");
        eprintln!(
            "seat {} of license {}; the lease ends at {} (unix seconds): give the device the code above",
            lease.seat_id, lease.license_id, lease.expires_at
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn revoke(dir: &Path, a: RevokeArgs, json: bool) -> Result<ExitCode, CliError> {
    let ctx = env::context()?;
    let id = license_id_of(&a.license_id)?;
    with_vault(dir, Access::Write, async |v| {
        let org = super::org_of(v.store()).await?;
        let l = v.store().revoke_license(&org, &id, &a.reason, &ctx).await?;
        if json {
            print_json(&license_json(&l));
        } else {
            println!(
                "revoked license {} ({}, {} for {})",
                l.license_id, a.reason, l.product, l.customer
            );
            println!(
                "next: `keyseal revocations publish --out FILE` and ship the list to your apps"
            );
        }
        Ok(ExitCode::SUCCESS)
    })
    .await
}

/// The list file: armored, after the certificates of the keys a root
/// certified; or, with `binary`, the list's bytes alone.
async fn list_file(
    store: &keyseal_issuer::Store,
    org: &str,
    list: &keyseal_issuer::PublishedList,
    binary: bool,
) -> Result<Vec<u8>, CliError> {
    Ok(if binary {
        list.bytes.clone()
    } else {
        store.org_list_file(org, list).await?.into_bytes()
    })
}

fn write_list(path: &Path, data: Vec<u8>) -> Result<(), CliError> {
    std::fs::write(path, data).map_err(|e| {
        CliError::system(
            format!("cannot write {}: {e}", path.display()),
            "check the path and the disk",
        )
    })
}

pub(crate) async fn revocations(
    dir: &Path,
    c: RevocationsCommand,
    json: bool,
) -> Result<ExitCode, CliError> {
    match c {
        RevocationsCommand::Publish {
            out,
            next_update,
            binary,
        } => {
            let ctx = env::context()?;
            let next = resolve_time(&next_update, "--next-update")?;
            with_vault(dir, Access::Write, async |v| {
                let pass = env::passphrase(false)?;
                let org = super::org_of(v.store()).await?;
                let signer = v.unlock_org(&org, &pass).await?;
                let list = v.store().publish_revocations(&signer, next, &ctx).await?;
                let data = list_file(v.store(), &org, &list, binary).await?;
                write_list(&out, data).map_err(|mut e| {
                    e.hint = Some(format!(
                        "list {} IS recorded; write it again with `keyseal revocations export --sequence {} --out FILE`",
                        list.sequence, list.sequence
                    ));
                    e
                })?;
                if json {
                    print_json(&json!({
                        "sequence": list.sequence,
                        "licenses": list.license_count,
                        "keys": list.key_count,
                        "issued_at": format(list.issued_at),
                        "next_update": format(list.next_update),
                        "signer": list.signer.to_string(),
                        "out": out.display().to_string(),
                    }));
                } else {
                    println!(
                        "published revocation list #{}: {} revoked; stale after {}",
                        list.sequence,
                        crate::show::counted(list.license_count, "license", list.key_count, "key"),
                        format(list.next_update)
                    );
                    println!("wrote {}; publish again before it goes stale", out.display());
                }
                Ok(ExitCode::SUCCESS)
            })
            .await
        }
        RevocationsCommand::List => {
            with_vault(dir, Access::Read, async |v| {
                let org = super::org_of(v.store()).await?;
                let lists = v.store().org_published_lists(&org).await?;
                if json {
                    let arr = lists
                        .iter()
                        .map(|l| {
                            json!({
                                "sequence": l.sequence,
                                "issued_at": format(l.issued_at),
                                "next_update": format(l.next_update),
                                "signer": l.signer.to_string(),
                                "licenses": l.license_count,
                                "keys": l.key_count,
                            })
                        })
                        .collect();
                    print_json(&Value::Array(arr));
                } else {
                    println!(
                        "{:>5}  {:<20}  {:<20}  {:>8}  {:>4}  SIGNER",
                        "SEQ", "ISSUED", "NEXT UPDATE", "LICENSES", "KEYS"
                    );
                    for l in &lists {
                        println!(
                            "{:>5}  {:<20}  {:<20}  {:>8}  {:>4}  {}",
                            l.sequence,
                            format(l.issued_at),
                            format(l.next_update),
                            l.license_count,
                            l.key_count,
                            l.signer
                        );
                    }
                }
                Ok(ExitCode::SUCCESS)
            })
            .await
        }
        RevocationsCommand::Export {
            sequence,
            out,
            binary,
        } => {
            with_vault(dir, Access::Read, async |v| {
                let org = super::org_of(v.store()).await?;
                let lists = v.store().org_published_lists(&org).await?;
                let list = match sequence {
                    Some(n) => lists.iter().find(|l| l.sequence == n),
                    None => lists.first(),
                }
                .ok_or_else(|| {
                    CliError::input(
                        match sequence {
                            Some(n) => format!(
                                "no revocation list #{n} is kept (the ledger keeps the newest {})",
                                keyseal_issuer::KEPT_LISTS
                            ),
                            None => "no revocation list was published yet".into(),
                        },
                        "publish one with `keyseal revocations publish --out FILE`",
                    )
                })?;
                write_list(&out, list_file(v.store(), &org, list, binary).await?)?;
                if json {
                    print_json(
                        &json!({ "sequence": list.sequence, "out": out.display().to_string() }),
                    );
                } else {
                    println!(
                        "wrote revocation list #{} to {}",
                        list.sequence,
                        out.display()
                    );
                }
                Ok(ExitCode::SUCCESS)
            })
            .await
        }
    }
}

pub(crate) async fn audit(dir: &Path, a: AuditArgs, json: bool) -> Result<ExitCode, CliError> {
    with_vault(dir, Access::Read, async |v| match a.command.unwrap_or(AuditCommand::List { limit: None }) {
        AuditCommand::List { limit } => {
            let mut entries = v.store().audit_entries().await?;
            if let Some(n) = limit {
                let skip = entries.len().saturating_sub(n);
                entries.drain(..skip);
            }
            if json {
                let arr = entries
                    .iter()
                    .map(|e| {
                        json!({
                            "seq": e.seq,
                            "at": format(e.at),
                            "actor": e.actor,
                            "action": e.action,
                            "details": serde_json::from_str::<Value>(&e.details).unwrap_or(Value::String(e.details.clone())),
                            "prev_hash": e.prev_hash,
                            "hash": e.hash,
                        })
                    })
                    .collect();
                print_json(&Value::Array(arr));
            } else {
                println!("{:>5}  {:<20}  {:<12}  {:<20}  DETAILS", "SEQ", "AT", "ACTOR", "ACTION");
                for e in &entries {
                    let mut details = e.details.clone();
                    if details.len() > 160 {
                        details.truncate(157);
                        details.push_str("...");
                    }
                    println!("{:>5}  {:<20}  {:<12}  {:<20}  {details}", e.seq, format(e.at), e.actor, e.action);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Verify => match v.store().verify_audit().await? {
            Ok(n) => {
                let head = v.store().audit_head().await?.map(|h| h.1).unwrap_or_default();
                if json {
                    print_json(&json!({ "intact": true, "entries": n, "head": head }));
                } else {
                    println!("audit log intact: {n} entries, chain head {head}");
                }
                Ok(ExitCode::SUCCESS)
            }
            Err(b) => {
                if json {
                    print_json(&json!({ "intact": false, "broken_at": b.seq, "problem": b.problem }));
                } else {
                    println!("audit log BROKEN at entry {}: {}", b.seq, b.problem);
                    println!("  the ledger was changed outside keyseal: compare it with your backups");
                }
                Ok(ExitCode::from(exit::NEGATIVE))
            }
        },
    })
    .await
}

pub(crate) fn fingerprint(a: FingerprintArgs, json: bool) -> Result<ExitCode, CliError> {
    keyseal_issuer::request::check_product(&a.product)?;
    let mut fp = keyseal::Fingerprinter::new(a.product.clone()).os();
    if a.hardware {
        fp = fp.hardware();
    }
    let f = fp.fingerprint().map_err(|p| {
        CliError::system(
            format!("cannot fingerprint this machine: {p}"),
            "the OS exposes no machine id here (containers often lack /etc/machine-id); ask the vendor for an unbound license",
        )
    })?;
    let n = f.components().len();
    if json {
        print_json(&json!({ "product": a.product, "fingerprint": f.to_string(), "components": n }));
    } else {
        println!("{f}");
        eprintln!(
            "device fingerprint of this machine for {} ({n} component{}): send this line to the vendor",
            a.product,
            if n == 1 { "" } else { "s" }
        );
    }
    Ok(ExitCode::SUCCESS)
}
