//! The mutating operations on the ledger: register products, mint licenses
//! (one or a batch), revoke licenses and keys, publish revocation lists.
//! Each runs in one transaction with its audit entry.

use std::collections::BTreeSet;

use base64ct::{Base64, Encoding};
use keyseal_core::license;
use keyseal_core::revocation::RevocationListBuilder;
use keyseal_core::{KeyId, LicenseId};
use serde_json::json;

use crate::Context;
use crate::error::{Error, Result};
use crate::keyfile::KeyFile;
use crate::request::{LicenseRequest, RequestFields, check_product};
use crate::store::{KeyInfo, KeyStatus, NewLicense, PublishedList, Store, i};
use crate::vault::Signer;

/// A minted license, recorded in the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    /// The license id.
    pub license_id: LicenseId,
    /// The key that signed it.
    pub key_id: KeyId,
    /// The signed license (the format's bytes): the key text and the
    /// armored file are its encodings.
    pub license: Vec<u8>,
    /// The license key text (`ks1.`).
    pub license_key: String,
    /// The request it was minted from.
    pub request: LicenseRequest,
    /// Issue time.
    pub issued_at: u64,
    /// Its row in the batch file, for batches.
    pub row: Option<u64>,
}

impl Issued {
    /// The armored license file form.
    #[must_use]
    pub fn armored(&self) -> String {
        license::to_armored(&self.license)
    }

    /// What the license claims (decoded from the bytes just signed).
    pub fn claims(&self) -> Result<keyseal_core::UnverifiedLicense<'_>> {
        Ok(keyseal_core::UnverifiedLicense::from_bytes(&self.license)?)
    }
}

/// How long a revocation list the service publishes stays current (its
/// `next_update`: 7 days); the service publishes again at half of it.
pub const REVOCATION_LIST_LIFETIME: u64 = 7 * 24 * 3600;

/// How a batch is minted.
#[derive(Debug, Clone)]
pub struct BatchOptions {
    /// Rows per transaction (and per fsync of the output).
    pub chunk_size: usize,
    /// Rows before this one are skipped (to resume after a failure).
    pub start_row: u64,
}

impl Default for BatchOptions {
    fn default() -> Self {
        BatchOptions {
            chunk_size: 5000,
            start_row: 1,
        }
    }
}

/// How a batch went.
#[derive(Debug)]
pub struct BatchOutcome {
    /// The id recorded on every license of the batch.
    pub batch_id: String,
    /// Licenses minted and recorded.
    pub minted: u64,
    /// The last row done: minted, or skipped as minted before (0 if none).
    pub last_row: u64,
    /// Why the batch stopped early, if it did. Everything counted in
    /// `minted` is in the ledger and was handed to the commit callback.
    pub error: Option<Error>,
    /// Rows not minted because their external id was minted before (an
    /// earlier run of the batch, or an earlier row of this one).
    pub skipped: Vec<SkippedRow>,
}

/// A batch row whose external id was minted already.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedRow {
    /// Its row in the batch file.
    pub row: u64,
    /// Its external id.
    pub external_id: String,
    /// The license minted with that id before.
    pub license_id: String,
}

