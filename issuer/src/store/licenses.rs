//! Licenses (`licenses`, `org_licenses`): minting one or a batch, the
//! group commit of the service's mints, reads, suspension.

use keyseal_core::license;
use serde_json::json;

use super::*;
use crate::error::{KeyError, LedgerError, RequestError};
use crate::ops::{
    BatchOptions, BatchOutcome, Issued, SkippedRow, license_ids, read_and_sign, sign_request,
};
use crate::request::{LicenseRequest, RequestFields};
use crate::service::{MAX_PAGE, OrgLicense, OrgLicenseFilter, SignedMint};
use crate::vault::Signer;

impl Store {
    /// One of the organisation's licenses by id (full 32 hex digits);
    /// another organisation's is [`RequestError::UnknownLicense`].
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
            .ok_or_else(|| Error::Request(RequestError::UnknownLicense(lid.to_string())))
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

    /// Records mints signed with [`crate::service::sign_mint`] (possibly for several
    /// organisations) in one transaction: group commit for a service under
    /// load. Inside the transaction each is checked on its own (its product
    /// and customer exist in its organisation, and the key that signed it is
    /// still the active key: otherwise [`Signed::KeyRotated`], and the
    /// caller signs again, or [`KeyError::NoActiveKey`]); the good ones commit
    /// together. A result is `Ok` only after the commit. If the shared
    /// transaction fails, each is retried alone.
    pub async fn org_record_mints(&self, mints: &[SignedMint]) -> Vec<Result<Signed<()>>> {
        let all: Vec<&SignedMint> = mints.iter().collect();
        match self.record_group(&all).await {
            Ok(results) => results,
            Err(e) if mints.len() == 1 => vec![Err(e)],
            Err(_) => {
                let mut out = Vec::with_capacity(mints.len());
                for m in mints {
                    out.push(match self.record_group(&[m]).await {
                        Ok(mut r) => r.pop().unwrap_or(Err(Error::Key(KeyError::NoActiveKey))),
                        Err(e) => Err(e),
                    });
                }
                out
            }
        }
    }

