//! `keyseal serve`: the issuing service on this vault.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use keyseal_server::{Options, Service};

use crate::cli::{LogFormat, ServeArgs};
use crate::env;
use crate::error::CliError;

/// Opens (or initialises) the vault, prints the one-time admin token on
/// first start, and serves until SIGINT or SIGTERM.
pub(crate) fn serve(vault: &Path, a: ServeArgs) -> Result<ExitCode, CliError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            CliError::system(
                format!("cannot start the async runtime: {e}"),
                "check the system's thread and file limits",
            )
        })?;
    rt.block_on(run(vault, a))
}

/// The service's log on stderr, as `--log-format` says, filtered by
/// `KEYSEAL_LOG` (default `info`).
pub(crate) fn init_log(format: LogFormat) -> Result<(), CliError> {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("KEYSEAL_LOG").or_else(|e| {
        if std::env::var_os("KEYSEAL_LOG").is_some() {
            Err(CliError::input(
                format!("KEYSEAL_LOG: {e}"),
                "give a level (error, warn, info, debug) or tracing's directives, such as keyseal::access=warn",
            ))
        } else {
            Ok(tracing_subscriber::EnvFilter::new("info"))
        }
    })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().with_current_span(true).try_init(),
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
    };
    Ok(())
}

async fn run(vault: &Path, a: ServeArgs) -> Result<ExitCode, CliError> {
    init_log(a.log_format)?;
    // Fail on a bad clock now rather than on the first request.
    env::now()?;
    // Before anything is created: a token file that exists would lose the
    // one-time token.
    if let Some(p) = &a.admin_token_file
        && p.exists()
    {
        return Err(CliError::input(
            format!("--admin-token-file {} already exists", p.display()),
            "name a new file: it is never overwritten",
        ));
    }
    let smtp_roots = match &a.smtp_ca_file {
        None => Vec::new(),
        Some(p) => {
            let pem = std::fs::read(p).map_err(|e| {
                CliError::input(
                    format!("cannot read --smtp-ca-file {}: {e}", p.display()),
                    "give a readable PEM file of CA certificates",
                )
            })?;
            keyseal_server::smtp_roots(&pem).map_err(|e| {
                CliError::input(
                    format!("--smtp-ca-file {}: {e}", p.display()),
                    "give the PEM file of the CA that signed your SMTP server's certificate",
                )
            })?
        }
    };
    let opts = Options {
        vault_dir: vault.to_path_buf(),
        database_url: env::database_url().map(str::to_owned),
        auth_failures_per_minute: Some(a.auth_failures_per_minute),
        drain_timeout: None,
        list_refresh: Some(a.list_refresh),
        webhooks: keyseal_server::WebhookOptions {
            private_networks: a.webhooks_to_private_networks,
            timeout: a.webhook_timeout,
            deliver: !a.no_delivery,
            smtp_roots,
            ..Default::default()
        },
        network: keyseal_server::Network {
            header_timeout: a.header_timeout,
            body_timeout: a.body_timeout,
            max_connections: a.max_connections.map(|n| n as usize),
            trusted_proxies: a.trusted_proxies.clone(),
            public_requests_per_second: a.public_requests_per_second,
            public_list_bytes_per_second: a.public_list_mib_per_second.saturating_mul(1 << 20),
            lease_requests_per_license_per_minute: a.lease_requests_per_license_per_minute,
            trial_requests_per_client_per_minute: a.trial_requests_per_client_per_minute,
        },
        passphrase: env::passphrase(!vault.join(keyseal_issuer::vault::LEDGER_FILE).exists())?,
        kdf: env::kdf_override()?,
        clock: Arc::new(|| env::now().unwrap_or(0)),
    };
    let mut service = Service::open(opts).await.map_err(server_error)?;
    let listener = tokio::net::TcpListener::bind(a.listen).await.map_err(|e| {
        CliError::system(
            format!("cannot listen on {}: {e}", a.listen),
            "choose another --listen address or stop what uses it",
        )
    })?;
    let addr = listener.local_addr().map_err(|e| {
        CliError::system(format!("cannot read the listening address: {e}"), "retry")
    })?;
    if let Some(token) = service.take_admin_token() {
        match &a.admin_token_file {
            Some(path) => match write_secret(path, &token) {
                Ok(()) => eprintln!(
                    "keyseal serve: wrote the one-time admin API token to {} (mode 0600)",
                    path.display()
                ),
                // The token exists now and is never shown again: print it
                // rather than lose it.
                Err(e) => {
                    e.report(false);
                    println!(
                        "admin API token (shown once; store it in your secret manager):\n{token}"
                    );
                }
            },
            None => {
                println!("admin API token (shown once; store it in your secret manager):\n{token}");
            }
        }
    }
    eprintln!(
        "keyseal serve: listening on http://{addr} (vault {})",
        vault.display()
    );
    service
        .serve(listener, shutdown_signal())
        .await
        .map_err(server_error)?;
    eprintln!("keyseal serve: stopped");
    Ok(ExitCode::SUCCESS)
}

/// Writes `secret` to a new file readable by its owner alone (never over
/// an existing file).
fn write_secret(path: &Path, secret: &str) -> Result<(), CliError> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let mut f = o.open(path).map_err(|e| {
        CliError::system(
            format!("cannot create {}: {e}", path.display()),
            "give --admin-token-file a new file in a directory you can write; it is never overwritten",
        )
    })?;
    f.write_all(format!("{secret}\n").as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| {
            CliError::system(
                format!("cannot write {}: {e}", path.display()),
                "check the disk, then start again with a new --admin-token-file",
            )
        })
}

fn server_error(e: keyseal_server::Error) -> CliError {
    match e {
        keyseal_server::Error::Issuer(e) => e.into(),
        keyseal_server::Error::SmtpRoots(e) => CliError::input(
            e,
            "give --smtp-ca-file the PEM file of the CA that signed your SMTP server's certificate",
        ),
        other => CliError::system(
            other.to_string(),
            "check the system's network and random generator",
        ),
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
