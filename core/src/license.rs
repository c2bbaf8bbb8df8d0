//! Licenses: decode (unverified), verify against a keyring and expectations
//! (verified), and, with the `sign` feature, issue.

use crate::claims::{Claims, DeviceBinding, LicenseId, MAX_CLAIMS_LEN, Version};
use crate::device::{BINDING_HASH_LEN, Fingerprint};
use crate::envelope::{self, OVERHEAD};
use crate::error::Error;
use crate::key::KeyId;
use crate::keyring::Keyring;
use crate::text;

/// Format version of licenses (and the digit in [`LICENSE_PREFIX`]).
pub const LICENSE_VERSION: u8 = 1;
/// Prefix of a license key's text form.
pub const LICENSE_PREFIX: &str = "ks1.";
/// Largest binary license.
pub const MAX_LICENSE_LEN: usize = OVERHEAD + MAX_CLAIMS_LEN;
/// Largest license key text.
pub const MAX_LICENSE_TEXT_LEN: usize = LICENSE_PREFIX.len() + MAX_LICENSE_LEN.div_ceil(3) * 4;
/// Domain separation of license signatures.
pub(crate) const LICENSE_DOMAIN: &[u8] = b"keyseal/license/v1\0";

/// Lookup in a revocation list, as verification needs it.
pub trait RevocationCheck {
    /// Whether the license id is revoked.
    fn is_license_revoked(&self, id: LicenseId) -> bool;
    /// Whether the signing key id is revoked.
    fn is_key_revoked(&self, id: KeyId) -> bool;
}

/// A key text as a person or a mail client may have wrapped it, with every
/// ASCII whitespace character removed (none is part of a key): for servers
/// that take keys typed or pasted by people. Decoders refuse whitespace.
#[cfg(feature = "alloc")]
#[must_use]
pub fn without_whitespace(text: &str) -> alloc::string::String {
    text.chars().filter(|c| !c.is_ascii_whitespace()).collect()
}

/// Decodes a license key's text form into `buf`: [`LICENSE_PREFIX`] then
/// canonical unpadded base64url. No whitespace is tolerated here (the SDK
/// strips what mail clients add).
pub fn decode_text<'b>(text: &str, buf: &'b mut [u8; MAX_LICENSE_LEN]) -> Result<&'b [u8], Error> {
    if let Some(v) = other_version_prefix(text) {
        return Err(Error::UnsupportedVersion(v));
    }
    text::decode_prefixed(LICENSE_PREFIX, text, buf)
}

/// `ks<digits>.` with digits other than `1` (docs/FORMAT.md): a key of a
/// version this build does not know. Digits that are no `u8` other than 1
/// (`1000`, `01`) report version 255.
fn other_version_prefix(text: &str) -> Option<u8> {
    let rest = text.strip_prefix("ks")?;
    let (digits, _) = rest.split_once('.')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits == "1" {
        return None;
    }
    Some(
        digits
            .parse::<u8>()
            .ok()
            .filter(|v| *v != LICENSE_VERSION)
            .unwrap_or(u8::MAX),
    )
}

/// What the app expects of a license, and the time to check it at.
#[derive(Clone, Copy)]
pub struct Expectations<'e> {
    pub(crate) now: u64,
    pub(crate) product: &'e str,
    pub(crate) leeway: u64,
    app_version: Option<Version>,
    pub(crate) device: Option<&'e Fingerprint>,
    pub(crate) revocations: Option<&'e dyn RevocationCheck>,
}

impl<'e> Expectations<'e> {
    /// Expect a license for `product`, checked at `now` (unix seconds), with
    /// no leeway, no app version, no device and no revocation list.
    #[must_use]
    pub const fn new(product: &'e str, now: u64) -> Self {
        Expectations {
            now,
            product,
            leeway: 0,
            app_version: None,
            device: None,
            revocations: None,
        }
    }

    /// Tolerate this many seconds of clock difference on not-before and expiry.
    #[must_use]
    pub const fn leeway(mut self, secs: u64) -> Self {
        self.leeway = secs;
        self
    }

    /// The app's version, checked against the license's version cap.
    #[must_use]
    pub const fn app_version(mut self, v: Version) -> Self {
        self.app_version = Some(v);
        self
    }

    /// This device's fingerprint, for device-bound licenses.
    #[must_use]
    pub const fn device(mut self, fp: &'e Fingerprint) -> Self {
        self.device = Some(fp);
        self
    }

    /// A verified revocation list to check the license and its key against.
    #[must_use]
    pub const fn revocations(mut self, list: &'e dyn RevocationCheck) -> Self {
        self.revocations = Some(list);
        self
    }

    /// The time checks are made at.
    #[must_use]
    pub const fn now(&self) -> u64 {
        self.now
    }
}

/// A decoded license whose signature has not been checked. Its claims are
/// only reachable through [`UnverifiedLicense::dangerous_unverified_claims`].
#[derive(Debug, Clone, Copy)]
pub struct UnverifiedLicense<'a> {
    env: envelope::Envelope<'a>,
    claims: Claims<'a>,
}

