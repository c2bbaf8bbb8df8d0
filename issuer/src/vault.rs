//! The vault: the ledger, which holds every organisation's signing keys
//! sealed under the vault passphrase (Argon2id, then XChaCha20-Poly1305; see
//! [`crate::keyfile`]). Embedded, it is a directory (mode 0700):
//!
//! ```text
//! VAULT/
//!   ledger.sqlite        the ledger (plus SQLite's -wal and -shm files)
//!   vault.lock           advisory lock held by the one process mutating the vault
//!   keys/<key id>.key    sealed key files of vaults from before schema 11 (mode
//!                        0600): imported into the ledger when it is opened for
//!                        writing, and left in place
//! ```
//!
//! On PostgreSQL ([`Vault::init_postgres`], [`Vault::connect`]) the database
//! is the whole vault: replicas need its URL and the passphrase, no files.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use keyseal_core::{KeyId, PublicKey, SigningKey};
use serde_json::json;
use zeroize::Zeroizing;

use crate::Context;
use crate::error::{Error, Result};
use crate::error::{KeyError, VaultError};
use crate::fsutil::{self, VaultLock};
use crate::keyfile::{KdfParams, KeyFile, Passphrase};
use crate::request::check_product;
use crate::store::{KeyInfo, Store};

/// File name of the ledger inside the vault.
pub const LEDGER_FILE: &str = "ledger.sqlite";
/// Directory of the key files inside the vault.
pub const KEYS_DIR: &str = "keys";
/// File name of the lock file inside the vault.
pub const LOCK_FILE: &str = "vault.lock";

/// How a vault is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reading only; no lock taken (SQLite serves readers while a writer works).
    Read,
    /// Mutating: takes the vault lock, or fails with [`VaultError::Locked`].
    Write,
}

/// What `init` sets up besides the first key.
#[derive(Debug, Clone, Default)]
pub struct InitOptions {
    /// Products to register right away.
    pub products: Vec<String>,
    /// Argon2id parameters for the key files.
    pub kdf: KdfParams,
}

/// An unlocked signing key, ready to sign. The secret is wiped when the
/// last clone is dropped and is never printed.
#[derive(Clone)]
pub struct Signer {
    key: Arc<SigningKey>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer(key {}, secret redacted)", self.key.key_id())
    }
}

impl Signer {
    /// A signer for a key held elsewhere (the HTTP service's key store).
    /// The key must be the ledger's active key to sign anything.
    #[must_use]
    pub fn new(key: SigningKey) -> Self {
        Signer { key: Arc::new(key) }
    }

    /// The key id.
    #[must_use]
    pub fn key_id(&self) -> KeyId {
        self.key.key_id()
    }

    /// The public key.
    #[must_use]
    pub fn public_key(&self) -> PublicKey {
        self.key.public_key()
    }

    pub(crate) fn key(&self) -> &SigningKey {
        &self.key
    }

    pub(crate) fn shared(&self) -> Arc<SigningKey> {
        Arc::clone(&self.key)
    }
}

/// An open vault.
#[derive(Debug)]
pub struct Vault {
    dir: PathBuf,
    store: Store,
    _lock: Option<VaultLock>,
}

fn new_signing_key() -> Result<SigningKey> {
    loop {
        let mut seed = Zeroizing::new([0u8; keyseal_core::key::SEED_LEN]);
        getrandom::fill(seed.as_mut())?;
        if let Ok(k) = SigningKey::from_seed(&seed) {
            return Ok(k);
        }
    }
}

