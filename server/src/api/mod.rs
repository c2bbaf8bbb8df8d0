//! The HTTP API: the router, its middleware, and one module per resource.
//! Every handler that touches an organisation's objects gets the
//! organisation from the caller's token and passes it to the store, which
//! puts it in every `WHERE` clause. Each handler's `#[utoipa::path]`
//! annotation both registers its route and documents it
//! ([`crate::openapi`]).

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::problem::Problem;
use crate::{MAX_BODY, State};

mod activations;
mod allotments;
mod audit;
mod customers;
mod extract;
mod keys;
pub(crate) mod leases;
mod licenses;
mod payments;
mod products;
mod public;
mod tokens;
mod trials;
mod views;
mod webhooks;

pub(crate) use extract::Caller;
pub use licenses::fuzz_request_bodies;
pub(crate) use licenses::{mint_for, publish, require_active_key};
pub(crate) use public::{ListFile, refresh_lists};

type S = Arc<State>;

/// How long a token stays cached after it was last read from the ledger.
const TOKEN_CACHE_SECS: u64 = crate::TOKEN_CACHE_SECS;
type ApiResult = Result<Response, Problem>;

/// Every route, each registered with its documentation.
pub(crate) fn routes() -> OpenApiRouter<S> {
    OpenApiRouter::new()
        .routes(routes!(public::healthz))
        .routes(routes!(public::readyz))
        .routes(routes!(public::metrics))
        .routes(routes!(public::openapi))
        .routes(routes!(public::keyring))
        .routes(routes!(public::revocations))
        .routes(routes!(public::org_keyring))
        .routes(routes!(public::org_revocations))
        .routes(routes!(leases::activate_seat))
        .routes(routes!(leases::check_in))
        .routes(routes!(leases::release_seat))
        .routes(routes!(products::list_products, products::create_product))
        .routes(routes!(products::get_product))
        .routes(routes!(products::set_lease_policy))
        .routes(routes!(trials::get_trial_policy, trials::set_trial_policy))
        .routes(routes!(trials::start_trial))
        .routes(routes!(
            customers::list_customers,
            customers::create_customer
        ))
        .routes(routes!(customers::get_customer))
        .routes(routes!(customers::export_customer))
        .routes(routes!(customers::erase_customer))
        .routes(routes!(licenses::list_licenses, licenses::mint))
        .routes(routes!(licenses::get_license))
        .routes(routes!(licenses::revoke))
        .routes(routes!(licenses::suspend))
        .routes(routes!(licenses::resume))
        .routes(routes!(
            activations::list_activations,
            activations::activate
        ))
        .routes(routes!(activations::deactivate))
        .routes(routes!(leases::answer_activation_request))
        .routes(routes!(allotments::list_allotments, allotments::allot))
        .routes(routes!(allotments::revoke_relay))
        .routes(routes!(allotments::renew_allotment))
        .routes(routes!(keys::list_keys))
        .routes(routes!(keys::rotate_key))
        .routes(routes!(keys::retire_key))
        .routes(routes!(keys::revoke_key))
        .routes(routes!(tokens::list_tokens, tokens::create_token))
        .routes(routes!(tokens::revoke_token))
        .routes(routes!(audit::audit))
        .routes(routes!(webhooks::list_webhooks, webhooks::create_webhook))
        .routes(routes!(
            webhooks::get_webhook,
            webhooks::update_webhook,
            webhooks::delete_webhook
        ))
        .routes(routes!(webhooks::webhook_secret))
        .routes(routes!(webhooks::rotate_webhook_secret))
        .routes(routes!(webhooks::list_deliveries))
        .routes(routes!(webhooks::get_delivery))
        .routes(routes!(webhooks::replay))
        .routes(routes!(payments::get_stripe, payments::set_stripe))
        .routes(routes!(payments::list_prices, payments::set_price))
        .routes(routes!(payments::get_price, payments::delete_price))
        .routes(routes!(payments::list_payment_events))
        .routes(routes!(
            payments::get_email,
            payments::set_email,
            payments::delete_email
        ))
        .routes(routes!(payments::stripe_event))
}

pub(crate) fn router(state: S) -> Router {
    let (router, _) = routes().split_for_parts();
    router
        .fallback(|| async { Problem::not_found("route") })
        .method_not_allowed_fallback(|| async {
            Problem::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "this route does not take that method",
            )
        })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::idempotency::layer,
        ))
        .layer(middleware::from_fn(guard))
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .with_state(state)
}

