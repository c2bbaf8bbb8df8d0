//! `/v1/payments` and `/v1/email` (admin): the organisation's Stripe
//! secret, what each price buys, the payment events acted on, and the SMTP
//! settings keys are emailed with; and the public endpoint Stripe posts
//! its events to (see [`crate::payments`]).

use axum::body::Bytes;
use axum::extract::Path;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::http::{HeaderMap, StatusCode};
use keyseal_issuer::email::{Security, Settings};
use keyseal_issuer::payments::{Ending, PaymentEvent, PriceMapping};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::extract::{Body, Caller, PublicClient, path, query};
use super::{ApiResult, S, json_response};
use crate::openapi::ProblemSchema;
use crate::problem::Problem;

/// The organisation's Stripe endpoint secret.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct StripeSettingsBody {
    /// The signing secret of the endpoint made in Stripe's dashboard
    /// (`whsec_...`); the one it replaces still checks for a day.
    #[schema(example = "whsec_0123456789abcdefghijklmnop")]
    signing_secret: String,
}

/// Whether Stripe events are taken, and where Stripe posts them.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct StripeSettings {
    /// When the secret was set (unix seconds); `null`: not set up.
    #[schema(required = true)]
    configured_at: Option<u64>,
    /// The path of the endpoint to give Stripe (after this service's address).
    #[schema(example = "/v1/public/orgs/org_8e7d6c5b4a392817/payments/stripe")]
    endpoint: String,
}

/// What a price buys.
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Price {
    /// Stripe's price id.
    #[schema(example = "price_1QxYzAbCdEf")]
    price_id: String,
    /// The product licensed (registered).
    #[schema(example = "acme-cad")]
    product: String,
    #[schema(example = "pro")]
    plan: String,
    /// Entitlements (default none).
    #[serde(default)]
    entitlements: Vec<String>,
    /// The license's length in seconds: from the purchase; a subscription's
    /// renewal extends the license it succeeds by as much, to at least the
    /// end of the paid period.
    #[schema(minimum = 60, example = 2_678_400)]
    duration_secs: u64,
    /// Device seats (default 1).
    #[serde(default = "one")]
    #[schema(minimum = 1, maximum = 1000)]
    seats: u64,
    /// On a full refund: `revoke` (default) or `lapse`.
    #[serde(default = "revoke")]
    #[schema(value_type = String, example = "revoke")]
    on_refund: Ending,
    /// When a subscription ends: `lapse` (default: the paid period runs
    /// out) or `revoke`.
    #[serde(default = "lapse")]
    #[schema(value_type = String, example = "lapse")]
    on_cancel: Ending,
    /// Email the key to the buyer (with SMTP settings; default true).
    #[serde(default = "yes")]
    email: bool,
    /// When it was set (unix seconds; ignored in a request).
    #[serde(default)]
    updated_at: u64,
}

fn one() -> u64 {
    1
}
fn yes() -> bool {
    true
}
fn revoke() -> Ending {
    Ending::Revoke
}
fn lapse() -> Ending {
    Ending::Lapse
}

impl From<PriceMapping> for Price {
    fn from(m: PriceMapping) -> Self {
        Self {
            price_id: m.price_id,
            product: m.product,
            plan: m.plan,
            entitlements: m.entitlements,
            duration_secs: m.duration_secs,
            seats: m.seats,
            on_refund: m.on_refund,
            on_cancel: m.on_cancel,
            email: m.email,
            updated_at: m.updated_at,
        }
    }
}

/// The organisation's price mappings.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PriceList {
    items: Vec<Price>,
}

/// A payment event acted on.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PaymentEventView {
    event_id: String,
    event_type: String,
    /// When it arrived (unix seconds).
    received_at: u64,
    /// `minted`, `renewed`, `linked`, `revoked`, `lapsed`, `ignored` or `refused`.
    outcome: String,
    detail: String,
    #[schema(required = true)]
    license_id: Option<String>,
}

impl From<PaymentEvent> for PaymentEventView {
    fn from(e: PaymentEvent) -> Self {
        Self {
            event_id: e.event_id,
            event_type: e.event_type,
            received_at: e.received_at,
            outcome: e.outcome,
            detail: e.detail,
            license_id: e.license_id,
        }
    }
}

/// The latest payment events.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PaymentEventList {
    items: Vec<PaymentEventView>,
}

