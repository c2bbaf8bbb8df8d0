//! The public endpoints: liveness, readiness, metrics, this document, and
//! each organisation's keyring and revocation list (anonymous, cacheable,
//! rate-limited per client).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::Path;
use axum::extract::rejection::PathRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keyseal_issuer::Context;

use super::extract::{PublicClient, path, wait_for_allowance};
use super::licenses::publish;
use super::views::{Keyring, Status};
use super::{ApiResult, S, cacheable, cacheable_with, etag_of, json_response, lock, not_modified};
use crate::openapi::ProblemSchema;
use crate::problem::Problem;
use crate::{REVOCATION_LIST_LIFETIME, State};

/// Liveness
#[utoipa::path(get, path = "/healthz", tag = "service", description = "200 while the process serves requests.",
    responses((status = 200, description = "alive", body = Status, example = json!({"status": "ok"}))))]
pub(crate) async fn healthz() -> Response {
    json_response(StatusCode::OK, &Status { status: "ok" })
}

/// Readiness
#[utoipa::path(get, path = "/readyz", tag = "service", description = "200 while the ledger answers; a load balancer sends requests only to ready replicas.",
    responses(
        (status = 200, description = "ready", body = Status, example = json!({"status": "ready"})),
        (status = 503, description = "`not-ready`: the ledger does not answer", body = ProblemSchema, content_type = "application/problem+json"),
    ))]
pub(crate) async fn readyz(axum::extract::State(s): axum::extract::State<S>) -> ApiResult {
    match s.store.org_count().await {
        Ok(_) => Ok(json_response(StatusCode::OK, &Status { status: "ready" })),
        Err(_) => Err(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not-ready",
            "the ledger is not reachable",
        )),
    }
}

/// Prometheus metrics
#[utoipa::path(get, path = "/metrics", tag = "service", description = "Requests by method, route template and status with their latency; licenses minted; the revocation lists' health in aggregate (oldest age, least time left, stale count). Names no organisation.",
    responses((status = 200, description = "the Prometheus text exposition (0.0.4)", body = String, content_type = "text/plain")))]
pub(crate) async fn metrics(axum::extract::State(s): axum::extract::State<S>) -> Response {
    let mut body = s
        .metrics
        .render(s.minted.load(std::sync::atomic::Ordering::Relaxed));
    // The lists' health: the oldest, the nearest to stale, how many are
    // stale (a list is published again when fetched past half its
    // lifetime; alert when the time left nears zero).
    s.webhook_metrics.render(&mut body);
    match s.store.newest_lists().await {
        Ok(lists) => crate::metrics::render_lists(&mut body, s.now(), &lists),
        Err(e) => {
            tracing::error!(error = %crate::problem::chain(&e), "reading revocation lists for the metrics");
        }
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

/// This document
#[utoipa::path(get, path = "/v1/openapi.json", tag = "service", description = "The OpenAPI document of this API, generated from the service's own types.",
    params(("If-None-Match" = Option<String>, Header, description = "an ETag from an earlier answer: 304 with no body while the document is unchanged")),
    responses(
        (status = 200, description = "the OpenAPI 3.1 document", body = Object, headers(("ETag" = String, description = "a strong tag of the body (give it as If-None-Match)"), ("Cache-Control" = String, description = "public, max-age=60"))),
        (status = 304, description = "not modified", headers(("ETag" = String, description = "the body's tag"))),
    ))]
pub(crate) async fn openapi(headers: HeaderMap) -> Response {
    let doc = crate::openapi::served();
    cacheable_with(&headers, "application/json", doc.body.clone(), &doc.etag)
}

/// The default organisation (the first one): what the unscoped public
/// endpoints serve, so clients from before keys were per organisation keep
/// working.
async fn default_org(s: &State) -> Result<String, Problem> {
    s.store
        .default_org()
        .await?
        .ok_or_else(|| Problem::not_found("organisation"))
}

