//! `/v1/public/leases`: apps take, renew and free seats of their license
//! with the license key itself, no vendor token (docs/FORMAT.md "Lease";
//! `keyseal_issuer::seats`). Rate-limited per client address and per
//! license.

use axum::http::StatusCode;
use keyseal_core::license::{self as core_license, MAX_LICENSE_LEN, UnverifiedLicense};
use keyseal_issuer::Context;
use keyseal_issuer::seats::{SeatLease, SeatRefused};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::{Body, PublicClient, keyed_turn};
use super::licenses::with_active_key;
use super::{ApiResult, S, json_response};
use crate::openapi::ProblemSchema;
use crate::problem::Problem;

/// Who asks, in the audit log: an app, named by nothing personal.
const ACTOR: &str = "app";

/// A device asking for a seat.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ActivateSeat {
    /// The license key (`ks1.`), exactly as the vendor issued it.
    #[schema(example = "ks1.AQ...")]
    pub(crate) license_key: String,
    /// This device's fingerprint (`ksfp1.`, from an SDK's `fingerprint()`).
    #[schema(example = "ksfp1.eko3XfFUUhImBLP3uaoWsw")]
    pub(crate) fingerprint: String,
    /// The public key (`kspub1.`) of a key pair this installation made for
    /// the seat; it signs the seat's check-ins and its release.
    #[schema(example = "kspub1.kxKnSbdByxwctUQwckwpVwVJ8l88fRnMui68OX4UOB8")]
    pub(crate) public_key: String,
}

/// A seat's check-in, signed by its installation.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CheckIn {
    /// The license key (`ks1.`).
    pub(crate) license_key: String,
    /// This device's fingerprint (`ksfp1.`): the seat's device.
    pub(crate) fingerprint: String,
    /// The seat (32 hex digits).
    #[schema(example = "43c484827f1a147f45dcd1e2d4104842")]
    pub(crate) seat_id: String,
    /// The request's time (unix seconds (UTC)): within 300 s of the
    /// service's clock, and after the seat's last request.
    #[schema(minimum = 0)]
    pub(crate) at: u64,
    /// Ed25519 signature (128 hex digits) by the installation's key of
    /// `"keyseal/lease-check-in/v1\0" || seat id (16 bytes) || at (8 bytes, big-endian)`.
    pub(crate) signature: String,
}

/// A seat's release, signed by its installation.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Release {
    /// The license key (`ks1.`).
    pub(crate) license_key: String,
    /// The seat (32 hex digits).
    pub(crate) seat_id: String,
    /// The request's time (unix seconds (UTC)), as for a check-in.
    #[schema(minimum = 0)]
    pub(crate) at: u64,
    /// Ed25519 signature (128 hex digits) by the installation's key of
    /// `"keyseal/lease-release/v1\0" || seat id (16 bytes) || at (8 bytes, big-endian)`.
    pub(crate) signature: String,
}

/// A lease on a seat.
#[derive(Serialize, ToSchema)]
pub(crate) struct Lease {
    /// The seat (32 hex digits).
    seat_id: String,
    /// The license (32 hex digits).
    license_id: String,
    /// The lease (`kslease1.`): keep it with the license key and validate
    /// both with the SDK.
    lease: String,
    /// When it was signed (unix seconds (UTC)).
    issued_at: u64,
    /// When to check in (unix seconds (UTC)).
    renew_at: u64,
    /// When the lease ends (unix seconds (UTC)); the seat is free a
    /// little after it unless the app checks in.
    expires_at: u64,
}

impl From<SeatLease> for Lease {
    fn from(l: SeatLease) -> Self {
        Lease {
            seat_id: l.seat_id,
            license_id: l.license_id,
            lease: l.lease,
            issued_at: l.issued_at,
            renew_at: l.renew_at,
            expires_at: l.expires_at,
        }
    }
}

/// A released seat.
#[derive(Serialize, ToSchema)]
pub(crate) struct ReleasedSeat {
    /// The seat (32 hex digits).
    seat_id: String,
    /// When it was released (unix seconds (UTC)).
    released_at: u64,
}

impl ReleasedSeat {
    pub(crate) fn new(seat_id: String, released_at: u64) -> Self {
        ReleasedSeat {
            seat_id,
            released_at,
        }
    }
}

