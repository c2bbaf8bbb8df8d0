//! Seats held by leases (docs/FORMAT.md, "Lease"; `keyseal serve`'s
//! end-user endpoints): an app presents its license key and this device's
//! fingerprint and gets a short-lived lease on one of the license's seats;
//! it checks in before the lease ends to get the next one, and releases the
//! seat when it is done. A seat whose lease ended without a check-in is
//! free again.
//!
//! **The seat invariant.** Every activation and check-in counts the seats
//! in force inside the ledger's write transaction (one writer at a time,
//! across replicas), and a seat counts until [`SEAT_MARGIN_SECS`] after its
//! lease ends. So the leases that hold at any moment, for apps whose clocks
//! are right and whose leeway is at most that margin, are never more than
//! the license's seats (`max_devices`), whatever the order or concurrency
//! of activations, check-ins and releases.
//!
//! **Proofs.** At activation the app sends a public key of a key pair it
//! made for this installation; check-ins and releases are signed with it
//! over a domain string, the seat id and the request time
//! ([`check_in_message`], [`release_message`]), so only that installation
//! can renew or free its seat, and a recorded request cannot be played
//! again (its time must be within [`PROOF_WINDOW_SECS`] of the service's
//! clock and after the seat's last proof). A release frees the seat at
//! once: the app states that it dropped its lease. An app modified to keep
//! the lease anyway keeps it until its end, which bounds what a release
//! can cost (short leases for floating seats).
//!
//! **Privacy.** A seat stores the device as the lease's device binding
//! hash (the fingerprint's components, salted with the product and again
//! with the license id), never a fingerprint or an address.

use keyseal_core::activation_code::ActivationRequest;
use keyseal_core::device::Fingerprint;
use keyseal_core::lease::{self, LeaseTerms, SeatId};
use keyseal_core::license::{self as core_license, MAX_LICENSE_LEN, UnverifiedLicense};
use keyseal_core::{LicenseId, PublicKey};
use serde_json::json;
use subtle::ConstantTimeEq;

use crate::Context;
use crate::error::{Error, Result};
use crate::service::OrgLicense;
use crate::store::{Signed, Store, WriteTx, i, u};
use crate::vault::Signer;

/// A lease's renew interval when the product sets none: a day.
pub const DEFAULT_LEASE_SECS: u64 = 86_400;
/// A lease's grace for failed check-ins when the product sets none: three days.
pub const DEFAULT_LEASE_GRACE_SECS: u64 = 3 * 86_400;
/// Shortest renew interval a product may set.
pub const MIN_LEASE_SECS: u64 = 60;
/// Longest renew interval plus grace a product may set: a year.
pub const MAX_LEASE_TOTAL_SECS: u64 = 366 * 86_400;
/// A seat counts this long after its lease ends (apps' leeway and clock
/// differences), before another device may take it.
pub const SEAT_MARGIN_SECS: u64 = 300;
/// How far a check-in's or release's time may be from the service's clock.
pub const PROOF_WINDOW_SECS: u64 = 300;

const CHECK_IN_DOMAIN: &[u8] = b"keyseal/lease-check-in/v1\0";
const RELEASE_DOMAIN: &[u8] = b"keyseal/lease-release/v1\0";

/// What an app signs to check in: `"keyseal/lease-check-in/v1\0" || seat id
/// (16 bytes) || at (8 bytes, big-endian unix seconds)`.
#[must_use]
pub fn check_in_message(seat: SeatId, at: u64) -> Vec<u8> {
    proof_message(CHECK_IN_DOMAIN, seat, at)
}

/// What an app signs to release its seat: `"keyseal/lease-release/v1\0" ||
/// seat id (16 bytes) || at (8 bytes, big-endian unix seconds)`.
#[must_use]
pub fn release_message(seat: SeatId, at: u64) -> Vec<u8> {
    proof_message(RELEASE_DOMAIN, seat, at)
}

fn proof_message(domain: &[u8], seat: SeatId, at: u64) -> Vec<u8> {
    let mut m = Vec::with_capacity(domain.len() + 24);
    m.extend_from_slice(domain);
    m.extend_from_slice(&seat.to_bytes());
    m.extend_from_slice(&at.to_be_bytes());
    m
}

/// A lease the service signed for a seat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatLease {
    /// The seat (32 hex digits).
    pub seat_id: String,
    /// The license (32 hex digits).
    pub license_id: String,
    /// The lease (`kslease1.`), for the app to keep with its license key.
    pub lease: String,
    /// When it was signed.
    pub issued_at: u64,
    /// When the app should check in.
    pub renew_at: u64,
    /// When the lease ends.
    pub expires_at: u64,
}

/// A released seat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Released {
    /// The seat.
    pub seat_id: String,
    /// When it was released (the first release, for a repeated one).
    pub released_at: u64,
}

/// Why a lease request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeatRefused {
    /// The license key is not one this service issued (or not whole).
    UnknownLicense,
    /// The license is revoked.
    Revoked,
    /// The license is suspended.
    Suspended,
    /// The license expired (its grace included).
    Expired {
        /// Its expiry.
        expired_at: u64,
    },
    /// The license is not valid yet.
    NotYetValid {
        /// Its start.
        not_before: u64,
    },
    /// Every seat is held by another device.
    SeatLimit {
        /// The license's seats.
        seats: u64,
        /// When the first of them frees if nobody checks in (unix seconds).
        free_at: u64,
    },
    /// No such seat on this license.
    UnknownSeat,
    /// The seat was released; activate again.
    SeatReleased,
    /// The seat's lease ended without a check-in and another device took
    /// the seat meanwhile; activate again when one frees.
    SeatLapsed {
        /// The license's seats.
        seats: u64,
    },
    /// The request's signature does not verify with the seat's key, or its
    /// time is too far from the service's clock or not after the seat's
    /// last request (a replay).
    BadProof(&'static str),
    /// The fingerprint is not the seat's device.
    WrongDevice,
}

/// The license a lease request named.
#[derive(Clone)]
pub(crate) struct Found {
    pub(crate) org_id: String,
    pub(crate) lic: OrgLicense,
    pub(crate) id: LicenseId,
    not_before: Option<u64>,
    /// Expiry, and expiry plus grace.
    ends: Option<(u64, u64)>,
}