/// `n` fresh license ids, in ascending order: 48 bits of milliseconds
/// since 1970, big-endian, then 80 random bits. As unique and as
/// unguessable as fully random ids (the key says when it was issued
/// anyway), but in issue order, so the ledger's indexes on license ids grow
/// at one end: random ids put every insert on a page of its own, about four
/// written pages a mint, which made the service's commits slower and
/// spikier under load (and a prefix of whole seconds, the callers' clock,
/// cost the service a third of its mints a second and a batch half its
/// speed, measured with server/bench/load.sh and cli/bench/batch_mint.sh).
/// So the prefix is the system clock's milliseconds, the one reading of a
/// clock in the issuer: it orders ids and nothing depends on it (what a
/// license says and what the ledger records use the caller's `now`).
pub(crate) fn license_ids(n: usize) -> Result<Vec<LicenseId>> {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let mut random = vec![0u8; n * 10];
    getrandom::fill(&mut random)?;
    let mut ids: Vec<LicenseId> = random
        .chunks_exact(10)
        .map(|r| {
            let mut a = [0u8; 16];
            a[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
            a[6..].copy_from_slice(r);
            LicenseId::from_bytes(a)
        })
        .collect();
    ids.sort_unstable_by_key(|id| id.to_bytes());
    Ok(ids)
}

/// The issuer's one signing step: a checked request, its id and the issue
/// time become a signed license (the format's bytes), from which the key
/// text, the armored file and the claims view are all derived. The command
/// line (one or a batch), the service's mints and device activations sign
/// through it.
pub fn sign_request(
    key: &keyseal_core::SigningKey,
    id: LicenseId,
    req: &LicenseRequest,
    now: u64,
) -> Result<Vec<u8>> {
    let claims = req.claims(id, now);
    let device = req.device.as_ref().map(|(fp, rule)| (fp, *rule));
    Ok(license::issue(key, &claims, device)?)
}

impl Store {
    /// Sets up a new, empty ledger (after [`Store::migrate`]): its first
    /// active signing key and products. `details` (for example the vault's
    /// key-derivation parameters) joins the `vault.init` audit entry.
    pub async fn initialize(
        &self,
        key: &KeyFile,
        products: &[String],
        details: serde_json::Value,
        ctx: &Context,
    ) -> Result<()> {
        let mut products = products.to_vec();
        for p in &products {
            check_product(p)?;
        }
        products.sort();
        products.dedup();
        let mut tx = self.begin_write().await?;
        let existing = tx
            .fetch(
                sqlx::query("SELECT value FROM meta WHERE name = 'format'"),
                "reading the ledger",
            )
            .await?;
        if !existing.is_empty() {
            return Err(Error::invalid("ledger", "is already initialized"));
        }
        tx.set_meta("format", "keyseal-ledger/v1").await?;
        tx.set_meta("created_at", &ctx.now.to_string()).await?;
        // A ledger migrated from before schema 10 may have one already.
        let org_id = match tx
            .fetch(
                sqlx::query("SELECT value FROM meta WHERE name = 'default_org'"),
                "reading the default organisation",
            )
            .await?
            .first()
        {
            Some(r) => sqlx::Row::try_get::<String, _>(r, 0)
                .map_err(|e| Error::db("reading the default organisation", e))?,
            None => tx.insert_default_org(ctx).await?,
        };
        insert_key(&mut tx, &org_id, key, ctx.now).await?;
        for p in &products {
            tx.exec(
                sqlx::query(
                    "INSERT INTO org_products (org_id, product, name, created_at) VALUES ($1, $2, $3, $4)",
                )
                .bind(org_id.clone())
                .bind(p.clone())
                .bind(p.clone())
                .bind(i(ctx.now)),
                "registering products",
            )
            .await?;
        }
        let mut d =
            json!({ "org_id": org_id, "key_id": key.key_id().to_string(), "products": products });
        if let (Some(d), serde_json::Value::Object(extra)) = (d.as_object_mut(), details) {
            d.extend(extra);
        }
        tx.audit(ctx, "vault.init", &d).await?;
        tx.commit().await
    }

    /// Makes `key` the default organisation's active signing key; the
    /// previous active key is retired (its window ends now). Returns the
    /// retired key's id.
    pub async fn activate_key(&self, key: &KeyFile, ctx: &Context) -> Result<Option<KeyId>> {
        self.org_activate_key(&self.default_owner().await?, key, ctx)
            .await
    }

    /// Makes `key` one organisation's active signing key; its previous
    /// active key is retired (its window ends now). Returns the retired
    /// key's id. Other organisations' keys are untouched. The new key's
    /// window starts now, which must not be before an earlier key's start
    /// (its rank: [`Error::ClockBehindNewestKey`] otherwise).
    pub async fn org_activate_key(
        &self,
        org_id: &str,
        key: &KeyFile,
        ctx: &Context,
    ) -> Result<Option<KeyId>> {
        // The active key is read and retired under the writer's lock: read
        // before it, two rotations at once each retired the same old key
        // and left two active ones.
        let mut tx = self.begin_write().await?;
        let keys = tx
            .fetch(
                sqlx::query(&format!(
                    "SELECT {} FROM signing_keys WHERE org_id = $1",
                    crate::store::KEY_COLUMNS
                ))
                .bind(org_id.to_owned()),
                "reading the organisation's keys",
            )
            .await?
            .iter()
            .map(crate::store::key_from_row)
            .collect::<Result<Vec<_>>>()?;
        // The new key joins the published keyring: refused, with nothing
        // written, if the keyring could not hold it.
        crate::export::keyring_room(&keys)?;
        // Ranks never fall: a new key must not be outranked by an older one
        // (its lists would give way to theirs).
        if let Some(newest) = keys.iter().map(|k| k.valid_from).max()
            && newest > ctx.now
        {
            return Err(Error::ClockBehindNewestKey { newest });
        }
        let old = keys
            .iter()
            .find(|k| k.status == KeyStatus::Active)
            .map(|k| k.key_id);
        tx.exec(
            sqlx::query(
                "UPDATE signing_keys SET status = 'retired', valid_until = $1 \
                 WHERE org_id = $2 AND status = 'active'",
            )
            .bind(i(ctx.now))
            .bind(org_id.to_owned()),
            "retiring the old key",
        )
        .await?;
        insert_key(&mut tx, org_id, key, ctx.now).await?;
        tx.audit(
            ctx,
            "key.rotate",
            &json!({
                "org_id": org_id,
                "key_id": key.key_id().to_string(),
                "retired_key_id": old.map(|o| o.to_string()),
            }),
        )
        .await?;
        tx.commit().await?;
        Ok(old)
    }

    /// Mints one license and records it. The key is returned only after the
    /// ledger transaction committed.
    /// `org_id` is the organisation the license belongs to; `signer` must
    /// be its active key.
    pub async fn issue(
        &self,
        org_id: &str,
        signer: &Signer,
        req: LicenseRequest,
        ctx: &Context,
    ) -> Result<Issued> {
        self.require_product(org_id, &req.product).await?;
        self.check_signer(org_id, signer).await?;
        let id = license_ids(1)?[0];
        let bytes = sign_request(signer.key(), id, &req, ctx.now)?;
        let key_text = license::to_text(&bytes);
        let mut tx = self.begin_write().await?;
        if let Some(x) = &req.external_id
            && let Some(license_id) = tx.external_id_owner(org_id, x).await?
        {
            return Err(Error::ExternalIdExists {
                external_id: x.clone(),
                license_id,
            });
        }
        tx.insert_licenses(&[NewLicense {
            org_id,
            max_devices: 1,
            external_id: req.external_id.as_deref(),
            metadata: None,
            license_id: id,
            key_id: signer.key_id(),
            product: &req.product,
            customer: &req.customer,
            plan: &req.plan,
            issued_at: ctx.now,
            expires_at: req.expires_at,
            license_key: &key_text,
            batch_id: None,
            batch_row: None,
        }])
        .await?;
        let mut details = json!({
            "org_id": org_id,
            "license_id": id.to_string(),
            "key_id": signer.key_id().to_string(),
            "product": req.product,
            "plan": req.plan,
            "customer": req.customer,
            "expires_at": req.expires_at,
        });
        if let Some(x) = &req.external_id {
            details["external_id"] = json!(x);
        }
        tx.audit(ctx, "license.issue", &details).await?;
        tx.commit().await?;
        Ok(Issued {
            license_id: id,
            key_id: signer.key_id(),
            license: bytes,
            license_key: key_text,
            request: req,
            issued_at: ctx.now,
            row: None,
        })
    }

    /// The signer must be the organisation's active key.
    async fn check_signer(&self, org_id: &str, signer: &Signer) -> Result<()> {
        match self.org_active_key(org_id).await? {
            Some(k) if k.key_id == signer.key_id() => Ok(()),
            Some(_) => Err(Error::StaleSigner {
                key_id: signer.key_id(),
            }),
            None => Err(Error::NoActiveKey),
        }
    }

    /// Mints a batch. A reader thread checks the rows as it reads them and
    /// signs every `chunk_size` of them (on all cores); meanwhile this task
    /// records each signed chunk in one transaction and then hands it to
    /// `on_commit` (which writes it out), so reading, signing and recording
    /// overlap. A bad row stops the batch after the rows before it are minted.
    pub async fn issue_batch<I, F>(
        &self,
        org_id: &str,
        signer: &Signer,
        ctx: &Context,
        rows: I,
        opts: &BatchOptions,
        mut on_commit: F,
    ) -> BatchOutcome
    where
        I: Iterator<Item = Result<(u64, RequestFields)>> + Send + 'static,
        F: FnMut(&[Issued]) -> Result<()>,
    {
        let mut rnd = [0u8; 8];
        let batch_id = match getrandom::fill(&mut rnd) {
            Ok(()) => format!("b-{}", crate::fsutil::hex(&rnd)),
            Err(e) => {
                return BatchOutcome {
                    batch_id: String::new(),
                    minted: 0,
                    last_row: 0,
                    error: Some(e.into()),
                    skipped: Vec::new(),
                };
            }
        };
        let mut out = BatchOutcome {
            batch_id,
            minted: 0,
            last_row: 0,
            error: None,
            skipped: Vec::new(),
        };
        let products: BTreeSet<String> = match async {
            self.check_signer(org_id, signer).await?;
            self.all_products(org_id).await
        }
        .await
        {
            Ok(p) => p.into_iter().collect(),
            Err(e) => {
                out.error = Some(e);
                return out;
            }
        };
        // Two chunks in flight: enough to keep the ledger busy, little memory.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Vec<Issued>>>(2);
        let reader = {
            let key = signer.shared();
            let now = ctx.now;
            let chunk_size = opts.chunk_size.max(1);
            let start_row = opts.start_row;
            std::thread::spawn(move || {
                read_and_sign(rows, &products, &key, now, chunk_size, start_row, &tx)
            })
        };
        while let Some(item) = rx.recv().await {
            let step = match item {
                Ok(chunk) => {
                    self.record_chunk(org_id, chunk, ctx, &mut out, &mut on_commit)
                        .await
                }
                Err(e) => Err(e),
            };
            if let Err(e) = step {
                out.error = Some(e);
                break;
            }
        }
        // Dropping the receiver stops the reader at its next chunk.
        drop(rx);
        if reader.join().is_err() && out.error.is_none() {
            out.error = Some(Error::invalid("batch", "the reader thread panicked"));
        }
        out
    }

    async fn record_chunk<F>(
        &self,
        org_id: &str,
        issued: Vec<Issued>,
        ctx: &Context,
        out: &mut BatchOutcome,
        on_commit: &mut F,
    ) -> Result<()>
    where
        F: FnMut(&[Issued]) -> Result<()>,
    {
        let Some(last_row) = issued.last().and_then(|x| x.row) else {
            return Ok(());
        };
        let mut tx = self.begin_write().await?;
        // Rows whose external id was minted before (an earlier run, or an
        // earlier row) are skipped, under the writer's lock.
        let ids: Vec<&str> = issued
            .iter()
            .filter_map(|x| x.request.external_id.as_deref())
            .collect();
        let mut seen = tx.external_id_owners(org_id, &ids).await?;
        let mut kept = Vec::with_capacity(issued.len());
        for x in issued {
            if let Some(ext) = &x.request.external_id {
                if let Some(license_id) = seen.get(ext).cloned() {
                    out.skipped.push(SkippedRow {
                        row: x.row.unwrap_or(0),
                        external_id: ext.clone(),
                        license_id,
                    });
                    continue;
                }
                seen.insert(ext.clone(), x.license_id.to_string());
            }
            kept.push(x);
        }
        let issued = kept;
        let (Some(first), Some(last)) = (issued.first(), issued.last()) else {
            // Every row of the chunk was skipped: nothing to record.
            out.last_row = last_row;
            return tx.commit().await;
        };
        let rows: Vec<NewLicense<'_>> = issued
            .iter()
            .map(|x| NewLicense {
                org_id,
                max_devices: 1,
                external_id: x.request.external_id.as_deref(),
                metadata: None,
                license_id: x.license_id,
                key_id: x.key_id,
                product: &x.request.product,
                customer: &x.request.customer,
                plan: &x.request.plan,
                issued_at: x.issued_at,
                expires_at: x.request.expires_at,
                license_key: &x.license_key,
                batch_id: Some(&out.batch_id),
                batch_row: x.row,
            })
            .collect();
        tx.insert_licenses(&rows).await?;
        tx.audit(
            ctx,
            "license.issue_batch",
            &json!({
                "org_id": org_id,
                "batch_id": out.batch_id,
                "key_id": first.key_id.to_string(),
                "rows": [first.row, last.row],
                "count": issued.len(),
                "license_ids": issued.iter().map(|x| x.license_id.to_string()).collect::<Vec<_>>(),
            }),
        )
        .await?;
        tx.commit().await?;
        out.minted += issued.len() as u64;
        out.last_row = last_row;
        on_commit(&issued)
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
            return Err(Error::CorruptLedger {
                detail: format!("license {} names no known signing key", rec.license_id),
            });
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

    /// Ends a key of the default organisation's window at `at` (see
    /// [`Store::org_retire_key`]).
    pub async fn retire_key(&self, id: &str, at: u64, ctx: &Context) -> Result<KeyInfo> {
        self.org_retire_key(&self.default_owner().await?, id, at, ctx)
            .await
    }

    /// Ends one of the organisation's keys' window at `at` (it signs nothing
    /// issued after that). Only narrows: a window never grows. Retiring the
    /// active key leaves the organisation without one until the next
    /// rotation. Another organisation's key is unknown here.
    pub async fn org_retire_key(
        &self,
        org_id: &str,
        id: &str,
        at: u64,
        ctx: &Context,
    ) -> Result<KeyInfo> {
        let k = self.org_find_key(org_id, id).await?;
        if k.status == KeyStatus::Revoked {
            return Err(Error::KeyAlreadyRevoked(k.key_id));
        }
        if let Some(until) = k.valid_until
            && until <= at
        {
            return Err(Error::KeyAlreadyRetired {
                key_id: k.key_id,
                until,
            });
        }
        let mut tx = self.begin_write().await?;
        tx.exec(
            sqlx::query(
                "UPDATE signing_keys SET status = 'retired', valid_until = $1 WHERE key_id = $2",
            )
            .bind(i(at))
            .bind(k.key_id.to_string()),
            "retiring the key",
        )
        .await?;
        tx.audit(
            ctx,
            "key.retire",
            &json!({ "org_id": org_id, "key_id": k.key_id.to_string(), "valid_until": at }),
        )
        .await?;
        tx.commit().await?;
        self.org_find_key(org_id, &k.key_id.to_string()).await
    }

    /// Marks a key revoked: the next revocation list revokes it, and every
    /// license it signed. It is left out of exported keyrings.
    pub async fn revoke_key(&self, id: &str, reason: &str, ctx: &Context) -> Result<KeyInfo> {
        self.org_revoke_key(&self.default_owner().await?, id, reason, ctx)
            .await
    }

    /// Marks one of the organisation's keys revoked: its next revocation
    /// list revokes the key and every license it signed, and its published
    /// keyring leaves it out (which makes room for a rotation, see
    /// [`crate::export::keyring_room`]). Another organisation's key is
    /// unknown here.
    pub async fn org_revoke_key(
        &self,
        org_id: &str,
        id: &str,
        reason: &str,
        ctx: &Context,
    ) -> Result<KeyInfo> {
        check_reason(reason)?;
        let k = self.org_find_key(org_id, id).await?;
        if k.status == KeyStatus::Revoked {
            return Err(Error::KeyAlreadyRevoked(k.key_id));
        }
        let mut tx = self.begin_write().await?;
        // Under the writer's lock: of two revocations at once, one wins and
        // the other is told the key is revoked already.
        let changed = tx
            .exec(
                sqlx::query(
                    "UPDATE signing_keys SET status = 'revoked', revoked_at = $1, revoke_reason = $2, \
                 valid_until = COALESCE(valid_until, $1) \
                 WHERE key_id = $3 AND org_id = $4 AND status <> 'revoked'",
                )
            .bind(i(ctx.now))
            .bind(reason.to_owned())
            .bind(k.key_id.to_string())
                .bind(org_id.to_owned()),
                "revoking the key",
            )
            .await?;
        if changed == 0 {
            return Err(Error::KeyAlreadyRevoked(k.key_id));
        }
        // Its certificate leaves the list files: cached ones are stale.
        tx.set_meta("certificates", &format!("revoked {}", k.key_id))
            .await?;
        tx.bump_revision(org_id).await?;
        tx.audit(
            ctx,
            "key.revoke",
            &json!({ "org_id": org_id, "key_id": k.key_id.to_string(), "reason": reason }),
        )
        .await?;
        tx.commit().await?;
        self.org_find_key(org_id, &k.key_id.to_string()).await
    }

    /// Certifies one of the organisation's keys with an offline `root`: the
    /// certificate covers the key's window from its start (its rank, so
    /// which list supersedes which is the same for apps that pin the root),
    /// to `until` or the key's own end, whichever is earlier, for
    /// `products` (empty: all). Certifying again replaces the key's
    /// certificate. A revoked key, or a root that is one of the
    /// organisation's signing keys, is refused.
    pub async fn org_certify_key(
        &self,
        org_id: &str,
        id: &str,
        root: &keyseal_core::SigningKey,
        until: Option<u64>,
        products: &[String],
        ctx: &Context,
    ) -> Result<Certificate> {
        let k = self.org_find_key(org_id, id).await?;
        if k.status == KeyStatus::Revoked {
            return Err(Error::KeyAlreadyRevoked(k.key_id));
        }
        let root_id = root.key_id();
        if self
            .org_keys(org_id)
            .await?
            .iter()
            .any(|x| x.key_id == root_id)
        {
            return Err(Error::invalid(
                "root",
                "the root is one of the organisation's signing keys: make a separate root with `keyseal root create`",
            ));
        }
        let valid_until = match (until, k.valid_until) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if valid_until.is_some_and(|u| u < k.valid_from) {
            return Err(Error::invalid(
                "until",
                format!("ends before the key's window starts ({})", k.valid_from),
            ));
        }
        let names: Vec<&str> = products.iter().map(String::as_str).collect();
        let mut trusted = keyseal_core::TrustedKey::new(k.public_key)
            .valid_from(k.valid_from)
            .products(&names)
            .map_err(|e| {
                Error::invalid(
                    "products",
                    format!(
                        "{e} (at most {} product ids)",
                        keyseal_core::keyring::MAX_KEY_PRODUCTS
                    ),
                )
            })?;
        if let Some(u) = valid_until {
            trusted = trusted.valid_until(u);
        }
        let bytes = keyseal_core::KeyCertificate::sign(root, &trusted);
        let mut tx = self.begin_write().await?;
        let key_id = k.key_id.to_string();
        tx.exec(
            sqlx::query("DELETE FROM key_certificates WHERE key_id = $1").bind(key_id.clone()),
            "replacing the key's certificate",
        )
        .await?;
        tx.exec(
            sqlx::query(
                "INSERT INTO key_certificates (key_id, org_id, root_key_id, certificate, valid_from, valid_until, created_at)                  VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(key_id.clone())
            .bind(org_id.to_owned())
            .bind(root_id.to_string())
            .bind(Base64::encode_string(&bytes))
            .bind(i(k.valid_from))
            .bind(valid_until.map(i))
            .bind(i(ctx.now)),
            "recording the certificate",
        )
        .await?;
        // A new version of the certificates: cached list files are stale.
        tx.set_meta(
            "certificates",
            &Base64::encode_string(&bytes[bytes.len() - 16..]),
        )
        .await?;
        tx.audit(
            ctx,
            "key.certify",
            &json!({
                "org_id": org_id, "key_id": key_id, "root_key_id": root_id.to_string(),
                "valid_from": k.valid_from, "valid_until": valid_until, "products": products,
            }),
        )
        .await?;
        tx.commit().await?;
        Ok(Certificate {
            key_id: k.key_id,
            root_key_id: root_id,
            valid_from: k.valid_from,
            valid_until,
            bytes,
        })
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
            .ok_or_else(|| Error::CorruptLedger {
                detail: "a list to publish always was skipped".into(),
            })
    }

    /// As [`Store::publish_revocations`], `when` the organisation's list
    /// needs it ([`Publish`]); `None` if it did not. Decided under the
    /// writer's lock, so requests and replicas publishing at once (after a
    /// burst of revocations, or refreshing a list) sign one list, not one
    /// each: every revocation committed before a list was built is in it.
    pub async fn publish_list(
        &self,
        signer: &Signer,
        next_update: u64,
        when: Publish,
        ctx: &Context,
    ) -> Result<Option<PublishedList>> {
        let org_id = self
            .key_owner(signer.key_id())
            .await?
            .ok_or(Error::NoActiveKey)?;
        if next_update <= ctx.now {
            return Err(Error::invalid("next-update", "must be in the future"));
        }
        // Everything read under the writer's lock: read before it, a list
        // could miss a revocation committed meanwhile and still take the
        // higher sequence (lost revocations on PostgreSQL), or be signed by
        // a key retired meanwhile.
        let mut tx = self.begin_write().await?;
        tx.require_active_key(&org_id, signer.key_id()).await?;
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
                    return Ok(None);
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
        Ok(Some(PublishedList {
            sequence,
            issued_at,
            next_update,
            signer: signer.key_id(),
            license_count: revoked.licenses.len() as u64,
            key_count: revoked.keys.len() as u64,
            bytes,
        }))
    }
}

/// When [`Store::publish_list`] signs a new list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Publish {
    /// Always (an explicit publish, with a new next-update time).
    Always,
    /// Only if a revocation was recorded since the newest list was built:
    /// what follows a revocation, so a burst of them publishes one list.
    IfChanged,
    /// Only if the newest list goes stale at or before this time (a list
    /// refreshed when fetched).
    IfDueBy(u64),
}

/// The batch reader: checks rows, signs them a chunk at a time, and sends
/// each signed chunk (or the first error, after the rows before it) on.
fn read_and_sign<I>(
    rows: I,
    products: &BTreeSet<String>,
    key: &keyseal_core::SigningKey,
    now: u64,
    chunk_size: usize,
    start_row: u64,
    tx: &tokio::sync::mpsc::Sender<Result<Vec<Issued>>>,
) where
    I: Iterator<Item = Result<(u64, RequestFields)>>,
{
    let mut rows = rows.filter(|r| r.as_ref().map_or(true, |(n, _)| *n >= start_row));
    loop {
        let mut chunk: Vec<(u64, LicenseRequest)> = Vec::with_capacity(chunk_size);
        let mut error = None;
        for r in rows.by_ref() {
            let checked = r.and_then(|(n, fields)| {
                let req = fields.resolve(now).map_err(|e| Error::BadRow {
                    row: n,
                    source: Box::new(e),
                })?;
                if !products.contains(&req.product) {
                    let known = products.iter().cloned().collect();
                    return Err(Error::BadRow {
                        row: n,
                        source: Box::new(Error::UnknownProduct {
                            product: req.product,
                            known,
                        }),
                    });
                }
                Ok((n, req))
            });
            match checked {
                Ok(x) => {
                    chunk.push(x);
                    if chunk.len() == chunk_size {
                        break;
                    }
                }
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        let done = chunk.len() < chunk_size || error.is_some();
        if !chunk.is_empty() {
            let signed = sign_chunk(key, chunk, now);
            let failed = signed.is_err();
            if tx.blocking_send(signed).is_err() || failed {
                return;
            }
        }
        if let Some(e) = error {
            let _ = tx.blocking_send(Err(e));
            return;
        }
        if done {
            return;
        }
    }
}

fn sign_chunk(
    key: &keyseal_core::SigningKey,
    chunk: Vec<(u64, LicenseRequest)>,
    now: u64,
) -> Result<Vec<Issued>> {
    use rayon::prelude::*;
    let ids = license_ids(chunk.len())?;
    let key_id = key.key_id();
    chunk
        .into_par_iter()
        .zip(ids)
        .map(|((row, req), id)| {
            let bytes = sign_request(key, id, &req, now).map_err(|e| Error::BadRow {
                row,
                source: Box::new(e),
            })?;
            Ok(Issued {
                license_id: id,
                key_id,
                license_key: license::to_text(&bytes),
                license: bytes,
                request: req,
                issued_at: now,
                row: Some(row),
            })
        })
        .collect()
}

/// A key certificate an offline root made for one of the organisation's
/// keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    /// The certified key.
    pub key_id: KeyId,
    /// The root that signed it.
    pub root_key_id: KeyId,
    /// The certified window: from the key's own start.
    pub valid_from: u64,
    /// Its end, if any.
    pub valid_until: Option<u64>,
    /// The certificate (the format's bytes; `kscert1.` + base64url is its text).
    pub bytes: Vec<u8>,
}

/// How many of an organisation's newest revocation lists the ledger keeps.
pub const KEPT_LISTS: u64 = 16;

/// How long past its expiry plus grace a revoked license stays on the
/// revocation lists: 30 days, a margin for apps whose clock is behind or
/// that allow leeway. After that every app refuses it as expired anyway,
/// so lists stop growing with licenses that can no longer validate.
pub const REVOKED_LISTED_AFTER_EXPIRY: u64 = 30 * 86_400;

/// Until when the revoked license with this key must stay listed: its
/// expiry plus grace plus [`REVOKED_LISTED_AFTER_EXPIRY`]; `None` (for
/// ever) for a perpetual license, or a key that does not decode.
fn listed_until(license_key: &str) -> Option<u64> {
    let mut buf = [0u8; license::MAX_LICENSE_LEN];
    let bytes = license::decode_text(license_key, &mut buf).ok()?;
    let unverified = keyseal_core::UnverifiedLicense::from_bytes(bytes).ok()?;
    let claims = unverified.dangerous_unverified_claims();
    claims.expires_at.map(|e| {
        e.saturating_add(u64::from(claims.grace_secs))
            .saturating_add(REVOKED_LISTED_AFTER_EXPIRY)
    })
}

/// Revocation reasons are short slugs, so free text (and personal data)
/// never reaches the ledger or the audit log.
fn check_reason(reason: &str) -> Result<()> {
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

pub(crate) async fn insert_key(
    tx: &mut crate::store::WriteTx,
    org_id: &str,
    sealed: &KeyFile,
    now: u64,
) -> Result<()> {
    let pk = sealed.public_key(std::path::Path::new("a new sealed key"))?;
    tx.exec(
        sqlx::query(
            "INSERT INTO signing_keys (key_id, public_key, status, created_at, valid_from, org_id, sealed) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(pk.key_id().to_string())
        .bind(pk.to_string())
        .bind(KeyStatus::Active.as_str().to_owned())
        .bind(i(now))
        .bind(i(now))
        .bind(org_id.to_owned())
        .bind(sealed.to_json()),
        "recording the new key",
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn license_ids_are_unique_and_in_issue_order() {
        let first = license_ids(2000).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let later = license_ids(1).unwrap()[0];
        let mut seen = BTreeSet::new();
        for id in &first {
            assert!(seen.insert(id.to_bytes()), "duplicate id {id}");
            // A later millisecond sorts after, as bytes and as hex text.
            assert!(id.to_bytes() < later.to_bytes());
            assert!(id.to_string() < later.to_string());
        }
        // 80 random bits after the prefix: distinct, and each call's ids
        // come sorted.
        assert!(first.windows(2).all(|w| w[0].to_bytes() < w[1].to_bytes()));
    }
}
