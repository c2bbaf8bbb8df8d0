//! Errors as RFC 9457 problem details (`application/problem+json`), each
//! with a stable `type` URI that clients can match on.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keyseal_issuer::Error as IssuerError;
use keyseal_issuer::{KeyError, RequestError};
use serde_json::json;

/// Prefix of every problem `type`.
pub const TYPE_PREFIX: &str = "urn:keyseal:problem:";

/// An API error: HTTP status, stable slug and a human-readable detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable slug (the `type` is [`TYPE_PREFIX`] followed by it).
    pub slug: &'static str,
    /// What went wrong, for people.
    pub detail: String,
}

impl Problem {
    /// A problem.
    pub fn new(status: StatusCode, slug: &'static str, detail: impl Into<String>) -> Self {
        Problem {
            status,
            slug,
            detail: detail.into(),
        }
    }

    /// 400: the request is malformed (syntax, unknown fields, wrong types).
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad-request", detail)
    }

    /// 422: well-formed but invalid values.
    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-value", detail)
    }

    /// 404: no such object (or one of another organisation).
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("no such {what}"),
        )
    }

    /// 401: missing or wrong token.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }

    /// 403: the token lacks the scope.
    pub fn forbidden(need: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("this token lacks the `{need}` scope"),
        )
    }

    /// 409: conflicts with the current state.
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", detail)
    }

    /// 408: the body did not arrive within `after`.
    pub fn body_timeout(after: std::time::Duration) -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "request-timeout",
            format!(
                "the request body did not arrive within {} s",
                after.as_secs_f64()
            ),
        )
    }

    /// 500: our fault; the detail is generic (no internals leak).
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; the service log has details",
        )
    }
}

impl From<IssuerError> for Problem {
    fn from(e: IssuerError) -> Self {
        match &e {
            IssuerError::Request(RequestError::Invalid { .. })
            | IssuerError::Request(RequestError::BadRow { .. }) => Problem::invalid(e.to_string()),
            IssuerError::Request(RequestError::UnknownProduct { product, .. }) => {
                Problem::invalid(format!(
                    "product: unknown product `{product}` (register it with POST /v1/products; \
                     GET /v1/products lists them)"
                ))
            }
            IssuerError::Request(RequestError::ProductExists(_)) => {
                Problem::conflict(e.to_string())
            }
            IssuerError::Request(RequestError::PersonalDataLocked) => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "personal-data-locked",
                e.to_string(),
            ),
            IssuerError::Request(RequestError::LimitReached { .. }) => {
                Problem::new(StatusCode::CONFLICT, "limit-reached", e.to_string())
            }
            IssuerError::Request(RequestError::LastAdminToken(_)) => {
                Problem::new(StatusCode::CONFLICT, "last-admin-token", e.to_string())
            }
            IssuerError::Request(RequestError::UnknownOrg(_)) => Problem::not_found("organisation"),
            IssuerError::Request(RequestError::AlreadyRevoked { .. }) => {
                Problem::conflict(e.to_string())
            }
            IssuerError::Request(RequestError::ExternalIdExists { license_id, .. }) => {
                Problem::new(
                    StatusCode::CONFLICT,
                    "external-id-exists",
                    format!("{e}: GET /v1/licenses/{license_id}"),
                )
            }
            IssuerError::Key(KeyError::AlreadyRevoked(_))
            | IssuerError::Key(KeyError::AlreadyRetired { .. }) => Problem::conflict(e.to_string()),
            IssuerError::Key(KeyError::KeyringFull { oldest_retired, .. }) => Problem::new(
                StatusCode::CONFLICT,
                "keyring-full",
                match oldest_retired {
                    Some(k) => format!(
                        "{e}; revoke a retired key whose licenses you no longer need, oldest first \
                         (POST /v1/keys/{k}/revoke: every license it signed stops validating), then rotate"
                    ),
                    None => format!(
                        "{e}; revoke a key you no longer need (POST /v1/keys/{{key_id}}/revoke)"
                    ),
                },
            ),
            IssuerError::Request(RequestError::UnknownLicense(_)) => Problem::not_found("license"),
            IssuerError::Key(KeyError::Unknown(_)) | IssuerError::Key(KeyError::Ambiguous(_)) => {
                Problem::not_found("signing key")
            }
            // A state the organisation's admin made (its active key was
            // retired) and ends with a rotation: a conflict, not an outage.
            // Rotated twice while one request ran: the client retries.
            IssuerError::Key(KeyError::StaleSigner { .. }) => Problem::new(
                StatusCode::CONFLICT,
                "key-rotated",
                "the organisation's signing key changed while this request ran; send it again",
            ),
            IssuerError::Key(KeyError::ClockBehindNewestKey { .. }) => Problem::new(
                StatusCode::CONFLICT,
                "clock-behind-newest-key",
                "the newest signing key starts later than this server's clock says it is now, and a new key must not start before an older one (newer keys outrank older ones): fix the server's clock",
            ),
            IssuerError::Key(KeyError::NoActiveKey) => Problem::new(
                StatusCode::CONFLICT,
                "no-active-key",
                "the organisation has no active signing key; rotate one in (POST /v1/keys/rotate)",
            ),
            IssuerError::Core(_) => Problem::invalid(e.to_string()),
            _ => {
                tracing::error!(error = %chain(&e), "internal error");
                Problem::internal()
            }
        }
    }
}

/// An error and every cause under it, `: `-separated (what the log needs
/// to find the fault; never shown to clients).
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let text = c.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        cur = c.source();
    }
    s
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = json!({
            "type": format!("{TYPE_PREFIX}{}", self.slug),
            "title": self.status.canonical_reason().unwrap_or("error"),
            "status": self.status.as_u16(),
            "detail": self.detail,
        });
        let mut r = (self.status, body.to_string()).into_response();
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        match self.status {
            // RFC 6750: how to authenticate.
            StatusCode::UNAUTHORIZED => {
                h.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"keyseal\""),
                );
            }
            // Public requests are limited per second; failed
            // authentications are counted per minute.
            StatusCode::TOO_MANY_REQUESTS => {
                let after = if self.slug == "rate-limited" {
                    "1"
                } else {
                    "60"
                };
                h.insert(header::RETRY_AFTER, HeaderValue::from_static(after));
            }
            _ => {}
        }
        r
    }
}
