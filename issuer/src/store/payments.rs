//! Payment events in (`payment_settings`, `price_mappings`,
//! `payment_customers`, `payment_links`, `payment_events`; see
//! [`crate::payments`]).

use serde_json::json;
use zeroize::Zeroizing;

use super::*;
use crate::error::RequestError;
use crate::payments::{
    self, Ending, MAX_PRICES, PREVIOUS_STRIPE_SECRET_SECS, PaymentEvent, PriceMapping,
    STRIPE_SECRET_PURPOSE,
};
use crate::privacy::PersonalFields;

/// What a payment event did, recorded with it in one transaction.
#[derive(Debug, Clone, Default)]
pub struct PaymentRecord {
    /// The provider's event id.
    pub event_id: String,
    /// Its type.
    pub event_type: String,
    /// `minted`, `renewed`, `linked`, `revoked`, `lapsed`, `ignored` or `refused`.
    pub outcome: String,
    /// Why.
    pub detail: String,
    /// The license it minted, renewed or revoked.
    pub license_id: Option<String>,
    /// Provider objects that paid for licenses: (ref, license id, price).
    pub links: Vec<(String, String, String)>,
    /// A renewal: the license it succeeds (audited as `license.renew`,
    /// announced as `license.renewed`).
    pub renewed_from: Option<String>,
    /// The license to email to this address (sealed until sent), if the
    /// organisation sends email.
    pub email_to: Option<String>,
}

#[derive(sqlx::FromRow)]
struct PriceRow {
    price_id: String,
    product: String,
    plan: String,
    entitlements: String,
    duration_secs: i64,
    seats: i64,
    on_refund: String,
    on_cancel: String,
    email: i64,
    updated_at: i64,
}

fn price_from_row(r: &AnyRow) -> Result<PriceMapping> {
    let r: PriceRow = read_row(r, "reading price mappings")?;
    Ok(PriceMapping {
        price_id: r.price_id,
        product: r.product,
        plan: r.plan,
        entitlements: serde_json::from_str(&r.entitlements)
            .map_err(|_| corrupt("a price mapping's entitlements are not JSON"))?,
        duration_secs: u(r.duration_secs),
        seats: u(r.seats),
        on_refund: Ending::parse(&r.on_refund).unwrap_or(Ending::Lapse),
        on_cancel: Ending::parse(&r.on_cancel).unwrap_or(Ending::Lapse),
        email: r.email != 0,
        updated_at: u(r.updated_at),
    })
}

const PRICE_SELECT: &str = "SELECT price_id, product, plan, entitlements, duration_secs, seats, on_refund, \
     on_cancel, email, updated_at FROM price_mappings";

impl Store {
    /// Sets the organisation's Stripe endpoint secret; the one it replaces
    /// still checks for [`PREVIOUS_STRIPE_SECRET_SECS`].
    pub async fn set_stripe_secret(&self, org_id: &str, secret: &str, ctx: &Context) -> Result<()> {
        payments::check_stripe_secret(secret)?;
        let sealed = self.data_keys()?.seal_secret(
            org_id,
            STRIPE_SECRET_PURPOSE,
            org_id,
            secret.as_bytes(),
        )?;
        let mut tx = self.begin_write().await?;
        let old = tx
            .fetch(
                sqlx::query("SELECT stripe_secret FROM payment_settings WHERE org_id = $1")
                    .bind(org_id.to_owned()),
                "reading payment settings",
            )
            .await?;
        match old.first() {
            Some(r) => {
                let previous: String = r.try_get(0).map_err(db_err("reading payment settings"))?;
                tx.exec(
                    sqlx::query(
                        "UPDATE payment_settings SET stripe_secret = $1, previous_secret = $2, \
                         previous_until = $3, updated_at = $4 WHERE org_id = $5",
                    )
                    .bind(sealed)
                    .bind(previous)
                    .bind(i(ctx.now.saturating_add(PREVIOUS_STRIPE_SECRET_SECS)))
                    .bind(i(ctx.now))
                    .bind(org_id.to_owned()),
                    "writing payment settings",
                )
                .await?;
            }
            None => {
                tx.exec(
                    sqlx::query(
                        "INSERT INTO payment_settings (org_id, stripe_secret, updated_at) VALUES ($1, $2, $3)",
                    )
                    .bind(org_id.to_owned())
                    .bind(sealed)
                    .bind(i(ctx.now)),
                    "writing payment settings",
                )
                .await?;
            }
        }
        tx.audit(ctx, "payments.stripe_secret", &json!({ "org_id": org_id }))
            .await?;
        tx.commit().await
    }

