//! Seat allotments: the vendor's signed grant of some of a license's seats
//! to an on-premises relay, which then signs the leases for those seats on
//! a LAN with no internet (docs/FORMAT.md, "Seat allotment").
//!
//! The relay makes its own key pair; the vendor signs, with an issuing key,
//! the relay's public key, the license, the number of seats and a short
//! validity. A lease the relay signs carries its allotment, so an app
//! verifies it against the vendor's keyring alone
//! ([`crate::UnverifiedLease::verify`]). The relay key signs leases only,
//! for that license only, within the allotment's validity: it can never
//! sign a license.

use serde::{Deserialize, Serialize};

use crate::claims::LicenseId;
use crate::envelope::{self, OVERHEAD};
use crate::error::{Error, Malformed};
use crate::key::{KeyId, PUBLIC_KEY_LEN, PublicKey};
use crate::keyring::Keyring;
use crate::text;

/// Format version of seat allotments.
pub const ALLOTMENT_VERSION: u8 = 1;
/// Prefix of an allotment's text form.
pub const ALLOTMENT_PREFIX: &str = "ksallot1.";
/// Largest allotment body: license id, relay key, a varint u32 and two
/// varint u64 times.
pub const MAX_ALLOTMENT_BODY_LEN: usize = 16 + PUBLIC_KEY_LEN + 5 + 2 * 10;
/// Largest binary allotment.
pub const MAX_ALLOTMENT_LEN: usize = OVERHEAD + MAX_ALLOTMENT_BODY_LEN;
/// Domain separation of allotment signatures.
pub(crate) const ALLOTMENT_DOMAIN: &[u8] = b"keyseal/seat-allotment/v1\0";

/// The body of an allotment, field by field (postcard, like the claims).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllotmentTerms {
    /// The license whose seats are allotted.
    pub license_id: LicenseId,
    /// The relay's public key, which signs the leases.
    pub relay_key: [u8; PUBLIC_KEY_LEN],
    /// How many seats the relay may hold leases on at once (at least 1).
    pub seats: u32,
    /// When the vendor signed it (unix seconds).
    pub issued_at: u64,
    /// When it ends: no lease the relay signs may end later.
    pub expires_at: u64,
}

impl AllotmentTerms {
    /// Decodes a body, refusing anything but the canonical encoding of
    /// terms with a valid relay key, at least one seat and
    /// `issued_at <= expires_at`.
    fn decode(body: &[u8]) -> Result<(Self, PublicKey), Malformed> {
        let (terms, rest): (AllotmentTerms, _) =
            postcard::take_from_bytes(body).map_err(|_| Malformed::Encoding)?;
        if !rest.is_empty() {
            return Err(Malformed::Encoding);
        }
        let relay = PublicKey::from_bytes(&terms.relay_key).map_err(|_| Malformed::PublicKey)?;
        if terms.seats == 0 || terms.issued_at > terms.expires_at {
            return Err(Malformed::Field);
        }
        let mut buf = [0u8; MAX_ALLOTMENT_BODY_LEN];
        if postcard::to_slice(&terms, &mut buf).map_or(true, |again| again != body) {
            return Err(Malformed::NonCanonical);
        }
        Ok((terms, relay))
    }

    /// The key id of the relay key: the signer id of its leases.
    #[must_use]
    pub fn relay_key_id(&self) -> KeyId {
        KeyId::derive(&self.relay_key)
    }
}

/// Decodes an allotment's text form ([`ALLOTMENT_PREFIX`] then canonical
/// unpadded base64url) into `buf`.
pub fn decode_text<'b>(
    text: &str,
    buf: &'b mut [u8; MAX_ALLOTMENT_LEN],
) -> Result<&'b [u8], Error> {
    if let Some(rest) = text.strip_prefix("ksallot")
        && let Some((digits, _)) = rest.split_once('.')
        && !digits.is_empty()
        && digits != "1"
        && digits.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(Error::UnsupportedVersion(
            digits
                .parse::<u8>()
                .ok()
                .filter(|v| *v != 1)
                .unwrap_or(u8::MAX),
        ));
    }
    text::decode_prefixed(ALLOTMENT_PREFIX, text, buf)
}