    /// One transaction for a group: checks, inserts and commits; the
    /// per-mint verdicts, or the error that rolled the whole group back.
    pub(crate) async fn record_group(
        &self,
        mints: &[&SignedMint],
    ) -> Result<Vec<Result<Signed<()>>>> {
        use std::collections::HashMap;
        let mut tx = self.begin_write().await?;
        // Each organisation's active key: a mint signed by anything else
        // (a key rotated since, or another organisation's) is refused.
        let rows = tx
            .fetch(
                sqlx::query("SELECT org_id, key_id FROM signing_keys WHERE status = 'active'"),
                "reading signing keys",
            )
            .await?;
        let mut active: HashMap<String, String> = HashMap::with_capacity(rows.len());
        for r in &rows {
            let g = db_err("reading signing keys");
            active.insert(
                r.try_get("org_id").map_err(&g)?,
                r.try_get("key_id").map_err(&g)?,
            );
        }
        let mut products: HashMap<(&str, &str), bool> = HashMap::new();
        let mut customers: HashMap<(&str, &str), bool> = HashMap::new();
        // External ids minted earlier in this group.
        let mut in_group: HashMap<(&str, &str), String> = HashMap::new();
        let mut verdicts: Vec<Result<Signed<()>>> = Vec::with_capacity(mints.len());
        let mut ready: Vec<&SignedMint> = Vec::with_capacity(mints.len());
        for m in mints {
            let org = m.job.org_id.as_str();
            let rec = &m.license.record;
            match active.get(org) {
                Some(k) if *k == rec.key_id.to_string() => {}
                Some(_) => {
                    verdicts.push(Ok(Signed::KeyRotated { key_id: rec.key_id }));
                    continue;
                }
                None => {
                    verdicts.push(Err(Error::Key(KeyError::NoActiveKey)));
                    continue;
                }
            }
            let has_product = exists_once(
                &mut tx,
                &mut products,
                (org, rec.product.as_str()),
                "SELECT 1 FROM org_products WHERE org_id = $1 AND product = $2",
                "reading products",
            )
            .await?;
            if !has_product {
                // No list of the known products here: it would be work the
                // size of the tenant inside the shared commit (the API
                // points to GET /v1/products instead).
                verdicts.push(Err(Error::Request(RequestError::UnknownProduct {
                    product: rec.product.clone(),
                    known: Vec::new(),
                })));
                continue;
            }
            let has_customer = exists_once(
                &mut tx,
                &mut customers,
                (org, rec.customer.as_str()),
                "SELECT 1 FROM customers WHERE org_id = $1 AND customer_id = $2",
                "reading customers",
            )
            .await?;
            if !has_customer {
                verdicts.push(Err(Error::invalid(
                    "customer",
                    format!(
                        "no customer `{}` (create it with POST /v1/customers)",
                        rec.customer
                    ),
                )));
                continue;
            }
            if let Some(ext) = &rec.external_id {
                let owner = match in_group.get(&(org, ext.as_str())) {
                    Some(l) => Some(l.clone()),
                    None => tx.external_id_owner(org, ext).await?,
                };
                if let Some(license_id) = owner {
                    verdicts.push(Err(Error::Request(RequestError::ExternalIdExists {
                        external_id: ext.clone(),
                        license_id,
                    })));
                    continue;
                }
                in_group.insert((org, ext.as_str()), rec.license_id.to_string());
            }
            verdicts.push(Ok(Signed::Done(())));
            ready.push(m);
        }
        if ready.is_empty() {
            return Ok(verdicts);
        }
        let rows: Vec<NewLicense<'_>> = ready
            .iter()
            .map(|m| {
                let l = &m.license.record;
                NewLicense {
                    org_id: &m.job.org_id,
                    max_devices: m.license.max_devices,
                    external_id: l.external_id.as_deref(),
                    metadata: (!m.license.metadata.is_empty())
                        .then(|| serde_json::to_string(&m.license.metadata).unwrap_or_default()),
                    license_id: l.license_id,
                    key_id: l.key_id,
                    product: &l.product,
                    customer: &l.customer,
                    plan: &l.plan,
                    issued_at: l.issued_at,
                    expires_at: l.expires_at,
                    license_key: &l.license_key,
                    batch_id: None,
                    batch_row: None,
                }
            })
            .collect();
        tx.insert_licenses(&rows).await?;
        // One audit entry per license (written at commit, many per
        // statement).
        for m in &ready {
            let (job, l) = (&m.job, &m.license);
            let mut details = json!({
                "org_id": job.org_id,
                "license_id": l.record.license_id.to_string(),
                "key_id": l.record.key_id.to_string(),
                "product": l.record.product,
                "plan": l.record.plan,
                "customer": l.record.customer,
                "expires_at": l.record.expires_at,
                "max_devices": l.max_devices,
            });
            if let Some(x) = &l.record.external_id {
                details["external_id"] = json!(x);
            }
            tx.audit(&job.ctx, "license.issue", &details).await?;
        }
        for m in &ready {
            if let Some(r) = &m.record {
                tx.exec(
                    sqlx::query(
                        "UPDATE idempotency_keys SET status = $1, content_type = $2, body = $3 \
                         WHERE org_id = $4 AND idem_key = $5",
                    )
                    .bind(i64::from(r.response.status))
                    .bind(r.response.content_type.clone())
                    .bind(r.response.body.clone())
                    .bind(m.job.org_id.clone())
                    .bind(r.key.clone()),
                    "recording the idempotent response",
                )
                .await?;
            }
        }
        tx.commit().await?;
        Ok(verdicts)
    }

    /// One license of the organisation (`None` for a malformed id, an
    /// unknown one, or another organisation's).
    pub async fn org_license(&self, org_id: &str, id: &str) -> Result<Option<OrgLicense>> {
        let Some(id) = license_id(id) else {
            return Ok(None);
        };
        let row = sqlx::query(&format!(
            "{ORG_LICENSE_SELECT} WHERE o.org_id = $1 AND o.license_id = $2"
        ))
        .bind(org_id.to_owned())
        .bind(id)
        .fetch_optional(self.pool())
        .await
        .map_err(db_err("reading a license"))?;
        row.as_ref().map(org_license_from_row).transpose()
    }

    /// The organisation's licenses matching `filter`, by id after the cursor.
    pub async fn org_licenses(
        &self,
        org_id: &str,
        filter: &OrgLicenseFilter,
    ) -> Result<Vec<OrgLicense>> {
        let (sql, args) = org_licenses_query(org_id, filter);
        // Not a prepared statement PostgreSQL keeps: its generic plan
        // (chosen after five runs) knows only how many organisations there
        // are, and for a small one among large ones it may walk every
        // license in id order to fill a page. Planned for these values, the
        // organisation's own index range is read.
        let mut q = sqlx::query(&sql).persistent(self.backend() == Backend::Sqlite);
        for a in args {
            q = q.bind(a);
        }
        let rows = q
            .fetch_all(self.pool())
            .await
            .map_err(db_err("reading licenses"))?;
        rows.iter().map(org_license_from_row).collect()
    }

