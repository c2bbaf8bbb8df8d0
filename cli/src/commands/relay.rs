//! `keyseal allot` (the vendor's side) and `keyseal relay` (the relay's):
//! seats of a license leased on a LAN with no internet, under a signed
//! allotment (docs/FORMAT.md, "Seat allotment"; keyseal_server::relay).

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use keyseal_issuer::Access;
use keyseal_issuer::allotments::AllotRefused;
use keyseal_issuer::seats::SeatRefused;
use keyseal_server::relay::{self, Relay, RelayOptions};
use serde_json::json;

use crate::cli::{AllotArgs, RelayCommand, RelayServeArgs};
use crate::commands::admin::license_id_of;
use crate::commands::{org_of, with_vault};
use crate::env;
use crate::error::CliError;
use crate::show::print_json;

/// `keyseal allot`.
pub(crate) async fn allot(dir: &Path, a: AllotArgs, json: bool) -> Result<ExitCode, CliError> {
    let ctx = env::context()?;
    let id = license_id_of(&a.license_id)?;
    if let Some(relay) = &a.revoke_relay {
        let at = with_vault(dir, Access::Write, async |v| {
            let org = org_of(v.store()).await?;
            Ok(v.store().revoke_relay(&org, &id, relay, &ctx).await?)
        })
        .await?
        .ok_or_else(|| {
            CliError::input(
                format!("relay {relay} has no allotment of license {id}"),
                format!(
                    "see the relays in `keyseal allot` answers, or GET /v1/licenses/{id}/allotments"
                ),
            )
        })?;
        if json {
            print_json(&json!({ "license_id": id, "relay_key_id": relay, "revoked_at": at }));
        } else {
            eprintln!(
                "relay {relay} gets no further allotment of license {id}, and the next revocation list names its key: publish it (`keyseal revocations publish`) so apps refuse its leases"
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let (Some(relay_key), Some(seats)) = (a.relay_key.as_deref(), a.seats) else {
        return Err(CliError::input(
            "--relay-key and --seats are needed",
            "give the relay's kspub1. key and the seats to allot",
        ));
    };
    let out = match &a.out {
        Some(p) => Some(
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(p)
                .map_err(|e| {
                    CliError::input(
                        format!("cannot create {}: {e}", p.display()),
                        "name a new file (an existing one is never overwritten)",
                    )
                })?,
        ),
        None => None,
    };
    let secs = a.days.saturating_mul(86_400);
    let granted = with_vault(dir, Access::Write, async |v| {
        let org = org_of(v.store()).await?;
        let pass = env::passphrase(false)?;
        let signer = v.unlock_org(&org, &pass).await?;
        Ok(v.store()
            .allot_seats(&org, &signer, &id, relay_key, seats, secs, &ctx)
            .await?
            .or_stale()?)
    })
    .await;
    let granted = match granted {
        Ok(g) => g,
        Err(e) => {
            if let Some(p) = &a.out {
                let _ = std::fs::remove_file(p);
            }
            return Err(e);
        }
    };
    let allotment = granted.map_err(|r| {
        if let Some(p) = &a.out {
            let _ = std::fs::remove_file(p);
        }
        match r {
            AllotRefused::UnknownLicense => CliError::input(
                format!("license {id} is not in this vault"),
                "check the id and --org",
            ),
            AllotRefused::SeatLimit { seats, free } => CliError::input(
                format!("only {free} of license {id}'s {seats} seats are free for this relay"),
                "allot fewer seats, raise the license's seats, or wait for leases and other allotments to end",
            ),
            AllotRefused::RelayRevoked => CliError::input(
                format!("this relay key was revoked for license {id}"),
                "the relay makes a new key with `keyseal relay init` in a new directory",
            ),
            // Refusals of a relay's online renewal; a grant gets neither.
            r @ (AllotRefused::UnknownRelay | AllotRefused::BadProof(_)) => CliError::system(
                format!("the ledger refused the allotment: {r:?}"),
                "report this: a vendor's allotment is not a renewal",
            ),
            AllotRefused::License(r) => {
                let why = match r {
                    SeatRefused::Revoked => "is revoked".to_owned(),
                    SeatRefused::Suspended => "is suspended".to_owned(),
                    SeatRefused::Expired { expired_at } => format!("expired at {expired_at}"),
                    SeatRefused::NotYetValid { not_before } => {
                        format!("is not valid before {not_before}")
                    }
                    _ => "may not hold seats".to_owned(),
                };
                CliError::input(
                    format!("license {id} {why}"),
                    format!("see `keyseal licenses show {id}`"),
                )
            }
        }
    })?;
    if let (Some(mut f), Some(p)) = (out, &a.out) {
        writeln!(f, "{}", allotment.allotment)
            .and_then(|()| f.sync_all())
            .map_err(|e| {
                CliError::system(
                    format!("cannot write {}: {e}", p.display()),
                    "check the disk",
                )
            })?;
    }
    if json {
        print_json(&json!({
            "allotment": allotment.allotment,
            "license_id": allotment.license_id,
            "relay_key": allotment.relay_key,
            "relay_key_id": allotment.relay_key_id,
            "seats": allotment.seats,
            "issued_at": allotment.issued_at,
            "expires_at": allotment.expires_at,
            "out": a.out,
        }));
    } else {
        if a.out.is_none() {
            println!("{}", allotment.allotment);
        }
        eprintln!(
            "{} seats of license {} allotted to relay {} until {} (unix seconds): give the relay the allotment, and renew it before then",
            allotment.seats, allotment.license_id, allotment.relay_key_id, allotment.expires_at
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `keyseal relay`.
pub(crate) fn relay(c: RelayCommand, json: bool) -> Result<ExitCode, CliError> {
    match c {
        RelayCommand::Init(a) => {
            let key = relay::init(&a.dir).map_err(|e| {
                CliError::input(e.0, "give a new directory, or use the key already there")
            })?;
            if json {
                print_json(
                    &json!({ "relay_key": key.to_string(), "relay_key_id": key.key_id().to_string(), "dir": a.dir }),
                );
            } else {
                println!("{key}");
                eprintln!(
                    "relay key {} made in {}: send the kspub1. key above to the vendor for an allotment",
                    key.key_id(),
                    a.dir.display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        RelayCommand::Serve(a) => serve(a),
    }
}

fn serve(a: RelayServeArgs) -> Result<ExitCode, CliError> {
    super::serve::init_log(a.log_format)?;
    let keyring = std::fs::read_to_string(&a.keyring).map_err(|e| {
        CliError::input(
            format!("cannot read {}: {e}", a.keyring.display()),
            "give the vendor's keyring file (what apps embed)",
        )
    })?;
    let license = crate::show::read_license(&a.license)?.map_err(|why| {
        CliError::input(
            format!("`{}` is not a license key or file: {why}", a.license),
            "give the ks1. key or the license file whose seats the relay leases",
        )
    })?;
    let opts = RelayOptions {
        dir: a.dir,
        keyring,
        license_key: keyseal_core::license::to_text(&license),
        allotment: a.allotment,
        lease_secs: a.lease_secs,
        grace_secs: a.grace_secs,
        renew_from: a.renew_from.clone(),
        clock: Arc::new(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        }),
    };
    let relay = Relay::open(opts).map_err(|e| {
        CliError::input(
            e.0,
            "check the relay's directory, keyring, license and allotment files",
        )
    })?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            CliError::system(
                format!("cannot start the async runtime: {e}"),
                "check the system's limits",
            )
        })?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(a.listen).await.map_err(|e| {
            CliError::input(format!("cannot listen on {}: {e}", a.listen), "pick a free address with --listen")
        })?;
        let terms = relay.allotment().await;
        eprintln!(
            "keyseal relay: {} seats of license {} until {} (unix seconds), on http://{}",
            terms.seats,
            terms.license_id,
            terms.expires_at,
            listener.local_addr().map_or(a.listen, |l| l)
        );
        if a.renew_from.is_some() {
            tokio::spawn(relay::keep_renewed(
                Arc::clone(&relay),
                std::time::Duration::from_secs(relay::RENEW_CHECK_SECS),
            ));
        }
        relay::serve(&relay, listener, async {
                let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .ok();
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    () = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
                }
            })
            .await
            .map_err(|e| CliError::system(format!("the relay stopped: {e}"), "see the log"))
    })?;
    Ok(ExitCode::SUCCESS)
}
