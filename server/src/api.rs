//! Routes and handlers. Every handler that touches an organisation's objects
//! gets the organisation from the caller's token and passes it to the
//! store, which puts it in every `WHERE` clause.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{
    ConnectInfo, DefaultBodyLimit, FromRequest, FromRequestParts, MatchedPath, Path, Query, Request,
};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use keyseal_issuer::KeyInfo;
use keyseal_issuer::activation::{Activated, Activation, Refused};
use keyseal_issuer::service::{
    Customer, MintJob, OrgLicense, OrgLicenseFilter, Scope, SignedMint, TokenInfo, TokenRecord,
};
use keyseal_issuer::{Context, RequestFields};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::problem::Problem;
use crate::{MAX_BODY, REVOCATION_LIST_LIFETIME, State, auth};

type S = Arc<State>;

/// How long a token stays cached after it was last read from the ledger.
const TOKEN_CACHE_SECS: u64 = crate::TOKEN_CACHE_SECS;
type ApiResult = Result<Response, Problem>;

pub(crate) fn router(state: S) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/v1/openapi.json", get(openapi))
        .route("/v1/public/keyring", get(keyring))
        .route("/v1/public/revocations", get(revocations))
        .route("/v1/public/orgs/{org_id}/keyring", get(org_keyring))
        .route("/v1/public/orgs/{org_id}/revocations", get(org_revocations))
        .route("/v1/products", get(list_products).post(create_product))
        .route("/v1/products/{product}", get(get_product))
        .route("/v1/customers", get(list_customers).post(create_customer))
        .route("/v1/customers/{id}", get(get_customer))
        .route("/v1/customers/{id}/export", get(export_customer))
        .route("/v1/customers/{id}/erase", post(erase_customer))
        .route("/v1/licenses", get(list_licenses).post(mint))
        .route("/v1/licenses/{id}", get(get_license))
        .route("/v1/licenses/{id}/revoke", post(revoke))
        .route("/v1/licenses/{id}/suspend", post(suspend))
        .route("/v1/licenses/{id}/resume", post(resume))
        .route(
            "/v1/licenses/{id}/activations",
            get(list_activations).post(activate),
        )
        .route(
            "/v1/licenses/{id}/activations/{activation_id}/deactivate",
            post(deactivate),
        )
        .route("/v1/keys", get(list_keys))
        .route("/v1/keys/rotate", post(rotate_key))
        .route("/v1/keys/{key_id}/retire", post(retire_key))
        .route("/v1/keys/{key_id}/revoke", post(revoke_key))
        .route("/v1/tokens", get(list_tokens).post(create_token))
        .route("/v1/tokens/{token_id}/revoke", post(revoke_token))
        .route("/v1/audit", get(audit))
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
                auth::hex_string(&b)
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

// ---- extractors -----------------------------------------------------------

/// The authenticated caller: its token's organisation and scopes.
pub(crate) struct Caller(TokenRecord);

impl Caller {
    fn need(&self, scope: Scope) -> Result<&TokenRecord, Problem> {
        if self.0.allows(scope) {
            Ok(&self.0)
        } else {
            Err(Problem::forbidden(scope.as_str()))
        }
    }

    pub(crate) fn org(&self) -> &str {
        &self.0.org_id
    }

    fn ctx(&self, state: &State) -> Context {
        Context {
            now: state.now(),
            actor: self.0.actor(),
        }
    }
}

/// The scope a route needs, known from the method and route alone, so it
/// is checked before the body is read or parsed, by the [`Caller`]
/// extractor every authenticated handler takes: keys and tokens need
/// `admin`, an export `read:pii`, other reads `read`, other writes `issue`.
/// This is the only table of scopes; handlers check only what depends on
/// the request (the customer list's `email` filter needs `read:pii`).
fn route_scope(method: &axum::http::Method, route: &str) -> Scope {
    if route.starts_with("/v1/keys") || route.starts_with("/v1/tokens") {
        Scope::Admin
    } else if route == "/v1/customers/{id}/export" {
        Scope::ReadPii
    } else if method == axum::http::Method::GET || method == axum::http::Method::HEAD {
        Scope::Read
    } else {
        Scope::Issue
    }
}

/// The client's address: the peer's, or the one a trusted proxy forwarded
/// ([`crate::Network::client`]).
pub(crate) fn client_ip(parts: &Parts, state: &State) -> Option<std::net::IpAddr> {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())?;
    if state.network.trusted_proxies.is_empty() {
        return Some(peer);
    }
    let forwarded: Vec<&str> = parts
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let joined = (!forwarded.is_empty()).then(|| forwarded.join(","));
    Some(state.network.client(peer, joined.as_deref()))
}

/// A client of the public endpoints within its rate
/// ([`crate::Options::public_requests_per_second`]); over it, the request
/// waits up to [`PUBLIC_WAIT`] for the allowance, then gets 429
/// `rate-limited` with `Retry-After`. Counted by address, as failed
/// authentications are (behind trusted proxies, the forwarded one).
pub(crate) struct PublicClient;