    /// Suspends (`true`) or resumes (`false`) one of the organisation's
    /// licenses: a suspended license gets no new activations. Idempotent.
    /// A revoked license is neither: [`RequestError::AlreadyRevoked`], nothing
    /// written (revocation is final).
    pub async fn org_set_suspended(
        &self,
        org_id: &str,
        id: &str,
        suspend: bool,
        ctx: &Context,
    ) -> Result<Option<OrgLicense>> {
        let Some(lid) = license_id(id) else {
            return Ok(None);
        };
        let mut tx = self.begin_write().await?;
        let sql = if suspend {
            "UPDATE org_licenses SET suspended_at = COALESCE(suspended_at, $1) WHERE org_id = $2 AND license_id = $3"
        } else {
            "UPDATE org_licenses SET suspended_at = NULL WHERE org_id = $2 AND license_id = $3 AND $1 >= 0"
        };
        let n = tx
            .exec(
                sqlx::query(sql)
                    .bind(i(ctx.now))
                    .bind(org_id.to_owned())
                    .bind(lid.clone()),
                "suspending the license",
            )
            .await?;
        if n == 0 {
            return Ok(None);
        }
        // Dropping `tx` on a revoked license rolls the update back.
        let parsed = lid.parse().map_err(|_| {
            Error::Ledger(LedgerError::Corrupt {
                detail: "bad license id".to_owned(),
            })
        })?;
        tx.require_not_revoked(parsed).await?;
        let action = if suspend {
            "license.suspend"
        } else {
            "license.resume"
        };
        tx.audit(ctx, action, &json!({ "org_id": org_id, "license_id": lid }))
            .await?;
        tx.commit().await?;
        self.org_license(org_id, &lid).await
    }

    /// Mints one license and records it. The key is returned only after the
    /// ledger transaction committed.
    /// `org_id` is the organisation the license belongs to; `signer` must
    /// be its active key.
    pub async fn issue(
        &self,
        org_id: &str,
        signer: &Signer,
        req: LicenseRequest,
        ctx: &Context,
    ) -> Result<Issued> {
        self.require_product(org_id, &req.product).await?;
        self.check_signer(org_id, signer).await?;
        let id = license_ids(1)?[0];
        let bytes = sign_request(signer.key(), id, &req, ctx.now)?;
        let key_text = license::to_text(&bytes);
        let mut tx = self.begin_write().await?;
        if let Some(x) = &req.external_id
            && let Some(license_id) = tx.external_id_owner(org_id, x).await?
        {
            return Err(Error::Request(RequestError::ExternalIdExists {
                external_id: x.clone(),
                license_id,
            }));
        }
        tx.insert_licenses(&[NewLicense {
            org_id,
            max_devices: 1,
            external_id: req.external_id.as_deref(),
            metadata: None,
            license_id: id,
            key_id: signer.key_id(),
            product: &req.product,
            customer: &req.customer,
            plan: &req.plan,
            issued_at: ctx.now,
            expires_at: req.expires_at,
            license_key: &key_text,
            batch_id: None,
            batch_row: None,
        }])
        .await?;
        let mut details = json!({
            "org_id": org_id,
            "license_id": id.to_string(),
            "key_id": signer.key_id().to_string(),
            "product": req.product,
            "plan": req.plan,
            "customer": req.customer,
            "expires_at": req.expires_at,
        });
        if let Some(x) = &req.external_id {
            details["external_id"] = json!(x);
        }
        tx.audit(ctx, "license.issue", &details).await?;
        tx.commit().await?;
        Ok(Issued {
            license_id: id,
            key_id: signer.key_id(),
            license: bytes,
            license_key: key_text,
            request: req,
            issued_at: ctx.now,
            row: None,
        })
    }

