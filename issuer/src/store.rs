//! The ledger: products, signing keys (public halves), issued licenses,
//! revocations, published revocation lists and the audit log, in SQLite (the
//! vault's file) or PostgreSQL (the HTTP service), through one portable schema.
//!
//! Every mutation runs in a transaction that also appends its audit entry,
//! so the ledger and the audit log never disagree.

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
use crate::error::{Error, Result};

/// The embedded migrations, in order.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "ledger", include_str!("../migrations/0001_ledger.sql")),
    // The issuing service's tenants, tokens, customers and activations (see `service`).
    (2, "service", include_str!("../migrations/0002_service.sql")),
    // The device-bound key of each activation (see `activation`).
    (
        3,
        "device_keys",
        include_str!("../migrations/0003_device_keys.sql"),
    ),
    // Revocable API tokens (see `service`).
    (
        4,
        "token_revocation",
        include_str!("../migrations/0004_token_revocation.sql"),
    ),
    // Signing keys and revocation lists per organisation (see `service`).
    (
        5,
        "org_keys",
        include_str!("../migrations/0005_org_keys.sql"),
    ),
    // At most one active signing key per organisation (see `ops`).
    (
        6,
        "one_active_key",
        include_str!("../migrations/0006_one_active_key.sql"),
    ),
    // Idempotency keys of the service's POST requests (see `idempotency`).
    (
        7,
        "idempotency",
        include_str!("../migrations/0007_idempotency.sql"),
    ),
    // Indexes for a customer's and a product's licenses (see `service`).
    (
        8,
        "license_filters",
        include_str!("../migrations/0008_license_filters.sql"),
    ),
    // Sealed personal data; the audit log by organisation and customer
    // (see `privacy`, `Store::fill_audit_subjects`).
    (
        9,
        "personal_data",
        include_str!("../migrations/0009_personal_data.sql"),
    ),
    // One data model: the command line's products and licenses belong to
    // the default organisation (see `Store::fold_into_orgs`).
    (
        10,
        "one_model",
        include_str!("../migrations/0010_one_model.sql"),
    ),
    // Sealed signing keys in the ledger (see `Store::sealed_key`).
    (
        11,
        "sealed_keys",
        include_str!("../migrations/0011_sealed_keys.sql"),
    ),
    // External ids of licenses (see `request::RequestFields::external_id`).
    (
        12,
        "external_ids",
        include_str!("../migrations/0012_external_ids.sql"),
    ),
    // License metadata (see `service::OrgLicense::metadata`).
    (
        13,
        "license_metadata",
        include_str!("../migrations/0013_license_metadata.sql"),
    ),
    // Key certificates by an offline root (see `Store::org_certify_key`).
    (
        14,
        "key_certificates",
        include_str!("../migrations/0014_key_certificates.sql"),
    ),
    // Expired revoked licenses drop off the lists (see `ops::REVOKED_LISTED_AFTER_EXPIRY`).
    (
        15,
        "revocation_pruning",
        include_str!("../migrations/0015_revocation_pruning.sql"),
    ),
    // The revision each list was built from (see `ops::Publish::IfChanged`).
    (
        16,
        "list_revision",
        include_str!("../migrations/0016_list_revision.sql"),
    ),
    // An organisation's licenses by customer and by product, from an index
    // that starts with the organisation (see `service::org_licenses_query`).
    (
        17,
        "org_license_filters",
        include_str!("../migrations/0017_org_license_filters.sql"),
    ),
    // Revocations by organisation (see `read_revoked`).
    (
        18,
        "revocations_by_org",
        include_str!("../migrations/0018_revocations_by_org.sql"),
    ),
    // A claimed idempotency key notes its request's committed effect (see
    // `idempotency::Claim::Unanswered`).
    (
        19,
        "idempotency_effects",
        include_str!("../migrations/0019_idempotency_effects.sql"),
    ),
];

/// The schema before which [`Store::fold_into_orgs`] runs.
const BEFORE_ONE_MODEL: i64 = 9;

/// The embedded migrations up to this version.
#[derive(Debug)]
struct Embedded(i64);

impl<'s> MigrationSource<'s> for Embedded {
    fn resolve(
        self,
    ) -> futures_core_compat::BoxFuture<
        's,
        std::result::Result<Vec<Migration>, sqlx::error::BoxDynError>,
    > {
        Box::pin(async move {
            Ok(MIGRATIONS
                .iter()
                .filter(|(v, _, _)| *v <= self.0)
                .map(|(v, d, sql)| {
                    Migration::new(
                        *v,
                        Cow::Borrowed(d),
                        MigrationType::Simple,
                        Cow::Borrowed(sql),
                        false,
                    )
                })
                .collect())
        })
    }
}

mod futures_core_compat {
    use std::future::Future;
    use std::pin::Pin;
    pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
}

/// Status of a signing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyStatus {
    /// Signs new licenses (one key at most).
    Active,
    /// Signs nothing any more; licenses it signed within its window stay valid.
    Retired,
    /// Compromised: the next revocation list revokes it, and every license it signed.
    Revoked,
}

impl KeyStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "active",
            KeyStatus::Retired => "retired",
            KeyStatus::Revoked => "revoked",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "active" => KeyStatus::Active,
            "retired" => KeyStatus::Retired,
            "revoked" => KeyStatus::Revoked,
            other => {
                return Err(Error::CorruptLedger {
                    detail: format!("unknown key status `{other}`"),
                });
            }
        })
    }
}

/// A signing key as the ledger records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// The key id.
    pub key_id: KeyId,
    /// The public key.
    pub public_key: PublicKey,
    /// Active, retired or revoked.
    pub status: KeyStatus,
    /// When the key was created.
    pub created_at: u64,
    /// First issue time the key is trusted for.
    pub valid_from: u64,
    /// Last issue time the key is trusted for; `None` while active.
    pub valid_until: Option<u64>,
    /// When the key was revoked.
    pub revoked_at: Option<u64>,
    /// Why.
    pub revoke_reason: Option<String>,
}

/// A license as the ledger records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicenseRecord {
    /// The license id.
    pub license_id: LicenseId,
    /// The key that signed it.
    pub key_id: KeyId,
    /// Product id.
    pub product: String,
    /// Opaque customer id.
    pub customer: String,
    /// Plan.
    pub plan: String,
    /// Issue time.
    pub issued_at: u64,
    /// Expiry, if any.
    pub expires_at: Option<u64>,
    /// The license key text (`ks1.`).
    pub license_key: String,
    /// The batch it was minted in, if any.
    pub batch_id: Option<String>,
    /// Its row in the batch file.
    pub batch_row: Option<u64>,
    /// When and why it was revoked, if it was.
    pub revoked: Option<(u64, String)>,
    /// The vendor's own id for it, unique in its organisation, if given.
    pub external_id: Option<String>,
}

/// A published revocation list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedList {
    /// Sequence number.
    pub sequence: u64,
    /// Issue time.
    pub issued_at: u64,
    /// Next-update time.
    pub next_update: u64,
    /// The key that signed it.
    pub signer: KeyId,
    /// Revoked license ids in it.
    pub license_count: u64,
    /// Revoked key ids in it.
    pub key_count: u64,
    /// The signed list.
    pub bytes: Vec<u8>,
}

/// What identifies an organisation's current list file
/// ([`Store::org_list_head`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListHead {
    /// The newest list's sequence.
    pub sequence: u64,
    /// Its next-update time.
    pub next_update: u64,
    /// The version of the key certificates (empty before any).
    pub certificates: String,
}

/// Filter for [`Store::licenses`].
#[derive(Debug, Clone, Default)]
pub struct LicenseFilter {
    /// Only the license with this external id.
    pub external_id: Option<String>,
    /// Only this product.
    pub product: Option<String>,
    /// Only this customer.
    pub customer: Option<String>,
    /// Only this batch.
    pub batch_id: Option<String>,
    /// At most this many (newest first unless a batch is given, then by row).
    pub limit: Option<u64>,
}

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
}

/// Read connections of a SQLite ledger, beside the one that writes.
const READ_CONNECTIONS: u32 = 4;

/// The host and port of a ledger URL, for messages (never its password).
pub fn url_host(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    rest.split(['/', '?']).next().unwrap_or("").to_owned()
}

/// WAL pages (32 MiB) after which a committing SQLite connection checkpoints
/// by itself, unless checkpoints run on their own connection
/// ([`Store::checkpoint_separately`]).
pub const AUTOCHECKPOINT_PAGES: u32 = 8192;

/// Checkpoints a SQLite ledger's write-ahead log on a connection of its
/// own, so no commit waits for one (see [`Store::checkpoint_separately`]).
pub struct Checkpointer {
    conn: sqlx::AnyConnection,
}

async fn wal_checkpoint(conn: &mut sqlx::AnyConnection, sql: &str) -> Result<WalProgress> {
    let g = |e| Error::db("checkpointing the ledger", e);
    let row = sqlx::query(sql).fetch_one(conn).await.map_err(g)?;
    let busy: i64 = row.try_get(0).map_err(g)?;
    let log: i64 = row.try_get(1).map_err(g)?;
    let done: i64 = row.try_get(2).map_err(g)?;
    Ok(WalProgress {
        busy: busy != 0,
        log_pages: u(log),
        checkpointed_pages: u(done),
    })
}

impl std::fmt::Debug for Checkpointer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpointer").finish_non_exhaustive()
    }
}

/// What a checkpoint did, in WAL pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalProgress {
    /// Whether it could not finish (a writer or reader was in the way).
    pub busy: bool,
    /// Pages in the log.
    pub log_pages: u64,
    /// Pages of the log now in the database file.
    pub checkpointed_pages: u64,
}

