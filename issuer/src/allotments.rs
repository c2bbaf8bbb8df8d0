//! Seat allotments to on-premises relays (docs/FORMAT.md, "Seat
//! allotment"; `keyseal relay`): the vendor signs, for one license, a
//! relay's public key, a number of seats and a short validity; the relay
//! then signs the leases for those seats on a LAN with no internet.
//!
//! **The seat invariant, with relays.** A relay's seats count toward its
//! license's `max_devices` like leases do, inside the same write
//! transaction: the leases in force plus, for every relay key, the largest
//! allotment of it still in force (until [`SEAT_MARGIN_SECS`] after its
//! end) never exceed the license's seats. An allotment stays valid until
//! its end once signed, so a smaller allotment, or a revocation, frees
//! seats only when the larger one ends (allotments are short: a week by
//! default). A revoked relay key gets no further allotment.
//!
//! **Renewal.** The vendor grants an allotment (`Store::allot_seats`: the
//! seats and the validity); the relay renews it online before it ends
//! (`Store::renew_allotment`), proving it holds the relay key and the
//! license key, and gets the seats and validity of the vendor's last grant
//! to it again. So the vendor shrinks a relay by granting a smaller allotment,
//! and stops it by revoking its key (or the license): each takes effect at
//! the relay's next renewal.
//!
//! What a relay does with its seats is the relay's to keep (apps see one
//! lease at a time): docs/FORMAT.md says what that trusts and how the
//! vendor bounds it.

use keyseal_core::allotment::{self, AllotmentTerms};
use keyseal_core::{KeyId, PublicKey};
use serde_json::json;

use crate::Context;
use crate::error::{Error, Result};
use crate::seats::{SEAT_MARGIN_SECS, SeatRefused, seats_in_force, state_refusal};
use crate::store::{Signed, Store, WriteTx, i, u};
use crate::vault::Signer;

/// An allotment's validity when the caller sets none: a week.
pub const DEFAULT_ALLOTMENT_SECS: u64 = 7 * 86_400;
/// Shortest allotment validity: an hour.
pub const MIN_ALLOTMENT_SECS: u64 = 3_600;
/// Longest allotment validity: 90 days (a vendor revokes or shrinks an
/// allotment only at its end).
pub const MAX_ALLOTMENT_SECS: u64 = 90 * 86_400;

const RENEWAL_DOMAIN: &[u8] = b"keyseal/allotment-renewal/v1\0";

/// What a relay signs, with its key, to renew its allotment of a license:
/// `"keyseal/allotment-renewal/v1\0" || license id (16 bytes) || relay
/// public key (32 bytes) || at (8 bytes, big-endian unix seconds)`.
#[must_use]
pub fn renewal_message(
    license_id: keyseal_core::LicenseId,
    relay_key: &PublicKey,
    at: u64,
) -> Vec<u8> {
    let mut m = Vec::with_capacity(RENEWAL_DOMAIN.len() + 56);
    m.extend_from_slice(RENEWAL_DOMAIN);
    m.extend_from_slice(&license_id.to_bytes());
    m.extend_from_slice(&relay_key.to_bytes());
    m.extend_from_slice(&at.to_be_bytes());
    m
}

/// A signed allotment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allotment {
    /// The allotment (`ksallot1.`), for the relay.
    pub allotment: String,
    /// The license (32 hex digits).
    pub license_id: String,
    /// The relay's key (`kspub1.`).
    pub relay_key: String,
    /// Its key id: the signer id of the relay's leases.
    pub relay_key_id: String,
    /// The seats allotted.
    pub seats: u64,
    /// When it was signed.
    pub issued_at: u64,
    /// When it ends.
    pub expires_at: u64,
}

/// Why an allotment was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllotRefused {
    /// No such license in this organisation.
    UnknownLicense,
    /// The license may not hold seats now (revoked, suspended, expired,
    /// not yet valid).
    License(SeatRefused),
    /// Not enough seats are free: `free` of `seats` (leases and other
    /// relays hold the rest).
    SeatLimit {
        /// The license's seats.
        seats: u64,
        /// How many this relay may have now.
        free: u64,
    },
    /// The vendor revoked this relay key.
    RelayRevoked,
    /// A renewal for a relay key that has no allotment of this license.
    UnknownRelay,
    /// A renewal whose signature does not verify with the relay key, or
    /// whose time is too far from the service's clock or not after the
    /// relay's last renewal (a replay).
    BadProof(&'static str),
}