    /// Mints a batch. A reader thread checks the rows as it reads them and
    /// signs every `chunk_size` of them (on all cores); meanwhile this task
    /// records each signed chunk in one transaction and then hands it to
    /// `on_commit` (which writes it out), so reading, signing and recording
    /// overlap. A bad row stops the batch after the rows before it are minted.
    pub async fn issue_batch<I, F>(
        &self,
        org_id: &str,
        signer: &Signer,
        ctx: &Context,
        rows: I,
        opts: &BatchOptions,
        mut on_commit: F,
    ) -> BatchOutcome
    where
        I: Iterator<Item = Result<(u64, RequestFields)>> + Send + 'static,
        F: FnMut(&[Issued]) -> Result<()>,
    {
        let mut rnd = [0u8; 8];
        let batch_id = match getrandom::fill(&mut rnd) {
            Ok(()) => format!("b-{}", keyseal_core::hex::encode(&rnd)),
            Err(e) => {
                return BatchOutcome {
                    batch_id: String::new(),
                    minted: 0,
                    last_row: 0,
                    error: Some(e.into()),
                    skipped: Vec::new(),
                };
            }
        };
        let mut out = BatchOutcome {
            batch_id,
            minted: 0,
            last_row: 0,
            error: None,
            skipped: Vec::new(),
        };
        let products: BTreeSet<String> = match async {
            self.check_signer(org_id, signer).await?;
            self.all_products(org_id).await
        }
        .await
        {
            Ok(p) => p.into_iter().collect(),
            Err(e) => {
                out.error = Some(e);
                return out;
            }
        };
        // Two chunks in flight: enough to keep the ledger busy, little memory.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Vec<Issued>>>(2);
        let reader = {
            let key = signer.shared();
            let now = ctx.now;
            let chunk_size = opts.chunk_size.max(1);
            let start_row = opts.start_row;
            std::thread::spawn(move || {
                read_and_sign(rows, &products, &key, now, chunk_size, start_row, &tx)
            })
        };
        while let Some(item) = rx.recv().await {
            let step = match item {
                Ok(chunk) => {
                    self.record_chunk(org_id, chunk, ctx, &mut out, &mut on_commit)
                        .await
                }
                Err(e) => Err(e),
            };
            if let Err(e) = step {
                out.error = Some(e);
                break;
            }
        }
        // Dropping the receiver stops the reader at its next chunk.
        drop(rx);
        if reader.join().is_err() && out.error.is_none() {
            out.error = Some(Error::invalid("batch", "the reader thread panicked"));
        }
        out
    }

    pub(crate) async fn record_chunk<F>(
        &self,
        org_id: &str,
        issued: Vec<Issued>,
        ctx: &Context,
        out: &mut BatchOutcome,
        on_commit: &mut F,
    ) -> Result<()>
    where
        F: FnMut(&[Issued]) -> Result<()>,
    {
        let Some(last_row) = issued.last().and_then(|x| x.row) else {
            return Ok(());
        };
        let mut tx = self.begin_write().await?;
        // Rows whose external id was minted before (an earlier run, or an
        // earlier row) are skipped, under the writer's lock.
        let ids: Vec<&str> = issued
            .iter()
            .filter_map(|x| x.request.external_id.as_deref())
            .collect();
        let mut seen = tx.external_id_owners(org_id, &ids).await?;
        let mut kept = Vec::with_capacity(issued.len());
        for x in issued {
            if let Some(ext) = &x.request.external_id {
                if let Some(license_id) = seen.get(ext).cloned() {
                    out.skipped.push(SkippedRow {
                        row: x.row.unwrap_or(0),
                        external_id: ext.clone(),
                        license_id,
                    });
                    continue;
                }
                seen.insert(ext.clone(), x.license_id.to_string());
            }
            kept.push(x);
        }
        let issued = kept;
        let (Some(first), Some(last)) = (issued.first(), issued.last()) else {
            // Every row of the chunk was skipped: nothing to record.
            out.last_row = last_row;
            return tx.commit().await;
        };
        let rows: Vec<NewLicense<'_>> = issued
            .iter()
            .map(|x| NewLicense {
                org_id,
                max_devices: 1,
                external_id: x.request.external_id.as_deref(),
                metadata: None,
                license_id: x.license_id,
                key_id: x.key_id,
                product: &x.request.product,
                customer: &x.request.customer,
                plan: &x.request.plan,
                issued_at: x.issued_at,
                expires_at: x.request.expires_at,
                license_key: &x.license_key,
                batch_id: Some(&out.batch_id),
                batch_row: x.row,
            })
            .collect();
        tx.insert_licenses(&rows).await?;
        tx.audit(
            ctx,
            "license.issue_batch",
            &json!({
                "org_id": org_id,
                "batch_id": out.batch_id,
                "key_id": first.key_id.to_string(),
                "rows": [first.row, last.row],
                "count": issued.len(),
                "license_ids": issued.iter().map(|x| x.license_id.to_string()).collect::<Vec<_>>(),
            }),
        )
        .await?;
        tx.commit().await?;
        out.minted += issued.len() as u64;
        out.last_row = last_row;
        on_commit(&issued)
    }
}

