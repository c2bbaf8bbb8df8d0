//! Signing keys (`signing_keys`): the public halves, the sealed seeds,
//! rotation, retirement, revocation and certification.

use base64ct::{Base64, Encoding};
use serde_json::json;

use super::revocations::check_reason;
use super::*;
use crate::error::{KeyError, LedgerError};
use crate::keyfile::KeyFile;
use crate::ops::Certificate;
use crate::vault::Signer;

impl Store {
    /// Every signing key of the default organisation (the vault's), oldest first.
    pub async fn keys(&self) -> Result<Vec<KeyInfo>> {
        self.org_keys(&self.default_owner().await?).await
    }

    /// Every signing key of one organisation, oldest first.
    pub async fn org_keys(&self, org_id: &str) -> Result<Vec<KeyInfo>> {
        let rows = self
            .fetch_all(
                sqlx::query(
                    &format!("SELECT {KEY_COLUMNS} FROM signing_keys WHERE org_id = $1 ORDER BY created_at, key_id"),
                )
                .bind(org_id.to_owned()),
                "reading signing keys",
            )
            .await?;
        rows.iter().map(key_from_row).collect()
    }

    /// A page of the organisation's signing keys (revoked ones included),
    /// oldest first: at most `limit` (capped at
    /// [`crate::service::MAX_PAGE`]) after the key made at `after.0` with
    /// id `after.1`.
    pub async fn org_keys_page(
        &self,
        org_id: &str,
        after: Option<(u64, KeyId)>,
        limit: u64,
    ) -> Result<Vec<KeyInfo>> {
        let (at, id) = after.map_or((-1, String::new()), |(at, id)| (i(at), id.to_string()));
        let rows = self
            .fetch_all(
                sqlx::query(&format!(
                    "SELECT {KEY_COLUMNS} FROM signing_keys WHERE org_id = $1 \
                     AND (created_at > $2 OR (created_at = $2 AND key_id > $3)) \
                     ORDER BY created_at, key_id LIMIT {}",
                    limit.clamp(1, crate::service::MAX_PAGE)
                ))
                .bind(org_id.to_owned())
                .bind(at)
                .bind(id),
                "reading signing keys",
            )
            .await?;
        rows.iter().map(key_from_row).collect()
    }

    /// The default organisation's active signing key, if any.
    pub async fn active_key(&self) -> Result<Option<KeyInfo>> {
        self.org_active_key(&self.default_owner().await?).await
    }

    /// One organisation's active signing key, if any.
    pub async fn org_active_key(&self, org_id: &str) -> Result<Option<KeyInfo>> {
        Ok(self
            .org_keys(org_id)
            .await?
            .into_iter()
            .find(|k| k.status == KeyStatus::Active))
    }

    /// The sealed copy of key `key_id` the ledger keeps, if it has one.
    pub async fn sealed_key(&self, key_id: KeyId) -> Result<Option<crate::keyfile::KeyFile>> {
        let rows = self
            .fetch_all(
                sqlx::query("SELECT sealed FROM signing_keys WHERE key_id = $1")
                    .bind(key_id.to_string()),
                "reading signing keys",
            )
            .await?;
        let text: Option<String> = rows
            .first()
            .map(|r| r.try_get::<Option<String>, _>(0))
            .transpose()
            .map_err(|e| Error::db("reading signing keys", e))?
            .flatten();
        let label = format!("the ledger's sealed key {key_id}");
        Ok(text
            .map(|t| crate::keyfile::KeyFile::from_json(&t, Path::new(&label)))
            .transpose()?)
    }

    /// Imports the key files in `keys_dir` (a vault's `keys/`) for keys the
    /// ledger records without a sealed copy (written before schema 11):
    /// each file must hold the very public key the ledger names. Files of
    /// keys the ledger does not record, or holds already, are left alone.
    /// Returns how many were imported.
    pub async fn import_key_files(&self, keys_dir: &Path) -> Result<u64> {
        let rows = self
            .fetch_all(
                sqlx::query("SELECT key_id, public_key FROM signing_keys WHERE sealed IS NULL"),
                "reading signing keys",
            )
            .await?;
        let mut imported = 0;
        for r in &rows {
            let g = |e| Error::db("reading signing keys", e);
            let id: String = r.try_get("key_id").map_err(g)?;
            let public: String = r.try_get("public_key").map_err(g)?;
            let path = keys_dir.join(format!("{id}.key"));
            if !path.is_file() {
                continue;
            }
            let file = crate::keyfile::KeyFile::read(&path)?;
            if file.key_id() != id || file.public_key(&path)?.to_string() != public {
                return Err(Error::KeyFile(keyseal_keyfile::Error::CorruptKeyFile {
                    path,
                    detail: format!("it does not hold key {id} as the ledger records it"),
                }));
            }
            let mut tx = self.begin_write().await?;
            tx.exec(
                sqlx::query(
                    "UPDATE signing_keys SET sealed = $1 WHERE key_id = $2 AND sealed IS NULL",
                )
                .bind(file.to_json())
                .bind(id),
                "importing a key file into the ledger",
            )
            .await?;
            tx.commit().await?;
            imported += 1;
        }
        Ok(imported)
    }