    /// The Stripe secrets that check an event at `now`: the organisation's,
    /// and the previous one while it still checks. Empty: payments are not
    /// set up.
    pub async fn stripe_secrets(&self, org_id: &str, now: u64) -> Result<Vec<Zeroizing<String>>> {
        let rows = self
            .fetch_all(
                sqlx::query(
                    "SELECT stripe_secret, previous_secret, previous_until FROM payment_settings WHERE org_id = $1",
                )
                .bind(org_id.to_owned()),
                "reading payment settings",
            )
            .await?;
        let Some(r) = rows.first() else {
            return Ok(Vec::new());
        };
        let g = db_err("reading payment settings");
        let keys = self.data_keys()?;
        let open = |sealed: &str| -> Result<Zeroizing<String>> {
            let plain = keys.open_secret(org_id, STRIPE_SECRET_PURPOSE, org_id, sealed)?;
            String::from_utf8(plain.to_vec())
                .map(Zeroizing::new)
                .map_err(|_| corrupt("a Stripe secret is not text"))
        };
        let mut out = vec![open(&r.try_get::<String, _>("stripe_secret").map_err(&g)?)?];
        let previous: Option<String> = r.try_get("previous_secret").map_err(&g)?;
        let until: Option<i64> = r.try_get("previous_until").map_err(&g)?;
        if let (Some(p), Some(until)) = (previous, until)
            && u(until) > now
        {
            out.push(open(&p)?);
        }
        Ok(out)
    }

    /// When the organisation's Stripe secret was set, if it was.
    pub async fn stripe_configured(&self, org_id: &str) -> Result<Option<u64>> {
        let rows = self
            .fetch_all(
                sqlx::query("SELECT updated_at FROM payment_settings WHERE org_id = $1")
                    .bind(org_id.to_owned()),
                "reading payment settings",
            )
            .await?;
        rows.first()
            .map(|r| r.try_get::<i64, _>(0).map(u))
            .transpose()
            .map_err(db_err("reading payment settings"))
    }

