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

use serde::Serialize;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
    /// `issued_at <= expires_at`. Read by hand rather than through serde
    /// and re-encoded: the same rules (shortest varints, nothing after the
    /// last field) in less code, which the WebAssembly package's size
    /// budget counts.
    fn decode(body: &[u8]) -> Result<(Self, PublicKey), Malformed> {
        let (license, rest) = body.split_first_chunk::<16>().ok_or(Malformed::Encoding)?;
        let (relay_key, mut rest) = rest
            .split_first_chunk::<PUBLIC_KEY_LEN>()
            .ok_or(Malformed::Encoding)?;
        let seats = varint(&mut rest, 5)?;
        let issued_at = varint(&mut rest, 10)?;
        let expires_at = varint(&mut rest, 10)?;
        if !rest.is_empty() {
            return Err(Malformed::Encoding);
        }
        let seats = u32::try_from(seats).map_err(|_| Malformed::Encoding)?;
        let relay = PublicKey::from_bytes(relay_key).map_err(|_| Malformed::PublicKey)?;
        if seats == 0 || issued_at > expires_at {
            return Err(Malformed::Field);
        }
        let terms = AllotmentTerms {
            license_id: LicenseId::from_bytes(*license),
            relay_key: *relay_key,
            seats,
            issued_at,
            expires_at,
        };
        Ok((terms, relay))
    }

    /// The key id of the relay key: the signer id of its leases.
    #[must_use]
    pub fn relay_key_id(&self) -> KeyId {
        KeyId::derive(&self.relay_key)
    }
}

/// Reads an unsigned LEB128 varint of at most `max` bytes (5 for a u32,
/// 10 for a u64) from the front of `bytes`, postcard's encoding: its
/// shortest form only, and no bits past 64.
pub(crate) fn varint(bytes: &mut &[u8], max: usize) -> Result<u64, Malformed> {
    let mut v: u64 = 0;
    for i in 0..max {
        let (&b, rest) = bytes.split_first().ok_or(Malformed::Encoding)?;
        *bytes = rest;
        let bits = u64::from(b & 0x7f);
        if i == 9 && bits > 1 {
            return Err(Malformed::Encoding);
        }
        v |= bits << (7 * i);
        if b & 0x80 == 0 {
            // A last byte of 0 after the first is a longer spelling.
            return if b == 0 && i > 0 {
                Err(Malformed::NonCanonical)
            } else {
                Ok(v)
            };
        }
    }
    Err(Malformed::Encoding)
}

/// Decodes an allotment's text form ([`ALLOTMENT_PREFIX`] then canonical
/// unpadded base64url) into `buf`; `ksallot<digits>.` with other digits is
/// an unsupported version.
pub fn decode_text<'b>(
    text: &str,
    buf: &'b mut [u8; MAX_ALLOTMENT_LEN],
) -> Result<&'b [u8], Error> {
    text::decode_versioned("ksallot", text, buf)
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
        Self::from_envelope(Self::split(bytes)?)
    }

    /// The envelope alone (version and size checked).
    pub(crate) fn split(bytes: &'a [u8]) -> Result<envelope::Envelope<'a>, Error> {
        envelope::split(bytes, ALLOTMENT_VERSION, MAX_ALLOTMENT_LEN)
    }

    /// The body of a split envelope, decoded.
    pub(crate) fn from_envelope(env: envelope::Envelope<'a>) -> Result<Self, Error> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn body(seats: &[u8], issued: &[u8], expires: &[u8]) -> alloc::vec::Vec<u8> {
        let key = crate::key::SigningKey::from_seed(&[4; 32]).unwrap();
        let mut b = alloc::vec![1u8; 16];
        b.extend_from_slice(&key.public_key().to_bytes());
        b.extend_from_slice(seats);
        b.extend_from_slice(issued);
        b.extend_from_slice(expires);
        b
    }

    #[test]
    fn bodies_are_read_in_their_one_spelling() {
        let (t, _) = AllotmentTerms::decode(&body(&[20], &[0xe8, 0x07], &[0xd0, 0x0f])).unwrap();
        assert_eq!((t.seats, t.issued_at, t.expires_at), (20, 1_000, 2_000));
        // The same encoding as postcard's, which signs them.
        let mut buf = [0u8; MAX_ALLOTMENT_BODY_LEN];
        let again = postcard::to_slice(&t, &mut buf).unwrap();
        assert_eq!(again, &body(&[20], &[0xe8, 0x07], &[0xd0, 0x0f])[..]);
        let bad = |b: &[u8]| AllotmentTerms::decode(b).map(|_| ()).unwrap_err();
        // 1,000 spelled in three bytes; 20 in two.
        assert_eq!(
            bad(&body(&[20], &[0xe8, 0x87, 0x00], &[0xd0, 0x0f])),
            Malformed::NonCanonical
        );
        assert_eq!(
            bad(&body(&[0x94, 0x00], &[0xe8, 0x07], &[0xd0, 0x0f])),
            Malformed::NonCanonical
        );
        // Seats past a u32; a u64 past 64 bits; a varint cut short.
        assert_eq!(
            bad(&body(&[0xff, 0xff, 0xff, 0xff, 0x7f], &[1], &[2])),
            Malformed::Encoding
        );
        let mut big = [0xffu8; 10];
        big[9] = 0x02;
        assert_eq!(bad(&body(&[1], &big, &[2])), Malformed::Encoding);
        assert_eq!(bad(&body(&[1], &[1], &[0x80])), Malformed::Encoding);
        // A byte after the last field; no seats; issued after it ends.
        let mut long = body(&[1], &[1], &[2]);
        long.push(0);
        assert_eq!(bad(&long), Malformed::Encoding);
        assert_eq!(bad(&body(&[0], &[1], &[2])), Malformed::Field);
        assert_eq!(bad(&body(&[1], &[3], &[2])), Malformed::Field);
        // A relay key that is not a point.
        let mut weak = body(&[1], &[1], &[2]);
        weak[16..48].copy_from_slice(&[0; 32]);
        assert_eq!(bad(&weak), Malformed::PublicKey);
    }
}
