//! `Idempotency-Key` on every `POST` under `/v1` (but `POST /v1/tokens`,
//! whose response holds a secret the service never stores): the first
//! request with a key runs, its response is recorded, and a retry with the
//! same key and the same request within 24 hours gets that response again
//! (`Idempotent-Replayed: true`) without a second effect. The same key with
//! another request is a 409 `idempotency-key-reused`. Duplicates that
//! arrive while the first runs wait for its answer (up to
//! [`WAIT_FOR_FIRST`], then 409 `idempotency-key-in-use`). The key's state
//! lives in the ledger (`keyseal_issuer::idempotency`), so replicas share
//! it. A mint records its response in the transaction that records the
//! license; every other request's committed writes note their effect on
//! the claim in their own transaction, so if the service dies before the
//! response is recorded, a retry gets 409 `idempotency-key-unanswered`
//! instead of a second effect.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, Request};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use keyseal_issuer::idempotency::{Claim, StoredResponse};
use sha2::{Digest, Sha256};

use crate::api::Caller;
use crate::problem::Problem;
use crate::{MAX_BODY, State};

/// The request header.
pub const HEADER: &str = "idempotency-key";
/// The response header on a replayed response.
pub const REPLAYED: &str = "idempotent-replayed";
/// How long a duplicate waits for the first request with its key.
pub const WAIT_FOR_FIRST: Duration = Duration::from_secs(10);
/// How often a waiting duplicate looks again.
const POLL: Duration = Duration::from_millis(25);
/// Largest response recorded (far above any this API gives).
const MAX_RESPONSE: usize = 4 * 1024 * 1024;

pub(crate) async fn layer(
    axum::extract::State(s): axum::extract::State<std::sync::Arc<State>>,
    req: Request,
    next: Next,
) -> Response {
    // Apps' lease requests (`/v1/public/leases`) carry no token to scope a
    // key to, and are safe to retry as they are.
    if req.method() != Method::POST
        || !req.uri().path().starts_with("/v1/")
        || req.uri().path().starts_with("/v1/public/")
    {
        return next.run(req).await;
    }
    let Some(key) = req.headers().get(HEADER) else {
        return next.run(req).await;
    };
    let Some(key) = key
        .to_str()
        .ok()
        .filter(|k| keyseal_issuer::idempotency::valid_key(k))
        .map(str::to_owned)
    else {
        return Problem::bad_request(format!(
            "Idempotency-Key: give 1 to {} visible ASCII characters",
            keyseal_issuer::idempotency::MAX_KEY_LEN
        ))
        .into_response();
    };
    if req.uri().path() == "/v1/tokens" {
        return Problem::bad_request(
            "POST /v1/tokens takes no Idempotency-Key: its response holds a new secret, \
             which the service never stores",
        )
        .into_response();
    }
    let (mut parts, body) = req.into_parts();
    // Who asks: the key is the organisation's. An unauthenticated request
    // is answered as the handler would answer it.
    let caller = match Caller::from_request_parts(&mut parts, &s).await {
        Ok(c) => c,
        Err(p) => return p.into_response(),
    };
    let org = caller.org().to_owned();
    let Ok(read) =
        tokio::time::timeout(s.network.body_timeout, axum::body::to_bytes(body, MAX_BODY)).await
    else {
        return Problem::body_timeout(s.network.body_timeout).into_response();
    };
    let Ok(bytes) = read else {
        return Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body-too-large",
            format!("the body is larger than {MAX_BODY} bytes"),
        )
        .into_response();
    };
    let hash = request_hash(&parts.method, parts.uri.path(), &bytes);
    let waited_from = tokio::time::Instant::now();
    loop {
        match s.store.idempotency_claim(&org, &key, &hash, s.now()).await {
            Err(e) => return Problem::from(e).into_response(),
            Ok(Claim::New) => break,
            Ok(Claim::Replay(r)) => return replay(&r),
            Ok(Claim::Mismatch) => {
                return Problem::new(
                    StatusCode::CONFLICT,
                    "idempotency-key-reused",
                    "this Idempotency-Key was used with another request (method, path or body) \
                     in the last 24 hours; use a new key for a new request",
                )
                .into_response();
            }
            Ok(Claim::Unanswered) => {
                return Problem::new(
                    StatusCode::CONFLICT,
                    "idempotency-key-unanswered",
                    "the first request with this Idempotency-Key took effect, but the service \
                     stopped before recording its answer: read the object it made or changed \
                     (GET) instead of retrying; this key stays refused for 24 hours",
                )
                .into_response();
            }
            Ok(Claim::Pending) if waited_from.elapsed() < WAIT_FOR_FIRST => {
                tokio::time::sleep(POLL).await;
            }
            Ok(Claim::Pending) => {
                let mut r = Problem::new(
                    StatusCode::CONFLICT,
                    "idempotency-key-in-use",
                    "a request with this Idempotency-Key is still running; try again shortly",
                )
                .into_response();
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                return r;
            }
        }
    }
    parts.extensions.insert(ClaimedKey(key.clone()));
    // Every write the request commits notes its effect on the claim, in
    // the same transaction (`Claim::Unanswered` if the answer is lost).
    let claimed = keyseal_issuer::idempotency::Claimed {
        org_id: org.clone(),
        key: key.clone(),
    };
    let resp = keyseal_issuer::idempotency::with_claim(
        claimed,
        next.run(Request::from_parts(parts, Body::from(bytes))),
    )
    .await;
    let (rparts, rbody) = resp.into_parts();
    if rparts.extensions.get::<RecordedWithEffect>().is_some() {
        return Response::from_parts(rparts, rbody);
    }
    let Ok(rbytes) = axum::body::to_bytes(rbody, MAX_RESPONSE).await else {
        let _ = s.store.idempotency_release(&org, &key).await;
        return Problem::internal().into_response();
    };
    match String::from_utf8(rbytes.to_vec()) {
        Ok(body) if !rparts.status.is_server_error() => {
            let stored = StoredResponse {
                status: rparts.status.as_u16(),
                content_type: rparts
                    .headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("application/json")
                    .to_owned(),
                body,
            };
            // The effect happened: if the record fails, the claim is taken
            // over after a minute (`ABANDONED_AFTER`) and a retry then runs
            // again; say so in the log.
            if let Err(e) = s.store.idempotency_finish(&org, &key, &stored).await {
                tracing::error!(error = %crate::problem::chain(&e), "recording an idempotent response");
            }
        }
        // A failure of ours: a retry runs the request again.
        _ => {
            if let Err(e) = s.store.idempotency_release(&org, &key).await {
                tracing::error!(error = %crate::problem::chain(&e), "releasing an idempotency key");
            }
        }
    }
    Response::from_parts(rparts, Body::from(rbytes))
}

/// A request extension: the idempotency key this request claimed (a
/// handler may record its response in its own transaction).
#[derive(Debug, Clone)]
pub(crate) struct ClaimedKey(pub String);

/// A response extension: the handler recorded this response for the
/// claimed key itself, in the transaction of its effect.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RecordedWithEffect;

/// SHA-256 over the method, the path and the body.
fn request_hash(method: &Method, path: &str, body: &Bytes) -> String {
    let mut h = Sha256::new();
    h.update(method.as_str().as_bytes());
    h.update([0]);
    h.update(path.as_bytes());
    h.update([0]);
    h.update(body);
    keyseal_core::hex::encode(&h.finalize())
}

fn replay(r: &StoredResponse) -> Response {
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::OK);
    let mut resp = (status, r.body.clone()).into_response();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&r.content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(REPLAYED, HeaderValue::from_static("true"));
    resp
}
