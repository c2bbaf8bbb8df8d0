//! `/v1/webhooks`: the organisation's webhook endpoints, their deliveries
//! and replays (admin). See [`keyseal_issuer::webhooks`] for what is sent,
//! when and how it is signed, and [`crate::webhooks`] for where it may go.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use keyseal_issuer::store::{EndpointPatch, Replay};
use keyseal_issuer::webhooks::{self as hooks, Attempt, Delivery, Endpoint};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::extract::{Body, Caller, PageQuery, object_id, page_args, path, query};
use super::{ApiResult, S, json_response};
use crate::problem::Problem;

/// A webhook endpoint to register.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewEndpoint {
    /// Where events are posted: `https://` and a public host (plain
    /// `http://` and private addresses only on a service started with
    /// `--webhooks-to-private-networks`); at most 2,000 bytes, no user or
    /// password, no fragment.
    #[schema(
        example = "https://store.example.com/keyseal/events",
        max_length = 2000
    )]
    url: String,
    /// What it is for (at most 200 bytes).
    #[schema(example = "store backend", max_length = 200)]
    description: Option<String>,
    /// The event types it gets (none or empty: every type).
    #[schema(example = json!(["license.created", "license.revoked"]))]
    events: Option<Vec<String>>,
    /// Its signing secret, `whsec_` and the base64 of 24 to 64 random
    /// bytes (default: a new one of 32 bytes; read it with
    /// `GET /v1/webhooks/{endpoint_id}/secret`).
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    secret: Option<String>,
}

/// A change to an endpoint: what is given changes.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EndpointChange {
    /// A new URL (as when registering).
    url: Option<String>,
    /// A new description.
    description: Option<String>,
    /// A new subscription (empty: every type).
    events: Option<Vec<String>>,
    /// `false` disables it (its deliveries wait); `true` enables it and
    /// resumes its queue where it stopped.
    enabled: Option<bool>,
}

/// A webhook endpoint (never its secret).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct WebhookEndpoint {
    /// `whe_` and hex digits.
    #[schema(example = "whe_0a1b2c3d4e5f6071")]
    endpoint_id: String,
    url: String,
    description: String,
    /// The event types it gets (empty: every type).
    events: Vec<String>,
    /// Unix seconds (UTC).
    created_at: u64,
    /// When it was disabled (unix seconds): its deliveries wait.
    #[schema(required = true)]
    disabled_at: Option<u64>,
    /// Why it was disabled.
    #[schema(required = true)]
    disabled_reason: Option<String>,
    /// Deliveries waiting to be sent.
    pending: u64,
}

impl From<Endpoint> for WebhookEndpoint {
    fn from(e: Endpoint) -> Self {
        Self {
            endpoint_id: e.endpoint_id,
            url: e.url,
            description: e.description,
            events: e.events,
            created_at: e.created_at,
            disabled_at: e.disabled_at,
            disabled_reason: e.disabled_reason,
            pending: e.pending,
        }
    }
}

/// A page of webhook endpoints.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct WebhookEndpointPage {
    items: Vec<WebhookEndpoint>,
    /// Give it as `cursor` for the next page; `null` on the last page.
    #[schema(required = true)]
    next_cursor: Option<String>,
}

/// An endpoint's signing secret.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct WebhookSecret {
    /// `whsec_` and base64: the key of the `v1` signatures in
    /// `webhook-signature` (Standard Webhooks).
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    secret: String,
}

/// A delivery of an event to an endpoint.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct WebhookDelivery {
    /// `whd_` and hex digits; an endpoint's deliveries sort by id in the
    /// order they are sent.
    delivery_id: String,
    /// The event (its `webhook-id` header).
    event_id: String,
    event_type: String,
    /// `pending`, `delivered` or `failed` (its retries ran out).
    #[schema(example = "delivered")]
    status: String,
    attempts: u64,
    /// When the next attempt is due (pending only; unix seconds).
    #[schema(required = true)]
    next_at: Option<u64>,
    /// The last attempt's HTTP status, if it got an answer.
    #[schema(required = true)]
    last_status: Option<u64>,
    /// What went wrong on the last attempt.
    #[schema(required = true)]
    last_error: Option<String>,
    /// When it was queued (unix seconds).
    created_at: u64,
    /// When it was delivered or given up on (unix seconds).
    #[schema(required = true)]
    done_at: Option<u64>,
    /// Every attempt, oldest first (one delivery's answer only).
    #[serde(skip_serializing_if = "Option::is_none")]
    attempt_log: Option<Vec<WebhookAttempt>>,
}

impl From<Delivery> for WebhookDelivery {
    fn from(d: Delivery) -> Self {
        Self {
            delivery_id: d.delivery_id,
            event_id: d.event_id,
            event_type: d.event_type,
            status: d.status,
            attempts: d.attempts,
            next_at: d.next_at,
            last_status: d.last_status,
            last_error: d.last_error,
            created_at: d.created_at,
            done_at: d.done_at,
            attempt_log: None,
        }
    }
}