/// The events list's query.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct EventQuery {
    /// How many, newest first (1 to 500, default 100).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u64>,
}

/// SMTP settings.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EmailSettingsBody {
    #[schema(example = "smtp.example.com")]
    host: String,
    #[schema(example = 587)]
    port: u16,
    /// `starttls` (required, never skipped), `tls` (from the first byte),
    /// or `none` (only on a service started with
    /// `--webhooks-to-private-networks`, for a relay in the vendor's own
    /// network).
    #[schema(value_type = String, example = "starttls")]
    security: Security,
    username: Option<String>,
    /// Sealed in the ledger; never in an answer.
    password: Option<String>,
    /// The sender.
    #[schema(example = "Acme <licenses@acme.example>")]
    from: String,
    reply_to: Option<String>,
}

/// SMTP settings (never the password).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EmailSettingsView {
    host: String,
    port: u16,
    #[schema(value_type = String)]
    security: Security,
    #[schema(required = true)]
    username: Option<String>,
    from: String,
    #[schema(required = true)]
    reply_to: Option<String>,
    /// When they were set (unix seconds).
    updated_at: u64,
}

impl From<Settings> for EmailSettingsView {
    fn from(s: Settings) -> Self {
        Self {
            host: s.host,
            port: s.port,
            security: s.security,
            username: s.username,
            from: s.from,
            reply_to: s.reply_to,
            updated_at: s.updated_at,
        }
    }
}

/// What the Stripe endpoint answers an event it took.
#[derive(Serialize, ToSchema)]
pub(crate) struct StripeReceipt {
    received: bool,
    /// The same event was acted on before: nothing more was done.
    #[serde(skip_serializing_if = "Option::is_none")]
    duplicate: Option<bool>,
    /// `minted`, `renewed`, `linked`, `revoked`, `lapsed` or `ignored`.
    outcome: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    license_id: Option<String>,
}

fn endpoint(org: &str) -> String {
    format!("/v1/public/orgs/{org}/payments/stripe")
}

/// Set the Stripe secret
#[utoipa::path(post, path = "/v1/payments/stripe", tag = "payments",
    description = "Sets the signing secret of the Stripe endpoint that posts to this organisation's `/v1/public/orgs/{org_id}/payments/stripe` (sealed in the ledger); the secret it replaces still checks for a day. Needs `admin`.",
    request_body = StripeSettingsBody,
    responses((status = 200, description = "the settings", body = StripeSettings)),
    security(("bearer" = [])))]
pub(crate) async fn set_stripe(
    axum::extract::State(s): axum::extract::State<S>,
    c: Caller,
    Body(b): Body<StripeSettingsBody>,
) -> ApiResult {
    let secret = zeroize::Zeroizing::new(b.signing_secret);
    s.store
        .set_stripe_secret(c.org(), &secret, &c.ctx(&s))
        .await?;
    get_stripe_of(&s, c.org()).await
}

async fn get_stripe_of(s: &S, org: &str) -> ApiResult {
    Ok(json_response(
        StatusCode::OK,
        &StripeSettings {
            configured_at: s.store.stripe_configured(org).await?,
            endpoint: endpoint(org),
        },
    ))
}

/// Read the Stripe settings
#[utoipa::path(get, path = "/v1/payments/stripe", tag = "payments",
    description = "Whether a Stripe secret is set, and the endpoint path to give Stripe. Never the secret. Needs `admin`.",
    responses((status = 200, description = "the settings", body = StripeSettings)),
    security(("bearer" = [])))]
pub(crate) async fn get_stripe(
    axum::extract::State(s): axum::extract::State<S>,
    c: Caller,
) -> ApiResult {
    get_stripe_of(&s, c.org()).await
}

/// Set what a price buys
#[utoipa::path(post, path = "/v1/payments/prices", tag = "payments",
    description = "Creates or replaces the mapping of a Stripe price: the product, plan, entitlements, length and seats of the license a payment of it mints, and what a refund or a subscription's end does. Checked as a mint is checked. At most 200 per organisation. Needs `admin`.",
    request_body = Price,
    responses((status = 200, description = "the mapping", body = Price)),
    security(("bearer" = [])))]
