//! The one error type of keyseal-core.
//!
//! Every variant has a stable [`Error::code`]: the same short string every SDK
//! (Rust, JavaScript, Python) reports for the same failure.

use core::fmt;

use crate::key::KeyId;
use crate::lease::LeaseFault;

/// Why a key, certificate or revocation list was refused, or an input was bad.
///
/// A bad signature is deliberately one opaque variant: it says nothing about
/// which byte was wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The input is not a well-formed keyseal object; the detail says what is wrong.
    Malformed(Malformed),
    /// The input names a format version this build does not know.
    UnsupportedVersion(u8),
    /// The object was signed by a key id the keyring does not hold.
    UnknownKey(KeyId),
    /// The signature does not verify.
    BadSignature,
    /// The signing key is known but was not allowed to sign this object:
    /// the issue time lies outside its window, or the product outside its scope.
    KeyNotValid(KeyId),
    /// The signing key is listed as revoked in the revocation list.
    KeyRevoked(KeyId),
    /// The license is not valid before this time (unix seconds).
    NotYetValid {
        /// The license's not-before time.
        not_before: u64,
    },
    /// The license expired (its grace period, if any, is over too).
    Expired {
        /// The license's expiry time.
        expired_at: u64,
    },
    /// The license is for another product.
    WrongProduct,
    /// The license is bound to another device, or no device fingerprint was given.
    WrongDevice,
    /// The license does not cover this version of the app.
    VersionNotCovered,
    /// The license id is on the revocation list.
    Revoked,
    /// The revocation list's next-update time has passed.
    StaleRevocationList {
        /// When the list said it would be replaced.
        next_update: u64,
    },
    /// The revocation list does not supersede one already seen (a rollback:
    /// a lower sequence, or a signer outranked by the newest list's; see
    /// [`crate::revocation::ListOrder`]).
    RolledBackRevocationList {
        /// The sequence number of the list offered.
        sequence: u64,
        /// The sequence number of the newest list seen before.
        seen: u64,
    },
    /// The keyring is full ([`crate::keyring::MAX_KEYS`] keys or roots).
    KeyringFull,
    /// Claims given to the issuer break a documented limit; the detail says which.
    InvalidClaims(Malformed),
    /// The license holds, but its lease does not hold for it on this device;
    /// the fault says why.
    LeaseInvalid(LeaseFault),
    /// The license holds, but its lease ended: check in, or activate again.
    LeaseExpired {
        /// When the lease ended.
        expired_at: u64,
    },
}

/// What exactly is malformed. Kept small and `Copy`, so errors never allocate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Malformed {
    /// The text does not start with the expected prefix.
    Prefix,
    /// The base64url text is not canonical unpadded base64url.
    Base64,
    /// The input is shorter than the smallest valid object.
    Truncated,
    /// The input is longer than the largest valid object.
    TooLong,
    /// The body does not decode, or has bytes after its end.
    Encoding,
    /// The body decodes, but not from its one canonical encoding.
    NonCanonical,
    /// A string is empty, too long, or has characters outside its alphabet.
    Text,
    /// A list is too long, unsorted or has duplicates.
    List,
    /// A field breaks a rule of the format (for example not-before after expiry).
    Field,
    /// A public key is not a valid, non-weak Ed25519 point.
    PublicKey,
    /// The armored file form is broken (missing or mismatched BEGIN/END lines).
    Armor,
    /// A keyring line is not understood.
    Keyring,
    /// A device fingerprint is not well formed.
    Fingerprint,
    /// An activation code's checksum does not match: a typo.
    Checksum,
}

