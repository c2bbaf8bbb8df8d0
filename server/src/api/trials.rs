//! Trials (`keyseal_issuer::trials`): a product's trial policy (vendor
//! token), and `POST /v1/public/trials`, where an app with no license asks
//! for its product's trial with this device's fingerprint alone.
//! Rate-limited per client: the public rate, and a per-minute rate of its
//! own for trials (each mints a license).

use axum::extract::Path;
use axum::extract::rejection::PathRejection;
use axum::http::StatusCode;
use keyseal_issuer::Context;
use keyseal_issuer::trials::{
    DEFAULT_DEVICE_MATCH, DEFAULT_TRIAL_PLAN, DEFAULT_TRIAL_SECS, Trial, TrialPolicy, TrialRefused,
    TrialSettings, TrialStarted,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::{Body, Caller, ClientAddr, PublicClient, keyed_turn, path};
use super::licenses::with_active_key;
use super::{ApiResult, S, json_response};
use crate::openapi::ProblemSchema;
use crate::problem::Problem;

/// Who asks, in the audit log: an app, named by nothing personal.
const ACTOR: &str = "app";

/// A product's trial policy, as set. Fields left out take their defaults.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TrialPolicyBody {
    /// Whether the product gives trials.
    pub(crate) enabled: bool,
    /// How long a trial license lasts, in seconds: 3,600 (an hour) to
    /// 31,622,400 (a year); default 1,209,600 (14 days).
    #[schema(minimum = 3600, maximum = 31_622_400, example = 1_209_600)]
    pub(crate) length_secs: Option<u64>,
    /// The trial license's plan (default `trial`).
    #[schema(pattern = "^[A-Za-z0-9._:-]{1,32}$", example = "trial")]
    pub(crate) plan: Option<String>,
    /// The trial license's entitlements, as the product's licenses name
    /// them (at most 32; default none).
    #[schema(example = json!(["export-pdf", "plugins"]))]
    pub(crate) entitlements: Option<Vec<String>>,
    /// The k of the k-of-n device match: a device counts as an earlier
    /// trial device when at least this many fingerprint components equal
    /// that device's (a fingerprint with fewer components must match all
    /// of them); 1 to 8, default 2.
    #[schema(minimum = 1, maximum = 8, example = 2)]
    pub(crate) device_match: Option<u8>,
}

/// A product's trial policy.
#[derive(Serialize, ToSchema)]
pub(crate) struct TrialPolicyView {
    /// The product.
    #[schema(example = "acme-cad")]
    product: String,
    /// Whether the product gives trials (`false` until a policy is set).
    enabled: bool,
    /// How long a trial license lasts (seconds).
    #[schema(minimum = 3600, example = 1_209_600)]
    length_secs: u64,
    /// The trial license's plan.
    #[schema(example = "trial")]
    plan: String,
    /// The trial license's entitlements (sorted).
    entitlements: Vec<String>,
    /// The k of the k-of-n device match.
    #[schema(minimum = 1, maximum = 8, example = 2)]
    device_match: u8,
    /// When the policy was last set (unix seconds (UTC)); `null` if never.
    #[schema(required = true)]
    updated_at: Option<u64>,
}

impl From<TrialSettings> for TrialPolicyView {
    fn from(t: TrialSettings) -> Self {
        TrialPolicyView {
            product: t.product,
            enabled: t.policy.enabled,
            length_secs: t.policy.length_secs,
            plan: t.policy.plan,
            entitlements: t.policy.entitlements,
            device_match: t.policy.device_match,
            updated_at: t.updated_at,
        }
    }
}

/// Set a product's trial policy
#[utoipa::path(post, path = "/v1/products/{product}/trial-policy", tag = "products",
    description = "Sets whether the product gives trials (`POST /v1/public/trials`), how long a trial license lasts, its plan and entitlements, and `device_match`, the k of the k-of-n match that tells a device which had a trial from a new one. Fields left out take their defaults. Trials started from now on follow it; running ones keep their licenses. Needs `issue`.",
    params(("product" = String, Path, description = "the product's id", example = "acme-cad")),
    request_body = TrialPolicyBody,
    responses((status = 200, description = "the policy", body = TrialPolicyView)),
    security(("bearer" = [])))]