/// Why the license `f` may not take or renew a seat at `now`, if it may not.
pub(crate) fn state_refusal(f: &Found, now: u64) -> Option<SeatRefused> {
    if f.lic.record.revoked.is_some() {
        return Some(SeatRefused::Revoked);
    }
    if f.lic.suspended_at.is_some() {
        return Some(SeatRefused::Suspended);
    }
    if let Some(not_before) = f.not_before
        && now < not_before
    {
        return Some(SeatRefused::NotYetValid { not_before });
    }
    if let Some((expired_at, end)) = f.ends
        && now > end
    {
        return Some(SeatRefused::Expired { expired_at });
    }
    None
}

/// The license's revocation or suspension as the write transaction `tx`
/// sees it. A lease request reads the license before it takes the ledger's
/// write lock; asked again under the lock, a revocation or suspension that
/// any replica committed meanwhile is seen, and the seat (or allotment) is
/// refused rather than granted for the length of a lease.
pub(crate) async fn state_in_tx(
    tx: &mut WriteTx,
    org_id: &str,
    lid: &str,
) -> Result<Option<SeatRefused>> {
    let rows = tx
        .fetch(
            sqlx::query(
                "SELECT o.suspended_at, (SELECT COUNT(*) FROM revocations r WHERE r.license_id = o.license_id) \
                 FROM org_licenses o WHERE o.org_id = $1 AND o.license_id = $2",
            )
            .bind(org_id.to_owned())
            .bind(lid.to_owned()),
            "reading the license's state",
        )
        .await?;
    let Some(r) = rows.first() else {
        return Ok(Some(SeatRefused::UnknownLicense));
    };
    let g = |e| Error::db("reading the license's state", e);
    let suspended: Option<i64> = sqlx::Row::try_get(r, 0).map_err(g)?;
    let revoked: i64 = sqlx::Row::try_get(r, 1).map_err(g)?;
    Ok(if revoked > 0 {
        Some(SeatRefused::Revoked)
    } else if suspended.is_some() {
        Some(SeatRefused::Suspended)
    } else {
        None
    })
}

/// The time a lease request carries, as a proof's: near the service's clock.
fn fresh(at: u64, now: u64) -> bool {
    at.abs_diff(now) <= PROOF_WINDOW_SECS
}

fn parse_fingerprint(text: &str) -> Result<Fingerprint> {
    text.trim().parse().map_err(|_| {
        Error::invalid(
            "fingerprint",
            "not a device fingerprint (ksfp1. then base64url, as the SDKs' fingerprint() gives)",
        )
    })
}

fn parse_seat(text: &str) -> Result<SeatId> {
    text.parse()
        .map_err(|_| Error::invalid("seat_id", "not a seat id (32 hex digits)"))
}

/// A proof's signature: 128 hex digits.
pub fn parse_signature(text: &str) -> Result<[u8; 64]> {
    let mut sig = [0u8; 64];
    keyseal_core::hex::decode(text, &mut sig)
        .map_err(|_| Error::invalid("signature", "not an Ed25519 signature (128 hex digits)"))?;
    Ok(sig)
}

fn seat_hex(seat: SeatId) -> String {
    seat.to_string()
}

/// What a lease request's key says, unverified, and the organisation whose
/// key signed it: checked against the ledger's copy of the key before use.
struct KeyFacts {
    /// The key as sent, whitespace removed.
    text: String,
    org_id: String,
    id: LicenseId,
    not_before: Option<u64>,
    ends: Option<(u64, u64)>,
}

impl KeyFacts {
    /// Whether `lic` is the ledger's record of this exact key.
    fn is(&self, lic: &OrgLicense) -> bool {
        bool::from(
            lic.record
                .license_key
                .as_bytes()
                .ct_eq(self.text.as_bytes()),
        )
    }

    /// The license found for these facts, if `lic` is the ledger's record
    /// of this exact key (compared in constant time, like a secret: then
    /// the claims read from the key are the ones this service signed).
    fn found(self, lic: OrgLicense) -> Option<Found> {
        self.is(&lic).then_some(Found {
            org_id: self.org_id,
            lic,
            id: self.id,
            not_before: self.not_before,
            ends: self.ends,
        })
    }
}

impl Store {
    /// The facts of a lease request's key, if it decodes and a key of this
    /// service signed it.
    async fn key_facts(&self, license_key: &str) -> Result<Option<KeyFacts>> {
        let text = core_license::without_whitespace(license_key);
        let mut buf = [0u8; MAX_LICENSE_LEN];
        let Ok(bytes) = core_license::decode_text(&text, &mut buf) else {
            return Ok(None);
        };
        let Ok(unverified) = UnverifiedLicense::from_bytes(bytes) else {
            return Ok(None);
        };
        let claims = *unverified.dangerous_unverified_claims();
        let Some(org_id) = self.key_org(unverified.key_id()).await? else {
            return Ok(None);
        };
        let (id, not_before) = (claims.license_id, claims.not_before);
        let ends = claims
            .expires_at
            .map(|e| (e, e.saturating_add(u64::from(claims.grace_secs))));
        Ok(Some(KeyFacts {
            text,
            org_id,
            id,
            not_before,
            ends,
        }))
    }

    /// Finds the license a lease request's key names: the organisation
    /// whose key signed it and the license, which must be this exact key.
    pub(crate) async fn find_license(&self, license_key: &str) -> Result<Option<Found>> {
        let Some(facts) = self.key_facts(license_key).await? else {
            return Ok(None);
        };
        let lic = self
            .org_license(&facts.org_id, &facts.id.to_string())
            .await?;
        Ok(lic.and_then(|lic| facts.found(lic)))
    }