impl Checkpointer {
    /// Copies what it can of the log into the database file without
    /// waiting for or blocking any writer or reader (SQLite's PASSIVE mode).
    pub async fn passive(&mut self) -> Result<WalProgress> {
        self.run("PRAGMA wal_checkpoint(PASSIVE)").await
    }

    async fn run(&mut self, sql: &str) -> Result<WalProgress> {
        wal_checkpoint(&mut self.conn, sql).await
    }

    /// Closes its connection.
    pub async fn close(self) {
        let _ = self.conn.close().await;
    }
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
    Error::CorruptLedger {
        detail: what.to_owned(),
    }
}

/// Rows per INSERT statement (10 parameters each; well under SQLite's and
/// PostgreSQL's parameter limits).
const INSERT_ROWS: usize = 1000;

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

impl Store {
    /// Opens (or with `create`, creates) a SQLite ledger file.
    pub async fn open_sqlite(path: &Path, create: bool) -> Result<Store> {
        let abs = if path.is_absolute() {
            path.to_path_buf()
        } else {
            std::env::current_dir()
                .map_err(|e| Error::io("resolve", path, e))?
                .join(path)
        };
        let s = abs
            .to_str()
            .ok_or_else(|| Error::invalid("vault", "the vault path must be valid UTF-8"))?;
        if s.contains(['?', '#', '%']) {
            return Err(Error::invalid(
                "vault",
                "the vault path must not contain ?, # or %",
            ));
        }
        let url = format!("sqlite://{s}?mode={}", if create { "rwc" } else { "rw" });
        Self::connect_url(&url, 1).await
    }

    /// Connects to a ledger by URL: `sqlite://PATH` or `postgres://...`.
    pub async fn connect(url: &str) -> Result<Store> {
        Self::connect_url(url, 8).await
    }

    async fn connect_url(url: &str, max: u32) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let opts: AnyConnectOptions = url
            .parse()
            .map_err(|e| Error::db("parsing the ledger URL", e))?;
        let unreachable = || {
            format!(
                "connecting to the PostgreSQL ledger at {} (--database-url or KEYSEAL_DATABASE_URL)",
                url_host(url)
            )
        };
        if backend == Backend::Postgres {
            // Probe once, so a refused connection or a wrong password is
            // reported at once (with its cause) instead of the pool
            // retrying until it times out; 10 s for a host that never
            // answers.
            match tokio::time::timeout(
                Duration::from_secs(10),
                sqlx::AnyConnection::connect_with(&opts),
            )
            .await
            {
                Ok(Ok(c)) => {
                    let _ = c.close().await;
                }
                Ok(Err(e)) => return Err(Error::db(unreachable(), e)),
                Err(_) => return Err(Error::db(unreachable(), sqlx::Error::PoolTimedOut)),
            }
        }
        if backend == Backend::Sqlite {
            // Probe once, so a damaged file is reported at once instead of
            // the pool retrying until it times out.
            let mut c = sqlx::AnyConnection::connect_with(&opts)
                .await
                .map_err(|e| Error::db("opening the ledger", e))?;
            c.execute("PRAGMA busy_timeout = 5000; SELECT COUNT(*) FROM sqlite_master;")
                .await
                .map_err(|e| Error::db("opening the ledger", e))?;
            c.close()
                .await
                .map_err(|e| Error::db("opening the ledger", e))?;
        }
        let autocheckpoint = Arc::new(AtomicU32::new(AUTOCHECKPOINT_PAGES));
        let make = |max: u32| {
            let pages = autocheckpoint.clone();
            let opts = opts.clone();
            async move {
                AnyPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _| {
                let pages = pages.load(Ordering::Relaxed);
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL with synchronous = FULL: every commit is on disk
                        // before it returns (a batch writes keys out only after
                        // that). Checkpoints every 32 MiB of WAL rather than 4,
                        // so a batch is not slowed by one per commit (none at
                        // all once a checkpointer runs on its own connection);
                        // a 32 MiB page cache keeps the license index in memory.
                        conn.execute(&*format!(
                            "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; \
                             PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON; \
                             PRAGMA wal_autocheckpoint = {pages}; PRAGMA cache_size = -32768;"
                        ))
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(opts)
            .await
            .map_err(|e| {
                Error::db(
                    match backend {
                        Backend::Sqlite => "opening the ledger".to_owned(),
                        // Name the real cause: the URL, not the vault.
                        Backend::Postgres => unreachable(),
                    },
                    e,
                )
            })
            }
        };
        let pool = make(max).await?;
        // SQLite: one connection writes (writers queue in the pool, not in
        // SQLite's sleeping busy handler); reads have connections of their
        // own, so a long read (a page of 500) never holds up a commit. WAL
        // readers see every commit made before they start.
        let reads = match backend {
            Backend::Sqlite => make(READ_CONNECTIONS).await?,
            Backend::Postgres => pool.clone(),
        };

        Ok(Store {
            pool,
            reads,
            backend,
            url: url.to_owned(),
            autocheckpoint,
            personal: Arc::default(),
        })
    }

    /// The keys of customers' personal data; an error until
    /// [`Store::unlock_personal_data`] ran.
    pub(crate) fn data_keys(&self) -> Result<&crate::privacy::DataKeys> {
        self.personal.get().ok_or(Error::PersonalDataLocked)
    }

