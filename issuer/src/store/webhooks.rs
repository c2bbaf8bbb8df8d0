//! Outgoing webhooks (`webhook_endpoints`, `webhook_events`,
//! `webhook_deliveries`, `webhook_attempts`): endpoints, the outbox each
//! write transaction fills, and the delivery workers' claims and records
//! (see [`crate::webhooks`]).

use serde_json::json;
use zeroize::Zeroizing;

use super::*;
use crate::error::RequestError;
use crate::webhooks::{
    self, After, Attempt, Delivery, Endpoint, Job, MAX_ENDPOINTS, Outcome, PREVIOUS_SECRET_SECS,
    SECRET_PURPOSE,
};

/// What a replay sends again to an endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replay {
    /// One event (delivered, failed or pending: it is queued again).
    Event(String),
    /// Every event of a type the endpoint takes since this time (unix
    /// seconds) that it has not been delivered, at most [`MAX_REPLAY`]:
    /// what it missed while failing or disabled.
    Since(u64),
}

/// Most events one replay queues.
pub const MAX_REPLAY: u64 = 10_000;

/// How long events and finished deliveries are kept (30 days): what a
/// replay can reach.
pub const WEBHOOK_RETENTION_SECS: u64 = 30 * 86_400;

/// A change to an endpoint (`None`: unchanged).
#[derive(Debug, Clone, Default)]
pub struct EndpointPatch {
    /// A new URL.
    pub url: Option<String>,
    /// A new description.
    pub description: Option<String>,
    /// A new subscription (empty: every type).
    pub events: Option<Vec<String>>,
    /// Disable (`false`) or enable (`true`) it.
    pub enabled: Option<bool>,
}

const ENDPOINT_SELECT: &str = "SELECT e.endpoint_id, e.url, e.description, e.events, e.created_at, \
     e.disabled_at, e.disabled_reason, \
     (SELECT COUNT(*) FROM webhook_deliveries d WHERE d.endpoint_id = e.endpoint_id AND d.status = 'pending') AS pending \
     FROM webhook_endpoints e";

#[derive(sqlx::FromRow)]
struct EndpointRow {
    endpoint_id: String,
    url: String,
    description: String,
    events: String,
    created_at: i64,
    disabled_at: Option<i64>,
    disabled_reason: Option<String>,
    pending: i64,
}

fn endpoint_from_row(r: &AnyRow) -> Result<Endpoint> {
    let r: EndpointRow = read_row(r, "reading webhook endpoints")?;
    Ok(Endpoint {
        endpoint_id: r.endpoint_id,
        url: r.url,
        description: r.description,
        events: r.events.split_whitespace().map(str::to_owned).collect(),
        created_at: u(r.created_at),
        disabled_at: r.disabled_at.map(u),
        disabled_reason: r.disabled_reason,
        pending: u(r.pending),
    })
}

const DELIVERY_SELECT: &str = "SELECT d.delivery_id, d.event_id, v.event_type, d.status, d.attempts, \
     d.next_at, d.last_status, d.last_error, d.created_at, d.done_at \
     FROM webhook_deliveries d JOIN webhook_events v ON v.event_id = d.event_id";

#[derive(sqlx::FromRow)]
struct DeliveryRow {
    delivery_id: String,
    event_id: String,
    event_type: String,
    status: String,
    attempts: i64,
    next_at: i64,
    last_status: Option<i64>,
    last_error: Option<String>,
    created_at: i64,
    done_at: Option<i64>,
}

fn delivery_from_row(r: &AnyRow) -> Result<Delivery> {
    let r: DeliveryRow = read_row(r, "reading webhook deliveries")?;
    let pending = r.status == "pending";
    Ok(Delivery {
        delivery_id: r.delivery_id,
        event_id: r.event_id,
        event_type: r.event_type,
        status: r.status,
        attempts: u(r.attempts),
        next_at: pending.then(|| u(r.next_at)),
        last_status: r.last_status.map(u),
        last_error: r.last_error,
        created_at: u(r.created_at),
        done_at: r.done_at.map(u),
    })
}

/// A delivery id: `whd_`, then the queueing seq, the event's seq, its
/// place among the deliveries queued together and the 8 random hex digits
/// `nonce` of their transaction, so an endpoint's deliveries sort by id as
/// they are sent.
fn delivery_id(seq: u64, event_seq: u64, n: usize, nonce: &str) -> String {
    format!("whd_{seq:016x}{event_seq:016x}{n:04x}{nonce}")
}

