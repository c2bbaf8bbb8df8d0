//! `/v1/licenses/{id}/activations`: device seats on a license.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use keyseal_issuer::activation::{Activated, Refused};
use serde::Deserialize;
use utoipa::ToSchema;

use super::extract::{Body, Caller, PageQuery, object_id, page_args, path, query};
use super::licenses::with_active_key;
use super::views::{Activation, ActivationPage};
use super::{ApiResult, S, json_response};
use crate::openapi::ProblemSchema;
use crate::problem::Problem;

/// The device taking a seat.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ActivateRequest {
    /// The device's `ksfp1.` fingerprint (from an SDK's `fingerprint()`).
    pub(crate) fingerprint: String,
    /// How many of the fingerprint's components must match (default: all).
    #[schema(minimum = 0, maximum = 255)]
    pub(crate) device_match: Option<u8>,
}

/// Activate a device
#[utoipa::path(post, path = "/v1/licenses/{id}/activations", tag = "activations",
    description = "Takes one of the license's device seats and returns a device-bound key (the license signed again for this fingerprint); 200 with the existing activation if the device has one. Needs `issue`.",
    params(("id" = String, Path, description = "license id (32 hex digits)", example = "7c1e5bd0a2f94c3e8d6b0f1a2c3d4e5f")),
    request_body = ActivateRequest,
    responses(
        (status = 201, description = "a new activation", body = Activation),
        (status = 200, description = "the device's existing activation", body = Activation),
        (status = 409, description = "`license-revoked`, `license-suspended`, `license-expired` (grace included), `device-limit` (every seat is taken) or `no-active-key`", body = ProblemSchema, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(crate) async fn activate(
    axum::extract::State(s): axum::extract::State<S>,
    c: Caller,
    p: Result<Path<String>, PathRejection>,
    Body(b): Body<ActivateRequest>,
) -> ApiResult {
    let id = path(p)?;
    let ctx = c.ctx(&s);
    let out = with_active_key(&s, c.org(), |signer| {
        let (s, c, id, b, ctx) = (&s, &c, &id, &b, &ctx);
        async move {
            Ok(s.store
                .org_activate(c.org(), &signer, id, &b.fingerprint, b.device_match, ctx)
                .await?)
        }
    })
    .await?;
    match out {
        Ok(Activated::New(a)) => Ok(json_response(
            StatusCode::CREATED,
            &Activation::seen_by(a, &c),
        )),
        Ok(Activated::Existing(a)) => {
            Ok(json_response(StatusCode::OK, &Activation::seen_by(a, &c)))
        }
        Err(Refused::NotFound) => Err(Problem::not_found("license")),
        Err(Refused::Revoked) => Err(Problem::new(
            StatusCode::CONFLICT,
            "license-revoked",
            "the license is revoked",
        )),
        Err(Refused::Expired { expired_at }) => Err(Problem::new(
            StatusCode::CONFLICT,
            "license-expired",
            format!("the license expired at {expired_at}"),
        )),
        Err(Refused::Suspended) => Err(Problem::new(
            StatusCode::CONFLICT,
            "license-suspended",
            "the license is suspended",
        )),
        Err(Refused::DeviceLimit { max_devices }) => Err(Problem::new(
            StatusCode::CONFLICT,
            "device-limit",
            format!(
                "all {max_devices} device seats of this license are taken; deactivate a device first"
            ),
        )),
    }
}

/// List a license's activations
#[utoipa::path(get, path = "/v1/licenses/{id}/activations", tag = "activations",
    description = "The license's activations in pages, by id, deactivated ones included; device keys redacted for tokens with `read` alone. Needs `read`.",
    params(("id" = String, Path, description = "license id (32 hex digits)", example = "7c1e5bd0a2f94c3e8d6b0f1a2c3d4e5f"), PageQuery),
    responses((status = 200, description = "a page of activations", body = ActivationPage)),
    security(("bearer" = [])))]
pub(crate) async fn list_activations(
    axum::extract::State(s): axum::extract::State<S>,
    c: Caller,
    p: Result<Path<String>, PathRejection>,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> ApiResult {
    let id = path(p)?;
    let q = query(q)?;
    let (after, limit) = page_args(q.cursor, q.limit, object_id("act_"))?;
    let rows = s
        .store
        .org_activations(c.org(), &id, after.as_deref(), limit)
        .await?
        .ok_or_else(|| Problem::not_found("license"))?;
    Ok(ActivationPage::answer(
        rows,
        limit,
        |a| a.activation_id.clone(),
        |a| Activation::seen_by(a, &c),
    ))
}

/// Deactivate a device
#[utoipa::path(post, path = "/v1/licenses/{id}/activations/{activation_id}/deactivate", tag = "activations",
    description = "Frees the device's seat. Needs `issue`.",
    params(("id" = String, Path, description = "license id (32 hex digits)", example = "7c1e5bd0a2f94c3e8d6b0f1a2c3d4e5f"), ("activation_id" = String, Path, description = "activation id (`act_...`)")),
    responses((status = 200, description = "the deactivated activation", body = Activation)),
    security(("bearer" = [])))]
pub(crate) async fn deactivate(
    axum::extract::State(s): axum::extract::State<S>,
    c: Caller,
    p: Result<Path<(String, String)>, PathRejection>,
) -> ApiResult {
    let (id, act) = p
        .map(|Path(t)| t)
        .map_err(|e| Problem::bad_request(format!("bad path: {}", e.body_text())))?;
    let a = s
        .store
        .org_deactivate(c.org(), &id, &act, &c.ctx(&s))
        .await?
        .ok_or_else(|| Problem::not_found("activation"))?;
    Ok(json_response(StatusCode::OK, &Activation::seen_by(a, &c)))
}
