//! Offline root keys. A root is made once and kept outside the ledger (a
//! sealed file on removable media, like a signing key sealed under its own
//! passphrase); it only certifies the organisation's issuing keys
//! ([`crate::Store::org_certify_key`]). Apps that pin only the root then
//! trust every key it certifies, through rotations and a key compromise,
//! with no app update: docs/FORMAT.md ("Who may sign a list") gives the
//! argument. The root never signs licenses or revocation lists.

use std::path::Path;

use keyseal_core::{PublicKey, SigningKey};

use crate::error::{Error, Result};
use crate::keyfile::{KdfParams, KeyFile, Passphrase};

/// Makes a root key and writes it sealed under `pass` to `path` (mode
/// 0600), which must not exist: a root is made once, and overwriting one
/// would orphan every app that pins it.
pub fn create(path: &Path, pass: &Passphrase, kdf: KdfParams) -> Result<PublicKey> {
    if path.exists() {
        return Err(Error::invalid(
            "root file",
            format!(
                "{} exists: a root is made once (apps pin it); keep using it, or choose another path",
                path.display()
            ),
        ));
    }
    let (key, sealed) = crate::vault::seal_new_key(pass, kdf)?;
    sealed.write(path)?;
    Ok(key.public_key())
}

/// The root's public key (no passphrase needed).
pub fn public_key(path: &Path) -> Result<PublicKey> {
    Ok(KeyFile::read(path)?.public_key(path)?)
}

/// Unseals the root at `path`.
pub fn open(path: &Path, pass: &Passphrase) -> Result<SigningKey> {
    Ok(KeyFile::read(path)?.open(pass, path)?)
}

/// The keyring text that pins only `root`: what an app embeds once; every
/// key the root certifies reaches it in the revocation list files and
/// license files the service hands out.
#[must_use]
pub fn keyring_text(root: &PublicKey) -> String {
    format!(
        "# keyseal keyring: pins only the root {}; issuing keys arrive certified\nroot {root}\n",
        root.key_id()
    )
}
