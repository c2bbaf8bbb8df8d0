//! Customers' personal data at rest: names, emails and metadata never reach
//! the ledger in plaintext.
//!
//! - **The data secret.** One random 32-byte secret per ledger, sealed under
//!   the vault passphrase exactly as signing keys are (Argon2id with the
//!   vault's parameters, XChaCha20-Poly1305; [`crate::keyfile`]) and kept in
//!   the ledger's `meta` table, so PostgreSQL replicas share it without a
//!   shared filesystem. It is the seed of a key file; it never signs.
//! - **Organisation keys.** HKDF-SHA256 derives from the secret, per
//!   organisation, a key-wrapping key and an email look-up key (the info
//!   strings below name the purpose and the organisation), so one
//!   organisation's keys say nothing of another's.
//! - **Customer keys.** Each customer gets a random 32-byte data key. Its
//!   fields (a JSON object) are sealed with AES-256-GCM under that key, and
//!   the key itself with AES-256-GCM under the organisation's wrapping key.
//!   Nonces are 96 random bits; the AAD binds the purpose, the organisation
//!   and the customer id, so a sealed value copied to another row or
//!   organisation does not open.
//! - **Look-ups by email.** The ledger keeps `HMAC-SHA256(look-up key,
//!   normalised email)`, never the address: equality look-ups work, and the
//!   hash means nothing without the secret.
//! - **Trial devices.** A trial ([`crate::trials`]) remembers the device
//!   that took it as `HMAC-SHA256(trial key, product, component)` of each
//!   fingerprint component ([`DataKeys::trial_device`]), under a third key
//!   HKDF derives per organisation. Components are already SHA-512 hashes
//!   of machine ids salted with the product, but that salt is public and
//!   some ids are guessable (a MAC address has about 46 bits; cloned VMs
//!   share DMI UUIDs): a plain or publicly salted hash in the ledger could
//!   be matched against a guessed device by anyone holding a dump. The
//!   data secret is the one secret that fits: no copy of it in the ledger
//!   opens without the passphrase, so the hashes in a dump link nothing;
//!   every replica holds it (unlike a per-process random key); it never
//!   rotates (a signing key does, and a rotation would make every earlier
//!   trial unmatchable, resetting every trial); and the per-organisation
//!   key (with the product in the message) makes one device's hashes
//!   unrelated across organisations and products.
//! - **Organisations' secrets.** Secrets the service must use again, not
//!   only compare (a webhook endpoint's signing secret), are sealed with
//!   AES-256-GCM under a fourth key HKDF derives per organisation; the AAD
//!   binds their purpose, the organisation and their row
//!   ([`DataKeys::seal_secret`]).
//! - **Erasure is crypto-shredding.** Erasing a customer deletes its wrapped
//!   data key, the sealed fields and the look-up hash in one transaction.
//!   Copies of the ciphertext left in a WAL, a backup or a replica's dead
//!   rows then open under no key that exists.
//!
//! Sealed values are text: `v1.` then base64url (no padding) of the nonce
//! and the ciphertext with its tag.

use std::collections::BTreeMap;

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit};
use base64ct::{Base64UrlUnpadded, Encoding};
use hmac::Mac;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

use crate::error::LedgerError;
use crate::error::{Error, Result};

const PREFIX: &str = "v1.";
const NONCE_LEN: usize = 12;
const KEY_LEN: usize = 32;
const WRAP_INFO: &[u8] = b"keyseal/org-wrapping-key/v1\0";
const LOOKUP_INFO: &[u8] = b"keyseal/org-email-lookup-key/v1\0";
const TRIAL_INFO: &[u8] = b"keyseal/org-trial-device-key/v1\0";
const TRIAL_COMPONENT: &[u8] = b"keyseal/trial-component/v1\0";
const TRIAL_DEVICE: &[u8] = b"keyseal/trial-device/v1\0";
/// Bytes kept of each trial hash (128 bits: no two of a ledger's
/// components collide by chance).
const TRIAL_HASH_LEN: usize = 16;
const SECRET_INFO: &[u8] = b"keyseal/org-secret-key/v1\0";
const KEY_AAD: &[u8] = b"keyseal/customer-key/v1\0";
const FIELDS_AAD: &[u8] = b"keyseal/customer-fields/v1\0";