impl WriteTx {
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
                found.insert(
                    r.try_get("external_id").map_err(g)?,
                    r.try_get("license_id").map_err(g)?,
                );
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
            values_rows(&mut sql, self.backend, chunk.len(), 10);
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
            values_rows(&mut sql, self.backend, chunk.len(), 7);
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
}

pub(crate) const ORG_LICENSE_SELECT: &str = "SELECT l.license_id, l.key_id, l.product, l.customer, l.plan, l.issued_at, l.expires_at, \
     l.license_key, l.batch_id, l.batch_row, r.revoked_at, r.reason, o.max_devices, o.suspended_at, \
     o.external_id, o.metadata \
     FROM org_licenses o JOIN licenses l ON l.license_id = o.license_id \
     LEFT JOIN revocations r ON r.license_id = l.license_id";

/// Whether `sql` (`SELECT 1 ... WHERE org_id = $1 AND ... = $2`, bound to
/// `key`) finds a row, asked once per key and group: the answer is kept in
/// `seen`.
pub(crate) async fn exists_once<'k>(
    tx: &mut WriteTx,
    seen: &mut std::collections::HashMap<(&'k str, &'k str), bool>,
    key: (&'k str, &'k str),
    sql: &'static str,
    doing: &str,
) -> Result<bool> {
    if let Some(b) = seen.get(&key) {
        return Ok(*b);
    }
    let found = !tx
        .fetch(
            sqlx::query(sql)
                .bind(key.0.to_owned())
                .bind(key.1.to_owned()),
            doing,
        )
        .await?
        .is_empty();
    seen.insert(key, found);
    Ok(found)
}

/// The query [`Store::org_licenses`] runs, and its arguments: the
/// organisation's licenses in id order, unfiltered from
/// `org_licenses_by_org`, by customer from `org_licenses_by_customer` (a
/// product too: checked on each of the customer's), by product from
/// `org_licenses_by_product` (schema 17). Each walk starts at the
/// organisation and the cursor and stops after the page, whatever the
/// statistics say (SQLite's, and PostgreSQL's generic plan).
pub(crate) fn org_licenses_query(org_id: &str, filter: &OrgLicenseFilter) -> (String, Vec<String>) {
    let after = filter.after.clone().unwrap_or_default();
    let limit = filter.limit.clamp(1, MAX_PAGE);
    let mut sql = format!("{ORG_LICENSE_SELECT} WHERE o.org_id = $1 AND o.license_id > $2");
    let mut args = vec![org_id.to_owned(), after];
    for (col, v) in [
        ("o.customer", &filter.customer),
        ("o.product", &filter.product),
    ] {
        if let Some(v) = v {
            args.push(v.clone());
            sql.push_str(&format!(" AND {col} = ${}", args.len()));
        }
    }
    // The order is the index's whole key (the same order, as the leading
    // columns are fixed): only that index gives it without a sort, so no
    // planner walks the licenses of every organisation in id order instead.
    let order = match (&filter.customer, &filter.product) {
        (Some(_), _) => "o.org_id, o.customer, o.license_id",
        (None, Some(_)) => "o.org_id, o.product, o.license_id",
        (None, None) => "o.org_id, o.license_id",
    };
    sql.push_str(&format!(" ORDER BY {order} LIMIT {limit}"));
    (sql, args)
}

/// A row of [`ORG_LICENSE_SELECT`].
#[derive(sqlx::FromRow)]
struct OrgLicenseRow {
    #[sqlx(flatten)]
    license: LicenseRow,
    max_devices: i64,
    suspended_at: Option<i64>,
    metadata: Option<String>,
}

pub(crate) fn org_license_from_row(r: &AnyRow) -> Result<OrgLicense> {
    let row: OrgLicenseRow = read_row(r, "reading licenses")?;
    Ok(OrgLicense {
        record: row.license.try_into()?,
        max_devices: u(row.max_devices),
        suspended_at: row.suspended_at.map(u),
        metadata: match row.metadata {
            Some(text) => {
                serde_json::from_str(&text).map_err(|_| corrupt("bad license metadata"))?
            }
            None => std::collections::BTreeMap::new(),
        },
    })
}

