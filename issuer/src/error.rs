//! The errors of keyseal-issuer: [`Error`], one variant per concern
//! ([`VaultError`], [`LedgerError`], [`KeyError`], [`RequestError`], and
//! the key files' and the core's own), so a caller matches the concern it
//! handles.
//!
//! Messages say what went wrong, lower-case and without a trailing period.
//! What the user should do next depends on the front end (CLI or service),
//! so front ends add that; every variant carries what they need for it.

use std::io;
use std::path::PathBuf;

use keyseal_core::{KeyId, LicenseId};

/// Everything that can go wrong in the issuer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Opening or creating a vault.
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// A sealed signing key: a wrong passphrase (or an altered key: the two
    /// cannot be told apart), a refused passphrase, a damaged key, bad
    /// Argon2 parameters.
    #[error(transparent)]
    KeyFile(#[from] keyseal_keyfile::Error),
    /// The ledger's storage.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The organisation's signing keys.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// What a request asks for.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// The core refused to sign (claims break a limit the request checks missed).
    #[error("cannot sign: {0}")]
    Core(#[from] keyseal_core::Error),
    /// The OS random generator failed.
    #[error("the OS random generator failed: {0}")]
    Random(getrandom::Error),
}

/// Opening or creating a vault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    /// There is no vault in this directory.
    #[error("no keyseal vault in {}", dir.display())]
    NoVault {
        /// The directory looked in.
        dir: PathBuf,
    },
    /// `init` found a vault, or other files, where it was to create one.
    #[error("{} already exists and is not empty", dir.display())]
    VaultExists {
        /// The directory.
        dir: PathBuf,
    },
    /// Another process holds the vault's lock.
    #[error("vault {} is locked by another process", dir.display())]
    Locked {
        /// The vault directory.
        dir: PathBuf,
    },
}

/// The ledger's storage: the database, the files beside it, the disk.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// The ledger database is damaged or is not a keyseal ledger.
    #[error("the ledger is damaged: {detail}")]
    Corrupt {
        /// What is wrong with it.
        detail: String,
    },
    /// The disk is full (or a quota was hit); the transaction was rolled back.
    #[error("disk full while {doing}")]
    DiskFull {
        /// What was being written.
        doing: String,
    },
    /// A database error not covered by another variant.
    #[error("ledger error while {doing}")]
    Database {
        /// What was being done.
        doing: String,
        /// The database error.
        #[source]
        source: sqlx::Error,
    },
    /// A file system error.
    #[error("cannot {doing} {}", path.display())]
    Io {
        /// What was being done (a verb phrase: "create", "read", ...).
        doing: &'static str,
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// The organisation's signing keys.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The vault has no active signing key (it was retired or revoked).
    #[error("the vault has no active signing key")]
    NoActiveKey,
    /// What was signed used a key that is no longer the organisation's
    /// active one (a rotation happened meanwhile, maybe through another
    /// replica), for a caller that cannot sign again: the command line,
    /// whose operator runs the command again. The service's writes get
    /// [`crate::Signed::KeyRotated`] instead, an outcome, and sign again.
    #[error("signing key {key_id} is no longer the active one (it was rotated meanwhile)")]
    StaleSigner {
        /// The key that signed.
        key_id: KeyId,
    },
    /// A new key's window starts now, and must not start before an older
    /// key's (a newer key outranks every older one, docs/FORMAT.md): this
    /// machine's clock is behind the newest key's start.
    #[error("the newest signing key's window starts at {}, after now: is this machine's clock behind?", crate::time::format(*newest))]
    ClockBehindNewestKey {
        /// The newest key's window start (unix seconds).
        newest: u64,
    },
    /// No signing key with this id (or id prefix) is in the vault.
    #[error("no signing key {0} in this vault")]
    Unknown(String),
    /// A key id prefix matches several keys.
    #[error("key id prefix {0} matches several keys")]
    Ambiguous(String),
    /// The key is already revoked.
    #[error("signing key {0} is already revoked")]
    AlreadyRevoked(KeyId),
    /// The key's window already ends at or before the requested time.
    #[error("signing key {key_id} already stopped signing at {}", crate::time::Rfc3339(*until))]
    AlreadyRetired {
        /// The key.
        key_id: KeyId,
        /// The end of its window (unix seconds).
        until: u64,
    },
    /// A rotation would give the organisation more keys that are not
    /// revoked than one keyring holds: apps could not load its keyring.
    /// Nothing was written.
    #[error(
        "the organisation has {keys} signing keys that are not revoked and a keyring holds at most {max}: \
         a new key would make its keyring unloadable"
    )]
    KeyringFull {
        /// Keys of the organisation that are not revoked (all in its keyring).
        keys: usize,
        /// Most keys one keyring holds ([`keyseal_core::keyring::MAX_KEYS`]).
        max: usize,
        /// The retired key whose window ended first (ties: the lowest key
        /// id): revoking it (when none of the licenses it signed is still
        /// wanted) makes room.
        oldest_retired: Option<KeyId>,
    },
}