    /// Sets what a price buys (replacing its mapping), after checking it
    /// mints: a registered product, a valid plan and entitlements.
    pub async fn set_price(
        &self,
        org_id: &str,
        m: &PriceMapping,
        ctx: &Context,
    ) -> Result<PriceMapping> {
        payments::check_price_id(&m.price_id)?;
        if !(60..=100 * 365 * 86_400).contains(&m.duration_secs) {
            return Err(Error::invalid(
                "duration_secs",
                "must be from 60 seconds to 100 years",
            ));
        }
        if !(1..=1000).contains(&m.seats) {
            return Err(Error::invalid("seats", "must be from 1 to 1000"));
        }
        // The license it would mint, checked as a mint checks it.
        crate::request::RequestFields {
            product: Some(m.product.clone()),
            customer: Some("cus_0000000000000000".into()),
            plan: Some(m.plan.clone()),
            expires: Some(format!("{}s", m.duration_secs)),
            entitlements: m.entitlements.clone(),
            ..Default::default()
        }
        .resolve(ctx.now)?;
        let mut tx = self.begin_write().await?;
        let product = tx
            .fetch(
                sqlx::query("SELECT 1 FROM org_products WHERE org_id = $1 AND product = $2")
                    .bind(org_id.to_owned())
                    .bind(m.product.clone()),
                "reading products",
            )
            .await?;
        if product.is_empty() {
            return Err(Error::Request(RequestError::UnknownProduct {
                product: m.product.clone(),
                known: Vec::new(),
            }));
        }
        let count = tx
            .fetch(
                sqlx::query(
                    "SELECT COUNT(*) FROM price_mappings WHERE org_id = $1 AND price_id <> $2",
                )
                .bind(org_id.to_owned())
                .bind(m.price_id.clone()),
                "reading price mappings",
            )
            .await?;
        let count: i64 = count
            .first()
            .map(|r| r.try_get(0))
            .transpose()
            .map_err(db_err("reading price mappings"))?
            .unwrap_or(0);
        if u(count) >= MAX_PRICES {
            return Err(Error::Request(RequestError::LimitReached {
                what: "price mappings",
                max: MAX_PRICES,
            }));
        }
        let mut ents = m.entitlements.clone();
        ents.sort();
        ents.dedup();
        tx.exec(
            sqlx::query("DELETE FROM price_mappings WHERE org_id = $1 AND price_id = $2")
                .bind(org_id.to_owned())
                .bind(m.price_id.clone()),
            "writing a price mapping",
        )
        .await?;
        tx.exec(
            sqlx::query(
                "INSERT INTO price_mappings (org_id, price_id, product, plan, entitlements, duration_secs, \
                 seats, on_refund, on_cancel, email, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(org_id.to_owned())
            .bind(m.price_id.clone())
            .bind(m.product.clone())
            .bind(m.plan.clone())
            .bind(serde_json::to_string(&ents).unwrap_or_else(|_| "[]".into()))
            .bind(i(m.duration_secs))
            .bind(i(m.seats))
            .bind(m.on_refund.as_str())
            .bind(m.on_cancel.as_str())
            .bind(i64::from(m.email))
            .bind(i(ctx.now)),
            "writing a price mapping",
        )
        .await?;
        tx.audit(
            ctx,
            "payments.price",
            &json!({ "org_id": org_id, "price_id": m.price_id, "product": m.product, "plan": m.plan }),
        )
        .await?;
        tx.commit().await?;
        self.price(org_id, &m.price_id)
            .await?
            .ok_or_else(|| corrupt("a price mapping just written is missing"))
    }

    /// The organisation's price mappings, by price id.
    pub async fn prices(&self, org_id: &str) -> Result<Vec<PriceMapping>> {
        let rows = self
            .fetch_all(
                sqlx::query(&format!(
                    "{PRICE_SELECT} WHERE org_id = $1 ORDER BY price_id"
                ))
                .bind(org_id.to_owned()),
                "reading price mappings",
            )
            .await?;
        rows.iter().map(price_from_row).collect()
    }

    /// One price mapping.
    pub async fn price(&self, org_id: &str, price_id: &str) -> Result<Option<PriceMapping>> {
        let rows = self
            .fetch_all(
                sqlx::query(&format!(
                    "{PRICE_SELECT} WHERE org_id = $1 AND price_id = $2"
                ))
                .bind(org_id.to_owned())
                .bind(price_id.to_owned()),
                "reading price mappings",
            )
            .await?;
        rows.first().map(price_from_row).transpose()
    }

    /// Deletes a price mapping (`false`: there was none).
    pub async fn delete_price(&self, org_id: &str, price_id: &str, ctx: &Context) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let n = tx
            .exec(
                sqlx::query("DELETE FROM price_mappings WHERE org_id = $1 AND price_id = $2")
                    .bind(org_id.to_owned())
                    .bind(price_id.to_owned()),
                "deleting a price mapping",
            )
            .await?;
        if n == 0 {
            return Ok(false);
        }
        tx.audit(
            ctx,
            "payments.price_delete",
            &json!({ "org_id": org_id, "price_id": price_id }),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The event as recorded, if it was acted on (or refused).
    pub async fn payment_event(
        &self,
        org_id: &str,
        event_id: &str,
    ) -> Result<Option<PaymentEvent>> {
        let rows = self
            .fetch_all(
                sqlx::query(
                    "SELECT event_id, event_type, received_at, outcome, detail, license_id FROM payment_events \
                     WHERE org_id = $1 AND event_id = $2",
                )
                .bind(org_id.to_owned())
                .bind(event_id.to_owned()),
                "reading payment events",
            )
            .await?;
        rows.first().map(payment_event_from_row).transpose()
    }

    /// The organisation's latest payment events, newest first.
    pub async fn payment_events(&self, org_id: &str, limit: u64) -> Result<Vec<PaymentEvent>> {
        let rows = self
            .fetch_all(
                sqlx::query(&format!(
                    "SELECT event_id, event_type, received_at, outcome, detail, license_id FROM payment_events \
                     WHERE org_id = $1 ORDER BY received_at DESC, event_id LIMIT {}",
                    limit.clamp(1, crate::service::MAX_PAGE)
                ))
                .bind(org_id.to_owned()),
                "reading payment events",
            )
            .await?;
        rows.iter().map(payment_event_from_row).collect()
    }

    /// The keyseal customer of a provider's customer (or checkout), made
    /// with `fields` (sealed) the first time, in one transaction.
    pub async fn payment_customer(
        &self,
        org_id: &str,
        provider_ref: &str,
        fields: &PersonalFields,
        ctx: &Context,
    ) -> Result<String> {
        let found = self
            .fetch_all(
                sqlx::query(
                    "SELECT customer_id FROM payment_customers WHERE org_id = $1 AND provider_ref = $2",
                )
                .bind(org_id.to_owned())
                .bind(provider_ref.to_owned()),
                "reading payment customers",
            )
            .await?;
        if let Some(r) = found.first() {
            return r.try_get(0).map_err(db_err("reading payment customers"));
        }
        let customer_id = format!("cus_{}", random_hex(8)?);
        let sealed = self.seal_customer(org_id, &customer_id, fields)?;
        let mut tx = self.begin_write().await?;
        // Under the lock: another event for the same customer may have made
        // it meanwhile.
        let again = tx
            .fetch(
                sqlx::query(
                    "SELECT customer_id FROM payment_customers WHERE org_id = $1 AND provider_ref = $2",
                )
                .bind(org_id.to_owned())
                .bind(provider_ref.to_owned()),
                "reading payment customers",
            )
            .await?;
        if let Some(r) = again.first() {
            return r.try_get(0).map_err(db_err("reading payment customers"));
        }
        tx.insert_customer(org_id, &customer_id, sealed, ctx.now)
            .await?;
        tx.exec(
            sqlx::query(
                "INSERT INTO payment_customers (org_id, provider_ref, customer_id) VALUES ($1, $2, $3)",
            )
            .bind(org_id.to_owned())
            .bind(provider_ref.to_owned())
            .bind(customer_id.clone()),
            "recording a payment customer",
        )
        .await?;
        tx.audit(
            ctx,
            "customer.create",
            &json!({ "org_id": org_id, "customer_id": customer_id, "by": "payment" }),
        )
        .await?;
        tx.commit().await?;
        Ok(customer_id)
    }

    /// The license minted with this external id, if any.
    pub async fn external_id_license(
        &self,
        org_id: &str,
        external_id: &str,
    ) -> Result<Option<String>> {
        let rows = self
            .fetch_all(
                sqlx::query(
                    "SELECT license_id FROM org_licenses WHERE org_id = $1 AND external_id = $2",
                )
                .bind(org_id.to_owned())
                .bind(external_id.to_owned()),
                "reading licenses",
            )
            .await?;
        rows.first()
            .map(|r| r.try_get(0))
            .transpose()
            .map_err(db_err("reading licenses"))
    }

    /// The licenses a provider's object paid for, oldest first: (license
    /// id, price id).
    pub async fn licenses_paid_by(
        &self,
        org_id: &str,
        provider_ref: &str,
    ) -> Result<Vec<(String, String)>> {
        let rows = self
            .fetch_all(
                sqlx::query(
                    "SELECT license_id, price_id FROM payment_links WHERE org_id = $1 AND ref = $2 \
                     ORDER BY created_at, license_id",
                )
                .bind(org_id.to_owned())
                .bind(provider_ref.to_owned()),
                "reading payment links",
            )
            .await?;
        rows.iter()
            .map(|r| {
                let g = db_err("reading payment links");
                Ok((r.try_get(0).map_err(&g)?, r.try_get(1).map_err(&g)?))
            })
            .collect()
    }

    /// Records what an event did, with its links, its audit entries and the
    /// email it sends, in one transaction; `false` if the event was acted on
    /// already (by another replica meanwhile): nothing is written then. A
    /// refused event's row is replaced when it is acted on later.
    pub async fn record_payment(
        &self,
        org_id: &str,
        rec: &PaymentRecord,
        ctx: &Context,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let found = tx
            .fetch(
                sqlx::query(
                    "SELECT outcome FROM payment_events WHERE org_id = $1 AND event_id = $2",
                )
                .bind(org_id.to_owned())
                .bind(rec.event_id.clone()),
                "reading payment events",
            )
            .await?;
        if let Some(r) = found.first() {
            let outcome: String = r.try_get(0).map_err(db_err("reading payment events"))?;
            if outcome != "refused" {
                return Ok(false);
            }
            tx.exec(
                sqlx::query("DELETE FROM payment_events WHERE org_id = $1 AND event_id = $2")
                    .bind(org_id.to_owned())
                    .bind(rec.event_id.clone()),
                "recording a payment event",
            )
            .await?;
        }
        tx.exec(
            sqlx::query(
                "INSERT INTO payment_events (org_id, event_id, event_type, received_at, outcome, detail, license_id) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(org_id.to_owned())
            .bind(rec.event_id.clone())
            .bind(rec.event_type.clone())
            .bind(i(ctx.now))
            .bind(rec.outcome.clone())
            .bind(rec.detail.clone())
            .bind(rec.license_id.clone()),
            "recording a payment event",
        )
        .await?;
        for (r, license, price) in &rec.links {
            let have = tx
                .fetch(
                    sqlx::query(
                        "SELECT 1 FROM payment_links WHERE org_id = $1 AND ref = $2 AND license_id = $3",
                    )
                    .bind(org_id.to_owned())
                    .bind(r.clone())
                    .bind(license.clone()),
                    "reading payment links",
                )
                .await?;
            if have.is_empty() {
                tx.exec(
                    sqlx::query(
                        "INSERT INTO payment_links (org_id, ref, license_id, price_id, created_at) VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(org_id.to_owned())
                    .bind(r.clone())
                    .bind(license.clone())
                    .bind(price.clone())
                    .bind(i(ctx.now)),
                    "recording a payment link",
                )
                .await?;
            }
        }
        if let (Some(old), Some(new)) = (&rec.renewed_from, &rec.license_id) {
            tx.audit(
                ctx,
                "license.renew",
                &json!({ "org_id": org_id, "license_id": new, "previous_license_id": old }),
            )
            .await?;
        }
        if rec.outcome != "refused"
            && let (Some(to), Some(license)) = (&rec.email_to, &rec.license_id)
        {
            tx.queue_email(org_id, license, to, self.data_keys()?, ctx.now)
                .await?;
        }
        tx.audit(
            ctx,
            "payment.event",
            &json!({
                "org_id": org_id,
                "event_id": rec.event_id,
                "event_type": rec.event_type,
                "outcome": rec.outcome,
                "license_id": rec.license_id,
            }),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }
}

fn payment_event_from_row(r: &AnyRow) -> Result<PaymentEvent> {
    let g = db_err("reading payment events");
    Ok(PaymentEvent {
        event_id: r.try_get("event_id").map_err(&g)?,
        event_type: r.try_get("event_type").map_err(&g)?,
        received_at: u(r.try_get("received_at").map_err(&g)?),
        outcome: r.try_get("outcome").map_err(&g)?,
        detail: r.try_get("detail").map_err(&g)?,
        license_id: r.try_get("license_id").map_err(&g)?,
    })
}
