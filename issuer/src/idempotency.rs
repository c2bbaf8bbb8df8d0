//! Idempotency keys: a client that retries a request with the same key
//! gets the first answer again instead of a second effect (a payment
//! webhook retried must not mint twice).
//!
//! One row per organisation and key, in `idempotency_keys`. The first
//! request with a key claims it ([`Claim::New`]) and, once answered,
//! records the response ([`Store::idempotency_finish`]). Every step runs
//! under the ledger's writer lock, so concurrent duplicates, on one replica
//! or several, see one claim: the others wait for its answer
//! ([`Claim::Pending`]) and then replay it. A key is kept for
//! [`KEY_LIFETIME`]; reused with another request, it is
//! [`Claim::Mismatch`]. A claim whose request never answered (the process
//! died) is taken over after [`ABANDONED_AFTER`], unless the request's
//! effect had committed: a request runs inside [`with_claim`], and every
//! write transaction it commits notes the effect on its claim atomically
//! ([`Claim::Unanswered`]), so a retry never repeats an effect whose answer
//! was lost.

use crate::error::{Error, Result};
use crate::error::{LedgerError, RequestError};
use crate::store::{Store, i, u};

/// How long a key and its response are kept (24 hours).
pub const KEY_LIFETIME: u64 = 24 * 3600;
/// A claim still unanswered after this long is taken over by the next
/// request with its key (its request died with its process).
pub const ABANDONED_AFTER: u64 = 60;
/// Longest idempotency key, in bytes.
pub const MAX_KEY_LEN: usize = 255;

/// A recorded response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    /// HTTP status.
    pub status: u16,
    /// Its `Content-Type`.
    pub content_type: String,
    /// Its body.
    pub body: String,
}

/// The response a mint records for its idempotency key in the mint's own
/// transaction (see [`crate::service::SignedMint::record`]): no crash
/// between the two can leave a license whose key a retry would mint again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// The idempotency key the request claimed.
    pub key: String,
    /// The response to replay.
    pub response: StoredResponse,
}

/// What a request with an idempotency key should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key is this request's: run it, then record the response.
    New,
    /// The key answered this same request before: send that again.
    Replay(StoredResponse),
    /// The same request with this key is running now: wait, then ask again.
    Pending,
    /// The key was used with another request.
    Mismatch,
    /// The first request with this key committed its effect, then died
    /// before its answer was recorded: running it again would repeat the
    /// effect, and its answer cannot be rebuilt.
    Unanswered,
}

/// The idempotency key the running request claimed.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// Its organisation.
    pub org_id: String,
    /// The key.
    pub key: String,
}

tokio::task_local! {
    static CLAIMED: Claimed;
}

/// Runs `request` as the one that claimed `claimed`: every write
/// transaction it commits (on this task) also notes the effect on the claim,
/// in the same transaction.
pub async fn with_claim<F: std::future::Future>(claimed: Claimed, request: F) -> F::Output {
    CLAIMED.scope(claimed, request).await
}

/// The claim of the request running on this task, if any.
pub(crate) fn current_claim() -> Option<Claimed> {
    CLAIMED.try_with(Claimed::clone).ok()
}

/// Whether `key` may be an idempotency key: 1 to [`MAX_KEY_LEN`] visible
/// ASCII characters or spaces, not only spaces.
#[must_use]
pub fn valid_key(key: &str) -> bool {
    (1..=MAX_KEY_LEN).contains(&key.len())
        && key.bytes().all(|b| (b' '..=b'~').contains(&b))
        && !key.trim().is_empty()
}

