//! Revocations (`revocations`) and the signed lists published from them
//! (`revocation_lists`).

use base64ct::{Base64, Encoding};
use keyseal_core::license;
use keyseal_core::revocation::RevocationListBuilder;
use serde_json::json;

use super::*;
use crate::error::{KeyError, LedgerError, RequestError};
use crate::ops::{KEPT_LISTS, Publish, REVOKED_LISTED_AFTER_EXPIRY};
use crate::service::OrgLicense;
use crate::vault::Signer;

impl Store {
    /// The default organisation's revoked license ids and revoked key ids.
    pub async fn revoked(&self) -> Result<Revoked> {
        self.org_revoked(&self.default_owner().await?).await
    }

    /// One organisation's revocations: the revoked licenses signed by its
    /// keys (a license belongs to the keyring that validates it) and its
    /// revoked keys.
    pub async fn org_revoked(&self, org_id: &str) -> Result<Revoked> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(|e| Error::db("reading revocations", e))?;
        read_revoked(&mut conn, self.backend, org_id, None).await
    }

    /// The certificates of the organisation's keys that are not revoked,
    /// oldest key first.
    pub async fn org_certificates(&self, org_id: &str) -> Result<Vec<(KeyId, Vec<u8>)>> {
        use base64ct::Encoding as _;
        let rows = self
            .fetch_all(
                sqlx::query(
                    "SELECT c.key_id, c.certificate FROM key_certificates c \
                     JOIN signing_keys k ON k.key_id = c.key_id \
                     WHERE c.org_id = $1 AND k.status <> 'revoked' ORDER BY k.valid_from, c.key_id",
                )
                .bind(org_id.to_owned()),
                "reading key certificates",
            )
            .await?;
        rows.iter()
            .map(|r| {
                let g = |e| Error::db("reading key certificates", e);
                let id: String = r.try_get("key_id").map_err(g)?;
                let b64: String = r.try_get("certificate").map_err(g)?;
                Ok((
                    id.parse().map_err(|_| corrupt("bad key id"))?,
                    base64ct::Base64::decode_vec(&b64)
                        .map_err(|_| corrupt("bad key certificate"))?,
                ))
            })
            .collect()
    }

    /// The revocation list file of one of the organisation's lists: the
    /// certificates of its keys that are not revoked (so apps that pin only
    /// an offline root verify the list and learn every key the root
    /// certified, a new one before it signs anything), then the list,
    /// armored. At most [`keyseal_core::keyring::MAX_KEYS`] certificates:
    /// rotations never leave more keys unrevoked than a keyring holds.
    pub async fn org_list_file(&self, org_id: &str, list: &PublishedList) -> Result<String> {
        let mut text = String::new();
        for (_, cert) in self.org_certificates(org_id).await? {
            let _ = keyseal_core::armor::write_block(
                &mut text,
                keyseal_core::armor::KEY_CERTIFICATE,
                &cert,
            );
        }
        let _ = keyseal_core::armor::write_block(
            &mut text,
            keyseal_core::armor::REVOCATION_LIST,
            &list.bytes,
        );
        Ok(text)
    }

    /// What identifies the organisation's current list file: the newest
    /// list's sequence and next-update time, and the version of the key
    /// certificates (any certification changes it). Two small reads,
    /// whatever the number of revocations: what a cache of list files
    /// checks before serving one.
    pub async fn org_list_head(&self, org_id: &str) -> Result<Option<ListHead>> {
        let rows = self
            .fetch_all(
                sqlx::query(
                    "SELECT sequence, next_update FROM revocation_lists WHERE org_id = $1 \
                     ORDER BY sequence DESC LIMIT 1",
                )
                .bind(org_id.to_owned()),
                "reading revocation lists",
            )
            .await?;
        let Some(r) = rows.first() else {
            return Ok(None);
        };
        let g = |e| Error::db("reading revocation lists", e);
        let (sequence, next_update) = (
            u(r.try_get("sequence").map_err(g)?),
            u(r.try_get("next_update").map_err(g)?),
        );
        let certificates = self
            .fetch_all(
                sqlx::query("SELECT value FROM meta WHERE name = 'certificates'"),
                "reading key certificates",
            )
            .await?
            .first()
            .map(|r| r.try_get::<String, _>(0))
            .transpose()
            .map_err(|e| Error::db("reading key certificates", e))?
            .unwrap_or_default();
        Ok(Some(ListHead {
            sequence,
            next_update,
            certificates,
        }))
    }

    /// Every organisation's newest list: (organisation, issued at, next
    /// update), for the service's metrics.
    pub async fn newest_lists(&self) -> Result<Vec<(String, u64, u64)>> {
        let rows = self
            .fetch_all(
                sqlx::query(
                    "SELECT l.org_id, l.issued_at, l.next_update FROM revocation_lists l \
                     WHERE l.sequence = (SELECT MAX(m.sequence) FROM revocation_lists m WHERE m.org_id = l.org_id) \
                     ORDER BY l.org_id",
                ),
                "reading revocation lists",
            )
            .await?;
        rows.iter()
            .map(|r| {
                let g = |e| Error::db("reading revocation lists", e);
                Ok((
                    r.try_get("org_id").map_err(g)?,
                    u(r.try_get("issued_at").map_err(g)?),
                    u(r.try_get("next_update").map_err(g)?),
                ))
            })
            .collect()
    }

    /// One organisation's newest published revocation list, if any: one
    /// row read, whatever the number of lists before it.
    pub async fn org_latest_list(&self, org_id: &str) -> Result<Option<PublishedList>> {
        let rows = self
            .fetch_all(
                sqlx::query(&format!("{LISTS_NEWEST_FIRST} LIMIT 1")).bind(org_id.to_owned()),
                "reading revocation lists",
            )
            .await?;
        rows.first().map(list_from_row).transpose()
    }

    /// The default organisation's published revocation lists, newest first.
    pub async fn published_lists(&self) -> Result<Vec<PublishedList>> {
        self.org_published_lists(&self.default_owner().await?).await
    }

    /// One organisation's published revocation lists, newest first.
    pub async fn org_published_lists(&self, org_id: &str) -> Result<Vec<PublishedList>> {
        let rows = self
            .fetch_all(
                sqlx::query(LISTS_NEWEST_FIRST).bind(org_id.to_owned()),
                "reading revocation lists",
            )
            .await?;
        rows.iter().map(list_from_row).collect()
    }

    /// Revokes one of the organisation's licenses (`None` if it has no such license).
    pub async fn org_revoke(
        &self,
        org_id: &str,
        id: &str,
        reason: &str,
        ctx: &Context,
    ) -> Result<Option<OrgLicense>> {
        let Some(lic) = self.org_license(org_id, id).await? else {
            return Ok(None);
        };
        self.revoke_license(org_id, &lic.record.license_id.to_string(), reason, ctx)
            .await?;
        self.org_license(org_id, id).await
    }

    /// Revokes one of the organisation's licenses (another's is unknown
    /// here). `reason` is a short slug (`refund`, `chargeback`).
    pub async fn revoke_license(
        &self,
        org_id: &str,
        id: &str,
        reason: &str,
        ctx: &Context,
    ) -> Result<crate::store::LicenseRecord> {
        check_reason(reason)?;
        let rec = self.license(org_id, id).await?;
        let mut tx = self.begin_write().await?;
        // Read again under the writer's lock: of two revocations at once,
        // one wins and the other is told (not a unique-key failure).
        tx.require_not_revoked(rec.license_id).await?;
        // The revocation counts for the organisation of the key that signed
        // the license (whose keyring validates it), as lists always have.
        let n = tx
            .exec(
                sqlx::query(
                    "INSERT INTO revocations (license_id, revoked_at, reason, listed_until, org_id) \
                     SELECT $1, $2, $3, $4, k.org_id FROM signing_keys k WHERE k.key_id = $5",
                )
                .bind(rec.license_id.to_string())
                .bind(i(ctx.now))
                .bind(reason.to_owned())
                .bind(listed_until(&rec.license_key).map(i))
                .bind(rec.key_id.to_string()),
                "recording the revocation",
            )
            .await?;
        if n != 1 {
            return Err(Error::Ledger(LedgerError::Corrupt {
                detail: format!("license {} names no known signing key", rec.license_id),
            }));
        }
        tx.bump_revision(org_id).await?;
        tx.audit(
            ctx,
            "license.revoke",
            &json!({ "org_id": org_id, "license_id": rec.license_id.to_string(), "reason": reason }),
        )
        .await?;
        tx.commit().await?;
        self.license(org_id, id).await
    }

    /// Signs and records the next revocation list of the organisation that
    /// owns `signer` (which must be its active key; sequence = that
    /// organisation's last + 1) with its revoked licenses and keys, stale
    /// after `next_update`.
    pub async fn publish_revocations(
        &self,
        signer: &Signer,
        next_update: u64,
        ctx: &Context,
    ) -> Result<PublishedList> {
        // `Always` never skips: `None` cannot come back.
        self.publish_list(signer, next_update, Publish::Always, ctx)
            .await?
            .or_stale()?
            .ok_or_else(|| {
                Error::Ledger(LedgerError::Corrupt {
                    detail: "a list to publish always was skipped".into(),
                })
            })
    }

    /// As [`Store::publish_revocations`], `when` the organisation's list
    /// needs it ([`Publish`]); `None` if it did not. Decided under the
    /// writer's lock, so requests and replicas publishing at once (after a
    /// burst of revocations, or refreshing a list) sign one list, not one
    /// each: every revocation committed before a list was built is in it.
    /// [`Signed::KeyRotated`] if `signer` is no longer the organisation's
    /// active key.
    pub async fn publish_list(
        &self,
        signer: &Signer,
        next_update: u64,
        when: Publish,
        ctx: &Context,
    ) -> Result<Signed<Option<PublishedList>>> {
        let org_id = self
            .key_owner(signer.key_id())
            .await?
            .ok_or(Error::Key(KeyError::NoActiveKey))?;
        if next_update <= ctx.now {
            return Err(Error::invalid("next-update", "must be in the future"));
        }
        // Everything read under the writer's lock: read before it, a list
        // could miss a revocation committed meanwhile and still take the
        // higher sequence (lost revocations on PostgreSQL), or be signed by
        // a key retired meanwhile.
        let mut tx = self.begin_write().await?;
        if !tx.signer_is_active(&org_id, signer.key_id()).await? {
            return Ok(Signed::KeyRotated {
                key_id: signer.key_id(),
            });
        }
        // Dated no earlier than the signer's window starts (apps refuse a
        // list dated outside it): a replica whose clock lags the one that
        // rotated must not publish lists every app refuses.
        let starts = tx
            .fetch(
                sqlx::query("SELECT valid_from FROM signing_keys WHERE key_id = $1")
                    .bind(signer.key_id().to_string()),
                "reading signing keys",
            )
            .await?
            .first()
            .map(|r| sqlx::Row::try_get::<i64, _>(r, 0))
            .transpose()
            .map_err(|e| Error::db("reading signing keys", e))?
            .map_or(0, crate::store::u);
        let issued_at = ctx.now.max(starts);
        if next_update <= issued_at {
            return Err(Error::invalid(
                "next-update",
                "must be after the list's issue time",
            ));
        }
        let revision = tx.revision(&org_id).await?;
        if when != Publish::Always {
            let newest = tx
                .fetch(
                    sqlx::query(
                        "SELECT next_update, revision FROM revocation_lists WHERE org_id = $1 \
                         ORDER BY sequence DESC LIMIT 1",
                    )
                    .bind(org_id.clone()),
                    "reading revocation lists",
                )
                .await?;
            if let Some(r) = newest.first() {
                let g = |e| Error::db("reading revocation lists", e);
                let next: i64 = sqlx::Row::try_get(r, "next_update").map_err(g)?;
                let built: i64 = sqlx::Row::try_get(r, "revision").map_err(g)?;
                let skip = match when {
                    Publish::IfDueBy(due) => crate::store::u(next) > due,
                    Publish::IfChanged => crate::store::u(built) >= revision,
                    Publish::Always => false,
                };
                if skip {
                    return Ok(Signed::Done(None));
                }
            }
        }
        let revoked = tx.org_revoked(&org_id, Some(ctx.now)).await?;
        let rows = tx
            .fetch(
                sqlx::query("SELECT MAX(sequence) FROM revocation_lists WHERE org_id = $1")
                    .bind(org_id.clone()),
                "reading the last sequence number",
            )
            .await?;
        let last: Option<i64> = rows
            .first()
            .map(|r| sqlx::Row::try_get::<Option<i64>, _>(r, 0))
            .transpose()
            .map_err(|e| Error::db("reading the last sequence number", e))?
            .flatten();
        let sequence = last.map_or(1, |l| crate::store::u(l) + 1);
        let mut b = RevocationListBuilder::new(sequence, issued_at, next_update);
        for l in &revoked.licenses {
            b.revoke_license(*l);
        }
        for k in &revoked.keys {
            b.revoke_key(*k);
        }
        let bytes = b.sign(signer.key())?;
        tx.exec(
            sqlx::query(
                "INSERT INTO revocation_lists (sequence, issued_at, next_update, signer, license_count, key_count, list_b64, org_id, revision) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(i(sequence))
            .bind(i(issued_at))
            .bind(i(next_update))
            .bind(signer.key_id().to_string())
            .bind(i(revoked.licenses.len() as u64))
            .bind(i(revoked.keys.len() as u64))
            .bind(Base64::encode_string(&bytes))
            .bind(org_id.clone())
            .bind(i(revision)),
            "recording the revocation list",
        )
        .await?;
        // The newest lists are kept (to export one again); an app only ever
        // wants the newest, and keeping every list ever signed would grow
        // the ledger with the square of the revocations.
        tx.exec(
            sqlx::query("DELETE FROM revocation_lists WHERE org_id = $1 AND sequence <= $2")
                .bind(org_id.clone())
                .bind(i(sequence.saturating_sub(KEPT_LISTS))),
            "dropping old revocation lists",
        )
        .await?;
        tx.audit(
            ctx,
            "revocations.publish",
            &json!({
                "org_id": org_id,
                "sequence": sequence,
                "next_update": next_update,
                "signer": signer.key_id().to_string(),
                "licenses": revoked.licenses.len(),
                "keys": revoked.keys.iter().map(ToString::to_string).collect::<Vec<_>>(),
            }),
        )
        .await?;
        tx.commit().await?;
        Ok(Signed::Done(Some(PublishedList {
            sequence,
            issued_at,
            next_update,
            signer: signer.key_id(),
            license_count: revoked.licenses.len() as u64,
            key_count: revoked.keys.len() as u64,
            bytes,
        })))
    }
}