    /// Opens the ledger's data secret with the passphrase (making and
    /// sealing one, with `kdf`, on first use; see [`crate::privacy`]), then
    /// seals the personal fields of customers written before schema 9.
    /// Costs one Argon2 run.
    pub async fn unlock_personal_data(
        &self,
        pass: &crate::Passphrase,
        kdf: crate::KdfParams,
    ) -> Result<()> {
        use crate::keyfile::KeyFile;
        const NAME: &str = "data_secret";
        let read = || async {
            sqlx::query("SELECT value FROM meta WHERE name = $1")
                .bind(NAME)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| Error::db("reading the ledger", e))?
                .map(|r| r.try_get::<String, _>(0))
                .transpose()
                .map_err(|e| Error::db("reading the ledger", e))
        };
        let text = match read().await? {
            Some(t) => t,
            None => {
                let mut seed = zeroize::Zeroizing::new([0u8; 32]);
                getrandom::fill(seed.as_mut())?;
                let key = keyseal_core::SigningKey::from_seed(&seed)
                    .map_err(|_| corrupt("a random seed was refused"))?;
                let sealed = serde_json::to_string(&KeyFile::seal(&key, pass, kdf)?)
                    .map_err(|e| corrupt(&e.to_string()))?;
                // Under the writer lock: two replicas starting at once make
                // one secret, the first.
                let mut tx = self.begin_write().await?;
                let rows = tx
                    .fetch(
                        sqlx::query("SELECT value FROM meta WHERE name = $1").bind(NAME),
                        "reading the ledger",
                    )
                    .await?;
                if rows.is_empty() {
                    tx.set_meta(NAME, &sealed).await?;
                }
                tx.commit().await?;
                read()
                    .await?
                    .ok_or_else(|| corrupt("the data secret was not saved"))?
            }
        };
        let file: KeyFile =
            serde_json::from_str(&text).map_err(|_| corrupt("the data secret is malformed"))?;
        let key = file.open(pass, Path::new("the ledger's data secret"))?;
        let _ = self
            .personal
            .set(crate::privacy::DataKeys::from_secret(&key.to_seed()));
        self.seal_plaintext_customers().await
    }

    /// Seals the fields of customers written in plaintext (before schema
    /// 9), then clears the plaintext, a page of rows per transaction. Once
    /// none is left, `meta` says so and later starts skip the scan (no
    /// write transaction, no walk of `customers`): since schema 9 nothing
    /// writes plaintext.
    async fn seal_plaintext_customers(&self) -> Result<()> {
        const DONE: &str = "customers_sealed";
        let done = sqlx::query("SELECT value FROM meta WHERE name = $1")
            .bind(DONE)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| Error::db("reading the ledger", e))?;
        if done.is_some() {
            return Ok(());
        }
        loop {
            let mut tx = self.begin_write().await?;
            let rows = tx
                .fetch(
                    sqlx::query(
                        "SELECT org_id, customer_id, name, email FROM customers \
                         WHERE name IS NOT NULL OR email IS NOT NULL ORDER BY customer_id LIMIT 500",
                    ),
                    "reading customers",
                )
                .await?;
            if rows.is_empty() {
                tx.set_meta(DONE, "9").await?;
                return tx.commit().await;
            }
            let keys = self.data_keys()?;
            for r in &rows {
                let g = |e| Error::db("reading customers", e);
                let org: String = r.try_get(0).map_err(g)?;
                let id: String = r.try_get(1).map_err(g)?;
                let fields = crate::privacy::PersonalFields {
                    name: r.try_get(2).map_err(g)?,
                    email: r.try_get(3).map_err(g)?,
                    metadata: std::collections::BTreeMap::new(),
                };
                let (key, wrapped) = keys.new_customer_key(&org, &id)?;
                let hash = fields.email.as_deref().map(|e| keys.email_hash(&org, e));
                tx.exec(
                    sqlx::query(
                        "UPDATE customers SET data_key = $1, sealed = $2, email_hash = $3, \
                         name = NULL, email = NULL WHERE customer_id = $4",
                    )
                    .bind(wrapped)
                    .bind(key.seal(&org, &id, &fields)?)
                    .bind(hash)
                    .bind(id),
                    "sealing customers",
                )
                .await?;
            }
            tx.commit().await?;
            self.truncate_wal().await;
        }
    }

    /// On SQLite: checkpoints the whole WAL into the database and truncates
    /// it, so row images written before (an erased customer's) leave the
    /// disk. Best effort: a reader holding an old snapshot makes it stop
    /// early (the next checkpoint finishes it).
    pub(crate) async fn truncate_wal(&self) {
        if self.backend == Backend::Sqlite
            && let Ok(mut c) = self.pool.acquire().await
        {
            let _ = wal_checkpoint(&mut c, "PRAGMA wal_checkpoint(TRUNCATE)").await;
        }
    }

    /// For a SQLite ledger: a passive checkpoint on the writers' own
    /// connection. Under a steady stream of commits, checkpoints on another
    /// connection never let the log start over (frames keep arriving while
    /// they copy), so the log grows; run this between two commits, just
    /// after a [`Checkpointer::passive`] (little left to copy), and the next
    /// commit starts the log over. `None` for PostgreSQL.
    pub async fn checkpoint_between_commits(&self) -> Result<Option<WalProgress>> {
        if self.backend != Backend::Sqlite {
            return Ok(None);
        }
        let mut c = self
            .pool
            .acquire()
            .await
            .map_err(|e| Error::db("checkpointing the ledger", e))?;
        wal_checkpoint(&mut c, "PRAGMA wal_checkpoint(PASSIVE)")
            .await
            .map(Some)
    }

    /// For a SQLite ledger: stops commits from checkpointing the log
    /// themselves (on this store's connections, now and later) and returns a
    /// [`Checkpointer`] on a connection of its own, which the caller must
    /// then run often (or the log grows). `None` for PostgreSQL.
    pub async fn checkpoint_separately(&self) -> Result<Option<Checkpointer>> {
        if self.backend != Backend::Sqlite {
            return Ok(None);
        }
        let g = |e| Error::db("opening the ledger for checkpoints", e);
        let opts: AnyConnectOptions = self.url.parse().map_err(g)?;
        let mut conn = sqlx::AnyConnection::connect_with(&opts).await.map_err(g)?;
        conn.execute(
            "PRAGMA busy_timeout = 5000; PRAGMA synchronous = FULL; PRAGMA wal_autocheckpoint = 0;",
        )
        .await
        .map_err(g)?;
        self.autocheckpoint.store(0, Ordering::Relaxed);
        // Connections opened from now on get 0 in after_connect; hold every
        // open one at once (so each is a different one) and set it there.
        let mut held = Vec::new();
        for _ in 0..self.pool.size() {
            let mut c = self.pool.acquire().await.map_err(g)?;
            c.execute("PRAGMA wal_autocheckpoint = 0;")
                .await
                .map_err(g)?;
            held.push(c);
        }
        drop(held);
        Ok(Some(Checkpointer { conn }))
    }

    /// The connection pool (for the crate's other modules, e.g. `service`).
    /// Where reads go: the writing pool on PostgreSQL, the read connections
    /// on SQLite.
    pub(crate) fn pool(&self) -> &AnyPool {
        self.read_pool()
    }

    fn read_pool(&self) -> &AnyPool {
        &self.reads
    }

    /// A query that reads a page of rows as one: `inner` selects the page
    /// (with its `LIMIT`), and the database encodes its rows as one JSON
    /// array of arrays of `cols`, in `order`. A page of 500 then costs one
    /// row's trip through the driver instead of 500 (each a wake-up of the
    /// reading task and a row conversion; `bash server/bench/tenants.sh`
    /// prints what a page of 500 products costs the server). Decode the
    /// text with [`unpack_page`].
    pub(crate) fn packed_page(&self, cols: &str, order: &str, inner: &str) -> String {
        match self.backend {
            Backend::Sqlite => format!(
                "SELECT json_group_array(json_array({cols}) ORDER BY {order}) FROM ({inner}) AS page"
            ),
            Backend::Postgres => format!(
                "SELECT COALESCE(json_agg(json_build_array({cols}) ORDER BY {order})::text, '[]') \
                 FROM ({inner}) AS page"
            ),
        }
    }

    /// Which database this is.
    #[must_use]
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Applies the embedded migrations.
    pub async fn migrate(&self) -> Result<()> {
        if self.applied_version().await?.unwrap_or(0) < BEFORE_ONE_MODEL + 1 {
            self.migrate_to(BEFORE_ONE_MODEL).await?;
            self.fill_audit_subjects().await?;
            self.fold_into_orgs().await?;
        }
        self.migrate_to(i64::MAX).await?;
        // The copies schemas 17 and 18 keep, on the rows written before.
        self.fill_upgrade_gaps().await.map(drop)
    }

    /// Once, before schema 10: folds what the command line wrote into the
    /// organisation tables, so the command line and the service share one
    /// data model. An initialised ledger without organisations gets its
    /// default one (named `default`, taking over the vault's keys and
    /// lists); every registered product becomes the default organisation's
    /// and every license without an owner its, with one device seat. All in
    /// one transaction, with an `org.create` audit entry when one was made
    /// (dated at the ledger's last entry: a migration has no caller's clock).
    async fn fold_into_orgs(&self) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let meta =
            |name: &'static str| sqlx::query("SELECT value FROM meta WHERE name = $1").bind(name);
        if !tx
            .fetch(meta("one_model"), "reading the ledger")
            .await?
            .is_empty()
        {
            return Ok(());
        }
        let initialised = !tx
            .fetch(meta("format"), "reading the ledger")
            .await?
            .is_empty();
        if initialised {
            let g = |e| Error::db("reading the ledger", e);
            let default = tx.fetch(meta("default_org"), "reading the ledger").await?;
            let org_id = match default.first() {
                Some(r) => r.try_get::<String, _>(0).map_err(g)?,
                None => {
                    // Dated at the ledger's last entry: a migration has no
                    // caller's clock, and the issuer reads none.
                    let last = tx
                        .fetch(
                            sqlx::query("SELECT MAX(at) FROM audit_log"),
                            "reading the audit log",
                        )
                        .await?;
                    let now = last
                        .first()
                        .map(|r| r.try_get::<Option<i64>, _>(0))
                        .transpose()
                        .map_err(g)?
                        .flatten()
                        .map_or(0, u);
                    let ctx = Context {
                        now,
                        actor: "keyseal (ledger migration)".into(),
                    };
                    tx.insert_default_org(&ctx).await?
                }
            };
            tx.exec(
                sqlx::query(
                    "INSERT INTO org_products (org_id, product, name, created_at) \
                     SELECT $1, p.name, p.name, p.created_at FROM products p WHERE NOT EXISTS \
                     (SELECT 1 FROM org_products o WHERE o.org_id = $2 AND o.product = p.name)",
                )
                .bind(org_id.clone())
                .bind(org_id.clone()),
                "moving products to the default organisation",
            )
            .await?;
            tx.exec(
                sqlx::query(
                    "INSERT INTO org_licenses (license_id, org_id, max_devices) \
                     SELECT l.license_id, $1, 1 FROM licenses l WHERE NOT EXISTS \
                     (SELECT 1 FROM org_licenses o WHERE o.license_id = l.license_id)",
                )
                .bind(org_id),
                "moving licenses to the default organisation",
            )
            .await?;
        }
        tx.set_meta("one_model", "10").await?;
        tx.commit().await
    }

    /// Once, after schema 9: the organisation and customer of the audit
    /// entries written before it, read from their JSON details (with each
    /// back end's own JSON functions; a license action's customer is its
    /// license's). Entries written since carry both.
    async fn fill_audit_subjects(&self) -> Result<()> {
        let done = sqlx::query("SELECT value FROM meta WHERE name = 'audit_subjects'")
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| Error::db("reading the ledger", e))?;
        if done.is_some() {
            return Ok(());
        }
        let (field, text) = match self.backend {
            Backend::Sqlite => ("json_extract(details, '$.", "')"),
            Backend::Postgres => ("(details::json ->> '", "')"),
        };
        let f = |name: &str| format!("{field}{name}{text}");
        let sql = [
            format!(
                "UPDATE audit_log SET org_id = {} WHERE org_id IS NULL AND {} IS NOT NULL",
                f("org_id"),
                f("org_id")
            ),
            format!(
                "UPDATE audit_log SET subject = COALESCE({}, {}, \
                 (SELECT l.customer FROM licenses l WHERE l.license_id = {})) WHERE subject IS NULL",
                f("customer_id"),
                f("customer"),
                f("license_id")
            ),
        ];
        let mut tx = self.begin_write().await?;
        for q in &sql {
            tx.exec(sqlx::query(q), "filling the audit log's subjects")
                .await?;
        }
        tx.commit().await?;
        self.fill_org_chains().await?;
        // Only once all is done: an interrupted fill starts again.
        let mut tx = self.begin_write().await?;
        tx.set_meta("audit_subjects", "9").await?;
        tx.commit().await
    }

    /// Once, after schema 9: chains each organisation's earlier entries
    /// (in ledger order), a page per transaction.
    async fn fill_org_chains(&self) -> Result<()> {
        loop {
            let mut tx = self.begin_write().await?;
            let rows = tx
                .fetch(
                    sqlx::query(
                        "SELECT seq, at, actor, action, details, org_id FROM audit_log \
                         WHERE org_id IS NOT NULL AND org_seq IS NULL ORDER BY seq LIMIT 1000",
                    ),
                    "reading the audit log",
                )
                .await?;
            if rows.is_empty() {
                return tx.commit().await;
            }
            for r in &rows {
                let g = |e| Error::db("reading the audit log", e);
                let seq: i64 = r.try_get(0).map_err(g)?;
                let at: i64 = r.try_get(1).map_err(g)?;
                let actor: String = r.try_get(2).map_err(g)?;
                let action: String = r.try_get(3).map_err(g)?;
                let details: String = r.try_get(4).map_err(g)?;
                let org: String = r.try_get(5).map_err(g)?;
                let (org_seq, prev) = tx.org_link(&org).await?;
                let hash = audit::entry_hash(org_seq, u(at), &actor, &action, &details, &prev);
                tx.exec(
                    sqlx::query(
                        "UPDATE audit_log SET org_seq = $1, org_prev_hash = $2, org_hash = $3 WHERE seq = $4",
                    )
                    .bind(i(org_seq))
                    .bind(prev)
                    .bind(hash.clone())
                    .bind(seq),
                    "chaining the audit log",
                )
                .await?;
                tx.org_heads.insert(org, (org_seq, hash));
            }
            tx.commit().await?;
        }
    }

    /// Applies the embedded migrations up to `version` (tests build older
    /// ledgers with it).
    pub(crate) async fn migrate_to(&self, version: i64) -> Result<()> {
        let m = Migrator::new(Embedded(version))
            .await
            .map_err(|e| Error::CorruptLedger {
                detail: e.to_string(),
            })?;
        m.run(&self.pool).await.map_err(|e| match e {
            sqlx::migrate::MigrateError::Execute(e) => Error::db("updating the ledger schema", e),
            other => Error::CorruptLedger {
                detail: other.to_string(),
            },
        })
    }

    /// Whether some embedded migration has not been applied yet.
    pub async fn needs_migration(&self) -> Result<bool> {
        let latest = MIGRATIONS.last().map_or(0, |m| m.0);
        Ok(self.applied_version().await?.is_none_or(|v| v < latest))
    }

    /// The newest schema version applied, if any.
    async fn applied_version(&self) -> Result<Option<i64>> {
        let row = sqlx::query("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
            .fetch_optional(&self.pool)
            .await;
        let applied: Option<i64> = match row {
            Ok(Some(r)) => r
                .try_get::<Option<i64>, _>(0)
                .map_err(|e| Error::db("reading the ledger schema version", e))?,
            // No migrations table: nothing applied yet.
            Ok(None) | Err(sqlx::Error::Database(_)) => None,
            Err(e) => return Err(Error::db("reading the ledger schema version", e)),
        };
        Ok(applied)
    }

    /// Checks that this is a keyseal ledger (the schema is in place).
    pub async fn check(&self) -> Result<()> {
        let row = sqlx::query("SELECT value FROM meta WHERE name = 'format'")
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| match e {
                sqlx::Error::Database(ref d) if d.message().contains("no such table") => {
                    corrupt("it has no keyseal tables (not a keyseal ledger, or its creation was interrupted)")
                }
                e => Error::db("reading the ledger", e),
            })?;
        match row {
            Some(r) if r.try_get::<String, _>(0).ok().as_deref() == Some("keyseal-ledger/v1") => {
                Ok(())
            }
            _ => Err(corrupt(
                "it is not a keyseal ledger (meta.format is missing)",
            )),
        }
    }

    /// Closes the pool (waits for connections to finish).
    pub async fn close(&self) {
        self.reads.close().await;
        self.pool.close().await;
    }

    /// Starts a write transaction. Writers are serialised by updating the
    /// `meta.writer` row first (a row lock in PostgreSQL, the write lock in SQLite).
    pub async fn begin_write(&self) -> Result<WriteTx> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(|e| Error::db("starting a transaction", e))?;
        sqlx::query("UPDATE meta SET value = value WHERE name = 'writer'")
            .execute(&mut *tx)
            .await
            .map_err(|e| Error::db("locking the ledger for writing", e))?;
        Ok(WriteTx {
            tx,
            head: None,
            pending: Vec::new(),
            org_heads: std::collections::HashMap::new(),
            backend: self.backend,
        })
    }

    async fn fetch_all<'q>(
        &self,
        q: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>,
        doing: &str,
    ) -> Result<Vec<AnyRow>> {
        q.fetch_all(&self.reads)
            .await
            .map_err(|e| Error::db(doing, e))
    }

    // ---- products --------------------------------------------------------

    /// Every product of the organisation, sorted (at most
    /// [`crate::service::MAX_PRODUCTS`]), read page by page.
    pub async fn all_products(&self, org_id: &str) -> Result<Vec<String>> {
        let mut all = Vec::new();
        loop {
            let page = self
                .org_products(
                    org_id,
                    all.last().map(String::as_str),
                    crate::service::MAX_PAGE,
                )
                .await?;
            let full = page.len() as u64 == crate::service::MAX_PAGE;
            all.extend(page.into_iter().map(|p| p.product));
            if !full {
                return Ok(all);
            }
        }
    }

    /// Fails with [`Error::UnknownProduct`] unless the organisation has
    /// registered `product` (naming up to 20 of the products it has).
    pub async fn require_product(&self, org_id: &str, product: &str) -> Result<()> {
        if self.org_product(org_id, product).await?.is_some() {
            return Ok(());
        }
        let known = self.org_products(org_id, None, 20).await?;
        Err(Error::UnknownProduct {
            product: product.to_owned(),
            known: known.into_iter().map(|p| p.product).collect(),
        })
    }

    // ---- keys ------------------------------------------------------------

    /// The default organisation: the first one, which owns the vault's own
    /// keys (what the CLI signs with and the unscoped public endpoints
    /// serve). `None` before any organisation exists.
    pub async fn default_org(&self) -> Result<Option<String>> {
        let row = self
            .fetch_all(
                sqlx::query("SELECT value FROM meta WHERE name = 'default_org'"),
                "reading the default organisation",
            )
            .await?;
        row.first()
            .map(|r| r.try_get::<String, _>(0))
            .transpose()
            .map_err(|e| Error::db("reading the default organisation", e))
    }

    /// Who owns the vault's own keys: the default organisation, or `""`
    /// while none exists (the first one created takes them over).
    pub(crate) async fn default_owner(&self) -> Result<String> {
        Ok(self.default_org().await?.unwrap_or_default())
    }

    /// Every signing key of the default organisation (the vault's), oldest first.
    pub async fn keys(&self) -> Result<Vec<KeyInfo>> {
        self.org_keys(&self.default_owner().await?).await
    }

    /// Every signing key of one organisation, oldest first.
    pub async fn org_keys(&self, org_id: &str) -> Result<Vec<KeyInfo>> {
        let rows = self
            .fetch_all(
                sqlx::query(
                    &format!("SELECT {KEY_COLUMNS} FROM signing_keys WHERE org_id = $1 ORDER BY created_at, key_id"),
                )
                .bind(org_id.to_owned()),
                "reading signing keys",
            )
            .await?;
        rows.iter().map(key_from_row).collect()
    }

    /// A page of the organisation's signing keys (revoked ones included),
    /// oldest first: at most `limit` (capped at
    /// [`crate::service::MAX_PAGE`]) after the key made at `after.0` with
    /// id `after.1`.
    pub async fn org_keys_page(
        &self,
        org_id: &str,
        after: Option<(u64, KeyId)>,
        limit: u64,
    ) -> Result<Vec<KeyInfo>> {
        let (at, id) = after.map_or((-1, String::new()), |(at, id)| (i(at), id.to_string()));
        let rows = self
            .fetch_all(
                sqlx::query(&format!(
                    "SELECT {KEY_COLUMNS} FROM signing_keys WHERE org_id = $1 \
                     AND (created_at > $2 OR (created_at = $2 AND key_id > $3)) \
                     ORDER BY created_at, key_id LIMIT {}",
                    limit.clamp(1, crate::service::MAX_PAGE)
                ))
                .bind(org_id.to_owned())
                .bind(at)
                .bind(id),
                "reading signing keys",
            )
            .await?;
        rows.iter().map(key_from_row).collect()
    }

    /// Fills the columns schemas 17 and 18 added (a license's product and
    /// customer in `org_licenses`, a revocation's organisation) on rows
    /// written before them: once by [`Store::migrate`], and by the service's
    /// refresher for rows an older replica wrote during an upgrade, which
    /// the filters' and lists' indexes would not find otherwise; true if it
    /// found any. Cheap when there are none: two index look-ups, no write.
    pub async fn fill_upgrade_gaps(&self) -> Result<bool> {
        let gaps = self
            .fetch_all(
                sqlx::query(
                    "SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM org_licenses WHERE customer IS NULL LIMIT 1) a) \
                     + (SELECT COUNT(*) FROM (SELECT 1 FROM revocations WHERE org_id IS NULL LIMIT 1) b)",
                ),
                "reading the ledger",
            )
            .await?;
        let found: i64 = gaps
            .first()
            .map(|r| r.try_get(0))
            .transpose()
            .map_err(|e| Error::db("reading the ledger", e))?
            .unwrap_or(0);
        if found == 0 {
            return Ok(false);
        }
        let mut tx = self.begin_write().await?;
        tx.exec(
            sqlx::query(
                "UPDATE org_licenses SET \
                 product = (SELECT l.product FROM licenses l WHERE l.license_id = org_licenses.license_id), \
                 customer = (SELECT l.customer FROM licenses l WHERE l.license_id = org_licenses.license_id) \
                 WHERE customer IS NULL",
            ),
            "filling license filters",
        )
        .await?;
        tx.exec(
            sqlx::query(
                "UPDATE revocations SET org_id = (SELECT k.org_id FROM licenses l \
                 JOIN signing_keys k ON k.key_id = l.key_id WHERE l.license_id = revocations.license_id) \
                 WHERE org_id IS NULL",
            ),
            "filling revocations' organisations",
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The default organisation's active signing key, if any.
    pub async fn active_key(&self) -> Result<Option<KeyInfo>> {
        self.org_active_key(&self.default_owner().await?).await
    }

    /// One organisation's active signing key, if any.
    pub async fn org_active_key(&self, org_id: &str) -> Result<Option<KeyInfo>> {
        Ok(self
            .org_keys(org_id)
            .await?
            .into_iter()
            .find(|k| k.status == KeyStatus::Active))
    }

    /// The sealed copy of key `key_id` the ledger keeps, if it has one.
    pub async fn sealed_key(&self, key_id: KeyId) -> Result<Option<crate::keyfile::KeyFile>> {
        let rows = self
            .fetch_all(
                sqlx::query("SELECT sealed FROM signing_keys WHERE key_id = $1")
                    .bind(key_id.to_string()),
                "reading signing keys",
            )
            .await?;
        let text: Option<String> = rows
            .first()
            .map(|r| r.try_get::<Option<String>, _>(0))
            .transpose()
            .map_err(|e| Error::db("reading signing keys", e))?
            .flatten();
        let label = format!("the ledger's sealed key {key_id}");
        Ok(text
            .map(|t| crate::keyfile::KeyFile::from_json(&t, Path::new(&label)))
            .transpose()?)
    }

    /// Imports the key files in `keys_dir` (a vault's `keys/`) for keys the
    /// ledger records without a sealed copy (written before schema 11):
    /// each file must hold the very public key the ledger names. Files of
    /// keys the ledger does not record, or holds already, are left alone.
    /// Returns how many were imported.
    pub async fn import_key_files(&self, keys_dir: &Path) -> Result<u64> {
        let rows = self
            .fetch_all(
                sqlx::query("SELECT key_id, public_key FROM signing_keys WHERE sealed IS NULL"),
                "reading signing keys",
            )
            .await?;
        let mut imported = 0;
        for r in &rows {
            let g = |e| Error::db("reading signing keys", e);
            let id: String = r.try_get(0).map_err(g)?;
            let public: String = r.try_get(1).map_err(g)?;
            let path = keys_dir.join(format!("{id}.key"));
            if !path.is_file() {
                continue;
            }
            let file = crate::keyfile::KeyFile::read(&path)?;
            if file.key_id() != id || file.public_key(&path)?.to_string() != public {
                return Err(Error::KeyFile(keyseal_keyfile::Error::CorruptKeyFile {
                    path,
                    detail: format!("it does not hold key {id} as the ledger records it"),
                }));
            }
            let mut tx = self.begin_write().await?;
            tx.exec(
                sqlx::query(
                    "UPDATE signing_keys SET sealed = $1 WHERE key_id = $2 AND sealed IS NULL",
                )
                .bind(file.to_json())
                .bind(id),
                "importing a key file into the ledger",
            )
            .await?;
            tx.commit().await?;
            imported += 1;
        }
        Ok(imported)
    }

    /// The organisation owning the key `key_id` (`""` for the vault's keys
    /// before any organisation exists), or `None` for an unknown key.
    pub async fn key_owner(&self, key_id: KeyId) -> Result<Option<String>> {
        let rows = self
            .fetch_all(
                sqlx::query("SELECT org_id FROM signing_keys WHERE key_id = $1")
                    .bind(key_id.to_string()),
                "reading signing keys",
            )
            .await?;
        rows.first()
            .map(|r| r.try_get::<String, _>(0))
            .transpose()
            .map_err(|e| Error::db("reading signing keys", e))
    }

    /// The default organisation's key with this id, or the one key whose id
    /// starts with this prefix (at least 4 hex digits).
    pub async fn find_key(&self, id_or_prefix: &str) -> Result<KeyInfo> {
        self.org_find_key(&self.default_owner().await?, id_or_prefix)
            .await
    }

    /// One organisation's key with this id, or its one key whose id starts
    /// with this prefix (at least 4 hex digits). Another organisation's key
    /// is unknown here.
    pub async fn org_find_key(&self, org_id: &str, id_or_prefix: &str) -> Result<KeyInfo> {
        let want = id_or_prefix.trim().to_ascii_lowercase();
        if want.len() < 4 {
            return Err(Error::invalid(
                "key id",
                format!("`{want}` is too short: give at least 4 hex digits of the key id"),
            ));
        }
        let mut found = self
            .org_keys(org_id)
            .await?
            .into_iter()
            .filter(|k| k.key_id.to_string().starts_with(&want));
        match (found.next(), found.next()) {
            (Some(k), None) => Ok(k),
            (None, _) => Err(Error::UnknownKey(want)),
            (Some(_), Some(_)) => Err(Error::AmbiguousKey(want)),
        }
    }

    // ---- licenses --------------------------------------------------------

    /// One of the organisation's licenses by id (full 32 hex digits);
    /// another organisation's is [`Error::UnknownLicense`].
    pub async fn license(&self, org_id: &str, id: &str) -> Result<LicenseRecord> {
        let lid: LicenseId = id.trim().parse().map_err(|_| {
            Error::invalid(
                "license id",
                format!("`{id}` is not a license id (32 hex digits, as `keyseal issue` prints)"),
            )
        })?;
        let rows = self
            .fetch_all(
                sqlx::query(&format!(
                    "{LICENSE_SELECT} WHERE l.license_id = $1 AND o.org_id = $2"
                ))
                .bind(lid.to_string())
                .bind(org_id.to_owned()),
                "reading a license",
            )
            .await?;
        rows.first()
            .map(license_from_row)
            .transpose()?
            .ok_or_else(|| Error::UnknownLicense(lid.to_string()))
    }

    /// The organisation's licenses matching `filter`.
    pub async fn licenses(
        &self,
        org_id: &str,
        filter: &LicenseFilter,
    ) -> Result<Vec<LicenseRecord>> {
        let mut sql = format!("{LICENSE_SELECT} WHERE o.org_id = $1");
        let mut args: Vec<String> = vec![org_id.to_owned()];
        for (col, v) in [
            ("l.product", &filter.product),
            ("l.customer", &filter.customer),
            ("l.batch_id", &filter.batch_id),
            ("o.external_id", &filter.external_id),
        ] {
            if let Some(v) = v {
                args.push(v.clone());
                sql.push_str(&format!(" AND {col} = ${}", args.len()));
            }
        }
        if filter.batch_id.is_some() {
            sql.push_str(" ORDER BY l.batch_row");
        } else {
            sql.push_str(" ORDER BY l.issued_at DESC, l.customer, l.license_id");
        }
        if let Some(n) = filter.limit {
            sql.push_str(&format!(" LIMIT {n}"));
        }
        let mut q = sqlx::query(&sql);
        for a in args {
            q = q.bind(a);
        }
        let rows = self.fetch_all(q, "reading licenses").await?;
        rows.iter().map(license_from_row).collect()
    }

    /// Number of licenses in the ledger.
    pub async fn license_count(&self) -> Result<u64> {
        let row = sqlx::query("SELECT COUNT(*) FROM licenses")
            .fetch_one(&self.pool)
            .await
            .map_err(|e| Error::db("counting licenses", e))?;
        Ok(u(row
            .try_get::<i64, _>(0)
            .map_err(|e| Error::db("counting licenses", e))?))
    }

    /// The default organisation's revoked license ids and revoked key ids.
    pub async fn revoked(&self) -> Result<Revoked> {
        self.org_revoked(&self.default_owner().await?).await
    }

    /// One organisation's revocations: the revoked licenses signed by its
    /// keys (a license belongs to the keyring that validates it) and its
    /// revoked keys.
    pub async fn org_revoked(&self, org_id: &str) -> Result<Revoked> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(|e| Error::db("reading revocations", e))?;
        read_revoked(&mut conn, self.backend, org_id, None).await
    }

    // ---- key certificates ------------------------------------------------

    /// The certificates of the organisation's keys that are not revoked,
    /// oldest key first.
    pub async fn org_certificates(&self, org_id: &str) -> Result<Vec<(KeyId, Vec<u8>)>> {
        use base64ct::Encoding as _;
        let rows = self
            .fetch_all(
                sqlx::query(
                    "SELECT c.key_id, c.certificate FROM key_certificates c \
                     JOIN signing_keys k ON k.key_id = c.key_id \
                     WHERE c.org_id = $1 AND k.status <> 'revoked' ORDER BY k.valid_from, c.key_id",
                )
                .bind(org_id.to_owned()),
                "reading key certificates",
            )
            .await?;
        rows.iter()
            .map(|r| {
                let g = |e| Error::db("reading key certificates", e);
                let id: String = r.try_get("key_id").map_err(g)?;
                let b64: String = r.try_get("certificate").map_err(g)?;
                Ok((
                    id.parse().map_err(|_| corrupt("bad key id"))?,
                    base64ct::Base64::decode_vec(&b64)
                        .map_err(|_| corrupt("bad key certificate"))?,
                ))
            })
            .collect()
    }

    /// The revocation list file of one of the organisation's lists: the
    /// certificates of its keys that are not revoked (so apps that pin only
    /// an offline root verify the list and learn every key the root
    /// certified, a new one before it signs anything), then the list,
    /// armored. At most [`keyseal_core::keyring::MAX_KEYS`] certificates:
    /// rotations never leave more keys unrevoked than a keyring holds.
    pub async fn org_list_file(&self, org_id: &str, list: &PublishedList) -> Result<String> {
        let mut text = String::new();
        for (_, cert) in self.org_certificates(org_id).await? {
            let _ = keyseal_core::armor::write_block(
                &mut text,
                keyseal_core::armor::KEY_CERTIFICATE,
                &cert,
            );
        }
        let _ = keyseal_core::armor::write_block(
            &mut text,
            keyseal_core::armor::REVOCATION_LIST,
            &list.bytes,
        );
        Ok(text)
    }

    // ---- revocation lists ------------------------------------------------

    /// What identifies the organisation's current list file: the newest
    /// list's sequence and next-update time, and the version of the key
    /// certificates (any certification changes it). Two small reads,
    /// whatever the number of revocations: what a cache of list files
    /// checks before serving one.
    pub async fn org_list_head(&self, org_id: &str) -> Result<Option<ListHead>> {
        let rows = self
            .fetch_all(
                sqlx::query(
                    "SELECT sequence, next_update FROM revocation_lists WHERE org_id = $1 \
                     ORDER BY sequence DESC LIMIT 1",
                )
                .bind(org_id.to_owned()),
                "reading revocation lists",
            )
            .await?;
        let Some(r) = rows.first() else {
            return Ok(None);
        };
        let g = |e| Error::db("reading revocation lists", e);
        let (sequence, next_update) = (
            u(r.try_get("sequence").map_err(g)?),
            u(r.try_get("next_update").map_err(g)?),
        );
        let certificates = self
            .fetch_all(
                sqlx::query("SELECT value FROM meta WHERE name = 'certificates'"),
                "reading key certificates",
            )
            .await?
            .first()
            .map(|r| r.try_get::<String, _>(0))
            .transpose()
            .map_err(|e| Error::db("reading key certificates", e))?
            .unwrap_or_default();
        Ok(Some(ListHead {
            sequence,
            next_update,
            certificates,
        }))
    }

    /// Every organisation's newest list: (organisation, issued at, next
    /// update), for the service's metrics.
    pub async fn newest_lists(&self) -> Result<Vec<(String, u64, u64)>> {
        let rows = self
            .fetch_all(
                sqlx::query(
                    "SELECT l.org_id, l.issued_at, l.next_update FROM revocation_lists l \
                     WHERE l.sequence = (SELECT MAX(m.sequence) FROM revocation_lists m WHERE m.org_id = l.org_id) \
                     ORDER BY l.org_id",
                ),
                "reading revocation lists",
            )
            .await?;
        rows.iter()
            .map(|r| {
                let g = |e| Error::db("reading revocation lists", e);
                Ok((
                    r.try_get("org_id").map_err(g)?,
                    u(r.try_get("issued_at").map_err(g)?),
                    u(r.try_get("next_update").map_err(g)?),
                ))
            })
            .collect()
    }

    /// One organisation's newest published revocation list, if any: one
    /// row read, whatever the number of lists before it.
    pub async fn org_latest_list(&self, org_id: &str) -> Result<Option<PublishedList>> {
        let rows = self
            .fetch_all(
                sqlx::query(&format!("{LISTS_NEWEST_FIRST} LIMIT 1")).bind(org_id.to_owned()),
                "reading revocation lists",
            )
            .await?;
        rows.first().map(list_from_row).transpose()
    }

    /// The default organisation's published revocation lists, newest first.
    pub async fn published_lists(&self) -> Result<Vec<PublishedList>> {
        self.org_published_lists(&self.default_owner().await?).await
    }

    /// One organisation's published revocation lists, newest first.
    pub async fn org_published_lists(&self, org_id: &str) -> Result<Vec<PublishedList>> {
        let rows = self
            .fetch_all(
                sqlx::query(LISTS_NEWEST_FIRST).bind(org_id.to_owned()),
                "reading revocation lists",
            )
            .await?;
        rows.iter().map(list_from_row).collect()
    }

    // ---- audit -----------------------------------------------------------

    /// Audit entries in order; `since` skips entries up to that seq, `limit`
    /// keeps the last `limit` of the rest.
    pub async fn audit_entries(&self) -> Result<Vec<AuditEntry>> {
        let rows = self
            .fetch_all(
                sqlx::query("SELECT seq, at, actor, action, details, prev_hash, hash FROM audit_log ORDER BY seq"),
                "reading the audit log",
            )
            .await?;
        rows.iter()
            .map(|r| {
                let g = |e| Error::db("reading the audit log", e);
                Ok(AuditEntry {
                    seq: u(r.try_get("seq").map_err(g)?),
                    at: u(r.try_get("at").map_err(g)?),
                    actor: r.try_get("actor").map_err(g)?,
                    action: r.try_get("action").map_err(g)?,
                    details: r.try_get("details").map_err(g)?,
                    prev_hash: r.try_get("prev_hash").map_err(g)?,
                    hash: r.try_get("hash").map_err(g)?,
                })
            })
            .collect()
    }

    /// The recorded head of the audit chain (last seq and hash).
    pub async fn audit_head(&self) -> Result<Option<(u64, String)>> {
        let row = sqlx::query("SELECT value FROM meta WHERE name = 'audit_head'")
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| Error::db("reading the audit head", e))?;
        let Some(row) = row else { return Ok(None) };
        let v: String = row
            .try_get(0)
            .map_err(|e| Error::db("reading the audit head", e))?;
        let (seq, hash) = v.split_once(':').ok_or_else(|| corrupt("bad audit head"))?;
        Ok(Some((
            seq.parse().map_err(|_| corrupt("bad audit head"))?,
            hash.to_owned(),
        )))
    }

    /// Walks the audit chain; `Err` names the first broken entry.
    pub async fn verify_audit(&self) -> Result<std::result::Result<u64, audit::ChainBreak>> {
        let entries = self.audit_entries().await?;
        let head = self.audit_head().await?;
        Ok(audit::verify_chain(
            &entries,
            head.as_ref().map(|(s, h)| (*s, h.as_str())),
        ))
    }
}

