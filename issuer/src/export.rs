//! The public keyring in the forms apps embed: the keyring text, a Rust
//! constant, and JSON for the JavaScript and Python SDKs.

use keyseal_core::{Keyring, TrustedKey};
use serde_json::json;

use crate::error::{Error, Result};
use crate::store::{KeyInfo, KeyStatus, Store};

/// The keys an app should trust: every key not revoked, each limited to its
/// issue window (`from` = creation, `until` = retirement).
#[derive(Debug, Clone)]
pub struct KeyringExport {
    /// The keyring.
    pub keyring: Keyring,
    /// The keys in it, oldest first.
    pub keys: Vec<KeyInfo>,
}

impl Store {
    /// The public keyring the default organisation's apps should embed:
    /// every key of it but the revoked ones.
    pub async fn keyring(&self) -> Result<KeyringExport> {
        self.org_keyring(&self.default_owner().await?).await
    }

    /// The public keyring one organisation's apps should embed: its keys
    /// but the revoked ones (never another organisation's).
    pub async fn org_keyring(&self, org_id: &str) -> Result<KeyringExport> {
        let keys: Vec<KeyInfo> = self
            .org_keys(org_id)
            .await?
            .into_iter()
            .filter(|k| k.status != KeyStatus::Revoked)
            .collect();
        Self::ring(keys)
    }

    /// Every key, revoked ones included, for checking licenses in the vault
    /// itself: a revoked key's licenses then fail as `key_revoked` (with the
    /// ledger's revocations) rather than as signed by an unknown key.
    pub async fn verification_keyring(&self) -> Result<KeyringExport> {
        Self::ring(self.keys().await?)
    }

    fn ring(keys: Vec<KeyInfo>) -> Result<KeyringExport> {
        let mut keyring = Keyring::new();
        for k in &keys {
            let mut t = TrustedKey::new(k.public_key).valid_from(k.valid_from);
            if let Some(u) = k.valid_until {
                t = t.valid_until(u);
            }
            keyring.add(t).map_err(|_| {
                Error::invalid(
                    "keyring",
                    format!(
                        "{} keys are not revoked but a keyring holds at most {}",
                        keys.len(),
                        keyseal_core::keyring::MAX_KEYS
                    ),
                )
            })?;
        }
        Ok(KeyringExport { keyring, keys })
    }
}

impl KeyringExport {
    /// The keyring text form, with a comment header.
    #[must_use]
    pub fn text(&self) -> String {
        format!(
            "# keyseal keyring: the public keys that sign this vendor's licenses.\n\
             # Safe to publish and embed. Regenerate with `keyseal keys export` after every rotation.\n{}",
            self.keyring
        )
    }

    /// A Rust constant holding the keyring text.
    #[must_use]
    pub fn rust(&self) -> String {
        format!(
            "/// The public keys that sign this app's licenses (`keyseal keys export --format rust`).\n\
             /// Load with `KEYSEAL_KEYRING.parse::<keyseal::Keyring>()`.\n\
             pub const KEYSEAL_KEYRING: &str = r#\"\n{}\"#;\n",
            self.keyring
        )
    }

    /// JSON: the keyring text (what every SDK parses) and the keys spelled out.
    #[must_use]
    pub fn json(&self) -> String {
        let keys: Vec<_> = self
            .keys
            .iter()
            .map(|k| {
                json!({
                    "key_id": k.key_id.to_string(),
                    "public_key": k.public_key.to_string(),
                    "status": k.status,
                    "valid_from": k.valid_from,
                    "valid_until": k.valid_until,
                })
            })
            .collect();
        let v = json!({ "format": "keyseal-keyring/v1", "keyring": self.keyring.to_string(), "keys": keys });
        let mut s = serde_json::to_string_pretty(&v).unwrap_or_default();
        s.push('\n');
        s
    }
}
