//! The public keyring in the forms apps embed: the keyring text, a Rust
//! constant, and JSON for the JavaScript and Python SDKs.

use keyseal_core::keyring::MAX_KEYS;
use keyseal_core::{KeyId, Keyring, TrustedKey};
use serde_json::json;

use crate::error::KeyError;
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
    /// Keys that are not revoked but did not fit (oldest first). Empty in
    /// every ledger this version wrote: [`keyring_room`] refuses the
    /// rotation that would need them. A ledger from before that rule may
    /// hold more; its published keyring then keeps the active key and the
    /// most recently retired ones, and these are left out.
    pub left_out: Vec<KeyInfo>,
}

/// The one rule that keeps an organisation's published keyring loadable:
/// every key that is not revoked is in it, and one keyring holds at most
/// [`MAX_KEYS`]. A rotation adds a key (the old active one stays, retired,
/// for the licenses it signed), so it needs room for one more; without it,
/// [`KeyError::KeyringFull`] names the oldest retired key, whose revocation
/// makes room. Every rotation (the CLI's and the service's, through
/// `Store::org_activate_key`) checks this under the writer's lock; a new
/// organisation's first key needs no check.
///
/// Root keys (key certificates carried with revocation lists) are the way
/// past this limit: an app pinning a root trusts every key the root
/// certifies, however many. When the service publishes certificates, this
/// is the function that counts only the keys its keyring still names.
pub fn keyring_room(keys: &[KeyInfo]) -> Result<()> {
    let live: Vec<&KeyInfo> = keys
        .iter()
        .filter(|k| k.status != KeyStatus::Revoked)
        .collect();
    if live.len() < MAX_KEYS {
        return Ok(());
    }
    let oldest_retired = live
        .iter()
        .filter(|k| k.status == KeyStatus::Retired)
        .min_by_key(|k| {
            (
                k.valid_until.unwrap_or(u64::MAX),
                k.created_at,
                k.key_id.to_string(),
            )
        })
        .map(|k| k.key_id);
    Err(Error::Key(KeyError::KeyringFull {
        keys: live.len(),
        max: MAX_KEYS,
        oldest_retired,
    }))
}

impl Store {
    /// The public keyring the default organisation's apps should embed:
    /// every key of it but the revoked ones.
    pub async fn keyring(&self) -> Result<KeyringExport> {
        self.org_keyring(&self.default_owner().await?).await
    }

    /// The public keyring one organisation's apps should embed: its keys
    /// but the revoked ones (never another organisation's). Always
    /// loadable: at most [`MAX_KEYS`] keys (see [`keyring_room`]).
    pub async fn org_keyring(&self, org_id: &str) -> Result<KeyringExport> {
        Ok(published(self.org_keys(org_id).await?))
    }

    /// Whether one organisation has room for one more key ([`keyring_room`]),
    /// read without the writer's lock: a cheap early answer before the
    /// costly sealing of a new key. The rotation itself checks again under
    /// the lock.
    pub async fn org_keyring_room(&self, org_id: &str) -> Result<()> {
        keyring_room(&self.org_keys(org_id).await?)
    }

    /// The default organisation's key `key_id`, revoked or not, as a
    /// keyring of its own, for checking one license in the vault itself: a
    /// revoked key's licenses then fail as `key_revoked` (with the ledger's
    /// revocations) rather than as signed by an unknown key. Empty when the
    /// vault has no such key.
    pub async fn verification_keyring(&self, key_id: KeyId) -> Result<Keyring> {
        let mut ring = Keyring::new();
        if let Some(k) = self.keys().await?.iter().find(|k| k.key_id == key_id) {
            // One key always fits.
            ring.add(trusted(k)).map_err(Error::Core)?;
        }
        Ok(ring)
    }
}

fn trusted(k: &KeyInfo) -> TrustedKey {
    let t = TrustedKey::new(k.public_key).valid_from(k.valid_from);
    match k.valid_until {
        Some(u) => t.valid_until(u),
        None => t,
    }
}

