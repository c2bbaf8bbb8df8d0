#![no_std]
#![doc = include_str!("lib.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(any(feature = "alloc", test))]
extern crate alloc;

pub mod activation_code;
pub mod allotment;
pub mod claims;
pub mod device;
mod envelope;
pub mod error;
pub mod hex;
pub mod key;
pub mod keyring;
pub mod lease;
pub mod license;
#[cfg(feature = "alloc")]
pub mod precomputed;
#[cfg(feature = "alloc")]
pub mod revocation;
mod text;
#[cfg(feature = "alloc")]
pub mod webhook;

pub use allotment::{AllotmentTerms, UnverifiedAllotment};
pub use claims::{Claims, DeviceBinding, LicenseId, ListError, Version, VersionCap};
pub use device::{DeviceRule, Fingerprint};
pub use envelope::SIGNATURE_LEN;
pub use error::{Error, Malformed};
#[cfg(feature = "sign")]
pub use key::SigningKey;
pub use key::{KeyId, PublicKey};
pub use keyring::{KeyCertificate, Keyring, TrustedKey};
pub use lease::{LeaseFault, LeaseStatus, LeaseTerms, SeatId, UnverifiedLease, VerifiedLease};
pub use license::{
    Expectations, RevocationCheck, Status, Timing, UnverifiedLicense, VerifiedLicense,
};
#[cfg(feature = "alloc")]
pub use precomputed::PrecomputedKey;
#[cfg(feature = "alloc")]
pub use revocation::{ListOrder, RevocationList};
pub use text::armor;

/// Largest message any keyseal signature covers on the allocation-free
/// verify path: domain, license without signature, device binding hash.
pub(crate) const MAX_SIGNED_MESSAGE_LEN: usize =
    32 + license::MAX_LICENSE_LEN + device::BINDING_HASH_LEN;