/// Refuses a path or query that decodes to a control character (400): no
/// id, name or filter contains one, and PostgreSQL refuses a NUL in text
/// outright. Marks every answer that is not public `Cache-Control:
/// no-store`: they carry tokens, keys or personal data, or are scoped to a
/// caller.
async fn guard(req: Request, next: Next) -> Response {
    if let Some(what) = control_in_uri(req.uri()) {
        return Problem::bad_request(format!("the {what} contains a control character"))
            .into_response();
    }
    let public = {
        let p = req.uri().path();
        p.starts_with("/v1/public/") || p == "/v1/openapi.json" || !p.starts_with("/v1/")
    };
    let mut resp = next.run(req).await;
    if !public {
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

/// Which part of `uri` (`"path"` or `"query"`) has a percent-encoded
/// control character (`%00`–`%1F`, `%7F`); raw ones never reach here
/// (hyper refuses them).
fn control_in_uri(uri: &axum::http::Uri) -> Option<&'static str> {
    fn has(s: &str) -> bool {
        s.as_bytes().windows(3).any(|w| {
            w[0] == b'%'
                && matches!(
                    (w[1].to_ascii_uppercase(), w[2].to_ascii_uppercase()),
                    (b'0' | b'1', b'0'..=b'9' | b'A'..=b'F') | (b'7', b'F')
                )
        })
    }
    if has(uri.path()) {
        Some("path")
    } else if uri.query().is_some_and(has) {
        Some("query")
    } else {
        None
    }
}

/// The response header with the request's id.
pub(crate) const REQUEST_ID: &str = "x-request-id";

/// A request id: the client's `X-Request-Id` when it is 1 to 64 letters,
/// digits, `-`, `_` or `.` (so a proxy's id follows the request), else 16
/// random hex digits.
fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            (1..=64).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        })
        .map_or_else(
            || {
                let mut b = [0u8; 8];
                let _ = getrandom::fill(&mut b);
                keyseal_core::hex::encode(&b)
            },
            str::to_owned,
        )
}

/// Records every request in the metrics and the access log, under its
/// request id (also in the `X-Request-Id` response header, and on every log
/// line written while it runs). The log has the method, the route template
/// (never the path: ids stay out), the status and the time taken; never a
/// token, key, address or personal data.
async fn track(
    axum::extract::State(state): axum::extract::State<S>,
    req: Request,
    next: Next,
) -> Response {
    use tracing::Instrument as _;
    let start = Instant::now();
    let method = crate::metrics::method_label(req.method());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let id = request_id(req.headers());
    let span = tracing::info_span!("request", id = %id);
    let mut resp = next.run(req).instrument(span.clone()).await;
    let took = start.elapsed();
    let status = resp.status().as_u16();
    state.metrics.record(method, &route, status, took);
    span.in_scope(|| {
        tracing::info!(
            target: "keyseal::access",
            method,
            route = %route,
            status,
            ms = took.as_secs_f64() * 1000.0,
        );
    });
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID, v);
    }
    resp
}

pub(crate) fn json_response(status: StatusCode, v: &impl Serialize) -> Response {
    (status, Json(v)).into_response()
}

/// A cacheable public document: strong ETag over the body, 304 on a match.
pub(crate) fn cacheable(
    headers: &HeaderMap,
    content_type: &'static str,
    body: Vec<u8>,
) -> Response {
    let etag = etag_of(&body);
    cacheable_with(headers, content_type, body.into(), &etag)
}

/// A strong ETag: the first 128 bits of the body's SHA-256, quoted.
pub(crate) fn etag_of(body: &[u8]) -> HeaderValue {
    use sha2::{Digest, Sha256};
    let tag = format!(
        "\"{}\"",
        &keyseal_core::hex::encode(&Sha256::digest(body))[..32]
    );
    // Hex digits and quotes: always a valid header value.
    HeaderValue::from_str(&tag).unwrap_or_else(|_| HeaderValue::from_static("\"\""))
}

/// `body` with its `etag`, or 304 when `If-None-Match` names it.
pub(crate) fn cacheable_with(
    headers: &HeaderMap,
    content_type: &'static str,
    body: Bytes,
    etag: &HeaderValue,
) -> Response {
    let matches = not_modified(headers, etag);
    let mut r = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (StatusCode::OK, body).into_response()
    };
    let h = r.headers_mut();
    if !matches {
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    h.insert(header::ETAG, etag.clone());
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    r
}

/// Whether the request's `If-None-Match` names `etag` (a 304).
pub(crate) fn not_modified(headers: &HeaderMap, etag: &HeaderValue) -> bool {
    let tag = etag.to_str().unwrap_or_default();
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"))
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
