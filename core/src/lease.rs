//! Leases: short-lived, device-bound permissions to use one seat of a
//! license, which the vendor's service signs at activation and at every
//! check-in (docs/FORMAT.md, "Lease").
//!
//! A lease never stands alone: an app verifies its license first, then the
//! lease against that license ([`UnverifiedLease::verify`]). A lease that
//! fails is reported as [`Error::LeaseInvalid`] with the [`LeaseFault`], or
//! [`Error::LeaseExpired`], so that an app can tell a license problem (buy
//! or renew the license) from a lease problem (check in, or activate this
//! device again).

use core::fmt;

use serde::{Deserialize, Serialize};

use crate::allotment::{ALLOTMENT_DOMAIN, MAX_ALLOTMENT_LEN, UnverifiedAllotment};
use crate::claims::{DEVICE_HINT_LEN, LicenseId};
use crate::envelope::{self, OVERHEAD};
use crate::error::{Error, Malformed};
use crate::key::KeyId;
use crate::keyring::Keyring;
use crate::license::Expectations;
use crate::text;

/// Format version of leases (and the digit in [`LEASE_PREFIX`]).
pub const LEASE_VERSION: u8 = 1;
/// Prefix of a lease's text form.
pub const LEASE_PREFIX: &str = "kslease1.";
/// Length of a seat id.
pub const SEAT_ID_LEN: usize = 16;
/// Largest lease body: two ids, the hint, three varint u64 times.
pub const MAX_LEASE_BODY_LEN: usize = 16 + SEAT_ID_LEN + DEVICE_HINT_LEN + 3 * 10;
/// Largest binary lease.
pub const MAX_LEASE_LEN: usize = OVERHEAD + MAX_LEASE_BODY_LEN;
/// Largest text of a lease signed by the vendor's service.
pub const MAX_LEASE_TEXT_LEN: usize = LEASE_PREFIX.len() + MAX_LEASE_LEN.div_ceil(3) * 4;
/// Largest text of a lease a relay signed: the lease, `.`, its allotment.
pub const MAX_RELAYED_LEASE_TEXT_LEN: usize =
    MAX_LEASE_TEXT_LEN + 1 + MAX_ALLOTMENT_LEN.div_ceil(3) * 4;
/// The buffer [`UnverifiedLease::from_text`] decodes into: room for a lease
/// and its allotment.
pub const LEASE_BUF_LEN: usize = MAX_LEASE_LEN + MAX_ALLOTMENT_LEN;
/// How far a lease's issue time may be past the verifier's clock (one
/// day, as for every vendor-signed time; docs/FORMAT.md).
pub const MAX_LEASE_LEAD: u64 = 86_400;
/// Domain separation of lease signatures.
pub(crate) const LEASE_DOMAIN: &[u8] = b"keyseal/lease/v1\0";

/// Why a lease does not hold for a license on this device. Its
/// [`LeaseFault::code`] is the vectors' `fault`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LeaseFault {
    /// The lease text or bytes are not a well-formed lease.
    Malformed(Malformed),
    /// The lease names a format version this build does not know.
    UnsupportedVersion(u8),
    /// Signed by a key the keyring does not hold as an issuing key.
    UnknownKey(KeyId),
    /// The signature does not verify.
    BadSignature,
    /// The revocation list in force revokes the signing key.
    KeyRevoked(KeyId),
    /// The signing key's window does not hold the lease's issue time, or
    /// its scope does not hold the license's product.
    KeyNotValid(KeyId),
    /// The lease is for another license.
    OtherLicense,
    /// The lease is for another device, or no fingerprint was given.
    WrongDevice,
    /// The lease was issued more than [`MAX_LEASE_LEAD`] (or the leeway,
    /// if larger) after `now`: the clock is far behind, or the lease is not
    /// the vendor's doing.
    NotYetValid {
        /// The lease's issue time.
        issued_at: u64,
    },
}