/// Revoked ids, as verification needs them.
#[derive(Debug, Clone, Default)]
pub struct Revoked {
    /// Revoked licenses.
    pub licenses: BTreeSet<LicenseId>,
    /// Revoked signing keys.
    pub keys: BTreeSet<KeyId>,
}

impl keyseal_core::RevocationCheck for Revoked {
    fn is_license_revoked(&self, id: LicenseId) -> bool {
        self.licenses.contains(&id)
    }

    fn is_key_revoked(&self, id: KeyId) -> bool {
        self.keys.contains(&id)
    }
}

/// A license with its organisation row `o` (filter on `o.org_id`).
const LICENSE_SELECT: &str = "SELECT l.license_id, l.key_id, l.product, l.customer, l.plan, l.issued_at, l.expires_at, \
     l.license_key, l.batch_id, l.batch_row, r.revoked_at, r.reason, o.external_id \
     FROM licenses l JOIN org_licenses o ON o.license_id = l.license_id \
     LEFT JOIN revocations r ON r.license_id = l.license_id";

/// The columns [`key_from_row`] reads.
pub(crate) const KEY_COLUMNS: &str =
    "key_id, public_key, status, created_at, valid_from, valid_until, revoked_at, revoke_reason";

pub(crate) fn key_from_row(r: &AnyRow) -> Result<KeyInfo> {
    let g = |e| Error::db("reading signing keys", e);
    let id: String = r.try_get("key_id").map_err(g)?;
    let pk: String = r.try_get("public_key").map_err(g)?;
    let status: String = r.try_get("status").map_err(g)?;
    Ok(KeyInfo {
        key_id: id.parse().map_err(|_| corrupt("bad key id"))?,
        public_key: pk.parse().map_err(|_| corrupt("bad public key"))?,
        status: KeyStatus::parse(&status)?,
        created_at: u(r.try_get("created_at").map_err(g)?),
        valid_from: u(r.try_get("valid_from").map_err(g)?),
        valid_until: r
            .try_get::<Option<i64>, _>("valid_until")
            .map_err(g)?
            .map(u),
        revoked_at: r.try_get::<Option<i64>, _>("revoked_at").map_err(g)?.map(u),
        revoke_reason: r.try_get("revoke_reason").map_err(g)?,
    })
}

