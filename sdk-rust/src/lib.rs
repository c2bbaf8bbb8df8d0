#![doc = include_str!("lib.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod clock;
pub mod fingerprint;
mod input;
pub mod license;
pub mod problem;
#[cfg(feature = "seats")]
#[cfg_attr(docsrs, doc(cfg(feature = "seats")))]
pub mod seats;
pub mod state;
mod time;
pub mod validator;
pub mod webhooks;

pub use keyseal_core;
pub use keyseal_core::{
    Error as CoreError, Fingerprint, KeyId, Keyring, LeaseFault, LicenseId, RevocationList, SeatId,
    Version, VersionCap,
};

#[cfg(keyseal_os)]
pub use clock::SystemClock;
pub use clock::{Clock, ManualClock};
pub use fingerprint::Fingerprinter;
pub use license::{BindingKind, Lease, License, Status};
pub use problem::{Problem, Rejection};
#[cfg(keyseal_os)]
pub use state::FileStateStore;
pub use state::{MemoryStateStore, State, StateStore};
pub use validator::{MAX_SIGNED_LEAD, Mode, Policy, Staleness, Validator, ValidatorBuilder};

/// `Send + Sync` on targets with threads; nothing on WebAssembly, where the
/// JavaScript binding implements [`Clock`], [`StateStore`] and fingerprint
/// sources over JS objects, which are neither.
#[cfg(not(target_family = "wasm"))]
pub trait MaybeSendSync: Send + Sync {}
#[cfg(not(target_family = "wasm"))]
impl<T: Send + Sync + ?Sized> MaybeSendSync for T {}

/// `Send + Sync` on targets with threads; nothing on WebAssembly, where the
/// JavaScript binding implements [`Clock`], [`StateStore`] and fingerprint
/// sources over JS objects, which are neither.
#[cfg(target_family = "wasm")]
pub trait MaybeSendSync {}
#[cfg(target_family = "wasm")]
impl<T: ?Sized> MaybeSendSync for T {}