impl Store {
    /// Registers an endpoint of the organisation, signing with `secret`
    /// (`whsec_...`).
    pub async fn create_webhook(
        &self,
        org_id: &str,
        url: &str,
        description: &str,
        events: &[String],
        secret: &str,
        ctx: &Context,
    ) -> Result<Endpoint> {
        webhooks::check_url(url)?;
        check_text("description", description, 200)?;
        let events = webhooks::check_events(events)?;
        webhooks::secret_key(secret)?;
        let endpoint_id = format!("whe_{}", random_hex(8)?);
        let sealed = self.data_keys()?.seal_secret(
            org_id,
            SECRET_PURPOSE,
            &endpoint_id,
            secret.as_bytes(),
        )?;
        let mut tx = self.begin_write().await?;
        let count = tx
            .fetch(
                sqlx::query("SELECT COUNT(*) FROM webhook_endpoints WHERE org_id = $1")
                    .bind(org_id.to_owned()),
                "reading webhook endpoints",
            )
            .await?;
        let count: i64 = count
            .first()
            .map(|r| r.try_get(0))
            .transpose()
            .map_err(db_err("reading webhook endpoints"))?
            .unwrap_or(0);
        if u(count) >= MAX_ENDPOINTS {
            return Err(Error::Request(RequestError::LimitReached {
                what: "webhook endpoints",
                max: MAX_ENDPOINTS,
            }));
        }
        tx.exec(
            sqlx::query(
                "INSERT INTO webhook_endpoints (endpoint_id, org_id, url, description, events, secret, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(endpoint_id.clone())
            .bind(org_id.to_owned())
            .bind(url.to_owned())
            .bind(description.to_owned())
            .bind(events.join(" "))
            .bind(sealed)
            .bind(i(ctx.now)),
            "registering a webhook endpoint",
        )
        .await?;
        tx.audit(
            ctx,
            "webhook.create",
            &json!({ "org_id": org_id, "endpoint_id": endpoint_id, "events": events }),
        )
        .await?;
        tx.commit().await?;
        self.org_webhook(org_id, &endpoint_id)
            .await?
            .ok_or_else(|| corrupt("a new webhook endpoint is missing"))
    }

    /// The organisation's endpoints, by id after `after`.
    pub async fn org_webhooks(
        &self,
        org_id: &str,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<Endpoint>> {
        let rows = self
            .fetch_all(
                sqlx::query(&format!(
                    "{ENDPOINT_SELECT} WHERE e.org_id = $1 AND e.endpoint_id > $2 ORDER BY e.endpoint_id LIMIT {}",
                    limit.clamp(1, crate::service::MAX_PAGE)
                ))
                .bind(org_id.to_owned())
                .bind(after.unwrap_or("").to_owned()),
                "reading webhook endpoints",
            )
            .await?;
        rows.iter().map(endpoint_from_row).collect()
    }

    /// One of the organisation's endpoints.
    pub async fn org_webhook(&self, org_id: &str, endpoint_id: &str) -> Result<Option<Endpoint>> {
        let rows = self
            .fetch_all(
                sqlx::query(&format!(
                    "{ENDPOINT_SELECT} WHERE e.org_id = $1 AND e.endpoint_id = $2"
                ))
                .bind(org_id.to_owned())
                .bind(endpoint_id.to_owned()),
                "reading webhook endpoints",
            )
            .await?;
        rows.first().map(endpoint_from_row).transpose()
    }

    /// Changes an endpoint (`None` if the organisation has none such).
    /// Enabling a disabled endpoint resumes its queue where it stopped.
    pub async fn update_webhook(
        &self,
        org_id: &str,
        endpoint_id: &str,
        patch: &EndpointPatch,
        ctx: &Context,
    ) -> Result<Option<Endpoint>> {
        if let Some(url) = &patch.url {
            webhooks::check_url(url)?;
        }
        if let Some(d) = &patch.description {
            check_text("description", d, 200)?;
        }
        let events = patch
            .events
            .as_deref()
            .map(webhooks::check_events)
            .transpose()?;
        let mut tx = self.begin_write().await?;
        let found = tx
            .fetch(
                sqlx::query(
                    "SELECT disabled_at FROM webhook_endpoints WHERE org_id = $1 AND endpoint_id = $2",
                )
                .bind(org_id.to_owned())
                .bind(endpoint_id.to_owned()),
                "reading webhook endpoints",
            )
            .await?;
        let Some(row) = found.first() else {
            return Ok(None);
        };
        let disabled: Option<i64> = row
            .try_get(0)
            .map_err(db_err("reading webhook endpoints"))?;
        let mut changed = serde_json::Map::new();
        if let Some(url) = &patch.url {
            tx.exec(
                sqlx::query("UPDATE webhook_endpoints SET url = $1 WHERE endpoint_id = $2")
                    .bind(url.clone())
                    .bind(endpoint_id.to_owned()),
                "changing a webhook endpoint",
            )
            .await?;
            changed.insert("url".into(), json!(true));
        }
        if let Some(d) = &patch.description {
            tx.exec(
                sqlx::query("UPDATE webhook_endpoints SET description = $1 WHERE endpoint_id = $2")
                    .bind(d.clone())
                    .bind(endpoint_id.to_owned()),
                "changing a webhook endpoint",
            )
            .await?;
        }
        if let Some(events) = &events {
            tx.exec(
                sqlx::query("UPDATE webhook_endpoints SET events = $1 WHERE endpoint_id = $2")
                    .bind(events.join(" "))
                    .bind(endpoint_id.to_owned()),
                "changing a webhook endpoint",
            )
            .await?;
            changed.insert("events".into(), json!(events));
        }
        match (patch.enabled, disabled.is_some()) {
            (Some(true), true) => {
                tx.exec(
                    sqlx::query(
                        "UPDATE webhook_endpoints SET disabled_at = NULL, disabled_reason = NULL, \
                         next_at = $1 WHERE endpoint_id = $2",
                    )
                    .bind(i(ctx.now))
                    .bind(endpoint_id.to_owned()),
                    "enabling a webhook endpoint",
                )
                .await?;
                changed.insert("enabled".into(), json!(true));
            }
            (Some(false), false) => {
                tx.exec(
                    sqlx::query(
                        "UPDATE webhook_endpoints SET disabled_at = $1, disabled_reason = 'disabled through the API' \
                         WHERE endpoint_id = $2",
                    )
                    .bind(i(ctx.now))
                    .bind(endpoint_id.to_owned()),
                    "disabling a webhook endpoint",
                )
                .await?;
                changed.insert("enabled".into(), json!(false));
            }
            _ => {}
        }
        changed.insert("org_id".into(), json!(org_id));
        changed.insert("endpoint_id".into(), json!(endpoint_id));
        tx.audit(ctx, "webhook.update", &serde_json::Value::Object(changed))
            .await?;
        tx.commit().await?;
        self.org_webhook(org_id, endpoint_id).await
    }

    /// Deletes an endpoint with its deliveries and their attempts (`false`
    /// if the organisation has none such).
    pub async fn delete_webhook(
        &self,
        org_id: &str,
        endpoint_id: &str,
        ctx: &Context,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        tx.exec(
                sqlx::query(
                    "DELETE FROM webhook_attempts WHERE delivery_id IN \
                     (SELECT delivery_id FROM webhook_deliveries WHERE org_id = $1 AND endpoint_id = $2)",
                )
                .bind(org_id.to_owned())
                .bind(endpoint_id.to_owned()),
                "deleting a webhook endpoint",
            )
            .await?;
        tx.exec(
            sqlx::query("DELETE FROM webhook_deliveries WHERE org_id = $1 AND endpoint_id = $2")
                .bind(org_id.to_owned())
                .bind(endpoint_id.to_owned()),
            "deleting a webhook endpoint",
        )
        .await?;
        let n = tx
            .exec(
                sqlx::query("DELETE FROM webhook_endpoints WHERE org_id = $1 AND endpoint_id = $2")
                    .bind(org_id.to_owned())
                    .bind(endpoint_id.to_owned()),
                "deleting a webhook endpoint",
            )
            .await?;
        if n == 0 {
            return Ok(false);
        }
        tx.audit(
            ctx,
            "webhook.delete",
            &json!({ "org_id": org_id, "endpoint_id": endpoint_id }),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Replaces an endpoint's secret with `secret`; the old one goes on
    /// signing beside it for [`PREVIOUS_SECRET_SECS`], so receivers can
    /// switch without a gap. `None` if the organisation has no such endpoint.
    pub async fn rotate_webhook_secret(
        &self,
        org_id: &str,
        endpoint_id: &str,
        secret: &str,
        ctx: &Context,
    ) -> Result<Option<Endpoint>> {
        webhooks::secret_key(secret)?;
        let keys = self.data_keys()?;
        let mut tx = self.begin_write().await?;
        let found = tx
            .fetch(
                sqlx::query(
                    "SELECT secret FROM webhook_endpoints WHERE org_id = $1 AND endpoint_id = $2",
                )
                .bind(org_id.to_owned())
                .bind(endpoint_id.to_owned()),
                "reading webhook endpoints",
            )
            .await?;
        let Some(row) = found.first() else {
            return Ok(None);
        };
        let old: String = row
            .try_get(0)
            .map_err(db_err("reading webhook endpoints"))?;
        let sealed = keys.seal_secret(org_id, SECRET_PURPOSE, endpoint_id, secret.as_bytes())?;
        tx.exec(
            sqlx::query(
                "UPDATE webhook_endpoints SET secret = $1, previous_secret = $2, previous_until = $3 \
                 WHERE endpoint_id = $4",
            )
            .bind(sealed)
            .bind(old)
            .bind(i(ctx.now.saturating_add(PREVIOUS_SECRET_SECS)))
            .bind(endpoint_id.to_owned()),
            "rotating a webhook secret",
        )
        .await?;
        tx.audit(
            ctx,
            "webhook.rotate_secret",
            &json!({ "org_id": org_id, "endpoint_id": endpoint_id }),
        )
        .await?;
        tx.commit().await?;
        self.org_webhook(org_id, endpoint_id).await
    }

    /// An endpoint's signing secret (`None` if the organisation has no
    /// such endpoint).
    pub async fn webhook_secret(
        &self,
        org_id: &str,
        endpoint_id: &str,
    ) -> Result<Option<Zeroizing<String>>> {
        let rows = self
            .fetch_all(
                sqlx::query(
                    "SELECT secret FROM webhook_endpoints WHERE org_id = $1 AND endpoint_id = $2",
                )
                .bind(org_id.to_owned())
                .bind(endpoint_id.to_owned()),
                "reading webhook endpoints",
            )
            .await?;
        let Some(r) = rows.first() else {
            return Ok(None);
        };
        let sealed: String = r.try_get(0).map_err(db_err("reading webhook endpoints"))?;
        let plain = self
            .data_keys()?
            .open_secret(org_id, SECRET_PURPOSE, endpoint_id, &sealed)?;
        let text = String::from_utf8(plain.to_vec())
            .map_err(|_| corrupt("a webhook secret is not text"))?;
        Ok(Some(Zeroizing::new(text)))
    }

    /// An endpoint's deliveries, newest first, older than `before` (`None`
    /// if the organisation has no such endpoint); `status` keeps one kind.
    pub async fn webhook_deliveries(
        &self,
        org_id: &str,
        endpoint_id: &str,
        status: Option<&str>,
        before: Option<&str>,
        limit: u64,
    ) -> Result<Option<Vec<Delivery>>> {
        if self.org_webhook(org_id, endpoint_id).await?.is_none() {
            return Ok(None);
        }
        let rows = self
            .fetch_all(
                sqlx::query(&format!(
                    "{DELIVERY_SELECT} WHERE d.org_id = $1 AND d.endpoint_id = $2 AND d.delivery_id < $3 \
                     AND ($4 = '' OR d.status = $4) ORDER BY d.delivery_id DESC LIMIT {}",
                    limit.clamp(1, crate::service::MAX_PAGE)
                ))
                .bind(org_id.to_owned())
                .bind(endpoint_id.to_owned())
                .bind(before.unwrap_or("whd_g").to_owned())
                .bind(status.unwrap_or("").to_owned()),
                "reading webhook deliveries",
            )
            .await?;
        rows.iter()
            .map(delivery_from_row)
            .collect::<Result<_>>()
            .map(Some)
    }

    /// One delivery and its attempts, oldest first (`None` if the
    /// organisation's endpoint has no such delivery).
    pub async fn webhook_delivery(
        &self,
        org_id: &str,
        endpoint_id: &str,
        delivery_id: &str,
    ) -> Result<Option<(Delivery, Vec<Attempt>)>> {
        let rows = self
            .fetch_all(
                sqlx::query(&format!(
                    "{DELIVERY_SELECT} WHERE d.org_id = $1 AND d.endpoint_id = $2 AND d.delivery_id = $3"
                ))
                .bind(org_id.to_owned())
                .bind(endpoint_id.to_owned())
                .bind(delivery_id.to_owned()),
                "reading webhook deliveries",
            )
            .await?;
        let Some(d) = rows.first().map(delivery_from_row).transpose()? else {
            return Ok(None);
        };
        let rows = self
            .fetch_all(
                sqlx::query(
                    "SELECT attempt, at, status, error, millis FROM webhook_attempts \
                     WHERE org_id = $1 AND delivery_id = $2 ORDER BY attempt",
                )
                .bind(org_id.to_owned())
                .bind(delivery_id.to_owned()),
                "reading webhook attempts",
            )
            .await?;
        let attempts = rows
            .iter()
            .map(|r| {
                let g = db_err("reading webhook attempts");
                Ok(Attempt {
                    attempt: u(r.try_get("attempt").map_err(&g)?),
                    at: u(r.try_get("at").map_err(&g)?),
                    status: r.try_get::<Option<i64>, _>("status").map_err(&g)?.map(u),
                    error: r.try_get("error").map_err(&g)?,
                    millis: u(r.try_get("millis").map_err(&g)?),
                })
            })
            .collect::<Result<_>>()?;
        Ok(Some((d, attempts)))
    }

    /// Queues events again for an endpoint, after everything queued so far;
    /// how many (`None` if the organisation has no such endpoint, or the
    /// event is not one of its events).
    pub async fn replay_webhook(
        &self,
        org_id: &str,
        endpoint_id: &str,
        what: &Replay,
        ctx: &Context,
    ) -> Result<Option<u64>> {
        let mut tx = self.begin_write().await?;
        let found = tx
            .fetch(
                sqlx::query(
                    "SELECT events FROM webhook_endpoints WHERE org_id = $1 AND endpoint_id = $2",
                )
                .bind(org_id.to_owned())
                .bind(endpoint_id.to_owned()),
                "reading webhook endpoints",
            )
            .await?;
        let Some(row) = found.first() else {
            return Ok(None);
        };
        let types: String = row
            .try_get(0)
            .map_err(db_err("reading webhook endpoints"))?;
        let rows = match what {
            Replay::Event(id) => {
                tx.fetch(
                    sqlx::query(
                        "SELECT event_id, seq, event_type FROM webhook_events WHERE org_id = $1 AND event_id = $2",
                    )
                    .bind(org_id.to_owned())
                    .bind(id.clone()),
                    "reading webhook events",
                )
                .await?
            }
            Replay::Since(t) => {
                tx.fetch(
                    sqlx::query(&format!(
                        "SELECT v.event_id, v.seq, v.event_type FROM webhook_events v WHERE v.org_id = $1 \
                         AND v.created_at >= $2 AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d \
                         WHERE d.event_id = v.event_id AND d.endpoint_id = $3 AND d.status <> 'failed') \
                         ORDER BY v.seq LIMIT {MAX_REPLAY}"
                    ))
                    .bind(org_id.to_owned())
                    .bind(i(*t))
                    .bind(endpoint_id.to_owned()),
                    "reading webhook events",
                )
                .await?
            }
        };
        let mut events = Vec::with_capacity(rows.len());
        for r in &rows {
            let g = db_err("reading webhook events");
            let id: String = r.try_get(0).map_err(&g)?;
            let seq: i64 = r.try_get(1).map_err(&g)?;
            let t: String = r.try_get(2).map_err(&g)?;
            if types.is_empty() || types.split_whitespace().any(|x| x == t) {
                events.push((id, u(seq)));
            }
        }
        if matches!(what, Replay::Event(_)) && events.is_empty() {
            return Ok(None);
        }
        let seq = tx
            .audit(
                ctx,
                "webhook.replay",
                &json!({ "org_id": org_id, "endpoint_id": endpoint_id, "events": events.len() }),
            )
            .await?;
        let queued: Vec<(String, String, u64, u64)> = events
            .into_iter()
            .map(|(event_id, event_seq)| (endpoint_id.to_owned(), event_id, seq, event_seq))
            .collect();
        tx.queue_deliveries(org_id, &queued, ctx.now, &Default::default())
            .await?;
        tx.commit().await?;
        Ok(Some(queued.len() as u64))
    }

    // ---- delivery workers --------------------------------------------

    /// Endpoints with a delivery due at `now`, enabled and claimed by no
    /// replica (or by one whose claim ran out), at most `limit`.
    pub async fn due_webhook_endpoints(&self, now: u64, limit: u64) -> Result<Vec<String>> {
        let rows = self
            .fetch_all(
                sqlx::query(&format!(
                    "SELECT endpoint_id FROM webhook_endpoints WHERE next_at <= $1 AND disabled_at IS NULL \
                     AND (claimed_until IS NULL OR claimed_until < $1) ORDER BY next_at LIMIT {}",
                    limit.max(1)
                ))
                .bind(i(now)),
                "reading webhook endpoints",
            )
            .await?;
        rows.iter()
            .map(|r| r.try_get(0).map_err(db_err("reading webhook endpoints")))
            .collect()
    }

    /// Claims an endpoint for replica `me` until `until`, unless another
    /// replica's claim holds; whether it is this replica's now.
    pub async fn claim_webhook_endpoint(
        &self,
        endpoint_id: &str,
        me: &str,
        now: u64,
        until: u64,
    ) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE webhook_endpoints SET claimed_by = $1, claimed_until = $2 WHERE endpoint_id = $3 \
             AND disabled_at IS NULL AND (claimed_until IS NULL OR claimed_until < $4 OR claimed_by = $1)",
        )
        .bind(me.to_owned())
        .bind(i(until))
        .bind(endpoint_id.to_owned())
        .bind(i(now))
        .execute(&self.pool)
        .await
        .map_err(db_err("claiming a webhook endpoint"))?
        .rows_affected();
        Ok(n == 1)
    }

    /// The next deliveries replica `me` sends to an endpoint it claimed, in
    /// order, at most `limit`, each with the keys to sign it: those due at
    /// `now` from the oldest pending one on. Empty when the oldest is not
    /// due: the endpoint is then left for when it is (or idle, with nothing
    /// pending) and the claim released.
    pub async fn next_webhook_jobs(
        &self,
        endpoint_id: &str,
        me: &str,
        now: u64,
        limit: u64,
    ) -> Result<Vec<Job>> {
        let rows = self
            .fetch_all(
                sqlx::query(&format!(
                    "SELECT d.delivery_id, e.org_id, e.url, d.event_id, v.event_type, v.payload, d.attempts, \
                     d.next_at, e.secret, e.previous_secret, e.previous_until \
                     FROM webhook_endpoints e \
                     JOIN webhook_deliveries d ON d.endpoint_id = e.endpoint_id AND d.status = 'pending' \
                     JOIN webhook_events v ON v.event_id = d.event_id \
                     WHERE e.endpoint_id = $1 AND e.claimed_by = $2 AND e.disabled_at IS NULL \
                     ORDER BY d.seq, d.event_seq, d.delivery_id LIMIT {}",
                    limit.clamp(1, 500)
                ))
                .bind(endpoint_id.to_owned())
                .bind(me.to_owned()),
                "reading webhook deliveries",
            )
            .await?;
        let Some(first) = rows.first() else {
            self.idle_webhook_endpoint(endpoint_id, me, None).await?;
            return Ok(Vec::new());
        };
        let g = db_err("reading webhook deliveries");
        let head_at = u(first.try_get("next_at").map_err(&g)?);
        if head_at > now {
            self.idle_webhook_endpoint(endpoint_id, me, Some(head_at))
                .await?;
            return Ok(Vec::new());
        }
        // The endpoint's keys, opened once for the batch.
        let org_id: String = first.try_get("org_id").map_err(&g)?;
        let keys = self.data_keys()?;
        let open = |sealed: &str| -> Result<Zeroizing<Vec<u8>>> {
            let secret = keys.open_secret(&org_id, SECRET_PURPOSE, endpoint_id, sealed)?;
            let text = std::str::from_utf8(&secret)
                .map_err(|_| corrupt("a webhook secret is not text"))?;
            webhooks::secret_key(text)
        };
        let mut signing = vec![open(&first.try_get::<String, _>("secret").map_err(&g)?)?];
        let previous: Option<String> = first.try_get("previous_secret").map_err(&g)?;
        let until: Option<i64> = first.try_get("previous_until").map_err(&g)?;
        if let (Some(p), Some(until)) = (previous, until)
            && u(until) > now
        {
            signing.push(open(&p)?);
        }
        let mut jobs = Vec::with_capacity(rows.len());
        for r in &rows {
            let next_at = u(r.try_get("next_at").map_err(&g)?);
            // A retried delivery later in the queue (a replay's) waits its turn.
            if next_at > now {
                break;
            }
            jobs.push(Job {
                delivery_id: r.try_get("delivery_id").map_err(&g)?,
                endpoint_id: endpoint_id.to_owned(),
                org_id: org_id.clone(),
                url: r.try_get("url").map_err(&g)?,
                event_id: r.try_get("event_id").map_err(&g)?,
                event_type: r.try_get("event_type").map_err(&g)?,
                payload: r.try_get("payload").map_err(&g)?,
                attempts: u(r.try_get("attempts").map_err(&g)?),
                next_at,
                keys: signing.iter().map(|k| Zeroizing::new(k.to_vec())).collect(),
            });
        }
        Ok(jobs)
    }

    /// Releases replica `me`'s claim on an endpoint, noting when its next
    /// delivery is due (`None`: it has none pending). Under the ledger's
    /// write lock, so a delivery queued meanwhile (also under it) is never
    /// missed: either it is seen here, or it sets the time after this.
    async fn idle_webhook_endpoint(
        &self,
        endpoint_id: &str,
        me: &str,
        next_at: Option<u64>,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let next = match next_at {
            Some(t) => Some(t),
            None => {
                let rows = tx
                    .fetch(
                        sqlx::query(
                            "SELECT MIN(next_at) FROM webhook_deliveries WHERE endpoint_id = $1 AND status = 'pending'",
                        )
                        .bind(endpoint_id.to_owned()),
                        "reading webhook deliveries",
                    )
                    .await?;
                rows.first()
                    .map(|r| r.try_get::<Option<i64>, _>(0))
                    .transpose()
                    .map_err(db_err("reading webhook deliveries"))?
                    .flatten()
                    .map(u)
            }
        };
        tx.exec(
            sqlx::query(
                "UPDATE webhook_endpoints SET next_at = $1, claimed_by = NULL, claimed_until = NULL \
                 WHERE endpoint_id = $2 AND claimed_by = $3",
            )
            .bind(next.map(i))
            .bind(endpoint_id.to_owned())
            .bind(me.to_owned()),
            "releasing a webhook endpoint",
        )
        .await?;
        tx.commit().await
    }

    /// Records the attempts of replica `me` at `now`, in one transaction,
    /// and what follows from each, renewing its claim until `claim_until`
    /// (see [`After`]); all [`After::LostClaim`] if the claim ran out
    /// meanwhile (nothing is recorded: another replica may be sending).
    pub async fn record_webhook_attempts(
        &self,
        sent: &[(Job, Outcome)],
        me: &str,
        now: u64,
        claim_until: u64,
    ) -> Result<Vec<After>> {
        let Some((first, _)) = sent.first() else {
            return Ok(Vec::new());
        };
        let mut tx = self.begin_write().await?;
        let claimed = tx
            .exec(
                sqlx::query(
                    "UPDATE webhook_endpoints SET claimed_until = $1 WHERE endpoint_id = $2 AND claimed_by = $3",
                )
                .bind(i(claim_until))
                .bind(first.endpoint_id.clone())
                .bind(me.to_owned()),
                "renewing a webhook endpoint's claim",
            )
            .await?;
        if claimed == 0 {
            return Ok(vec![After::LostClaim; sent.len()]);
        }
        // What follows from each: every delivery up to the first failure.
        let mut afters = Vec::with_capacity(sent.len());
        for (job, outcome) in sent {
            let after = if outcome.accepted() {
                After::Delivered
            } else {
                webhooks::retry_at(job.attempts + 1, now).map_or(After::Failed, After::Retry)
            };
            afters.push(after);
            if after != After::Delivered {
                break;
            }
        }
        let sent = &sent[..afters.len()];
        let clip = |e: &Option<String>| e.as_deref().map(|e| clip(e, 500));
        // Every attempt, many rows per statement.
        for chunk in sent.chunks(ATTEMPT_ROWS) {
            let (sql, rows) = padded_insert(
                "webhook_attempts (delivery_id, attempt, org_id, at, status, error, millis)",
                tx.backend(),
                chunk.len(),
                7,
            );
            let mut q = sqlx::query(&sql);
            for (job, outcome) in chunk {
                q = q
                    .bind(job.delivery_id.clone())
                    .bind(i(job.attempts + 1))
                    .bind(job.org_id.clone())
                    .bind(i(now))
                    .bind(outcome.status.map(i64::from))
                    .bind(clip(&outcome.error))
                    .bind(i(outcome.millis));
            }
            for _ in chunk.len()..rows {
                q = q
                    .bind(String::new())
                    .bind(0_i64)
                    .bind(String::new())
                    .bind(0_i64)
                    .bind(None::<i64>)
                    .bind(None::<String>)
                    .bind(0_i64);
            }
            tx.exec(q, "recording webhook attempts").await?;
        }
        // The delivered ones, one statement per HTTP status they got.
        let mut by_status: std::collections::BTreeMap<Option<u16>, Vec<&str>> = Default::default();
        for ((job, outcome), after) in sent.iter().zip(&afters) {
            if *after == After::Delivered {
                by_status
                    .entry(outcome.status)
                    .or_default()
                    .push(&job.delivery_id);
            }
        }
        for (status, ids) in by_status {
            for chunk in ids.chunks(ATTEMPT_ROWS) {
                let mut sql = String::from(
                    "UPDATE webhook_deliveries SET status = 'delivered', attempts = attempts + 1, next_at = $1, \
                     last_status = $2, last_error = NULL, done_at = $1 WHERE delivery_id IN (",
                );
                // Padded to a power of two by repeating an id (see
                // [`padded_insert`]).
                let rows = chunk.len().next_power_of_two();
                for n in 0..rows {
                    if n > 0 {
                        sql.push(',');
                    }
                    sql.push_str(&format!("${}", n + 3));
                }
                sql.push(')');
                let mut q = sqlx::query(&sql).bind(i(now)).bind(status.map(i64::from));
                for n in 0..rows {
                    q = q.bind(chunk[n.min(chunk.len() - 1)].to_owned());
                }
                tx.exec(q, "recording webhook deliveries").await?;
            }
        }
        // The one that failed, if one did.
        if let (Some((job, outcome)), Some(after)) = (sent.last(), afters.last())
            && *after != After::Delivered
        {
            let attempts = job.attempts + 1;
            let (status, next_at, done_at) = match after {
                After::Retry(t) => ("pending", *t, None),
                _ => ("failed", now, Some(now)),
            };
            tx.exec(
                sqlx::query(
                    "UPDATE webhook_deliveries SET status = $1, attempts = $2, next_at = $3, last_status = $4, \
                     last_error = $5, done_at = $6 WHERE delivery_id = $7",
                )
                .bind(status)
                .bind(i(attempts))
                .bind(i(next_at))
                .bind(outcome.status.map(i64::from))
                .bind(clip(&outcome.error))
                .bind(done_at.map(i))
                .bind(job.delivery_id.clone()),
                "recording a webhook delivery",
            )
            .await?;
            if *after == After::Failed {
                let reason = format!(
                    "delivery {} of event {} failed {attempts} times",
                    job.delivery_id, job.event_id
                );
                tx.exec(
                    sqlx::query(
                        "UPDATE webhook_endpoints SET disabled_at = $1, disabled_reason = $2, claimed_by = NULL, \
                         claimed_until = NULL WHERE endpoint_id = $3",
                    )
                    .bind(i(now))
                    .bind(reason)
                    .bind(job.endpoint_id.clone()),
                    "disabling a webhook endpoint",
                )
                .await?;
                tx.audit(
                    &Context {
                        now,
                        actor: "service".into(),
                    },
                    "webhook.disable",
                    &json!({
                        "org_id": job.org_id,
                        "endpoint_id": job.endpoint_id,
                        "delivery_id": job.delivery_id,
                        "event_id": job.event_id,
                        "attempts": attempts,
                    }),
                )
                .await?;
            }
        }
        tx.commit().await?;
        Ok(afters)
    }

    /// Announces the leases that ran out by `now` with no check-in or
    /// release since (`seat.lapse` in the audit log, `lease.lapsed` to
    /// webhooks), each lapse once, oldest first, at most `limit` a call;
    /// how many. A seat checked in again later and left to lapse again is
    /// announced again. Under the ledger's lock, so replicas share the
    /// sweep's mark and announce nothing twice.
    pub async fn announce_lapsed_leases(&self, now: u64, limit: u64) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        let mark = tx
            .fetch(
                sqlx::query("SELECT value FROM meta WHERE name = 'lapse_mark'"),
                "reading the lapse mark",
            )
            .await?;
        let mark: Option<String> = mark
            .first()
            .map(|r| r.try_get(0))
            .transpose()
            .map_err(db_err("reading the lapse mark"))?;
        let (after_at, after_seat) = match mark.as_deref().and_then(|m| m.split_once(':')) {
            Some((t, s)) => (t.parse::<i64>().unwrap_or(0), s.to_owned()),
            None => (0, String::new()),
        };
        let rows = tx
            .fetch(
                sqlx::query(&format!(
                    "SELECT seat_id, org_id, license_id, expires_at, released_at FROM seats \
                     WHERE (expires_at > $1 OR (expires_at = $1 AND seat_id > $2)) AND expires_at < $3 \
                     ORDER BY expires_at, seat_id LIMIT {}",
                    limit.max(1)
                ))
                .bind(after_at)
                .bind(after_seat)
                .bind(i(now)),
                "reading lapsed leases",
            )
            .await?;
        let Some(last) = rows.last() else {
            return Ok(0);
        };
        let g = db_err("reading lapsed leases");
        let mark = format!(
            "{}:{}",
            last.try_get::<i64, _>("expires_at").map_err(&g)?,
            last.try_get::<String, _>("seat_id").map_err(&g)?
        );
        let ctx = Context {
            now,
            actor: "service".into(),
        };
        let mut n = 0;
        for r in &rows {
            if r.try_get::<Option<i64>, _>("released_at")
                .map_err(&g)?
                .is_some()
            {
                continue;
            }
            let seat: String = r.try_get("seat_id").map_err(&g)?;
            let org: String = r.try_get("org_id").map_err(&g)?;
            let license: String = r.try_get("license_id").map_err(&g)?;
            let expired: i64 = r.try_get("expires_at").map_err(&g)?;
            tx.audit(
                &ctx,
                "seat.lapse",
                &json!({ "org_id": org, "license_id": license, "seat_id": seat, "expired_at": u(expired) }),
            )
            .await?;
            n += 1;
        }
        tx.set_meta("lapse_mark", &mark).await?;
        tx.commit().await?;
        Ok(n)
    }

    /// Deletes finished deliveries (with their attempts) and events older
    /// than [`WEBHOOK_RETENTION_SECS`] before `now`; how many rows went.
    pub async fn prune_webhooks(&self, now: u64) -> Result<u64> {
        let before = i(now.saturating_sub(WEBHOOK_RETENTION_SECS));
        let mut tx = self.begin_write().await?;
        let mut n = tx
            .exec(
                sqlx::query(
                    "DELETE FROM webhook_attempts WHERE delivery_id IN (SELECT delivery_id FROM webhook_deliveries \
                     WHERE status <> 'pending' AND done_at < $1)",
                )
                .bind(before),
                "pruning webhook attempts",
            )
            .await?;
        n += tx
            .exec(
                sqlx::query(
                    "DELETE FROM webhook_deliveries WHERE status <> 'pending' AND done_at < $1",
                )
                .bind(before),
                "pruning webhook deliveries",
            )
            .await?;
        n += tx
            .exec(
                sqlx::query(
                    "DELETE FROM webhook_events WHERE created_at < $1 AND NOT EXISTS \
                     (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = webhook_events.event_id)",
                )
                .bind(before),
                "pruning webhook events",
            )
            .await?;
        tx.commit().await?;
        Ok(n)
    }
}

/// Event rows per statement (6 parameters each).
const EVENT_ROWS: usize = 512;
/// Attempt rows (7 parameters) or delivered ids per statement.
const ATTEMPT_ROWS: usize = 256;
/// Delivery rows per statement (10 parameters each).
const DELIVERY_ROWS: usize = 256;

impl WriteTx {
    /// The outbox: turns this transaction's audit entries into events for
    /// the organisations' endpoints that take them (see
    /// [`crate::webhooks`]). Organisations without endpoints cost one
    /// indexed read per transaction, and only when an entry announces an
    /// event.
    pub(super) async fn queue_webhooks(&mut self) -> Result<()> {
        let mut by_org: std::collections::BTreeMap<String, Vec<usize>> = Default::default();
        let mut parsed = Vec::new();
        let mut nonce = String::new();
        for (n, e) in self.pending.iter().enumerate() {
            let Some(org) = &e.org_id else { continue };
            // (With no details, a seat activation still counts.)
            if webhooks::event_type(&e.action, &serde_json::Value::Null).is_none() {
                continue;
            }
            by_org.entry(org.clone()).or_default().push(n);
        }
        for (org, entries) in by_org {
            let rows = self
                .fetch(
                    sqlx::query(
                        "SELECT endpoint_id, events, disabled_at, next_at FROM webhook_endpoints WHERE org_id = $1",
                    )
                    .bind(org.clone()),
                    "reading webhook endpoints",
                )
                .await?;
            if rows.is_empty() {
                continue;
            }
            if nonce.is_empty() {
                nonce = random_hex(4)?;
            }
            let mut endpoints = Vec::with_capacity(rows.len());
            // Endpoints with a delivery pending already (`next_at` set, and
            // kept so by the write lock this transaction holds) need not be
            // marked due again: one statement fewer for a busy endpoint.
            let mut marked = std::collections::HashSet::new();
            for r in &rows {
                let g = db_err("reading webhook endpoints");
                let id: String = r.try_get(0).map_err(&g)?;
                let types: String = r.try_get(1).map_err(&g)?;
                let disabled: Option<i64> = r.try_get(2).map_err(&g)?;
                let next_at: Option<i64> = r.try_get(3).map_err(&g)?;
                if next_at.is_some() {
                    marked.insert(id.clone());
                }
                endpoints.push((id, types, disabled.is_some()));
            }
            let mut events = Vec::new();
            let mut queued = Vec::new();
            for n in entries {
                let e = &self.pending[n];
                let details: serde_json::Value =
                    serde_json::from_str(&e.details).unwrap_or(serde_json::Value::Null);
                for (t, data) in webhooks::events_of(&e.action, &details) {
                    // Unique by the audit entry's seq; the nonce (one per
                    // transaction) keeps ids from being guessed.
                    let event_id = format!("evt_{:016x}{:04x}{nonce}", e.seq, events.len());
                    let body = webhooks::payload(t, e.at, &data);
                    for (endpoint, types, disabled) in &endpoints {
                        if !*disabled
                            && (types.is_empty() || types.split_whitespace().any(|x| x == t))
                        {
                            queued.push((endpoint.clone(), event_id.clone(), e.seq, e.seq));
                        }
                    }
                    events.push((event_id, e.seq, t, body, e.at));
                }
            }
            parsed.push((org, events, queued, marked));
        }
        for (org, events, queued, marked) in parsed {
            for chunk in events.chunks(EVENT_ROWS) {
                let (sql, rows) = padded_insert(
                    "webhook_events (event_id, org_id, seq, event_type, payload, created_at)",
                    self.backend,
                    chunk.len(),
                    6,
                );
                let mut q = sqlx::query(&sql);
                for (id, seq, t, body, at) in chunk {
                    q = q
                        .bind(id.clone())
                        .bind(org.clone())
                        .bind(i(*seq))
                        .bind(*t)
                        .bind(body.clone())
                        .bind(i(*at));
                }
                for _ in chunk.len()..rows {
                    q = q
                        .bind(String::new())
                        .bind(String::new())
                        .bind(0_i64)
                        .bind("")
                        .bind(String::new())
                        .bind(0_i64);
                }
                self.exec(q, "writing webhook events").await?;
            }
            let now = events.iter().map(|e| e.4).max().unwrap_or(0);
            self.queue_deliveries(&org, &queued, now, &marked).await?;
        }
        Ok(())
    }