/// A customer's personal fields: what is sealed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonalFields {
    /// Name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Email address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The vendor's own key-value data about the customer.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

/// The ledger's data secret, opened: derives every key above. Wiped on drop.
pub struct DataKeys {
    secret: Zeroizing<[u8; KEY_LEN]>,
}

impl std::fmt::Debug for DataKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKeys(..)")
    }
}

/// A trial device as the ledger keeps it ([`DataKeys::trial_device`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrialDevice {
    /// The keyed hash of each distinct component, sorted (hex).
    pub components: Vec<String>,
    /// The keyed hash of the whole fingerprint, its components in order (hex).
    pub device: String,
}

/// A customer's data key, opened. Wiped on drop.
pub struct CustomerKey(Zeroizing<[u8; KEY_LEN]>);

impl DataKeys {
    /// The keys of a data secret (a key file's 32-byte seed).
    #[must_use]
    pub fn from_secret(secret: &[u8; KEY_LEN]) -> Self {
        DataKeys {
            secret: Zeroizing::new(*secret),
        }
    }

    fn derive(&self, info: &[u8], org_id: &str) -> Zeroizing<[u8; KEY_LEN]> {
        let hk = hkdf::Hkdf::<Sha256>::new(None, self.secret.as_ref());
        let mut out = Zeroizing::new([0u8; KEY_LEN]);
        // 32 bytes is always a valid HKDF-SHA256 output length.
        let _ = hk.expand_multi_info(&[info, org_id.as_bytes()], out.as_mut());
        out
    }

    /// The keyed hash of `email` for look-ups in `org_id` (hex). Emails are
    /// compared trimmed and in lower case.
    #[must_use]
    pub fn email_hash(&self, org_id: &str, email: &str) -> String {
        let key = self.derive(LOOKUP_INFO, org_id);
        let mut mac = <hmac::Hmac<Sha256> as hmac::KeyInit>::new_from_slice(key.as_ref())
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        let mut norm = email.trim().to_lowercase();
        mac.update(norm.as_bytes());
        norm.zeroize();
        keyseal_core::hex::encode(&mac.finalize().into_bytes())
    }

    /// What a trial keeps of a device's fingerprint `components` (see the
    /// module's doc): the keyed hash of each distinct component, sorted,
    /// and of the whole fingerprint in its order, for `product` in
    /// `org_id`; hex.
    #[must_use]
    pub fn trial_device(
        &self,
        org_id: &str,
        product: &str,
        components: &[[u8; 16]],
    ) -> TrialDevice {
        let key = self.derive(TRIAL_INFO, org_id);
        let mac = |domain: &[u8], parts: &[&[u8]]| {
            let mut m = <hmac::Hmac<Sha256> as hmac::KeyInit>::new_from_slice(key.as_ref())
                .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
            m.update(domain);
            m.update(&(product.len() as u64).to_be_bytes());
            m.update(product.as_bytes());
            for p in parts {
                m.update(p);
            }
            keyseal_core::hex::encode(&m.finalize().into_bytes()[..TRIAL_HASH_LEN])
        };
        let mut each: Vec<String> = components
            .iter()
            .map(|c| mac(TRIAL_COMPONENT, &[c]))
            .collect();
        each.sort_unstable();
        each.dedup();
        let count = [u8::try_from(components.len()).unwrap_or(u8::MAX)];
        let mut whole: Vec<&[u8]> = vec![&count];
        whole.extend(components.iter().map(|c| &c[..]));
        TrialDevice {
            components: each,
            device: mac(TRIAL_DEVICE, &whole),
        }
    }

    /// A new data key for a customer, and its wrapped form for the ledger.
    pub fn new_customer_key(
        &self,
        org_id: &str,
        customer_id: &str,
    ) -> Result<(CustomerKey, String)> {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        getrandom::fill(key.as_mut())?;
        let wrap = self.derive(WRAP_INFO, org_id);
        let sealed = seal(&wrap, &aad(KEY_AAD, org_id, customer_id), key.as_ref())?;
        Ok((CustomerKey(key), sealed))
    }

