//! License keys by email (`email_settings`, `email_outbox`; see
//! [`crate::email`]).

use serde_json::json;
use zeroize::Zeroizing;

use super::*;
use crate::email::{self, Job, PASSWORD_PURPOSE, RECIPIENT_PURPOSE, Security, Settings};
use crate::webhooks::retry_at;

/// How an email attempt went, for [`Store::record_email`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// The server took it.
    Sent,
    /// It failed: this error.
    Failed(String),
}

impl Store {
    /// Sets the organisation's SMTP settings (`password` sealed).
    pub async fn set_email_settings(
        &self,
        org_id: &str,
        s: &Settings,
        password: Option<&str>,
        ctx: &Context,
    ) -> Result<()> {
        email::check_settings(s, password)?;
        let sealed = password
            .map(|p| {
                self.data_keys()?
                    .seal_secret(org_id, PASSWORD_PURPOSE, org_id, p.as_bytes())
            })
            .transpose()?;
        let mut tx = self.begin_write().await?;
        tx.exec(
            sqlx::query("DELETE FROM email_settings WHERE org_id = $1").bind(org_id.to_owned()),
            "writing email settings",
        )
        .await?;
        tx.exec(
            sqlx::query(
                "INSERT INTO email_settings (org_id, host, port, security, username, password, from_addr, \
                 reply_to, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(org_id.to_owned())
            .bind(s.host.clone())
            .bind(i64::from(s.port))
            .bind(s.security.as_str())
            .bind(s.username.clone())
            .bind(sealed)
            .bind(s.from.clone())
            .bind(s.reply_to.clone())
            .bind(i(ctx.now)),
            "writing email settings",
        )
        .await?;
        tx.audit(
            ctx,
            "email.settings",
            &json!({ "org_id": org_id, "host": s.host, "port": s.port, "security": s.security.as_str() }),
        )
        .await?;
        tx.commit().await
    }

    /// The organisation's SMTP settings, if set.
    pub async fn email_settings(&self, org_id: &str) -> Result<Option<Settings>> {
        Ok(self.email_settings_sealed(org_id).await?.map(|(s, _)| s))
    }

    async fn email_settings_sealed(
        &self,
        org_id: &str,
    ) -> Result<Option<(Settings, Option<String>)>> {
        let rows = self
            .fetch_all(
                sqlx::query(
                    "SELECT host, port, security, username, password, from_addr, reply_to, updated_at \
                     FROM email_settings WHERE org_id = $1",
                )
                .bind(org_id.to_owned()),
                "reading email settings",
            )
            .await?;
        let Some(r) = rows.first() else {
            return Ok(None);
        };
        let g = db_err("reading email settings");
        let security: String = r.try_get("security").map_err(&g)?;
        Ok(Some((
            Settings {
                host: r.try_get("host").map_err(&g)?,
                port: u16::try_from(r.try_get::<i64, _>("port").map_err(&g)?).unwrap_or(0),
                security: Security::parse(&security)
                    .ok_or_else(|| corrupt("unknown SMTP security"))?,
                username: r.try_get("username").map_err(&g)?,
                from: r.try_get("from_addr").map_err(&g)?,
                reply_to: r.try_get("reply_to").map_err(&g)?,
                updated_at: u(r.try_get("updated_at").map_err(&g)?),
            },
            r.try_get("password").map_err(&g)?,
        )))
    }

    /// Removes the organisation's SMTP settings (`false`: there were none);
    /// queued emails wait until settings are given again.
    pub async fn delete_email_settings(&self, org_id: &str, ctx: &Context) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let n = tx
            .exec(
                sqlx::query("DELETE FROM email_settings WHERE org_id = $1").bind(org_id.to_owned()),
                "deleting email settings",
            )
            .await?;
        if n == 0 {
            return Ok(false);
        }
        tx.audit(ctx, "email.settings_delete", &json!({ "org_id": org_id }))
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Emails due at `now` with settings to send them, claimed by no
    /// replica: their ids, at most `limit`.
    pub async fn due_emails(&self, now: u64, limit: u64) -> Result<Vec<String>> {
        let rows = self
            .fetch_all(
                sqlx::query(&format!(
                    "SELECT o.email_id FROM email_outbox o JOIN email_settings s ON s.org_id = o.org_id \
                     WHERE o.status = 'pending' AND o.next_at <= $1 \
                     AND (o.claimed_until IS NULL OR o.claimed_until < $1) ORDER BY o.next_at LIMIT {}",
                    limit.max(1)
                ))
                .bind(i(now)),
                "reading the email outbox",
            )
            .await?;
        rows.iter()
            .map(|r| r.try_get(0).map_err(db_err("reading the email outbox")))
            .collect()
    }

    /// Claims an email for replica `me` until `until`, and reads it, with
    /// its settings and license, ready to send; `None` if another replica
    /// holds it or it is no longer pending.
    pub async fn claim_email(
        &self,
        email_id: &str,
        me: &str,
        now: u64,
        until: u64,
    ) -> Result<Option<Job>> {
        let n = sqlx::query(
            "UPDATE email_outbox SET claimed_by = $1, claimed_until = $2 WHERE email_id = $3 \
             AND status = 'pending' AND (claimed_until IS NULL OR claimed_until < $4)",
        )
        .bind(me.to_owned())
        .bind(i(until))
        .bind(email_id.to_owned())
        .bind(i(now))
        .execute(&self.pool)
        .await
        .map_err(db_err("claiming an email"))?
        .rows_affected();
        if n != 1 {
            return Ok(None);
        }
        match self.email_job(email_id).await {
            Ok(job) => Ok(job),
            Err(e) => {
                // What cannot be read now never will be: it fails (and its
                // address goes) rather than being claimed again and again.
                sqlx::query(
                    "UPDATE email_outbox SET status = 'failed', recipient = NULL, last_error = $1, \
                     claimed_by = NULL, claimed_until = NULL WHERE email_id = $2",
                )
                .bind(clip(&e.to_string(), 500))
                .bind(email_id.to_owned())
                .execute(&self.pool)
                .await
                .map_err(db_err("recording an email"))?;
                Err(e)
            }
        }
    }

    /// The email to send, read once claimed (`None`: it can wait: no
    /// address or no settings now).
    async fn email_job(&self, email_id: &str) -> Result<Option<Job>> {
        let rows = self
            .fetch_all(
                sqlx::query(
                    "SELECT o.org_id, o.license_id, o.recipient, o.attempts, l.product, l.plan, l.expires_at, \
                     l.license_key FROM email_outbox o JOIN licenses l ON l.license_id = o.license_id \
                     WHERE o.email_id = $1",
                )
                .bind(email_id.to_owned()),
                "reading the email outbox",
            )
            .await?;
        let Some(r) = rows.first() else {
            return Ok(None);
        };
        let g = db_err("reading the email outbox");
        let org_id: String = r.try_get("org_id").map_err(&g)?;
        let Some(recipient) = r.try_get::<Option<String>, _>("recipient").map_err(&g)? else {
            return Ok(None);
        };
        let Some((settings, password)) = self.email_settings_sealed(&org_id).await? else {
            return Ok(None);
        };
        let keys = self.data_keys()?;
        let text = |b: Zeroizing<Vec<u8>>| {
            String::from_utf8(b.to_vec())
                .map(Zeroizing::new)
                .map_err(|_| corrupt("a sealed email field is not text"))
        };
        let to = text(keys.open_secret(&org_id, RECIPIENT_PURPOSE, email_id, &recipient)?)?;
        let password = password
            .map(|p| text(keys.open_secret(&org_id, PASSWORD_PURPOSE, &org_id, &p)?))
            .transpose()?;
        let key: String = r.try_get("license_key").map_err(&g)?;
        let mut buf = [0u8; keyseal_core::license::MAX_LICENSE_LEN];
        let binary = keyseal_core::license::decode_text(&key, &mut buf)
            .map_err(|_| corrupt("a license key in the ledger does not decode"))?
            .to_vec();
        let message = email::message(
            &r.try_get::<String, _>("product").map_err(&g)?,
            &r.try_get::<String, _>("plan").map_err(&g)?,
            u(r.try_get("expires_at").map_err(&g)?),
            &key,
            &binary,
        );
        Ok(Some(Job {
            email_id: email_id.to_owned(),
            org_id,
            settings,
            password,
            to,
            attempts: u(r.try_get("attempts").map_err(&g)?),
            message,
        }))
    }

    /// Records an attempt of replica `me` at `now`: sent (the address is
    /// cleared), or failed (retried on the webhooks' schedule; past it, the
    /// email fails and the address is cleared). Whether it is finished.
    pub async fn record_email(
        &self,
        job: &Job,
        outcome: &Sent,
        me: &str,
        now: u64,
    ) -> Result<bool> {
        let attempts = job.attempts + 1;
        let mut tx = self.begin_write().await?;
        let (status, next_at, error) = match outcome {
            Sent::Sent => ("sent", now, None),
            Sent::Failed(e) => {
                let e = clip(e, 500);
                match retry_at(attempts, now) {
                    Some(t) => ("pending", t, Some(e)),
                    None => ("failed", now, Some(e)),
                }
            }
        };
        let done = status != "pending";
        let n = tx
            .exec(
                sqlx::query(
                    "UPDATE email_outbox SET status = $1, attempts = $2, next_at = $3, last_error = $4, \
                     sent_at = $5, recipient = CASE WHEN $6 = 1 THEN NULL ELSE recipient END, \
                     claimed_by = NULL, claimed_until = NULL WHERE email_id = $7 AND claimed_by = $8",
                )
                .bind(status)
                .bind(i(attempts))
                .bind(i(next_at))
                .bind(error)
                .bind((status == "sent").then_some(i(now)))
                .bind(i64::from(done))
                .bind(job.email_id.clone())
                .bind(me.to_owned()),
                "recording an email",
            )
            .await?;
        if n == 0 {
            return Ok(false);
        }
        if done {
            tx.audit(
                &Context {
                    now,
                    actor: "service".into(),
                },
                if status == "sent" {
                    "email.sent"
                } else {
                    "email.failed"
                },
                &json!({ "org_id": job.org_id, "email_id": job.email_id, "attempts": attempts }),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(done)
    }

    /// The emails of a license: (id, status, attempts, last error).
    pub async fn license_emails(
        &self,
        org_id: &str,
        license_id: &str,
    ) -> Result<Vec<(String, String, u64, Option<String>)>> {
        let rows = self
            .fetch_all(
                sqlx::query(
                    "SELECT email_id, status, attempts, last_error FROM email_outbox \
                     WHERE org_id = $1 AND license_id = $2 ORDER BY created_at, email_id",
                )
                .bind(org_id.to_owned())
                .bind(license_id.to_owned()),
                "reading the email outbox",
            )
            .await?;
        rows.iter()
            .map(|r| {
                let g = db_err("reading the email outbox");
                Ok((
                    r.try_get(0).map_err(&g)?,
                    r.try_get(1).map_err(&g)?,
                    u(r.try_get(2).map_err(&g)?),
                    r.try_get(3).map_err(&g)?,
                ))
            })
            .collect()
    }
}

impl WriteTx {
    /// Queues the email of a license to `to` (sealed), if the organisation
    /// has SMTP settings and none was queued for it before (once per
    /// license, whatever retried on the way); whether it did.
    pub(crate) async fn queue_email(
        &mut self,
        org_id: &str,
        license_id: &str,
        to: &str,
        keys: &crate::privacy::DataKeys,
        now: u64,
    ) -> Result<bool> {
        let set = self
            .fetch(
                sqlx::query("SELECT 1 FROM email_settings WHERE org_id = $1")
                    .bind(org_id.to_owned()),
                "reading email settings",
            )
            .await?;
        if set.is_empty() || !email::plausible_address(to) {
            return Ok(false);
        }
        let queued = self
            .fetch(
                sqlx::query("SELECT 1 FROM email_outbox WHERE org_id = $1 AND license_id = $2")
                    .bind(org_id.to_owned())
                    .bind(license_id.to_owned()),
                "reading the email outbox",
            )
            .await?;
        if !queued.is_empty() {
            return Ok(false);
        }
        let email_id = format!("eml_{}", random_hex(8)?);
        let sealed = keys.seal_secret(org_id, RECIPIENT_PURPOSE, &email_id, to.as_bytes())?;
        self.exec(
            sqlx::query(
                "INSERT INTO email_outbox (email_id, org_id, license_id, recipient, status, attempts, next_at, created_at) \
                 VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5)",
            )
            .bind(email_id)
            .bind(org_id.to_owned())
            .bind(license_id.to_owned())
            .bind(sealed)
            .bind(i(now)),
            "queueing an email",
        )
        .await?;
        Ok(true)
    }
}
