//! keyseal signing keys at rest (shared by keyseal-issuer, which keeps them
//! in its ledger, and the Python wheel, which opens exported key files): the
//! seed sealed with XChaCha20-Poly1305 under a
//! key derived from the passphrase with Argon2id. the seed sealed with XChaCha20-Poly1305 under a
//! key derived from the passphrase with Argon2id. The Argon2 parameters,
//! salt and nonce are stored beside the ciphertext; the AAD binds the format
//! version, the key id and the public key, so a ciphertext moved to another
//! key's file does not open.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use base64ct::{Base64UrlUnpadded, Encoding};
use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use keyseal_core::key::SEED_LEN;
use keyseal_core::{KeyId, PublicKey, SigningKey};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

mod error;
pub mod fs;

pub use error::{Error, Result};

/// The `format` field of key files written by this version.
pub const FORMAT: &str = "keyseal-signing-key/v1";
const AAD_DOMAIN: &[u8] = b"keyseal/signing-key/v1\0";
const SALT_LEN: usize = 16;
const NONCE_LEN: usize = 24;
const KEK_LEN: usize = 32;

/// A passphrase, wiped from memory on drop; never printed.
pub struct Passphrase(Zeroizing<String>);

impl Passphrase {
    /// Wraps a passphrase; refuses an empty one.
    pub fn new(s: Zeroizing<String>) -> Result<Self> {
        if s.is_empty() {
            return Err(Error::BadPassphrase("it is empty"));
        }
        Ok(Passphrase(s))
    }

    fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(redacted)")
    }
}

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_cost_kib: u32,
    /// Passes over memory.
    pub t_cost: u32,
    /// Lanes.
    pub p_cost: u32,
}

impl KdfParams {
    /// The production default: 64 MiB, 3 passes, 1 lane (about a quarter
    /// second on a laptop).
    pub const DEFAULT: KdfParams = KdfParams {
        m_cost_kib: 64 * 1024,
        t_cost: 3,
        p_cost: 1,
    };

    fn argon2(&self) -> Result<argon2::Argon2<'static>> {
        let params = argon2::Params::new(self.m_cost_kib, self.t_cost, self.p_cost, Some(KEK_LEN))
            .map_err(|e| Error::KdfParams(e.to_string()))?;
        Ok(argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            params,
        ))
    }

    /// Whether these are weaker than [`KdfParams::DEFAULT`] in any dimension.
    #[must_use]
    pub fn is_weaker_than_default(&self) -> bool {
        self.m_cost_kib < Self::DEFAULT.m_cost_kib || self.t_cost < Self::DEFAULT.t_cost
    }
}

impl Default for KdfParams {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl FromStr for KdfParams {
    type Err = Error;

    /// Parses `m=65536,t=3,p=1` (memory in KiB); missing parts take the default.
    fn from_str(s: &str) -> Result<Self> {
        let mut p = KdfParams::DEFAULT;
        for part in s.split(',').map(str::trim).filter(|x| !x.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| Error::KdfParams(format!("`{part}` is not name=value")))?;
            let v: u32 = v
                .parse()
                .map_err(|_| Error::KdfParams(format!("`{v}` is not a number")))?;
            match k {
                "m" => p.m_cost_kib = v,
                "t" => p.t_cost = v,
                "p" => p.p_cost = v,
                _ => {
                    return Err(Error::KdfParams(format!(
                        "unknown parameter `{k}` (use m, t and p)"
                    )));
                }
            }
        }
        p.argon2()?;
        Ok(p)
    }
}

impl fmt::Display for KdfParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "m={},t={},p={}",
            self.m_cost_kib, self.t_cost, self.p_cost
        )
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Kdf {
    alg: String,
    version: u32,
    #[serde(flatten)]
    params: KdfParams,
    salt: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Aead {
    alg: String,
    nonce: String,
}

/// The JSON form of a key file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyFile {
    format: String,
    key_id: String,
    public_key: String,
    kdf: Kdf,
    aead: Aead,
    ciphertext: String,
}