    /// Seals one of the organisation's secrets, for the row `row_id`, under
    /// the organisation's secret key; `purpose` (a domain string, NUL
    /// ended) says what it is, so it opens only as that.
    pub fn seal_secret(
        &self,
        org_id: &str,
        purpose: &[u8],
        row_id: &str,
        secret: &[u8],
    ) -> Result<String> {
        let key = self.derive(SECRET_INFO, org_id);
        seal(&key, &aad(purpose, org_id, row_id), secret)
    }

    /// Opens what [`DataKeys::seal_secret`] sealed.
    pub fn open_secret(
        &self,
        org_id: &str,
        purpose: &[u8],
        row_id: &str,
        sealed: &str,
    ) -> Result<Zeroizing<Vec<u8>>> {
        let key = self.derive(SECRET_INFO, org_id);
        open(&key, &aad(purpose, org_id, row_id), sealed)
    }

    /// Opens a customer's wrapped data key.
    pub fn open_customer_key(
        &self,
        org_id: &str,
        customer_id: &str,
        wrapped: &str,
    ) -> Result<CustomerKey> {
        let wrap = self.derive(WRAP_INFO, org_id);
        let plain = open(&wrap, &aad(KEY_AAD, org_id, customer_id), wrapped)?;
        let key: [u8; KEY_LEN] = plain
            .as_slice()
            .try_into()
            .map_err(|_| corrupt("a customer key has the wrong length"))?;
        Ok(CustomerKey(Zeroizing::new(key)))
    }
}

impl CustomerKey {
    /// Seals a customer's fields.
    pub fn seal(&self, org_id: &str, customer_id: &str, f: &PersonalFields) -> Result<String> {
        let json = Zeroizing::new(
            serde_json::to_vec(f).map_err(|e| corrupt(&format!("encoding fields: {e}")))?,
        );
        seal(&self.0, &aad(FIELDS_AAD, org_id, customer_id), &json)
    }

    /// Opens a customer's sealed fields.
    pub fn open(&self, org_id: &str, customer_id: &str, sealed: &str) -> Result<PersonalFields> {
        let json = open(&self.0, &aad(FIELDS_AAD, org_id, customer_id), sealed)?;
        serde_json::from_slice(&json).map_err(|_| corrupt("sealed customer fields are not JSON"))
    }
}

fn aad(domain: &[u8], org_id: &str, customer_id: &str) -> Vec<u8> {
    let mut a = Vec::with_capacity(domain.len() + org_id.len() + customer_id.len() + 1);
    a.extend_from_slice(domain);
    a.extend_from_slice(org_id.as_bytes());
    a.push(0);
    a.extend_from_slice(customer_id.as_bytes());
    a
}

fn corrupt(detail: &str) -> Error {
    Error::Ledger(LedgerError::Corrupt {
        detail: format!("personal data: {detail}"),
    })
}

fn seal(key: &[u8; KEY_LEN], aad: &[u8], msg: &[u8]) -> Result<String> {
    let cipher = Aes256Gcm::new(key.into());
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce)?;
    let ct = cipher
        .encrypt(&nonce.into(), Payload { msg, aad })
        .map_err(|_| corrupt("encryption failed"))?;
    let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    Ok(format!(
        "{PREFIX}{}",
        Base64UrlUnpadded::encode_string(&out)
    ))
}

