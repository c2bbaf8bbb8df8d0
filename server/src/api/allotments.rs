//! `/v1/licenses/{id}/allotments`: seats of a license allotted to an
//! on-premises relay (`keyseal relay`), which signs the leases for them on
//! a LAN with no internet (docs/FORMAT.md, "Seat allotment";
//! `keyseal_issuer::allotments`).

use axum::extract::Path;
use axum::extract::rejection::PathRejection;
use axum::http::StatusCode;
use keyseal_issuer::allotments::{
    AllotRefused, Allotment as Granted, AllotmentRow, DEFAULT_ALLOTMENT_SECS,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::{Body, Caller, PublicClient, path};
use super::licenses::with_active_key;
use super::{ApiResult, S, json_response};
use crate::openapi::ProblemSchema;
use crate::problem::Problem;

/// Seats for a relay.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AllotRequest {
    /// The relay's public key (`kspub1.`), as `keyseal relay init` prints it.
    #[schema(example = "kspub1.kxKnSbdByxwctUQwckwpVwVJ8l88fRnMui68OX4UOB8")]
    relay_key: String,
    /// How many of the license's seats the relay may lease at once.
    #[schema(minimum = 1, example = 20)]
    seats: u64,
    /// How long the allotment holds, in seconds (an hour to 90 days; a
    /// week if absent). The relay needs a new one before it ends.
    #[schema(minimum = 3600, maximum = 7776000)]
    secs: Option<u64>,
}

/// A relay's renewal of its allotment, signed with its key.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RenewAllotment {
    /// The license key (`ks1.`) whose seats the relay leases.
    pub(crate) license_key: String,
    /// The relay's public key (`kspub1.`).
    #[schema(example = "kspub1.kxKnSbdByxwctUQwckwpVwVJ8l88fRnMui68OX4UOB8")]
    pub(crate) relay_key: String,
    /// The request's time (unix seconds (UTC)): within 300 s of the
    /// service's clock, and after the relay's last renewal.
    #[schema(minimum = 0)]
    pub(crate) at: u64,
    /// Ed25519 signature (128 hex digits) by the relay's key of
    /// `"keyseal/allotment-renewal/v1\0" || license id (16 bytes) || relay public key (32 bytes) || at (8 bytes, big-endian)`.
    pub(crate) signature: String,
}

/// A signed allotment.
#[derive(Serialize, ToSchema)]
pub(crate) struct Allotment {
    /// The allotment (`ksallot1.`): give it to the relay
    /// (`keyseal relay serve --allotment FILE`).
    allotment: String,
    /// The license (32 hex digits).
    license_id: String,
    /// The relay's key (`kspub1.`).
    relay_key: String,
    /// Its key id (16 hex digits): the signer of the relay's leases
    /// (revoking the relay puts it on the revocation list).
    relay_key_id: String,
    /// Seats allotted.
    seats: u64,
    /// When it was signed (unix seconds (UTC)).
    issued_at: u64,
    /// When it ends (unix seconds (UTC)).
    expires_at: u64,
}

impl From<Granted> for Allotment {
    fn from(a: Granted) -> Self {
        Allotment {
            allotment: a.allotment,
            license_id: a.license_id,
            relay_key: a.relay_key,
            relay_key_id: a.relay_key_id,
            seats: a.seats,
            issued_at: a.issued_at,
            expires_at: a.expires_at,
        }
    }
}

/// An allotment in the ledger.
#[derive(Serialize, ToSchema)]
pub(crate) struct AllotmentRecord {
    /// Its id (32 hex digits).
    allotment_id: String,
    /// The relay's key (`kspub1.`).
    relay_key: String,
    /// Its key id (16 hex digits).
    relay_key_id: String,
    /// Seats allotted.
    seats: u64,
    /// When it was signed (unix seconds (UTC)).
    issued_at: u64,
    /// When it ends (unix seconds (UTC)).
    expires_at: u64,
    /// When the vendor revoked the relay (unix seconds (UTC)), if it did.
    revoked_at: Option<u64>,
}

impl From<AllotmentRow> for AllotmentRecord {
    fn from(r: AllotmentRow) -> Self {
        let u = |v: i64| u64::try_from(v).unwrap_or(0);
        AllotmentRecord {
            allotment_id: r.allotment_id,
            relay_key: r.relay_key,
            relay_key_id: r.relay_key_id,
            seats: u(r.seats),
            issued_at: u(r.issued_at),
            expires_at: u(r.expires_at),
            revoked_at: r.revoked_at.map(u),
        }
    }
}

