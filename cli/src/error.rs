//! The CLI's error: what went wrong, what to do next, and the exit code.

use std::fmt;
use std::process::ExitCode;

use keyseal_issuer::Error as IssuerError;
use keyseal_issuer::{KeyError, LedgerError, RequestError, VaultError};

/// Exit codes (documented in `keyseal --help`).
pub(crate) mod exit {
    /// `verify`: invalid license; `audit verify`: broken chain.
    pub const NEGATIVE: u8 = 1;
    /// Usage error (clap's own code).
    pub const USAGE: u8 = 2;
    /// Wrong passphrase.
    pub const PASSPHRASE: u8 = 3;
    /// The vault is locked by another process.
    pub const LOCKED: u8 = 4;
    /// Input refused.
    pub const INPUT: u8 = 5;
    /// Vault or system error.
    pub const SYSTEM: u8 = 6;
}

/// An error as the user sees it.
#[derive(Debug)]
pub(crate) struct CliError {
    /// A stable slug for `--json` output.
    pub kind: &'static str,
    /// What went wrong.
    pub what: String,
    /// What to do next.
    pub hint: Option<String>,
    /// The process exit code.
    pub code: u8,
    /// What the command did before it failed (a batch's summary), for the
    /// `--json` document.
    pub done: Option<serde_json::Value>,
}

impl CliError {
    pub(crate) fn new(
        kind: &'static str,
        code: u8,
        what: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        CliError {
            kind,
            what: what.into(),
            hint: Some(hint.into()),
            code,
            done: None,
        }
    }

    /// An input error.
    pub(crate) fn input(what: impl Into<String>, hint: impl Into<String>) -> Self {
        Self::new("invalid_input", exit::INPUT, what, hint)
    }

    /// A system error.
    pub(crate) fn system(what: impl Into<String>, hint: impl Into<String>) -> Self {
        Self::new("system", exit::SYSTEM, what, hint)
    }

    pub(crate) fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.code)
    }

    /// Prints the error to stderr (and, with `--json`, as JSON to stdout).
    pub(crate) fn report(&self, json: bool) {
        eprintln!("error: {}", self.what);
        if let Some(h) = &self.hint {
            eprintln!("  hint: {h}");
        }
        if json {
            self.report_json();
        }
    }

    /// The error as the one JSON document on stdout: `{"error": {...}}`,
    /// with what the command did before it failed (`done`), if anything.
    pub(crate) fn report_json(&self) {
        let mut v = serde_json::json!({ "error": { "kind": self.kind, "message": self.what, "hint": self.hint, "exit_code": self.code } });
        if let Some(d) = &self.done {
            v["done"] = d.clone();
        }
        println!("{v}");
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.what)
    }
}

/// The flag a request field is set with.
pub(crate) fn flag_of(field: &str) -> String {
    match field {
        "entitlements" => "--entitlement".into(),
        "not_before" | "device_match" | "max_version" => format!("--{}", field.replace('_', "-")),
        "product" | "customer" | "plan" | "expires" | "grace" | "device" | "ext" | "reason"
        | "next-update" => {
            format!("--{field}")
        }
        other => other.into(),
    }
}

/// With the full error chain, the way `{:#}` would show it.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

/// A key file's error, as the issuer's.
impl From<keyseal_issuer::keyfile::Error> for CliError {
    fn from(e: keyseal_issuer::keyfile::Error) -> Self {
        IssuerError::from(e).into()
    }
}