impl WriteTx {
    /// [`RequestError::AlreadyRevoked`] if `license_id` is revoked, read after
    /// this transaction's lock (so a revocation cannot slip in between the
    /// check and the caller's write).
    pub(crate) async fn require_not_revoked(&mut self, license_id: LicenseId) -> Result<()> {
        let rows = self
            .fetch(
                sqlx::query("SELECT revoked_at FROM revocations WHERE license_id = $1")
                    .bind(license_id.to_string()),
                "reading revocations",
            )
            .await?;
        match rows.first() {
            None => Ok(()),
            Some(r) => Err(Error::Request(RequestError::AlreadyRevoked {
                license_id,
                revoked_at: u(r
                    .try_get("revoked_at")
                    .map_err(|e| Error::db("reading revocations", e))?),
            })),
        }
    }

    /// The organisation's revoked licenses and keys, read after this
    /// transaction's lock: every revocation committed before is in it.
    /// `listed_at`: only the licenses that must still be listed then
    /// (see `revocations.listed_until`); `None`: every revoked license.
    pub(crate) async fn org_revoked(
        &mut self,
        org_id: &str,
        listed_at: Option<u64>,
    ) -> Result<Revoked> {
        let backend = self.backend;
        read_revoked(self.db(), backend, org_id, listed_at).await
    }
}