    /// What check-ins need, in one read for all of them: for each, the
    /// license its key names (as [`Store::find_license`]), its product's
    /// lease policy, and the seat it names, if there is one; `None` where
    /// the license is not the ledger's (another key, another organisation).
    /// The service's handlers send their check-ins' lookups to one task that
    /// asks for every waiting one at once (`keyseal-server`), so a read's
    /// fixed cost is paid once for many heartbeats.
    pub async fn check_in_lookup(&self, asks: &[CheckInAsk]) -> Result<Vec<Option<CheckInFound>>> {
        static HEAD: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            let select = crate::store::ORG_LICENSE_SELECT
                .split_once(" FROM org_licenses o")
                .map_or("", |(select, _)| select);
            format!(
                "{select}, p.lease_secs, p.lease_grace_secs, s.seat_id AS s_seat_id, s.device AS s_device, \
                 s.instance_key AS s_instance_key, s.proof_at AS s_proof_at, \
                 s.expires_at AS s_expires_at, s.released_at AS s_released_at, v.column4 AS v_n \
                 FROM (VALUES "
            )
        });
        static TAIL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            let from = crate::store::ORG_LICENSE_SELECT
                .split_once(" FROM org_licenses o")
                .map_or("", |(_, rest)| rest);
            format!(
                ") AS v JOIN org_licenses o ON o.org_id = v.column1 AND o.license_id = v.column2{from} \
                 LEFT JOIN org_products p ON p.org_id = o.org_id AND p.product = l.product \
                 LEFT JOIN seats s ON s.org_id = o.org_id AND s.license_id = o.license_id AND s.seat_id = v.column3"
            )
        });
        let mut out: Vec<Option<CheckInFound>> = Vec::with_capacity(asks.len());
        for chunk in asks.chunks(LOOKUP_ROWS) {
            let base = out.len();
            out.extend(chunk.iter().map(|_| None));
            let rows = padded(chunk.len());
            let mut sql = String::with_capacity(HEAD.len() + TAIL.len() + rows * 20);
            sql.push_str(&HEAD);
            crate::store::values_rows(&mut sql, self.backend(), rows, 4);
            sql.push_str(&TAIL);
            let mut q = sqlx::query(&sql);
            for (n, ask) in chunk.iter().enumerate() {
                q = q
                    .bind(ask.facts.org_id.clone())
                    .bind(ask.facts.id.to_string())
                    .bind(seat_hex(ask.seat))
                    .bind(i64::try_from(n).unwrap_or(i64::MAX));
            }
            // Rows that match no license.
            for _ in chunk.len()..rows {
                q = q
                    .bind(String::new())
                    .bind(String::new())
                    .bind(String::new())
                    .bind(-1_i64);
            }
            let rows = self
                .fetch_all(q, "reading licenses and their seats")
                .await?;
            let g = |e| Error::db("reading licenses and their seats", e);
            for r in &rows {
                let n: i64 = sqlx::Row::try_get(r, "v_n").map_err(g)?;
                let Some(n) = usize::try_from(n).ok().filter(|&n| n < chunk.len()) else {
                    continue;
                };
                let ask = &chunk[n];
                let lic = crate::store::org_license_from_row(r)?;
                if !ask.facts.is(&lic) {
                    continue;
                }
                let policy = (
                    sqlx::Row::try_get::<Option<i64>, _>(r, "lease_secs")
                        .map_err(g)?
                        .map_or(DEFAULT_LEASE_SECS, u),
                    sqlx::Row::try_get::<Option<i64>, _>(r, "lease_grace_secs")
                        .map_err(g)?
                        .map_or(DEFAULT_LEASE_GRACE_SECS, u),
                );
                let seat =
                    match sqlx::Row::try_get::<Option<String>, _>(r, "s_seat_id").map_err(g)? {
                        None => None,
                        Some(seat_id) => Some(SeatRow {
                            seat_id,
                            device: sqlx::Row::try_get(r, "s_device").map_err(g)?,
                            instance_key: sqlx::Row::try_get(r, "s_instance_key").map_err(g)?,
                            proof_at: sqlx::Row::try_get(r, "s_proof_at").map_err(g)?,
                            expires_at: sqlx::Row::try_get(r, "s_expires_at").map_err(g)?,
                            released_at: sqlx::Row::try_get(r, "s_released_at").map_err(g)?,
                        }),
                    };
                out[base + n] = Some(CheckInFound { lic, policy, seat });
            }
        }
        Ok(out)
    }

    /// [`Store::find_license`], and whether the license may hold a seat at `now`.
    async fn leasable(
        &self,
        license_key: &str,
        now: u64,
    ) -> Result<std::result::Result<Found, SeatRefused>> {
        let Some(f) = self.find_license(license_key).await? else {
            return Ok(Err(SeatRefused::UnknownLicense));
        };
        Ok(match state_refusal(&f, now) {
            Some(r) => Err(r),
            None => Ok(f),
        })
    }

    /// The organisation whose key signed a lease request's license key, so
    /// that the service can pick that organisation's signing key (one
    /// indexed read; the request itself then checks the license whole);
    /// `Err(UnknownLicense)` when no key of this service signed it.
    /// The license's state is the request's own to check.
    pub async fn lease_org(
        &self,
        license_key: &str,
    ) -> Result<std::result::Result<String, SeatRefused>> {
        Ok(self
            .key_facts(license_key)
            .await?
            .map(|f| f.org_id)
            .ok_or(SeatRefused::UnknownLicense))
    }

    /// The organisation of the signing key `key_id`, if a key of this
    /// service: read once, then from memory (a key never changes hands;
    /// unknown ids are not remembered, so strangers' made-up keys cost a
    /// read each and no memory).
    pub(crate) async fn key_org(&self, key_id: keyseal_core::KeyId) -> Result<Option<String>> {
        if let Some(org) = self
            .key_orgs
            .read()
            .ok()
            .and_then(|m| m.get(&key_id.to_u64()).cloned())
        {
            return Ok(Some(org));
        }
        let org = self
            .fetch_all(
                sqlx::query("SELECT org_id FROM signing_keys WHERE key_id = $1")
                    .bind(key_id.to_string()),
                "reading signing keys",
            )
            .await?;
        let org = org
            .first()
            .map(|r| sqlx::Row::try_get::<Option<String>, _>(r, 0))
            .transpose()
            .map_err(|e| Error::db("reading signing keys", e))?
            .flatten();
        if let (Some(o), Ok(mut m)) = (&org, self.key_orgs.write()) {
            m.insert(key_id.to_u64(), o.clone());
        }
        Ok(org)
    }

    /// The product's lease policy: renew interval and grace, in seconds.
    async fn lease_policy(tx: &mut WriteTx, org_id: &str, product: &str) -> Result<(u64, u64)> {
        let rows = tx
            .fetch(
                sqlx::query(LEASE_POLICY)
                    .bind(org_id.to_owned())
                    .bind(product.to_owned()),
                "reading the lease policy",
            )
            .await?;
        policy_of(&rows)
    }

    /// Takes a seat of the license `license_key` for the device with
    /// `fingerprint`, for the installation with public key `instance_key`
    /// (`kspub1.`), and signs its first lease with `signer` (the
    /// organisation's active key, from [`Store::lease_org`]). A device that
    /// already holds a seat of the license gets that seat again, with the
    /// new installation key.
    pub async fn lease_activate(
        &self,
        signer: &Signer,
        license_key: &str,
        fingerprint: &str,
        instance_key: &str,
        ctx: &Context,
    ) -> Result<Signed<std::result::Result<SeatLease, SeatRefused>>> {
        let fp = parse_fingerprint(fingerprint)?;
        let instance: PublicKey = instance_key.trim().parse().map_err(|_| {
            Error::invalid(
                "public_key",
                "not an Ed25519 public key (kspub1. then base64url)",
            )
        })?;
        let l = match self.leasable(license_key, ctx.now).await? {
            Ok(l) => l,
            Err(r) => return Ok(Signed::Done(Err(r))),
        };
        let (hash, hint) = fp.exact_binding(&l.id);
        self.take_seat(signer, l, (hash, hint), instance, "app", ctx)
            .await
    }

    /// Takes a seat for an air-gapped device's request (docs/FORMAT.md,
    /// "Activation codes"), which the vendor answers with the lease in a
    /// response code: the request names the license and proves it holds
    /// its key, and carries the device binding and the installation key.
    /// The license must be the organisation's.
    pub async fn lease_activate_offline(
        &self,
        org_id: &str,
        signer: &Signer,
        request: &ActivationRequest,
        ctx: &Context,
    ) -> Result<Signed<std::result::Result<SeatLease, SeatRefused>>> {
        let Some(f) = self
            .org_found(org_id, &request.license_id.to_string(), |bytes| {
                request.proves(bytes)
            })
            .await?
        else {
            return Ok(Signed::Done(Err(SeatRefused::UnknownLicense)));
        };
        if let Some(r) = state_refusal(&f, ctx.now) {
            return Ok(Signed::Done(Err(r)));
        }
        self.take_seat(
            signer,
            f,
            (request.binding_hash, request.device_hint),
            request.public_key,
            "air-gapped",
            ctx,
        )
        .await
    }

    /// The organisation's license `license_id` as a lease request needs it,
    /// if it is the organisation's and `key_ok` accepts its binary key.
    pub(crate) async fn org_found(
        &self,
        org_id: &str,
        license_id: &str,
        key_ok: impl FnOnce(&[u8]) -> bool,
    ) -> Result<Option<Found>> {
        let Some(lic) = self.org_license(org_id, license_id).await? else {
            return Ok(None);
        };
        let mut buf = [0u8; MAX_LICENSE_LEN];
        let bytes = core_license::decode_text(&lic.record.license_key, &mut buf)?;
        if !key_ok(bytes) {
            return Ok(None);
        }
        let claims = *UnverifiedLicense::from_bytes(bytes)?.dangerous_unverified_claims();
        Ok(Some(Found {
            org_id: org_id.to_owned(),
            lic,
            id: claims.license_id,
            not_before: claims.not_before,
            ends: claims
                .expires_at
                .map(|e| (e, e.saturating_add(u64::from(claims.grace_secs)))),
        }))
    }

    /// Takes (or takes again) a seat of `l` for the device with this
    /// binding, and signs its first lease.
    async fn take_seat(
        &self,
        signer: &Signer,
        l: Found,
        binding: ([u8; 32], [u8; 2]),
        instance: PublicKey,
        how: &str,
        ctx: &Context,
    ) -> Result<Signed<std::result::Result<SeatLease, SeatRefused>>> {
        let now = ctx.now;
        let device = keyseal_core::hex::encode(&binding.0);
        let lid = l.id.to_string();
        let mut tx = self.begin_write().await?;
        if let Some(r) = state_in_tx(&mut tx, &l.org_id, &lid).await? {
            return Ok(Signed::Done(Err(r)));
        }
        let held = seats_in_force(&mut tx, &l.org_id, &lid, now).await?;
        let relays =
            crate::allotments::allotted_in_force(&mut tx, &l.org_id, &lid, now, None).await?;
        let mine = held
            .iter()
            .find(|s| s.device == device)
            .map(|s| s.seat_id.clone());
        if mine.is_none() && held.len() as u64 + relays.seats >= l.lic.max_devices {
            let free_at = held
                .iter()
                .map(|s| s.expires_at)
                .chain(relays.ends)
                .min()
                .unwrap_or(now)
                + SEAT_MARGIN_SECS;
            return Ok(Signed::Done(Err(SeatRefused::SeatLimit {
                seats: l.lic.max_devices,
                free_at,
            })));
        }
        if !tx.signer_is_active(&l.org_id, signer.key_id()).await? {
            return Ok(Signed::KeyRotated {
                key_id: signer.key_id(),
            });
        }
        let seat = match &mine {
            Some(s) => parse_seat(s)?,
            None => {
                let mut b = [0u8; 16];
                getrandom::fill(&mut b)?;
                SeatId::from_bytes(b)
            }
        };
        let (secs, grace) = Self::lease_policy(&mut tx, &l.org_id, &l.lic.record.product).await?;
        let out = sign(signer, l.id, seat, binding, now, secs, grace)?;
        if mine.is_some() {
            tx.exec(
                sqlx::query(
                    "UPDATE seats SET instance_key = $1, proof_at = $2, renew_at = $3, expires_at = $4 \
                     WHERE org_id = $5 AND seat_id = $6",
                )
                .bind(instance.to_string())
                // No signed request of the new installation key yet (the
                // old key's do not verify with it).
                .bind(0_i64)
                .bind(i(out.renew_at))
                .bind(i(out.expires_at))
                .bind(l.org_id.clone())
                .bind(out.seat_id.clone()),
                "renewing the seat",
            )
            .await?;
        } else {
            tx.exec(
                sqlx::query(
                    "INSERT INTO seats (seat_id, org_id, license_id, device, instance_key, created_at, proof_at, renew_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(out.seat_id.clone())
                .bind(l.org_id.clone())
                .bind(lid.clone())
                .bind(device)
                .bind(instance.to_string())
                .bind(i(now))
                .bind(0_i64)
                .bind(i(out.renew_at))
                .bind(i(out.expires_at)),
                "taking a seat",
            )
            .await?;
        }
        tx.audit(
            ctx,
            "seat.activate",
            &json!({ "org_id": l.org_id, "license_id": lid, "seat_id": out.seat_id, "again": mine.is_some(), "by": how }),
        )
        .await?;
        tx.commit().await?;
        Ok(Signed::Done(Ok(out)))
    }

    /// Renews the lease of seat `seat_id` of the license `license_key` for
    /// the device with `fingerprint`: the request must be signed by the
    /// seat's installation key over [`check_in_message`] at `at`. A seat
    /// whose lease lapsed is renewed if a seat is free, and refused as
    /// [`SeatRefused::SeatLapsed`] if not. Check-ins are not audited (they
    /// are the heartbeat); activations and releases are.
    #[allow(clippy::too_many_arguments)]
    pub async fn lease_check_in(
        &self,
        signer: &Signer,
        license_key: &str,
        fingerprint: &str,
        seat_id: &str,
        at: u64,
        signature: &str,
        ctx: &Context,
    ) -> Result<Signed<std::result::Result<SeatLease, SeatRefused>>> {
        let job = match self
            .check_in_prepare(
                signer,
                license_key,
                fingerprint,
                seat_id,
                at,
                signature,
                ctx.now,
            )
            .await?
        {
            Ok(job) => job,
            Err(r) => return Ok(Signed::Done(Err(r))),
        };
        let mut out = self
            .check_in_group(vec![(signer.clone(), job)], ctx.now)
            .await?;
        out.pop()
            .ok_or_else(|| Error::db("renewing the seat", sqlx::Error::RowNotFound))
    }

    /// The part of a check-in that needs no write, done by the service's
    /// request handlers in parallel: the request parsed
    /// ([`Store::check_in_parse`]), the license and seat read
    /// ([`Store::check_in_lookup`]), and the proof checked and the next
    /// lease signed ([`check_in_finish`]). The one task that commits
    /// check-ins in groups ([`Store::check_in_group`]) then only renews the
    /// seat if it is still as read (same installation key, an older proof,
    /// not released, the license neither revoked nor suspended), or decides
    /// from the seat as it is.
    #[allow(clippy::too_many_arguments)]
    pub async fn check_in_prepare(
        &self,
        signer: &Signer,
        license_key: &str,
        fingerprint: &str,
        seat_id: &str,
        at: u64,
        signature: &str,
        now: u64,
    ) -> Result<std::result::Result<CheckInJob, SeatRefused>> {
        let ask = match self
            .check_in_parse(license_key, fingerprint, seat_id, at, signature)
            .await?
        {
            Ok(ask) => ask,
            Err(r) => return Ok(Err(r)),
        };
        let found = self
            .check_in_lookup(std::slice::from_ref(&ask))
            .await?
            .pop()
            .flatten();
        check_in_finish(signer, ask, found, now)
    }

    /// A check-in's request parsed, and its key's organisation found (from
    /// memory, after the first time): no read of the license or the seat.
    pub async fn check_in_parse(
        &self,
        license_key: &str,
        fingerprint: &str,
        seat_id: &str,
        at: u64,
        signature: &str,
    ) -> Result<std::result::Result<CheckInAsk, SeatRefused>> {
        let fp = parse_fingerprint(fingerprint)?;
        let seat = parse_seat(seat_id)?;
        let sig = parse_signature(signature)?;
        let Some(facts) = self.key_facts(license_key).await? else {
            return Ok(Err(SeatRefused::UnknownLicense));
        };
        Ok(Ok(CheckInAsk {
            facts,
            fp,
            seat,
            at,
            sig,
        }))
    }

    /// Commits prepared check-ins, each signed by its organisation's
    /// `Signer`, in one write transaction (one fsync for the group), in
    /// order: a check-in's verdict sees those before it. A database error
    /// fails the whole group (nothing of it is written).
    pub async fn check_in_group(
        &self,
        jobs: Vec<(Signer, CheckInJob)>,
        now: u64,
    ) -> Result<Vec<Signed<std::result::Result<SeatLease, SeatRefused>>>> {
        use std::collections::{HashMap, HashSet};
        let mut tx = self.begin_write().await?;
        let mut active: HashMap<String, bool> = HashMap::new();
        let mut key_ok = Vec::with_capacity(jobs.len());
        for (signer, job) in &jobs {
            let org = &job.l.org_id;
            let ok = match active.get(org) {
                Some(ok) => *ok,
                None => {
                    let ok = tx.signer_is_active(org, signer.key_id()).await?;
                    active.insert(org.clone(), ok);
                    ok
                }
            };
            key_ok.push(ok);
        }
        // Every seat's first check-in of the group, renewed in one
        // statement if its seat is as the handler read it and in force;
        // the rest one by one, in order, each seeing those before it.
        let mut seen = HashSet::new();
        let first: Vec<usize> = (0..jobs.len())
            .filter(|&n| key_ok[n] && seen.insert((&jobs[n].1.l.org_id, jobs[n].1.seat)))
            .collect();
        let renewed = renew_seats(&mut tx, self.backend(), &jobs, &first, now).await?;
        let mut out = Vec::with_capacity(jobs.len());
        for (n, (signer, job)) in jobs.iter().enumerate() {
            if key_ok[n] && renewed.contains(&n) {
                out.push(Signed::Done(Ok(job.lease.clone())));
            } else {
                // A failed statement leaves the transaction unusable on
                // PostgreSQL: the group fails whole, nothing of it written.
                out.push(apply_check_in(&mut tx, signer, key_ok[n], job, now).await?);
            }
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Releases seat `seat_id` of the license `license_key`: the request
    /// must be signed by the seat's installation key over
    /// [`release_message`] at `at`. The seat is free at once. Releasing a
    /// released seat again answers as the first release did.
    pub async fn lease_release(
        &self,
        license_key: &str,
        seat_id: &str,
        at: u64,
        signature: &str,
        ctx: &Context,
    ) -> Result<std::result::Result<Released, SeatRefused>> {
        let seat = parse_seat(seat_id)?;
        let sig = parse_signature(signature)?;
        let now = ctx.now;
        // A revoked, suspended or expired license may still free its seats.
        let Some(Found { org_id, id, .. }) = self.find_license(license_key).await? else {
            return Ok(Err(SeatRefused::UnknownLicense));
        };
        let lid = id.to_string();
        let mut tx = self.begin_write().await?;
        let row = match seat_row(&mut tx, &org_id, &lid, seat).await {
            Ok(Ok(r)) => r,
            Ok(Err(SeatRefused::SeatReleased)) => {
                let at = released_at(&mut tx, &org_id, seat).await?;
                return Ok(Ok(Released {
                    seat_id: seat_hex(seat),
                    released_at: at,
                }));
            }
            Ok(Err(refused)) => return Ok(Err(refused)),
            Err(e) => return Err(e),
        };
        if let Err(refused) = check_proof(&row, &release_message(seat, at), &sig, at, now) {
            return Ok(Err(refused));
        }
        tx.exec(
            sqlx::query(
                "UPDATE seats SET released_at = $1, proof_at = $2 WHERE org_id = $3 AND seat_id = $4 AND released_at IS NULL",
            )
            .bind(i(now))
            .bind(i(at))
            .bind(org_id.clone())
            .bind(seat_hex(seat)),
            "releasing the seat",
        )
        .await?;
        tx.audit(
            ctx,
            "seat.release",
            &json!({ "org_id": org_id, "license_id": lid, "seat_id": seat_hex(seat) }),
        )
        .await?;
        tx.commit().await?;
        Ok(Ok(Released {
            seat_id: seat_hex(seat),
            released_at: now,
        }))
    }

    /// The seats of a license whose leases are in force at `now` (margin
    /// included), for the vendor's view.
    pub async fn org_seats_in_force(
        &self,
        org_id: &str,
        license_id: &str,
        now: u64,
    ) -> Result<u64> {
        let rows = self
            .fetch_all(
                sqlx::query(
                    "SELECT COUNT(*) FROM seats WHERE org_id = $1 AND license_id = $2 \
                     AND released_at IS NULL AND expires_at >= $3",
                )
                .bind(org_id.to_owned())
                .bind(license_id.to_owned())
                .bind(i(now.saturating_sub(SEAT_MARGIN_SECS))),
                "counting seats",
            )
            .await?;
        let n: i64 = rows
            .first()
            .map(|r| sqlx::Row::try_get(r, 0))
            .transpose()
            .map_err(|e| Error::db("counting seats", e))?
            .unwrap_or(0);
        Ok(u(n))
    }
}

/// A check-in's request, parsed ([`Store::check_in_parse`]), for its
/// lookup ([`Store::check_in_lookup`]).
pub struct CheckInAsk {
    facts: KeyFacts,
    fp: Fingerprint,
    seat: SeatId,
    at: u64,
    sig: [u8; 64],
}

impl std::fmt::Debug for CheckInAsk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckInAsk")
            .field("seat", &self.seat)
            .field("at", &self.at)
            .finish_non_exhaustive()
    }
}