impl FromRequestParts<S> for PublicClient {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        let (Some(limiter), Some(ip)) = (&state.public_limiter, client_ip(parts, state)) else {
            return Ok(PublicClient);
        };
        // Now and then, forget clients whose allowance is full again.
        if state
            .public_seen
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            .is_multiple_of(16_384)
        {
            limiter.retain_recent();
        }
        // Over its rate, a request waits for the client's allowance rather
        // than being refused at once: a client that asks again as soon as it
        // is answered (a loop on keep-alive connections) is slowed to its
        // rate. Refused at once, it asked tens of thousands of times a
        // second, and answering those took CPU from every other tenant
        // (server/bench/lists.sh).
        use governor::clock::Clock;
        let granted = wait_for_allowance(|| {
            limiter
                .check_key(&ip)
                .map_err(|not_until| not_until.wait_time_from(limiter.clock().now()))
        })
        .await;
        if granted {
            Ok(PublicClient)
        } else {
            Err(Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                "too many requests from this client to the public endpoints; retry in a second \
                 (apps need the keyring and the revocation list every few hours, with If-None-Match)",
            ))
        }
    }
}

/// Waits until `check` grants an allowance (`Err` says how long until it
/// may), for at most [`PUBLIC_WAIT`]; false if that would take longer. The
/// public endpoints' two limits (per client, and the bytes of full lists)
/// wait this way.
async fn wait_for_allowance(mut check: impl FnMut() -> Result<(), std::time::Duration>) -> bool {
    let deadline = tokio::time::Instant::now() + PUBLIC_WAIT;
    loop {
        let Err(wait) = check() else {
            return true;
        };
        let wake = tokio::time::Instant::now() + wait;
        if wake > deadline {
            return false;
        }
        tokio::time::sleep_until(wake).await;
    }
}

/// The longest a public request over its client's rate waits for the
/// allowance before it gets 429 `rate-limited`.
pub(crate) const PUBLIC_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

impl FromRequestParts<S> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        let caller = Self::authenticate(parts, state).await?;
        // The one place a route's scope is checked (before its body is
        // read). No route matched (a middleware asking on the fallback):
        // the fallback's 404.
        let route = parts
            .extensions
            .get::<MatchedPath>()
            .ok_or_else(|| Problem::not_found("route"))?;
        caller.need(route_scope(&parts.method, route.as_str()))?;
        Ok(caller)
    }
}

impl Caller {
    async fn authenticate(parts: &Parts, state: &S) -> Result<Self, Problem> {
        let ip = client_ip(parts, state);
        let now = state.now();
        // A client with too many failures is refused without a ledger
        // read, except with a token that authenticated here before: behind
        // a load balancer (one address for every client) one bad client
        // must not lock the good ones out.
        let blocked = ip.is_some_and(|ip| state.limiter.blocked(ip, now));
        let too_many = || {
            Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too-many-failures",
                "too many failed authentications from this client; wait a minute",
            )
        };
        let fail = |detail: &str| {
            if blocked {
                return too_many();
            }
            if let Some(ip) = ip {
                state.limiter.fail(ip, now);
            }
            Problem::unauthorized(detail.to_owned())
        };
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Err(fail("missing `Authorization: Bearer ksk_...` header"));
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .unwrap_or("");
        if !auth::well_formed(token) {
            return Err(fail(
                "the bearer token is not a keyseal API token (ksk_...)",
            ));
        }
        let hash = auth::token_hash(token);
        let (cached, revocations) = {
            let cache = state
                .tokens
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if blocked && !cache.known.contains(&hash) {
                return Err(too_many());
            }
            let hit = cache
                .entries
                .get(&hash)
                .filter(|(_, until)| now < *until)
                .map(|(t, _)| t.clone());
            (hit, cache.revocations)
        };
        if let Some(t) = cached {
            // A hit never extends the entry: the ledger is read again once
            // it expires, so a revocation elsewhere takes effect here.
            return if auth::same_hash(&t.token_hash, &hash) {
                Ok(Caller(t))
            } else {
                Err(fail("unknown API token"))
            };
        }
        match state.store.token_by_hash(&hash).await? {
            Some(t) if auth::same_hash(&t.token_hash, &hash) => {
                let mut cache = state
                    .tokens
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                // A token revoked here since this request read the ledger
                // could be this one: not cached, or it would outlive its
                // revocation on this replica.
                if cache.known.len() >= 10_000 {
                    cache.known.clear();
                }
                cache.known.insert(hash.clone());
                if cache.revocations == revocations {
                    if cache.entries.len() > 10_000 {
                        cache.entries.clear();
                    }
                    cache
                        .entries
                        .insert(hash, (t.clone(), now + TOKEN_CACHE_SECS));
                }
                Ok(Caller(t))
            }
            _ => Err(fail("unknown API token")),
        }
    }
}

/// A JSON body: `application/json`, at most [`MAX_BODY`] bytes, a closed
/// schema (unknown fields are an error).
pub(crate) struct Body<T>(T);

impl<T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(';')
                    .next()
                    .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
            });
        if !json {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "send the body as application/json",
            ));
        }
        let read =
            tokio::time::timeout(state.network.body_timeout, Bytes::from_request(req, state));
        let bytes = read
            .await
            .map_err(|_| Problem::body_timeout(state.network.body_timeout))?
            .map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    Problem::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "body-too-large",
                        format!("the body is larger than {MAX_BODY} bytes"),
                    )
                } else {
                    Problem::bad_request(format!("cannot read the body: {e}"))
                }
            })?;
        serde_json::from_slice(&bytes)
            .map(Body)
            .map_err(|e| Problem::bad_request(format!("bad JSON body: {e}")))
    }
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, Problem> {
    q.map(|Query(t)| t)
        .map_err(|e| Problem::bad_request(format!("bad query: {}", e.body_text())))
}