impl<'a> UnverifiedLicense<'a> {
    /// Decodes the binary form, strictly: known version, sizes in bounds,
    /// canonical claims, no trailing bytes.
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Self, Error> {
        let env = envelope::split(bytes, LICENSE_VERSION, MAX_LICENSE_LEN)?;
        let claims = Claims::decode(env.body)?;
        Ok(UnverifiedLicense { env, claims })
    }

    /// The id of the key that claims to have signed it.
    #[must_use]
    pub const fn key_id(&self) -> KeyId {
        self.env.key_id
    }

    /// The claims, unverified: anyone can write anything here. For display
    /// in tools that say so (`keyseal inspect`), never for decisions.
    #[must_use]
    pub const fn dangerous_unverified_claims(&self) -> &Claims<'a> {
        &self.claims
    }

    /// Whether [`verify`](Self::verify) had already checked the signature
    /// when it refused with `refusal`, so that the claims are the vendor's
    /// (an advisory validator may then still report them). The order of
    /// checks is `docs/FORMAT.md`'s: key lookup and the exact device binding
    /// come before the signature; the key's revocation and window, the
    /// product, a tolerant binding, the license's revocation, its time window
    /// and the version cap come after.
    #[must_use]
    pub const fn signature_checked_before(&self, refusal: &Error) -> bool {
        match refusal {
            Error::KeyRevoked(_)
            | Error::KeyNotValid(_)
            | Error::WrongProduct
            | Error::Revoked
            | Error::NotYetValid { .. }
            | Error::Expired { .. }
            | Error::VersionNotCovered => true,
            Error::WrongDevice => {
                matches!(self.claims.device, Some(DeviceBinding::Tolerant { .. }))
            }
            _ => false,
        }
    }

    /// Verifies the license; see `docs/FORMAT.md` for the order of checks.
    #[must_use = "a verification result must be checked"]
    pub fn verify(
        &self,
        keyring: &Keyring,
        exp: &Expectations<'_>,
    ) -> Result<VerifiedLicense<'a>, Error> {
        let c = &self.claims;
        let trusted = keyring
            .get(self.env.key_id)
            .ok_or(Error::UnknownKey(self.env.key_id))?;
        let binding: [u8; BINDING_HASH_LEN];
        let extra: &[u8] = match c.device {
            Some(DeviceBinding::Exact { hint }) => {
                let fp = exp.device.ok_or(Error::WrongDevice)?;
                let (hash, expected_hint) = fp.exact_binding(&c.license_id);
                if hint != expected_hint {
                    return Err(Error::WrongDevice);
                }
                binding = hash;
                &binding
            }
            _ => &[],
        };
        keyring.verify_domain(
            trusted.public_key(),
            LICENSE_DOMAIN,
            self.env.signed,
            extra,
            &self.env.signature,
        )?;
        if let Some(r) = exp.revocations
            && r.is_key_revoked(self.env.key_id)
        {
            return Err(Error::KeyRevoked(self.env.key_id));
        }
        if !trusted.allows(c.issued_at, c.product) {
            return Err(Error::KeyNotValid(self.env.key_id));
        }
        if c.product != exp.product {
            return Err(Error::WrongProduct);
        }
        if let Some(DeviceBinding::Tolerant { required, digests }) = &c.device {
            let fp = exp.device.ok_or(Error::WrongDevice)?;
            if fp.count_matches(&c.license_id, digests) < usize::from(*required) {
                return Err(Error::WrongDevice);
            }
        }
        if let Some(r) = exp.revocations
            && r.is_license_revoked(c.license_id)
        {
            return Err(Error::Revoked);
        }
        let status = match c.timing(exp.now, exp.leeway) {
            Timing::NotYetValid { not_before } => return Err(Error::NotYetValid { not_before }),
            Timing::Expired { expired_at } => return Err(Error::Expired { expired_at }),
            Timing::Active => Status::Active,
            Timing::InGrace { grace_ends } => Status::InGrace { grace_ends },
        };
        if let (Some(cap), Some(v)) = (c.max_version, exp.app_version)
            && !cap.covers(v)
        {
            return Err(Error::VersionNotCovered);
        }
        Ok(VerifiedLicense {
            claims: self.claims,
            key_id: self.env.key_id,
            status,
        })
    }
}

/// Where a license's time window puts it at some moment: the rule
/// [`UnverifiedLicense::verify`] applies (not-before, then expiry plus
/// grace, each with the leeway), for callers that report a license outside
/// its window instead of refusing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timing {
    /// Inside its window.
    Active,
    /// Past its expiry but inside its grace period.
    InGrace {
        /// When the grace period ends (unix seconds).
        grace_ends: u64,
    },
    /// Before its start, even with the leeway.
    NotYetValid {
        /// The license's start (unix seconds).
        not_before: u64,
    },
    /// Past its expiry and grace, even with the leeway.
    Expired {
        /// The license's expiry (unix seconds).
        expired_at: u64,
    },
}