    /// The organisation owning the key `key_id` (`""` for the vault's keys
    /// before any organisation exists), or `None` for an unknown key.
    pub async fn key_owner(&self, key_id: KeyId) -> Result<Option<String>> {
        let rows = self
            .fetch_all(
                sqlx::query("SELECT org_id FROM signing_keys WHERE key_id = $1")
                    .bind(key_id.to_string()),
                "reading signing keys",
            )
            .await?;
        rows.first()
            .map(|r| r.try_get::<String, _>(0))
            .transpose()
            .map_err(|e| Error::db("reading signing keys", e))
    }

    /// The default organisation's key with this id, or the one key whose id
    /// starts with this prefix (at least 4 hex digits).
    pub async fn find_key(&self, id_or_prefix: &str) -> Result<KeyInfo> {
        self.org_find_key(&self.default_owner().await?, id_or_prefix)
            .await
    }

    /// One organisation's key with this id, or its one key whose id starts
    /// with this prefix (at least 4 hex digits). Another organisation's key
    /// is unknown here.
    pub async fn org_find_key(&self, org_id: &str, id_or_prefix: &str) -> Result<KeyInfo> {
        let want = id_or_prefix.trim().to_ascii_lowercase();
        if want.len() < 4 {
            return Err(Error::invalid(
                "key id",
                format!("`{want}` is too short: give at least 4 hex digits of the key id"),
            ));
        }
        let mut found = self
            .org_keys(org_id)
            .await?
            .into_iter()
            .filter(|k| k.key_id.to_string().starts_with(&want));
        match (found.next(), found.next()) {
            (Some(k), None) => Ok(k),
            (None, _) => Err(Error::Key(KeyError::Unknown(want))),
            (Some(_), Some(_)) => Err(Error::Key(KeyError::Ambiguous(want))),
        }
    }

