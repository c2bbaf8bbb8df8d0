//! `/v1/audit`: the organisation's audit log, a hash chain.

use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use axum::http::StatusCode;

use super::extract::{Caller, PageQuery, cursor, limit, query};
use super::views::{AuditEntry, AuditPage, next_cursor};
use super::{ApiResult, S, json_response};

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
    let limit = limit(q.limit)?;
    let after = cursor(q.cursor, |c| c.parse::<u64>().ok())?.unwrap_or(0);
    let rows = s.store.org_audit(c.org(), after, limit).await?;
    let next_cursor = next_cursor(&rows, limit, |e| e.seq.to_string());
    let items = rows.into_iter().map(AuditEntry::from).collect();
    Ok(json_response(
        StatusCode::OK,
        &AuditPage { items, next_cursor },
    ))
}