/// One attempt to send a delivery.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct WebhookAttempt {
    attempt: u64,
    /// Unix seconds (UTC).
    at: u64,
    /// The endpoint's HTTP status, if it answered.
    #[schema(required = true)]
    status: Option<u64>,
    /// What went wrong, if anything did.
    #[schema(required = true)]
    error: Option<String>,
    /// How long it took (milliseconds).
    millis: u64,
}

impl From<Attempt> for WebhookAttempt {
    fn from(a: Attempt) -> Self {
        Self {
            attempt: a.attempt,
            at: a.at,
            status: a.status,
            error: a.error,
            millis: a.millis,
        }
    }
}

/// A page of deliveries, newest first.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct WebhookDeliveryPage {
    items: Vec<WebhookDelivery>,
    /// Give it as `cursor` for the next (older) page; `null` on the last.
    #[schema(required = true)]
    next_cursor: Option<String>,
}

/// What to send again: one event, or what the endpoint has not been
/// delivered since a time. Give exactly one.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReplayBody {
    /// One event (`evt_...`), delivered or not.
    event_id: Option<String>,
    /// Every event of the endpoint's types since this time (unix seconds)
    /// it has not been delivered, or whose delivery failed (at most
    /// 10,000; events are kept 30 days).
    since: Option<u64>,
}

/// How many deliveries a replay queued.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Replayed {
    queued: u64,
}

/// The deliveries list's query.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct DeliveryQuery {
    /// Only `pending`, `delivered` or `failed` ones.
    status: Option<String>,
    /// A `next_cursor` from the previous page, unchanged.
    cursor: Option<String>,
    /// Items on the page, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u64>,
}

fn target(s: &S, url: &str) -> Result<(), Problem> {
    crate::webhooks::check_target(url, &s.webhooks).map_err(Problem::invalid)
}

/// Register a webhook endpoint
#[utoipa::path(post, path = "/v1/webhooks", tag = "webhooks",
    description = "Registers an endpoint that gets the organisation's events (`license.created`, `license.revoked`, `license.suspended`, `license.resumed`, `license.renewed`, `activation.created`, `activation.released`, `lease.lapsed`, `key.rotated`, `key.revoked`, `revocation_list.published`, `webhook_endpoint.disabled`) as Standard Webhooks: signed `webhook-id`, `webhook-timestamp` and `webhook-signature` headers, one at a time in order, retried for 4 days. At most 16 per organisation (409 `limit-reached`). Needs `admin`.",
    request_body = NewEndpoint,
    responses((status = 201, description = "the endpoint", body = WebhookEndpoint)),
    security(("bearer" = [])))]
pub(crate) async fn create_webhook(
    axum::extract::State(s): axum::extract::State<S>,
    c: Caller,
    Body(b): Body<NewEndpoint>,
) -> ApiResult {
    hooks::check_url(&b.url)?;
    target(&s, &b.url)?;
    let secret = match b.secret {
        Some(x) => zeroize::Zeroizing::new(x),
        None => hooks::new_secret().map_err(|_| Problem::internal())?,
    };
    let e = s
        .store
        .create_webhook(
            c.org(),
            &b.url,
            b.description.as_deref().unwrap_or(""),
            b.events.as_deref().unwrap_or(&[]),
            &secret,
            &c.ctx(&s),
        )
        .await?;
    Ok(json_response(
        StatusCode::CREATED,
        &WebhookEndpoint::from(e),
    ))
}

/// List webhook endpoints
#[utoipa::path(get, path = "/v1/webhooks", tag = "webhooks",
    description = "The organisation's endpoints, by id. Needs `admin`.",
    params(PageQuery),
    responses((status = 200, description = "a page of endpoints", body = WebhookEndpointPage)),
    security(("bearer" = [])))]
pub(crate) async fn list_webhooks(
    axum::extract::State(s): axum::extract::State<S>,
    c: Caller,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> ApiResult {
    let q = query(q)?;
    let (after, limit) = page_args(q.cursor, q.limit, object_id("whe_"))?;
    let rows = s
        .store
        .org_webhooks(c.org(), after.as_deref(), limit)
        .await?;
    let next_cursor = (rows.len() as u64 == limit)
        .then(|| rows.last().map(|e| e.endpoint_id.clone()))
        .flatten();
    let items = rows.into_iter().map(WebhookEndpoint::from).collect();
    Ok(json_response(
        StatusCode::OK,
        &WebhookEndpointPage { items, next_cursor },
    ))
}

/// Get a webhook endpoint
#[utoipa::path(get, path = "/v1/webhooks/{endpoint_id}", tag = "webhooks",
    description = "One endpoint. Needs `admin`.",
    params(("endpoint_id" = String, Path, description = "endpoint id (`whe_...`)")),
    responses((status = 200, description = "the endpoint", body = WebhookEndpoint)),
    security(("bearer" = [])))]
