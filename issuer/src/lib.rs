//! keyseal-issuer: the vendor's side of keyseal.
//!
//! It owns the vendor's state: the sealed signing keys, the ledger of every
//! issued license, revocations, published revocation lists and the audit
//! log. The `keyseal` CLI and the HTTP service are front ends over it and
//! share one data model: every license, product and key belongs to an
//! organisation, and the vault's own is the default one.
//!
//! * [`Vault`]: the ledger with the signing keys sealed in it: a directory
//!   holding a SQLite ledger (one writer at a time: [`vault::Access::Write`]
//!   takes its lock), or a PostgreSQL database that replicas share.
//! * [`Store`]: the ledger itself, on SQLite or PostgreSQL; every mutation
//!   is one transaction together with its [`audit`] entry.
//! * [`service`]: the issuing service's tenants (organisations), API
//!   tokens, customers, licenses and activations, every query scoped to one
//!   organisation; [`seats`] (leases) and [`trials`] serve apps that ask
//!   with a license key or, for a trial, a device fingerprint alone.
//! * [`webhooks`]: events announced to the organisations' endpoints,
//!   written to an outbox by the transaction that made each change.
//! * [`payments`]: a payment provider's events (Stripe) turned into
//!   customers and licenses, renewed and revoked; [`email`] delivers the
//!   keys.
//! * [`request`]: license requests as users write them, checked against the
//!   format's limits; [`batch`] reads them from CSV or JSONL.
//!
//! The issuer reads no environment, and no clock for anything it records
//! or signs: callers pass a [`Context`] (time and actor) to every mutation.
//! The one exception orders nothing but ids: new license ids start with the
//! system clock's milliseconds, so the ledger's indexes grow at one end.

pub mod activation;
pub mod allotments;
pub mod audit;
pub mod batch;
pub mod email;
mod error;
pub mod export;
mod fsutil;
pub mod idempotency;
pub mod keyfile;
mod ops;
pub mod payments;
pub mod privacy;
pub mod request;
pub mod root;
pub mod seats;
pub mod service;
pub mod store;
pub mod time;
pub mod token;
pub mod trials;
pub mod vault;
pub mod webhooks;

pub use error::{Error, KeyError, LedgerError, RequestError, Result, VaultError};
pub use export::KeyringExport;
pub use keyfile::{KdfParams, Passphrase};
pub use ops::{
    BatchOptions, BatchOutcome, Certificate, Issued, KEPT_LISTS, Publish, REVOCATION_LIST_LIFETIME,
    REVOKED_LISTED_AFTER_EXPIRY, SkippedRow,
};
pub use request::{LicenseRequest, RequestFields};
pub use store::{
    KeyInfo, KeyStatus, LeasePolicy, LicenseFilter, LicenseRecord, ListHead, PublishedList,
    Revoked, Signed, Store,
};
pub use vault::{Access, InitOptions, Signer, Vault};

/// Who does a mutation, and when: recorded in the ledger and the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    /// Now, in unix seconds.
    pub now: u64,
    /// Who: an OS user name or a service principal. An opaque id, never personal data beyond that.
    pub actor: String,
}