impl LeaseFault {
    /// The stable code of the fault, shared by every SDK.
    #[must_use]
    pub const fn code(&self) -> &'static str {
        match self {
            LeaseFault::Malformed(_) => "malformed",
            LeaseFault::UnsupportedVersion(_) => "unsupported_version",
            LeaseFault::UnknownKey(_) => "unknown_key",
            LeaseFault::BadSignature => "bad_signature",
            LeaseFault::KeyRevoked(_) => "key_revoked",
            LeaseFault::KeyNotValid(_) => "key_not_valid",
            LeaseFault::OtherLicense => "other_license",
            LeaseFault::WrongDevice => "wrong_device",
            LeaseFault::NotYetValid { .. } => "not_yet_valid",
        }
    }

    /// Every code [`LeaseFault::code`] can return.
    pub const CODES: &'static [&'static str] = &[
        "malformed",
        "unsupported_version",
        "unknown_key",
        "bad_signature",
        "key_revoked",
        "key_not_valid",
        "other_license",
        "wrong_device",
        "not_yet_valid",
    ];
}

impl fmt::Display for LeaseFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LeaseFault::Malformed(m) => write!(f, "malformed lease: {m}"),
            LeaseFault::UnsupportedVersion(v) => write!(f, "unsupported lease version {v}"),
            LeaseFault::UnknownKey(id) => write!(f, "lease signed by unknown key {id}"),
            LeaseFault::BadSignature => f.write_str("invalid lease signature"),
            LeaseFault::KeyRevoked(id) => write!(f, "lease signing key {id} is revoked"),
            LeaseFault::KeyNotValid(id) => write!(f, "key {id} was not allowed to sign this lease"),
            LeaseFault::OtherLicense => f.write_str("lease is for another license"),
            LeaseFault::WrongDevice => f.write_str("lease is for another device"),
            LeaseFault::NotYetValid { issued_at } => {
                write!(f, "lease issued in the future ({issued_at})")
            }
        }
    }
}

impl From<LeaseFault> for Error {
    fn from(f: LeaseFault) -> Self {
        Error::LeaseInvalid(f)
    }
}

fn fault(e: Error) -> LeaseFault {
    match e {
        Error::Malformed(m) => LeaseFault::Malformed(m),
        Error::UnsupportedVersion(v) => LeaseFault::UnsupportedVersion(v),
        Error::UnknownKey(id) => LeaseFault::UnknownKey(id),
        Error::KeyRevoked(id) => LeaseFault::KeyRevoked(id),
        Error::KeyNotValid(id) => LeaseFault::KeyNotValid(id),
        Error::WrongDevice => LeaseFault::WrongDevice,
        // Only the signature check is left to give anything else.
        _ => LeaseFault::BadSignature,
    }
}

/// A seat's 128-bit id, chosen by the service at activation; check-ins and
/// releases name the seat by it. Shown as 32 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct SeatId([u8; SEAT_ID_LEN]);

impl SeatId {
    /// Wraps raw bytes.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; SEAT_ID_LEN]) -> Self {
        SeatId(bytes)
    }

    /// The raw bytes.
    #[must_use]
    pub const fn to_bytes(self) -> [u8; SEAT_ID_LEN] {
        self.0
    }
}

impl fmt::Display for SeatId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for SeatId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SeatId({self})")
    }
}

impl core::str::FromStr for SeatId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let mut b = [0u8; SEAT_ID_LEN];
        text::decode_hex(s, &mut b).map_err(|()| Malformed::Encoding)?;
        Ok(SeatId(b))
    }
}

/// The body of a lease, field by field (postcard, like the claims).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseTerms {
    /// The license the seat belongs to.
    pub license_id: LicenseId,
    /// The seat.
    pub seat_id: SeatId,
    /// The device hint: bytes 32..34 of the license's exact binding hash
    /// of the device's fingerprint (docs/FORMAT.md); the signature covers
    /// bytes 0..32.
    pub device_hint: [u8; DEVICE_HINT_LEN],
    /// When the service signed it (unix seconds).
    pub issued_at: u64,
    /// When the app should check in (unix seconds); after it the lease is
    /// still valid, in its check-in grace.
    pub renew_at: u64,
    /// When the lease ends (unix seconds): after it (plus leeway) the
    /// seat is no longer the app's.
    pub expires_at: u64,
}

