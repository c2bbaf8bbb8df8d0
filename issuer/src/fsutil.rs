//! File system helpers: atomic owner-only writes, the vault lock.

use std::fs::{self, File, OpenOptions};
#[cfg(unix)]
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::VaultError;
use crate::error::{Error, Result};

pub use keyseal_keyfile::fs::sync_dir;

/// Creates a directory readable by its owner only.
pub fn create_private_dir(dir: &Path) -> Result<()> {
    let mut b = fs::DirBuilder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
        .map_err(|e| Error::io("create directory", dir, e))?;
    #[cfg(unix)]
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .map_err(|e| Error::io("set permissions of", dir, e))?;
    Ok(())
}

/// An exclusive advisory lock on the vault's lock file, held until dropped
/// (the OS releases it if the process dies).
#[derive(Debug)]
pub struct VaultLock {
    _file: File,
}

impl VaultLock {
    /// Takes the lock of the vault in `dir`, or fails at once with [`VaultError::Locked`].
    pub fn acquire(dir: &Path, lock_path: PathBuf) -> Result<Self> {
        let mut opts = OpenOptions::new();
        opts.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        opts.mode(0o600);
        let file = opts
            .open(&lock_path)
            .map_err(|e| Error::io("open", &lock_path, e))?;
        match fs4::FileExt::try_lock(&file) {
            Ok(()) => Ok(VaultLock { _file: file }),
            Err(fs4::TryLockError::WouldBlock) => Err(Error::Vault(VaultError::Locked {
                dir: dir.to_path_buf(),
            })),
            Err(fs4::TryLockError::Error(e)) => Err(Error::io("lock", &lock_path, e)),
        }
    }
}