impl Store {
    /// Claims `key` for a request whose hash is `request_hash` (see
    /// [`Claim`]); drops the organisation's expired keys on the way.
    pub async fn idempotency_claim(
        &self,
        org_id: &str,
        key: &str,
        request_hash: &str,
        now: u64,
    ) -> Result<Claim> {
        if !valid_key(key) {
            return Err(Error::Request(RequestError::Invalid {
                field: "Idempotency-Key".to_owned(),
                problem: format!("give 1 to {MAX_KEY_LEN} visible ASCII characters"),
            }));
        }
        let doing = "reading idempotency keys";
        let mut tx = self.begin_write().await?;
        tx.exec(
            sqlx::query("DELETE FROM idempotency_keys WHERE created_at <= $1")
                .bind(i(now.saturating_sub(KEY_LIFETIME))),
            "dropping expired idempotency keys",
        )
        .await?;
        let rows = tx
            .fetch(
                sqlx::query(
                    "SELECT request_hash, created_at, status, content_type, body, effect \
                     FROM idempotency_keys WHERE org_id = $1 AND idem_key = $2",
                )
                .bind(org_id.to_owned())
                .bind(key.to_owned()),
                doing,
            )
            .await?;
        let g = |e| Error::db(doing, e);
        let claim = match rows.first() {
            None => {
                tx.exec(
                    sqlx::query(
                        "INSERT INTO idempotency_keys (org_id, idem_key, request_hash, created_at) \
                         VALUES ($1, $2, $3, $4)",
                    )
                    .bind(org_id.to_owned())
                    .bind(key.to_owned())
                    .bind(request_hash.to_owned())
                    .bind(i(now)),
                    "claiming the idempotency key",
                )
                .await?;
                Claim::New
            }
            Some(r) => {
                use sqlx::Row;
                let hash: String = r.try_get("request_hash").map_err(g)?;
                let created: i64 = r.try_get("created_at").map_err(g)?;
                let status: Option<i64> = r.try_get("status").map_err(g)?;
                if hash != request_hash {
                    Claim::Mismatch
                } else if let Some(status) = status {
                    Claim::Replay(StoredResponse {
                        status: u16::try_from(status).map_err(|_| {
                            Error::Ledger(LedgerError::Corrupt {
                                detail: "bad status in idempotency_keys".to_owned(),
                            })
                        })?,
                        content_type: r
                            .try_get::<Option<String>, _>("content_type")
                            .map_err(g)?
                            .unwrap_or_default(),
                        body: r
                            .try_get::<Option<String>, _>("body")
                            .map_err(g)?
                            .unwrap_or_default(),
                    })
                } else if u(created) + ABANDONED_AFTER <= now
                    && r.try_get::<Option<i64>, _>("effect").map_err(g)?.is_some()
                {
                    Claim::Unanswered
                } else if u(created) + ABANDONED_AFTER <= now {
                    tx.exec(
                        sqlx::query(
                            "UPDATE idempotency_keys SET created_at = $1 \
                             WHERE org_id = $2 AND idem_key = $3",
                        )
                        .bind(i(now))
                        .bind(org_id.to_owned())
                        .bind(key.to_owned()),
                        "taking over the idempotency key",
                    )
                    .await?;
                    Claim::New
                } else {
                    Claim::Pending
                }
            }
        };
        tx.commit().await?;
        Ok(claim)
    }

    /// Records the response to the request that claimed `key`.
    pub async fn idempotency_finish(
        &self,
        org_id: &str,
        key: &str,
        response: &StoredResponse,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        tx.exec(
            sqlx::query(
                "UPDATE idempotency_keys SET status = $1, content_type = $2, body = $3 \
                 WHERE org_id = $4 AND idem_key = $5",
            )
            .bind(i64::from(response.status))
            .bind(response.content_type.clone())
            .bind(response.body.clone())
            .bind(org_id.to_owned())
            .bind(key.to_owned()),
            "recording the idempotent response",
        )
        .await?;
        tx.commit().await
    }

    /// Releases a claim whose request failed on the server's side (a 5xx):
    /// a retry with the key runs the request again, unless an effect of the
    /// request committed (then the claim stays, and ends
    /// [`Claim::Unanswered`]).
    pub async fn idempotency_release(&self, org_id: &str, key: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        tx.exec(
            sqlx::query(
                "DELETE FROM idempotency_keys \
                 WHERE org_id = $1 AND idem_key = $2 AND status IS NULL AND effect IS NULL",
            )
            .bind(org_id.to_owned())
            .bind(key.to_owned()),
            "releasing the idempotency key",
        )
        .await?;
        tx.commit().await
    }
}