/// Revocation reasons are short slugs, so free text (and personal data)
/// never reaches the ledger or the audit log.
pub(crate) fn check_reason(reason: &str) -> Result<()> {
    let ok = !reason.is_empty()
        && reason.len() <= 32
        && reason
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "reason",
            format!(
                "`{reason}` must be a short slug such as refund, chargeback or key-leaked (letters, digits, . _ : -, at most 32)"
            ),
        ))
    }
}

/// Until when the revoked license with this key must stay listed: its
/// expiry plus grace plus [`REVOKED_LISTED_AFTER_EXPIRY`]; `None` (for
/// ever) for a perpetual license, or a key that does not decode.
pub(crate) fn listed_until(license_key: &str) -> Option<u64> {
    let mut buf = [0u8; license::MAX_LICENSE_LEN];
    let bytes = license::decode_text(license_key, &mut buf).ok()?;
    let unverified = keyseal_core::UnverifiedLicense::from_bytes(bytes).ok()?;
    let claims = unverified.dangerous_unverified_claims();
    claims.expires_at.map(|e| {
        e.saturating_add(u64::from(claims.grace_secs))
            .saturating_add(REVOKED_LISTED_AFTER_EXPIRY)
    })
}

/// A published revocation list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedList {
    /// Sequence number.
    pub sequence: u64,
    /// Issue time.
    pub issued_at: u64,
    /// Next-update time.
    pub next_update: u64,
    /// The key that signed it.
    pub signer: KeyId,
    /// Revoked license ids in it.
    pub license_count: u64,
    /// Revoked key ids in it.
    pub key_count: u64,
    /// The signed list.
    pub bytes: Vec<u8>,
}

