//! A Stripe event, checked and acted on (see [`keyseal_issuer::payments`]):
//! the customer and license of a paid checkout, a subscription's renewal,
//! the revocations a refund or a cancellation asks for. Every step can run
//! again without a second effect (the customer is found by the provider's
//! id, a license by its external id, the event by its id), so an event the
//! service stopped in the middle of is finished when Stripe sends it again.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use axum::http::StatusCode;
use keyseal_issuer::payments::{self, Action, Ending, PriceMapping};
use keyseal_issuer::privacy::PersonalFields;
use keyseal_issuer::request::RequestFields;
use keyseal_issuer::service::{MintJob, OrgLicense};
use keyseal_issuer::store::PaymentRecord;
use keyseal_issuer::{Context, RequestError};
use serde_json::{Value, json};

use crate::State;
use crate::problem::Problem;

/// What the endpoint answers Stripe: 200 with what was done, or a problem.
pub(crate) async fn stripe(
    s: &State,
    org_id: &str,
    header: Option<&str>,
    body: &[u8],
) -> Result<(StatusCode, Value), Problem> {
    let now = s.now();
    let secrets = s.store.stripe_secrets(org_id, now).await?;
    if secrets.is_empty() {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "payments-not-configured",
            "this organisation has no Stripe secret (POST /v1/payments/stripe)",
        ));
    }
    let refs: Vec<&str> = secrets.iter().map(|x| x.as_str()).collect();
    let event = match payments::verify_stripe(header, body, &refs, now) {
        Ok(e) => e,
        Err(r) => {
            s.webhook_metrics
                .payments_refused
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(org_id, refusal = r.slug(), "a Stripe event was refused");
            return Err(Problem::new(StatusCode::BAD_REQUEST, r.slug(), r.detail()));
        }
    };
    let (event_id, event_type) = payments::event_head(&event)?;
    if let Some(done) = s.store.payment_event(org_id, &event_id).await?
        && done.outcome != "refused"
    {
        return Ok((
            StatusCode::OK,
            json!({ "received": true, "duplicate": true, "outcome": done.outcome, "license_id": done.license_id }),
        ));
    }
    let ctx = Context {
        now,
        actor: "payments:stripe".into(),
    };
    let mut rec = PaymentRecord {
        event_id: event_id.clone(),
        event_type: event_type.clone(),
        ..PaymentRecord::default()
    };
    let refused = act(s, org_id, &event, &ctx, &mut rec).await?;
    if let Some((status, slug, detail)) = &refused {
        rec.outcome = "refused".into();
        rec.detail.clone_from(detail);
        s.store.record_payment(org_id, &rec, &ctx).await?;
        s.webhook_metrics
            .payments_refused
            .fetch_add(1, Ordering::Relaxed);
        return Err(Problem::new(*status, slug, detail.clone()));
    }
    if !s.store.record_payment(org_id, &rec, &ctx).await? {
        // Another replica acted on it meanwhile: what it did stands.
        let done = s.store.payment_event(org_id, &event_id).await?;
        let (outcome, license_id) = done.map_or((None, None), |d| (Some(d.outcome), d.license_id));
        return Ok((
            StatusCode::OK,
            json!({ "received": true, "duplicate": true, "outcome": outcome, "license_id": license_id }),
        ));
    }
    s.webhook_metrics
        .payments_processed
        .fetch_add(1, Ordering::Relaxed);
    Ok((
        StatusCode::OK,
        json!({ "received": true, "outcome": rec.outcome, "detail": rec.detail, "license_id": rec.license_id }),
    ))
}

