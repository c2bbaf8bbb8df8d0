//! One function per command. Each returns the exit code or a [`CliError`].

use std::future::Future;
use std::path::Path;
use std::process::ExitCode;

use keyseal_issuer::{Access, Vault};
use keyseal_issuer::{LedgerError, RequestError};

use crate::cli::{Cli, Command};
use crate::error::CliError;

mod admin;
mod issue;
mod payments;
mod relay;
mod root;
mod serve;
mod tenants;
mod verify;
mod webhooks;

/// Runs the parsed command line.
pub(crate) fn run(cli: Cli) -> Result<ExitCode, CliError> {
    let vault = cli.vault.as_path();
    let json = cli.json;
    match cli.command {
        Command::Init(a) => block_on(admin::init(vault, a, json)),
        Command::Issue(a) => block_on(issue::issue(vault, a, json)),
        Command::Verify(a) => block_on(verify::verify(vault, a, json)),
        Command::Inspect(a) => verify::inspect(a, json),
        Command::Keys(c) => block_on(admin::keys(vault, c, json)),
        Command::Products(c) => block_on(admin::products(vault, c, json)),
        Command::Licenses(c) => block_on(admin::licenses(vault, c, json)),
        Command::Activate(a) => block_on(admin::activate(vault, a, json)),
        Command::Allot(a) => block_on(relay::allot(vault, a, json)),
        Command::Relay(c) => relay::relay(c, json),
        Command::Revoke(a) => block_on(admin::revoke(vault, a, json)),
        Command::Revocations(c) => block_on(admin::revocations(vault, c, json)),
        Command::Audit(a) => block_on(admin::audit(vault, a, json)),
        Command::Fingerprint(a) => admin::fingerprint(a, json),
        Command::Serve(a) => serve::serve(vault, a),
        Command::Org(c) => block_on(tenants::org(vault, c, json)),
        Command::Webhooks(c) => block_on(webhooks::webhooks(vault, c, json)),
        Command::Payments(c) => block_on(payments::payments(vault, c, json)),
        Command::Root(c) => block_on(root::root(vault, c, json)),
        Command::Token(c) => block_on(tenants::token(vault, c, json)),
        Command::Completions(a) => {
            use clap::CommandFactory;
            // Into memory first: clap_complete panics on a failed write.
            let mut script = Vec::new();
            clap_complete::generate(a.shell, &mut Cli::command(), "keyseal", &mut script);
            crate::out::write_bytes(&script);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The issuer is async (sqlx); one command runs on one current-thread runtime.
fn block_on<F: Future<Output = Result<ExitCode, CliError>>>(f: F) -> Result<ExitCode, CliError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            CliError::system(
                format!("cannot start the async runtime: {e}"),
                "check the system's thread and file limits",
            )
        })?;
    rt.block_on(f)
}

/// The organisation a ledger command acts on: `--org` (which must exist)
/// or the ledger's default one.
async fn org_of(store: &keyseal_issuer::Store) -> Result<String, CliError> {
    match crate::env::org() {
        Some(org) => {
            if store.org_exists(org).await? {
                Ok(org.to_owned())
            } else {
                Err(keyseal_issuer::Error::Request(RequestError::UnknownOrg(org.to_owned())).into())
            }
        }
        None => store.default_org().await?.ok_or_else(|| {
            keyseal_issuer::Error::Ledger(LedgerError::Corrupt {
                detail: "it has no default organisation (was its creation interrupted?)".into(),
            })
            .into()
        }),
    }
}

/// Opens the vault: the PostgreSQL ledger given by `--database-url` (the
/// vault directory's key files imported if it has any), or the directory's.
async fn open_vault(dir: &Path, access: Access) -> Result<Vault, CliError> {
    Ok(match crate::env::database_url() {
        Some(url) => {
            let keys = dir.join(keyseal_issuer::vault::KEYS_DIR).is_dir();
            Vault::connect(url, keys.then_some(dir)).await?
        }
        None => Vault::open(dir, access).await?,
    })
}

/// Opens the vault and runs `f`, closing the ledger cleanly either way.
async fn with_vault<T, F>(dir: &Path, access: Access, f: F) -> Result<T, CliError>
where
    F: AsyncFnOnce(&Vault) -> Result<T, CliError>,
{
    let vault = open_vault(dir, access).await?;
    let out = f(&vault).await;
    vault.close().await;
    out
}