fn path(p: Result<Path<String>, PathRejection>) -> Result<String, Problem> {
    p.map(|Path(s)| s)
        .map_err(|e| Problem::bad_request(format!("bad path: {}", e.body_text())))
}

/// A signing key's id in a path: its 16 hex digits (a prefix, which the
/// CLI takes, is not an id here); anything else is a 404.
fn key_id(p: Result<Path<String>, PathRejection>) -> Result<String, Problem> {
    let id = path(p)?;
    if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Problem::not_found("signing key"));
    }
    Ok(id)
}

fn json_response(status: StatusCode, v: &impl Serialize) -> Response {
    (status, Json(v)).into_response()
}

/// A cacheable public document: strong ETag over the body, 304 on a match.
fn cacheable(headers: &HeaderMap, content_type: &'static str, body: Vec<u8>) -> Response {
    let etag = etag_of(&body);
    cacheable_with(headers, content_type, body.into(), &etag)
}

/// A strong ETag: the first 128 bits of the body's SHA-256, quoted.
fn etag_of(body: &[u8]) -> HeaderValue {
    use sha2::{Digest, Sha256};
    let tag = format!("\"{}\"", &auth::hex(&Sha256::digest(body))[..32]);
    // Hex digits and quotes: always a valid header value.
    HeaderValue::from_str(&tag).unwrap_or_else(|_| HeaderValue::from_static("\"\""))
}

/// `body` with its `etag`, or 304 when `If-None-Match` names it.
fn cacheable_with(
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
fn not_modified(headers: &HeaderMap, etag: &HeaderValue) -> bool {
    let tag = etag.to_str().unwrap_or_default();
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"))
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

// ---- views ----------------------------------------------------------------

/// Whether `c` sees license keys (a key is what an app accepts, as good as
/// the license itself): tokens that may mint anyway (`issue`, `admin`) and
/// `read:pii`; a plain `read` token gets `null` with `"redacted": true`.
fn sees_keys(c: &Caller) -> bool {
    c.0.allows(Scope::Issue) || c.0.allows(Scope::ReadPii)
}

fn license_view(l: &OrgLicense, c: &Caller) -> Value {
    let keys = sees_keys(c);
    let r = &l.record;
    let status = if r.revoked.is_some() {
        "revoked"
    } else if l.suspended_at.is_some() {
        "suspended"
    } else {
        "active"
    };
    json!({
        "license_id": r.license_id.to_string(),
        "product": r.product,
        "customer_id": r.customer,
        "plan": r.plan,
        "issued_at": r.issued_at,
        "expires_at": r.expires_at,
        "key_id": r.key_id.to_string(),
        "license_key": keys.then_some(&r.license_key),
        "redacted": !keys,
        "status": status,
        "max_devices": l.max_devices,
        "suspended_at": l.suspended_at,
        "revoked_at": r.revoked.as_ref().map(|(t, _)| *t),
        "revoke_reason": r.revoked.as_ref().map(|(_, why)| why.clone()),
        "external_id": r.external_id,
        "metadata": l.metadata,
    })
}

/// A page of typed rows, serialised straight from them: no `Value` tree
/// per row (`bash server/bench/tenants.sh` prints what a page of 500
/// products costs the server).
#[derive(Serialize)]
struct TypedPage<'a, T> {
    items: &'a [T],
    next_cursor: Option<String>,
}

/// A customer as `caller` may see it: its personal fields (name, email,
/// metadata) only for `admin` and `read:pii` tokens, else `null` with
/// `"redacted": true`.
fn customer_view(c: &Customer, caller: &Caller) -> Value {
    customer_json(c, caller.0.allows(Scope::ReadPii))
}

/// A customer, its personal fields shown or `null` (`redacted`).
fn customer_json(c: &Customer, pii: bool) -> Value {
    if pii {
        json!({ "customer_id": c.customer_id, "name": c.name, "email": c.email, "metadata": c.metadata,
                "created_at": c.created_at, "erased_at": c.erased_at, "redacted": false })
    } else {
        json!({ "customer_id": c.customer_id, "name": null, "email": null, "metadata": null,
                "created_at": c.created_at, "erased_at": c.erased_at, "redacted": true })
    }
}

fn page(items: Vec<Value>, next: Option<String>) -> Value {
    json!({ "items": items, "next_cursor": next })
}

// ---- operations -------------------------------------------------------------

async fn healthz() -> Response {
    json_response(StatusCode::OK, &json!({ "status": "ok" }))
}

async fn readyz(axum::extract::State(s): axum::extract::State<S>) -> ApiResult {
    match s.store.org_count().await {
        Ok(_) => Ok(json_response(StatusCode::OK, &json!({ "status": "ready" }))),
        Err(_) => Err(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not-ready",
            "the ledger is not reachable",
        )),
    }
}

