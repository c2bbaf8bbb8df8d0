//! `/v1/licenses`: mint, read, revoke, suspend and resume licenses.

use std::collections::BTreeMap;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use keyseal_issuer::KeyError;
use keyseal_issuer::service::{MintJob, OrgLicense, OrgLicenseFilter, SignedMint};
use keyseal_issuer::{Context, RequestFields, Signed};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::extract::{Body, Caller, page_args, path, query};
use super::views::{License, LicensePage};
use super::{ApiResult, S, json_response};
use crate::openapi::ProblemSchema;
use crate::problem::Problem;
use crate::{REVOCATION_LIST_LIFETIME, State};

/// What to mint: the claims signed into the key, and what the service
/// keeps beside it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"product": "acme-cad", "customer_id": "cus_3f9a6c0e1b2d4a58", "plan": "pro", "expires": "365d", "max_devices": 3, "external_id": "order-2026-0042"}))]
pub(crate) struct MintRequest {
    /// A registered product's id.
    #[schema(example = "acme-cad")]
    product: String,
    /// The customer's id (`cus_...`, or any opaque id of yours: 1 to 64
    /// letters, digits and `. _ : -`).
    #[schema(example = "cus_3f9a6c0e1b2d4a58")]
    customer_id: String,
    /// The plan, written into the key.
    #[schema(example = "pro")]
    plan: String,
    /// When it expires: RFC 3339, a date (`2027-12-31`), a duration from
    /// now (`365d`, `12h`) or `never`.
    #[schema(example = "365d")]
    expires: String,
    /// Valid from (same forms as `expires`); default: now.
    not_before: Option<String>,
    /// How long past expiry apps still accept it, as a duration (`7d`).
    grace: Option<String>,
    /// A `ksfp1.` device fingerprint to bind the key to.
    device: Option<String>,
    /// How many of the fingerprint's components must match (default: all).
    #[schema(minimum = 0, maximum = 255)]
    device_match: Option<u8>,
    /// Features the license grants.
    #[schema(example = json!(["export", "cloud-sync"]))]
    entitlements: Option<Vec<String>>,
    /// The newest app version it covers (`5.x`, `5.2`, `5.2.1`).
    max_version: Option<String>,
    /// Extra signed claims (keys of 1 to 32 letters, digits and `. _ -`).
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    ext: Option<UniqueMap>,
    /// Devices that may hold a seat at once through activations (default 1).
    #[schema(minimum = 0)]
    max_devices: Option<u64>,
    /// Your own id for the license (an order number), unique in the
    /// organisation: a second mint with it is a 409 `external-id-exists`
    /// naming the first license. Kept in the ledger, never in the key.
    #[schema(pattern = "^[!-~]{1,128}$", example = "order-2026-0042")]
    external_id: Option<String>,
    /// Your key-value references about the license (at most 20; keys of 1 to
    /// 40 letters, digits or `. _ -`; values of at most 500 bytes): kept in the
    /// service, never in the key, erased with the customer. Not for personal
    /// data (an email address is refused).
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    metadata: Option<UniqueMap>,
}

/// A JSON object of strings in which a key given twice is an error (serde's
/// maps keep the last silently, and a signed key must say what was sent).
pub(crate) struct UniqueMap(pub(crate) BTreeMap<String, String>);

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
    let _ = serde_json::from_slice::<super::products::NewProduct>(bytes);
    let _ = serde_json::from_slice::<super::customers::NewCustomer>(bytes);
    let _ = serde_json::from_slice::<RevokeRequest>(bytes);
    let _ = serde_json::from_slice::<super::activations::ActivateRequest>(bytes);
    let _ = serde_json::from_slice::<super::tokens::NewToken>(bytes);
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

