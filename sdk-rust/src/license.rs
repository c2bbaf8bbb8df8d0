//! The owned, verified license an app acts on.

use std::fmt;

use keyseal_core::claims::{MAX_ENTITLEMENTS, MAX_EXTENSIONS};
use keyseal_core::{
    Claims, DeviceBinding, KeyId, LeaseStatus, LicenseId, SeatId, VerifiedLease, VersionCap,
};

use crate::problem::Problem;

/// Whether a license is fully active, living on its grace period, or (in
/// advisory mode only) outside its validity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Status {
    /// Valid.
    Active,
    /// Past its expiry but inside its grace period: valid, and the app should
    /// remind the customer to renew.
    InGrace {
        /// When the grace period ends (unix seconds).
        grace_ends: u64,
    },
    /// Expired, grace included. Only in [advisory mode](crate::Mode::Advisory);
    /// an enforcing validator refuses instead.
    Expired {
        /// The license's expiry (unix seconds).
        expired_at: u64,
    },
    /// Not valid yet. Only in [advisory mode](crate::Mode::Advisory).
    NotYetValid {
        /// The license's start (unix seconds).
        not_before: u64,
    },
}

/// How the license is bound to a device, if it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BindingKind {
    /// Bound to one exact fingerprint.
    Exact,
    /// Bound to any device matching `required` of `components` fingerprint components.
    Tolerant {
        /// How many components must match (k).
        required: u8,
        /// How many components the license knows (n).
        components: u8,
    },
}

/// The lease a license was validated with ([`crate::Validator::validate_with_lease`]):
/// this device's hold on one seat of the license, until [`Lease::expires_at`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    seat_id: SeatId,
    key_id: KeyId,
    issued_at: u64,
    renew_at: u64,
    expires_at: u64,
    check_in_due: bool,
}

impl Lease {
    pub(crate) fn new(v: &VerifiedLease) -> Self {
        let t = v.terms();
        Lease {
            seat_id: t.seat_id,
            key_id: v.key_id(),
            issued_at: t.issued_at,
            renew_at: t.renew_at,
            expires_at: t.expires_at,
            check_in_due: v.status() == LeaseStatus::CheckInDue,
        }
    }

    /// The seat this device holds; check-ins and releases name it.
    #[must_use]
    pub const fn seat_id(&self) -> SeatId {
        self.seat_id
    }

    /// The key that signed the lease.
    #[must_use]
    pub const fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// When the service signed it (unix seconds).
    #[must_use]
    pub const fn issued_at(&self) -> u64 {
        self.issued_at
    }

    /// When the app should check in (unix seconds).
    #[must_use]
    pub const fn renew_at(&self) -> u64 {
        self.renew_at
    }

    /// When the lease ends (unix seconds): check in before it, or the
    /// license is refused with `lease_expired` on this device.
    #[must_use]
    pub const fn expires_at(&self) -> u64 {
        self.expires_at
    }

    /// Whether the renew time has passed: the lease still holds (its
    /// check-in grace), and the app should check in now.
    #[must_use]
    pub const fn check_in_due(&self) -> bool {
        self.check_in_due
    }
}

/// A byte range in [`License`]'s one string buffer.
#[derive(Clone, Copy, Default)]
struct Span(u16, u16);

/// A license whose signature verified, owned (no borrow of the key text).
///
/// Built once per validation with one allocation for all its text.
/// [`License::warnings`] lists what the app may want to tell the customer
/// (a suspect clock, a stale revocation list) and, in advisory mode, the
/// problem that would otherwise have refused the license.
#[derive(Clone)]
#[must_use]
pub struct License {
    id: LicenseId,
    key_id: KeyId,
    issued_at: u64,
    not_before: Option<u64>,
    expires_at: Option<u64>,
    grace_secs: u32,
    status: Status,
    max_version: Option<VersionCap>,
    binding: Option<BindingKind>,
    text: String,
    product: Span,
    customer: Span,
    plan: Span,
    entitlements: [Span; MAX_ENTITLEMENTS],
    n_entitlements: u8,
    extensions: [(Span, Span); MAX_EXTENSIONS],
    n_extensions: u8,
    lease: Option<Lease>,
    warnings: Vec<Problem>,
}

