//! `keyseal webhooks`: the organisation's webhook endpoints, on the vault's
//! ledger or the service's PostgreSQL one, through the same issuer calls
//! as `/v1/webhooks` (the running service delivers).

use std::path::Path;
use std::process::ExitCode;

use keyseal_issuer::store::{EndpointPatch, Replay};
use keyseal_issuer::webhooks::{self as hooks, Endpoint};
use keyseal_issuer::{Access, Store};
use serde_json::json;

use crate::cli::WebhooksCommand;
use crate::commands::with_vault;
use crate::env;
use crate::error::CliError;
use crate::show::{opt_time, print_json};

/// `f` on the ledger with its sealed secrets opened (the passphrase).
pub(super) async fn with_secrets<T, F>(dir: &Path, f: F) -> Result<T, CliError>
where
    F: AsyncFnOnce(&Store, &str) -> Result<T, CliError>,
{
    with_vault(dir, Access::Write, async |vault| {
        let pass = env::passphrase(false)?;
        vault.unlock(&pass).await?;
        let store = vault.store();
        store
            .unlock_personal_data(&pass, vault.kdf_params().await?)
            .await?;
        let org = super::org_of(store).await?;
        f(store, &org).await
    })
    .await
}

fn not_found(id: &str) -> CliError {
    CliError::input(
        format!("no webhook endpoint {id} in this organisation"),
        "list them with `keyseal webhooks list`",
    )
}

fn print_endpoint(e: &Endpoint) {
    println!("endpoint {} -> {}", e.endpoint_id, e.url);
    if !e.description.is_empty() {
        println!("  description: {}", e.description);
    }
    println!(
        "  events: {}",
        if e.events.is_empty() {
            "all".to_owned()
        } else {
            e.events.join(", ")
        }
    );
    match (&e.disabled_at, &e.disabled_reason) {
        (Some(t), reason) => println!(
            "  DISABLED since {} ({})",
            opt_time(Some(*t)),
            reason.as_deref().unwrap_or("")
        ),
        (None, _) => println!("  enabled; {} deliveries pending", e.pending),
    }
}

async fn set_enabled(
    dir: &Path,
    id: &str,
    enabled: bool,
    json: bool,
) -> Result<ExitCode, CliError> {
    let ctx = env::context()?;
    with_secrets(dir, async |store, org| {
        let patch = EndpointPatch {
            enabled: Some(enabled),
            ..EndpointPatch::default()
        };
        let e = store
            .update_webhook(org, id, &patch, &ctx)
            .await?
            .ok_or_else(|| not_found(id))?;
        if json {
            print_json(&json!(e));
        } else {
            print_endpoint(&e);
        }
        Ok(ExitCode::SUCCESS)
    })
    .await
}