/// Over the license's rate: the request waits its turn up to a second,
/// then gets 429. Keyed by the license id the key text carries (checked
/// later): a stranger's made-up keys each get a bucket, which the
/// per-client limit bounds.
pub(crate) async fn license_turn(s: &S, license_key: &str) -> Result<(), Problem> {
    let Some(limiter) = &s.lease_limiter else {
        return Ok(());
    };
    let text = core_license::without_whitespace(license_key);
    let mut buf = [0u8; MAX_LICENSE_LEN];
    let id = core_license::decode_text(&text, &mut buf)
        .ok()
        .and_then(|b| UnverifiedLicense::from_bytes(b).ok())
        .map_or(0, |l| l.dangerous_unverified_claims().license_id.to_u128());
    keyed_turn(
        s,
        limiter,
        &id,
        "too many lease requests for this license; retry in a second",
    )
    .await
}

pub(crate) fn refused(r: SeatRefused, now: u64) -> Problem {
    let conflict = |slug, detail: String| Problem::new(StatusCode::CONFLICT, slug, detail);
    match r {
        SeatRefused::UnknownLicense => Problem::new(
            StatusCode::FORBIDDEN,
            "invalid-license-key",
            "the license key is not one this service issued (paste it whole, as issued)",
        ),
        SeatRefused::Revoked => conflict("license-revoked", "the license is revoked".into()),
        SeatRefused::Suspended => conflict("license-suspended", "the license is suspended".into()),
        SeatRefused::Expired { expired_at } => conflict(
            "license-expired",
            format!("the license expired at {expired_at}"),
        ),
        SeatRefused::NotYetValid { not_before } => conflict(
            "license-not-yet-valid",
            format!("the license is valid from {not_before}"),
        ),
        SeatRefused::SeatLimit { seats, free_at } => conflict(
            "seat-limit",
            format!(
                "all {seats} seats of this license are held; the first frees in {} s unless its device checks in",
                free_at.saturating_sub(now)
            ),
        ),
        SeatRefused::UnknownSeat => Problem::not_found("seat"),
        SeatRefused::SeatReleased => conflict(
            "seat-released",
            "the seat was released; activate again".into(),
        ),
        SeatRefused::SeatLapsed { seats } => conflict(
            "seat-lapsed",
            format!(
                "the seat's lease ended and all {seats} seats are held by other devices; activate again later"
            ),
        ),
        SeatRefused::BadProof(why) => Problem::new(StatusCode::FORBIDDEN, "bad-proof", why),
        SeatRefused::WrongDevice => Problem::new(
            StatusCode::FORBIDDEN,
            "wrong-device",
            "the fingerprint is not the seat's device; activate this device instead",
        ),
    }
}

fn ctx(s: &S) -> Context {
    Context {
        now: s.now(),
        actor: ACTOR.into(),
    }
}

/// The organisation whose key signed the license, or the refusal.
pub(crate) async fn org_of(s: &S, license_key: &str, now: u64) -> Result<String, Problem> {
    s.store
        .lease_org(license_key)
        .await?
        .map_err(|r| refused(r, now))
}

/// Take a seat
#[utoipa::path(post, path = "/v1/public/leases", tag = "leases", operation_id = "activateSeat",
    description = "An app takes one of its license's seats for this device with the license key itself (no API token) and gets a lease (`kslease1.`) to validate with the key offline. The same device asking again gets its seat back with the new installation key. The lease's lifetime is the product's policy. Rate-limited per client and per license.",
    request_body = ActivateSeat,
    responses(
        (status = 201, description = "a lease on a seat", body = Lease),
        (status = 403, description = "`invalid-license-key`: not a key this service issued", body = ProblemSchema, content_type = "application/problem+json"),
        (status = 409, description = "`license-revoked`, `license-suspended`, `license-expired`, `license-not-yet-valid`, `seat-limit` (every seat is held; the detail says when one frees) or `no-active-key`", body = ProblemSchema, content_type = "application/problem+json"),
        (status = 429, description = "over the client's or the license's rate after a second's wait (`rate-limited`, Retry-After)", body = ProblemSchema, content_type = "application/problem+json", headers(("Retry-After" = u64, description = "seconds to wait"))),
    ))]