impl LeaseTerms {
    /// Decodes a body, refusing anything but the canonical encoding of
    /// terms with `issued_at <= renew_at <= expires_at`. Read by hand, as
    /// allotments are ([`crate::allotment`]): postcard's encoding, in less
    /// code than serde's and a re-encoding.
    fn decode(body: &[u8]) -> Result<Self, Malformed> {
        let (license, rest) = body.split_first_chunk::<16>().ok_or(Malformed::Encoding)?;
        let (seat, rest) = rest
            .split_first_chunk::<SEAT_ID_LEN>()
            .ok_or(Malformed::Encoding)?;
        let (hint, mut rest) = rest
            .split_first_chunk::<DEVICE_HINT_LEN>()
            .ok_or(Malformed::Encoding)?;
        let issued_at = crate::allotment::varint(&mut rest, 10)?;
        let renew_at = crate::allotment::varint(&mut rest, 10)?;
        let expires_at = crate::allotment::varint(&mut rest, 10)?;
        if !rest.is_empty() {
            return Err(Malformed::Encoding);
        }
        if !(issued_at <= renew_at && renew_at <= expires_at) {
            return Err(Malformed::Field);
        }
        Ok(LeaseTerms {
            license_id: LicenseId::from_bytes(*license),
            seat_id: SeatId::from_bytes(*seat),
            device_hint: *hint,
            issued_at,
            renew_at,
            expires_at,
        })
    }
}

/// Where a verified lease stands at the time it was checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseStatus {
    /// Before its renew time.
    Active,
    /// Past its renew time, before its end: the app should check in now.
    CheckInDue,
}

/// Decodes a lease's text form into `buf`: [`LEASE_PREFIX`] then canonical
/// unpadded base64url. `kslease<digits>.` with other digits is an
/// unsupported version.
pub fn decode_text<'b>(text: &str, buf: &'b mut [u8; MAX_LEASE_LEN]) -> Result<&'b [u8], Error> {
    text::decode_versioned("kslease", text, buf)
}

/// A decoded lease whose signature has not been checked.
#[derive(Debug, Clone, Copy)]
pub struct UnverifiedLease<'a> {
    env: envelope::Envelope<'a>,
    terms: LeaseTerms,
    allotment: Option<UnverifiedAllotment<'a>>,
}

impl<'a> UnverifiedLease<'a> {
    /// Decodes the binary form of a lease the vendor's service signed,
    /// strictly; a failure is [`Error::LeaseInvalid`].
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Self, Error> {
        UnverifiedLease::from_parts(bytes, None)
    }

    /// Decodes a lease and, for a lease a relay signed, its seat
    /// allotment (both binary), strictly; a failure is
    /// [`Error::LeaseInvalid`].
    pub fn from_parts(lease: &'a [u8], allotment: Option<&'a [u8]>) -> Result<Self, Error> {
        // Both envelopes, then both bodies (docs/FORMAT.md's order).
        let env = envelope::split(lease, LEASE_VERSION, MAX_LEASE_LEN).map_err(fault)?;
        let allotment = allotment
            .map(UnverifiedAllotment::split)
            .transpose()
            .map_err(fault)?;
        let terms = LeaseTerms::decode(env.body).map_err(LeaseFault::Malformed)?;
        let allotment = allotment
            .map(UnverifiedAllotment::from_envelope)
            .transpose()
            .map_err(fault)?;
        Ok(UnverifiedLease {
            env,
            terms,
            allotment,
        })
    }

    /// Decodes the text form into `buf` and then the lease, reporting a
    /// failure as a [`LeaseFault`]: `kslease1.` + base64url of the lease,
    /// and for a lease a relay signed `.` + base64url of its allotment.
    pub fn from_text(text: &str, buf: &'a mut [u8; LEASE_BUF_LEN]) -> Result<Self, Error> {
        let (lease_text, allotment_text) = match text.get(LEASE_PREFIX.len()..) {
            Some(rest) if text.starts_with(LEASE_PREFIX) => match rest.split_once('.') {
                Some((lease, allot)) => (&text[..LEASE_PREFIX.len() + lease.len()], Some(allot)),
                None => (text, None),
            },
            _ => (text, None),
        };
        let (lease_buf, allot_buf) = buf.split_at_mut(MAX_LEASE_LEN);
        let lease_buf: &mut [u8; MAX_LEASE_LEN] = lease_buf
            .try_into()
            .map_err(|_| LeaseFault::Malformed(Malformed::TooLong))?;
        let lease =
            decode_text(lease_text, lease_buf).map_err(|e| Error::LeaseInvalid(fault(e)))?;
        let allotment = match allotment_text {
            Some(a) => {
                Some(text::decode_b64(a, allot_buf).map_err(|e| Error::LeaseInvalid(fault(e)))?)
            }
            None => None,
        };
        UnverifiedLease::from_parts(lease, allotment)
    }