impl License {
    pub(crate) fn new(
        claims: &Claims<'_>,
        key_id: KeyId,
        status: Status,
        warnings: Vec<Problem>,
    ) -> Self {
        let ents = claims.entitlements.as_slice();
        let exts = claims.extensions.as_slice();
        let len = claims.product.len()
            + claims.customer.len()
            + claims.plan.len()
            + ents.iter().map(|e| e.len()).sum::<usize>()
            + exts.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
        let mut text = String::with_capacity(len);
        // Claims are at most MAX_CLAIMS_LEN (2112) bytes, so offsets fit in u16.
        let mut push = |s: &str| {
            let start = text.len() as u16;
            text.push_str(s);
            Span(start, text.len() as u16)
        };
        let product = push(claims.product);
        let customer = push(claims.customer);
        let plan = push(claims.plan);
        let mut entitlements = [Span::default(); MAX_ENTITLEMENTS];
        for (slot, e) in entitlements.iter_mut().zip(ents) {
            *slot = push(e);
        }
        let mut extensions = [(Span::default(), Span::default()); MAX_EXTENSIONS];
        for (slot, (k, v)) in extensions.iter_mut().zip(exts) {
            *slot = (push(k), push(v));
        }
        let binding = claims.device.map(|d| match d {
            DeviceBinding::Exact { .. } => BindingKind::Exact,
            DeviceBinding::Tolerant { required, digests } => BindingKind::Tolerant {
                required,
                components: digests.len() as u8,
            },
        });
        License {
            id: claims.license_id,
            key_id,
            issued_at: claims.issued_at,
            not_before: claims.not_before,
            expires_at: claims.expires_at,
            grace_secs: claims.grace_secs,
            status,
            max_version: claims.max_version,
            binding,
            text,
            product,
            customer,
            plan,
            entitlements,
            n_entitlements: ents.len() as u8,
            extensions,
            n_extensions: exts.len() as u8,
            lease: None,
            warnings,
        }
    }

    pub(crate) fn with_lease(mut self, lease: Lease) -> Self {
        self.lease = Some(lease);
        self
    }

    pub(crate) fn warn_first(mut self, problem: Problem) -> Self {
        self.warnings.insert(0, problem);
        self
    }

    pub(crate) fn into_warnings(self) -> Vec<Problem> {
        self.warnings
    }

    fn str(&self, s: Span) -> &str {
        self.text
            .get(usize::from(s.0)..usize::from(s.1))
            .unwrap_or("")
    }

    /// The license's id (32 hex digits when displayed).
    #[must_use]
    pub const fn id(&self) -> LicenseId {
        self.id
    }

    /// The product it is for.
    #[must_use]
    pub fn product(&self) -> &str {
        self.str(self.product)
    }

    /// The vendor's opaque customer id.
    #[must_use]
    pub fn customer(&self) -> &str {
        self.str(self.customer)
    }

    /// The plan, for example `pro`.
    #[must_use]
    pub fn plan(&self) -> &str {
        self.str(self.plan)
    }

    /// When it was issued (unix seconds).
    #[must_use]
    pub const fn issued_at(&self) -> u64 {
        self.issued_at
    }

    /// Not valid before this time (unix seconds), if set.
    #[must_use]
    pub const fn not_before(&self) -> Option<u64> {
        self.not_before
    }

    /// Expiry (unix seconds); `None` is perpetual.
    #[must_use]
    pub const fn expires_at(&self) -> Option<u64> {
        self.expires_at
    }

    /// Grace period after expiry, in seconds (0: none).
    #[must_use]
    pub const fn grace_secs(&self) -> u32 {
        self.grace_secs
    }

    /// Active, in grace, or (advisory mode only) expired or not yet valid.
    #[must_use]
    pub const fn status(&self) -> Status {
        self.status
    }

    /// Whether the license is living on its grace period.
    #[must_use]
    pub const fn is_in_grace(&self) -> bool {
        matches!(self.status, Status::InGrace { .. })
    }

    /// The entitlements, sorted.
    pub fn entitlements(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.entitlements[..usize::from(self.n_entitlements)]
            .iter()
            .map(|s| self.str(*s))
    }

    /// Whether the license grants entitlement `name`.
    #[must_use]
    pub fn has(&self, name: &str) -> bool {
        self.entitlements[..usize::from(self.n_entitlements)]
            .binary_search_by(|s| self.str(*s).cmp(name))
            .is_ok()
    }