    /// Gives an organisation that has no signing key at all (one created
    /// before keys were per organisation) `key` as its active key. Returns
    /// `false`, changing nothing, if it has a key by now (another replica
    /// gave it one): the caller then discards `key`'s sealed file.
    pub async fn org_add_first_key(
        &self,
        org_id: &str,
        key: &crate::keyfile::KeyFile,
        ctx: &Context,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let has = tx
            .fetch(
                sqlx::query("SELECT 1 FROM signing_keys WHERE org_id = $1").bind(org_id.to_owned()),
                "reading signing keys",
            )
            .await?;
        if !has.is_empty() {
            return Ok(false);
        }
        insert_key(&mut tx, org_id, key, ctx.now).await?;
        tx.audit(
            ctx,
            "key.create",
            &json!({ "org_id": org_id, "key_id": key.key_id() }),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
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
    /// (its rank: [`KeyError::ClockBehindNewestKey`] otherwise).
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
            return Err(Error::Key(KeyError::ClockBehindNewestKey { newest }));
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

    /// The signer must be the organisation's active key.
    pub(crate) async fn check_signer(&self, org_id: &str, signer: &Signer) -> Result<()> {
        match self.org_active_key(org_id).await? {
            Some(k) if k.key_id == signer.key_id() => Ok(()),
            Some(_) => Err(Error::Key(KeyError::StaleSigner {
                key_id: signer.key_id(),
            })),
            None => Err(Error::Key(KeyError::NoActiveKey)),
        }
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
            return Err(Error::Key(KeyError::AlreadyRevoked(k.key_id)));
        }
        if let Some(until) = k.valid_until
            && until <= at
        {
            return Err(Error::Key(KeyError::AlreadyRetired {
                key_id: k.key_id,
                until,
            }));
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
            return Err(Error::Key(KeyError::AlreadyRevoked(k.key_id)));
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
            return Err(Error::Key(KeyError::AlreadyRevoked(k.key_id)));
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
            return Err(Error::Key(KeyError::AlreadyRevoked(k.key_id)));
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
}

/// What a write signed with one of an organisation's keys gives: done, or
/// nothing written because the key is no longer the organisation's active
/// one (a rotation happened meanwhile, maybe through another replica). Not
/// a failure of the request: the caller signs again with the active key.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Signed<T> {
    /// Written.
    Done(T),
    /// Nothing written: `key_id` was rotated out meanwhile.
    KeyRotated {
        /// The key that signed.
        key_id: KeyId,
    },
}

impl<T> Signed<T> {
    /// The result, or [`KeyError::StaleSigner`] for a caller that cannot sign
    /// again (the command line: its operator runs the command again).
    pub fn or_stale(self) -> Result<T> {
        match self {
            Signed::Done(t) => Ok(t),
            Signed::KeyRotated { key_id } => Err(Error::Key(KeyError::StaleSigner { key_id })),
        }
    }
}

impl WriteTx {
    /// Whether `key_id` is `org_id`'s active signing key (false if another
    /// is; [`KeyError::NoActiveKey`] if none is), read inside this transaction
    /// (so a rotation cannot slip between the check and the write).
    pub(crate) async fn signer_is_active(&mut self, org_id: &str, key_id: KeyId) -> Result<bool> {
        let rows = self
            .fetch(
                sqlx::query(
                    "SELECT key_id FROM signing_keys WHERE status = 'active' AND org_id = $1",
                )
                .bind(org_id.to_owned()),
                "reading signing keys",
            )
            .await?;
        let active: Option<String> = rows
            .first()
            .map(|r| r.try_get(0))
            .transpose()
            .map_err(|e| Error::db("reading signing keys", e))?;
        match active {
            Some(a) => Ok(a == key_id.to_string()),
            None => Err(Error::Key(KeyError::NoActiveKey)),
        }
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

/// Status of a signing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyStatus {
    /// Signs new licenses (one key at most).
    Active,
    /// Signs nothing any more; licenses it signed within its window stay valid.
    Retired,
    /// Compromised: the next revocation list revokes it, and every license it signed.
    Revoked,
}

impl KeyStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "active",
            KeyStatus::Retired => "retired",
            KeyStatus::Revoked => "revoked",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "active" => KeyStatus::Active,
            "retired" => KeyStatus::Retired,
            "revoked" => KeyStatus::Revoked,
            other => {
                return Err(Error::Ledger(LedgerError::Corrupt {
                    detail: format!("unknown key status `{other}`"),
                }));
            }
        })
    }
}

/// A signing key as the ledger records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// The key id.
    pub key_id: KeyId,
    /// The public key.
    pub public_key: PublicKey,
    /// Active, retired or revoked.
    pub status: KeyStatus,
    /// When the key was created.
    pub created_at: u64,
    /// First issue time the key is trusted for.
    pub valid_from: u64,
    /// Last issue time the key is trusted for; `None` while active.
    pub valid_until: Option<u64>,
    /// When the key was revoked.
    pub revoked_at: Option<u64>,
    /// Why.
    pub revoke_reason: Option<String>,
}

/// The columns [`key_from_row`] reads.
pub(crate) const KEY_COLUMNS: &str =
    "key_id, public_key, status, created_at, valid_from, valid_until, revoked_at, revoke_reason";

pub(crate) fn key_from_row(r: &AnyRow) -> Result<KeyInfo> {
    let g = |e| Error::db("reading signing keys", e);
    let id: String = r.try_get("key_id").map_err(g)?;
    let pk: String = r.try_get("public_key").map_err(g)?;
    let status: String = r.try_get("status").map_err(g)?;
    Ok(KeyInfo {
        key_id: id.parse().map_err(|_| corrupt("bad key id"))?,
        public_key: pk.parse().map_err(|_| corrupt("bad public key"))?,
        status: KeyStatus::parse(&status)?,
        created_at: u(r.try_get("created_at").map_err(g)?),
        valid_from: u(r.try_get("valid_from").map_err(g)?),
        valid_until: r
            .try_get::<Option<i64>, _>("valid_until")
            .map_err(g)?
            .map(u),
        revoked_at: r.try_get::<Option<i64>, _>("revoked_at").map_err(g)?.map(u),
        revoke_reason: r.try_get("revoke_reason").map_err(g)?,
    })
}