impl Claims<'_> {
    /// Where these claims' time window puts the license at `now` (unix
    /// seconds), allowing `leeway` seconds of clock difference either way.
    #[must_use]
    pub fn timing(&self, now: u64, leeway: u64) -> Timing {
        if let Some(not_before) = self.not_before
            && now.saturating_add(leeway) < not_before
        {
            return Timing::NotYetValid { not_before };
        }
        if let Some(expires) = self.expires_at {
            let grace_ends = expires.saturating_add(u64::from(self.grace_secs));
            if now > grace_ends.saturating_add(leeway) {
                return Timing::Expired {
                    expired_at: expires,
                };
            }
            if self.grace_secs > 0 && now > expires {
                return Timing::InGrace { grace_ends };
            }
        }
        Timing::Active
    }
}

/// Whether a valid license is fully active or living on its grace period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Valid.
    Active,
    /// Past its expiry but inside its grace period: valid, and the app
    /// should remind the customer to renew.
    InGrace {
        /// When the grace period ends (unix seconds).
        grace_ends: u64,
    },
}

/// A license that passed every check. The only way to its claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct VerifiedLicense<'a> {
    claims: Claims<'a>,
    key_id: KeyId,
    status: Status,
}

impl<'a> VerifiedLicense<'a> {
    /// The verified claims.
    #[must_use]
    pub const fn claims(&self) -> &Claims<'a> {
        &self.claims
    }

    /// Active, or in grace.
    #[must_use]
    pub const fn status(&self) -> Status {
        self.status
    }

    /// The key that signed it.
    #[must_use]
    pub const fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// Whether the license grants `entitlement`.
    #[must_use]
    pub fn has_entitlement(&self, entitlement: &str) -> bool {
        self.claims.has_entitlement(entitlement)
    }
}

/// One call from text to verdict: decode `text` and verify it.
#[must_use = "a verification result must be checked"]
pub fn verify_text<'b>(
    text: &str,
    buf: &'b mut [u8; MAX_LICENSE_LEN],
    keyring: &Keyring,
    exp: &Expectations<'_>,
) -> Result<VerifiedLicense<'b>, Error> {
    let bytes = decode_text(text, buf)?;
    UnverifiedLicense::from_bytes(bytes)?.verify(keyring, exp)
}

#[cfg(feature = "sign")]
pub use issue::issue;

/// The text form: [`LICENSE_PREFIX`] + unpadded base64url.
#[cfg(feature = "alloc")]
#[must_use]
pub fn to_text(license: &[u8]) -> alloc::string::String {
    text::to_prefixed_string(LICENSE_PREFIX, license)
}

/// The armored license file form.
#[cfg(feature = "alloc")]
#[must_use]
pub fn to_armored(license: &[u8]) -> alloc::string::String {
    let mut s = alloc::string::String::new();
    // Writing to a String cannot fail.
    let _ = text::armor::write_block(&mut s, text::armor::LICENSE, license);
    s
}

#[cfg(feature = "sign")]
mod issue {
    use alloc::vec::Vec;

    use super::*;
    use crate::device::DeviceRule;
    use crate::error::Malformed;
    use crate::key::SigningKey;

    /// Signs `claims` into a binary license. If `device` is given, the
    /// license is bound to that fingerprint by the rule; `claims.device` must
    /// then be `None` (the binding is computed here).
    pub fn issue(
        key: &SigningKey,
        claims: &Claims<'_>,
        device: Option<(&Fingerprint, DeviceRule)>,
    ) -> Result<Vec<u8>, Error> {
        let mut claims = *claims;
        let mut extra: &[u8] = &[];
        let binding_hash;
        if let Some((fp, rule)) = device {
            if claims.device.is_some() {
                return Err(Error::InvalidClaims(Malformed::Field));
            }
            claims.device = Some(fp.binding(&claims.license_id, rule)?);
            if rule == DeviceRule::Exact {
                binding_hash = fp.exact_binding(&claims.license_id).0;
                extra = &binding_hash;
            }
        } else if matches!(claims.device, Some(DeviceBinding::Exact { .. })) {
            // An exact binding needs the fingerprint to sign over.
            return Err(Error::InvalidClaims(Malformed::Field));
        }
        let mut buf = [0u8; MAX_CLAIMS_LEN];
        let body = claims.encode(&mut buf)?;
        Ok(envelope::seal(
            key,
            LICENSE_DOMAIN,
            LICENSE_VERSION,
            body,
            extra,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_digits_but_1_are_another_version() {
        let mut buf = [0u8; MAX_LICENSE_LEN];
        for (text, v) in [
            ("ks2.AAAA", 2),
            ("ks0.AAAA", 0),
            ("ks255.AAAA", 255),
            ("ks256.AAAA", 255),
            ("ks1000.AAAA", 255),
            ("ks01.AAAA", 255),
        ] {
            assert_eq!(
                decode_text(text, &mut buf),
                Err(Error::UnsupportedVersion(v)),
                "{text}"
            );
        }
        for text in ["ks.AAAA", "ksx.AAAA", "ks1x.AAAA", "kspub1.AAAA", "ks1AAAA"] {
            assert_eq!(
                decode_text(text, &mut buf),
                Err(Error::Malformed(crate::Malformed::Prefix)),
                "{text}"
            );
        }
    }
}