/// A license's allotments.
#[derive(Serialize, ToSchema)]
pub(crate) struct AllotmentList {
    /// Newest first.
    allotments: Vec<AllotmentRecord>,
}

/// A revoked relay.
#[derive(Serialize, ToSchema)]
pub(crate) struct RevokedRelay {
    /// The relay's key id.
    relay_key_id: String,
    /// When it was revoked (unix seconds (UTC)); the first time, for a
    /// repeated call.
    revoked_at: u64,
}

/// Allot seats to a relay
#[utoipa::path(post, path = "/v1/licenses/{id}/allotments", operation_id = "allotSeats", tag = "relays",
    description = "Signs an allotment of some of the license's seats to an on-premises relay's key (docs/FORMAT.md, \"Seat allotment\"): the relay signs leases for them on its LAN, verifiable by apps against the organisation's keyring. A first allotment, a renewal, or a larger or smaller one; the relay's seats count against the license's like leases, until its largest allotment in force ends. Needs `issue`.",
    params(("id" = String, Path, description = "license id (32 hex digits)", example = "7c1e5bd0a2f94c3e8d6b0f1a2c3d4e5f")),
    request_body = AllotRequest,
    responses(
        (status = 201, description = "the allotment", body = Allotment),
        (status = 404, description = "no such license in this organisation", body = ProblemSchema, content_type = "application/problem+json"),
        (status = 409, description = "`seat-limit` (not enough free seats), `relay-revoked`, `license-revoked`, `license-suspended`, `license-expired`, `license-not-yet-valid` or `no-active-key`", body = ProblemSchema, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(crate) async fn allot(
    axum::extract::State(s): axum::extract::State<S>,
    c: Caller,
    p: Result<Path<String>, PathRejection>,
    Body(b): Body<AllotRequest>,
) -> ApiResult {
    let id = path(p)?;
    let ctx = c.ctx(&s);
    let secs = b.secs.unwrap_or(DEFAULT_ALLOTMENT_SECS);
    let out = with_active_key(&s, c.org(), |signer| {
        let (s, c, b, ctx, id) = (&s, &c, &b, &ctx, &id);
        async move {
            Ok(s.store
                .allot_seats(c.org(), &signer, id, &b.relay_key, b.seats, secs, ctx)
                .await?)
        }
    })
    .await?;
    let a = out.map_err(|r| match r {
        AllotRefused::UnknownLicense => Problem::not_found("license"),
        r => allot_refused(r, ctx.now),
    })?;
    Ok(json_response(StatusCode::CREATED, &Allotment::from(a)))
}

/// The problem for a refused allotment or renewal.
fn allot_refused(r: AllotRefused, now: u64) -> Problem {
    match r {
        AllotRefused::UnknownLicense => {
            super::leases::refused(keyseal_issuer::seats::SeatRefused::UnknownLicense, now)
        }
        AllotRefused::License(r) => super::leases::refused(r, now),
        AllotRefused::SeatLimit { seats, free } => Problem::new(
            StatusCode::CONFLICT,
            "seat-limit",
            format!(
                "{free} of the license's {seats} seats are free for this relay (leases and other relays hold the rest)"
            ),
        ),
        AllotRefused::RelayRevoked => Problem::new(
            StatusCode::CONFLICT,
            "relay-revoked",
            "this relay key was revoked for this license; the relay makes a new key (`keyseal relay init`)",
        ),
        AllotRefused::UnknownRelay => Problem::not_found("relay allotment"),
        AllotRefused::BadProof(why) => Problem::new(StatusCode::FORBIDDEN, "bad-proof", why),
    }
}

/// Renew a relay's allotment
#[utoipa::path(post, path = "/v1/public/allotments/renew", operation_id = "renewAllotment", tag = "relays",
    description = "An on-premises relay renews its allotment before it ends (`keyseal relay serve --renew-from`), with the license key and a signature by its own key (no API token): it gets the seats and validity of the vendor's last allotment to it again, signed now. So the vendor shrinks a relay by allotting it fewer seats, and stops it by revoking its key or the license: either takes effect at the relay's next renewal. Refused as an allotment is (the license's state, free seats, a revoked relay). Rate-limited per client and per license.",
    request_body = RenewAllotment,
    responses(
        (status = 201, description = "the renewed allotment", body = Allotment),
        (status = 403, description = "`invalid-license-key` (not a key this service issued) or `bad-proof` (signature, a time more than 300 s off, a replay)", body = ProblemSchema, content_type = "application/problem+json"),
        (status = 404, description = "the vendor never allotted this license's seats to this relay key", body = ProblemSchema, content_type = "application/problem+json"),
        (status = 409, description = "`seat-limit`, `relay-revoked`, `license-revoked`, `license-suspended`, `license-expired`, `license-not-yet-valid` or `no-active-key`", body = ProblemSchema, content_type = "application/problem+json"),
        (status = 429, description = "over the client's or the license's rate after a second's wait (`rate-limited`, Retry-After)", body = ProblemSchema, content_type = "application/problem+json", headers(("Retry-After" = u64, description = "seconds to wait"))),
    ))]