pub(crate) async fn set_trial_policy(
    axum::extract::State(s): axum::extract::State<S>,
    c: Caller,
    p: Result<Path<String>, PathRejection>,
    Body(b): Body<TrialPolicyBody>,
) -> ApiResult {
    let id = path(p)?;
    let policy = TrialPolicy {
        enabled: b.enabled,
        length_secs: b.length_secs.unwrap_or(DEFAULT_TRIAL_SECS),
        plan: b.plan.unwrap_or_else(|| DEFAULT_TRIAL_PLAN.to_owned()),
        entitlements: b.entitlements.unwrap_or_default(),
        device_match: b.device_match.unwrap_or(DEFAULT_DEVICE_MATCH),
    };
    let t = s
        .store
        .org_set_trial_policy(c.org(), &id, &policy, &c.ctx(&s))
        .await?
        .ok_or_else(|| Problem::not_found("product"))?;
    Ok(json_response(StatusCode::OK, &TrialPolicyView::from(t)))
}

/// Get a product's trial policy
#[utoipa::path(get, path = "/v1/products/{product}/trial-policy", tag = "products",
    description = "The product's trial policy (`enabled: false` and the defaults if none was set). Needs `read`.",
    params(("product" = String, Path, description = "the product's id", example = "acme-cad")),
    responses((status = 200, description = "the policy", body = TrialPolicyView)),
    security(("bearer" = [])))]
pub(crate) async fn get_trial_policy(
    axum::extract::State(s): axum::extract::State<S>,
    c: Caller,
    p: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let id = path(p)?;
    let t = s
        .store
        .org_trial_policy(c.org(), &id)
        .await?
        .ok_or_else(|| Problem::not_found("product"))?;
    Ok(json_response(StatusCode::OK, &TrialPolicyView::from(t)))
}

/// A device asking for a product's trial.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct StartTrial {
    /// The vendor's organisation (`org_...`): the id the app already
    /// carries to fetch its keyring (`/v1/public/orgs/{org_id}/keyring`);
    /// public, not a secret.
    #[schema(example = "org_8e7d6c5b4a392817")]
    pub(crate) org_id: String,
    /// The product (as in its licenses).
    #[schema(example = "acme-cad")]
    pub(crate) product: String,
    /// This device's fingerprint for the product (`ksfp1.`, from an SDK's
    /// `fingerprint()`).
    #[schema(example = "ksfp1.eko3XfFUUhImBLP3uaoWsw")]
    pub(crate) fingerprint: String,
}

/// A trial license for this device.
#[derive(Serialize, ToSchema)]
pub(crate) struct TrialLicense {
    /// The license (32 hex digits).
    #[schema(example = "0193a4b2c5d6e7f8091a2b3c4d5e6f70")]
    license_id: String,
    /// The license key (`ks1.`), bound to the device's exact fingerprint:
    /// validate it with the SDK as any key (its customer is `trial`).
    license_key: String,
    /// The product.
    product: String,
    /// The trial's plan.
    plan: String,
    /// The trial's entitlements.
    entitlements: Vec<String>,
    /// When the trial started (unix seconds (UTC)).
    started_at: u64,
    /// When the trial ends: the license's expiry (unix seconds (UTC)).
    expires_at: u64,
}

impl From<Trial> for TrialLicense {
    fn from(t: Trial) -> Self {
        TrialLicense {
            license_id: t.license_id,
            license_key: t.license_key,
            product: t.product,
            plan: t.plan,
            entitlements: t.entitlements,
            started_at: t.started_at,
            expires_at: t.expires_at,
        }
    }
}

fn refused(r: TrialRefused, product: &str, now: u64) -> Problem {
    use keyseal_issuer::time::format;
    match r {
        TrialRefused::UnknownProduct => Problem::not_found("product"),
        TrialRefused::Disabled => Problem::new(
            StatusCode::CONFLICT,
            "trials-disabled",
            format!("product `{product}` gives no trials"),
        ),
        TrialRefused::Used {
            started_at,
            ends_at,
        } => Problem::new(
            StatusCode::CONFLICT,
            "trial-used",
            format!(
                "this device had its trial of `{product}`: it started at {} and {} at {}",
                format(started_at),
                if now > ends_at { "ended" } else { "ends" },
                format(ends_at)
            ),
        ),
    }
}

/// Over the client's trial rate, the request waits its turn up to a second,
/// then gets 429 (at the default rate, a turn comes every six seconds:
/// at once).
/// Counted by IPv4 address or IPv6 /64, as failed authentications are (a
/// host usually holds a whole /64: rotating the low bits must not buy more
/// trials).
async fn trial_turn(s: &S, client: Option<std::net::IpAddr>) -> Result<(), Problem> {
    let (Some(limiter), Some(ip)) = (&s.trial_limiter, client) else {
        return Ok(());
    };
    keyed_turn(
        s,
        limiter,
        &client_net(ip),
        "too many trial requests from this client; retry in a few seconds",
    )
    .await
}