impl From<IssuerError> for CliError {
    fn from(e: IssuerError) -> Self {
        use IssuerError as E;
        use keyseal_issuer::keyfile::Error as K;
        let what = chain(&e);
        match &e {
            E::Vault(VaultError::NoVault { dir }) => CliError::new(
                "no_vault",
                exit::SYSTEM,
                what,
                format!(
                    "create one with `keyseal --vault {} init --product NAME`, or point --vault (or KEYSEAL_VAULT) at your vault",
                    dir.display()
                ),
            ),
            E::Vault(VaultError::VaultExists { dir }) => CliError::new(
                "vault_exists",
                exit::INPUT,
                what,
                format!(
                    "pick another directory for the new vault, or use the existing one with --vault {}",
                    dir.display()
                ),
            ),
            E::Vault(VaultError::Locked { .. }) => CliError::new(
                "locked",
                exit::LOCKED,
                what,
                "another keyseal command is changing this vault: wait for it to finish, then run this again \
                 (the lock goes away when that process exits)",
            ),
            E::KeyFile(K::WrongPassphrase { key_id }) => CliError::new(
                "wrong_passphrase",
                exit::PASSPHRASE,
                what,
                format!(
                    "type the vault's passphrase again (or fix KEYSEAL_PASSPHRASE); if it is right, the sealed \
                     key {key_id} was altered: restore the vault from a backup"
                ),
            ),
            E::KeyFile(K::BadPassphrase(_)) => CliError::new(
                "bad_passphrase",
                exit::INPUT,
                what,
                "choose a non-empty passphrase",
            ),
            E::KeyFile(K::CorruptKeyFile { .. }) => CliError::new(
                "corrupt_key_file",
                exit::SYSTEM,
                what,
                "restore the vault directory from a backup; nothing was changed",
            ),
            E::Ledger(LedgerError::Corrupt { .. }) => CliError::new(
                "corrupt_ledger",
                exit::SYSTEM,
                what,
                "restore the vault directory from a backup; nothing was changed",
            ),
            E::Ledger(LedgerError::DiskFull { .. }) => CliError::new(
                "disk_full",
                exit::SYSTEM,
                what,
                "free some disk space and run the command again; the interrupted transaction was rolled back, nothing is half-written",
            ),
            E::Ledger(LedgerError::Database { doing, .. }) if doing.contains("PostgreSQL") => {
                CliError::system(
                    what,
                    "check that PostgreSQL runs at that address and that the URL's user, password \
                 and database are right (unset KEYSEAL_DATABASE_URL to use the vault's own ledger)",
                )
            }
            E::Ledger(LedgerError::Database { .. }) => CliError::system(
                what,
                "check that the vault directory is readable and writable, then try again",
            ),
            E::Ledger(LedgerError::Io { .. }) | E::KeyFile(K::Io { .. }) => {
                CliError::system(what, "check the path and its permissions, then try again")
            }
            E::KeyFile(K::KdfParams(_)) => CliError::input(
                what,
                "KEYSEAL_KDF_PARAMS takes m=KIB,t=PASSES,p=LANES, for example m=65536,t=3,p=1",
            ),
            E::Key(KeyError::StaleSigner { .. }) => CliError::new(
                "key_rotated",
                exit::SYSTEM,
                what,
                "another keyseal rotated the key meanwhile: run the command again",
            ),
            E::Key(KeyError::ClockBehindNewestKey { .. }) => CliError::new(
                "clock_behind",
                exit::SYSTEM,
                what,
                "a new key must not start before an older one: fix this machine's clock (or KEYSEAL_NOW)",
            ),
            E::Key(KeyError::NoActiveKey) => CliError::new(
                "no_active_key",
                exit::INPUT,
                what,
                "make a new signing key with `keyseal keys rotate`",
            ),
            E::Key(KeyError::KeyringFull { oldest_retired, .. }) => CliError::new(
                "keyring_full",
                exit::INPUT,
                what,
                match oldest_retired {
                    Some(k) => format!(
                        "revoke a retired key whose licenses you no longer need, oldest first: \
                         `keyseal keys revoke {k} --reason retired` (every license it signed stops validating)"
                    ),
                    None => "revoke a key you no longer need with `keyseal keys revoke`".to_owned(),
                },
            ),
            E::Key(KeyError::Unknown(_)) | E::Key(KeyError::Ambiguous(_)) => CliError::new(
                "unknown_key",
                exit::INPUT,
                what,
                "see the key ids with `keyseal keys list`",
            ),
            E::Key(KeyError::AlreadyRevoked(_)) => CliError::input(
                what,
                "nothing to do; publish the revocation list if you have not",
            ),
            E::Key(KeyError::AlreadyRetired { .. }) => CliError::input(
                what,
                "a key's window can only be shortened: pass an earlier --at, or leave it",
            ),
            E::Request(RequestError::UnknownProduct { product, known }) => CliError::new(
                "unknown_product",
                exit::INPUT,
                if known.is_empty() {
                    format!("unknown product `{product}`: this vault has no products yet")
                } else {
                    format!(
                        "unknown product `{product}` (this vault issues for: {})",
                        known.join(", ")
                    )
                },
                format!(
                    "register it with `keyseal products add {product}`, or fix the product name"
                ),
            ),
            E::Request(RequestError::LastAdminToken(_)) => CliError::input(
                what,
                "create another admin token first (`keyseal token create --scopes admin`)",
            ),
            E::Request(RequestError::UnknownOrg(_)) => CliError::new(
                "unknown_org",
                exit::INPUT,
                what,
                "check the id with `keyseal org list`",
            ),
            E::Request(RequestError::ProductExists(_)) => {
                CliError::input(what, "nothing to do: see `keyseal products list`")
            }
            E::Request(RequestError::UnknownLicense(_)) => CliError::new(
                "unknown_license",
                exit::INPUT,
                what,
                "check the id (32 hex digits) with `keyseal licenses list`",
            ),
            E::Request(RequestError::ExternalIdExists { license_id, .. }) => CliError::new(
                "external_id_exists",
                exit::INPUT,
                what.clone(),
                format!("nothing to do: `keyseal licenses show {license_id}` shows it"),
            ),
            E::Request(RequestError::AlreadyRevoked { .. }) => CliError::input(
                what,
                "nothing to do; run `keyseal revocations publish` if the list has not gone out since",
            ),
            E::Request(RequestError::Invalid { field, .. }) => {
                let flag = flag_of(field);
                CliError::input(
                    format!(
                        "{flag}: {}",
                        what.split_once(": ").map_or(what.as_str(), |x| x.1)
                    ),
                    format!("fix {flag} and run the command again"),
                )
            }
            E::Request(RequestError::BadRow { .. }) => CliError::input(
                what,
                "fix the row and run again with --start-row at that row",
            ),
            E::Core(_) => CliError::input(
                what,
                "check the license fields against the limits in `keyseal issue --help`",
            ),
            _ => CliError::system(
                what,
                "try again; if it persists, report it with the full command",
            ),
        }
    }
}