async fn metrics(axum::extract::State(s): axum::extract::State<S>) -> Response {
    let mut body = s
        .metrics
        .render(s.minted.load(std::sync::atomic::Ordering::Relaxed));
    // The lists' health: the oldest, the nearest to stale, how many are
    // stale (a list is published again when fetched past half its
    // lifetime; alert when the time left nears zero).
    match s.store.newest_lists().await {
        Ok(lists) => crate::metrics::render_lists(&mut body, s.now(), &lists),
        Err(e) => {
            tracing::error!(error = %crate::problem::chain(&e), "reading revocation lists for the metrics");
        }
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

async fn openapi(headers: HeaderMap) -> Response {
    cacheable(
        &headers,
        "application/json",
        crate::openapi::document().to_string().into_bytes(),
    )
}

// ---- public -------------------------------------------------------------------

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
async fn public_org(s: &State, p: Result<Path<String>, PathRejection>) -> Result<String, Problem> {
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

async fn keyring(
    axum::extract::State(s): axum::extract::State<S>,
    _: PublicClient,
    headers: HeaderMap,
) -> ApiResult {
    let org_id = default_org(&s).await?;
    keyring_of(&s, &org_id, &headers).await
}

async fn org_keyring(
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

async fn revocations(
    axum::extract::State(s): axum::extract::State<S>,
    _: PublicClient,
    headers: HeaderMap,
) -> ApiResult {
    let org_id = default_org(&s).await?;
    revocations_of(&s, &org_id, &headers).await
}

async fn org_revocations(
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

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

// ---- products -----------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewProduct {
    product: String,
    name: Option<String>,
}

async fn create_product(
    axum::extract::State(s): axum::extract::State<S>,
    c: Caller,
    Body(b): Body<NewProduct>,
) -> ApiResult {
    let name = b.name.unwrap_or_else(|| b.product.clone());
    let p = s
        .store
        .org_add_product(c.org(), &b.product, &name, &c.ctx(&s))
        .await?;
    Ok(json_response(StatusCode::CREATED, &p))
}

async fn list_products(
    axum::extract::State(s): axum::extract::State<S>,
    c: Caller,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> ApiResult {
    let q = query(q)?;
    let limit = limit(q.limit)?;
    let after = cursor(q.cursor, |c| {
        keyseal_issuer::request::check_product(c)
            .is_ok()
            .then(|| c.to_owned())
    })?;
    let rows = s
        .store
        .org_products(c.org(), after.as_deref(), limit)
        .await?;
    let next = (rows.len() as u64 == limit)
        .then(|| rows.last().map(|p| p.product.clone()))
        .flatten();
    Ok(json_response(
        StatusCode::OK,
        &TypedPage {
            items: &rows,
            next_cursor: next,
        },
    ))
}

async fn get_product(
    axum::extract::State(s): axum::extract::State<S>,
    c: Caller,
    p: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let id = path(p)?;
    let p = s
        .store
        .org_product(c.org(), &id)
        .await?
        .ok_or_else(|| Problem::not_found("product"))?;
    Ok(json_response(StatusCode::OK, &p))
}

// ---- customers ------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewCustomer {
    name: Option<String>,
    email: Option<String>,
    metadata: Option<UniqueMap>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CustomerQuery {
    cursor: Option<String>,
    limit: Option<u64>,
    email: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PageQuery {
    cursor: Option<String>,
    limit: Option<u64>,
}

async fn create_customer(
    axum::extract::State(s): axum::extract::State<S>,
    c: Caller,
    Body(b): Body<NewCustomer>,
) -> ApiResult {
    let fields = keyseal_issuer::privacy::PersonalFields {
        name: b.name,
        email: b.email,
        metadata: b.metadata.map(|m| m.0).unwrap_or_default(),
    };
    let cus = s
        .store
        .org_add_customer(c.org(), fields, &c.ctx(&s))
        .await?;
    // The creator gets back what it sent, whatever its scopes.
    Ok(json_response(
        StatusCode::CREATED,
        &customer_json(&cus, true),
    ))
}

async fn list_customers(
    axum::extract::State(s): axum::extract::State<S>,
    c: Caller,
    q: Result<Query<CustomerQuery>, QueryRejection>,
) -> ApiResult {
    let q = query(q)?;
    if q.email.is_some() {
        // Whether an address is a customer's is personal data too.
        c.need(Scope::ReadPii)?;
    }
    let limit = limit(q.limit)?;
    let after = cursor(q.cursor, |c| {
        c.strip_prefix("cus_")
            .is_some_and(|h| {
                (1..=60).contains(&h.len()) && h.bytes().all(|b| b.is_ascii_hexdigit())
            })
            .then(|| c.to_owned())
    })?;
    let rows = s
        .store
        .org_customers(c.org(), after.as_deref(), q.email.as_deref(), limit)
        .await?;
    let next = (rows.len() as u64 == limit)
        .then(|| rows.last().map(|c| c.customer_id.clone()))
        .flatten();
    Ok(json_response(
        StatusCode::OK,
        &page(rows.iter().map(|r| customer_view(r, &c)).collect(), next),
    ))
}

/// A page cursor: what `parse` makes of it, or a 400 when it is not a
/// `next_cursor` this endpoint gives out (a malformed cursor is not an
/// empty page).
fn cursor<T>(c: Option<String>, parse: impl Fn(&str) -> Option<T>) -> Result<Option<T>, Problem> {
    // `cursor=` (empty) is the first page, as no cursor is.
    c.filter(|c| !c.is_empty())
        .map(|c| {
            parse(&c).ok_or_else(|| {
                Problem::bad_request("cursor: give a next_cursor from this endpoint, unchanged")
            })
        })
        .transpose()
}

fn limit(l: Option<u64>) -> Result<u64, Problem> {
    match l {
        None => Ok(100),
        Some(n) if (1..=keyseal_issuer::service::MAX_PAGE).contains(&n) => Ok(n),
        Some(_) => Err(Problem::invalid(format!(
            "limit must be from 1 to {}",
            keyseal_issuer::service::MAX_PAGE
        ))),
    }
}

async fn get_customer(
    axum::extract::State(s): axum::extract::State<S>,
    c: Caller,
    p: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let id = path(p)?;
    let cus = s
        .store
        .org_customer(c.org(), &id)
        .await?
        .ok_or_else(|| Problem::not_found("customer"))?;
    Ok(json_response(StatusCode::OK, &customer_view(&cus, &c)))
}

async fn export_customer(
    axum::extract::State(s): axum::extract::State<S>,
    c: Caller,
    p: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let id = path(p)?;
    let e = s
        .store
        .org_export_customer(c.org(), &id)
        .await?
        .ok_or_else(|| Problem::not_found("customer"))?;
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "customer": customer_view(&e.customer, &c),
            "licenses": e.licenses.iter().map(|l| license_view(l, &c)).collect::<Vec<_>>(),
            "activations": e.activations.iter().map(|a| activation_view(a, &c)).collect::<Vec<_>>(),
            "audit": e.audit,
        }),
    ))
}

async fn erase_customer(
    axum::extract::State(s): axum::extract::State<S>,
    c: Caller,
    p: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let id = path(p)?;
    let cus = s
        .store
        .org_erase_customer(c.org(), &id, &c.ctx(&s))
        .await?
        .ok_or_else(|| Problem::not_found("customer"))?;
    Ok(json_response(StatusCode::OK, &customer_view(&cus, &c)))
}

// ---- licenses -----------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MintRequest {
    product: String,
    customer_id: String,
    plan: String,
    expires: String,
    not_before: Option<String>,
    grace: Option<String>,
    device: Option<String>,
    device_match: Option<u8>,
    entitlements: Option<Vec<String>>,
    max_version: Option<String>,
    ext: Option<UniqueMap>,
    max_devices: Option<u64>,
    external_id: Option<String>,
    metadata: Option<UniqueMap>,
}

/// A JSON object of strings in which a key given twice is an error (serde's
/// maps keep the last silently, and a signed key must say what was sent).
struct UniqueMap(BTreeMap<String, String>);

impl<'de> Deserialize<'de> for UniqueMap {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = UniqueMap;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of string values")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<UniqueMap, A::Error> {
                let mut out = BTreeMap::new();
                while let Some((k, v)) = m.next_entry::<String, String>()? {
                    if out.contains_key(&k) {
                        return Err(serde::de::Error::custom(format_args!(
                            "key `{k}` given twice"
                        )));
                    }
                    out.insert(k, v);
                }
                Ok(UniqueMap(out))
            }
        }
        d.deserialize_map(V)
    }
}