pub(crate) async fn get_webhook(
    axum::extract::State(s): axum::extract::State<S>,
    c: Caller,
    p: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let id = path(p)?;
    let e = s
        .store
        .org_webhook(c.org(), &id)
        .await?
        .ok_or_else(|| Problem::not_found("webhook endpoint"))?;
    Ok(json_response(StatusCode::OK, &WebhookEndpoint::from(e)))
}

/// Change a webhook endpoint
#[utoipa::path(post, path = "/v1/webhooks/{endpoint_id}", tag = "webhooks",
    description = "Changes what is given: URL, description, events, or `enabled` (enabling a disabled endpoint resumes its queue where it stopped; send failed deliveries again with a replay). Needs `admin`.",
    params(("endpoint_id" = String, Path, description = "endpoint id (`whe_...`)")),
    request_body = EndpointChange,
    responses((status = 200, description = "the endpoint", body = WebhookEndpoint)),
    security(("bearer" = [])))]
pub(crate) async fn update_webhook(
    axum::extract::State(s): axum::extract::State<S>,
    c: Caller,
    p: Result<Path<String>, PathRejection>,
    Body(b): Body<EndpointChange>,
) -> ApiResult {
    let id = path(p)?;
    if let Some(url) = &b.url {
        hooks::check_url(url)?;
        target(&s, url)?;
    }
    let patch = EndpointPatch {
        url: b.url,
        description: b.description,
        events: b.events,
        enabled: b.enabled,
    };
    let e = s
        .store
        .update_webhook(c.org(), &id, &patch, &c.ctx(&s))
        .await?
        .ok_or_else(|| Problem::not_found("webhook endpoint"))?;
    Ok(json_response(StatusCode::OK, &WebhookEndpoint::from(e)))
}

/// Delete a webhook endpoint
#[utoipa::path(delete, path = "/v1/webhooks/{endpoint_id}", tag = "webhooks",
    description = "Deletes the endpoint with its deliveries (pending ones are not sent). Needs `admin`.",
    params(("endpoint_id" = String, Path, description = "endpoint id (`whe_...`)")),
    responses((status = 204, description = "deleted")),
    security(("bearer" = [])))]
pub(crate) async fn delete_webhook(
    axum::extract::State(s): axum::extract::State<S>,
    c: Caller,
    p: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let id = path(p)?;
    if !s.store.delete_webhook(c.org(), &id, &c.ctx(&s)).await? {
        return Err(Problem::not_found("webhook endpoint"));
    }
    Ok(axum::response::IntoResponse::into_response(
        StatusCode::NO_CONTENT,
    ))
}

/// Read a webhook endpoint's secret
#[utoipa::path(get, path = "/v1/webhooks/{endpoint_id}/secret", tag = "webhooks",
    description = "The endpoint's signing secret, for its receiver's configuration. The service keeps it sealed; it is never in another answer, a log or the audit log. Needs `admin`.",
    params(("endpoint_id" = String, Path, description = "endpoint id (`whe_...`)")),
    responses((status = 200, description = "the secret", body = WebhookSecret)),
    security(("bearer" = [])))]
pub(crate) async fn webhook_secret(
    axum::extract::State(s): axum::extract::State<S>,
    c: Caller,
    p: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let id = path(p)?;
    let secret = s
        .store
        .webhook_secret(c.org(), &id)
        .await?
        .ok_or_else(|| Problem::not_found("webhook endpoint"))?;
    Ok(json_response(
        StatusCode::OK,
        &WebhookSecret {
            secret: secret.to_string(),
        },
    ))
}

/// Rotate a webhook endpoint's secret
#[utoipa::path(post, path = "/v1/webhooks/{endpoint_id}/rotate-secret", tag = "webhooks",
    description = "Gives the endpoint a new signing secret (read it with `GET .../secret`). For a day the old one signs too: each request carries both signatures, so the receiver can switch in that time. Needs `admin`.",
    params(("endpoint_id" = String, Path, description = "endpoint id (`whe_...`)")),
    responses((status = 200, description = "the endpoint", body = WebhookEndpoint)),
    security(("bearer" = [])))]
pub(crate) async fn rotate_webhook_secret(
    axum::extract::State(s): axum::extract::State<S>,
    c: Caller,
    p: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let id = path(p)?;
    let secret = hooks::new_secret().map_err(|_| Problem::internal())?;
    let e = s
        .store
        .rotate_webhook_secret(c.org(), &id, &secret, &c.ctx(&s))
        .await?
        .ok_or_else(|| Problem::not_found("webhook endpoint"))?;
    Ok(json_response(StatusCode::OK, &WebhookEndpoint::from(e)))
}