impl Vault {
    /// Creates a vault in `dir` (which must not exist, or be empty) with a
    /// first signing key sealed under `pass`, and opens it for writing.
    ///
    /// The vault is built in a temporary directory beside `dir` and renamed
    /// into place, so an interrupted `init` leaves no half vault behind.
    pub async fn init(
        dir: &Path,
        pass: &Passphrase,
        opts: &InitOptions,
        ctx: &Context,
    ) -> Result<Vault> {
        for p in &opts.products {
            check_product(p)?;
        }
        if let Ok(mut entries) = std::fs::read_dir(dir) {
            if entries.next().is_some() {
                return Err(Error::Vault(VaultError::VaultExists {
                    dir: dir.to_path_buf(),
                }));
            }
        } else if dir.exists() {
            return Err(Error::Vault(VaultError::VaultExists {
                dir: dir.to_path_buf(),
            }));
        }
        let parent = match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = dir
            .file_name()
            .ok_or_else(|| {
                Error::invalid(
                    "vault",
                    format!("{} is not a directory name", dir.display()),
                )
            })?
            .to_string_lossy()
            .into_owned();
        let mut rnd = [0u8; 6];
        getrandom::fill(&mut rnd)?;
        let tmp = parent.join(format!(".{name}.init-{}", keyseal_core::hex::encode(&rnd)));
        fsutil::create_private_dir(&tmp)?;
        let built = Self::build(&tmp, pass, opts, ctx).await;
        let placed = built.and_then(|()| {
            std::fs::rename(&tmp, dir).map_err(|e| Error::io("move the new vault to", dir, e))?;
            Ok(fsutil::sync_dir(&parent)?)
        });
        if let Err(e) = placed {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
        Vault::open(dir, Access::Write).await
    }

    async fn build(tmp: &Path, pass: &Passphrase, opts: &InitOptions, ctx: &Context) -> Result<()> {
        let (_, sealed) = seal_new_key(pass, opts.kdf)?;
        let ledger = tmp.join(LEDGER_FILE);
        let store = Store::open_sqlite(&ledger, true).await?;
        // Owner-only, like the directory: it holds the sealed keys (SQLite
        // gives its -wal and -shm files the same mode).
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&ledger, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| Error::io("restrict the permissions of", &ledger, e))?;
        }
        let result = async {
            store.migrate().await?;
            let details = json!({ "kdf": opts.kdf.to_string() });
            store
                .initialize(&sealed, &opts.products, details, ctx)
                .await
        }
        .await;
        store.close().await;
        result?;
        Ok(fsutil::sync_dir(tmp)?)
    }

    /// Creates the ledger in the PostgreSQL database at `url` (a
    /// deployment of several replicas), with a first signing key sealed
    /// under `pass`: everything is in the database, nothing on disk.
    /// [`crate::RequestError::Invalid`] (`database-url`) if it holds a ledger already.
    pub async fn init_postgres(
        url: &str,
        pass: &Passphrase,
        opts: &InitOptions,
        ctx: &Context,
    ) -> Result<Vault> {
        for p in &opts.products {
            check_product(p)?;
        }
        let store = Store::connect(url).await?;
        let result = async {
            store.migrate().await?;
            if store.check().await.is_ok() {
                return Err(Error::invalid(
                    "database-url",
                    format!(
                        "{} already holds a keyseal ledger",
                        crate::store::url_host(url)
                    ),
                ));
            }
            let (_, sealed) = seal_new_key(pass, opts.kdf)?;
            let details = json!({ "kdf": opts.kdf.to_string() });
            store
                .initialize(&sealed, &opts.products, details, ctx)
                .await
        }
        .await;
        if let Err(e) = result {
            store.close().await;
            return Err(e);
        }
        Ok(Vault {
            dir: PathBuf::new(),
            store,
            _lock: None,
        })
    }

    /// Opens the vault in `dir`. Opened for writing, key files of keys the
    /// ledger holds no sealed copy of (a vault from before schema 11) are
    /// imported into it.
    pub async fn open(dir: &Path, access: Access) -> Result<Vault> {
        let ledger = dir.join(LEDGER_FILE);
        if !ledger.is_file() {
            return Err(Error::Vault(VaultError::NoVault {
                dir: dir.to_path_buf(),
            }));
        }
        let lock = match access {
            Access::Write => Some(VaultLock::acquire(dir, dir.join(LOCK_FILE))?),
            Access::Read => None,
        };
        let store = Store::open_sqlite(&ledger, false).await?;
        crate::store::ping(&store).await?;
        store.check().await?;
        if access == Access::Write {
            store.migrate().await?;
            store.import_key_files(&dir.join(KEYS_DIR)).await?;
        } else if store.needs_migration().await? {
            // A ledger written by an older keyseal: bring its schema up to
            // date under the lock, which is released again. If a writer
            // holds the lock, it migrated the ledger when it opened it.
            match VaultLock::acquire(dir, dir.join(LOCK_FILE)) {
                Ok(_held_while_migrating) => {
                    store.migrate().await?;
                    store.import_key_files(&dir.join(KEYS_DIR)).await?;
                }
                Err(Error::Vault(VaultError::Locked { .. })) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Vault {
            dir: dir.to_path_buf(),
            store,
            _lock: lock,
        })
    }

    /// Opens the ledger in the PostgreSQL database at `url` (initialised,
    /// by [`Vault::init_postgres`] or `keyseal serve --database-url`),
    /// bringing its schema up to date. `keys_from` is a vault directory
    /// whose key files are imported for keys the database holds no sealed
    /// copy of (deployments from before schema 11); none is needed after.
    pub async fn connect(url: &str, keys_from: Option<&Path>) -> Result<Vault> {
        let store = Store::connect(url).await?;
        let result = async {
            store.migrate().await?;
            store.check().await?;
            if let Some(dir) = keys_from {
                store.import_key_files(&dir.join(KEYS_DIR)).await?;
            }
            Ok(())
        }
        .await;
        if let Err(e) = result {
            store.close().await;
            return Err(e);
        }
        Ok(Vault {
            dir: keys_from.map(Path::to_path_buf).unwrap_or_default(),
            store,
            _lock: None,
        })
    }

    /// The vault directory (empty for a PostgreSQL ledger opened without one).
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The ledger.
    #[must_use]
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Closes the ledger.
    pub async fn close(self) {
        self.store.close().await;
    }

    /// Decrypts the default organisation's active signing key.
    pub async fn unlock(&self, pass: &Passphrase) -> Result<Signer> {
        let org = self.store.default_owner().await?;
        self.unlock_org(&org, pass).await
    }

    /// Decrypts one organisation's active signing key (sealed in the
    /// ledger, under the vault's passphrase).
    pub async fn unlock_org(&self, org_id: &str, pass: &Passphrase) -> Result<Signer> {
        let info = self
            .store
            .org_active_key(org_id)
            .await?
            .ok_or(Error::Key(KeyError::NoActiveKey))?;
        let key = self.open_key(info.key_id, pass).await?;
        Ok(Signer { key: Arc::new(key) })
    }

    /// The sealed key `id`: the ledger's copy, or (in a vault opened only
    /// for reading, before its key files were imported) its file.
    pub async fn sealed_key(&self, id: KeyId) -> Result<(KeyFile, PathBuf)> {
        if let Some(file) = self.store.sealed_key(id).await? {
            return Ok((file, PathBuf::from(format!("the ledger's sealed key {id}"))));
        }
        let path = key_path(&self.dir, id);
        let file = KeyFile::read(&path)?;
        if file.key_id() != id.to_string() {
            return Err(Error::KeyFile(keyseal_keyfile::Error::CorruptKeyFile {
                path,
                detail: format!("it holds key {}, not {id}", file.key_id()),
            }));
        }
        Ok((file, path))
    }

    async fn open_key(&self, id: KeyId, pass: &Passphrase) -> Result<SigningKey> {
        let (file, path) = self.sealed_key(id).await?;
        Ok(file.open(pass, &path)?)
    }

    /// The key-derivation parameters of the vault's active key (what keys
    /// and secrets sealed later use too); the defaults in a vault with none.
    pub async fn kdf_params(&self) -> Result<KdfParams> {
        match self.store.active_key().await? {
            Some(info) => Ok(self.sealed_key(info.key_id).await?.0.kdf_params()),
            None => Ok(KdfParams::default()),
        }
    }

    /// Makes a fresh signing key for a new organisation, sealed under
    /// `pass` (which must open the default organisation's active key) with
    /// that key's key-derivation parameters. Nothing is written: record it
    /// with [`Store::create_org`].
    pub async fn seal_new_key(&self, pass: &Passphrase) -> Result<(SigningKey, KeyFile)> {
        let info = self
            .store
            .active_key()
            .await?
            .ok_or(Error::Key(KeyError::NoActiveKey))?;
        let (file, path) = self.sealed_key(info.key_id).await?;
        file.open(pass, &path)?;
        seal_new_key(pass, file.kdf_params())
    }

    /// Makes a new active signing key and retires the old one (its window
    /// ends now, so what it signed stays valid). The passphrase must open the
    /// current active key (or the newest key, if none is active); the new key
    /// is sealed under it with `kdf`, or with that key's parameters.
    pub async fn rotate(
        &self,
        pass: &Passphrase,
        kdf: Option<KdfParams>,
        ctx: &Context,
    ) -> Result<(KeyInfo, Option<KeyInfo>)> {
        let org = self.store.default_owner().await?;
        self.rotate_org(&org, pass, kdf, ctx).await
    }

    /// [`Vault::rotate`] for one organisation's keys.
    pub async fn rotate_org(
        &self,
        org_id: &str,
        pass: &Passphrase,
        kdf: Option<KdfParams>,
        ctx: &Context,
    ) -> Result<(KeyInfo, Option<KeyInfo>)> {
        // Refused early, before the costly sealing, if the keyring is full
        // (checked again under the writer's lock by `org_activate_key`).
        self.store.org_keyring_room(org_id).await?;
        let old = self.store.org_active_key(org_id).await?;
        // One passphrase per vault: it must open the active key, or (if all
        // were retired or revoked) the newest one.
        let check = match &old {
            Some(k) => Some(k.key_id),
            None => self.store.org_keys(org_id).await?.last().map(|k| k.key_id),
        };
        let mut params = kdf.unwrap_or_default();
        if let Some(id) = check {
            let (file, path) = self.sealed_key(id).await?;
            file.open(pass, &path)?;
            if kdf.is_none() {
                params = file.kdf_params();
            }
        }
        let (key, sealed) = seal_new_key(pass, params)?;
        self.store.org_activate_key(org_id, &sealed, ctx).await?;
        let new = self
            .store
            .org_find_key(org_id, &key.key_id().to_string())
            .await?;
        let old = match old {
            Some(o) => Some(
                self.store
                    .org_find_key(org_id, &o.key_id.to_string())
                    .await?,
            ),
            None => None,
        };
        Ok((new, old))
    }
}

fn key_path(dir: &Path, id: KeyId) -> PathBuf {
    dir.join(KEYS_DIR).join(format!("{id}.key"))
}

/// Makes a fresh signing key and seals it under `pass` with `kdf`. Nothing
/// is written: the ledger keeps the sealed key when it records it (see
/// [`Store::create_org`], [`Store::org_activate_key`]).
pub fn seal_new_key(pass: &Passphrase, kdf: KdfParams) -> Result<(SigningKey, KeyFile)> {
    let key = new_signing_key()?;
    let sealed = KeyFile::seal(&key, pass, kdf)?;
    Ok((key, sealed))
}