/// Mint a license
#[utoipa::path(post, path = "/v1/licenses", operation_id = "mintLicense", tag = "licenses",
    description = "Signs a license with the organisation's active key and records it, with its key, in the ledger. With an `Idempotency-Key`, the 201 is recorded in the same transaction as the license: a retry gets it again, never a second license. Needs `issue`.",
    request_body = MintRequest,
    responses(
        (status = 201, description = "the license, with its key", body = License),
        (status = 409, description = "`external-id-exists` (naming the first license), `no-active-key`, or an Idempotency-Key conflict", body = ProblemSchema, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(crate) async fn mint(
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
    let render = |l: &OrgLicense| {
        serde_json::to_string(&License::seen_by(l.clone(), &c)).unwrap_or_default()
    };
    let recorded = key.is_some();
    let l = with_active_key(&s, c.org(), |signer| {
        submit_mint(&s, signer, job.clone(), key.clone(), &render)
    })
    .await?;
    s.count_mint();
    let mut r = json_response(StatusCode::CREATED, &License::seen_by(l, &c));
    if recorded {
        r.extensions_mut()
            .insert(crate::idempotency::RecordedWithEffect);
    }
    Ok(r)
}

/// Runs `op`, a write signed with the organisation's key; if the key was
/// rotated meanwhile (here, or through another replica: then its active
/// key is loaded from the ledger), runs it once more with the active key.
pub(super) async fn with_active_key<T, F, Fut>(s: &State, org_id: &str, op: F) -> Result<T, Problem>
where
    F: Fn(keyseal_issuer::Signer) -> Fut,
    Fut: std::future::Future<Output = Result<Signed<T>, Problem>>,
{
    let signer = s.signer(org_id).await?;
    let first = signer.key_id();
    if let Signed::Done(t) = op(signer).await? {
        return Ok(t);
    }
    s.reload_signer(org_id).await;
    let now = s.signer(org_id).await?;
    if now.key_id() != first
        && let Signed::Done(t) = op(now).await?
    {
        return Ok(t);
    }
    Err(keyseal_issuer::Error::Key(KeyError::StaleSigner { key_id: first }).into())
}

/// Signs the mint here (handlers sign in parallel), then hands it to the
/// group-commit task and waits for the commit.
async fn submit_mint(
    s: &State,
    signer: keyseal_issuer::Signer,
    job: MintJob,
    idempotency_key: Option<String>,
    render: &(dyn Fn(&OrgLicense) -> String + Sync),
) -> Result<Signed<OrgLicense>, Problem> {
    let license = keyseal_issuer::service::sign_mint(&signer, &job)?;
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
    Ok(rx.await.map_err(|_| Problem::internal())??)
}

/// Mints a license for the service itself (a payment's), through the same
/// signing and group commit as the API's mints.
pub(crate) async fn mint_for(s: &State, job: MintJob) -> Result<OrgLicense, Problem> {
    let org = job.org_id.clone();
    let l = with_active_key(s, &org, |signer| {
        submit_mint(s, signer, job.clone(), None, &|_| String::new())
    })
    .await?;
    s.count_mint();
    Ok(l)
}

/// The license list's parameters.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct LicenseQuery {
    /// A `next_cursor` from the previous page, unchanged (anything else is
    /// a 400); none or empty: the first page.
    cursor: Option<String>,
    /// Items on the page, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u64>,
    /// Only this product's licenses.
    product: Option<String>,
    /// Only this customer's licenses.
    customer_id: Option<String>,
}

/// List licenses
#[utoipa::path(get, path = "/v1/licenses", tag = "licenses",
    description = "The organisation's licenses in pages, by id, optionally of one product or customer; keys redacted for tokens with `read` alone. Needs `read`.",
    params(LicenseQuery),
    responses((status = 200, description = "a page of licenses", body = LicensePage)),
    security(("bearer" = [])))]
pub(crate) async fn list_licenses(
    axum::extract::State(s): axum::extract::State<S>,
    c: Caller,
    q: Result<Query<LicenseQuery>, QueryRejection>,
) -> ApiResult {
    let q = query(q)?;
    let (after, limit) = page_args(q.cursor, q.limit, |c| {
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
    Ok(LicensePage::answer(
        rows,
        limit,
        |l| l.record.license_id.to_string(),
        |l| License::seen_by(l, &c),
    ))
}

/// Get a license
#[utoipa::path(get, path = "/v1/licenses/{id}", tag = "licenses",
    description = "One license of the organisation; its key redacted for tokens with `read` alone. Needs `read`.",
    params(("id" = String, Path, description = "license id (32 hex digits)", example = "7c1e5bd0a2f94c3e8d6b0f1a2c3d4e5f")),
    responses((status = 200, description = "the license", body = License)),
    security(("bearer" = [])))]
pub(crate) async fn get_license(
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
    Ok(json_response(StatusCode::OK, &License::seen_by(l, &c)))
}