pub(crate) async fn set_price(
    axum::extract::State(s): axum::extract::State<S>,
    c: Caller,
    Body(b): Body<Price>,
) -> ApiResult {
    let m = PriceMapping {
        price_id: b.price_id,
        product: b.product,
        plan: b.plan,
        entitlements: b.entitlements,
        duration_secs: b.duration_secs,
        seats: b.seats,
        on_refund: b.on_refund,
        on_cancel: b.on_cancel,
        email: b.email,
        updated_at: 0,
    };
    let m = s.store.set_price(c.org(), &m, &c.ctx(&s)).await?;
    Ok(json_response(StatusCode::OK, &Price::from(m)))
}

/// List price mappings
#[utoipa::path(get, path = "/v1/payments/prices", tag = "payments",
    description = "Every price mapping of the organisation, by price id (at most 200). Needs `admin`.",
    responses((status = 200, description = "the mappings", body = PriceList)),
    security(("bearer" = [])))]
pub(crate) async fn list_prices(
    axum::extract::State(s): axum::extract::State<S>,
    c: Caller,
) -> ApiResult {
    let items = s
        .store
        .prices(c.org())
        .await?
        .into_iter()
        .map(Price::from)
        .collect();
    Ok(json_response(StatusCode::OK, &PriceList { items }))
}

/// Get a price mapping
#[utoipa::path(get, path = "/v1/payments/prices/{price_id}", tag = "payments",
    description = "One price mapping. Needs `admin`.",
    params(("price_id" = String, Path, description = "Stripe's price id")),
    responses((status = 200, description = "the mapping", body = Price)),
    security(("bearer" = [])))]
pub(crate) async fn get_price(
    axum::extract::State(s): axum::extract::State<S>,
    c: Caller,
    p: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let id = path(p)?;
    let m = s
        .store
        .price(c.org(), &id)
        .await?
        .ok_or_else(|| Problem::not_found("price mapping"))?;
    Ok(json_response(StatusCode::OK, &Price::from(m)))
}

/// Delete a price mapping
#[utoipa::path(delete, path = "/v1/payments/prices/{price_id}", tag = "payments",
    description = "Deletes a price mapping: payments of it are refused (and recorded) until it is set again. Needs `admin`.",
    params(("price_id" = String, Path, description = "Stripe's price id")),
    responses((status = 204, description = "deleted")),
    security(("bearer" = [])))]
pub(crate) async fn delete_price(
    axum::extract::State(s): axum::extract::State<S>,
    c: Caller,
    p: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let id = path(p)?;
    if !s.store.delete_price(c.org(), &id, &c.ctx(&s)).await? {
        return Err(Problem::not_found("price mapping"));
    }
    Ok(axum::response::IntoResponse::into_response(
        StatusCode::NO_CONTENT,
    ))
}

/// List payment events
#[utoipa::path(get, path = "/v1/payments/events", tag = "payments",
    description = "The latest payment events the organisation's endpoint took, newest first, with what each did (`minted`, `renewed`, `linked`, `revoked`, `lapsed`, `ignored`) or why it was refused (`refused`: an unknown price, a renewal ahead of its checkout; acted on when Stripe sends it again). Events refused for their signature are not recorded: they come from no one known. Needs `admin`.",
    params(EventQuery),
    responses((status = 200, description = "the events", body = PaymentEventList)),
    security(("bearer" = [])))]
pub(crate) async fn list_payment_events(
    axum::extract::State(s): axum::extract::State<S>,
    c: Caller,
    q: Result<axum::extract::Query<EventQuery>, QueryRejection>,
) -> ApiResult {
    let q = query(q)?;
    let limit = super::extract::limit(q.limit)?;
    let items = s
        .store
        .payment_events(c.org(), limit)
        .await?
        .into_iter()
        .map(PaymentEventView::from)
        .collect();
    Ok(json_response(StatusCode::OK, &PaymentEventList { items }))
}

/// Set the SMTP settings
#[utoipa::path(post, path = "/v1/email/settings", tag = "payments",
    description = "The SMTP server license keys are emailed through (the password sealed in the ledger, never in an answer). Without them, no email is queued. Needs `admin`.",
    request_body = EmailSettingsBody,
    responses((status = 200, description = "the settings", body = EmailSettingsView)),
    security(("bearer" = [])))]