/// What [`Store::check_in_lookup`] read for a check-in: its license, its
/// product's lease policy and its seat.
pub struct CheckInFound {
    lic: OrgLicense,
    policy: (u64, u64),
    seat: Option<SeatRow>,
}

/// Check-ins looked up by one statement, at most (4 parameters each).
const LOOKUP_ROWS: usize = 256;

/// The rest of a check-in's preparation, with what its lookup found: the
/// license allowed a seat at `now`, the seat's proof and device checked,
/// and the next lease signed by `signer`.
pub fn check_in_finish(
    signer: &Signer,
    ask: CheckInAsk,
    found: Option<CheckInFound>,
    now: u64,
) -> Result<std::result::Result<CheckInJob, SeatRefused>> {
    let CheckInAsk {
        facts,
        fp,
        seat,
        at,
        sig,
    } = ask;
    let Some(CheckInFound {
        lic,
        policy: (secs, grace),
        seat: row,
    }) = found
    else {
        return Ok(Err(SeatRefused::UnknownLicense));
    };
    let Some(l) = facts.found(lic) else {
        return Ok(Err(SeatRefused::UnknownLicense));
    };
    if let Some(r) = state_refusal(&l, now) {
        return Ok(Err(r));
    }
    let row = match row {
        None => return Ok(Err(SeatRefused::UnknownSeat)),
        Some(r) if r.released_at.is_some() => return Ok(Err(SeatRefused::SeatReleased)),
        Some(r) => r,
    };
    if let Err(r) = check_proof(&row, &check_in_message(seat, at), &sig, at, now) {
        return Ok(Err(r));
    }
    let binding = fp.exact_binding(&l.id);
    if row.device != keyseal_core::hex::encode(&binding.0) {
        return Ok(Err(SeatRefused::WrongDevice));
    }
    let lease = sign(signer, l.id, seat, binding, now, secs, grace)?;
    Ok(Ok(CheckInJob {
        l,
        seat,
        at,
        instance_key: row.instance_key,
        lease,
    }))
}

