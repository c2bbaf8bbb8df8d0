//! `keyseal org` and `keyseal token`: the issuing service's organisations
//! and API tokens, on the vault's ledger or the service's PostgreSQL one.
//! The secrets and hashes are made exactly as the service makes them
//! (`keyseal_issuer::token`), and recorded through the issuer library.

use std::path::Path;
use std::process::ExitCode;

use keyseal_issuer::service::Scope;
use keyseal_issuer::token as auth;
use keyseal_issuer::{Access, Passphrase, Store, Vault};
use serde_json::json;

use crate::cli::{OrgCommand, TokenCommand, TokenScope};
use crate::commands::with_vault;
use crate::env;
use crate::error::CliError;
use crate::show::{opt_time, print_json};

/// `f` on the vault (its directory's ledger, or the PostgreSQL one of
/// `--database-url`) once the passphrase opened its default organisation's
/// active key.
async fn with_ledger<T, F>(dir: &Path, f: F) -> Result<T, CliError>
where
    F: AsyncFnOnce(&Vault, &Store, &Passphrase) -> Result<T, CliError>,
{
    with_vault(dir, Access::Write, async |vault| {
        let pass = env::passphrase(false)?;
        vault.unlock(&pass).await?;
        f(vault, vault.store(), &pass).await
    })
    .await
}

fn new_secret() -> Result<String, CliError> {
    auth::new_token().map_err(|e| {
        CliError::system(
            format!("the OS random generator failed: {e}"),
            "check the system's random generator",
        )
    })
}

pub(crate) async fn org(dir: &Path, c: OrgCommand, json: bool) -> Result<ExitCode, CliError> {
    match c {
        OrgCommand::Create { name } => {
            let ctx = env::context()?;
            with_ledger(dir, async |vault, store, pass| {
                let secret = new_secret()?;
                // Every organisation but the default one (made with the
                // vault) gets a key of its own, sealed in the ledger.
                let (key, sealed) = vault.seal_new_key(pass).await?;
                let (org_id, token_id) = store
                    .create_org(
                        &name,
                        &auth::token_hash(&secret),
                        &[Scope::Admin],
                        &sealed,
                        &ctx,
                    )
                    .await?;
                let key_id = key.key_id().to_string();
                // Its first revocation list, signed by its key, for its apps.
                store
                    .publish_revocations(
                        &keyseal_issuer::Signer::new(key),
                        ctx.now + keyseal_issuer::REVOCATION_LIST_LIFETIME,
                        &ctx,
                    )
                    .await?;
                if json {
                    print_json(&json!({ "org_id": org_id, "name": name, "token_id": token_id, "token": secret, "key_id": key_id, "default": false }));
                } else {
                    println!("organisation {org_id} ({name})");
                    println!("its own signing key {key_id} (sealed in the vault)");
                    println!("admin API token {token_id} (shown once; store it in your secret manager):");
                    println!("{secret}");
                }
                Ok(ExitCode::SUCCESS)
            })
            .await
        }
        OrgCommand::List => {
            with_ledger(dir, async |_, store, _| {
                let orgs = store.orgs().await?;
                if json {
                    print_json(&json!(orgs));
                } else if orgs.is_empty() {
                    println!(
                        "no organisations (the ledger is not initialised: run `keyseal init`)"
                    );
                } else {
                    println!("{:<20}  {:<20}  NAME", "ORG ID", "CREATED");
                    for o in orgs {
                        println!(
                            "{:<20}  {:<20}  {}",
                            o.org_id,
                            opt_time(Some(o.created_at)),
                            o.name
                        );
                    }
                }
                Ok(ExitCode::SUCCESS)
            })
            .await
        }
    }
}

pub(crate) async fn token(dir: &Path, c: TokenCommand, json: bool) -> Result<ExitCode, CliError> {
    match c {
        TokenCommand::Create { scopes, name } => {
            let ctx = env::context()?;
            let scopes: Vec<Scope> = scopes
                .iter()
                .map(|s| match s {
                    TokenScope::Admin => Scope::Admin,
                    TokenScope::Issue => Scope::Issue,
                    TokenScope::Read => Scope::Read,
                    TokenScope::ReadPii => Scope::ReadPii,
                })
                .collect();
            with_ledger(dir, async |_, store, _| {
                let org = super::org_of(store).await?;
                let secret = new_secret()?;
                let token_id = store
                    .add_token(&org, &auth::token_hash(&secret), &scopes, &name, &ctx)
                    .await?;
                let names: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
                if json {
                    print_json(&json!({ "org_id": org, "token_id": token_id, "name": name, "scopes": names, "token": secret }));
                } else {
                    println!(
                        "API token {token_id} for {org} ({}; shown once; store it in your secret manager):",
                        names.join(", ")
                    );
                    println!("{secret}");
                }
                Ok(ExitCode::SUCCESS)
            })
            .await
        }
    }
}