fn license_from_row(r: &AnyRow) -> Result<LicenseRecord> {
    let g = |e| Error::db("reading licenses", e);
    let id: String = r.try_get(0).map_err(g)?;
    let key_id: String = r.try_get(1).map_err(g)?;
    let revoked_at: Option<i64> = r.try_get(10).map_err(g)?;
    let reason: Option<String> = r.try_get(11).map_err(g)?;
    Ok(LicenseRecord {
        license_id: id.parse().map_err(|_| corrupt("bad license id"))?,
        key_id: key_id.parse().map_err(|_| corrupt("bad key id"))?,
        product: r.try_get(2).map_err(g)?,
        customer: r.try_get(3).map_err(g)?,
        plan: r.try_get(4).map_err(g)?,
        issued_at: u(r.try_get(5).map_err(g)?),
        expires_at: r.try_get::<Option<i64>, _>(6).map_err(g)?.map(u),
        license_key: r.try_get(7).map_err(g)?,
        batch_id: r.try_get(8).map_err(g)?,
        batch_row: r.try_get::<Option<i64>, _>(9).map_err(g)?.map(u),
        revoked: revoked_at.map(|t| (u(t), reason.unwrap_or_default())),
        external_id: r.try_get(12).map_err(g)?,
    })
}

/// An organisation's lists, newest first (bind the organisation as `$1`).
pub(crate) const LISTS_NEWEST_FIRST: &str = "SELECT sequence, issued_at, next_update, signer, license_count, key_count, list_b64 \
     FROM revocation_lists WHERE org_id = $1 ORDER BY sequence DESC";

