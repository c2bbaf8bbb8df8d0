//! `keyseal payments`: the Stripe secret, price mappings, payment events
//! and SMTP settings, on the vault's ledger or the service's PostgreSQL
//! one, through the same issuer calls as `/v1/payments` (the running
//! service takes the events and sends the emails).

use std::io::Read as _;
use std::path::Path;
use std::process::ExitCode;

use keyseal_issuer::email::{Security, Settings};
use keyseal_issuer::payments::{Ending, PriceMapping};
use serde_json::json;
use zeroize::Zeroizing;

use super::webhooks::with_secrets;
use crate::cli::{PaymentsCommand, PriceCommand};
use crate::env;
use crate::error::CliError;
use crate::show::{opt_time, print_json};

/// A secret from a file, or standard input: trimmed, never echoed.
fn read_secret(file: Option<&Path>, what: &str) -> Result<Zeroizing<String>, CliError> {
    let mut s = Zeroizing::new(String::new());
    let read = match file {
        Some(p) => std::fs::File::open(p).and_then(|mut f| f.read_to_string(&mut s)),
        None => std::io::stdin().read_to_string(&mut s),
    };
    read.map_err(|e| {
        CliError::input(
            format!("cannot read the {what}: {e}"),
            "give a readable file, or pipe the secret in",
        )
    })?;
    Ok(Zeroizing::new(s.trim().to_owned()))
}

fn ending(s: &str) -> Ending {
    Ending::parse(s).unwrap_or(Ending::Revoke)
}

pub(crate) async fn payments(
    dir: &Path,
    c: PaymentsCommand,
    json: bool,
) -> Result<ExitCode, CliError> {
    match c {
        PaymentsCommand::StripeSecret { secret_file } => {
            let ctx = env::context()?;
            let secret = read_secret(secret_file.as_deref(), "Stripe secret")?;
            with_secrets(dir, async |store, org| {
                store.set_stripe_secret(org, &secret, &ctx).await?;
                let path = format!("/v1/public/orgs/{org}/payments/stripe");
                if json {
                    print_json(&json!({ "org_id": org, "endpoint": path }));
                } else {
                    println!(
                        "Stripe secret set for {org}; Stripe posts to https://YOUR-SERVICE{path}"
                    );
                }
                Ok(ExitCode::SUCCESS)
            })
            .await
        }
        PaymentsCommand::Price(PriceCommand::Set {
            price_id,
            product,
            plan,
            duration,
            seats,
            entitlements,
            on_refund,
            on_cancel,
            no_email,
        }) => {
            let ctx = env::context()?;
            let m = PriceMapping {
                price_id,
                product,
                plan,
                entitlements,
                duration_secs: duration,
                seats,
                on_refund: ending(&on_refund),
                on_cancel: ending(&on_cancel),
                email: !no_email,
                updated_at: 0,
            };
            with_secrets(dir, async |store, org| {
                let m = store.set_price(org, &m, &ctx).await?;
                if json {
                    print_json(&json!(m));
                } else {
                    print_price(&m);
                }
                Ok(ExitCode::SUCCESS)
            })
            .await
        }
        PaymentsCommand::Price(PriceCommand::List) => {
            with_secrets(dir, async |store, org| {
                let all = store.prices(org).await?;
                if json {
                    print_json(&json!(all));
                } else if all.is_empty() {
                    println!(
                        "no price mappings (add one with `keyseal payments price set PRICE_ID ...`)"
                    );
                } else {
                    all.iter().for_each(print_price);
                }
                Ok(ExitCode::SUCCESS)
            })
            .await
        }
        PaymentsCommand::Price(PriceCommand::Remove { price_id }) => {
            let ctx = env::context()?;
            with_secrets(dir, async |store, org| {
                if !store.delete_price(org, &price_id, &ctx).await? {
                    return Err(CliError::input(
                        format!("no price mapping {price_id}"),
                        "list them with `keyseal payments price list`",
                    ));
                }
                if json {
                    print_json(&json!({ "price_id": price_id, "deleted": true }));
                } else {
                    println!("price mapping {price_id} removed");
                }
                Ok(ExitCode::SUCCESS)
            })
            .await
        }
        PaymentsCommand::Events { limit } => {
            with_secrets(dir, async |store, org| {
                let events = store.payment_events(org, limit.clamp(1, 500)).await?;
                if json {
                    print_json(&json!(events));
                } else if events.is_empty() {
                    println!("no payment events yet");
                } else {
                    for e in &events {
                        println!(
                            "{}  {:<34}  {:<8}  {}  {}",
                            opt_time(Some(e.received_at)),
                            e.event_type,
                            e.outcome,
                            e.event_id,
                            e.detail
                        );
                    }
                }
                Ok(ExitCode::SUCCESS)
            })
            .await
        }
        PaymentsCommand::Email {
            host,
            port,
            security,
            username,
            password_file,
            from,
            reply_to,
        } => {
            let ctx = env::context()?;
            let password = password_file
                .as_deref()
                .map(|p| read_secret(Some(p), "SMTP password"))
                .transpose()?;
            let settings = Settings {
                host,
                port,
                security: Security::parse(&security).unwrap_or(Security::Starttls),
                username,
                from,
                reply_to,
                updated_at: 0,
            };
            with_secrets(dir, async |store, org| {
                store
                    .set_email_settings(
                        org,
                        &settings,
                        password.as_deref().map(String::as_str),
                        &ctx,
                    )
                    .await?;
                if json {
                    print_json(&json!(settings));
                } else {
                    println!(
                        "license keys are emailed from {} through {}:{} ({})",
                        settings.from,
                        settings.host,
                        settings.port,
                        settings.security.as_str()
                    );
                }
                Ok(ExitCode::SUCCESS)
            })
            .await
        }
    }
}

fn print_price(m: &PriceMapping) {
    println!(
        "{} -> {} {} for {}, {} seat(s){}; refund: {}, subscription end: {}{}",
        m.price_id,
        m.product,
        m.plan,
        keyseal_issuer::time::format_duration(m.duration_secs),
        m.seats,
        if m.entitlements.is_empty() {
            String::new()
        } else {
            format!(", entitlements {}", m.entitlements.join(", "))
        },
        m.on_refund.as_str(),
        m.on_cancel.as_str(),
        if m.email { "; key emailed" } else { "" }
    );
}