fn aad(key_id: KeyId, public: &PublicKey) -> Vec<u8> {
    let mut a = Vec::with_capacity(AAD_DOMAIN.len() + 8 + 32);
    a.extend_from_slice(AAD_DOMAIN);
    a.extend_from_slice(&key_id.to_bytes());
    a.extend_from_slice(&public.to_bytes());
    a
}

fn derive_kek(
    pass: &Passphrase,
    params: &KdfParams,
    salt: &[u8],
) -> Result<Zeroizing<[u8; KEK_LEN]>> {
    let mut kek = Zeroizing::new([0u8; KEK_LEN]);
    params
        .argon2()?
        .hash_password_into(pass.as_bytes(), salt, kek.as_mut())
        .map_err(|e| Error::KdfParams(e.to_string()))?;
    Ok(kek)
}

impl KeyFile {
    /// Seals `key` under `pass`.
    pub fn seal(key: &SigningKey, pass: &Passphrase, params: KdfParams) -> Result<Self> {
        let mut salt = [0u8; SALT_LEN];
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut salt)?;
        getrandom::fill(&mut nonce)?;
        let kek = derive_kek(pass, &params, &salt)?;
        let cipher = XChaCha20Poly1305::new((&*kek).into());
        let mut buf = Zeroizing::new(Vec::with_capacity(SEED_LEN + 16));
        buf.extend_from_slice(key.to_seed().as_ref());
        let public = key.public_key();
        cipher
            .encrypt_in_place(&XNonce::from(nonce), &aad(key.key_id(), &public), &mut *buf)
            .map_err(|_| Error::KdfParams("encryption failed".into()))?;
        Ok(KeyFile {
            format: FORMAT.into(),
            key_id: key.key_id().to_string(),
            public_key: public.to_string(),
            kdf: Kdf {
                alg: "argon2id".into(),
                version: 0x13,
                params,
                salt: Base64UrlUnpadded::encode_string(&salt),
            },
            aead: Aead {
                alg: "xchacha20poly1305".into(),
                nonce: Base64UrlUnpadded::encode_string(&nonce),
            },
            // The ciphertext is not secret.
            ciphertext: Base64UrlUnpadded::encode_string(&buf),
        })
    }

    /// Opens the key with `pass`. `path` is only for error messages.
    pub fn open(&self, pass: &Passphrase, path: &Path) -> Result<SigningKey> {
        let corrupt = |detail: &str| Error::CorruptKeyFile {
            path: path.to_path_buf(),
            detail: detail.to_owned(),
        };
        if self.format != FORMAT {
            return Err(corrupt(&format!(
                "unknown format `{}` (expected {FORMAT})",
                self.format
            )));
        }
        if self.kdf.alg != "argon2id"
            || self.kdf.version != 0x13
            || self.aead.alg != "xchacha20poly1305"
        {
            return Err(corrupt("unknown key-derivation or encryption algorithm"));
        }
        let key_id: KeyId = self.key_id.parse().map_err(|_| corrupt("bad key_id"))?;
        let public: PublicKey = self
            .public_key
            .parse()
            .map_err(|_| corrupt("bad public_key"))?;
        if public.key_id() != key_id {
            return Err(corrupt("key_id does not match public_key"));
        }
        let salt =
            Base64UrlUnpadded::decode_vec(&self.kdf.salt).map_err(|_| corrupt("bad salt"))?;
        let nonce: [u8; NONCE_LEN] = Base64UrlUnpadded::decode_vec(&self.aead.nonce)
            .ok()
            .and_then(|n| n.try_into().ok())
            .ok_or_else(|| corrupt("bad nonce"))?;
        let mut buf = Zeroizing::new(
            Base64UrlUnpadded::decode_vec(&self.ciphertext)
                .map_err(|_| corrupt("bad ciphertext"))?,
        );
        if buf.len() != SEED_LEN + 16 {
            return Err(corrupt("ciphertext has the wrong length"));
        }
        let kek = derive_kek(pass, &self.kdf.params, &salt)?;
        let cipher = XChaCha20Poly1305::new((&*kek).into());
        cipher
            .decrypt_in_place(&XNonce::from(nonce), &aad(key_id, &public), &mut *buf)
            .map_err(|_| Error::WrongPassphrase { key_id })?;
        let mut seed = Zeroizing::new([0u8; SEED_LEN]);
        seed.copy_from_slice(&buf[..SEED_LEN]);
        let key =
            SigningKey::from_seed(&seed).map_err(|_| corrupt("the seed is not a valid key"))?;
        if key.public_key() != public {
            return Err(corrupt("the decrypted key does not match public_key"));
        }
        Ok(key)
    }

    /// The key id the file claims.
    #[must_use]
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The public key the file claims, checked against its key id (the
    /// passphrase is not needed; [`KeyFile::open`] checks the sealed seed
    /// against it).
    pub fn public_key(&self, path: &Path) -> Result<PublicKey> {
        let corrupt = |detail: &str| Error::CorruptKeyFile {
            path: path.to_path_buf(),
            detail: detail.to_owned(),
        };
        let public: PublicKey = self
            .public_key
            .parse()
            .map_err(|_| corrupt("bad public_key"))?;
        if public.key_id().to_string() != self.key_id {
            return Err(corrupt("key_id does not match public_key"));
        }
        Ok(public)
    }

    /// The file's text (JSON), as the ledger keeps it.
    #[must_use]
    pub fn to_json(&self) -> String {
        // A struct of strings and integers always serialises.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses the text of a key file; `path` is only for error messages.
    pub fn from_json(text: &str, path: &Path) -> Result<Self> {
        serde_json::from_str(text).map_err(|e| Error::CorruptKeyFile {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })
    }

    /// The Argon2 parameters the file was sealed with.
    #[must_use]
    pub fn kdf_params(&self) -> KdfParams {
        self.kdf.params
    }

    /// Reads and parses a key file.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io("read", path, e))?;
        Self::from_json(&text, path)
    }

    /// Writes the file atomically, readable by its owner only.
    pub fn write(&self, path: &Path) -> Result<()> {
        let mut text =
            serde_json::to_string_pretty(self).map_err(|e| Error::KdfParams(e.to_string()))?;
        text.push('\n');
        fs::write_atomic(path, text.as_bytes(), 0o600)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const CHEAP: KdfParams = KdfParams {
        m_cost_kib: 64,
        t_cost: 1,
        p_cost: 1,
    };

    fn pass(s: &str) -> Passphrase {
        Passphrase::new(Zeroizing::new(s.into())).unwrap()
    }

    #[test]
    fn round_trip_wrong_passphrase_and_swapped_ciphertext() {
        let k1 = SigningKey::from_seed(&[1; 32]).unwrap();
        let k2 = SigningKey::from_seed(&[2; 32]).unwrap();
        let f1 = KeyFile::seal(&k1, &pass("right"), CHEAP).unwrap();
        let f2 = KeyFile::seal(&k2, &pass("right"), CHEAP).unwrap();
        let p = Path::new("k");
        assert_eq!(
            f1.open(&pass("right"), p).unwrap().public_key(),
            k1.public_key()
        );
        assert!(matches!(
            f1.open(&pass("wrong"), p),
            Err(Error::WrongPassphrase { .. })
        ));
        // k2's sealed seed in k1's file: the AAD (key id) no longer matches.
        let mut swapped = f1.clone();
        swapped.ciphertext = f2.ciphertext.clone();
        swapped.aead = f2.aead.clone();
        swapped.kdf = f2.kdf.clone();
        assert!(matches!(
            swapped.open(&pass("right"), p),
            Err(Error::WrongPassphrase { .. })
        ));
        let json = serde_json::to_string(&f1).unwrap();
        assert!(json.contains("\"m_cost_kib\":64"));
        assert!(!json.contains(&Base64UrlUnpadded::encode_string(&[1; 32])));
    }

    #[test]
    fn params_parse() {
        assert_eq!("m=64,t=1,p=1".parse::<KdfParams>().unwrap(), CHEAP);
        assert!("m=1".parse::<KdfParams>().is_err());
        assert!("q=1".parse::<KdfParams>().is_err());
    }
}
