//! Connections, pragmas, checkpoints and migrations, and the write
//! transaction's own steps (one writer at a time).

use serde_json::json;

use super::keys::insert_key;
use super::*;
use crate::error::LedgerError;
use crate::keyfile::KeyFile;
use crate::request::check_product;

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

    pub(crate) async fn connect_url(url: &str, max: u32) -> Result<Store> {
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
            key_orgs: Arc::default(),
        })
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

    pub(crate) fn read_pool(&self) -> &AnyPool {
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
    pub(crate) async fn fold_into_orgs(&self) -> Result<()> {
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
    pub(crate) async fn fill_audit_subjects(&self) -> Result<()> {
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
    pub(crate) async fn fill_org_chains(&self) -> Result<()> {
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
                let seq: i64 = r.try_get("seq").map_err(g)?;
                let at: i64 = r.try_get("at").map_err(g)?;
                let actor: String = r.try_get("actor").map_err(g)?;
                let action: String = r.try_get("action").map_err(g)?;
                let details: String = r.try_get("details").map_err(g)?;
                let org: String = r.try_get("org_id").map_err(g)?;
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
        let m = Migrator::new(Embedded(version)).await.map_err(|e| {
            Error::Ledger(LedgerError::Corrupt {
                detail: e.to_string(),
            })
        })?;
        m.run(&self.pool).await.map_err(|e| match e {
            sqlx::migrate::MigrateError::Execute(e) => Error::db("updating the ledger schema", e),
            other => Error::Ledger(LedgerError::Corrupt {
                detail: other.to_string(),
            }),
        })
    }

    /// Whether some embedded migration has not been applied yet.
    pub async fn needs_migration(&self) -> Result<bool> {
        let latest = MIGRATIONS.last().map_or(0, |m| m.0);
        Ok(self.applied_version().await?.is_none_or(|v| v < latest))
    }

    /// The newest schema version applied, if any.
    pub(crate) async fn applied_version(&self) -> Result<Option<i64>> {
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

    pub(crate) async fn fetch_all<'q>(
        &self,
        q: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>,
        doing: &str,
    ) -> Result<Vec<AnyRow>> {
        q.fetch_all(&self.reads)
            .await
            .map_err(|e| Error::db(doing, e))
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

    /// Sets up a new, empty ledger (after [`Store::migrate`]): its first
    /// active signing key and products. `details` (for example the vault's
    /// key-derivation parameters) joins the `vault.init` audit entry.
    pub async fn initialize(
        &self,
        key: &KeyFile,
        products: &[String],
        details: serde_json::Value,
        ctx: &Context,
    ) -> Result<()> {
        let mut products = products.to_vec();
        for p in &products {
            check_product(p)?;
        }
        products.sort();
        products.dedup();
        let mut tx = self.begin_write().await?;
        let existing = tx
            .fetch(
                sqlx::query("SELECT value FROM meta WHERE name = 'format'"),
                "reading the ledger",
            )
            .await?;
        if !existing.is_empty() {
            return Err(Error::invalid("ledger", "is already initialized"));
        }
        tx.set_meta("format", "keyseal-ledger/v1").await?;
        tx.set_meta("created_at", &ctx.now.to_string()).await?;
        // A ledger migrated from before schema 10 may have one already.
        let org_id = match tx
            .fetch(
                sqlx::query("SELECT value FROM meta WHERE name = 'default_org'"),
                "reading the default organisation",
            )
            .await?
            .first()
        {
            Some(r) => sqlx::Row::try_get::<String, _>(r, 0)
                .map_err(|e| Error::db("reading the default organisation", e))?,
            None => tx.insert_default_org(ctx).await?,
        };
        insert_key(&mut tx, &org_id, key, ctx.now).await?;
        for p in &products {
            tx.exec(
                sqlx::query(
                    "INSERT INTO org_products (org_id, product, name, created_at) VALUES ($1, $2, $3, $4)",
                )
                .bind(org_id.clone())
                .bind(p.clone())
                .bind(p.clone())
                .bind(i(ctx.now)),
                "registering products",
            )
            .await?;
        }
        let mut d =
            json!({ "org_id": org_id, "key_id": key.key_id().to_string(), "products": products });
        if let (Some(d), serde_json::Value::Object(extra)) = (d.as_object_mut(), details) {
            d.extend(extra);
        }
        tx.audit(ctx, "vault.init", &d).await?;
        tx.commit().await
    }
}

impl WriteTx {
    pub(crate) fn db(&mut self) -> &mut sqlx::AnyConnection {
        &mut self.tx
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

    /// Writes the transaction's audit entries, then commits.
    pub async fn commit(mut self) -> Result<()> {
        self.queue_webhooks().await?;
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

/// The embedded migrations, in order.
pub(super) const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "ledger",
        include_str!("../../migrations/0001_ledger.sql"),
    ),
    // The issuing service's tenants, tokens, customers and activations (see `service`).
    (
        2,
        "service",
        include_str!("../../migrations/0002_service.sql"),
    ),
    // The device-bound key of each activation (see `activation`).
    (
        3,
        "device_keys",
        include_str!("../../migrations/0003_device_keys.sql"),
    ),
    // Revocable API tokens (see `service`).
    (
        4,
        "token_revocation",
        include_str!("../../migrations/0004_token_revocation.sql"),
    ),
    // Signing keys and revocation lists per organisation (see `service`).
    (
        5,
        "org_keys",
        include_str!("../../migrations/0005_org_keys.sql"),
    ),
    // At most one active signing key per organisation (see `ops`).
    (
        6,
        "one_active_key",
        include_str!("../../migrations/0006_one_active_key.sql"),
    ),
    // Idempotency keys of the service's POST requests (see `idempotency`).
    (
        7,
        "idempotency",
        include_str!("../../migrations/0007_idempotency.sql"),
    ),
    // Indexes for a customer's and a product's licenses (see `service`).
    (
        8,
        "license_filters",
        include_str!("../../migrations/0008_license_filters.sql"),
    ),
    // Sealed personal data; the audit log by organisation and customer
    // (see `privacy`, `Store::fill_audit_subjects`).
    (
        9,
        "personal_data",
        include_str!("../../migrations/0009_personal_data.sql"),
    ),
    // One data model: the command line's products and licenses belong to
    // the default organisation (see `Store::fold_into_orgs`).
    (
        10,
        "one_model",
        include_str!("../../migrations/0010_one_model.sql"),
    ),
    // Sealed signing keys in the ledger (see `Store::sealed_key`).
    (
        11,
        "sealed_keys",
        include_str!("../../migrations/0011_sealed_keys.sql"),
    ),
    // External ids of licenses (see `request::RequestFields::external_id`).
    (
        12,
        "external_ids",
        include_str!("../../migrations/0012_external_ids.sql"),
    ),
    // License metadata (see `service::OrgLicense::metadata`).
    (
        13,
        "license_metadata",
        include_str!("../../migrations/0013_license_metadata.sql"),
    ),
    // Key certificates by an offline root (see `Store::org_certify_key`).
    (
        14,
        "key_certificates",
        include_str!("../../migrations/0014_key_certificates.sql"),
    ),
    // Expired revoked licenses drop off the lists (see `ops::REVOKED_LISTED_AFTER_EXPIRY`).
    (
        15,
        "revocation_pruning",
        include_str!("../../migrations/0015_revocation_pruning.sql"),
    ),
    // The revision each list was built from (see `ops::Publish::IfChanged`).
    (
        16,
        "list_revision",
        include_str!("../../migrations/0016_list_revision.sql"),
    ),
    // An organisation's licenses by customer and by product, from an index
    // that starts with the organisation (see `service::org_licenses_query`).
    (
        17,
        "org_license_filters",
        include_str!("../../migrations/0017_org_license_filters.sql"),
    ),
    // Revocations by organisation (see `read_revoked`).
    (
        18,
        "revocations_by_org",
        include_str!("../../migrations/0018_revocations_by_org.sql"),
    ),
    // A claimed idempotency key notes its request's committed effect (see
    // `idempotency::Claim::Unanswered`).
    (
        19,
        "idempotency_effects",
        include_str!("../../migrations/0019_idempotency_effects.sql"),
    ),
    // Seats held by leases, and the products' lease policies.
    (20, "seats", include_str!("../../migrations/0020_seats.sql")),
    // Seats of licenses allotted to on-premises relays (see `allotments`).
    (
        21,
        "allotments",
        include_str!("../../migrations/0021_allotments.sql"),
    ),
    // Products' trial policies, and each trial's device as keyed hashes
    // (see `trials`).
    (
        22,
        "trials",
        include_str!("../../migrations/0022_trials.sql"),
    ),
    // Relays renew their allotments online (see `allotments::renewal_message`).
    (
        23,
        "allotment_renewals",
        include_str!("../../migrations/0023_allotment_renewals.sql"),
    ),
    // Outgoing webhooks: endpoints, the outbox of events, deliveries and
    // their attempts (see `webhooks`).
    (
        24,
        "webhooks",
        include_str!("../../migrations/0024_webhooks.sql"),
    ),
    // Payment events in: the Stripe secret, price mappings, customers,
    // links and events acted on (see `payments`).
    (
        25,
        "payments",
        include_str!("../../migrations/0025_payments.sql"),
    ),
    // License keys by email: SMTP settings and the outbox (see `email`).
    (26, "email", include_str!("../../migrations/0026_email.sql")),
];

/// The schema before which [`Store::fold_into_orgs`] runs.
pub(super) const BEFORE_ONE_MODEL: i64 = 9;

/// The embedded migrations up to this version.
#[derive(Debug)]
pub(super) struct Embedded(i64);

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

/// Read connections of a SQLite ledger, beside the one that writes.
pub(super) const READ_CONNECTIONS: u32 = 4;

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

pub(super) async fn wal_checkpoint(
    conn: &mut sqlx::AnyConnection,
    sql: &str,
) -> Result<WalProgress> {
    let g = |e| Error::db("checkpointing the ledger", e);
    let row = sqlx::query(sql).fetch_one(conn).await.map_err(g)?;
    let busy: i64 = row.try_get("busy").map_err(g)?;
    let log: i64 = row.try_get("log").map_err(g)?;
    let done: i64 = row.try_get("checkpointed").map_err(g)?;
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