/// An organisation named in a public URL; an unknown one is a 404. Ids are
/// `org_` and hex digits: anything else (a NUL byte PostgreSQL would refuse
/// as text, say) is not looked up.
pub(crate) async fn public_org(
    s: &State,
    p: Result<Path<String>, PathRejection>,
) -> Result<String, Problem> {
    let org_id = path(p)?;
    let plausible = org_id.len() <= 64
        && org_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !plausible || !s.store.org_exists(&org_id).await? {
        return Err(Problem::not_found("organisation"));
    }
    Ok(org_id)
}

#[utoipa::path(get, path = "/v1/public/keyring", tag = "public", operation_id = "getKeyring", summary = "The default organisation's keyring",
    description = "The first organisation's public keyring, for clients from before keys were per organisation; new clients use `/v1/public/orgs/{org_id}/keyring`.",
    params(("If-None-Match" = Option<String>, Header, description = "an ETag from an earlier answer: 304 with no body while the document is unchanged")),
    responses(
        (status = 200, description = "the keyring", body = Keyring, headers(("ETag" = String, description = "a strong tag of the body (give it as If-None-Match)"), ("Cache-Control" = String, description = "public, max-age=60"))),
        (status = 304, description = "not modified", headers(("ETag" = String, description = "the body's tag"))),
        (status = 404, description = "no such organisation, or it has no keys or list yet", body = ProblemSchema, content_type = "application/problem+json"),
        (status = 429, description = "over the client's rate, or the replica's byte budget for full lists, after a second's wait (`rate-limited`, Retry-After)", body = ProblemSchema, content_type = "application/problem+json", headers(("Retry-After" = u64, description = "seconds to wait"))),
    ))]
pub(crate) async fn keyring(
    axum::extract::State(s): axum::extract::State<S>,
    _: PublicClient,
    headers: HeaderMap,
) -> ApiResult {
    let org_id = default_org(&s).await?;
    keyring_of(&s, &org_id, &headers).await
}

#[utoipa::path(get, path = "/v1/public/orgs/{org_id}/keyring", tag = "public", operation_id = "getOrgKeyring", summary = "An organisation's public keyring",
    description = "The keyring an organisation's apps embed: its keys only, oldest first, never a revoked one. Anonymous and cacheable; apps fetch it every few hours with If-None-Match.",
    params(("org_id" = String, Path, description = "organisation id (`org_...`; `GET /v1/tokens` shows yours)", example = "org_8e7d6c5b4a392817"), ("If-None-Match" = Option<String>, Header, description = "an ETag from an earlier answer: 304 with no body while the document is unchanged")),
    responses(
        (status = 200, description = "the keyring", body = Keyring, headers(("ETag" = String, description = "a strong tag of the body (give it as If-None-Match)"), ("Cache-Control" = String, description = "public, max-age=60"))),
        (status = 304, description = "not modified", headers(("ETag" = String, description = "the body's tag"))),
        (status = 400, description = "a malformed path", body = ProblemSchema, content_type = "application/problem+json"),
        (status = 404, description = "no such organisation, or it has no keys or list yet", body = ProblemSchema, content_type = "application/problem+json"),
        (status = 429, description = "over the client's rate, or the replica's byte budget for full lists, after a second's wait (`rate-limited`, Retry-After)", body = ProblemSchema, content_type = "application/problem+json", headers(("Retry-After" = u64, description = "seconds to wait"))),
    ))]
pub(crate) async fn org_keyring(
    axum::extract::State(s): axum::extract::State<S>,
    _: PublicClient,
    p: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> ApiResult {
    let org_id = public_org(&s, p).await?;
    keyring_of(&s, &org_id, &headers).await
}

/// The organisation's public keyring: its keys, none of another's.
async fn keyring_of(s: &State, org_id: &str, headers: &HeaderMap) -> ApiResult {
    let ring = s.store.org_keyring(org_id).await?;
    Ok(cacheable(
        headers,
        "application/json",
        ring.json().into_bytes(),
    ))
}

#[utoipa::path(get, path = "/v1/public/revocations", tag = "public", operation_id = "getRevocations", summary = "The default organisation's revocation list",
    description = "The first organisation's current revocation list, for clients from before keys were per organisation; new clients use `/v1/public/orgs/{org_id}/revocations`.",
    params(("If-None-Match" = Option<String>, Header, description = "an ETag from an earlier answer: 304 with no body while the document is unchanged")),
    responses(
        (status = 200, description = "the armored revocation list (the key certificates first)", body = String, content_type = "text/plain", headers(("ETag" = String, description = "a strong tag of the body (give it as If-None-Match)"), ("Cache-Control" = String, description = "public, max-age=60"))),
        (status = 304, description = "not modified", headers(("ETag" = String, description = "the body's tag"))),
        (status = 404, description = "no such organisation, or it has no keys or list yet", body = ProblemSchema, content_type = "application/problem+json"),
        (status = 429, description = "over the client's rate, or the replica's byte budget for full lists, after a second's wait (`rate-limited`, Retry-After)", body = ProblemSchema, content_type = "application/problem+json", headers(("Retry-After" = u64, description = "seconds to wait"))),
    ))]