/// What identifies an organisation's current list file
/// ([`Store::org_list_head`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListHead {
    /// The newest list's sequence.
    pub sequence: u64,
    /// Its next-update time.
    pub next_update: u64,
    /// The version of the key certificates (empty before any).
    pub certificates: String,
}

/// Revoked ids, as verification needs them.
#[derive(Debug, Clone, Default)]
pub struct Revoked {
    /// Revoked licenses.
    pub licenses: BTreeSet<LicenseId>,
    /// Revoked signing keys.
    pub keys: BTreeSet<KeyId>,
}

impl keyseal_core::RevocationCheck for Revoked {
    fn is_license_revoked(&self, id: LicenseId) -> bool {
        self.licenses.contains(&id)
    }

    fn is_key_revoked(&self, id: KeyId) -> bool {
        self.keys.contains(&id)
    }
}

/// An organisation's lists, newest first (bind the organisation as `$1`).
pub(crate) const LISTS_NEWEST_FIRST: &str = "SELECT sequence, issued_at, next_update, signer, license_count, key_count, list_b64 \
     FROM revocation_lists WHERE org_id = $1 ORDER BY sequence DESC";

/// The organisation's revoked licenses and keys, read on `conn` (inside a
/// write transaction: after its lock, so no revocation committed before
/// is missed). With `listed_at`, licenses whose `listed_until` has passed
/// by then are left out (a list need not carry them).
///
/// The license ids come as one text, joined by the database (a list of
/// 100,000 read row by row spent most of its publishing time in the
/// driver, a wake-up and a row conversion per id), from the organisation's
/// range of `revocations_by_org` (schema 18; before, a join of every
/// revoked license to its license and key took most of the rest).
pub(super) async fn read_revoked(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    org_id: &str,
    listed_at: Option<u64>,
) -> Result<Revoked> {
    let doing = "reading revocations";
    let joined = match backend {
        Backend::Sqlite => "group_concat(r.license_id, ',')",
        Backend::Postgres => "string_agg(r.license_id, ',')",
    };
    // Rows with no organisation (written by a replica still on schema 17
    // or older, during an upgrade) are found through their key, as before:
    // a revocation must never miss a list.
    let row = sqlx::query(&format!(
        "SELECT COALESCE({joined}, '') FROM (\
         SELECT r.license_id FROM revocations r WHERE r.org_id = $1 \
         AND (r.listed_until IS NULL OR r.listed_until >= $2) \
         UNION ALL SELECT r.license_id FROM revocations r \
         JOIN licenses l ON l.license_id = r.license_id \
         JOIN signing_keys k ON k.key_id = l.key_id \
         WHERE r.org_id IS NULL AND k.org_id = $1 \
         AND (r.listed_until IS NULL OR r.listed_until >= $2)) AS r"
    ))
    .bind(org_id.to_owned())
    .bind(listed_at.map_or(0, i))
    .fetch_one(&mut *conn)
    .await
    .map_err(|e| Error::db(doing, e))?;
    let ids: String = row.try_get(0).map_err(|e| Error::db(doing, e))?;
    let licenses = ids
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse()
                .map_err(|_| corrupt("bad license id in revocations"))
        })
        .collect::<Result<BTreeSet<_>>>()?;
    let rows =
        sqlx::query("SELECT key_id FROM signing_keys WHERE org_id = $1 AND status = 'revoked'")
            .bind(org_id.to_owned())
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| Error::db(doing, e))?;
    let mut keys = BTreeSet::new();
    for r in &rows {
        let s: String = r.try_get(0).map_err(|e| Error::db(doing, e))?;
        keys.insert(s.parse().map_err(|_| corrupt("bad key id"))?);
    }
    // Revoked on-premises relays: their keys sign leases under allotments
    // that stay valid until they end; the list ends them for apps that
    // have it (docs/FORMAT.md, "Seat allotment").
    let relays = sqlx::query(
        "SELECT DISTINCT relay_key_id FROM allotments WHERE org_id = $1 AND revoked_at IS NOT NULL",
    )
    .bind(org_id.to_owned())
    .fetch_all(&mut *conn)
    .await
    .map_err(|e| Error::db(doing, e))?;
    for r in &relays {
        let s: String = r.try_get(0).map_err(|e| Error::db(doing, e))?;
        keys.insert(s.parse().map_err(|_| corrupt("bad relay key id"))?);
    }
    Ok(Revoked { licenses, keys })
}

pub(crate) fn list_from_row(r: &AnyRow) -> Result<PublishedList> {
    use base64ct::{Base64, Encoding};
    let g = |e| Error::db("reading revocation lists", e);
    let signer: String = r.try_get("signer").map_err(g)?;
    let b64: String = r.try_get("list_b64").map_err(g)?;
    Ok(PublishedList {
        sequence: u(r.try_get("sequence").map_err(g)?),
        issued_at: u(r.try_get("issued_at").map_err(g)?),
        next_update: u(r.try_get("next_update").map_err(g)?),
        signer: signer.parse().map_err(|_| corrupt("bad signer id"))?,
        license_count: u(r.try_get("license_count").map_err(g)?),
        key_count: u(r.try_get("key_count").map_err(g)?),
        bytes: Base64::decode_vec(&b64).map_err(|_| corrupt("bad revocation list encoding"))?,
    })
}