/// What a request asks for: its values, and the objects it names.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The organisation holds as many of these objects as one may
    /// ([`crate::service::MAX_PRODUCTS`]): a bound that keeps one tenant's
    /// size out of every other tenant's requests. Nothing was written.
    #[error("the organisation has {max} {what}, the most one may have")]
    LimitReached {
        /// What there are too many of (`products`).
        what: &'static str,
        /// The limit.
        max: u64,
    },
    /// Customers' personal data is sealed and this store was not unlocked
    /// with the passphrase ([`crate::Store::unlock_personal_data`]).
    #[error("customers' personal data is sealed: open the ledger with the passphrase first")]
    PersonalDataLocked,
    /// The product is not one the vault issues for.
    #[error("unknown product {product}")]
    UnknownProduct {
        /// The product asked for.
        product: String,
        /// The products the vault knows.
        known: Vec<String>,
    },
    /// The product is already registered.
    #[error("product {0} is already registered")]
    ProductExists(String),
    /// The API token is the organisation's last admin token that is not
    /// revoked: revoking it would leave nobody able to manage the organisation.
    #[error("token {0} is the organisation's last admin token: create another admin token first")]
    LastAdminToken(String),
    /// No organisation with this id.
    #[error("no organisation {0}")]
    UnknownOrg(String),
    /// No license with this id is in the ledger.
    #[error("no license {0} in the ledger")]
    UnknownLicense(String),
    /// The license is already revoked.
    #[error("license {license_id} is already revoked (since {})", crate::time::Rfc3339(*revoked_at))]
    AlreadyRevoked {
        /// The license.
        license_id: LicenseId,
        /// When it was revoked (unix seconds).
        revoked_at: u64,
    },
    /// A license with this external id exists in the organisation already.
    #[error("external id `{external_id}` was minted already, as license {license_id}")]
    ExternalIdExists {
        /// The external id.
        external_id: String,
        /// The license minted with it.
        license_id: String,
    },
    /// A field of a license request (or another input) is invalid.
    #[error("{field}: {problem}")]
    Invalid {
        /// The field or flag name, as the user wrote it.
        field: String,
        /// What is wrong, and what is allowed.
        problem: String,
    },
    /// A row of a batch file could not be read or is invalid.
    #[error("row {row}: {source}")]
    BadRow {
        /// The row number: data rows count from 1, the CSV header is not a row.
        row: u64,
        /// What is wrong with it.
        #[source]
        source: Box<Error>,
    },
}

impl Error {
    /// An invalid-field error.
    pub(crate) fn invalid(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Error::Request(RequestError::Invalid {
            field: field.into(),
            problem: problem.into(),
        })
    }

    /// Wraps a database error, telling lock, disk-full and corruption apart.
    pub(crate) fn db(doing: impl Into<String>, source: sqlx::Error) -> Self {
        let doing = doing.into();
        if let sqlx::Error::Database(db) = &source {
            // SQLite result codes (primary code in the low byte).
            let code = db
                .code()
                .and_then(|c| c.parse::<i64>().ok())
                .map(|c| c & 0xff);
            match code {
                Some(13) => return Error::Ledger(LedgerError::DiskFull { doing }),
                Some(11 | 26) => {
                    return Error::Ledger(LedgerError::Corrupt {
                        detail: db.message().to_owned(),
                    });
                }
                _ => {}
            }
            // PostgreSQL: 53100 disk_full.
            if db.code().as_deref() == Some("53100") {
                return Error::Ledger(LedgerError::DiskFull { doing });
            }
        }
        Error::Ledger(LedgerError::Database { doing, source })
    }

    /// Wraps an I/O error; ENOSPC and EDQUOT become [`LedgerError::DiskFull`].
    pub(crate) fn io(doing: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        let path = path.into();
        if matches!(source.raw_os_error(), Some(28 | 122)) {
            return Error::Ledger(LedgerError::DiskFull {
                doing: format!("writing {}", path.display()),
            });
        }
        Error::Ledger(LedgerError::Io {
            doing,
            path,
            source,
        })
    }
}

impl From<getrandom::Error> for Error {
    fn from(e: getrandom::Error) -> Self {
        Error::Random(e)
    }
}

/// Result with the issuer's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