/// The organisation's revoked licenses and keys, read on `conn` (inside a
/// write transaction: after its lock, so no revocation committed before
/// is missed). With `listed_at`, licenses whose `listed_until` has passed
/// by then are left out (a list need not carry them).
///
/// The license ids come as one text, joined by the database (a list of
/// 100,000 read row by row spent most of its publishing time in the
/// driver, a wake-up and a row conversion per id), from the organisation's
/// range of `revocations_by_org` (schema 18; before, a join of every
/// revoked license to its license and key took most of the rest).
async fn read_revoked(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    org_id: &str,
    listed_at: Option<u64>,
) -> Result<Revoked> {
    let doing = "reading revocations";
    let joined = match backend {
        Backend::Sqlite => "group_concat(r.license_id, ',')",
        Backend::Postgres => "string_agg(r.license_id, ',')",
    };
    // Rows with no organisation (written by a replica still on schema 17
    // or older, during an upgrade) are found through their key, as before:
    // a revocation must never miss a list.
    let row = sqlx::query(&format!(
        "SELECT COALESCE({joined}, '') FROM (\
         SELECT r.license_id FROM revocations r WHERE r.org_id = $1 \
         AND (r.listed_until IS NULL OR r.listed_until >= $2) \
         UNION ALL SELECT r.license_id FROM revocations r \
         JOIN licenses l ON l.license_id = r.license_id \
         JOIN signing_keys k ON k.key_id = l.key_id \
         WHERE r.org_id IS NULL AND k.org_id = $1 \
         AND (r.listed_until IS NULL OR r.listed_until >= $2)) AS r"
    ))
    .bind(org_id.to_owned())
    .bind(listed_at.map_or(0, i))
    .fetch_one(&mut *conn)
    .await
    .map_err(|e| Error::db(doing, e))?;
    let ids: String = row.try_get(0).map_err(|e| Error::db(doing, e))?;
    let licenses = ids
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse()
                .map_err(|_| corrupt("bad license id in revocations"))
        })
        .collect::<Result<BTreeSet<_>>>()?;
    let rows =
        sqlx::query("SELECT key_id FROM signing_keys WHERE org_id = $1 AND status = 'revoked'")
            .bind(org_id.to_owned())
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| Error::db(doing, e))?;
    let mut keys = BTreeSet::new();
    for r in &rows {
        let s: String = r.try_get(0).map_err(|e| Error::db(doing, e))?;
        keys.insert(s.parse().map_err(|_| corrupt("bad key id"))?);
    }
    Ok(Revoked { licenses, keys })
}