    /// The allotment a relay's lease carries, unverified; `None` for a
    /// lease the vendor's service signed.
    #[must_use]
    pub const fn allotment(&self) -> Option<&UnverifiedAllotment<'a>> {
        self.allotment.as_ref()
    }

    /// The terms, unverified: for display in tools that say so.
    #[must_use]
    pub const fn dangerous_unverified_terms(&self) -> &LeaseTerms {
        &self.terms
    }

    /// The id of the key that claims to have signed it.
    #[must_use]
    pub const fn key_id(&self) -> KeyId {
        self.env.key_id
    }

    /// Verifies the lease for the license `license_id`, which the caller
    /// verified first with the same expectations: the product, the device's
    /// fingerprint, the time and leeway, and the revocation list in force.
    /// The order of checks is docs/FORMAT.md's ("Verifying a lease"). A
    /// lease issued at most [`MAX_LEASE_LEAD`] (or the leeway, if larger)
    /// after `now` is checked at its issue time: the service's clock may be
    /// a little ahead.
    #[must_use = "a verification result must be checked"]
    pub fn verify(
        &self,
        keyring: &Keyring,
        license_id: LicenseId,
        exp: &Expectations<'_>,
    ) -> Result<VerifiedLease, Error> {
        let (now, leeway) = (exp.now, exp.leeway);
        let t = &self.terms;
        let allot = self.allotment.as_ref();
        // The vendor's key signs the lease, or the allotment of the relay
        // that signed it.
        let vendor_id = allot.map_or(self.env.key_id, |a| a.env.key_id);
        let trusted = keyring
            .get(vendor_id)
            .ok_or(LeaseFault::UnknownKey(vendor_id))?;
        if let Some(a) = allot
            && a.terms.relay_key_id() != self.env.key_id
        {
            return Err(LeaseFault::UnknownKey(self.env.key_id).into());
        }
        let fp = exp.device.ok_or(LeaseFault::WrongDevice)?;
        let (hash, hint) = fp.exact_binding(&t.license_id);
        if hint != t.device_hint {
            return Err(LeaseFault::WrongDevice.into());
        }
        let signature = match allot {
            None => keyring.verify_domain(
                trusted.public_key(),
                LEASE_DOMAIN,
                self.env.signed,
                &hash,
                &self.env.signature,
            ),
            Some(a) => keyring
                .verify_domain(
                    trusted.public_key(),
                    ALLOTMENT_DOMAIN,
                    a.env.signed,
                    &[],
                    &a.env.signature,
                )
                .and_then(|()| {
                    a.relay
                        .verify_domain(LEASE_DOMAIN, self.env.signed, &hash, &self.env.signature)
                }),
        };
        signature.map_err(|e| Error::LeaseInvalid(fault(e)))?;
        for id in [Some(vendor_id), allot.map(|_| self.env.key_id)]
            .into_iter()
            .flatten()
        {
            if exp.revocations.is_some_and(|r| r.is_key_revoked(id)) {
                return Err(LeaseFault::KeyRevoked(id).into());
            }
        }
        let vendor_signed_at = allot.map_or(t.issued_at, |a| a.terms.issued_at);
        if !trusted.allows(vendor_signed_at, exp.product) {
            return Err(LeaseFault::KeyNotValid(vendor_id).into());
        }
        if let Some(a) = allot
            && (t.issued_at < a.terms.issued_at || t.expires_at > a.terms.expires_at)
        {
            return Err(LeaseFault::KeyNotValid(self.env.key_id).into());
        }
        if t.license_id != license_id || allot.is_some_and(|a| a.terms.license_id != license_id) {
            return Err(LeaseFault::OtherLicense.into());
        }
        if t.issued_at > now.saturating_add(leeway.max(MAX_LEASE_LEAD)) {
            return Err(LeaseFault::NotYetValid {
                issued_at: t.issued_at,
            }
            .into());
        }
        let at = now.max(t.issued_at);
        if at > t.expires_at.saturating_add(leeway) {
            return Err(Error::LeaseExpired {
                expired_at: t.expires_at,
            });
        }
        Ok(VerifiedLease {
            terms: *t,
            key_id: self.env.key_id,
            status: if at > t.renew_at {
                LeaseStatus::CheckInDue
            } else {
                LeaseStatus::Active
            },
        })
    }
}

/// A lease that holds for its license on this device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifiedLease {
    terms: LeaseTerms,
    key_id: KeyId,
    status: LeaseStatus,
}