impl MintRequest {
    /// The issuer's request fields (what the CLI's batch rows also become)
    /// and the device limit.
    fn into_fields(self) -> (RequestFields, u64, BTreeMap<String, String>) {
        let fields = RequestFields {
            product: Some(self.product),
            customer: Some(self.customer_id),
            plan: Some(self.plan),
            expires: Some(self.expires),
            not_before: self.not_before,
            grace: self.grace,
            device: self.device,
            device_match: self.device_match.map(|n| n.to_string()),
            entitlements: self.entitlements.unwrap_or_default(),
            max_version: self.max_version,
            ext: self
                .ext
                .map(|m| m.0)
                .unwrap_or_default()
                .into_iter()
                .collect(),
            external_id: self.external_id,
        };
        let metadata = self.metadata.map(|m| m.0).unwrap_or_default();
        (fields, self.max_devices.unwrap_or(1), metadata)
    }
}

/// Parses `bytes` as the JSON body of every request type the API takes
/// (as the `Body` extractor does), and resolves a mint body the way the mint
/// handler does, up to the claims keyseal-core checks. For the fuzz target
/// in `fuzz/`: it must never panic, and a mint body that resolves must give
/// valid claims.
#[doc(hidden)]
pub fn fuzz_request_bodies(bytes: &[u8], now: u64) {
    let _ = serde_json::from_slice::<NewProduct>(bytes);
    let _ = serde_json::from_slice::<NewCustomer>(bytes);
    let _ = serde_json::from_slice::<RevokeRequest>(bytes);
    let _ = serde_json::from_slice::<ActivateRequest>(bytes);
    let _ = serde_json::from_slice::<NewToken>(bytes);
    if let Ok(b) = serde_json::from_slice::<MintRequest>(bytes) {
        let (fields, _, _) = b.into_fields();
        if let Ok(req) = fields.resolve(now) {
            let claims = req.claims(keyseal_core::LicenseId::from_bytes([1; 16]), now);
            assert!(
                claims.validate().is_ok(),
                "a resolved mint request gives valid claims"
            );
        }
    }
}