pub(crate) async fn revocations(
    axum::extract::State(s): axum::extract::State<S>,
    _: PublicClient,
    headers: HeaderMap,
) -> ApiResult {
    let org_id = default_org(&s).await?;
    revocations_of(&s, &org_id, &headers).await
}

#[utoipa::path(get, path = "/v1/public/orgs/{org_id}/revocations", tag = "public", operation_id = "getOrgRevocations", summary = "An organisation's revocation list",
    description = "The organisation's current revocation list, signed by its key, armored, after the certificates of its keys that an offline root certified. Always fresh: signed again past half its lifetime. Anonymous and cacheable; apps fetch it with If-None-Match.",
    params(("org_id" = String, Path, description = "organisation id (`org_...`; `GET /v1/tokens` shows yours)", example = "org_8e7d6c5b4a392817"), ("If-None-Match" = Option<String>, Header, description = "an ETag from an earlier answer: 304 with no body while the document is unchanged")),
    responses(
        (status = 200, description = "the armored revocation list (the key certificates first)", body = String, content_type = "text/plain", headers(("ETag" = String, description = "a strong tag of the body (give it as If-None-Match)"), ("Cache-Control" = String, description = "public, max-age=60"))),
        (status = 304, description = "not modified", headers(("ETag" = String, description = "the body's tag"))),
        (status = 400, description = "a malformed path", body = ProblemSchema, content_type = "application/problem+json"),
        (status = 404, description = "no such organisation, or it has no keys or list yet", body = ProblemSchema, content_type = "application/problem+json"),
        (status = 429, description = "over the client's rate, or the replica's byte budget for full lists, after a second's wait (`rate-limited`, Retry-After)", body = ProblemSchema, content_type = "application/problem+json", headers(("Retry-After" = u64, description = "seconds to wait"))),
    ))]