pub(crate) async fn webhooks(
    dir: &Path,
    c: WebhooksCommand,
    json: bool,
) -> Result<ExitCode, CliError> {
    match c {
        WebhooksCommand::Add {
            url,
            events,
            description,
        } => {
            let ctx = env::context()?;
            let secret = hooks::new_secret().map_err(|e| {
                CliError::system(e.to_string(), "check the system's random generator")
            })?;
            with_secrets(dir, async |store, org| {
                let e = store
                    .create_webhook(org, &url, &description, &events, &secret, &ctx)
                    .await?;
                if json {
                    print_json(&json!(e));
                } else {
                    print_endpoint(&e);
                    println!(
                        "its signing secret: `keyseal webhooks secret {}`",
                        e.endpoint_id
                    );
                }
                Ok(ExitCode::SUCCESS)
            })
            .await
        }
        WebhooksCommand::List => {
            with_secrets(dir, async |store, org| {
                let mut all = Vec::new();
                let mut after: Option<String> = None;
                loop {
                    let page = store.org_webhooks(org, after.as_deref(), 500).await?;
                    let full = page.len() == 500;
                    after = page.last().map(|e| e.endpoint_id.clone());
                    all.extend(page);
                    if !full {
                        break;
                    }
                }
                if json {
                    print_json(&json!(all));
                } else if all.is_empty() {
                    println!("no webhook endpoints (add one with `keyseal webhooks add URL`)");
                } else {
                    for e in &all {
                        print_endpoint(e);
                    }
                }
                Ok(ExitCode::SUCCESS)
            })
            .await
        }
        WebhooksCommand::Show { id, deliveries } => {
            with_secrets(dir, async |store, org| {
                let e = store
                    .org_webhook(org, &id)
                    .await?
                    .ok_or_else(|| not_found(&id))?;
                let d = store
                    .webhook_deliveries(org, &id, None, None, deliveries.clamp(1, 500))
                    .await?
                    .unwrap_or_default();
                if json {
                    print_json(&json!({ "endpoint": e, "deliveries": d }));
                } else {
                    print_endpoint(&e);
                    for x in &d {
                        println!(
                            "  {}  {:<9}  {:<26}  {}  attempts {}{}",
                            x.delivery_id,
                            x.status,
                            x.event_type,
                            opt_time(Some(x.created_at)),
                            x.attempts,
                            x.last_error
                                .as_deref()
                                .map(|e| format!(" (last: {e})"))
                                .unwrap_or_default()
                        );
                    }
                }
                Ok(ExitCode::SUCCESS)
            })
            .await
        }
        WebhooksCommand::Secret { id } => {
            with_secrets(dir, async |store, org| {
                let s = store
                    .webhook_secret(org, &id)
                    .await?
                    .ok_or_else(|| not_found(&id))?;
                if json {
                    print_json(&json!({ "endpoint_id": id, "secret": s.as_str() }));
                } else {
                    println!("{}", s.as_str());
                }
                Ok(ExitCode::SUCCESS)
            })
            .await
        }
        WebhooksCommand::RotateSecret { id } => {
            let ctx = env::context()?;
            let secret = hooks::new_secret().map_err(|e| {
                CliError::system(e.to_string(), "check the system's random generator")
            })?;
            with_secrets(dir, async |store, org| {
                let e = store
                    .rotate_webhook_secret(org, &id, &secret, &ctx)
                    .await?
                    .ok_or_else(|| not_found(&id))?;
                if json {
                    print_json(&json!(e));
                } else {
                    println!(
                        "endpoint {id} has a new secret (`keyseal webhooks secret {id}`); the old one also signs for a day"
                    );
                }
                Ok(ExitCode::SUCCESS)
            })
            .await
        }
        WebhooksCommand::Enable { id } => set_enabled(dir, &id, true, json).await,
        WebhooksCommand::Disable { id } => set_enabled(dir, &id, false, json).await,
        WebhooksCommand::Remove { id } => {
            let ctx = env::context()?;
            with_secrets(dir, async |store, org| {
                if !store.delete_webhook(org, &id, &ctx).await? {
                    return Err(not_found(&id));
                }
                if json {
                    print_json(&json!({ "endpoint_id": id, "deleted": true }));
                } else {
                    println!("endpoint {id} deleted, with its deliveries");
                }
                Ok(ExitCode::SUCCESS)
            })
            .await
        }
        WebhooksCommand::Replay { id, event, since } => {
            let ctx = env::context()?;
            let what = match (event, since) {
                (Some(e), _) => Replay::Event(e),
                (None, Some(t)) => Replay::Since(t),
                (None, None) => {
                    return Err(CliError::input(
                        "give --event or --since",
                        "see `keyseal webhooks replay --help`",
                    ));
                }
            };
            with_secrets(dir, async |store, org| {
                let n = store
                    .replay_webhook(org, &id, &what, &ctx)
                    .await?
                    .ok_or_else(|| not_found(&id))?;
                if json {
                    print_json(&json!({ "endpoint_id": id, "queued": n }));
                } else {
                    println!("{n} deliveries queued for {id}");
                }
                Ok(ExitCode::SUCCESS)
            })
            .await
        }
    }
}