async fn mint(
    axum::extract::State(s): axum::extract::State<S>,
    c: Caller,
    claimed: Option<axum::Extension<crate::idempotency::ClaimedKey>>,
    Body(b): Body<MintRequest>,
) -> ApiResult {
    let (fields, max_devices, metadata) = b.into_fields();
    let job = MintJob {
        org_id: c.org().to_owned(),
        fields,
        max_devices,
        metadata,
        ctx: c.ctx(&s),
    };
    // With an Idempotency-Key, the 201 is recorded in the transaction that
    // records the license (rendered from the signed license, which is what
    // the commit stores): a crash between the two cannot happen.
    let key = claimed.map(|k| k.0.0.clone());
    let render = |l: &OrgLicense| serde_json::to_string(&license_view(l, &c)).unwrap_or_default();
    let recorded = key.is_some();
    let signer = s.signer(c.org()).await?;
    let mut result = submit_mint(&s, &signer, job.clone(), key.clone(), &render).await?;
    // The organisation's key rotated between signing and commit (here, or
    // through another replica: then load its active key from the shared
    // vault): sign again with the active key and try once more.
    if matches!(result, Err(keyseal_issuer::Error::StaleSigner { .. })) {
        s.reload_signer(c.org()).await;
        let now = s.signer(c.org()).await?;
        if now.key_id() != signer.key_id() {
            result = submit_mint(&s, &now, job, key, &render).await?;
        }
    }
    let l = result?;
    s.count_mint();
    let mut r = json_response(StatusCode::CREATED, &license_view(&l, &c));
    if recorded {
        r.extensions_mut()
            .insert(crate::idempotency::RecordedWithEffect);
    }
    Ok(r)
}

