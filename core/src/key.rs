//! Key ids, public keys and (with the `sign` feature) signing keys.

use core::fmt;
use core::str::FromStr;

use ed25519_dalek::VerifyingKey;
use sha2::{Digest, Sha512};

use crate::error::{Error, Malformed};
use crate::text;

/// Length of a [`KeyId`] in bytes.
pub const KEY_ID_LEN: usize = 8;
/// Length of an Ed25519 public key in bytes.
pub const PUBLIC_KEY_LEN: usize = 32;
/// Length of an Ed25519 secret seed in bytes.
pub const SEED_LEN: usize = 32;
/// Prefix of a public key's text form.
pub const PUBLIC_KEY_PREFIX: &str = "kspub1.";

const KEY_ID_DOMAIN: &[u8] = b"keyseal/key-id/v1\0";

/// The 8-byte id of a public key: the first 8 bytes of
/// SHA-512(`"keyseal/key-id/v1\0"` || public key). Shown as 16 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId([u8; KEY_ID_LEN]);

impl KeyId {
    /// Wraps raw bytes (for example read from an encoded object).
    #[must_use]
    pub const fn from_bytes(bytes: [u8; KEY_ID_LEN]) -> Self {
        KeyId(bytes)
    }

    /// The raw bytes.
    #[must_use]
    pub const fn to_bytes(self) -> [u8; KEY_ID_LEN] {
        self.0
    }

    /// The id as a big-endian integer (the order revocation lists sort by).
    #[must_use]
    pub const fn to_u64(self) -> u64 {
        u64::from_be_bytes(self.0)
    }

    /// Derives the id of a public key.
    #[must_use]
    pub fn derive(public_key: &[u8; PUBLIC_KEY_LEN]) -> Self {
        let digest = Sha512::new()
            .chain_update(KEY_ID_DOMAIN)
            .chain_update(public_key)
            .finalize();
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&digest[..KEY_ID_LEN]);
        KeyId(id)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

impl FromStr for KeyId {
    type Err = Error;

    /// Parses 16 lower- or upper-case hex digits.
    fn from_str(s: &str) -> Result<Self, Error> {
        let mut id = [0u8; KEY_ID_LEN];
        text::decode_hex(s, &mut id).map_err(|()| Error::Malformed(Malformed::Text))?;
        Ok(KeyId(id))
    }
}

/// A trusted Ed25519 public key: checked to be a valid point of large order
/// when it is loaded, so weak keys never reach verification.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey {
    key: VerifyingKey,
    id: KeyId,
}

impl PublicKey {
    /// Loads a public key from its 32 bytes; rejects invalid encodings,
    /// non-canonical encodings and weak (small-order) points.
    pub fn from_bytes(bytes: &[u8; PUBLIC_KEY_LEN]) -> Result<Self, Error> {
        let key = VerifyingKey::from_bytes(bytes).map_err(|_| Malformed::PublicKey)?;
        // RFC 8032 section 5.1.3: decoding fails if y >= p, or if x = 0 with
        // the sign bit set. ed25519-dalek reduces y mod p instead, so some
        // points of large order (y = 3, 4, 5, ...) also decode from a second,
        // non-canonical encoding, and `verify_strict` hashes the bytes as
        // given. A point must have one encoding (one key id, one text form),
        // so only the bytes that re-compression gives back are a key.
        if key.to_edwards().compress().to_bytes() != *bytes {
            return Err(Malformed::PublicKey.into());
        }
        if key.is_weak() {
            return Err(Malformed::PublicKey.into());
        }
        Ok(PublicKey {
            key,
            id: KeyId::derive(bytes),
        })
    }

    /// The 32 bytes of the key.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; PUBLIC_KEY_LEN] {
        self.key.to_bytes()
    }

    /// The curve point.
    #[cfg(feature = "alloc")]
    pub(crate) fn point(&self) -> curve25519_dalek::EdwardsPoint {
        self.key.to_edwards()
    }

    /// The key's id.
    #[must_use]
    pub const fn key_id(&self) -> KeyId {
        self.id
    }

    /// Strict Ed25519 verification of `message` (RFC 8032 with canonical `S`,
    /// canonical `R` and no small-order `R` or key), the one primitive every
    /// keyseal object goes through.
    pub fn verify_strict(&self, message: &[u8], signature: &[u8; 64]) -> Result<(), Error> {
        let signature = ed25519_dalek::Signature::from_bytes(signature);
        self.key
            .verify_strict(message, &signature)
            .map_err(|_| Error::BadSignature)
    }

    /// Verifies `domain || body`, the form every keyseal signature takes,
    /// with `extra` appended (a device binding hash for device-bound licenses).
    pub(crate) fn verify_domain(
        &self,
        domain: &[u8],
        body: &[u8],
        extra: &[u8],
        signature: &[u8; 64],
    ) -> Result<(), Error> {
        let len = domain.len() + body.len() + extra.len();
        // Typical licenses fit a small buffer; zeroing the full one costs
        // more than the rest of the envelope handling.
        let mut small = [0u8; 384];
        let mut large;
        let buf: &mut [u8] = if len <= small.len() {
            &mut small
        } else {
            large = [0u8; crate::MAX_SIGNED_MESSAGE_LEN];
            &mut large
        };
        let msg = buf.get_mut(..len).ok_or(Malformed::TooLong)?;
        let (d, rest) = msg.split_at_mut(domain.len());
        let (b, e) = rest.split_at_mut(body.len());
        d.copy_from_slice(domain);
        b.copy_from_slice(body);
        e.copy_from_slice(extra);
        self.verify_strict(msg, signature)
    }
}