/// What an allotment is for: the vendor's grant, or the relay's renewal.
enum Ask {
    Grant { seats: u64, secs: u64 },
    Renewal { at: u64 },
}

/// An allotment in the ledger, for listings.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AllotmentRow {
    /// Its id (32 hex digits).
    pub allotment_id: String,
    /// The license.
    pub license_id: String,
    /// The relay's key (`kspub1.`).
    pub relay_key: String,
    /// Its key id.
    pub relay_key_id: String,
    /// Seats.
    pub seats: i64,
    /// When it was signed.
    pub issued_at: i64,
    /// When it ends.
    pub expires_at: i64,
    /// When the vendor revoked the relay key, if it did.
    pub revoked_at: Option<i64>,
}

/// What relays hold of a license at some time.
pub(crate) struct Allotted {
    /// Seats: for each relay key, its largest allotment in force.
    pub(crate) seats: u64,
    /// When each of those allotments ends.
    pub(crate) ends: Vec<u64>,
}

/// The seats relays hold of license `lid` at `now`, leaving out the relay
/// `except` (its key id).
pub(crate) async fn allotted_in_force(
    tx: &mut WriteTx,
    org_id: &str,
    lid: &str,
    now: u64,
    except: Option<&str>,
) -> Result<Allotted> {
    let rows = tx
        .fetch(
            sqlx::query(
                "SELECT relay_key_id, MAX(seats), MAX(expires_at) FROM allotments \
                 WHERE org_id = $1 AND license_id = $2 AND expires_at >= $3 GROUP BY relay_key_id",
            )
            .bind(org_id.to_owned())
            .bind(lid.to_owned())
            .bind(i(now.saturating_sub(SEAT_MARGIN_SECS))),
            "reading allotments",
        )
        .await?;
    let mut out = Allotted {
        seats: 0,
        ends: Vec::new(),
    };
    for r in &rows {
        let (relay, seats, end): (String, i64, i64) = (
            sqlx::Row::try_get(r, 0).map_err(|e| Error::db("reading allotments", e))?,
            sqlx::Row::try_get(r, 1).map_err(|e| Error::db("reading allotments", e))?,
            sqlx::Row::try_get(r, 2).map_err(|e| Error::db("reading allotments", e))?,
        );
        if Some(relay.as_str()) != except {
            out.seats = out.seats.saturating_add(u(seats));
            out.ends.push(u(end));
        }
    }
    Ok(out)
}

/// The vendor's last grant to a relay of a license's seats, which its
/// renewals copy.
struct Last {
    seats: u64,
    /// Its validity, in seconds.
    secs: u64,
    /// When the relay signed its last renewal, if it renewed.
    proof_at: Option<u64>,
}

async fn last_allotment(
    tx: &mut WriteTx,
    org_id: &str,
    lid: &str,
    relay_id: &str,
) -> Result<Option<Last>> {
    let rows = tx
        .fetch(
            sqlx::query(
                "SELECT seats, expires_at - issued_at, \
                 (SELECT MAX(proof_at) FROM allotments p WHERE p.org_id = $1 AND p.license_id = $2 AND p.relay_key_id = $3) \
                 FROM allotments WHERE org_id = $1 AND license_id = $2 AND relay_key_id = $3 \
                 AND proof_at IS NULL ORDER BY COALESCE(seq, 0) DESC, issued_at DESC, allotment_id LIMIT 1",
            )
            .bind(org_id.to_owned())
            .bind(lid.to_owned())
            .bind(relay_id.to_owned()),
            "reading allotments",
        )
        .await?;
    let Some(r) = rows.first() else {
        return Ok(None);
    };
    let g = |e| Error::db("reading allotments", e);
    Ok(Some(Last {
        seats: u(sqlx::Row::try_get(r, 0).map_err(g)?),
        secs: u(sqlx::Row::try_get(r, 1).map_err(g)?),
        proof_at: sqlx::Row::try_get::<Option<i64>, _>(r, 2)
            .map_err(g)?
            .map(u),
    }))
}

