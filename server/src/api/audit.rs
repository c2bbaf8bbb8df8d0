//! `/v1/audit`: the organisation's audit log, a hash chain.

use axum::extract::Query;
use axum::extract::rejection::QueryRejection;

use super::extract::{Caller, PageQuery, page_args, query};
use super::views::{AuditEntry, AuditPage};
use super::{ApiResult, S};

/// Read the audit log
#[utoipa::path(get, path = "/v1/audit", operation_id = "listAudit", tag = "audit",
    description = "The organisation's audit entries in pages, oldest first: every write through the API and the CLI, chained by hash (each entry's `prev_hash` is the previous one's `hash`; `keyseal audit verify` checks the whole chain). Needs `read`.",
    params(PageQuery),
    responses((status = 200, description = "a page of audit entries", body = AuditPage)),
    security(("bearer" = [])))]
pub(crate) async fn audit(
    axum::extract::State(s): axum::extract::State<S>,
    c: Caller,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> ApiResult {
    let q = query(q)?;
    let (after, limit) = page_args(q.cursor, q.limit, |c| c.parse::<u64>().ok())?;
    let after = after.unwrap_or(0);
    let rows = s.store.org_audit(c.org(), after, limit).await?;
    Ok(AuditPage::answer(
        rows,
        limit,
        |e| e.seq.to_string(),
        AuditEntry::from,
    ))
}