impl VerifiedLease {
    /// The verified terms.
    #[must_use]
    pub const fn terms(&self) -> &LeaseTerms {
        &self.terms
    }

    /// Active, or due for a check-in.
    #[must_use]
    pub const fn status(&self) -> LeaseStatus {
        self.status
    }

    /// The key that signed it.
    #[must_use]
    pub const fn key_id(&self) -> KeyId {
        self.key_id
    }
}

/// The text form of a binary lease.
#[cfg(feature = "alloc")]
#[must_use]
pub fn to_text(lease: &[u8]) -> alloc::string::String {
    text::to_prefixed_string(LEASE_PREFIX, lease)
}

/// The text form of a lease a relay signed, with the allotment that
/// lets it: `kslease1.` + base64url(lease) + `.` + base64url(allotment).
#[cfg(feature = "alloc")]
#[must_use]
pub fn to_relayed_text(lease: &[u8], allotment: &[u8]) -> alloc::string::String {
    let mut out = to_text(lease);
    out.push('.');
    // Writing to a String never fails.
    let _ = text::write_b64(&mut out, allotment);
    out
}

#[cfg(feature = "sign")]
mod sign {
    use alloc::vec::Vec;

    use super::*;
    use crate::device::Fingerprint;
    use crate::key::SigningKey;

    /// Signs a lease for the device with fingerprint `device`; the
    /// `device_hint` of `terms` is replaced by the one computed here.
    /// Terms with `issued_at <= renew_at <= expires_at` only.
    pub fn issue(
        key: &SigningKey,
        terms: &LeaseTerms,
        device: &Fingerprint,
    ) -> Result<Vec<u8>, Error> {
        let (hash, hint) = device.exact_binding(&terms.license_id);
        issue_bound(
            key,
            &LeaseTerms {
                device_hint: hint,
                ..*terms
            },
            &hash,
        )
    }

    /// Signs a lease for the device whose binding hash (`D[0..32]` for the
    /// lease's license id) is `binding_hash` and whose hint is in `terms`:
    /// for an air-gapped request, which carries the binding, not the
    /// fingerprint.
    pub fn issue_bound(
        key: &SigningKey,
        terms: &LeaseTerms,
        binding_hash: &[u8; crate::device::BINDING_HASH_LEN],
    ) -> Result<Vec<u8>, Error> {
        if !(terms.issued_at <= terms.renew_at && terms.renew_at <= terms.expires_at) {
            return Err(Error::InvalidClaims(Malformed::Field));
        }
        let hash = *binding_hash;
        let mut buf = [0u8; MAX_LEASE_BODY_LEN];
        let body = postcard::to_slice(terms, &mut buf)
            .map_err(|_| Error::InvalidClaims(Malformed::TooLong))?;
        Ok(envelope::seal(
            key,
            LEASE_DOMAIN,
            LEASE_VERSION,
            body,
            &hash,
        ))
    }
}