fn parse_relay_key(text: &str) -> Result<PublicKey> {
    text.trim().parse().map_err(|_| {
        Error::invalid(
            "relay_key",
            "not an Ed25519 public key (kspub1. then base64url, as `keyseal relay init` prints)",
        )
    })
}

impl Store {
    /// Allots `seats` of the organisation's license `license_id` to the
    /// relay with public key `relay_key` for `secs` seconds from now
    /// (between [`MIN_ALLOTMENT_SECS`] and [`MAX_ALLOTMENT_SECS`]), signed
    /// by `signer`: a first allotment, a renewal, or a larger or smaller
    /// one. Refused when the seats are not free (leases and other relays
    /// count; this relay's earlier allotments do not, since this one
    /// supersedes them) or the relay key was revoked. Audited.
    #[allow(clippy::too_many_arguments)]
    pub async fn allot_seats(
        &self,
        org_id: &str,
        signer: &Signer,
        license_id: &str,
        relay_key: &str,
        seats: u64,
        secs: u64,
        ctx: &Context,
    ) -> Result<Signed<std::result::Result<Allotment, AllotRefused>>> {
        let relay = parse_relay_key(relay_key)?;
        if seats == 0 || seats > u64::from(u32::MAX) {
            return Err(Error::invalid("seats", "from 1 to 4294967295"));
        }
        if !(MIN_ALLOTMENT_SECS..=MAX_ALLOTMENT_SECS).contains(&secs) {
            return Err(Error::invalid(
                "secs",
                format!(
                    "between {MIN_ALLOTMENT_SECS} (an hour) and {MAX_ALLOTMENT_SECS} (90 days)"
                ),
            ));
        }
        let Some(f) = self.org_found(org_id, license_id, |_| true).await? else {
            return Ok(Signed::Done(Err(AllotRefused::UnknownLicense)));
        };
        self.allot(signer, f, relay, Ask::Grant { seats, secs }, ctx)
            .await
    }

    /// Renews the allotment of the relay with public key `relay_key` for
    /// the license `license_key` (the relay holds it: `keyseal relay serve
    /// --renew-from`), with the seats and validity of the vendor's last
    /// grant to it ([`Store::allot_seats`]), signed by `signer` (the active key of the organisation
    /// whose key signed the license, [`Store::lease_org`]). The request
    /// must be signed by the relay key over [`renewal_message`] at `at`,
    /// within [`crate::seats::PROOF_WINDOW_SECS`] of the service's clock
    /// and after the relay's last renewal. Refused as a grant is (the
    /// license's state, free seats, a revoked relay), and for a relay with
    /// no allotment of this license. Audited.
    pub async fn renew_allotment(
        &self,
        signer: &Signer,
        license_key: &str,
        relay_key: &str,
        at: u64,
        signature: &str,
        ctx: &Context,
    ) -> Result<Signed<std::result::Result<Allotment, AllotRefused>>> {
        let relay = parse_relay_key(relay_key)?;
        let sig = crate::seats::parse_signature(signature)?;
        let Some(f) = self.find_license(license_key).await? else {
            return Ok(Signed::Done(Err(AllotRefused::UnknownLicense)));
        };
        // Fresh and signed, as a seat's proof is (the replay check, against
        // the relay's last renewal, is made under the write lock).
        if let Err(r) = crate::seats::verify_proof(
            &relay,
            0,
            &renewal_message(f.id, &relay, at),
            &sig,
            at,
            ctx.now,
        ) {
            return Ok(Signed::Done(Err(match r {
                SeatRefused::BadProof(why) => AllotRefused::BadProof(why),
                other => AllotRefused::License(other),
            })));
        }
        // A relay key the vendor never allotted to is refused from the read
        // pool, before the ledger's write lock (decided again under it).
        let granted = self
            .fetch_all(
                sqlx::query(
                    "SELECT 1 FROM allotments WHERE org_id = $1 AND license_id = $2 AND relay_key_id = $3 \
                     AND proof_at IS NULL LIMIT 1",
                )
                .bind(f.org_id.clone())
                .bind(f.id.to_string())
                .bind(relay.key_id().to_string()),
                "reading allotments",
            )
            .await?;
        if granted.is_empty() {
            return Ok(Signed::Done(Err(AllotRefused::UnknownRelay)));
        }
        self.allot(signer, f, relay, Ask::Renewal { at }, ctx).await
    }