/// What a check-in answers: a lease, a refusal, or (for the service to
/// sign again) a key rotated meanwhile.
pub type CheckedIn = Signed<std::result::Result<SeatLease, SeatRefused>>;

/// A check-in ready to commit ([`Store::check_in_prepare`]).
#[derive(Clone)]
pub struct CheckInJob {
    l: Found,
    seat: SeatId,
    at: u64,
    /// The installation key the proof verified with.
    instance_key: String,
    /// The next lease, signed.
    lease: SeatLease,
}

impl std::fmt::Debug for CheckInJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckInJob")
            .field("seat", &self.seat)
            .field("at", &self.at)
            .finish_non_exhaustive()
    }
}

/// Renews, in one statement (chunks of [`RENEW_ROWS`]), the seats of the
/// jobs `which` (at most one a seat) that are as their handlers read them
/// (same installation key, an older proof, not released) and in force;
/// answers which of them it renewed. A seat of a license revoked or
/// suspended since its handler read it is not renewed here
/// ([`apply_check_in`] then refuses it).
async fn renew_seats(
    tx: &mut WriteTx,
    backend: crate::store::Backend,
    jobs: &[(Signer, CheckInJob)],
    which: &[usize],
    now: u64,
) -> Result<std::collections::HashSet<usize>> {
    let floor = i(now.saturating_sub(SEAT_MARGIN_SECS));
    let mut renewed = std::collections::HashSet::new();
    for chunk in which.chunks(RENEW_ROWS) {
        let rows = padded(chunk.len());
        let mut sql = String::with_capacity(400 + rows * 40);
        sql.push_str(
            "UPDATE seats SET proof_at = v.column4, renew_at = v.column5, expires_at = v.column6 FROM (VALUES ",
        );
        crate::store::values_rows(&mut sql, backend, rows, 7);
        sql.push_str(
            ") AS v WHERE seats.org_id = v.column1 AND seats.seat_id = v.column2 \
             AND seats.instance_key = v.column3 AND seats.proof_at < v.column4 \
             AND seats.released_at IS NULL AND seats.expires_at >= v.column7 \
             AND NOT EXISTS (SELECT 1 FROM revocations r WHERE r.license_id = seats.license_id) \
             AND NOT EXISTS (SELECT 1 FROM org_licenses o WHERE o.org_id = seats.org_id \
             AND o.license_id = seats.license_id AND o.suspended_at IS NOT NULL) \
             RETURNING seats.org_id, seats.seat_id",
        );
        let mut q = sqlx::query(&sql);
        for &n in chunk {
            let job = &jobs[n].1;
            q = q
                .bind(job.l.org_id.clone())
                .bind(job.lease.seat_id.clone())
                .bind(job.instance_key.clone())
                .bind(i(job.at))
                .bind(i(job.lease.renew_at))
                .bind(i(job.lease.expires_at))
                .bind(floor);
        }
        // Rows that match no seat.
        for _ in chunk.len()..rows {
            q = q
                .bind(String::new())
                .bind(String::new())
                .bind(String::new())
                .bind(0_i64)
                .bind(0_i64)
                .bind(0_i64)
                .bind(0_i64);
        }
        let rows = tx.fetch(q, "renewing seats").await?;
        let mut done = std::collections::HashSet::new();
        for r in &rows {
            let org: String =
                sqlx::Row::try_get(r, 0).map_err(|e| Error::db("renewing seats", e))?;
            let seat: String =
                sqlx::Row::try_get(r, 1).map_err(|e| Error::db("renewing seats", e))?;
            done.insert((org, seat));
        }
        renewed.extend(chunk.iter().copied().filter(|&n| {
            let job = &jobs[n].1;
            done.contains(&(job.l.org_id.clone(), job.lease.seat_id.clone()))
        }));
    }
    Ok(renewed)
}