/// The published keyring of an organisation with these keys: the keys that
/// are not revoked; in a ledger that holds more of them than fit (see
/// [`KeyringExport::left_out`]), the active key and then the most recently
/// retired ones.
fn published(keys: Vec<KeyInfo>) -> KeyringExport {
    let mut live: Vec<KeyInfo> = keys
        .into_iter()
        .filter(|k| k.status != KeyStatus::Revoked)
        .collect();
    // Keep first: the active key, then retired keys by the end of their
    // window, latest first (they signed the most recent licenses).
    live.sort_by_key(|k| {
        (
            k.status != KeyStatus::Active,
            std::cmp::Reverse(k.valid_until.unwrap_or(u64::MAX)),
            std::cmp::Reverse(k.created_at),
        )
    });
    let left_out = live.split_off(live.len().min(MAX_KEYS));
    let by_age = |v: &mut Vec<KeyInfo>| v.sort_by_key(|k| (k.created_at, k.key_id.to_string()));
    let (mut keys, mut left_out) = (live, left_out);
    by_age(&mut keys);
    by_age(&mut left_out);
    let mut keyring = Keyring::new();
    for k in &keys {
        // At most MAX_KEYS distinct keys: `add` cannot refuse them.
        let _ = keyring.add(trusted(k));
    }
    KeyringExport {
        keyring,
        keys,
        left_out,
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
        let left_out: Vec<String> = self.left_out.iter().map(|k| k.key_id.to_string()).collect();
        let v = json!({
            "format": "keyseal-keyring/v1",
            "keyring": self.keyring.to_string(),
            "keys": keys,
            "left_out": left_out,
        });
        let mut s = serde_json::to_string_pretty(&v).unwrap_or_default();
        s.push('\n');
        s
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use keyseal_core::SigningKey;

    use super::*;

    /// Key `n` (1-based): created at `10 * n`, retired at `10 * n + 5`
    /// unless `status` is active.
    fn key(n: u8, status: KeyStatus) -> KeyInfo {
        let pk = SigningKey::from_seed(&[n; 32]).unwrap().public_key();
        let t = 10 * u64::from(n);
        KeyInfo {
            key_id: pk.key_id(),
            public_key: pk,
            status,
            created_at: t,
            valid_from: t,
            valid_until: (status != KeyStatus::Active).then_some(t + 5),
            revoked_at: (status == KeyStatus::Revoked).then_some(t + 5),
            revoke_reason: None,
        }
    }

    /// `retired` retired keys, then one active key, then `revoked` revoked ones.
    fn keys(retired: u8, revoked: u8) -> Vec<KeyInfo> {
        let mut v: Vec<KeyInfo> = (1..=retired).map(|n| key(n, KeyStatus::Retired)).collect();
        v.push(key(retired + 1, KeyStatus::Active));
        v.extend((retired + 2..retired + 2 + revoked).map(|n| key(n, KeyStatus::Revoked)));
        v
    }

    #[test]
    fn room_for_one_more_until_the_keyring_is_full() {
        // 15 keys not revoked (and any number revoked): one more fits.
        assert!(keyring_room(&keys(14, 0)).is_ok());
        assert!(keyring_room(&keys(14, 30)).is_ok());
        // 16: full; the retired key whose window ended first is named.
        match keyring_room(&keys(15, 3)) {
            Err(Error::Key(KeyError::KeyringFull {
                keys: 16,
                max: MAX_KEYS,
                oldest_retired: Some(id),
            })) => assert_eq!(id, key(1, KeyStatus::Retired).key_id),
            other => panic!("{other:?}"),
        }
        // Ties on the window's end: the lowest key id.
        let mut v = keys(15, 0);
        for k in &mut v {
            if k.status == KeyStatus::Retired {
                k.valid_until = Some(99);
                k.created_at = 1;
            }
        }
        let lowest = v
            .iter()
            .filter(|k| k.status == KeyStatus::Retired)
            .map(|k| k.key_id)
            .min_by_key(ToString::to_string);
        assert!(matches!(
            keyring_room(&v),
            Err(Error::Key(KeyError::KeyringFull { oldest_retired, .. })) if oldest_retired == lowest
        ));
    }

    #[test]
    fn the_published_keyring_holds_every_key_not_revoked() {
        let all = keys(15, 5);
        let out = published(all.clone());
        let want: Vec<KeyId> = all
            .iter()
            .filter(|k| k.status != KeyStatus::Revoked)
            .map(|k| k.key_id)
            .collect();
        assert_eq!(out.keys.iter().map(|k| k.key_id).collect::<Vec<_>>(), want);
        assert!(out.left_out.is_empty());
        assert_eq!(out.keyring.keys().count(), 16);
        // It round-trips through the text every SDK parses.
        let parsed: Keyring = out.keyring.to_string().parse().unwrap();
        assert_eq!(parsed.keys().count(), 16);
        for k in &all {
            assert_eq!(
                parsed.get(k.key_id).is_some(),
                k.status != KeyStatus::Revoked
            );
        }
    }

    /// A ledger from before the rule, with 20 keys not revoked: the active
    /// key and the 15 most recently retired are published, the 4 retired
    /// first are left out; nothing fails.
    #[test]
    fn an_overfull_ledger_still_publishes_a_loadable_keyring() {
        let mut all = keys(19, 2);
        // The active key first in the input, to show order does not matter.
        all.rotate_right(3);
        let out = published(all);
        assert_eq!(out.keys.len(), MAX_KEYS);
        assert_eq!(out.keyring.keys().count(), MAX_KEYS);
        let active = key(20, KeyStatus::Active).key_id;
        assert!(out.keyring.get(active).is_some());
        let left: Vec<KeyId> = out.left_out.iter().map(|k| k.key_id).collect();
        let want: Vec<KeyId> = (1..=4).map(|n| key(n, KeyStatus::Retired).key_id).collect();
        assert_eq!(left, want);
        assert!(out.json().contains(&want[0].to_string()));
        // Oldest first, as in the ledger.
        assert!(
            out.keys
                .windows(2)
                .all(|w| w[0].created_at <= w[1].created_at)
        );
    }
}