pub(crate) async fn org_revocations(
    axum::extract::State(s): axum::extract::State<S>,
    _: PublicClient,
    p: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> ApiResult {
    let org_id = public_org(&s, p).await?;
    revocations_of(&s, &org_id, &headers).await
}

/// Publishes `org_id`'s list again (same revocations, next sequence, a new
/// `next_update`) if its newest list (`next_update`; `None`: no list yet)
/// is past half its lifetime and the organisation has an active key; true
/// if it tried. Decided again under the ledger's lock, so requests, the
/// refresher and replicas doing it at once publish one list. A failure is
/// logged, not returned: the list there is still served.
async fn refresh_list(s: &State, org_id: &str, next_update: Option<u64>) -> Result<bool, Problem> {
    let now = s.now();
    let due = now + REVOCATION_LIST_LIFETIME / 2;
    if next_update.is_some_and(|n| n > due) || s.store.org_active_key(org_id).await?.is_none() {
        return Ok(false);
    }
    let ctx = Context {
        now,
        actor: format!("org:{org_id}/service"),
    };
    if let Err(e) = publish(s, org_id, &ctx, keyseal_issuer::Publish::IfDueBy(due)).await {
        tracing::error!(org_id, error = %crate::problem::chain(&e), "refreshing the revocation list");
    }
    Ok(true)
}

/// Signs again every organisation's list that is past half its lifetime
/// ([`refresh_list`]); what the service's refresher runs.
pub(crate) async fn refresh_lists(s: &State) -> Result<(), Problem> {
    for (org_id, _, next_update) in s.store.newest_lists().await? {
        refresh_list(s, &org_id, Some(next_update)).await?;
    }
    Ok(())
}

/// An organisation's revocation list file as served, with what identifies
/// it ([`keyseal_issuer::ListHead`]) and its ETag, computed once.
pub(crate) struct ListFile {
    sequence: u64,
    certificates: String,
    body: Bytes,
    etag: HeaderValue,
}

/// The organisation's latest revocation list, signed by its key (after the
/// certificates of its keys that an offline root certified). A request
/// reads the list's head (two small rows) and, if this replica built that
/// file already, sends it from memory: its cost does not grow with the
/// number of revocations. A list past half its lifetime is published again
/// first (same revocations, next sequence, a new `next_update`), so the
/// list apps fetch never goes stale while the organisation has an active
/// key, even with no revocation for weeks. An organisation made while the
/// service runs (`keyseal org create` on a shared PostgreSQL ledger) gets
/// its first list on the first request.
async fn revocations_of(s: &State, org_id: &str, headers: &HeaderMap) -> ApiResult {
    let mut head = s.store.org_list_head(org_id).await?;
    if refresh_list(s, org_id, head.as_ref().map(|h| h.next_update)).await? {
        head = s.store.org_list_head(org_id).await?;
    }
    let head = head.ok_or_else(|| Problem::not_found("revocation list"))?;
    let cached = lock(&s.lists).get(org_id).cloned();
    let file = match cached {
        Some(f) if f.sequence == head.sequence && f.certificates == head.certificates => f,
        _ => {
            let latest = s
                .store
                .org_latest_list(org_id)
                .await?
                .ok_or_else(|| Problem::not_found("revocation list"))?;
            // The certificates' version was read before the file is built:
            // a certification meanwhile makes the next request build again.
            let text = s.store.org_list_file(org_id, &latest).await?;
            let f = Arc::new(ListFile {
                sequence: latest.sequence,
                certificates: head.certificates,
                etag: etag_of(text.as_bytes()),
                body: text.into(),
            });
            let mut lists = lock(&s.lists);
            if lists
                .get(org_id)
                .is_none_or(|old| old.sequence <= f.sequence)
            {
                lists.insert(org_id.to_owned(), Arc::clone(&f));
            }
            f
        }
    };
    if !not_modified(headers, &file.etag) {
        spend_list_bytes(s, file.body.len()).await?;
    }
    Ok(cacheable_with(
        headers,
        "text/plain; charset=utf-8",
        file.body.clone(),
        &file.etag,
    ))
}

/// Waits (up to [`PUBLIC_WAIT`]) until the replica's budget of full list
/// downloads has room for `bytes`; otherwise 429 `rate-limited`. A list
/// larger than a second's budget takes the whole second; one smaller than
/// a thousandth of it (a KiB a MiB of budget) is not counted, so large
/// lists read often hold up only each other.
async fn spend_list_bytes(s: &State, bytes: usize) -> Result<(), Problem> {
    let per_second = s.network.public_list_bytes_per_second;
    let (Some(budget), Some(burst)) = (&s.list_bytes, crate::list_budget_kib(per_second)) else {
        return Ok(());
    };
    if (bytes as u64) < per_second / 1024 {
        return Ok(());
    }
    let kib = u32::try_from(bytes.div_ceil(1024)).unwrap_or(u32::MAX);
    let n = std::num::NonZeroU32::new(kib).map_or(burst, |n| n.min(burst));
    use governor::clock::Clock;
    let granted = wait_for_allowance(|| match budget.check_n(n) {
        Ok(r) => r.map_err(|not_until| not_until.wait_time_from(budget.clock().now())),
        // Cannot happen: `n` is at most the burst.
        Err(governor::InsufficientCapacity(_)) => Ok(()),
    })
    .await;
    if granted {
        Ok(())
    } else {
        Err(Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate-limited",
            "this replica is sending as many large revocation lists as it may this second; \
             retry in a second (a list is valid for a week: an app with a cached copy can wait)",
        ))
    }
}
