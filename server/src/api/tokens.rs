//! `/v1/tokens`: the organisation's API tokens (admin).

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use keyseal_issuer::service::Scope;
use serde::Deserialize;
use utoipa::ToSchema;

use super::extract::{Body, Caller, PageQuery, object_id, page_args, path, query};
use super::views::{NewTokenResult, ScopeSchema, Token, TokenPage};
use super::{ApiResult, S, json_response};
use crate::auth;
use crate::openapi::ProblemSchema;
use crate::problem::Problem;

/// A new API token.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewToken {
    /// What the token is for (1 to 200 bytes, no control characters).
    #[schema(min_length = 1, max_length = 200, example = "store backend")]
    name: String,
    /// What it may do.
    #[schema(value_type = Vec<ScopeSchema>, min_items = 1, example = json!(["issue"]))]
    scopes: Vec<Scope>,
}

/// A new API token of the caller's organisation; the secret is in this
/// response only.
#[utoipa::path(post, path = "/v1/tokens", tag = "tokens", summary = "Create an API token",
    description = "A new API token of the caller's organisation. Its secret is in this response only (the service keeps its hash), so this operation takes no `Idempotency-Key`. Needs `admin`.",
    request_body = NewToken,
    responses((status = 201, description = "the token and its secret", body = NewTokenResult)),
    security(("bearer" = [])))]
pub(crate) async fn create_token(
    axum::extract::State(s): axum::extract::State<S>,
    c: Caller,
    Body(b): Body<NewToken>,
) -> ApiResult {
    let secret = auth::new_token().map_err(|_| Problem::internal())?;
    let id = s
        .store
        .add_token(
            c.org(),
            &auth::token_hash(&secret),
            &b.scopes,
            &b.name,
            &c.ctx(&s),
        )
        .await?;
    let t = s
        .store
        .org_token(c.org(), &id)
        .await?
        .ok_or_else(Problem::internal)?;
    let created = NewTokenResult {
        token: Token::from(t),
        secret,
    };
    Ok(json_response(StatusCode::CREATED, &created))
}

#[utoipa::path(get, path = "/v1/tokens", tag = "tokens", summary = "List API tokens",
    description = "The organisation's API tokens in pages, by id, revoked ones included; never a secret. Needs `admin`.",
    params(PageQuery),
    responses((status = 200, description = "a page of API tokens", body = TokenPage)),
    security(("bearer" = [])))]
pub(crate) async fn list_tokens(
    axum::extract::State(s): axum::extract::State<S>,
    c: Caller,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> ApiResult {
    let q = query(q)?;
    let (after, limit) = page_args(q.cursor, q.limit, object_id("tok_"))?;
    let tokens = s.store.org_tokens(c.org(), after.as_deref(), limit).await?;
    Ok(TokenPage::answer(
        tokens,
        limit,
        |t| t.token_id.clone(),
        Token::from,
    ))
}

/// Revokes a token: refused at once here (its cache entry goes), and by
/// other replicas within [`crate::TOKEN_CACHE_SECS`].
#[utoipa::path(post, path = "/v1/tokens/{token_id}/revoke", tag = "tokens", summary = "Revoke an API token",
    description = "Refused at once by this replica, by others within 5 s (their token cache). The organisation's last admin token cannot be revoked (409). Needs `admin`.",
    params(("token_id" = String, Path, description = "token id (`tok_...`)")),
    responses(
        (status = 200, description = "the revoked token", body = Token),
        (status = 409, description = "`conflict`: revoked already, or the organisation's last admin token", body = ProblemSchema, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(crate) async fn revoke_token(
    axum::extract::State(s): axum::extract::State<S>,
    c: Caller,
    p: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let id = path(p)?;
    let t = s
        .store
        .org_revoke_token(c.org(), &id, &c.ctx(&s))
        .await?
        .ok_or_else(|| Problem::not_found("API token"))?;
    {
        let mut cache = s
            .tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Requests that read the token before the revocation committed must
        // not cache it after this (see the `Caller` extractor).
        cache.revocations += 1;
        cache
            .entries
            .retain(|_, (cached, _)| cached.token_id != t.token_id);
    }
    Ok(json_response(StatusCode::OK, &Token::from(t)))
}