impl fmt::Display for PublicKey {
    /// `kspub1.` followed by the key in unpadded base64url.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        text::write_prefixed(f, PUBLIC_KEY_PREFIX, &self.to_bytes())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self}, id {})", self.id)
    }
}

impl FromStr for PublicKey {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let mut buf = [0u8; PUBLIC_KEY_LEN];
        let bytes = text::decode_prefixed(PUBLIC_KEY_PREFIX, s, &mut buf)?;
        let bytes: &[u8; PUBLIC_KEY_LEN] = bytes.try_into().map_err(|_| Malformed::PublicKey)?;
        PublicKey::from_bytes(bytes)
    }
}

#[cfg(feature = "sign")]
pub use signing::SigningKey;

#[cfg(feature = "sign")]
mod signing {
    use alloc::vec::Vec;
    use core::fmt;

    use zeroize::Zeroizing;

    use super::{KeyId, PublicKey, SEED_LEN};

    /// An Ed25519 signing key. Wiped from memory on drop, never printed
    /// (`Debug` shows only the key id), and it has no `Display`.
    pub struct SigningKey {
        inner: ed25519_dalek::SigningKey,
        public: PublicKey,
    }

    impl SigningKey {
        /// Builds the key from its 32-byte secret seed (RFC 8032).
        ///
        /// Fails only if the derived public key is weak, which no honestly
        /// generated seed produces.
        pub fn from_seed(seed: &[u8; SEED_LEN]) -> Result<Self, crate::Error> {
            let inner = ed25519_dalek::SigningKey::from_bytes(seed);
            let public = PublicKey::from_bytes(&inner.verifying_key().to_bytes())?;
            Ok(SigningKey { inner, public })
        }

        /// A fresh key from a cryptographically secure random generator.
        pub fn generate<R: rand_core::CryptoRng + ?Sized>(rng: &mut R) -> Self {
            loop {
                let mut seed = Zeroizing::new([0u8; SEED_LEN]);
                rng.fill_bytes(seed.as_mut());
                if let Ok(key) = SigningKey::from_seed(&seed) {
                    return key;
                }
            }
        }

        /// The secret seed, in a buffer that is wiped when dropped.
        /// Only for wrapping the key (for example in an encrypted vault).
        #[must_use]
        pub fn to_seed(&self) -> Zeroizing<[u8; SEED_LEN]> {
            Zeroizing::new(self.inner.to_bytes())
        }

        /// The matching public key.
        #[must_use]
        pub const fn public_key(&self) -> PublicKey {
            self.public
        }

        /// The key id of the matching public key.
        #[must_use]
        pub const fn key_id(&self) -> KeyId {
            self.public.key_id()
        }

        /// Plain Ed25519 signature of `message`.
        #[must_use]
        pub fn sign_raw(&self, message: &[u8]) -> [u8; 64] {
            use ed25519_dalek::Signer;
            self.inner.sign(message).to_bytes()
        }

        /// Signs `domain || body || extra`.
        pub(crate) fn sign_domain(&self, domain: &[u8], body: &[u8], extra: &[u8]) -> [u8; 64] {
            let mut msg = Vec::with_capacity(domain.len() + body.len() + extra.len());
            msg.extend_from_slice(domain);
            msg.extend_from_slice(body);
            msg.extend_from_slice(extra);
            self.sign_raw(&msg)
        }
    }

    impl fmt::Debug for SigningKey {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "SigningKey(id {}, secret redacted)", self.key_id())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_key_text_round_trip_and_weak_keys_refused() {
        let pk_bytes = [
            0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64,
            0x07, 0x3a, 0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68,
            0xf7, 0x07, 0x51, 0x1a,
        ];
        let pk = PublicKey::from_bytes(&pk_bytes).unwrap();
        let text = alloc::format!("{pk}");
        assert!(text.starts_with(PUBLIC_KEY_PREFIX));
        assert_eq!(text.parse::<PublicKey>().unwrap(), pk);
        // The identity point is a weak key.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(
            PublicKey::from_bytes(&identity),
            Err(Error::Malformed(Malformed::PublicKey))
        );
    }

    #[test]
    fn non_canonical_encoding_refused() {
        // y = 3 is on the curve and its point is not small-order.
        let mut canonical = [0u8; 32];
        canonical[0] = 3;
        assert!(PublicKey::from_bytes(&canonical).is_ok());
        // y = p + 3 = 2^255 - 16 is a second encoding of the same point, and
        // with the sign bit set, of its negation.
        let mut non_canonical = [0xff; 32];
        non_canonical[0] = 0xf0;
        non_canonical[31] = 0x7f;
        let mut negated = non_canonical;
        negated[31] |= 0x80;
        for bytes in [non_canonical, negated] {
            // Decoding and the weak-key check let it through; only the
            // canonical-encoding check refuses it.
            let lenient = VerifyingKey::from_bytes(&bytes).unwrap();
            assert!(!lenient.is_weak());
            let mut y = lenient.to_edwards().compress().to_bytes();
            y[31] &= 0x7f;
            assert_eq!(y, canonical);
            assert_eq!(
                PublicKey::from_bytes(&bytes),
                Err(Error::Malformed(Malformed::PublicKey))
            );
        }
    }

    #[test]
    fn key_id_text_round_trip() {
        let id = KeyId::from_bytes([1, 2, 3, 4, 5, 6, 0xab, 0xff]);
        assert_eq!(alloc::format!("{id}"), "010203040506abff");
        assert_eq!("010203040506abff".parse::<KeyId>().unwrap(), id);
        assert_eq!("010203040506ABFF".parse::<KeyId>().unwrap(), id);
        assert!("010203040506abf".parse::<KeyId>().is_err());
        assert!("010203040506abfg".parse::<KeyId>().is_err());
    }
}