/// The rows of a batched statement for `n` requests: the next power of
/// two, the rest matching nothing. So a group of any size runs one of a
/// few statements (1, 2, 4 ... 256 rows), each prepared once and kept in
/// the connection's statement cache, rather than a new statement, parsed
/// and planned again, for every group size.
fn padded(n: usize) -> usize {
    n.next_power_of_two()
}

/// Seats renewed by one statement, at most (7 parameters each).
const RENEW_ROWS: usize = 256;

/// One check-in inside [`Store::check_in_group`]'s transaction: refused if
/// the license was revoked or suspended since the handler read it; else one
/// statement when the seat is as the handler read it and in force;
/// otherwise the seat is read again to say why not, or to renew a lapsed
/// seat while one is free.
async fn apply_check_in(
    tx: &mut WriteTx,
    signer: &Signer,
    key_ok: bool,
    job: &CheckInJob,
    now: u64,
) -> Result<Signed<std::result::Result<SeatLease, SeatRefused>>> {
    let CheckInJob {
        l,
        seat,
        at,
        instance_key,
        lease: out,
    } = job;
    let (seat, at) = (*seat, *at);
    if !key_ok {
        return Ok(Signed::KeyRotated {
            key_id: signer.key_id(),
        });
    }
    let lid = l.id.to_string();
    if let Some(r) = state_in_tx(tx, &l.org_id, &lid).await? {
        return Ok(Signed::Done(Err(r)));
    }
    // Renewed if still as the handler read it, and in force.
    let renewed = tx
        .exec(
            sqlx::query(
                "UPDATE seats SET proof_at = $1, renew_at = $2, expires_at = $3 WHERE org_id = $4 AND seat_id = $5 \
                 AND instance_key = $6 AND proof_at < $1 AND released_at IS NULL AND expires_at >= $7",
            )
            .bind(i(at))
            .bind(i(out.renew_at))
            .bind(i(out.expires_at))
            .bind(l.org_id.clone())
            .bind(out.seat_id.clone())
            .bind(instance_key.clone())
            .bind(i(now.saturating_sub(SEAT_MARGIN_SECS))),
            "renewing the seat",
        )
        .await?;
    if renewed == 1 {
        return Ok(Signed::Done(Ok(out.clone())));
    }
    // Not as read, or lapsed: decide from the seat as it is now.
    let row = match seat_row(tx, &l.org_id, &lid, seat).await? {
        Ok(r) => r,
        Err(refused) => return Ok(Signed::Done(Err(refused))),
    };
    if row.instance_key != *instance_key {
        return Ok(Signed::Done(Err(SeatRefused::BadProof(
            "the seat was activated again with another installation key",
        ))));
    }
    if at <= u(row.proof_at) {
        return Ok(Signed::Done(Err(SeatRefused::BadProof(
            "the request's time is not after the seat's last request (a replay?)",
        ))));
    }
    // The lease ended (plus the margin) without a check-in: renewed only
    // while a seat is free.
    let held = seats_in_force(tx, &l.org_id, &lid, now).await?;
    let relays = crate::allotments::allotted_in_force(tx, &l.org_id, &lid, now, None).await?;
    if held.len() as u64 + relays.seats >= l.lic.max_devices {
        return Ok(Signed::Done(Err(SeatRefused::SeatLapsed {
            seats: l.lic.max_devices,
        })));
    }
    tx.exec(
        sqlx::query(
            "UPDATE seats SET proof_at = $1, renew_at = $2, expires_at = $3 WHERE org_id = $4 AND seat_id = $5",
        )
        .bind(i(at))
        .bind(i(out.renew_at))
        .bind(i(out.expires_at))
        .bind(l.org_id.clone())
        .bind(out.seat_id.clone()),
        "renewing the seat",
    )
    .await?;
    Ok(Signed::Done(Ok(out.clone())))
}

