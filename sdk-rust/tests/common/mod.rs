//! Test helpers: a vendor that issues licenses and lists, and scratch directories.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use keyseal::keyseal_core::claims::Entitlements;
use keyseal::keyseal_core::license;
use keyseal::keyseal_core::revocation::RevocationListBuilder;
use keyseal::keyseal_core::{Claims, DeviceRule, Fingerprint, LicenseId, SigningKey, TrustedKey};
use keyseal::{Keyring, ManualClock, MemoryStateStore, Validator, ValidatorBuilder};

pub const PRODUCT: &str = "acme-cad";
pub const NOW: u64 = 1_800_000_000;
pub const DAY: u64 = 86_400;

/// A vendor with one issuing key.
pub struct Vendor {
    pub key: SigningKey,
    pub keyring: Keyring,
}

impl Vendor {
    pub fn new() -> Self {
        let key = SigningKey::from_seed(&[7; 32]).unwrap();
        let mut keyring = Keyring::new();
        keyring.add(TrustedKey::new(key.public_key())).unwrap();
        Vendor { key, keyring }
    }

    /// Reference claims: issued a day before NOW, expiring in a year.
    pub fn claims(&self, id: u128) -> Claims<'static> {
        let mut c = Claims::new(LicenseId::from_u128(id), PRODUCT, "cus_1", "pro", NOW - DAY);
        c.expires_at = Some(NOW + 365 * DAY);
        c.entitlements = Entitlements::from_slice(&["export-pdf", "plugins"]).unwrap();
        c
    }

    pub fn issue(&self, claims: &Claims<'_>) -> String {
        license::to_text(&license::issue(&self.key, claims, None).unwrap())
    }

    pub fn issue_bound(&self, claims: &Claims<'_>, fp: &Fingerprint, rule: DeviceRule) -> String {
        license::to_text(&license::issue(&self.key, claims, Some((fp, rule))).unwrap())
    }

    /// A revocation list, signed.
    pub fn list(
        &self,
        sequence: u64,
        issued_at: u64,
        next_update: u64,
        revoked: &[u128],
    ) -> Vec<u8> {
        let mut b = RevocationListBuilder::new(sequence, issued_at, next_update);
        for id in revoked {
            b.revoke_license(LicenseId::from_u128(*id));
        }
        b.sign(&self.key).unwrap()
    }

    /// A builder at `now` with an in-memory store and no device.
    pub fn builder(&self, now: u64) -> ValidatorBuilder {
        Validator::builder(self.keyring.clone(), PRODUCT)
            .clock(ManualClock::new(now))
            .state(MemoryStateStore::new())
            .no_device()
    }
}

/// A fresh directory under the system temp dir, removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(label: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "keyseal-sdk-{label}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }

    /// Writes `rel` (creating parent directories).
    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.0.join(rel);
        std::fs::create_dir_all(p.parent().unwrap_or(Path::new("."))).unwrap();
        std::fs::write(&p, contents).unwrap();
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