pub(crate) async fn renew_allotment(
    axum::extract::State(s): axum::extract::State<S>,
    _: PublicClient,
    Body(b): Body<RenewAllotment>,
) -> ApiResult {
    super::leases::license_turn(&s, &b.license_key).await?;
    let ctx = keyseal_issuer::Context {
        now: s.now(),
        actor: "relay".into(),
    };
    let org = super::leases::org_of(&s, &b.license_key, ctx.now).await?;
    let out = with_active_key(&s, &org, |signer| {
        let (s, b, ctx) = (&s, &b, &ctx);
        async move {
            Ok(s.store
                .renew_allotment(
                    &signer,
                    &b.license_key,
                    &b.relay_key,
                    b.at,
                    &b.signature,
                    ctx,
                )
                .await?)
        }
    })
    .await?;
    let a = out.map_err(|r| allot_refused(r, ctx.now))?;
    Ok(json_response(StatusCode::CREATED, &Allotment::from(a)))
}

/// List a license's allotments
#[utoipa::path(get, path = "/v1/licenses/{id}/allotments", operation_id = "listAllotments", tag = "relays",
    description = "Every allotment of the license to relays, newest first. Needs `read`.",
    params(("id" = String, Path, description = "license id (32 hex digits)", example = "7c1e5bd0a2f94c3e8d6b0f1a2c3d4e5f")),
    responses(
        (status = 200, description = "the allotments", body = AllotmentList),
        (status = 404, description = "no such license in this organisation", body = ProblemSchema, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(crate) async fn list_allotments(
    axum::extract::State(s): axum::extract::State<S>,
    c: Caller,
    p: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let id = path(p)?;
    if s.store.org_license(c.org(), &id).await?.is_none() {
        return Err(Problem::not_found("license"));
    }
    let rows = s.store.org_allotments(c.org(), &id).await?;
    Ok(json_response(
        StatusCode::OK,
        &AllotmentList {
            allotments: rows.into_iter().map(AllotmentRecord::from).collect(),
        },
    ))
}

/// Revoke a relay
#[utoipa::path(post, path = "/v1/licenses/{id}/relays/{relay_key_id}/revoke", operation_id = "revokeRelay", tag = "relays",
    description = "The relay key gets no further allotment of the license, and the organisation's revocation list, published at once, names its key id: apps that load that list refuse the relay's leases (`key_revoked`); apps without it hold them until the allotment ends. Repeating it answers the first time. Needs `issue`.",
    params(
        ("id" = String, Path, description = "license id (32 hex digits)", example = "7c1e5bd0a2f94c3e8d6b0f1a2c3d4e5f"),
        ("relay_key_id" = String, Path, description = "the relay key's id (16 hex digits)", example = "3f2a9c1e5b7d4a60"),
    ),
    responses(
        (status = 200, description = "revoked", body = RevokedRelay),
        (status = 404, description = "the relay has no allotment of this license in this organisation", body = ProblemSchema, content_type = "application/problem+json"),
        (status = 409, description = "`no-active-key` (nothing could sign the list)", body = ProblemSchema, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(crate) async fn revoke_relay(
    axum::extract::State(s): axum::extract::State<S>,
    c: Caller,
    p: Result<Path<(String, String)>, PathRejection>,
) -> ApiResult {
    let (id, relay) = p
        .map(|Path(v)| v)
        .map_err(|e| Problem::bad_request(format!("bad path: {}", e.body_text())))?;
    let ctx = c.ctx(&s);
    // The list that names the relay key must be signed: refused (409
    // `no-active-key`) before anything is written, as a license's revocation.
    super::licenses::require_active_key(&s, c.org()).await?;
    let at = s
        .store
        .revoke_relay(c.org(), &id, &relay, &ctx)
        .await?
        .ok_or_else(|| Problem::not_found("relay allotment"))?;
    super::licenses::publish(&s, c.org(), &ctx, keyseal_issuer::Publish::IfChanged).await?;
    Ok(json_response(
        StatusCode::OK,
        &RevokedRelay {
            relay_key_id: relay,
            revoked_at: at,
        },
    ))
}