#[cfg(feature = "sign")]
pub use sign::{issue, issue_bound};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::Claims;
    use crate::device::Fingerprint;
    use crate::key::SigningKey;
    use crate::keyring::TrustedKey;
    use crate::license::{UnverifiedLicense, issue as issue_license};

    fn fp(n: u8) -> Fingerprint {
        Fingerprint::from_components(&[[n; 16], [n.wrapping_add(1); 16]]).unwrap()
    }

    fn setup() -> (SigningKey, Keyring, alloc::vec::Vec<u8>) {
        let key = SigningKey::from_seed(&[7; 32]).unwrap();
        let mut ring = Keyring::new();
        ring.add(TrustedKey::new(key.public_key())).unwrap();
        let claims = Claims::new(LicenseId::from_bytes([1; 16]), "app", "cus_1", "pro", 100);
        let lic = issue_license(&key, &claims, None).unwrap();
        (key, ring, lic)
    }

    fn terms(license: [u8; 16]) -> LeaseTerms {
        LeaseTerms {
            license_id: LicenseId::from_bytes(license),
            seat_id: SeatId::from_bytes([9; 16]),
            device_hint: [0; 2],
            issued_at: 1_000,
            renew_at: 2_000,
            expires_at: 3_000,
        }
    }

    #[test]
    fn a_lease_holds_on_its_device_until_it_ends() {
        let (key, ring, lic) = setup();
        let fp1 = fp(1);
        let lic = UnverifiedLicense::from_bytes(&lic).unwrap();
        let lic = lic.verify(&ring, &Expectations::new("app", 1_500)).unwrap();
        let id = lic.claims().license_id;
        let at = |now| Expectations::new("app", now).device(&fp1);
        let lease = issue(&key, &terms([1; 16]), &fp(1)).unwrap();
        let text = to_text(&lease);
        assert!(text.len() <= MAX_LEASE_TEXT_LEN);
        let mut buf = [0u8; LEASE_BUF_LEN];
        let l = UnverifiedLease::from_text(&text, &mut buf).unwrap();
        let check = |now, device: Option<&Fingerprint>| {
            let mut e = Expectations::new("app", now);
            if let Some(d) = device {
                e = e.device(d);
            }
            l.verify(&ring, id, &e)
        };
        assert_eq!(
            check(1_500, Some(&fp(1))).unwrap().status(),
            LeaseStatus::Active
        );
        assert_eq!(
            check(2_001, Some(&fp(1))).unwrap().status(),
            LeaseStatus::CheckInDue
        );
        assert_eq!(
            check(3_001, Some(&fp(1))),
            Err(Error::LeaseExpired { expired_at: 3_000 })
        );
        // Issued in the verifier's future: checked at its issue time, up to a day.
        assert_eq!(
            check(1, Some(&fp(1))).unwrap().status(),
            LeaseStatus::Active
        );
        let mut far = terms([1; 16]);
        far.issued_at = 100_000;
        far.renew_at = 100_000;
        far.expires_at = 100_000;
        let far = issue(&key, &far, &fp(1)).unwrap();
        let far = UnverifiedLease::from_bytes(&far).unwrap();
        assert_eq!(
            far.verify(&ring, id, &at(13_599)),
            Err(LeaseFault::NotYetValid { issued_at: 100_000 }.into())
        );
        assert!(far.verify(&ring, id, &at(13_600)).is_ok());
        assert_eq!(
            check(1_500, Some(&fp(2))),
            Err(LeaseFault::WrongDevice.into())
        );
        assert_eq!(check(1_500, None), Err(LeaseFault::WrongDevice.into()));
        let other = issue(&key, &terms([2; 16]), &fp(1)).unwrap();
        let other = UnverifiedLease::from_bytes(&other).unwrap();
        assert_eq!(
            other.verify(&ring, id, &at(1_500)),
            Err(LeaseFault::OtherLicense.into())
        );
        let mut bad = lease.clone();
        let n = bad.len();
        bad[n - 1] ^= 1;
        let bad = UnverifiedLease::from_bytes(&bad).unwrap();
        assert_eq!(
            bad.verify(&ring, id, &at(1_500)),
            Err(LeaseFault::BadSignature.into())
        );
    }

    #[test]
    fn a_relay_signs_leases_within_its_allotment_only() {
        use crate::allotment::{AllotmentTerms, issue as allot};
        let (vendor, ring, lic) = setup();
        let lic = UnverifiedLicense::from_bytes(&lic).unwrap();
        let id = lic
            .verify(&ring, &Expectations::new("app", 1_500))
            .unwrap()
            .claims()
            .license_id;
        let relay = SigningKey::from_seed(&[8; 32]).unwrap();
        let grant = |license: [u8; 16], relay_key: &SigningKey, issued_at, expires_at| {
            allot(
                &vendor,
                &AllotmentTerms {
                    license_id: LicenseId::from_bytes(license),
                    relay_key: relay_key.public_key().to_bytes(),
                    seats: 3,
                    issued_at,
                    expires_at,
                },
            )
            .unwrap()
        };
        let good = grant([1; 16], &relay, 500, 10_000);
        let lease = issue(&relay, &terms([1; 16]), &fp(1)).unwrap();
        let fp1 = fp(1);
        let at = |now| Expectations::new("app", now).device(&fp1);
        let check = |lease: &[u8], allotment: &[u8], now| {
            let text = to_relayed_text(lease, allotment);
            assert!(text.len() <= MAX_RELAYED_LEASE_TEXT_LEN);
            let mut buf = [0u8; LEASE_BUF_LEN];
            UnverifiedLease::from_text(&text, &mut buf)
                .and_then(|l| l.verify(&ring, id, &at(now)).map(|v| v.status()))
        };
        assert_eq!(check(&lease, &good, 1_500), Ok(LeaseStatus::Active));
        // Without its allotment the relay key is nobody's.
        assert_eq!(
            UnverifiedLease::from_bytes(&lease)
                .unwrap()
                .verify(&ring, id, &at(1_500)),
            Err(LeaseFault::UnknownKey(relay.key_id()).into())
        );
        // Another relay's allotment does not lend its trust.
        let other_relay = SigningKey::from_seed(&[9; 32]).unwrap();
        let theirs = grant([1; 16], &other_relay, 500, 10_000);
        assert_eq!(
            check(&lease, &theirs, 1_500),
            Err(LeaseFault::UnknownKey(relay.key_id()).into())
        );
        // An allotment signed by a key the app does not trust.
        let stranger = SigningKey::from_seed(&[10; 32]).unwrap();
        let forged = allot(
            &stranger,
            &AllotmentTerms {
                license_id: LicenseId::from_bytes([1; 16]),
                relay_key: relay.public_key().to_bytes(),
                seats: 3,
                issued_at: 500,
                expires_at: 10_000,
            },
        )
        .unwrap();
        assert_eq!(
            check(&lease, &forged, 1_500),
            Err(LeaseFault::UnknownKey(stranger.key_id()).into())
        );
        // A changed allotment, or a changed lease.
        let mut tampered = good.clone();
        tampered[9 + 16 + 32] = 9; // seats 3 -> 9
        assert_eq!(
            check(&lease, &tampered, 1_500),
            Err(LeaseFault::BadSignature.into())
        );
        let mut bad = lease.clone();
        let n = bad.len();
        bad[n - 1] ^= 1;
        assert_eq!(
            check(&bad, &good, 1_500),
            Err(LeaseFault::BadSignature.into())
        );
        // A lease outliving its allotment, or signed before it.
        let short = grant([1; 16], &relay, 500, 2_999);
        assert_eq!(
            check(&lease, &short, 1_500),
            Err(LeaseFault::KeyNotValid(relay.key_id()).into())
        );
        let late = grant([1; 16], &relay, 1_001, 10_000);
        assert_eq!(
            check(&lease, &late, 1_500),
            Err(LeaseFault::KeyNotValid(relay.key_id()).into())
        );
        // An allotment of another license.
        let elsewhere = grant([2; 16], &relay, 500, 10_000);
        assert_eq!(
            check(&lease, &elsewhere, 1_500),
            Err(LeaseFault::OtherLicense.into())
        );
        // The relay's lease ends like any other.
        assert_eq!(
            check(&lease, &good, 3_001),
            Err(Error::LeaseExpired { expired_at: 3_000 })
        );
        // An empty or broken allotment part.
        let mut buf = [0u8; LEASE_BUF_LEN];
        let text = alloc::format!("{}.", to_text(&lease));
        assert_eq!(
            UnverifiedLease::from_text(&text, &mut buf).map(|_| ()),
            Err(LeaseFault::Malformed(Malformed::Truncated).into())
        );
    }

    #[test]
    fn bodies_are_canonical_and_ordered() {
        let (key, _, _) = setup();
        let mut t = terms([1; 16]);
        t.renew_at = 4_000;
        assert_eq!(
            issue(&key, &t, &fp(1)),
            Err(Error::InvalidClaims(Malformed::Field))
        );
        let lease = issue(&key, &terms([1; 16]), &fp(1)).unwrap();
        // issued_at 1000 is the varint e8 07; spell it e8 87 00 instead.
        let at = OVERHEAD - 64 + 16 + 16 + 2;
        assert_eq!(&lease[at..at + 2], &[0xe8, 0x07]);
        let mut long = lease[..at].to_vec();
        long.extend_from_slice(&[0xe8, 0x87, 0x00]);
        long.extend_from_slice(&lease[at + 2..]);
        assert_eq!(
            UnverifiedLease::from_bytes(&long).map(|_| ()),
            Err(LeaseFault::Malformed(Malformed::NonCanonical).into())
        );
        let mut buf = [0u8; MAX_LEASE_LEN];
        assert_eq!(
            decode_text("kslease2.AAAA", &mut buf).map(|_| ()),
            Err(Error::UnsupportedVersion(2))
        );
        let mut buf = [0u8; LEASE_BUF_LEN];
        assert_eq!(
            UnverifiedLease::from_text("ks1.AAAA", &mut buf).map(|_| ()),
            Err(LeaseFault::Malformed(Malformed::Prefix).into())
        );
    }
}