fn open(key: &[u8; KEY_LEN], aad: &[u8], sealed: &str) -> Result<Zeroizing<Vec<u8>>> {
    let raw = sealed
        .strip_prefix(PREFIX)
        .and_then(|b| Base64UrlUnpadded::decode_vec(b).ok())
        .filter(|r| r.len() >= NONCE_LEN + 16)
        .ok_or_else(|| corrupt("a sealed value is malformed"))?;
    let (nonce, ct) = raw.split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce
        .try_into()
        .map_err(|_| corrupt("a sealed value is malformed"))?;
    let cipher = Aes256Gcm::new(key.into());
    cipher
        .decrypt(&nonce.into(), Payload { msg: ct, aad })
        .map(Zeroizing::new)
        .map_err(|_| corrupt("a sealed value does not open (altered, or moved from another row)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_opens_and_binds_the_row() {
        let keys = DataKeys::from_secret(&[7; 32]);
        let f = PersonalFields {
            name: Some("Ada Lovelace".into()),
            email: Some("ada@example.com".into()),
            metadata: [("tier".to_owned(), "gold".to_owned())].into(),
        };
        let (k, wrapped) = keys.new_customer_key("org_a", "cus_1").unwrap();
        let sealed = k.seal("org_a", "cus_1", &f).unwrap();
        assert!(sealed.starts_with("v1."));
        assert!(!sealed.contains("Ada") && !wrapped.contains("Ada"));
        let k2 = keys.open_customer_key("org_a", "cus_1", &wrapped).unwrap();
        assert_eq!(k2.open("org_a", "cus_1", &sealed).unwrap(), f);
        // Another row, another organisation, another secret: nothing opens.
        assert!(keys.open_customer_key("org_a", "cus_2", &wrapped).is_err());
        assert!(keys.open_customer_key("org_b", "cus_1", &wrapped).is_err());
        assert!(k2.open("org_a", "cus_2", &sealed).is_err());
        let other = DataKeys::from_secret(&[8; 32]);
        assert!(other.open_customer_key("org_a", "cus_1", &wrapped).is_err());
        // A flipped bit, a truncation, garbage: errors, not panics.
        let mut bad = sealed.clone().into_bytes();
        let last = bad.len() - 1;
        bad[last] = if bad[last] == b'A' { b'B' } else { b'A' };
        assert!(
            k2.open("org_a", "cus_1", std::str::from_utf8(&bad).unwrap())
                .is_err()
        );
        for s in ["", "v1.", "v1.AAAA", "v2.xyz", "v1.!!!!"] {
            assert!(k2.open("org_a", "cus_1", s).is_err(), "{s}");
        }
        // Two seals of the same fields differ (random nonces).
        assert_ne!(k.seal("org_a", "cus_1", &f).unwrap(), sealed);
    }

    #[test]
    fn trial_devices_are_keyed_per_organisation_and_product() {
        let keys = DataKeys::from_secret(&[7; 32]);
        let (a, b, c) = ([1u8; 16], [2u8; 16], [3u8; 16]);
        let d = keys.trial_device("org_a", "acme-cad", &[a, b, c]);
        assert_eq!(d.components.len(), 3);
        assert!(d.components.windows(2).all(|w| w[0] < w[1]));
        assert!(d.components.iter().all(|h| h.len() == 32));
        // One component changed: the two others hash the same, the device not.
        let e = keys.trial_device("org_a", "acme-cad", &[a, b, [9; 16]]);
        let shared = d.components.iter().filter(|h| e.components.contains(h));
        assert_eq!(shared.count(), 2);
        assert_ne!(d.device, e.device);
        // The same components in another order: the same set, another device.
        let r = keys.trial_device("org_a", "acme-cad", &[c, b, a]);
        assert_eq!(r.components, d.components);
        assert_ne!(r.device, d.device);
        // A repeated component counts once.
        assert_eq!(
            keys.trial_device("org_a", "acme-cad", &[a, a])
                .components
                .len(),
            1
        );
        // Another organisation, product or secret: nothing in common.
        for other in [
            keys.trial_device("org_b", "acme-cad", &[a, b, c]),
            keys.trial_device("org_a", "acme-viewer", &[a, b, c]),
            DataKeys::from_secret(&[8; 32]).trial_device("org_a", "acme-cad", &[a, b, c]),
        ] {
            assert!(other.components.iter().all(|h| !d.components.contains(h)));
            assert_ne!(other.device, d.device);
        }
        // Never the component itself.
        assert!(!d.components.contains(&keyseal_core::hex::encode(&a)));
    }

    #[test]
    fn email_hashes_are_keyed_normalised_and_per_organisation() {
        let keys = DataKeys::from_secret(&[7; 32]);
        let h = keys.email_hash("org_a", "Ada@Example.com ");
        assert_eq!(h, keys.email_hash("org_a", "ada@example.com"));
        assert_eq!(h.len(), 64);
        assert_ne!(h, keys.email_hash("org_b", "ada@example.com"));
        assert_ne!(
            h,
            DataKeys::from_secret(&[8; 32]).email_hash("org_a", "ada@example.com")
        );
    }
}