/// Normalises a license id given in a URL (32 hex digits); anything else is
/// simply not found.
pub(crate) fn license_id(id: &str) -> Option<String> {
    id.parse::<LicenseId>().ok().map(|l| l.to_string())
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

/// A license with its organisation row `o` (filter on `o.org_id`).
pub(super) const LICENSE_SELECT: &str = "SELECT l.license_id, l.key_id, l.product, l.customer, l.plan, l.issued_at, l.expires_at, \
     l.license_key, l.batch_id, l.batch_row, r.revoked_at, r.reason, o.external_id \
     FROM licenses l JOIN org_licenses o ON o.license_id = l.license_id \
     LEFT JOIN revocations r ON r.license_id = l.license_id";

/// A row of [`LICENSE_SELECT`] (and the license part of
/// [`ORG_LICENSE_SELECT`]).
#[derive(sqlx::FromRow)]
struct LicenseRow {
    license_id: String,
    key_id: String,
    product: String,
    customer: String,
    plan: String,
    issued_at: i64,
    expires_at: Option<i64>,
    license_key: String,
    batch_id: Option<String>,
    batch_row: Option<i64>,
    revoked_at: Option<i64>,
    reason: Option<String>,
    external_id: Option<String>,
}

impl TryFrom<LicenseRow> for LicenseRecord {
    type Error = Error;

    fn try_from(r: LicenseRow) -> Result<Self> {
        Ok(LicenseRecord {
            license_id: r
                .license_id
                .parse()
                .map_err(|_| corrupt("bad license id"))?,
            key_id: r.key_id.parse().map_err(|_| corrupt("bad key id"))?,
            product: r.product,
            customer: r.customer,
            plan: r.plan,
            issued_at: u(r.issued_at),
            expires_at: r.expires_at.map(u),
            license_key: r.license_key,
            batch_id: r.batch_id,
            batch_row: r.batch_row.map(u),
            revoked: r.revoked_at.map(|t| (u(t), r.reason.unwrap_or_default())),
            external_id: r.external_id,
        })
    }
}

pub(super) fn license_from_row(r: &AnyRow) -> Result<LicenseRecord> {
    read_row::<LicenseRow>(r, "reading licenses")?.try_into()
}

/// Rows per INSERT statement (10 parameters each; well under SQLite's and
/// PostgreSQL's parameter limits).
pub(super) const INSERT_ROWS: usize = 1000;

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

/// An `INSERT` of `n` rows of `cols` values into `into` (`"table (a, b)"`)
/// padded to the next power of two: `SELECT column1, … FROM (VALUES …)
/// AS v WHERE v.column1 <> ''`, so the caller binds its `n` rows and then
/// the rest with an empty first value, which insert nothing. A group of
/// any size then runs one of a few statements (1, 2, 4 … rows), each
/// prepared once and kept in the connection's statement cache, rather
/// than a new statement parsed and planned for every size. Returns the
/// statement and the rows to bind.
pub(crate) fn padded_insert(
    into: &str,
    backend: Backend,
    n: usize,
    cols: usize,
) -> (String, usize) {
    use std::fmt::Write as _;
    let rows = n.next_power_of_two();
    let mut sql = String::with_capacity(120 + rows * cols * 4);
    let _ = write!(sql, "INSERT INTO {into} SELECT ");
    for c in 1..=cols {
        if c > 1 {
            sql.push_str(", ");
        }
        let _ = write!(sql, "v.column{c}");
    }
    sql.push_str(" FROM (VALUES ");
    values_rows(&mut sql, backend, rows, cols);
    sql.push_str(") AS v WHERE v.column1 <> ''");
    (sql, rows)
}

/// Appends the parameters of `rows` rows of `cols` values each to an
/// `INSERT ... VALUES` statement: anonymous `(?,?)` on SQLite (sqlx looks
/// each named one up by a linear scan, quadratic for big statements),
/// numbered `($1,$2),($3,$4)` on PostgreSQL.
pub(crate) fn values_rows(sql: &mut String, backend: Backend, rows: usize, cols: usize) {
    use std::fmt::Write as _;
    for n in 0..rows {
        sql.push_str(if n > 0 { ",(" } else { "(" });
        for c in 0..cols {
            if c > 0 {
                sql.push(',');
            }
            if backend == Backend::Sqlite {
                sql.push('?');
            } else {
                let _ = write!(sql, "${}", n * cols + c + 1);
            }
        }
        sql.push(')');
    }
}
