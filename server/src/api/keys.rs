//! `/v1/keys`: the organisation's signing keys (admin).

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query};
use axum::http::StatusCode;

use super::extract::{Body, Caller, PageQuery, key_id, page_args, query};
use super::licenses::{RevokeRequest, publish, require_active_key};
use super::views::{Key, KeyPage};
use super::{ApiResult, S, json_response};
use crate::openapi::ProblemSchema;
use crate::problem::Problem;

/// The organisation's signing keys, oldest first, in pages (revoked keys
/// stay, so rotations make the list grow). The cursor is the last key's
/// creation time and id, `<unix seconds>.<key id>`.
#[utoipa::path(get, path = "/v1/keys", tag = "keys", summary = "List signing keys",
    description = "The organisation's signing keys (public halves), oldest first, revoked ones included, in pages (cursor `<created_at>.<key_id>`). Needs `admin`.",
    params(PageQuery),
    responses((status = 200, description = "a page of signing keys", body = KeyPage)),
    security(("bearer" = [])))]
pub(crate) async fn list_keys(
    axum::extract::State(s): axum::extract::State<S>,
    c: Caller,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> ApiResult {
    let q = query(q)?;
    let (after, limit) = page_args(q.cursor, q.limit, |c| {
        let (at, id) = c.split_once('.')?;
        Some((
            at.parse::<u64>().ok()?,
            id.parse::<keyseal_core::KeyId>().ok()?,
        ))
    })?;
    let keys = s.store.org_keys_page(c.org(), after, limit).await?;
    Ok(KeyPage::answer(
        keys,
        limit,
        |k| format!("{}.{}", k.created_at, k.key_id),
        Key::from,
    ))
}

/// Makes a new signing key for the caller's organisation, seals it into
/// the ledger, makes it the organisation's active key (its old one retires)
/// and signs the organisation's licenses with it from now on. Other
/// organisations' keys are untouched.
#[utoipa::path(post, path = "/v1/keys/rotate", tag = "keys", summary = "Rotate the signing key",
    description = "A new active signing key for the organisation, sealed into the ledger; its old one retires (its licenses stay valid). Other organisations' keys are untouched. Refused with 409 `keyring-full` when the organisation has 16 keys that are not revoked (all are in its public keyring, which holds at most 16): revoke a retired key it no longer needs first. Needs `admin`.",
    responses(
        (status = 201, description = "the new active key", body = Key),
        (status = 409, description = "`keyring-full` or `clock-behind-newest-key`", body = ProblemSchema, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(crate) async fn rotate_key(
    axum::extract::State(s): axum::extract::State<S>,
    c: Caller,
) -> ApiResult {
    let ctx = c.ctx(&s);
    let _one_at_a_time = s.rotation.lock().await;
    // A full keyring is refused before the costly sealing; the rotation
    // checks again under the ledger's writer lock (another replica).
    s.store.org_keyring_room(c.org()).await?;
    // Sealing (Argon2id) runs on a blocking thread, not on one of the
    // runtime's, which serve every organisation's requests.
    let (pass, kdf) = (s.passphrase.clone(), s.kdf);
    let (key, sealed) =
        tokio::task::spawn_blocking(move || keyseal_issuer::vault::seal_new_key(&pass, kdf))
            .await
            .map_err(|_| Problem::internal())??;
    let id = key.key_id();
    s.store.org_activate_key(c.org(), &sealed, &ctx).await?;
    s.set_signer(c.org(), keyseal_issuer::Signer::new(key))
        .await;
    let k = s.store.org_find_key(c.org(), &id.to_string()).await?;
    Ok(json_response(StatusCode::CREATED, &Key::from(k)))
}

#[utoipa::path(post, path = "/v1/keys/{key_id}/retire", tag = "keys", summary = "Retire a signing key",
    description = "The key signs nothing issued from now on; what it signed stays valid. Another organisation's key is a 404. Needs `admin`.",
    params(("key_id" = String, Path, description = "signing key id (16 hex digits)", example = "9a0b1c2d3e4f5061")),
    responses(
        (status = 200, description = "the retired key", body = Key),
        (status = 409, description = "`conflict`: retired or revoked already", body = ProblemSchema, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(crate) async fn retire_key(
    axum::extract::State(s): axum::extract::State<S>,
    c: Caller,
    p: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let id = key_id(p)?;
    let ctx = c.ctx(&s);
    let k = s.store.org_retire_key(c.org(), &id, ctx.now, &ctx).await?;
    Ok(json_response(StatusCode::OK, &Key::from(k)))
}

/// Revokes one of the organisation's keys that no longer signs (retired):
/// the organisation's revocation list, published at once, revokes it and
/// every license it signed, and its public keyring leaves it out, which
/// makes room for a rotation in a full keyring. The active key is refused
/// (409): rotate first, so that a key remains to sign the list.
#[utoipa::path(post, path = "/v1/keys/{key_id}/revoke", tag = "keys", summary = "Revoke a retired signing key",
    description = "The organisation's revocation list, published at once, revokes the key and every license it signed; its public keyring leaves it out. The active key is refused (409 `key-active`): rotate first. Another organisation's key is a 404. Needs `admin`.",
    params(("key_id" = String, Path, description = "signing key id (16 hex digits)", example = "9a0b1c2d3e4f5061")),
    request_body = RevokeRequest,
    responses(
        (status = 200, description = "the revoked key", body = Key),
        (status = 409, description = "`key-active`, `conflict` (revoked already) or `no-active-key`", body = ProblemSchema, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(crate) async fn revoke_key(
    axum::extract::State(s): axum::extract::State<S>,
    c: Caller,
    p: Result<Path<String>, PathRejection>,
    Body(b): Body<RevokeRequest>,
) -> ApiResult {
    let id = key_id(p)?;
    // Keys become active only when they are made, so one read retired
    // here is still not active when the revocation commits.
    if s.store.org_find_key(c.org(), &id).await?.status == keyseal_issuer::KeyStatus::Active {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "key-active",
            "this is the organisation's active signing key: rotate first (POST /v1/keys/rotate), \
             then revoke it, so that a key remains to sign the revocation list",
        ));
    }
    let ctx = c.ctx(&s);
    // No revocation without a key to sign its list (409 `no-active-key`).
    require_active_key(&s, c.org()).await?;
    let k = s
        .store
        .org_revoke_key(c.org(), &id, &b.reason, &ctx)
        .await?;
    // Publish the organisation's list at once, so it names the key.
    publish(&s, c.org(), &ctx, keyseal_issuer::Publish::IfChanged).await?;
    Ok(json_response(StatusCode::OK, &Key::from(k)))
}
