//! What handlers take from a request: the authenticated caller (the one
//! place a route's scope is checked), a public client within its rate, a
//! closed JSON body, path ids, query strings and page cursors.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{
    ConnectInfo, FromRequest, FromRequestParts, MatchedPath, Path, Query, Request,
};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use keyseal_issuer::Context;
use keyseal_issuer::service::{Scope, TokenRecord};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use utoipa::IntoParams;

use super::{S, TOKEN_CACHE_SECS};
use crate::problem::Problem;
use crate::{MAX_BODY, State, auth};

/// The authenticated caller: its token's organisation and scopes.
pub(crate) struct Caller(TokenRecord);

impl Caller {
    /// Whether the caller's token has `scope`.
    pub(super) fn allows(&self, scope: Scope) -> bool {
        self.0.allows(scope)
    }

    pub(super) fn need(&self, scope: Scope) -> Result<&TokenRecord, Problem> {
        if self.0.allows(scope) {
            Ok(&self.0)
        } else {
            Err(Problem::forbidden(scope.as_str()))
        }
    }

    pub(crate) fn org(&self) -> &str {
        &self.0.org_id
    }

    pub(super) fn ctx(&self, state: &State) -> Context {
        Context {
            now: state.now(),
            actor: self.0.actor(),
        }
    }
}

/// The scope a route needs, known from the method and route alone, so it
/// is checked before the body is read or parsed, by the [`Caller`]
/// extractor every authenticated handler takes: keys, tokens, webhooks,
/// payments and email settings need
/// `admin`, an export `read:pii`, other reads `read`, other writes `issue`.
/// This is the only table of scopes; handlers check only what depends on
/// the request (the customer list's `email` filter needs `read:pii`).
pub(super) fn route_scope(method: &axum::http::Method, route: &str) -> Scope {
    if route.starts_with("/v1/keys")
        || route.starts_with("/v1/tokens")
        || route.starts_with("/v1/webhooks")
        || route.starts_with("/v1/payments")
        || route.starts_with("/v1/email")
    {
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
        // Over its rate, a request waits for the client's allowance rather
        // than being refused at once: a client that asks again as soon as it
        // is answered (a loop on keep-alive connections) is slowed to its
        // rate. Refused at once, it asked tens of thousands of times a
        // second, and answering those took CPU from every other tenant
        // (server/bench/lists.sh).
        keyed_turn(
            state,
            limiter,
            &ip,
            "too many requests from this client to the public endpoints; retry in a second \
             (apps need the keyring and the revocation list every few hours, with If-None-Match)",
        )
        .await
        .map(|()| PublicClient)
    }
}

/// The client's address ([`client_ip`]), for the limits kept in memory
/// (`None` without a peer address, as in some tests). Never stored, never
/// logged.
pub(crate) struct ClientAddr(pub(crate) Option<std::net::IpAddr>);

impl FromRequestParts<S> for ClientAddr {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        Ok(ClientAddr(client_ip(parts, state)))
    }
}

/// Waits up to a second for `key`'s turn with `limiter`, then 429
/// `rate-limited` with `detail`. Now and then, keys whose allowance is
/// full again are forgotten, so made-up keys do not pile up.
pub(crate) async fn keyed_turn<K: Clone + std::hash::Hash + Eq>(
    state: &S,
    limiter: &governor::DefaultKeyedRateLimiter<K>,
    key: &K,
    detail: &'static str,
) -> Result<(), Problem> {
    if state
        .public_seen
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        .is_multiple_of(16_384)
    {
        limiter.retain_recent();
    }
    use governor::clock::Clock;
    let granted = wait_for_allowance(|| {
        limiter
            .check_key(key)
            .map_err(|not_until| not_until.wait_time_from(limiter.clock().now()))
    })
    .await;
    if granted {
        Ok(())
    } else {
        Err(Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate-limited",
            detail,
        ))
    }
}

/// Waits until `check` grants an allowance (`Err` says how long until it
/// may), for at most [`PUBLIC_WAIT`]; false if that would take longer. The
/// public endpoints' two limits (per client, and the bytes of full lists)
/// wait this way.
pub(super) async fn wait_for_allowance(
    mut check: impl FnMut() -> Result<(), std::time::Duration>,
) -> bool {
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
pub(crate) struct Body<T>(pub(super) T);

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

pub(super) fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, Problem> {
    q.map(|Query(t)| t)
        .map_err(|e| Problem::bad_request(format!("bad query: {}", e.body_text())))
}

pub(super) fn path(p: Result<Path<String>, PathRejection>) -> Result<String, Problem> {
    p.map(|Path(s)| s)
        .map_err(|e| Problem::bad_request(format!("bad path: {}", e.body_text())))
}

/// A signing key's id in a path: its 16 hex digits (a prefix, which the
/// CLI takes, is not an id here); anything else is a 404.
pub(super) fn key_id(p: Result<Path<String>, PathRejection>) -> Result<String, Problem> {
    let id = path(p)?;
    if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Problem::not_found("signing key"));
    }
    Ok(id)
}

/// A page cursor: what `parse` makes of it, or a 400 when it is not a
/// `next_cursor` this endpoint gives out (a malformed cursor is not an
/// empty page).
pub(super) fn cursor<T>(
    c: Option<String>,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Option<T>, Problem> {
    // `cursor=` (empty) is the first page, as no cursor is.
    c.filter(|c| !c.is_empty())
        .map(|c| {
            parse(&c).ok_or_else(|| {
                Problem::bad_request("cursor: give a next_cursor from this endpoint, unchanged")
            })
        })
        .transpose()
}

/// A page's cursor (what `parse` makes of it) and limit, or a 400/422.
pub(super) fn page_args<T>(
    c: Option<String>,
    l: Option<u64>,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<(Option<T>, u64), Problem> {
    Ok((cursor(c, parse)?, limit(l)?))
}

pub(super) fn limit(l: Option<u64>) -> Result<u64, Problem> {
    match l {
        None => Ok(100),
        Some(n) if (1..=keyseal_issuer::service::MAX_PAGE).contains(&n) => Ok(n),
        Some(_) => Err(Problem::invalid(format!(
            "limit must be from 1 to {}",
            keyseal_issuer::service::MAX_PAGE
        ))),
    }
}

/// A page cursor that is an object id: `prefix` then hex digits.
pub(super) fn object_id(prefix: &'static str) -> impl Fn(&str) -> Option<String> {
    move |c| {
        c.strip_prefix(prefix)
            .is_some_and(|h| {
                (1..=60).contains(&h.len()) && h.bytes().all(|b| b.is_ascii_hexdigit())
            })
            .then(|| c.to_owned())
    }
}

/// The paging parameters of a list.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct PageQuery {
    /// A `next_cursor` from the previous page, unchanged (anything else is
    /// a 400); none or empty: the first page.
    pub(crate) cursor: Option<String>,
    /// Items on the page, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub(crate) limit: Option<u64>,
}