pub(crate) async fn set_email(
    axum::extract::State(s): axum::extract::State<S>,
    c: Caller,
    Body(b): Body<EmailSettingsBody>,
) -> ApiResult {
    if b.security == Security::None && !s.webhooks.private_networks {
        return Err(Problem::invalid(
            "security: none (no TLS) needs a service started with --webhooks-to-private-networks",
        ));
    }
    if !s.webhooks.private_networks
        && let Err(e) = crate::email::check_host(&b.host)
    {
        return Err(Problem::invalid(e));
    }
    let settings = Settings {
        host: b.host,
        port: b.port,
        security: b.security,
        username: b.username,
        from: b.from,
        reply_to: b.reply_to,
        updated_at: 0,
    };
    let password = b.password.map(zeroize::Zeroizing::new);
    s.store
        .set_email_settings(
            c.org(),
            &settings,
            password.as_deref().map(String::as_str),
            &c.ctx(&s),
        )
        .await?;
    let set = s
        .store
        .email_settings(c.org())
        .await?
        .ok_or_else(Problem::internal)?;
    Ok(json_response(StatusCode::OK, &EmailSettingsView::from(set)))
}

/// Read the SMTP settings
#[utoipa::path(get, path = "/v1/email/settings", tag = "payments",
    description = "The SMTP settings, never the password. Needs `admin`.",
    responses((status = 200, description = "the settings", body = EmailSettingsView)),
    security(("bearer" = [])))]
pub(crate) async fn get_email(
    axum::extract::State(s): axum::extract::State<S>,
    c: Caller,
) -> ApiResult {
    let set = s
        .store
        .email_settings(c.org())
        .await?
        .ok_or_else(|| Problem::not_found("email settings"))?;
    Ok(json_response(StatusCode::OK, &EmailSettingsView::from(set)))
}

/// Delete the SMTP settings
#[utoipa::path(delete, path = "/v1/email/settings", tag = "payments",
    description = "Stops emailing keys: nothing more is queued, and queued emails wait until settings are given again. Needs `admin`.",
    responses((status = 204, description = "deleted")),
    security(("bearer" = [])))]
pub(crate) async fn delete_email(
    axum::extract::State(s): axum::extract::State<S>,
    c: Caller,
) -> ApiResult {
    if !s.store.delete_email_settings(c.org(), &c.ctx(&s)).await? {
        return Err(Problem::not_found("email settings"));
    }
    Ok(axum::response::IntoResponse::into_response(
        StatusCode::NO_CONTENT,
    ))
}

/// Take a Stripe event
#[utoipa::path(post, path = "/v1/public/orgs/{org_id}/payments/stripe", tag = "payments",
    description = "Where Stripe posts the organisation's events. Checked against the organisation's Stripe secret as Stripe documents it (`Stripe-Signature`: HMAC-SHA256 over the timestamp and the raw body, any of several `v1` signatures, at most 5 minutes old), then acted on once by its id: a paid checkout mints the price's license (and emails it), a subscription's paid invoice mints its successor, a full refund or a subscription's end revokes or lets lapse as the price's mapping says. The same event again answers 200 with `duplicate`. No API token: the signature is the authentication. Rate-limited per client as the other public endpoints.",
    params(("org_id" = String, Path, description = "the organisation's id")),
    request_body(content = Object, description = "the Stripe event, raw", content_type = "application/json"),
    responses(
        (status = 200, description = "taken (or a duplicate)", body = StripeReceipt),
        (status = 400, description = "refused: no, a malformed, a wrong or an old `Stripe-Signature`, or not a Stripe event", body = ProblemSchema, content_type = "application/problem+json"),
        (status = 404, description = "no such organisation", body = ProblemSchema, content_type = "application/problem+json"),
        (status = 409, description = "`payments-not-configured`, or `subscription-unknown` (a renewal ahead of its checkout: sent again later)", body = ProblemSchema, content_type = "application/problem+json"),
        (status = 422, description = "`unknown-price`: recorded, acted on when sent again after the price is mapped", body = ProblemSchema, content_type = "application/problem+json"),
        (status = 429, description = "over the client's rate (`rate-limited`, Retry-After)", body = ProblemSchema, content_type = "application/problem+json", headers(("Retry-After" = u64, description = "seconds to wait"))),
    ))]
pub(crate) async fn stripe_event(
    axum::extract::State(s): axum::extract::State<S>,
    _: PublicClient,
    p: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let org = super::public::public_org(&s, p).await?;
    let header = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    let (status, answer) = crate::payments::stripe(&s, &org, header, &body).await?;
    Ok(json_response(status, &answer))
}