pub(crate) async fn activate_seat(
    axum::extract::State(s): axum::extract::State<S>,
    _: PublicClient,
    Body(b): Body<ActivateSeat>,
) -> ApiResult {
    license_turn(&s, &b.license_key).await?;
    let ctx = ctx(&s);
    let org = org_of(&s, &b.license_key, ctx.now).await?;
    let out = with_active_key(&s, &org, |signer| {
        let (s, b, ctx) = (&s, &b, &ctx);
        async move {
            Ok(s.store
                .lease_activate(&signer, &b.license_key, &b.fingerprint, &b.public_key, ctx)
                .await?)
        }
    })
    .await?;
    let lease = out.map_err(|r| refused(r, ctx.now))?;
    Ok(json_response(StatusCode::CREATED, &Lease::from(lease)))
}

/// Check in
#[utoipa::path(post, path = "/v1/public/leases/check-in", tag = "leases", operation_id = "checkIn",
    description = "Renews a seat's lease: signed by the installation that took the seat, from the seat's device. A seat whose lease ended is renewed while a seat is free (`seat-lapsed` if not). Rate-limited per client and per license.",
    request_body = CheckIn,
    responses(
        (status = 200, description = "the next lease", body = Lease),
        (status = 403, description = "`invalid-license-key`, `bad-proof` (signature, a time more than 300 s off, a replay) or `wrong-device`", body = ProblemSchema, content_type = "application/problem+json"),
        (status = 404, description = "no such seat on this license", body = ProblemSchema, content_type = "application/problem+json"),
        (status = 409, description = "`license-revoked`, `license-suspended`, `license-expired`, `license-not-yet-valid`, `seat-released`, `seat-lapsed` or `no-active-key`", body = ProblemSchema, content_type = "application/problem+json"),
        (status = 429, description = "over the client's or the license's rate after a second's wait (`rate-limited`, Retry-After)", body = ProblemSchema, content_type = "application/problem+json", headers(("Retry-After" = u64, description = "seconds to wait"))),
    ))]
pub(crate) async fn check_in(
    axum::extract::State(s): axum::extract::State<S>,
    _: PublicClient,
    Body(b): Body<CheckIn>,
) -> ApiResult {
    license_turn(&s, &b.license_key).await?;
    let ctx = ctx(&s);
    let org = org_of(&s, &b.license_key, ctx.now).await?;
    let out = with_active_key(&s, &org, |signer| {
        let (s, b, ctx) = (&s, &b, &ctx);
        async move {
            // Parsed, looked up, verified and signed here, in parallel;
            // committed in groups by the check-in task (one statement a
            // check-in, one fsync for many heartbeats).
            let ask = match s
                .store
                .check_in_parse(
                    &b.license_key,
                    &b.fingerprint,
                    &b.seat_id,
                    b.at,
                    &b.signature,
                )
                .await?
            {
                Ok(ask) => ask,
                Err(r) => return Ok(keyseal_issuer::Signed::Done(Err(r))),
            };
            // Read in groups by the lookup task.
            let (tx, rx) = tokio::sync::oneshot::channel();
            s.lookups
                .send((ask, tx))
                .await
                .map_err(|_| Problem::internal())?;
            let (ask, found) = rx.await.map_err(|_| Problem::internal())??;
            let job = match keyseal_issuer::seats::check_in_finish(&signer, ask, found, ctx.now)? {
                Ok(job) => job,
                Err(r) => return Ok(keyseal_issuer::Signed::Done(Err(r))),
            };
            let (tx, rx) = tokio::sync::oneshot::channel();
            s.checkins
                .send((signer, job, ctx.now, tx))
                .await
                .map_err(|_| Problem::internal())?;
            Ok(rx.await.map_err(|_| Problem::internal())??)
        }
    })
    .await?;
    let lease = out.map_err(|r| refused(r, ctx.now))?;
    Ok(json_response(StatusCode::OK, &Lease::from(lease)))
}

/// Release a seat
#[utoipa::path(post, path = "/v1/public/leases/release", tag = "leases", operation_id = "releaseSeat",
    description = "Frees a seat at once: signed by the installation that took it, which states that it dropped its lease. Releasing again answers as the first release did. A revoked, suspended or expired license may still release its seats. Rate-limited per client and per license.",
    request_body = Release,
    responses(
        (status = 200, description = "the seat is free", body = ReleasedSeat),
        (status = 403, description = "`invalid-license-key` or `bad-proof`", body = ProblemSchema, content_type = "application/problem+json"),
        (status = 404, description = "no such seat on this license", body = ProblemSchema, content_type = "application/problem+json"),
        (status = 429, description = "over the client's or the license's rate after a second's wait (`rate-limited`, Retry-After)", body = ProblemSchema, content_type = "application/problem+json", headers(("Retry-After" = u64, description = "seconds to wait"))),
    ))]
