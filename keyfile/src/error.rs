//! What can go wrong with a key file.

use std::io;
use std::path::PathBuf;

use keyseal_core::KeyId;

/// A key file's error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The passphrase does not decrypt a signing key (or the key file was
    /// altered: the two cannot be told apart).
    #[error("wrong passphrase for signing key {key_id}")]
    WrongPassphrase {
        /// The key that did not decrypt.
        key_id: KeyId,
    },
    /// A passphrase was empty or otherwise refused.
    #[error("passphrase refused: {0}")]
    BadPassphrase(&'static str),
    /// A signing key file is missing, unreadable or inconsistent.
    #[error("signing key file {} is damaged: {detail}", path.display())]
    CorruptKeyFile {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// The Argon2 parameters are out of range.
    #[error("invalid key-derivation parameters: {0}")]
    KdfParams(String),
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
    /// The operating system's random generator failed.
    #[error("the operating system's random generator failed")]
    Random(#[source] getrandom::Error),
}

impl Error {
    pub(crate) fn io(doing: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            doing,
            path: path.into(),
            source,
        }
    }
}

impl From<getrandom::Error> for Error {
    fn from(e: getrandom::Error) -> Self {
        Error::Random(e)
    }
}

/// Result with a key file's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