    /// Queues deliveries (endpoint, event, seq, event seq) and marks their
    /// endpoints due, but for those in `marked` (read in this transaction
    /// with a delivery pending).
    pub(super) async fn queue_deliveries(
        &mut self,
        org_id: &str,
        queued: &[(String, String, u64, u64)],
        now: u64,
        marked: &std::collections::HashSet<String>,
    ) -> Result<()> {
        let nonce = random_hex(4)?;
        let mut n = 0;
        for chunk in queued.chunks(DELIVERY_ROWS) {
            let (sql, rows) = padded_insert(
                "webhook_deliveries (delivery_id, endpoint_id, org_id, event_id, seq, event_seq, \
                 status, attempts, next_at, created_at)",
                self.backend,
                chunk.len(),
                10,
            );
            let mut q = sqlx::query(&sql);
            for (endpoint, event, seq, event_seq) in chunk {
                n += 1;
                q = q
                    .bind(delivery_id(*seq, *event_seq, n, &nonce))
                    .bind(endpoint.clone())
                    .bind(org_id.to_owned())
                    .bind(event.clone())
                    .bind(i(*seq))
                    .bind(i(*event_seq))
                    .bind("pending")
                    .bind(0_i64)
                    .bind(i(now))
                    .bind(i(now));
            }
            for _ in chunk.len()..rows {
                q = q
                    .bind(String::new())
                    .bind(String::new())
                    .bind(String::new())
                    .bind(String::new())
                    .bind(0_i64)
                    .bind(0_i64)
                    .bind("")
                    .bind(0_i64)
                    .bind(0_i64)
                    .bind(0_i64);
            }
            self.exec(q, "queueing webhook deliveries").await?;
        }
        let mut endpoints: Vec<&str> = queued
            .iter()
            .map(|q| q.0.as_str())
            .filter(|e| !marked.contains(*e))
            .collect();
        endpoints.sort_unstable();
        endpoints.dedup();
        for e in endpoints {
            self.exec(
                sqlx::query(
                    "UPDATE webhook_endpoints SET next_at = $1 WHERE endpoint_id = $2 AND next_at IS NULL",
                )
                .bind(i(now))
                .bind(e.to_owned()),
                "marking a webhook endpoint due",
            )
            .await?;
        }
        Ok(())
    }
}