/// A refusal the vendor can fix (an unknown price; an event ahead of the
/// one it follows): status, problem slug, detail. Stripe sends the event
/// again later, and it is acted on then.
type Refusal = Option<(StatusCode, &'static str, String)>;

fn unknown_price(price: Option<&str>) -> Refusal {
    Some((
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown-price",
        match price {
            Some(p) => format!(
                "no price mapping for {p} (POST /v1/payments/prices); nothing was minted, and the event is acted on when Stripe sends it again"
            ),
            None => "the checkout names no price: create Checkout Sessions with metadata[keyseal_price] set to the price id, or with line_items expanded; nothing was minted".into(),
        },
    ))
}

async fn act(
    s: &State,
    org_id: &str,
    event: &Value,
    ctx: &Context,
    rec: &mut PaymentRecord,
) -> Result<Refusal, Problem> {
    match payments::action(event) {
        Action::Checkout {
            session,
            customer,
            email,
            name,
            price,
            payment_intent,
            subscription,
        } => {
            let Some(price) = price else {
                return Ok(unknown_price(None));
            };
            let Some(m) = s.store.price(org_id, &price).await? else {
                return Ok(unknown_price(Some(&price)));
            };
            let provider_ref = format!("stripe:{}", customer.as_deref().unwrap_or(&session));
            // What the service keeps of the buyer: what it can keep. A name
            // loses characters names may not hold (a ZWNJ, say); an email
            // the service would refuse is not kept (nor emailed to): a paid
            // checkout is never refused for its buyer's details.
            let name = name.map(|n| {
                n.chars()
                    .filter(|c| !keyseal_issuer::request::hidden_char(*c))
                    .take(200)
                    .collect::<String>()
            });
            let email = email.filter(|e| {
                keyseal_issuer::email::plausible_address(e)
                    && keyseal_issuer::store::personal_fields_ok(&PersonalFields {
                        email: Some(e.clone()),
                        ..PersonalFields::default()
                    })
            });
            let name = name.filter(|n| {
                !n.trim().is_empty()
                    && keyseal_issuer::store::personal_fields_ok(&PersonalFields {
                        name: Some(n.clone()),
                        ..PersonalFields::default()
                    })
            });
            let fields = PersonalFields {
                name,
                email: email.clone(),
                metadata: BTreeMap::new(),
            };
            let customer_id = s
                .store
                .payment_customer(org_id, &provider_ref, &fields, ctx)
                .await?;
            let expires = ctx.now.saturating_add(m.duration_secs);
            let (l, fresh) = mint(
                s,
                org_id,
                &m,
                &customer_id,
                expires,
                &format!("stripe:{session}"),
                ctx,
            )
            .await?;
            let id = l.record.license_id.to_string();
            rec.license_id = Some(id.clone());
            if !fresh {
                // Another event about this checkout minted it: nothing more
                // (its email is queued once per license: if the service
                // stopped before queueing it, it is queued now).
                rec.outcome = "ignored".into();
                rec.detail = format!("checkout {session} minted already, as {id}");
                rec.email_to = email.filter(|_| m.email);
                return Ok(None);
            }
            rec.outcome = "minted".into();
            rec.detail = format!("license for {} ({})", m.product, m.price_id);
            rec.license_id = Some(id.clone());
            for r in [Some(session), payment_intent, subscription]
                .into_iter()
                .flatten()
            {
                rec.links
                    .push((format!("stripe:{r}"), id.clone(), m.price_id.clone()));
            }
            rec.email_to = email.filter(|_| m.email);
            Ok(None)
        }
        Action::Renewal {
            invoice,
            subscription,
            price,
            period_end,
            payment_intent,
        } => {
            // This invoice's successor exists already (the same invoice in
            // another event): nothing more.
            if let Some(done) = s
                .store
                .external_id_license(org_id, &format!("stripe:{invoice}"))
                .await?
            {
                rec.outcome = "ignored".into();
                rec.detail = format!("invoice {invoice} renewed already, as {done}");
                rec.license_id = Some(done);
                return Ok(None);
            }
            let paid = s
                .store
                .licenses_paid_by(org_id, &format!("stripe:{subscription}"))
                .await?;
            let Some((old_id, old_price)) = paid.last().cloned() else {
                return Ok(Some((
                    StatusCode::CONFLICT,
                    "subscription-unknown",
                    format!(
                        "no license was minted for subscription {subscription} yet (its checkout event may not have arrived); the renewal is acted on when Stripe sends it again"
                    ),
                )));
            };
            let price = price.unwrap_or(old_price);
            let Some(m) = s.store.price(org_id, &price).await? else {
                return Ok(unknown_price(Some(&price)));
            };
            let old = s
                .store
                .org_license(org_id, &old_id)
                .await?
                .ok_or_else(Problem::internal)?;
            let expires = old
                .record
                .expires_at
                .unwrap_or(ctx.now)
                .max(ctx.now)
                .saturating_add(m.duration_secs)
                .max(period_end.unwrap_or(0));
            let (l, _) = mint(
                s,
                org_id,
                &m,
                &old.record.customer,
                expires,
                &format!("stripe:{invoice}"),
                ctx,
            )
            .await?;
            let id = l.record.license_id.to_string();
            rec.outcome = "renewed".into();
            rec.detail = format!(
                "successor of {old_id}, to {}",
                keyseal_issuer::time::format(expires)
            );
            rec.license_id = Some(id.clone());
            rec.renewed_from = Some(old_id);
            for r in [Some(subscription), Some(invoice), payment_intent]
                .into_iter()
                .flatten()
            {
                rec.links
                    .push((format!("stripe:{r}"), id.clone(), m.price_id.clone()));
            }
            if m.email {
                rec.email_to = customer_email(s, org_id, &old.record.customer).await;
            }
            Ok(None)
        }
        Action::FirstInvoice {
            subscription,
            payment_intent,
        } => {
            let paid = s
                .store
                .licenses_paid_by(org_id, &format!("stripe:{subscription}"))
                .await?;
            let Some((license, price)) = paid.first().cloned() else {
                return Ok(Some((
                    StatusCode::CONFLICT,
                    "subscription-unknown",
                    format!(
                        "no license was minted for subscription {subscription} yet (its checkout event may not have arrived); the invoice is acted on when Stripe sends it again"
                    ),
                )));
            };
            rec.outcome = "linked".into();
            rec.detail = format!("the first payment of {subscription} paid for {license}");
            rec.links
                .push((format!("stripe:{payment_intent}"), license.clone(), price));
            rec.license_id = Some(license);
            Ok(None)
        }
        Action::Refund { payment_intent } => {
            end(
                s,
                org_id,
                &format!("stripe:{payment_intent}"),
                "refund",
                ctx,
                rec,
            )
            .await
        }
        Action::SubscriptionEnded { subscription } => {
            end(
                s,
                org_id,
                &format!("stripe:{subscription}"),
                "cancelled",
                ctx,
                rec,
            )
            .await
        }
        Action::Ignore(why) => {
            rec.outcome = "ignored".into();
            rec.detail = why.into();
            Ok(None)
        }
    }
}

/// The customer's email, to send a renewal's key to (sealed in the ledger).
async fn customer_email(s: &State, org_id: &str, customer: &str) -> Option<String> {
    s.store
        .org_customer(org_id, customer)
        .await
        .ok()
        .flatten()
        .and_then(|c| c.email)
}

/// Mints the license a price buys, and `true`; or the one minted before for
/// the same external id (a retried event, or another about the same
/// payment), and `false`.
async fn mint(
    s: &State,
    org_id: &str,
    m: &PriceMapping,
    customer: &str,
    expires: u64,
    external_id: &str,
    ctx: &Context,
) -> Result<(OrgLicense, bool), Problem> {
    let job = MintJob {
        org_id: org_id.to_owned(),
        fields: RequestFields {
            product: Some(m.product.clone()),
            customer: Some(customer.to_owned()),
            plan: Some(m.plan.clone()),
            expires: Some(expires.to_string()),
            entitlements: m.entitlements.clone(),
            external_id: Some(external_id.to_owned()),
            ..RequestFields::default()
        },
        max_devices: m.seats,
        metadata: BTreeMap::from([("price".to_owned(), m.price_id.clone())]),
        ctx: ctx.clone(),
    };
    let earlier = async || -> Result<Option<OrgLicense>, Problem> {
        match s.store.external_id_license(org_id, external_id).await? {
            Some(id) => Ok(s.store.org_license(org_id, &id).await?),
            None => Ok(None),
        }
    };
    if let Some(l) = earlier().await? {
        return Ok((l, false));
    }
    match crate::api::mint_for(s, job).await {
        Ok(l) => Ok((l, true)),
        // Minted meanwhile (the same event through another replica).
        Err(p) => earlier().await?.map(|l| (l, false)).ok_or(p),
    }
}

/// Revokes the licenses a provider's object paid for, or lets them lapse,
/// as their prices' mappings say.
async fn end(
    s: &State,
    org_id: &str,
    provider_ref: &str,
    reason: &str,
    ctx: &Context,
    rec: &mut PaymentRecord,
) -> Result<Refusal, Problem> {
    let paid = s.store.licenses_paid_by(org_id, provider_ref).await?;
    if paid.is_empty() {
        rec.outcome = "ignored".into();
        rec.detail = format!("no license was paid for by {provider_ref}");
        return Ok(None);
    }
    let mut revoked = Vec::new();
    let mut lapsing = Vec::new();
    for (license, price) in &paid {
        let ending = s
            .store
            .price(org_id, price)
            .await?
            .map_or(Ending::Revoke, |m| {
                if reason == "refund" {
                    m.on_refund
                } else {
                    m.on_cancel
                }
            });
        match ending {
            Ending::Lapse => lapsing.push(license.clone()),
            Ending::Revoke => {
                crate::api::require_active_key(s, org_id).await?;
                match s.store.org_revoke(org_id, license, reason, ctx).await {
                    Ok(_) => revoked.push(license.clone()),
                    Err(keyseal_issuer::Error::Request(RequestError::AlreadyRevoked {
                        ..
                    })) => {
                        revoked.push(license.clone());
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
    if !revoked.is_empty() {
        crate::api::publish(s, org_id, ctx, keyseal_issuer::Publish::IfChanged).await?;
    }
    rec.outcome = if revoked.is_empty() {
        "lapsed"
    } else {
        "revoked"
    }
    .into();
    rec.detail = format!(
        "{reason}: revoked {}; left to lapse {}",
        if revoked.is_empty() {
            "none".into()
        } else {
            revoked.join(", ")
        },
        if lapsing.is_empty() {
            "none".into()
        } else {
            lapsing.join(", ")
        },
    );
    rec.license_id = revoked.first().or(lapsing.first()).cloned();
    Ok(None)
}