pub(crate) async fn release_seat(
    axum::extract::State(s): axum::extract::State<S>,
    _: PublicClient,
    Body(b): Body<Release>,
) -> ApiResult {
    license_turn(&s, &b.license_key).await?;
    let ctx = ctx(&s);
    let out = s
        .store
        .lease_release(&b.license_key, &b.seat_id, b.at, &b.signature, &ctx)
        .await?
        .map_err(|r| refused(r, ctx.now))?;
    Ok(json_response(
        StatusCode::OK,
        &ReleasedSeat {
            seat_id: out.seat_id,
            released_at: out.released_at,
        },
    ))
}

/// An air-gapped device's request code.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct OfflineActivation {
    /// The device's request code (`KSREQ1.`; case, dashes and spaces do not
    /// matter), from an SDK's `OfflineRequest`.
    #[schema(example = "KSREQ1.0A1B2-C3D4E-...")]
    pub(crate) request_code: String,
}

/// The answer to an air-gapped device.
#[derive(Serialize, ToSchema)]
pub(crate) struct OfflineLease {
    /// The response code (`KSRES1.`) for the device to install: it carries
    /// the lease.
    response_code: String,
    /// The seat (32 hex digits).
    seat_id: String,
    /// The license (32 hex digits).
    license_id: String,
    /// The lease (`kslease1.`) the response code carries.
    lease: String,
    /// When it was signed (unix seconds (UTC)).
    issued_at: u64,
    /// When the device should renew it (unix seconds (UTC)): an air-gapped
    /// device asks again with a new request.
    renew_at: u64,
    /// When the lease ends (unix seconds (UTC)).
    expires_at: u64,
}

/// Answer an air-gapped device
#[utoipa::path(post, path = "/v1/activation-requests", tag = "activations", operation_id = "answerActivationRequest",
    description = "Takes one of a license's seats for an air-gapped device from its request code (docs/FORMAT.md, \"Activation codes\": the license, a proof that the device holds its key, the device binding and an installation key) and returns the response code carrying the lease, as `keyseal activate --request` does. The license must be the caller's organisation's. Needs `issue`.",
    request_body = OfflineActivation,
    responses(
        (status = 201, description = "the response code and the lease", body = OfflineLease),
        (status = 404, description = "no such license in this organisation, or the request does not prove its key", body = ProblemSchema, content_type = "application/problem+json"),
        (status = 409, description = "`license-revoked`, `license-suspended`, `license-expired`, `license-not-yet-valid`, `seat-limit` or `no-active-key`", body = ProblemSchema, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(crate) async fn answer_activation_request(
    axum::extract::State(s): axum::extract::State<S>,
    c: super::Caller,
    Body(b): Body<OfflineActivation>,
) -> ApiResult {
    let request = keyseal_core::activation_code::ActivationRequest::from_code(&b.request_code)
        .map_err(|e| {
            Problem::invalid(format!(
                "request_code: not an activation request code ({e})"
            ))
        })?;
    let ctx = c.ctx(&s);
    let out = with_active_key(&s, c.org(), |signer| {
        let (s, c, request, ctx) = (&s, &c, &request, &ctx);
        async move {
            Ok(s.store
                .lease_activate_offline(c.org(), &signer, request, ctx)
                .await?)
        }
    })
    .await?;
    let lease = out.map_err(|r| match r {
        SeatRefused::UnknownLicense => Problem::not_found("license"),
        r => refused(r, ctx.now),
    })?;
    let mut buf = [0u8; keyseal_core::lease::MAX_LEASE_LEN];
    let bytes = keyseal_core::lease::decode_text(&lease.lease, &mut buf)
        .map_err(|_| Problem::internal())?;
    Ok(json_response(
        StatusCode::CREATED,
        &OfflineLease {
            response_code: keyseal_core::activation_code::response_code(bytes),
            seat_id: lease.seat_id,
            license_id: lease.license_id,
            lease: lease.lease,
            issued_at: lease.issued_at,
            renew_at: lease.renew_at,
            expires_at: lease.expires_at,
        },
    ))
}