pub(crate) fn list_from_row(r: &AnyRow) -> Result<PublishedList> {
    use base64ct::{Base64, Encoding};
    let g = |e| Error::db("reading revocation lists", e);
    let signer: String = r.try_get("signer").map_err(g)?;
    let b64: String = r.try_get("list_b64").map_err(g)?;
    Ok(PublishedList {
        sequence: u(r.try_get("sequence").map_err(g)?),
        issued_at: u(r.try_get("issued_at").map_err(g)?),
        next_update: u(r.try_get("next_update").map_err(g)?),
        signer: signer.parse().map_err(|_| corrupt("bad signer id"))?,
        license_count: u(r.try_get("license_count").map_err(g)?),
        key_count: u(r.try_get("key_count").map_err(g)?),
        bytes: Base64::decode_vec(&b64).map_err(|_| corrupt("bad revocation list encoding"))?,
    })
}

/// Audit rows per statement (12 parameters each: within SQLite's limit).
const AUDIT_ROWS: usize = 500;

/// An audit entry chained in a transaction, written at its commit.
struct PendingEntry {
    seq: u64,
    at: u64,
    actor: String,
    action: String,
    details: String,
    prev_hash: String,
    hash: String,
    org_id: Option<String>,
    subject: Option<String>,
    org_seq: Option<i64>,
    org_prev_hash: Option<String>,
    org_hash: Option<String>,
}

/// A license's rows (in `licenses` and `org_licenses`), ready to insert.
pub(crate) struct NewLicense<'a> {
    pub org_id: &'a str,
    pub max_devices: u64,
    pub external_id: Option<&'a str>,
    /// The metadata as JSON (`None` for none).
    pub metadata: Option<String>,
    pub license_id: LicenseId,
    pub key_id: KeyId,
    pub product: &'a str,
    pub customer: &'a str,
    pub plan: &'a str,
    pub issued_at: u64,
    pub expires_at: Option<u64>,
    pub license_key: &'a str,
    pub batch_id: Option<&'a str>,
    pub batch_row: Option<u64>,
}

impl WriteTx {
    fn db(&mut self) -> &mut sqlx::AnyConnection {
        &mut self.tx
    }

    /// [`Error::AlreadyRevoked`] if `license_id` is revoked, read after
    /// this transaction's lock (so a revocation cannot slip in between the
    /// check and the caller's write).
    pub(crate) async fn require_not_revoked(&mut self, license_id: LicenseId) -> Result<()> {
        let rows = self
            .fetch(
                sqlx::query("SELECT revoked_at FROM revocations WHERE license_id = $1")
                    .bind(license_id.to_string()),
                "reading revocations",
            )
            .await?;
        match rows.first() {
            None => Ok(()),
            Some(r) => Err(Error::AlreadyRevoked {
                license_id,
                revoked_at: u(r
                    .try_get("revoked_at")
                    .map_err(|e| Error::db("reading revocations", e))?),
            }),
        }
    }

    /// The organisation's revoked licenses and keys, read after this
    /// transaction's lock: every revocation committed before is in it.
    /// `listed_at`: only the licenses that must still be listed then
    /// (see `revocations.listed_until`); `None`: every revoked license.
    pub(crate) async fn org_revoked(
        &mut self,
        org_id: &str,
        listed_at: Option<u64>,
    ) -> Result<Revoked> {
        let backend = self.backend;
        read_revoked(self.db(), backend, org_id, listed_at).await
    }

    /// Refuses unless `key_id` is `org_id`'s active signing key
    /// ([`Error::StaleSigner`] if another is, [`Error::NoActiveKey`] if
    /// none is), read inside this transaction (so a rotation
    /// cannot slip between the check and the write).
    pub(crate) async fn require_active_key(&mut self, org_id: &str, key_id: KeyId) -> Result<()> {
        let rows = self
            .fetch(
                sqlx::query(
                    "SELECT key_id FROM signing_keys WHERE status = 'active' AND org_id = $1",
                )
                .bind(org_id.to_owned()),
                "reading signing keys",
            )
            .await?;
        let active: Option<String> = rows
            .first()
            .map(|r| r.try_get(0))
            .transpose()
            .map_err(|e| Error::db("reading signing keys", e))?;
        match active {
            Some(a) if a == key_id.to_string() => Ok(()),
            Some(_) => Err(Error::StaleSigner { key_id }),
            None => Err(Error::NoActiveKey),
        }
    }

