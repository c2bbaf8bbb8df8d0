//! The audit log (`audit_log`): each organisation's hash chain and the
//! ledger's, written by the one audit writer of [`WriteTx`].

use super::*;
use crate::service::MAX_PAGE;

impl Store {
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

    /// The organisation's audit entries with seq above `after`, oldest first.
    pub async fn org_audit(&self, org_id: &str, after: u64, limit: u64) -> Result<Vec<AuditEntry>> {
        let rows = sqlx::query(&format!("{AUDIT_PAGE} LIMIT {}", limit.clamp(1, MAX_PAGE)))
            .bind(org_id.to_owned())
            .bind(i(after))
            .fetch_all(self.pool())
            .await
            .map_err(db_err("reading the audit log"))?;
        rows.iter().map(audit_from_row).collect()
    }
}

impl WriteTx {
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
    pub(crate) async fn flush_audit(&mut self) -> Result<()> {
        const COLUMNS: usize = 12;
        let pending = std::mem::take(&mut self.pending);
        for chunk in pending.chunks(AUDIT_ROWS) {
            let mut sql = String::from(
                "INSERT INTO audit_log (seq, at, actor, action, details, prev_hash, hash, org_id, subject, \
                 org_seq, org_prev_hash, org_hash) VALUES ",
            );
            super::values_rows(&mut sql, self.backend, chunk.len(), COLUMNS);
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
}

/// A row of [`AUDIT_PAGE`] or [`AUDIT_OF_SUBJECT`]: an entry of its
/// organisation's chain.
#[derive(sqlx::FromRow)]
struct OrgAuditRow {
    org_seq: i64,
    at: i64,
    actor: String,
    action: String,
    details: String,
    org_prev_hash: String,
    org_hash: String,
}

pub(crate) fn audit_from_row(r: &AnyRow) -> Result<AuditEntry> {
    let r: OrgAuditRow = read_row(r, "reading the audit log")?;
    Ok(AuditEntry {
        seq: u(r.org_seq),
        at: u(r.at),
        actor: r.actor,
        action: r.action,
        details: r.details,
        prev_hash: r.org_prev_hash,
        hash: r.org_hash,
    })
}

/// A page of the organisation's audit chain (`audit_org_seq`): bind the
/// organisation and the last `org_seq` seen, add a `LIMIT`.
pub(crate) const AUDIT_PAGE: &str = "SELECT org_seq, at, actor, action, details, org_prev_hash, org_hash \
     FROM audit_log WHERE org_id = $1 AND org_seq > $2 ORDER BY org_seq";

/// A customer's audit entries (`audit_by_subject`): bind the organisation
/// and the customer.
pub(crate) const AUDIT_OF_SUBJECT: &str = "SELECT org_seq, at, actor, action, details, org_prev_hash, org_hash \
     FROM audit_log WHERE org_id = $1 AND subject = $2 ORDER BY org_seq";

/// Audit rows per statement (12 parameters each: within SQLite's limit).
pub(super) const AUDIT_ROWS: usize = 500;

/// An audit entry chained in a transaction, written at its commit.
pub(super) struct PendingEntry {
    pub(super) seq: u64,
    pub(super) at: u64,
    pub(super) actor: String,
    pub(super) action: String,
    pub(super) details: String,
    pub(super) prev_hash: String,
    pub(super) hash: String,
    pub(super) org_id: Option<String>,
    pub(super) subject: Option<String>,
    pub(super) org_seq: Option<i64>,
    pub(super) org_prev_hash: Option<String>,
    pub(super) org_hash: Option<String>,
}