/// List an endpoint's deliveries
#[utoipa::path(get, path = "/v1/webhooks/{endpoint_id}/deliveries", tag = "webhooks",
    description = "The endpoint's deliveries, newest first (finished ones are kept 30 days). Needs `admin`.",
    params(("endpoint_id" = String, Path, description = "endpoint id (`whe_...`)"), DeliveryQuery),
    responses((status = 200, description = "a page of deliveries", body = WebhookDeliveryPage)),
    security(("bearer" = [])))]
pub(crate) async fn list_deliveries(
    axum::extract::State(s): axum::extract::State<S>,
    c: Caller,
    p: Result<Path<String>, PathRejection>,
    q: Result<Query<DeliveryQuery>, QueryRejection>,
) -> ApiResult {
    let id = path(p)?;
    let q = query(q)?;
    if let Some(st) = &q.status
        && !["pending", "delivered", "failed"].contains(&st.as_str())
    {
        return Err(Problem::invalid(
            "status must be pending, delivered or failed",
        ));
    }
    let (before, limit) = page_args(q.cursor, q.limit, object_id("whd_"))?;
    let rows = s
        .store
        .webhook_deliveries(c.org(), &id, q.status.as_deref(), before.as_deref(), limit)
        .await?
        .ok_or_else(|| Problem::not_found("webhook endpoint"))?;
    let next_cursor = (rows.len() as u64 == limit)
        .then(|| rows.last().map(|d| d.delivery_id.clone()))
        .flatten();
    let items = rows.into_iter().map(WebhookDelivery::from).collect();
    Ok(json_response(
        StatusCode::OK,
        &WebhookDeliveryPage { items, next_cursor },
    ))
}

/// Get a delivery and its attempts
#[utoipa::path(get, path = "/v1/webhooks/{endpoint_id}/deliveries/{delivery_id}", tag = "webhooks",
    description = "One delivery, with every attempt: when, the endpoint's status or what failed, how long it took. Needs `admin`.",
    params(
        ("endpoint_id" = String, Path, description = "endpoint id (`whe_...`)"),
        ("delivery_id" = String, Path, description = "delivery id (`whd_...`)"),
    ),
    responses((status = 200, description = "the delivery", body = WebhookDelivery)),
    security(("bearer" = [])))]
pub(crate) async fn get_delivery(
    axum::extract::State(s): axum::extract::State<S>,
    c: Caller,
    p: Result<Path<(String, String)>, PathRejection>,
) -> ApiResult {
    let Path((endpoint, delivery)) =
        p.map_err(|e| Problem::bad_request(format!("bad path: {}", e.body_text())))?;
    let (d, attempts) = s
        .store
        .webhook_delivery(c.org(), &endpoint, &delivery)
        .await?
        .ok_or_else(|| Problem::not_found("webhook delivery"))?;
    let mut d = WebhookDelivery::from(d);
    d.attempt_log = Some(attempts.into_iter().map(WebhookAttempt::from).collect());
    Ok(json_response(StatusCode::OK, &d))
}

/// Send events to an endpoint again
#[utoipa::path(post, path = "/v1/webhooks/{endpoint_id}/replay", tag = "webhooks",
    description = "Queues one event again (`event_id`), or every event of the endpoint's types since a time that it has not been delivered (`since`), after everything queued so far; each goes out with its own `webhook-id`, which a receiver that saw it already drops. A disabled endpoint gets them once enabled. Needs `admin`.",
    params(("endpoint_id" = String, Path, description = "endpoint id (`whe_...`)")),
    request_body = ReplayBody,
    responses((status = 202, description = "how many deliveries were queued", body = Replayed)),
    security(("bearer" = [])))]
pub(crate) async fn replay(
    axum::extract::State(s): axum::extract::State<S>,
    c: Caller,
    p: Result<Path<String>, PathRejection>,
    Body(b): Body<ReplayBody>,
) -> ApiResult {
    let id = path(p)?;
    let what = match (b.event_id, b.since) {
        // Not an event id this service makes: no such event.
        (Some(e), None) if object_id("evt_")(&e).is_none() => {
            return Err(Problem::not_found("webhook endpoint or event"));
        }
        (Some(e), None) => Replay::Event(e),
        (None, Some(t)) => Replay::Since(t),
        _ => return Err(Problem::invalid("give either event_id or since")),
    };
    let queued = s
        .store
        .replay_webhook(c.org(), &id, &what, &c.ctx(&s))
        .await?
        .ok_or_else(|| {
            Problem::not_found(if matches!(what, Replay::Event(_)) {
                "webhook endpoint or event"
            } else {
                "webhook endpoint"
            })
        })?;
    Ok(json_response(StatusCode::ACCEPTED, &Replayed { queued }))
}