    /// Runs a statement.
    pub(crate) async fn exec<'q>(
        &mut self,
        q: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>,
        doing: &str,
    ) -> Result<u64> {
        q.execute(self.db())
            .await
            .map(|r| r.rows_affected())
            .map_err(|e| Error::db(doing, e))
    }

    /// Runs a query.
    pub(crate) async fn fetch<'q>(
        &mut self,
        q: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>,
        doing: &str,
    ) -> Result<Vec<AnyRow>> {
        q.fetch_all(self.db())
            .await
            .map_err(|e| Error::db(doing, e))
    }

    /// The organisation's revocation revision: how many revocations (of
    /// licenses and keys) it has recorded; each list records the revision
    /// it was built from.
    pub(crate) async fn revision(&mut self, org_id: &str) -> Result<u64> {
        let rows = self
            .fetch(
                sqlx::query("SELECT value FROM meta WHERE name = $1")
                    .bind(format!("revision {org_id}")),
                "reading the revocation revision",
            )
            .await?;
        match rows.first() {
            None => Ok(0),
            Some(r) => {
                let v: String = r
                    .try_get(0)
                    .map_err(|e| Error::db("reading the revocation revision", e))?;
                v.parse().map_err(|_| corrupt("bad revocation revision"))
            }
        }
    }

    /// Records one more revocation of the organisation (see
    /// [`WriteTx::revision`]).
    pub(crate) async fn bump_revision(&mut self, org_id: &str) -> Result<()> {
        let next = self.revision(org_id).await? + 1;
        self.set_meta(&format!("revision {org_id}"), &next.to_string())
            .await
    }

    /// Sets a meta value.
    pub(crate) async fn set_meta(&mut self, name: &str, value: &str) -> Result<()> {
        self.exec(
            sqlx::query("DELETE FROM meta WHERE name = $1").bind(name.to_owned()),
            "writing settings",
        )
        .await?;
        self.exec(
            sqlx::query("INSERT INTO meta (name, value) VALUES ($1, $2)")
                .bind(name.to_owned())
                .bind(value.to_owned()),
            "writing settings",
        )
        .await?;
        Ok(())
    }

    /// The license already minted in `org_id` with `external_id`, if any
    /// (read under this transaction's lock).
    pub(crate) async fn external_id_owner(
        &mut self,
        org_id: &str,
        external_id: &str,
    ) -> Result<Option<String>> {
        let rows = self
            .fetch(
                sqlx::query(
                    "SELECT license_id FROM org_licenses WHERE org_id = $1 AND external_id = $2",
                )
                .bind(org_id.to_owned())
                .bind(external_id.to_owned()),
                "reading external ids",
            )
            .await?;
        rows.first()
            .map(|r| r.try_get::<String, _>(0))
            .transpose()
            .map_err(|e| Error::db("reading external ids", e))
    }

    /// Of `external_ids`, those already minted in `org_id`, each with its
    /// license (read under this transaction's lock, many per statement).
    pub(crate) async fn external_id_owners(
        &mut self,
        org_id: &str,
        external_ids: &[&str],
    ) -> Result<std::collections::HashMap<String, String>> {
        let mut found = std::collections::HashMap::new();
        for chunk in external_ids.chunks(INSERT_ROWS) {
            let params: Vec<String> = (0..chunk.len()).map(|n| format!("${}", n + 2)).collect();
            let sql = format!(
                "SELECT external_id, license_id FROM org_licenses WHERE org_id = $1 AND external_id IN ({})",
                params.join(",")
            );
            let mut q = sqlx::query(&sql).bind(org_id.to_owned());
            for x in chunk {
                q = q.bind((*x).to_owned());
            }
            for r in self.fetch(q, "reading external ids").await? {
                let g = |e| Error::db("reading external ids", e);
                found.insert(r.try_get(0).map_err(g)?, r.try_get(1).map_err(g)?);
            }
        }
        Ok(found)
    }

    /// Inserts licenses, many rows per statement.
    pub(crate) async fn insert_licenses(&mut self, rows: &[NewLicense<'_>]) -> Result<()> {
        for chunk in rows.chunks(INSERT_ROWS) {
            let mut sql = String::with_capacity(120 + chunk.len() * 60);
            sql.push_str(
                "INSERT INTO licenses (license_id, key_id, product, customer, plan, issued_at, expires_at, license_key, batch_id, batch_row) VALUES ",
            );
            for n in 0..chunk.len() {
                if n > 0 {
                    sql.push(',');
                }
                if self.backend == Backend::Sqlite {
                    // Anonymous parameters: sqlx looks each named one up by
                    // a linear scan, which is quadratic for big statements.
                    sql.push_str("(?,?,?,?,?,?,?,?,?,?)");
                } else {
                    let b = n * 10;
                    sql.push_str(&format!(
                        "(${},${},${},${},${},${},${},${},${},${})",
                        b + 1,
                        b + 2,
                        b + 3,
                        b + 4,
                        b + 5,
                        b + 6,
                        b + 7,
                        b + 8,
                        b + 9,
                        b + 10
                    ));
                }
            }
            let mut q = sqlx::query(&sql);
            for r in chunk {
                q = q
                    .bind(r.license_id.to_string())
                    .bind(r.key_id.to_string())
                    .bind(r.product.to_owned())
                    .bind(r.customer.to_owned())
                    .bind(r.plan.to_owned())
                    .bind(i(r.issued_at))
                    .bind(r.expires_at.map(i))
                    .bind(r.license_key.to_owned())
                    .bind(r.batch_id.map(str::to_owned))
                    .bind(r.batch_row.map(i));
            }
            q.execute(self.db())
                .await
                .map_err(|e| Error::db("recording licenses in the ledger", e))?;
            let mut sql = String::with_capacity(100 + chunk.len() * 24);
            sql.push_str(
                "INSERT INTO org_licenses (license_id, org_id, max_devices, external_id, metadata, \
                 product, customer) VALUES ",
            );
            for n in 0..chunk.len() {
                if n > 0 {
                    sql.push(',');
                }
                if self.backend == Backend::Sqlite {
                    sql.push_str("(?,?,?,?,?,?,?)");
                } else {
                    let b = n * 7;
                    sql.push_str(&format!(
                        "(${},${},${},${},${},${},${})",
                        b + 1,
                        b + 2,
                        b + 3,
                        b + 4,
                        b + 5,
                        b + 6,
                        b + 7
                    ));
                }
            }
            let mut q = sqlx::query(&sql);
            for r in chunk {
                q = q
                    .bind(r.license_id.to_string())
                    .bind(r.org_id.to_owned())
                    .bind(i(r.max_devices))
                    .bind(r.external_id.map(str::to_owned))
                    .bind(r.metadata.clone())
                    .bind(r.product.to_owned())
                    .bind(r.customer.to_owned());
            }
            q.execute(self.db())
                .await
                .map_err(|e| Error::db("recording the licenses' organisation", e))?;
        }
        Ok(())
    }

    /// The next place in `org`'s audit chain: its org_seq and the hash
    /// before it. The caller records the new head in `org_heads`.
    pub(crate) async fn org_link(&mut self, org: &str) -> Result<(u64, String)> {
        if let Some((seq, hash)) = self.org_heads.get(org) {
            return Ok((seq + 1, hash.clone()));
        }
        let rows = self
            .fetch(
                sqlx::query(
                    "SELECT org_seq, org_hash FROM audit_log WHERE org_id = $1 AND org_seq IS NOT NULL \
                     ORDER BY org_seq DESC LIMIT 1",
                )
                .bind(org.to_owned()),
                "reading the audit log",
            )
            .await?;
        let g = |e| Error::db("reading the audit log", e);
        Ok(match rows.first() {
            Some(r) => (
                u(r.try_get(0).map_err(g)?) + 1,
                r.try_get::<String, _>(1).map_err(g)?,
            ),
            None => (1, GENESIS.to_owned()),
        })
    }

    /// The organisation chain's columns of a new entry (and its new head
    /// noted), or `None`s when it belongs to no organisation.
    pub(crate) async fn org_chain(
        &mut self,
        org: Option<&str>,
        at: u64,
        actor: &str,
        action: &str,
        details: &str,
    ) -> Result<(Option<i64>, Option<String>, Option<String>)> {
        let Some(org) = org else {
            return Ok((None, None, None));
        };
        let (org_seq, prev) = self.org_link(org).await?;
        let hash = audit::entry_hash(org_seq, at, actor, action, details, &prev);
        self.org_heads
            .insert(org.to_owned(), (org_seq, hash.clone()));
        Ok((Some(i(org_seq)), Some(prev), Some(hash)))
    }

    /// Appends an audit entry in this transaction: the one writer of the
    /// audit log. The entry is chained to the ledger's and its
    /// organisation's heads now and written at [`WriteTx::commit`].
    pub(crate) async fn audit(
        &mut self,
        ctx: &Context,
        action: &str,
        details: &serde_json::Value,
    ) -> Result<u64> {
        let (last_seq, prev) = match self.head.take() {
            Some(h) => h,
            None => {
                let rows = self
                    .fetch(
                        sqlx::query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1"),
                        "reading the audit log",
                    )
                    .await?;
                match rows.first() {
                    Some(r) => (
                        u(r.try_get(0)
                            .map_err(|e| Error::db("reading the audit log", e))?),
                        r.try_get::<String, _>(1)
                            .map_err(|e| Error::db("reading the audit log", e))?,
                    ),
                    None => (0, GENESIS.to_owned()),
                }
            }
        };
        let seq = last_seq + 1;
        let (org_id, mut subject) = audit::refs(&ctx.actor, details);
        if subject.is_none()
            && let Some(license) = details.get("license_id").and_then(|v| v.as_str())
        {
            let rows = self
                .fetch(
                    sqlx::query("SELECT customer FROM licenses WHERE license_id = $1")
                        .bind(license.to_owned()),
                    "reading licenses",
                )
                .await?;
            subject = rows
                .first()
                .map(|r| r.try_get::<String, _>(0))
                .transpose()
                .map_err(|e| Error::db("reading licenses", e))?;
        }
        let details = details.to_string();
        let hash = audit::entry_hash(seq, ctx.now, &ctx.actor, action, &details, &prev);
        let (org_seq, org_prev, org_hash) = self
            .org_chain(org_id.as_deref(), ctx.now, &ctx.actor, action, &details)
            .await?;
        self.pending.push(PendingEntry {
            seq,
            at: ctx.now,
            actor: ctx.actor.clone(),
            action: action.to_owned(),
            details,
            prev_hash: prev,
            hash: hash.clone(),
            org_id,
            subject,
            org_seq,
            org_prev_hash: org_prev,
            org_hash,
        });
        self.head = Some((seq, hash));
        Ok(seq)
    }

    /// Writes the pending audit entries (many per statement) and the
    /// ledger's chain head.
    async fn flush_audit(&mut self) -> Result<()> {
        const COLUMNS: usize = 12;
        let pending = std::mem::take(&mut self.pending);
        for chunk in pending.chunks(AUDIT_ROWS) {
            let mut sql = String::from(
                "INSERT INTO audit_log (seq, at, actor, action, details, prev_hash, hash, org_id, subject, \
                 org_seq, org_prev_hash, org_hash) VALUES ",
            );
            for n in 0..chunk.len() {
                if n > 0 {
                    sql.push(',');
                }
                if self.backend == Backend::Sqlite {
                    sql.push_str("(?,?,?,?,?,?,?,?,?,?,?,?)");
                } else {
                    let params: Vec<String> = (1..=COLUMNS)
                        .map(|c| format!("${}", n * COLUMNS + c))
                        .collect();
                    sql.push_str(&format!("({})", params.join(",")));
                }
            }
            let mut q = sqlx::query(&sql);
            for e in chunk {
                q = q
                    .bind(i(e.seq))
                    .bind(i(e.at))
                    .bind(e.actor.clone())
                    .bind(e.action.clone())
                    .bind(e.details.clone())
                    .bind(e.prev_hash.clone())
                    .bind(e.hash.clone())
                    .bind(e.org_id.clone())
                    .bind(e.subject.clone())
                    .bind(e.org_seq)
                    .bind(e.org_prev_hash.clone())
                    .bind(e.org_hash.clone());
            }
            self.exec(q, "writing the audit log").await?;
        }
        if let Some(last) = pending.last() {
            self.set_meta("audit_head", &format!("{}:{}", last.seq, last.hash))
                .await?;
        }
        Ok(())
    }

    /// Writes the transaction's audit entries, then commits.
    pub async fn commit(mut self) -> Result<()> {
        self.flush_audit().await?;
        // Within a request that claimed an idempotency key, its claim notes
        // that an effect committed, atomically with it.
        if let Some(c) = crate::idempotency::current_claim() {
            sqlx::query(
                "UPDATE idempotency_keys SET effect = 1 \
                 WHERE org_id = $1 AND idem_key = $2 AND status IS NULL",
            )
            .bind(c.org_id)
            .bind(c.key)
            .execute(&mut *self.tx)
            .await
            .map_err(|e| Error::db("noting the idempotent request's effect", e))?;
        }
        self.tx
            .commit()
            .await
            .map_err(|e| Error::db("committing to the ledger", e))
    }
}

/// Ensures a SQLite connection can be opened (used by `Vault::open` to turn
/// "file is not a database" into a clear error before anything else runs).
pub(crate) async fn ping(store: &Store) -> Result<()> {
    let mut c = store
        .pool
        .acquire()
        .await
        .map_err(|e| Error::db("opening the ledger", e))?;
    c.ping()
        .await
        .map_err(|e| Error::db("opening the ledger", e))
}

#[cfg(test)]
mod tests;