    /// The newest app version covered, if limited.
    #[must_use]
    pub const fn max_version(&self) -> Option<VersionCap> {
        self.max_version
    }

    /// The vendor extension fields `(key, value)`, sorted by key.
    pub fn extensions(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        self.extensions[..usize::from(self.n_extensions)]
            .iter()
            .map(|(k, v)| (self.str(*k), self.str(*v)))
    }

    /// The value of extension field `key`.
    #[must_use]
    pub fn extension(&self, key: &str) -> Option<&str> {
        let exts = &self.extensions[..usize::from(self.n_extensions)];
        let i = exts.binary_search_by(|(k, _)| self.str(*k).cmp(key)).ok()?;
        exts.get(i).map(|(_, v)| self.str(*v))
    }

    /// The id of the key that signed it.
    #[must_use]
    pub const fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// How it is bound to a device, if it is.
    #[must_use]
    pub const fn binding(&self) -> Option<BindingKind> {
        self.binding
    }

    /// The lease it was validated with, if it was
    /// ([`crate::Validator::validate_with_lease`]).
    #[must_use]
    pub const fn lease(&self) -> Option<&Lease> {
        self.lease.as_ref()
    }

    /// Problems worth telling the customer about that did not refuse the
    /// license (and, in advisory mode, those that would have).
    #[must_use]
    pub fn warnings(&self) -> &[Problem] {
        &self.warnings
    }

    /// Whether there is nothing to warn about.
    #[must_use]
    pub fn is_clean(&self) -> bool {
        self.warnings.is_empty()
    }
}

impl fmt::Debug for License {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("License")
            .field("id", &self.id)
            .field("product", &self.product())
            .field("customer", &self.customer())
            .field("plan", &self.plan())
            .field("issued_at", &self.issued_at)
            .field("not_before", &self.not_before)
            .field("expires_at", &self.expires_at)
            .field("grace_secs", &self.grace_secs)
            .field("status", &self.status)
            .field("entitlements", &self.entitlements().collect::<Vec<_>>())
            .field("max_version", &self.max_version)
            .field("extensions", &self.extensions().collect::<Vec<_>>())
            .field("binding", &self.binding)
            .field("key_id", &self.key_id)
            .field("lease", &self.lease)
            .field("warnings", &self.warnings)
            .finish()
    }
}

impl PartialEq for License {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
            && self.key_id == other.key_id
            && self.issued_at == other.issued_at
            && self.not_before == other.not_before
            && self.expires_at == other.expires_at
            && self.grace_secs == other.grace_secs
            && self.status == other.status
            && self.max_version == other.max_version
            && self.binding == other.binding
            && self.product() == other.product()
            && self.customer() == other.customer()
            && self.plan() == other.plan()
            && self.entitlements().eq(other.entitlements())
            && self.extensions().eq(other.extensions())
            && self.lease == other.lease
            && self.warnings == other.warnings
    }
}

impl Eq for License {}

#[cfg(test)]
mod tests {
    use keyseal_core::claims::{Entitlements, Extensions};

    use super::*;

    #[test]
    fn owned_copy_of_the_claims() {
        let mut c = Claims::new(LicenseId::from_u128(7), "acme-cad", "cus_1", "pro", 10);
        c.entitlements = Entitlements::from_slice(&["a", "export-pdf", "z"]).unwrap();
        c.extensions = Extensions::from_slice(&[("region", "eu"), ("seats", "5")]).unwrap();
        c.expires_at = Some(20);
        let l = License::new(&c, KeyId::from_bytes([3; 8]), Status::Active, Vec::new());
        assert_eq!(
            (l.product(), l.customer(), l.plan()),
            ("acme-cad", "cus_1", "pro")
        );
        assert_eq!(
            l.entitlements().collect::<Vec<_>>(),
            ["a", "export-pdf", "z"]
        );
        assert!(l.has("export-pdf") && l.has("a") && l.has("z") && !l.has("b") && !l.has(""));
        assert_eq!(l.extension("seats"), Some("5"));
        assert_eq!(l.extension("nope"), None);
        assert_eq!(l.extensions().len(), 2);
        assert_eq!(l.expires_at(), Some(20));
        assert!(l.is_clean() && !l.is_in_grace());
        assert_eq!(l.clone(), l);
        assert!(format!("{l:?}").contains("export-pdf"));
    }
}