    /// Signs and records an allotment of `f`'s seats to `relay`.
    async fn allot(
        &self,
        signer: &Signer,
        f: crate::seats::Found,
        relay: PublicKey,
        ask: Ask,
        ctx: &Context,
    ) -> Result<Signed<std::result::Result<Allotment, AllotRefused>>> {
        let now = ctx.now;
        let org_id = f.org_id.as_str();
        if let Some(r) = state_refusal(&f, now) {
            return Ok(Signed::Done(Err(AllotRefused::License(r))));
        }
        let lid = f.id.to_string();
        let relay_id = relay.key_id().to_string();
        let mut tx = self.begin_write().await?;
        match crate::seats::state_in_tx(&mut tx, org_id, &lid).await? {
            None => {}
            Some(SeatRefused::UnknownLicense) => {
                return Ok(Signed::Done(Err(AllotRefused::UnknownLicense)));
            }
            Some(r) => return Ok(Signed::Done(Err(AllotRefused::License(r)))),
        }
        let revoked = tx
            .fetch(
                sqlx::query(
                    "SELECT 1 FROM allotments WHERE org_id = $1 AND license_id = $2 \
                     AND relay_key_id = $3 AND revoked_at IS NOT NULL",
                )
                .bind(org_id.to_owned())
                .bind(lid.clone())
                .bind(relay_id.clone()),
                "reading allotments",
            )
            .await?;
        if !revoked.is_empty() {
            return Ok(Signed::Done(Err(AllotRefused::RelayRevoked)));
        }
        let (seats, secs, proof_at) = match ask {
            Ask::Grant { seats, secs } => (seats, secs, None),
            Ask::Renewal { at } => match last_allotment(&mut tx, org_id, &lid, &relay_id).await? {
                None => return Ok(Signed::Done(Err(AllotRefused::UnknownRelay))),
                Some(last) if last.proof_at.is_some_and(|p| at <= p) => {
                    return Ok(Signed::Done(Err(AllotRefused::BadProof(
                        "the request's time is not after the relay's last renewal (a replay?)",
                    ))));
                }
                Some(last) => (last.seats, last.secs, Some(at)),
            },
        };
        let leases = seats_in_force(&mut tx, org_id, &lid, now).await?.len() as u64;
        let others = allotted_in_force(&mut tx, org_id, &lid, now, Some(&relay_id))
            .await?
            .seats;
        let free = f
            .lic
            .max_devices
            .saturating_sub(leases.saturating_add(others));
        if seats > free {
            return Ok(Signed::Done(Err(AllotRefused::SeatLimit {
                seats: f.lic.max_devices,
                free,
            })));
        }
        if !tx.signer_is_active(org_id, signer.key_id()).await? {
            return Ok(Signed::KeyRotated {
                key_id: signer.key_id(),
            });
        }
        let terms = AllotmentTerms {
            license_id: f.id,
            relay_key: relay.to_bytes(),
            seats: u32::try_from(seats).map_err(|_| Error::invalid("seats", "too many"))?,
            issued_at: now,
            expires_at: now.saturating_add(secs),
        };
        let bytes = allotment::issue(signer.key(), &terms)?;
        let mut id = [0u8; 16];
        getrandom::fill(&mut id)?;
        let allotment_id = keyseal_core::hex::encode(&id);
        tx.exec(
            sqlx::query(
                "INSERT INTO allotments (allotment_id, org_id, license_id, relay_key, relay_key_id, seats, issued_at, expires_at, proof_at, seq) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, \
                 (SELECT COALESCE(MAX(seq), 0) + 1 FROM allotments WHERE org_id = $2 AND license_id = $3 AND relay_key_id = $5))",
            )
            .bind(allotment_id.clone())
            .bind(org_id.to_owned())
            .bind(lid.clone())
            .bind(relay.to_string())
            .bind(relay_id.clone())
            .bind(i(seats))
            .bind(i(terms.issued_at))
            .bind(i(terms.expires_at))
            .bind(proof_at.map(i)),
            "recording the allotment",
        )
        .await?;
        tx.audit(
            ctx,
            if proof_at.is_some() { "allotment.renew" } else { "allotment.grant" },
            &json!({ "org_id": org_id, "license_id": lid, "allotment_id": allotment_id, "relay_key_id": relay_id, "seats": seats, "expires_at": terms.expires_at }),
        )
        .await?;
        tx.commit().await?;
        Ok(Signed::Done(Ok(Allotment {
            allotment: allotment::to_text(&bytes),
            license_id: lid,
            relay_key: relay.to_string(),
            relay_key_id: relay_id,
            seats,
            issued_at: terms.issued_at,
            expires_at: terms.expires_at,
        })))
    }