/// A decoded allotment whose signature has not been checked.
#[derive(Debug, Clone, Copy)]
pub struct UnverifiedAllotment<'a> {
    pub(crate) env: envelope::Envelope<'a>,
    pub(crate) terms: AllotmentTerms,
    pub(crate) relay: PublicKey,
}

impl<'a> UnverifiedAllotment<'a> {
    /// Decodes the binary form, strictly.
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Self, Error> {
        let env = envelope::split(bytes, ALLOTMENT_VERSION, MAX_ALLOTMENT_LEN)?;
        let (terms, relay) = AllotmentTerms::decode(env.body)?;
        Ok(UnverifiedAllotment { env, terms, relay })
    }

    /// The terms, unverified: for display in tools that say so.
    #[must_use]
    pub const fn dangerous_unverified_terms(&self) -> &AllotmentTerms {
        &self.terms
    }

    /// The id of the key that claims to have signed it.
    #[must_use]
    pub const fn key_id(&self) -> KeyId {
        self.env.key_id
    }

    /// Checks the vendor's signature: the signer must be an issuing key of
    /// `keyring` whose window holds the allotment's issue time and whose
    /// scope holds `product` (the license's), and not revoked by
    /// `revoked_key` (the revocation list's test, if one is in force).
    /// Neither the expiry nor the license is checked here: a relay checks
    /// its allotment with this before it signs, an app through its leases.
    pub fn verify(
        &self,
        keyring: &Keyring,
        product: &str,
        revoked_key: impl Fn(KeyId) -> bool,
    ) -> Result<AllotmentTerms, Error> {
        let trusted = keyring
            .get(self.env.key_id)
            .ok_or(Error::UnknownKey(self.env.key_id))?;
        keyring.verify_domain(
            trusted.public_key(),
            ALLOTMENT_DOMAIN,
            self.env.signed,
            &[],
            &self.env.signature,
        )?;
        for id in [self.env.key_id, self.terms.relay_key_id()] {
            if revoked_key(id) {
                return Err(Error::KeyRevoked(id));
            }
        }
        if !trusted.allows(self.terms.issued_at, product) {
            return Err(Error::KeyNotValid(self.env.key_id));
        }
        Ok(self.terms)
    }
}

#[cfg(feature = "sign")]
mod sign {
    use alloc::vec::Vec;

    use super::*;
    use crate::key::SigningKey;

    /// Signs an allotment: terms with a valid relay key, at least one seat
    /// and `issued_at <= expires_at`.
    pub fn issue(key: &SigningKey, terms: &AllotmentTerms) -> Result<Vec<u8>, Error> {
        PublicKey::from_bytes(&terms.relay_key)
            .map_err(|_| Error::InvalidClaims(Malformed::PublicKey))?;
        if terms.seats == 0 || terms.issued_at > terms.expires_at {
            return Err(Error::InvalidClaims(Malformed::Field));
        }
        let mut buf = [0u8; MAX_ALLOTMENT_BODY_LEN];
        let body = postcard::to_slice(terms, &mut buf)
            .map_err(|_| Error::InvalidClaims(Malformed::TooLong))?;
        Ok(envelope::seal(
            key,
            ALLOTMENT_DOMAIN,
            ALLOTMENT_VERSION,
            body,
            &[],
        ))
    }
}

#[cfg(feature = "sign")]
pub use sign::issue;

/// The text form of a binary allotment.
#[cfg(feature = "alloc")]
#[must_use]
pub fn to_text(allotment: &[u8]) -> alloc::string::String {
    text::to_prefixed_string(ALLOTMENT_PREFIX, allotment)
}