const LEASE_POLICY: &str =
    "SELECT lease_secs, lease_grace_secs FROM org_products WHERE org_id = $1 AND product = $2";

/// A lease policy's row: the product's renew interval and grace, or the
/// defaults.
fn policy_of(rows: &[sqlx::any::AnyRow]) -> Result<(u64, u64)> {
    let (secs, grace) = match rows.first() {
        Some(r) => (
            sqlx::Row::try_get::<Option<i64>, _>(r, 0)
                .map_err(|e| Error::db("reading the lease policy", e))?,
            sqlx::Row::try_get::<Option<i64>, _>(r, 1)
                .map_err(|e| Error::db("reading the lease policy", e))?,
        ),
        None => (None, None),
    };
    Ok((
        secs.map_or(DEFAULT_LEASE_SECS, u),
        grace.map_or(DEFAULT_LEASE_GRACE_SECS, u),
    ))
}

/// A seat's row, as lease requests need it.
#[derive(sqlx::FromRow)]
struct SeatRow {
    seat_id: String,
    device: String,
    instance_key: String,
    proof_at: i64,
    expires_at: i64,
    released_at: Option<i64>,
}

/// A seat in force.
pub(crate) struct Held {
    seat_id: String,
    device: String,
    pub(crate) expires_at: u64,
}