    /// Revokes the relay key `relay_key_id` for the organisation's license
    /// `license_id`: it gets no further allotment, and the organisation's
    /// next revocation list names its key id, so apps that load that list
    /// refuse its leases (its signed allotments stay valid until they end
    /// for apps without it). `None` when the relay has no allotment of that
    /// license; otherwise when it was revoked (the first time, for a
    /// repeated call). Audited.
    pub async fn revoke_relay(
        &self,
        org_id: &str,
        license_id: &str,
        relay_key_id: &str,
        ctx: &Context,
    ) -> Result<Option<u64>> {
        let relay: KeyId = relay_key_id
            .trim()
            .parse()
            .map_err(|_| Error::invalid("relay_key_id", "not a key id (16 hex digits)"))?;
        let relay = relay.to_string();
        let Some(license_id) = crate::store::license_id(license_id) else {
            return Ok(None);
        };
        let license_id = license_id.as_str();
        let mut tx = self.begin_write().await?;
        let rows = tx
            .fetch(
                sqlx::query(
                    "SELECT MIN(revoked_at), COUNT(*) FROM allotments WHERE org_id = $1 AND license_id = $2 AND relay_key_id = $3",
                )
                .bind(org_id.to_owned())
                .bind(license_id.to_owned())
                .bind(relay.clone()),
                "reading allotments",
            )
            .await?;
        let (first, count): (Option<i64>, i64) = match rows.first() {
            Some(r) => (
                sqlx::Row::try_get(r, 0).map_err(|e| Error::db("reading allotments", e))?,
                sqlx::Row::try_get(r, 1).map_err(|e| Error::db("reading allotments", e))?,
            ),
            None => (None, 0),
        };
        if count == 0 {
            return Ok(None);
        }
        if let Some(at) = first {
            return Ok(Some(u(at)));
        }
        tx.exec(
            sqlx::query(
                "UPDATE allotments SET revoked_at = $1 WHERE org_id = $2 AND license_id = $3 AND relay_key_id = $4",
            )
            .bind(i(ctx.now))
            .bind(org_id.to_owned())
            .bind(license_id.to_owned())
            .bind(relay.clone()),
            "revoking the relay",
        )
        .await?;
        // The next revocation list names the relay key (`read_revoked`).
        tx.bump_revision(org_id).await?;
        tx.audit(
            ctx,
            "allotment.revoke",
            &json!({ "org_id": org_id, "license_id": license_id, "relay_key_id": relay }),
        )
        .await?;
        tx.commit().await?;
        Ok(Some(ctx.now))
    }

    /// The organisation's allotments of license `license_id`, newest first.
    pub async fn org_allotments(
        &self,
        org_id: &str,
        license_id: &str,
    ) -> Result<Vec<AllotmentRow>> {
        let Some(license_id) = crate::store::license_id(license_id) else {
            return Ok(Vec::new());
        };
        let rows = self
            .fetch_all(
                sqlx::query(
                    "SELECT allotment_id, license_id, relay_key, relay_key_id, seats, issued_at, expires_at, revoked_at \
                     FROM allotments WHERE org_id = $1 AND license_id = $2 ORDER BY issued_at DESC, allotment_id",
                )
                .bind(org_id.to_owned())
                .bind(license_id.to_owned()),
                "reading allotments",
            )
            .await?;
        rows.iter()
            .map(|r| crate::store::read_row(r, "reading allotments"))
            .collect()
    }
}