/// Signs the mint here (handlers sign in parallel), then hands it to the
/// group-commit task and waits for the commit.
async fn submit_mint(
    s: &State,
    signer: &keyseal_issuer::Signer,
    job: MintJob,
    idempotency_key: Option<String>,
    render: &(dyn Fn(&OrgLicense) -> String + Sync),
) -> Result<keyseal_issuer::Result<OrgLicense>, Problem> {
    let license = match keyseal_issuer::service::sign_mint(signer, &job) {
        Ok(l) => l,
        Err(e) => return Ok(Err(e)),
    };
    let record = idempotency_key.map(|key| keyseal_issuer::idempotency::Recorded {
        key,
        response: keyseal_issuer::idempotency::StoredResponse {
            status: StatusCode::CREATED.as_u16(),
            content_type: "application/json".to_owned(),
            body: render(&license),
        },
    });
    let (tx, rx) = tokio::sync::oneshot::channel();
    s.minter
        .send((
            SignedMint {
                job,
                license,
                record,
            },
            tx,
        ))
        .await
        .map_err(|_| Problem::internal())?;
    rx.await.map_err(|_| Problem::internal())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LicenseQuery {
    cursor: Option<String>,
    limit: Option<u64>,
    product: Option<String>,
    customer_id: Option<String>,
}

async fn list_licenses(
    axum::extract::State(s): axum::extract::State<S>,
    c: Caller,
    q: Result<Query<LicenseQuery>, QueryRejection>,
) -> ApiResult {
    let q = query(q)?;
    let limit = limit(q.limit)?;
    let after = cursor(q.cursor, |c| {
        c.parse::<keyseal_core::LicenseId>()
            .ok()
            .map(|id| id.to_string())
    })?;
    let f = OrgLicenseFilter {
        product: q.product,
        customer: q.customer_id,
        after,
        limit,
    };
    let rows = s.store.org_licenses(c.org(), &f).await?;
    let next = (rows.len() as u64 == limit)
        .then(|| rows.last().map(|l| l.record.license_id.to_string()))
        .flatten();
    Ok(json_response(
        StatusCode::OK,
        &page(rows.iter().map(|l| license_view(l, &c)).collect(), next),
    ))
}

async fn get_license(
    axum::extract::State(s): axum::extract::State<S>,
    c: Caller,
    p: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let id = path(p)?;
    let l = s
        .store
        .org_license(c.org(), &id)
        .await?
        .ok_or_else(|| Problem::not_found("license"))?;
    Ok(json_response(StatusCode::OK, &license_view(&l, &c)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeRequest {
    reason: String,
}

async fn revoke(
    axum::extract::State(s): axum::extract::State<S>,
    c: Caller,
    p: Result<Path<String>, PathRejection>,
    Body(b): Body<RevokeRequest>,
) -> ApiResult {
    let id = path(p)?;
    let ctx = c.ctx(&s);
    // No revocation without a key to sign its list: refused (409
    // `no-active-key`) before anything is written.
    require_active_key(&s, c.org()).await?;
    let l = s
        .store
        .org_revoke(c.org(), &id, &b.reason, &ctx)
        .await?
        .ok_or_else(|| Problem::not_found("license"))?;
    // Publish the organisation's list at once, so it names the license (a
    // burst of revocations publishes one list: the first to get the
    // ledger's lock builds it with all of them).
    publish(&s, c.org(), &ctx, keyseal_issuer::Publish::IfChanged).await?;
    Ok(json_response(StatusCode::OK, &license_view(&l, &c)))
}

/// Refuses (409 `no-active-key`) when the organisation has no active key in
/// the ledger (this replica's cached signer may be one retired elsewhere):
/// nothing could sign the revocation list.
async fn require_active_key(s: &State, org_id: &str) -> Result<(), Problem> {
    match s.store.org_active_key(org_id).await? {
        Some(_) => Ok(()),
        None => Err(keyseal_issuer::Error::NoActiveKey.into()),
    }
}

/// Publishes the organisation's revocation list, signed by its active key,
/// `when` it needs it (see `Store::publish_list`): `None` if it did not. If
/// another replica rotated (or retired) the key this one signs with, loads
/// the active key and tries once more.
async fn publish(
    s: &State,
    org_id: &str,
    ctx: &Context,
    when: keyseal_issuer::Publish,
) -> keyseal_issuer::Result<Option<keyseal_issuer::PublishedList>> {
    let next_update = ctx.now + REVOCATION_LIST_LIFETIME;
    let signer = s.signer(org_id).await?;
    let store = &s.store;
    match store.publish_list(&signer, next_update, when, ctx).await {
        Err(keyseal_issuer::Error::StaleSigner { .. }) if s.reload_signer(org_id).await => {
            let now = s.signer(org_id).await?;
            store.publish_list(&now, next_update, when, ctx).await
        }
        r => r,
    }
}

async fn suspend(
    axum::extract::State(s): axum::extract::State<S>,
    c: Caller,
    p: Result<Path<String>, PathRejection>,
) -> ApiResult {
    set_suspended(s, c, p, true).await
}

async fn resume(
    axum::extract::State(s): axum::extract::State<S>,
    c: Caller,
    p: Result<Path<String>, PathRejection>,
) -> ApiResult {
    set_suspended(s, c, p, false).await
}

async fn set_suspended(
    s: S,
    c: Caller,
    p: Result<Path<String>, PathRejection>,
    suspend: bool,
) -> ApiResult {
    let id = path(p)?;
    let l = s
        .store
        .org_set_suspended(c.org(), &id, suspend, &c.ctx(&s))
        .await?
        .ok_or_else(|| Problem::not_found("license"))?;
    Ok(json_response(StatusCode::OK, &license_view(&l, &c)))
}

// ---- audit ----------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    cursor: Option<String>,
    limit: Option<u64>,
}

async fn audit(
    axum::extract::State(s): axum::extract::State<S>,
    c: Caller,
    q: Result<Query<AuditQuery>, QueryRejection>,
) -> ApiResult {
    let q = query(q)?;
    let limit = limit(q.limit)?;
    let after = cursor(q.cursor, |c| c.parse::<u64>().ok())?.unwrap_or(0);
    let rows = s.store.org_audit(c.org(), after, limit).await?;
    let next = (rows.len() as u64 == limit)
        .then(|| rows.last().map(|e| e.seq.to_string()))
        .flatten();
    let items = rows
        .iter()
        .map(|e| {
            json!({
                "seq": e.seq, "at": e.at, "actor": e.actor, "action": e.action,
                "details": serde_json::from_str::<Value>(&e.details).unwrap_or(Value::Null),
                "prev_hash": e.prev_hash, "hash": e.hash,
            })
        })
        .collect();
    Ok(json_response(StatusCode::OK, &page(items, next)))
}

// ---- activations ------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActivateRequest {
    fingerprint: String,
    device_match: Option<u8>,
}

fn activation_view(a: &Activation, c: &Caller) -> Value {
    let keys = sees_keys(c);
    json!({
        "activation_id": a.activation_id,
        "license_id": a.license_id,
        "fingerprint": a.fingerprint,
        "device_key": keys.then_some(&a.device_key),
        "redacted": !keys,
        "key_id": a.key_id,
        "created_at": a.created_at,
        "deactivated_at": a.deactivated_at,
    })
}

async fn activate(
    axum::extract::State(s): axum::extract::State<S>,
    c: Caller,
    p: Result<Path<String>, PathRejection>,
    Body(b): Body<ActivateRequest>,
) -> ApiResult {
    let id = path(p)?;
    let signer = s.signer(c.org()).await?;
    let ctx = c.ctx(&s);
    let activate = |signer: keyseal_issuer::Signer| {
        let (s, c, id, b, ctx) = (&s, &c, &id, &b, &ctx);
        async move {
            s.store
                .org_activate(c.org(), &signer, id, &b.fingerprint, b.device_match, ctx)
                .await
        }
    };
    let mut out = activate(signer.clone()).await;
    // The organisation's key rotated through another replica: load it, retry once.
    if matches!(out, Err(keyseal_issuer::Error::StaleSigner { .. })) {
        s.reload_signer(c.org()).await;
        let now = s.signer(c.org()).await?;
        if now.key_id() != signer.key_id() {
            out = activate(now).await;
        }
    }
    match out? {
        Ok(Activated::New(a)) => Ok(json_response(StatusCode::CREATED, &activation_view(&a, &c))),
        Ok(Activated::Existing(a)) => Ok(json_response(StatusCode::OK, &activation_view(&a, &c))),
        Err(Refused::NotFound) => Err(Problem::not_found("license")),
        Err(Refused::Revoked) => Err(Problem::new(
            StatusCode::CONFLICT,
            "license-revoked",
            "the license is revoked",
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

async fn list_activations(
    axum::extract::State(s): axum::extract::State<S>,
    c: Caller,
    p: Result<Path<String>, PathRejection>,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> ApiResult {
    let id = path(p)?;
    let q = query(q)?;
    let limit = limit(q.limit)?;
    let after = id_cursor(q.cursor, "act_")?;
    let rows = s
        .store
        .org_activations(c.org(), &id, after.as_deref(), limit)
        .await?
        .ok_or_else(|| Problem::not_found("license"))?;
    let next = (rows.len() as u64 == limit)
        .then(|| rows.last().map(|a| a.activation_id.clone()))
        .flatten();
    Ok(json_response(
        StatusCode::OK,
        &page(rows.iter().map(|a| activation_view(a, &c)).collect(), next),
    ))
}

async fn deactivate(
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
    Ok(json_response(StatusCode::OK, &activation_view(&a, &c)))
}

// ---- signing keys (admin) ------------------------------------------------------------

fn key_view(k: &KeyInfo) -> Value {
    json!({
        "key_id": k.key_id.to_string(),
        "public_key": k.public_key.to_string(),
        "status": k.status,
        "created_at": k.created_at,
        "valid_from": k.valid_from,
        "valid_until": k.valid_until,
        "revoked_at": k.revoked_at,
    })
}

/// The organisation's signing keys, oldest first, in pages (revoked keys
/// stay, so rotations make the list grow). The cursor is the last key's
/// creation time and id, `<unix seconds>.<key id>`.
async fn list_keys(
    axum::extract::State(s): axum::extract::State<S>,
    c: Caller,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> ApiResult {
    let q = query(q)?;
    let limit = limit(q.limit)?;
    let after = cursor(q.cursor, |c| {
        let (at, id) = c.split_once('.')?;
        Some((
            at.parse::<u64>().ok()?,
            id.parse::<keyseal_core::KeyId>().ok()?,
        ))
    })?;
    let keys = s.store.org_keys_page(c.org(), after, limit).await?;
    let next = (keys.len() as u64 == limit)
        .then(|| {
            keys.last()
                .map(|k| format!("{}.{}", k.created_at, k.key_id))
        })
        .flatten();
    Ok(json_response(
        StatusCode::OK,
        &page(keys.iter().map(key_view).collect(), next),
    ))
}

/// Makes a new signing key for the caller's organisation, seals it into
/// the ledger, makes it the organisation's active key (its old one retires)
/// and signs the organisation's licenses with it from now on. Other
/// organisations' keys are untouched.
async fn rotate_key(axum::extract::State(s): axum::extract::State<S>, c: Caller) -> ApiResult {
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
    Ok(json_response(StatusCode::CREATED, &key_view(&k)))
}

async fn retire_key(
    axum::extract::State(s): axum::extract::State<S>,
    c: Caller,
    p: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let id = key_id(p)?;
    let ctx = c.ctx(&s);
    let k = s.store.org_retire_key(c.org(), &id, ctx.now, &ctx).await?;
    Ok(json_response(StatusCode::OK, &key_view(&k)))
}

/// Revokes one of the organisation's keys that no longer signs (retired):
/// the organisation's revocation list, published at once, revokes it and
/// every license it signed, and its public keyring leaves it out, which
/// makes room for a rotation in a full keyring. The active key is refused
/// (409): rotate first, so that a key remains to sign the list.
async fn revoke_key(
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
    Ok(json_response(StatusCode::OK, &key_view(&k)))
}

// ---- API tokens (admin) --------------------------------------------------------------

fn token_view(t: &TokenInfo) -> Value {
    json!({
        "token_id": t.token_id,
        "org_id": t.org_id,
        "name": t.name,
        "scopes": t.scopes,
        "created_at": t.created_at,
        "revoked_at": t.revoked_at,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewToken {
    name: String,
    scopes: Vec<Scope>,
}

/// A new API token of the caller's organisation; the secret is in this
/// response only.
async fn create_token(
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
    let mut v = token_view(&t);
    v["token"] = json!(secret);
    Ok(json_response(StatusCode::CREATED, &v))
}

/// A page cursor that is an object id: `prefix` then hex digits.
fn id_cursor(c: Option<String>, prefix: &'static str) -> Result<Option<String>, Problem> {
    cursor(c, |c| {
        c.strip_prefix(prefix)
            .is_some_and(|h| {
                (1..=60).contains(&h.len()) && h.bytes().all(|b| b.is_ascii_hexdigit())
            })
            .then(|| c.to_owned())
    })
}

async fn list_tokens(
    axum::extract::State(s): axum::extract::State<S>,
    c: Caller,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> ApiResult {
    let q = query(q)?;
    let limit = limit(q.limit)?;
    let after = id_cursor(q.cursor, "tok_")?;
    let tokens = s.store.org_tokens(c.org(), after.as_deref(), limit).await?;
    let next = (tokens.len() as u64 == limit)
        .then(|| tokens.last().map(|t| t.token_id.clone()))
        .flatten();
    Ok(json_response(
        StatusCode::OK,
        &page(tokens.iter().map(token_view).collect(), next),
    ))
}

/// Revokes a token: refused at once here (its cache entry goes), and by
/// other replicas within [`crate::TOKEN_CACHE_SECS`].
async fn revoke_token(
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
    Ok(json_response(StatusCode::OK, &token_view(&t)))
}