pub(crate) async fn seats_in_force(
    tx: &mut WriteTx,
    org_id: &str,
    lid: &str,
    now: u64,
) -> Result<Vec<Held>> {
    let rows = tx
        .fetch(
            sqlx::query(
                "SELECT seat_id, device, instance_key, proof_at, expires_at, released_at FROM seats \
                 WHERE org_id = $1 AND license_id = $2 AND released_at IS NULL AND expires_at >= $3",
            )
            .bind(org_id.to_owned())
            .bind(lid.to_owned())
            .bind(i(now.saturating_sub(SEAT_MARGIN_SECS))),
            "reading seats",
        )
        .await?;
    rows.iter()
        .map(|r| {
            let s: SeatRow = crate::store::read_row(r, "reading seats")?;
            Ok(Held {
                seat_id: s.seat_id,
                device: s.device,
                expires_at: u(s.expires_at),
            })
        })
        .collect()
}

const SEAT_ROW: &str = "SELECT seat_id, device, instance_key, proof_at, expires_at, released_at FROM seats \
     WHERE org_id = $1 AND license_id = $2 AND seat_id = $3";

async fn seat_row(
    tx: &mut WriteTx,
    org_id: &str,
    lid: &str,
    seat: SeatId,
) -> Result<std::result::Result<SeatRow, SeatRefused>> {
    let rows = tx
        .fetch(
            sqlx::query(SEAT_ROW)
                .bind(org_id.to_owned())
                .bind(lid.to_owned())
                .bind(seat_hex(seat)),
            "reading the seat",
        )
        .await?;
    seat_of(&rows)
}

fn seat_of(rows: &[sqlx::any::AnyRow]) -> Result<std::result::Result<SeatRow, SeatRefused>> {
    let Some(r) = rows.first() else {
        return Ok(Err(SeatRefused::UnknownSeat));
    };
    let row: SeatRow = crate::store::read_row(r, "reading the seat")?;
    if row.released_at.is_some() {
        return Ok(Err(SeatRefused::SeatReleased));
    }
    Ok(Ok(row))
}

async fn released_at(tx: &mut WriteTx, org_id: &str, seat: SeatId) -> Result<u64> {
    let rows = tx
        .fetch(
            sqlx::query("SELECT released_at FROM seats WHERE org_id = $1 AND seat_id = $2")
                .bind(org_id.to_owned())
                .bind(seat_hex(seat)),
            "reading the seat",
        )
        .await?;
    let at: Option<i64> = rows
        .first()
        .map(|r| sqlx::Row::try_get(r, 0))
        .transpose()
        .map_err(|e| Error::db("reading the seat", e))?
        .flatten();
    Ok(at.map_or(0, u))
}

/// The seat's installation key signed `message`, at a fresh time after its
/// last proof.
fn check_proof(
    row: &SeatRow,
    message: &[u8],
    sig: &[u8; 64],
    at: u64,
    now: u64,
) -> std::result::Result<(), SeatRefused> {
    let key: PublicKey = row
        .instance_key
        .parse()
        .map_err(|_| SeatRefused::BadProof("the seat's key is not readable"))?;
    verify_proof(&key, u(row.proof_at), message, sig, at, now)
}

/// Checks a check-in's or release's proof: `sig` by the seat's
/// installation key over `message` ([`check_in_message`] or
/// [`release_message`] at `at`), `at` within [`PROOF_WINDOW_SECS`] of `now`
/// and after the seat's last proof `proof_at` (a replay is not).
pub fn verify_proof(
    key: &PublicKey,
    proof_at: u64,
    message: &[u8],
    sig: &[u8; 64],
    at: u64,
    now: u64,
) -> std::result::Result<(), SeatRefused> {
    if !fresh(at, now) {
        return Err(SeatRefused::BadProof(
            "the request's time is more than 300 s from the service's clock",
        ));
    }
    if at <= proof_at {
        return Err(SeatRefused::BadProof(
            "the request's time is not after the seat's last request (a replay?)",
        ));
    }
    if key.verify_strict(message, sig).is_err() {
        return Err(SeatRefused::BadProof(
            "the signature does not verify with the seat's key",
        ));
    }
    Ok(())
}

/// Signs a lease for `seat` at `now` under the policy.
fn sign(
    signer: &Signer,
    id: LicenseId,
    seat: SeatId,
    (hash, hint): ([u8; 32], [u8; 2]),
    now: u64,
    secs: u64,
    grace: u64,
) -> Result<SeatLease> {
    let terms = LeaseTerms {
        license_id: id,
        seat_id: seat,
        device_hint: hint,
        issued_at: now,
        renew_at: now.saturating_add(secs),
        expires_at: now.saturating_add(secs).saturating_add(grace),
    };
    let bytes = lease::issue_bound(signer.key(), &terms, &hash)?;
    Ok(SeatLease {
        seat_id: seat_hex(seat),
        license_id: id.to_string(),
        lease: lease::to_text(&bytes),
        issued_at: terms.issued_at,
        renew_at: terms.renew_at,
        expires_at: terms.expires_at,
    })
}
