//! The ledger: products, signing keys (public halves), issued licenses,
//! revocations, published revocation lists and the audit log, in SQLite (the
//! vault's file) or PostgreSQL (the HTTP service), through one portable schema.
//!
//! Every mutation runs in a transaction that also appends its audit entry,
//! so the ledger and the audit log never disagree.
//!
//! One module per aggregate, each with its tables' queries and row
//! conversions: `keys`, `catalog` (products), `customers`, `licenses`,
//! `revocations` (and the published lists), `tokens`, `orgs`, `audit_log`;
//! `db` holds connections, pragmas, checkpoints and migrations. Here: the
//! [`Store`] and [`WriteTx`] types, and what every module uses (they
//! `use super::*`).

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use keyseal_core::{KeyId, LicenseId, PublicKey};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};
use sqlx::{Any, AnyPool, Connection, Executor, Row, Transaction};

use crate::Context;
use crate::audit::{self, AuditEntry, GENESIS};
use crate::error::LedgerError;
use crate::error::{Error, Result};

/// Which database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite (the vault's embedded ledger).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// The ledger store.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    /// Where reads go: the same pool on PostgreSQL; on SQLite, connections
    /// of their own ([`READ_CONNECTIONS`]) beside the writing one.
    reads: AnyPool,
    backend: Backend,
    /// The connect URL (a SQLite checkpointer opens its own connection).
    url: String,
    /// WAL pages after which a committing SQLite connection checkpoints
    /// (0 once checkpoints run on their own connection).
    autocheckpoint: Arc<AtomicU32>,
    /// The keys of customers' personal data, once
    /// [`Store::unlock_personal_data`] opened them.
    personal: Arc<std::sync::OnceLock<crate::privacy::DataKeys>>,
    /// The organisation of each signing key found so far ([`Store::key_org`]):
    /// a key belongs to one organisation for good, so this never goes stale.
    pub(crate) key_orgs: Arc<std::sync::RwLock<std::collections::HashMap<u64, String>>>,
}

pub(crate) fn i(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(crate) fn u(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// The rows of a [`Store::packed_page`] query, each decoded as `T` (a tuple
/// of its columns).
pub(crate) fn unpack_page<T: serde::de::DeserializeOwned>(
    row: &AnyRow,
    what: &'static str,
) -> Result<Vec<T>> {
    let text: String = row.try_get(0).map_err(|e| Error::db(what, e))?;
    serde_json::from_str(&text).map_err(|e| corrupt(&format!("{what}: {e}")))
}

fn corrupt(what: &str) -> Error {
    Error::Ledger(LedgerError::Corrupt {
        detail: what.to_owned(),
    })
}

/// A write transaction: holds the writers' lock until commit or drop (rollback).
pub struct WriteTx {
    tx: Transaction<'static, Any>,
    head: Option<(u64, String)>,
    /// Audit entries of this transaction, chained but not yet written:
    /// [`WriteTx::commit`] writes them, many rows per statement.
    pending: Vec<PendingEntry>,
    /// Each organisation's audit chain head (its last org_seq and hash), as
    /// read or written in this transaction.
    org_heads: std::collections::HashMap<String, (u64, String)>,
    backend: Backend,
}

impl WriteTx {
    /// Which database this transaction is on.
    pub(crate) fn backend(&self) -> Backend {
        self.backend
    }
}

impl Store {
    // ---- products --------------------------------------------------------

    // ---- keys ------------------------------------------------------------

    // ---- licenses --------------------------------------------------------

    // ---- key certificates ------------------------------------------------

    // ---- revocation lists ------------------------------------------------

    // ---- audit -----------------------------------------------------------
}

use audit_log::PendingEntry;
pub(crate) use customers::check_metadata;
pub use customers::personal_fields_ok;
pub(crate) use db::ping;
pub use db::{AUTOCHECKPOINT_PAGES, Checkpointer, WalProgress, url_host};
pub(crate) use keys::{KEY_COLUMNS, key_from_row};
pub use keys::{KeyInfo, KeyStatus, Signed};
pub use licenses::{LicenseFilter, LicenseRecord};
pub(crate) use licenses::{
    NewLicense, ORG_LICENSE_SELECT, license_id, org_license_from_row, padded_insert, values_rows,
};
pub use revocations::{ListHead, PublishedList, Revoked};

mod audit_log;
mod catalog;
pub use catalog::LeasePolicy;
mod customers;
mod db;
mod keys;
mod licenses;
mod orgs;
mod revocations;
mod tokens;
mod webhooks;
pub use payments::PaymentRecord;
mod email;
mod payments;
pub use email::Sent;
pub use webhooks::{EndpointPatch, MAX_REPLAY, Replay, WEBHOOK_RETENTION_SECS};

#[cfg(test)]
mod tests;

pub(crate) fn random_hex(n: usize) -> Result<String> {
    let mut b = vec![0u8; n];
    getrandom::fill(&mut b)?;
    Ok(keyseal_core::hex::encode(&b))
}

/// `s` cut to at most `max` bytes, at a character boundary (errors kept
/// with a delivery or an email).
pub(crate) fn clip(s: &str, max: usize) -> String {
    let end = s
        .char_indices()
        .map(|(i, c)| i + c.len_utf8())
        .take_while(|end| *end <= max)
        .last()
        .unwrap_or(0);
    s[..end].to_owned()
}

pub(crate) fn check_text(field: &str, v: &str, max: usize) -> Result<()> {
    if v.len() > max {
        return Err(Error::invalid(field, format!("is longer than {max} bytes")));
    }
    if let Some(c) = v.chars().find(|&c| crate::request::hidden_char(c)) {
        return Err(Error::invalid(
            field,
            format!(
                "contains U+{:04X}, a control, bidi or invisible character",
                u32::from(c)
            ),
        ));
    }
    Ok(())
}

/// A row read into `T`, a struct named after the query's columns.
pub(crate) fn read_row<T>(r: &AnyRow, doing: &'static str) -> Result<T>
where
    T: for<'r> sqlx::FromRow<'r, AnyRow>,
{
    T::from_row(r).map_err(db_err(doing))
}

pub(crate) fn db_err(doing: &'static str) -> impl Fn(sqlx::Error) -> Error {
    move |e| Error::db(doing, e)
}
