//! Offline root keys: create, certify, keyring.

use std::path::Path;
use std::process::ExitCode;

use keyseal_issuer::{Access, KdfParams, time::format};
use serde_json::json;

use crate::cli::RootCommand;
use crate::commands::with_vault;
use crate::env;
use crate::error::CliError;
use crate::show::print_json;

pub(crate) async fn root(dir: &Path, c: RootCommand, json: bool) -> Result<ExitCode, CliError> {
    match c {
        RootCommand::Create { out } => {
            let kdf = env::kdf_override()?.unwrap_or(KdfParams::DEFAULT);
            let pass = env::root_passphrase(true)?;
            let pk = keyseal_issuer::root::create(&out, &pass, kdf)?;
            if json {
                print_json(&json!({
                    "root_key_id": pk.key_id().to_string(),
                    "public_key": pk.to_string(),
                    "out": out.display().to_string(),
                }));
            } else {
                println!("new root {} sealed in {}", pk.key_id(), out.display());
                println!(
                    "keep it offline with a backup; certify signing keys with `keyseal root certify --root {} KEY`",
                    out.display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        RootCommand::Certify {
            root,
            key,
            until,
            products,
        } => {
            let ctx = env::context()?;
            let until = until
                .map(|u| super::admin::resolve_time(&u, "--until"))
                .transpose()?;
            // Unsealed before the vault is opened: a wrong passphrase
            // changes nothing.
            let pass = env::root_passphrase(false)?;
            let root_key = keyseal_issuer::root::open(&root, &pass)?;
            // No vault lock: its one write is a ledger transaction under the
            // ledger's own writer lock (serialised with a running service's
            // writes, on SQLite as on PostgreSQL) and writes no file, so a
            // key rotated through the API is certified without stopping the
            // service.
            with_vault(dir, Access::Read, async |v| {
                let org = super::org_of(v.store()).await?;
                let cert = v
                    .store()
                    .org_certify_key(&org, &key, &root_key, until, &products, &ctx)
                    .await?;
                if json {
                    print_json(&json!({
                        "key_id": cert.key_id.to_string(),
                        "root_key_id": cert.root_key_id.to_string(),
                        "valid_from": format(cert.valid_from),
                        "valid_until": cert.valid_until.map(format),
                        "products": products,
                    }));
                } else {
                    println!(
                        "certified key {} with root {}: from {}{}",
                        cert.key_id,
                        cert.root_key_id,
                        format(cert.valid_from),
                        cert.valid_until
                            .map(|u| format!(" until {}", format(u)))
                            .unwrap_or_default()
                    );
                }
                Ok(ExitCode::SUCCESS)
            })
            .await
        }
        RootCommand::Keyring { root, out } => {
            let pk = keyseal_issuer::root::public_key(&root)?;
            let text = keyseal_issuer::root::keyring_text(&pk);
            match out {
                Some(path) => {
                    std::fs::write(&path, &text).map_err(|e| {
                        CliError::input(
                            format!("cannot write {}: {e}", path.display()),
                            "check the path and its permissions",
                        )
                    })?;
                    if json {
                        print_json(&json!({
                            "root_key_id": pk.key_id().to_string(),
                            "out": path.display().to_string(),
                        }));
                    } else {
                        eprintln!(
                            "wrote the keyring pinning root {} to {}",
                            pk.key_id(),
                            path.display()
                        );
                    }
                }
                None if json => print_json(&json!({
                    "root_key_id": pk.key_id().to_string(),
                    "keyring": text,
                })),
                None => print!("{text}"),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