impl Error {
    /// The stable, machine-readable code shared by every keyseal SDK.
    #[must_use]
    pub const fn code(&self) -> &'static str {
        match self {
            Error::Malformed(_) => "malformed",
            Error::UnsupportedVersion(_) => "unsupported_version",
            Error::UnknownKey(_) => "unknown_key",
            Error::BadSignature => "bad_signature",
            Error::KeyNotValid(_) => "key_not_valid",
            Error::KeyRevoked(_) => "key_revoked",
            Error::NotYetValid { .. } => "not_yet_valid",
            Error::Expired { .. } => "expired",
            Error::WrongProduct => "wrong_product",
            Error::WrongDevice => "wrong_device",
            Error::VersionNotCovered => "version_not_covered",
            Error::Revoked => "revoked",
            Error::StaleRevocationList { .. } => "stale_revocation_list",
            Error::RolledBackRevocationList { .. } => "rolled_back_revocation_list",
            Error::KeyringFull => "keyring_full",
            Error::InvalidClaims(_) => "invalid_claims",
            Error::LeaseInvalid(_) => "lease_invalid",
            Error::LeaseExpired { .. } => "lease_expired",
        }
    }

    /// Every code [`Error::code`] can return, for bindings and docs.
    pub const CODES: &'static [&'static str] = &[
        "malformed",
        "unsupported_version",
        "unknown_key",
        "bad_signature",
        "key_not_valid",
        "key_revoked",
        "not_yet_valid",
        "expired",
        "wrong_product",
        "wrong_device",
        "version_not_covered",
        "revoked",
        "stale_revocation_list",
        "rolled_back_revocation_list",
        "keyring_full",
        "invalid_claims",
        "lease_invalid",
        "lease_expired",
    ];
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Malformed::Prefix => "unexpected prefix",
            Malformed::Base64 => "invalid base64url",
            Malformed::Truncated => "truncated",
            Malformed::TooLong => "too long",
            Malformed::Encoding => "undecodable body",
            Malformed::NonCanonical => "non-canonical encoding",
            Malformed::Text => "invalid text field",
            Malformed::List => "invalid list",
            Malformed::Field => "inconsistent fields",
            Malformed::PublicKey => "invalid public key",
            Malformed::Armor => "broken armor",
            Malformed::Keyring => "invalid keyring line",
            Malformed::Fingerprint => "invalid device fingerprint",
            Malformed::Checksum => "checksum does not match (a typo?)",
        })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Malformed(m) => write!(f, "malformed input: {m}"),
            Error::UnsupportedVersion(v) => write!(f, "unsupported format version {v}"),
            Error::UnknownKey(id) => write!(f, "signed by unknown key {id}"),
            Error::BadSignature => f.write_str("invalid signature"),
            Error::KeyNotValid(id) => write!(f, "key {id} was not allowed to sign this"),
            Error::KeyRevoked(id) => write!(f, "signing key {id} is revoked"),
            Error::NotYetValid { not_before } => write!(f, "not valid before {not_before}"),
            Error::Expired { expired_at } => write!(f, "expired at {expired_at}"),
            Error::WrongProduct => f.write_str("license is for another product"),
            Error::WrongDevice => f.write_str("license is bound to another device"),
            Error::VersionNotCovered => f.write_str("license does not cover this app version"),
            Error::Revoked => f.write_str("license is revoked"),
            Error::StaleRevocationList { next_update } => {
                write!(f, "revocation list is stale since {next_update}")
            }
            Error::RolledBackRevocationList { sequence, seen } => write!(
                f,
                "revocation list {sequence} does not supersede list {seen} already seen"
            ),
            Error::KeyringFull => f.write_str("keyring is full"),
            Error::InvalidClaims(m) => write!(f, "invalid claims: {m}"),
            Error::LeaseInvalid(l) => write!(f, "{l}"),
            Error::LeaseExpired { expired_at } => write!(f, "lease ended at {expired_at}"),
        }
    }
}

impl core::error::Error for Error {}

impl From<Malformed> for Error {
    fn from(m: Malformed) -> Self {
        Error::Malformed(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_listed_and_unique() {
        let samples = [
            Error::Malformed(Malformed::Base64),
            Error::UnsupportedVersion(9),
            Error::UnknownKey(KeyId::from_bytes([0; 8])),
            Error::BadSignature,
            Error::KeyNotValid(KeyId::from_bytes([0; 8])),
            Error::KeyRevoked(KeyId::from_bytes([0; 8])),
            Error::NotYetValid { not_before: 1 },
            Error::Expired { expired_at: 1 },
            Error::WrongProduct,
            Error::WrongDevice,
            Error::VersionNotCovered,
            Error::Revoked,
            Error::StaleRevocationList { next_update: 1 },
            Error::RolledBackRevocationList {
                sequence: 1,
                seen: 2,
            },
            Error::KeyringFull,
            Error::InvalidClaims(Malformed::Text),
            Error::LeaseInvalid(LeaseFault::OtherLicense),
            Error::LeaseExpired { expired_at: 1 },
        ];
        assert_eq!(samples.len(), Error::CODES.len());
        for (e, code) in samples.iter().zip(Error::CODES) {
            assert_eq!(e.code(), *code);
        }
        for (i, a) in Error::CODES.iter().enumerate() {
            assert!(!Error::CODES[i + 1..].contains(a));
        }
    }
}