/// Why a license or key is revoked.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RevokeRequest {
    /// A short slug such as `refund` (1 to 32 letters, digits and `. _ : -`).
    #[schema(pattern = "^[A-Za-z0-9._:-]{1,32}$", example = "refund")]
    pub(crate) reason: String,
}

/// Revoke a license
#[utoipa::path(post, path = "/v1/licenses/{id}/revoke", operation_id = "revokeLicense", tag = "licenses",
    description = "Revokes the license for good and publishes the organisation's revocation list at once, naming it (apps that fetch the list refuse the key from then on). Revoking twice is a 409 `conflict`. Needs `issue`.",
    params(("id" = String, Path, description = "license id (32 hex digits)", example = "7c1e5bd0a2f94c3e8d6b0f1a2c3d4e5f")),
    request_body = RevokeRequest,
    responses(
        (status = 200, description = "the revoked license", body = License),
        (status = 409, description = "`conflict` (revoked already) or `no-active-key` (nothing could sign the list)", body = ProblemSchema, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(crate) async fn revoke(
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
    Ok(json_response(StatusCode::OK, &License::seen_by(l, &c)))
}

/// Refuses (409 `no-active-key`) when the organisation has no active key in
/// the ledger (this replica's cached signer may be one retired elsewhere):
/// nothing could sign the revocation list.
pub(crate) async fn require_active_key(s: &State, org_id: &str) -> Result<(), Problem> {
    match s.store.org_active_key(org_id).await? {
        Some(_) => Ok(()),
        None => Err(keyseal_issuer::Error::Key(KeyError::NoActiveKey).into()),
    }
}

/// Publishes the organisation's revocation list, signed by its active key,
/// `when` it needs it (see `Store::publish_list`): `None` if it did not. If
/// another replica rotated (or retired) the key this one signs with, loads
/// the active key and tries once more.
pub(crate) async fn publish(
    s: &State,
    org_id: &str,
    ctx: &Context,
    when: keyseal_issuer::Publish,
) -> keyseal_issuer::Result<Option<keyseal_issuer::PublishedList>> {
    let next_update = ctx.now + REVOCATION_LIST_LIFETIME;
    let signer = s.signer(org_id).await?;
    let store = &s.store;
    match store.publish_list(&signer, next_update, when, ctx).await? {
        Signed::Done(list) => Ok(list),
        Signed::KeyRotated { key_id } if s.reload_signer(org_id).await => {
            let now = s.signer(org_id).await?;
            match store.publish_list(&now, next_update, when, ctx).await? {
                Signed::Done(list) => Ok(list),
                Signed::KeyRotated { .. } => {
                    Err(keyseal_issuer::Error::Key(KeyError::StaleSigner { key_id }))
                }
            }
        }
        Signed::KeyRotated { key_id } => {
            Err(keyseal_issuer::Error::Key(KeyError::StaleSigner { key_id }))
        }
    }
}

/// Suspend a license
#[utoipa::path(post, path = "/v1/licenses/{id}/suspend", operation_id = "suspendLicense", tag = "licenses",
    description = "The service refuses the license's activations until it is resumed (apps offline are not told: a suspension is not in the revocation list). A revoked license is a 409 `conflict` (revocation is final). Needs `issue`.",
    params(("id" = String, Path, description = "license id (32 hex digits)", example = "7c1e5bd0a2f94c3e8d6b0f1a2c3d4e5f")),
    responses(
        (status = 200, description = "the suspended license", body = License),
        (status = 409, description = "`conflict`: the license is revoked", body = ProblemSchema, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(crate) async fn suspend(
    axum::extract::State(s): axum::extract::State<S>,
    c: Caller,
    p: Result<Path<String>, PathRejection>,
) -> ApiResult {
    set_suspended(s, c, p, true).await
}

/// Resume a suspended license
#[utoipa::path(post, path = "/v1/licenses/{id}/resume", operation_id = "resumeLicense", tag = "licenses",
    description = "Ends a suspension. A revoked license is a 409 `conflict` (revocation is final). Needs `issue`.",
    params(("id" = String, Path, description = "license id (32 hex digits)", example = "7c1e5bd0a2f94c3e8d6b0f1a2c3d4e5f")),
    responses(
        (status = 200, description = "the license", body = License),
        (status = 409, description = "`conflict`: the license is revoked", body = ProblemSchema, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(crate) async fn resume(
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
    Ok(json_response(StatusCode::OK, &License::seen_by(l, &c)))
}