/// The client's IPv4 address (an IPv4-mapped IPv6 one counts as IPv4),
/// or its IPv6 /64.
fn client_net(ip: std::net::IpAddr) -> std::net::IpAddr {
    use std::net::{IpAddr, Ipv6Addr};
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(
                u128::from(a) & 0xffff_ffff_ffff_ffff_0000_0000_0000_0000,
            )),
        },
    }
}

/// Start a trial
#[utoipa::path(post, path = "/v1/public/trials", tag = "trials", operation_id = "startTrial",
    description = "An app with no license asks for its product's trial with this device's fingerprint (no API token; the organisation's id is public). The first request from a device mints a trial license bound to its exact fingerprint, expiring after the product's trial length (201). A device that matches one which had a trial of the product (at least `device_match` of its fingerprint components equal that device's) is refused with `trial-used`, saying when that trial started and ends: a changed network card or a reinstall does not reset it. The very same fingerprint asking again while its trial runs gets the same key again (200), so a lost answer can be asked for again and nothing is minted twice. Rate-limited per client.",
    request_body = StartTrial,
    responses(
        (status = 201, description = "a new trial license for this device", body = TrialLicense),
        (status = 200, description = "this very fingerprint's running trial, again", body = TrialLicense),
        (status = 404, description = "no such organisation or product", body = ProblemSchema, content_type = "application/problem+json"),
        (status = 409, description = "`trial-used` (this device had its trial; the detail says when it started and ends), `trials-disabled` (the product gives no trials) or `no-active-key`", body = ProblemSchema, content_type = "application/problem+json"),
        (status = 422, description = "`invalid-value`: not a device fingerprint", body = ProblemSchema, content_type = "application/problem+json"),
        (status = 429, description = "over the client's rate (`rate-limited`, Retry-After)", body = ProblemSchema, content_type = "application/problem+json", headers(("Retry-After" = u64, description = "seconds to wait"))),
    ))]
pub(crate) async fn start_trial(
    axum::extract::State(s): axum::extract::State<S>,
    _: PublicClient,
    ClientAddr(client): ClientAddr,
    Body(b): Body<StartTrial>,
) -> ApiResult {
    trial_turn(&s, client).await?;
    // Ids are `org_` and hex digits, products a license's product id:
    // anything else (a NUL byte PostgreSQL would refuse as text, say) is
    // not looked up.
    let plausible = b.org_id.len() <= 64
        && b.org_id
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_');
    if !plausible || !s.store.org_exists(&b.org_id).await? {
        return Err(Problem::not_found("organisation"));
    }
    if keyseal_issuer::request::check_product(&b.product).is_err() {
        return Err(Problem::not_found("product"));
    }
    let ctx = Context {
        now: s.now(),
        actor: ACTOR.into(),
    };
    // Refused before the organisation's key is loaded (unsealing it costs
    // an Argon2 run on a replica's first use) when the product gives no
    // trials: anyone may ask, for any organisation.
    match s.store.org_trial_policy(&b.org_id, &b.product).await? {
        None => return Err(refused(TrialRefused::UnknownProduct, &b.product, ctx.now)),
        Some(t) if !t.policy.enabled => {
            return Err(refused(TrialRefused::Disabled, &b.product, ctx.now));
        }
        Some(_) => {}
    }
    let out = with_active_key(&s, &b.org_id, |signer| {
        let (s, b, ctx) = (&s, &b, &ctx);
        async move {
            Ok(s.store
                .trial_start(&b.org_id, &signer, &b.product, &b.fingerprint, ctx)
                .await?)
        }
    })
    .await?;
    match out.map_err(|r| refused(r, &b.product, ctx.now))? {
        TrialStarted::New(t) => {
            s.count_mint();
            Ok(json_response(StatusCode::CREATED, &TrialLicense::from(t)))
        }
        TrialStarted::Again(t) => Ok(json_response(StatusCode::OK, &TrialLicense::from(t))),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    #[test]
    fn an_ipv6_client_is_its_64() {
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        assert_eq!(
            super::client_net(ip("2001:db8:1:2:aaaa::1")),
            super::client_net(ip("2001:db8:1:2:bbbb::9"))
        );
        assert_ne!(
            super::client_net(ip("2001:db8:1:2::1")),
            super::client_net(ip("2001:db8:1:3::1"))
        );
        assert_eq!(super::client_net(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(super::client_net(ip("192.0.2.7")), ip("192.0.2.7"));
    }
}
