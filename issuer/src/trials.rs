//! Trials (`keyseal serve`'s `POST /v1/public/trials`): an app with no
//! license asks for its product's trial with this device's fingerprint,
//! and the first request from a device mints a trial license exactly bound
//! to that fingerprint (docs/FORMAT.md, "Device fingerprints and binding")
//! and expiring after the product's trial length. A device asks once per
//! product: a later request from the same device is refused with when its
//! trial started and ends.
//!
//! **The same device** is matched k of n on the fingerprint's components,
//! so a changed network card or a reinstall that keeps the other ids does
//! not reset the trial: the new fingerprint matches an earlier trial's when
//! they share at least `min(k, a, b)` components, `a` and `b` being the
//! numbers of distinct components of the two (k is the policy's
//! `device_match`, default [`DEFAULT_DEVICE_MATCH`]; so a fingerprint with
//! fewer than k components must match all of them). An app modified to
//! send made-up fingerprints gets a trial each time: the match stops honest
//! reinstalls and changed hardware, not a determined user, and so do the
//! per-client rate limits in front of it.
//!
//! **A retry** from the very same fingerprint (every component, in order)
//! while its trial runs gets the same key again ([`TrialStarted::Again`]):
//! an app whose answer was lost on the network asks again and gets its
//! trial, and nothing is minted twice. After the trial's end, or once its
//! license is revoked, the same device is refused like any other match.
//!
//! **One write transaction.** The match and the mint run in the ledger's
//! write transaction (one writer at a time, across replicas), so two
//! requests from one device at once make one trial: the second sees the
//! first's rows.
//!
//! **Privacy.** The ledger keeps no fingerprint, component or address of a
//! trial device: only HMAC-SHA256 values of each component and of the whole
//! fingerprint, under a key derived per organisation from the ledger's
//! sealed data secret ([`crate::privacy::DataKeys::trial_device`] says why
//! that key), indexed so that the match reads only the trials that share a
//! component with the new device. The trial license's customer is
//! [`TRIAL_CUSTOMER`] for every trial: keys need a customer id, and a
//! trial has nobody behind it worth naming (a per-device id would be one
//! more thing linking a device's requests), so the license carries nothing
//! about its holder but the exact device binding's two-byte hint. (The
//! ledger keeps the trial's key, as every license's: whoever holds a dump
//! and a machine's fingerprint can test it against each trial key, one
//! signature check each, as for any device-bound key; the keyed hashes
//! add no shorter way.)

use keyseal_core::claims::MAX_DEVICE_COMPONENTS;
use keyseal_core::device::Fingerprint;
use keyseal_core::license::{self as core_license, MAX_LICENSE_LEN, UnverifiedLicense};
use serde_json::json;

use crate::Context;
use crate::error::{Error, Result};
use crate::request::RequestFields;
use crate::store::{Signed, Store, WriteTx, i, u};
use crate::vault::Signer;

/// The customer id of every trial license.
pub const TRIAL_CUSTOMER: &str = "trial";
/// A trial's length when the policy sets none: 14 days.
pub const DEFAULT_TRIAL_SECS: u64 = 14 * 86_400;
/// A trial license's plan when the policy sets none.
pub const DEFAULT_TRIAL_PLAN: &str = "trial";
/// The k of the k-of-n device match when the policy sets none.
pub const DEFAULT_DEVICE_MATCH: u8 = 2;
/// Shortest trial a policy may set: an hour.
pub const MIN_TRIAL_SECS: u64 = 3600;
/// Longest trial a policy may set: a year.
pub const MAX_TRIAL_SECS: u64 = 366 * 86_400;
/// Most earlier trials one request's match reads: the newest that share
/// enough components. Any one of them refuses a new trial, and a retry's
/// own trial is the newest from its exact fingerprint.
const MATCHES_READ: u64 = 16;

/// A product's trial policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrialPolicy {
    /// Whether the product gives trials.
    pub enabled: bool,
    /// How long a trial license lasts, in seconds (from
    /// [`MIN_TRIAL_SECS`] to [`MAX_TRIAL_SECS`]).
    pub length_secs: u64,
    /// The trial license's plan.
    pub plan: String,
    /// The trial license's entitlements (sorted, unique).
    pub entitlements: Vec<String>,
    /// How many fingerprint components must equal an earlier trial
    /// device's for the device to count as that one (1 to 8).
    pub device_match: u8,
}

impl Default for TrialPolicy {
    /// Trials off; the defaults otherwise.
    fn default() -> Self {
        TrialPolicy {
            enabled: false,
            length_secs: DEFAULT_TRIAL_SECS,
            plan: DEFAULT_TRIAL_PLAN.to_owned(),
            entitlements: Vec::new(),
            device_match: DEFAULT_DEVICE_MATCH,
        }
    }
}

impl TrialPolicy {
    /// The request a trial license of `product` is minted from at `now`,
    /// bound to `device` if given: every field checked as a mint's.
    fn request(
        &self,
        product: &str,
        device: Option<&Fingerprint>,
        now: u64,
    ) -> Result<crate::LicenseRequest> {
        RequestFields {
            product: Some(product.to_owned()),
            customer: Some(TRIAL_CUSTOMER.to_owned()),
            plan: Some(self.plan.clone()),
            expires: Some(format!("{}s", self.length_secs)),
            device: device.map(ToString::to_string),
            entitlements: self.entitlements.clone(),
            ..RequestFields::default()
        }
        .resolve(now)
    }

    /// The policy checked (length, match, and plan and entitlements by a
    /// license's rules) and normalised (entitlements sorted and unique).
    pub fn check(&self, product: &str, now: u64) -> Result<TrialPolicy> {
        if !(MIN_TRIAL_SECS..=MAX_TRIAL_SECS).contains(&self.length_secs) {
            return Err(Error::invalid(
                "length_secs",
                format!("must be from {MIN_TRIAL_SECS} (an hour) to {MAX_TRIAL_SECS} (a year)"),
            ));
        }
        if !(1..=MAX_DEVICE_COMPONENTS).contains(&usize::from(self.device_match)) {
            return Err(Error::invalid(
                "device_match",
                format!("must be from 1 to {MAX_DEVICE_COMPONENTS} (components of a fingerprint)"),
            ));
        }
        let req = self.request(product, None, now)?;
        Ok(TrialPolicy {
            enabled: self.enabled,
            length_secs: self.length_secs,
            plan: req.plan,
            entitlements: req.entitlements,
            device_match: self.device_match,
        })
    }
}

/// A product's trial policy as the ledger holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrialSettings {
    /// The product.
    pub product: String,
    /// Its policy ([`TrialPolicy::default`], trials off, if never set).
    pub policy: TrialPolicy,
    /// When it was last set, if it was.
    pub updated_at: Option<u64>,
}

/// A trial: its license, bound to the device that asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trial {
    /// The trial license (32 hex digits).
    pub license_id: String,
    /// Its key (`ks1.`), exactly bound to the device's fingerprint.
    pub license_key: String,
    /// The product.
    pub product: String,
    /// The plan.
    pub plan: String,
    /// The entitlements.
    pub entitlements: Vec<String>,
    /// When the trial started (the license's issue time).
    pub started_at: u64,
    /// When it ends (the license's expiry).
    pub expires_at: u64,
}

/// A trial request that got a trial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrialStarted {
    /// A new trial was minted.
    New(Trial),
    /// The very same fingerprint asked again while its trial runs: its
    /// trial, unchanged (nothing written).
    Again(Trial),
}

/// Why a trial request got no trial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrialRefused {
    /// The organisation has no such product.
    UnknownProduct,
    /// The product gives no trials (no policy, or it is disabled).
    Disabled,
    /// The device matches one that had a trial of the product.
    Used {
        /// When that trial started.
        started_at: u64,
        /// When it ends or ended.
        ends_at: u64,
    },
}

/// An earlier trial whose device shares enough components with the new one.
#[derive(sqlx::FromRow)]
struct MatchRow {
    license_id: String,
    device: String,
    started_at: i64,
    ends_at: i64,
    revoked_at: Option<i64>,
}

/// The match query for `n` component hashes (`$3` ... `$n+2`), the required
/// share `min(k, n)` as `$n+3`: the earlier trials of the product sharing
/// at least that many components, or all of their own (the
/// `min(k, a, b)` rule of the module's doc), newest first. The inner
/// query reads `trial_components` through its primary key, from the new
/// device's components only; each trial it finds is then one primary-key
/// look-up in `trials`.
pub(crate) fn match_sql(n: usize) -> String {
    let params: Vec<String> = (0..n).map(|k| format!("${}", k + 3)).collect();
    format!(
        "SELECT t.license_id, t.device, t.started_at, t.ends_at, r.revoked_at \
         FROM (SELECT license_id, COUNT(*) AS shared FROM trial_components \
               WHERE org_id = $1 AND product = $2 AND component IN ({}) GROUP BY license_id) m \
         JOIN trials t ON t.license_id = m.license_id \
         LEFT JOIN revocations r ON r.license_id = t.license_id \
         WHERE m.shared >= ${} OR m.shared >= t.components \
         ORDER BY t.started_at DESC, t.license_id DESC LIMIT {MATCHES_READ}",
        params.join(", "),
        n + 3
    )
}

fn corrupt(detail: &str) -> Error {
    Error::Ledger(crate::LedgerError::Corrupt {
        detail: detail.to_owned(),
    })
}

fn parse_fingerprint(text: &str) -> Result<Fingerprint> {
    text.trim().parse().map_err(|_| {
        Error::invalid(
            "fingerprint",
            "not a device fingerprint (ksfp1. then base64url, as the SDKs' fingerprint() gives)",
        )
    })
}

/// The trial a stored trial license's key describes.
fn trial_of(license_id: String, license_key: String) -> Result<Trial> {
    let mut buf = [0u8; MAX_LICENSE_LEN];
    let bytes = core_license::decode_text(&license_key, &mut buf)?;
    let lic = UnverifiedLicense::from_bytes(bytes)?;
    // The ledger's own key: its claims are the ones this service signed.
    let c = lic.dangerous_unverified_claims();
    Ok(Trial {
        license_id,
        product: c.product.to_owned(),
        plan: c.plan.to_owned(),
        entitlements: c
            .entitlements
            .as_slice()
            .iter()
            .map(|e| (*e).to_owned())
            .collect(),
        started_at: c.issued_at,
        expires_at: c.expires_at.unwrap_or(c.issued_at),
        license_key,
    })
}

const POLICY_SELECT: &str = "SELECT p.product, t.enabled, t.length_secs, t.plan, t.entitlements, \
     t.device_match, t.updated_at FROM org_products p LEFT JOIN trial_policies t \
     ON t.org_id = p.org_id AND t.product = p.product WHERE p.org_id = $1 AND p.product = $2";

/// A row of [`POLICY_SELECT`]: a product, and its policy if one was set.
#[derive(sqlx::FromRow)]
struct PolicyRow {
    product: String,
    enabled: Option<i64>,
    length_secs: Option<i64>,
    plan: Option<String>,
    entitlements: Option<String>,
    device_match: Option<i64>,
    updated_at: Option<i64>,
}

/// The settings of a [`POLICY_SELECT`] row.
fn settings_of(r: &sqlx::any::AnyRow) -> Result<TrialSettings> {
    let r: PolicyRow = crate::store::read_row(r, "reading the trial policy")?;
    let (Some(enabled), Some(length_secs), Some(plan), Some(entitlements), Some(k), Some(at)) = (
        r.enabled,
        r.length_secs,
        r.plan,
        r.entitlements,
        r.device_match,
        r.updated_at,
    ) else {
        return Ok(TrialSettings {
            product: r.product,
            policy: TrialPolicy::default(),
            updated_at: None,
        });
    };
    Ok(TrialSettings {
        product: r.product,
        policy: TrialPolicy {
            enabled: enabled != 0,
            length_secs: u(length_secs),
            plan,
            entitlements: serde_json::from_str(&entitlements)
                .map_err(|_| corrupt("a trial policy's entitlements are not a JSON list"))?,
            device_match: u8::try_from(k)
                .map_err(|_| corrupt("a trial policy's device match is out of range"))?,
        },
        updated_at: Some(u(at)),
    })
}

impl Store {
    /// The trial policy of one of the organisation's products (trials off
    /// if never set); `None` if there is no such product.
    pub async fn org_trial_policy(
        &self,
        org_id: &str,
        product: &str,
    ) -> Result<Option<TrialSettings>> {
        let rows = self
            .fetch_all(
                sqlx::query(POLICY_SELECT)
                    .bind(org_id.to_owned())
                    .bind(product.to_owned()),
                "reading the trial policy",
            )
            .await?;
        rows.first().map(settings_of).transpose()
    }

    /// Sets the trial policy of one of the organisation's products
    /// (checked with [`TrialPolicy::check`]); trials started from then on
    /// follow it, those running keep their licenses. `None` if there is no
    /// such product.
    pub async fn org_set_trial_policy(
        &self,
        org_id: &str,
        product: &str,
        policy: &TrialPolicy,
        ctx: &Context,
    ) -> Result<Option<TrialSettings>> {
        let policy = policy.check(product, ctx.now)?;
        let mut tx = self.begin_write().await?;
        let exists = tx
            .fetch(
                sqlx::query("SELECT 1 FROM org_products WHERE org_id = $1 AND product = $2")
                    .bind(org_id.to_owned())
                    .bind(product.to_owned()),
                "reading products",
            )
            .await?;
        if exists.is_empty() {
            return Ok(None);
        }
        let entitlements =
            serde_json::to_string(&policy.entitlements).unwrap_or_else(|_| "[]".to_owned());
        tx.exec(
            sqlx::query("DELETE FROM trial_policies WHERE org_id = $1 AND product = $2")
                .bind(org_id.to_owned())
                .bind(product.to_owned()),
            "setting the trial policy",
        )
        .await?;
        tx.exec(
            sqlx::query(
                "INSERT INTO trial_policies (org_id, product, enabled, length_secs, plan, entitlements, \
                 device_match, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(org_id.to_owned())
            .bind(product.to_owned())
            .bind(i64::from(policy.enabled))
            .bind(i(policy.length_secs))
            .bind(policy.plan.clone())
            .bind(entitlements)
            .bind(i64::from(policy.device_match))
            .bind(i(ctx.now)),
            "setting the trial policy",
        )
        .await?;
        tx.audit(
            ctx,
            "product.trial_policy",
            &json!({
                "org_id": org_id,
                "product": product,
                "enabled": policy.enabled,
                "length_secs": policy.length_secs,
                "plan": policy.plan,
                "entitlements": policy.entitlements,
                "device_match": policy.device_match,
            }),
        )
        .await?;
        tx.commit().await?;
        Ok(Some(TrialSettings {
            product: product.to_owned(),
            policy,
            updated_at: Some(ctx.now),
        }))
    }

    /// Starts a trial of the organisation's `product` for the device with
    /// `fingerprint`, signed with `signer` (the organisation's active key):
    /// the match against earlier trial devices and the mint happen in one
    /// write transaction with the `trial.start` audit entry (see the
    /// module's doc). Needs the personal-data keys
    /// ([`Store::unlock_personal_data`]).
    pub async fn trial_start(
        &self,
        org_id: &str,
        signer: &Signer,
        product: &str,
        fingerprint: &str,
        ctx: &Context,
    ) -> Result<Signed<std::result::Result<TrialStarted, TrialRefused>>> {
        let fp = parse_fingerprint(fingerprint)?;
        let seen = self
            .data_keys()?
            .trial_device(org_id, product, fp.components());
        let now = ctx.now;
        // Refused without the writers' lock when the product gives no
        // trials (anyone may ask); read again under the lock below.
        match self.org_trial_policy(org_id, product).await? {
            None => return Ok(Signed::Done(Err(TrialRefused::UnknownProduct))),
            Some(t) if !t.policy.enabled => return Ok(Signed::Done(Err(TrialRefused::Disabled))),
            Some(_) => {}
        }
        let mut tx = self.begin_write().await?;
        let rows = tx
            .fetch(
                sqlx::query(POLICY_SELECT)
                    .bind(org_id.to_owned())
                    .bind(product.to_owned()),
                "reading the trial policy",
            )
            .await?;
        let Some(settings) = rows.first().map(settings_of).transpose()? else {
            return Ok(Signed::Done(Err(TrialRefused::UnknownProduct)));
        };
        let policy = settings.policy;
        if !policy.enabled {
            return Ok(Signed::Done(Err(TrialRefused::Disabled)));
        }
        let found = matches(
            &mut tx,
            org_id,
            product,
            &seen.components,
            policy.device_match,
        )
        .await?;
        if let Some(first) = found.first() {
            let mine = found
                .iter()
                .find(|m| m.device == seen.device && m.revoked_at.is_none() && now <= u(m.ends_at));
            if let Some(m) = mine {
                let key = trial_key(&mut tx, org_id, &m.license_id).await?;
                return Ok(Signed::Done(Ok(TrialStarted::Again(trial_of(
                    m.license_id.clone(),
                    key,
                )?))));
            }
            return Ok(Signed::Done(Err(TrialRefused::Used {
                started_at: u(first.started_at),
                ends_at: u(first.ends_at),
            })));
        }
        if !tx.signer_is_active(org_id, signer.key_id()).await? {
            return Ok(Signed::KeyRotated {
                key_id: signer.key_id(),
            });
        }
        let req = policy.request(product, Some(&fp), now)?;
        let id = crate::ops::license_ids(1)?[0];
        let key = core_license::to_text(&crate::ops::sign_request(signer.key(), id, &req, now)?);
        let lid = id.to_string();
        let ends_at = req.expires_at.unwrap_or(now);
        tx.insert_licenses(&[crate::store::NewLicense {
            org_id,
            max_devices: 1,
            external_id: None,
            metadata: None,
            license_id: id,
            key_id: signer.key_id(),
            product,
            customer: TRIAL_CUSTOMER,
            plan: &req.plan,
            issued_at: now,
            expires_at: req.expires_at,
            license_key: &key,
            batch_id: None,
            batch_row: None,
        }])
        .await?;
        tx.exec(
            sqlx::query(
                "INSERT INTO trials (license_id, org_id, product, device, components, started_at, ends_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(lid.clone())
            .bind(org_id.to_owned())
            .bind(product.to_owned())
            .bind(seen.device.clone())
            .bind(i(seen.components.len() as u64))
            .bind(i(now))
            .bind(i(ends_at)),
            "recording the trial",
        )
        .await?;
        insert_components(&mut tx, org_id, product, &lid, &seen.components).await?;
        tx.audit(
            ctx,
            "trial.start",
            &json!({
                "org_id": org_id,
                "license_id": lid,
                "key_id": signer.key_id().to_string(),
                "product": product,
                "plan": req.plan,
                "customer": TRIAL_CUSTOMER,
                "expires_at": req.expires_at,
            }),
        )
        .await?;
        tx.commit().await?;
        Ok(Signed::Done(Ok(TrialStarted::New(Trial {
            license_id: lid,
            license_key: key,
            product: product.to_owned(),
            plan: req.plan,
            entitlements: req.entitlements,
            started_at: now,
            expires_at: ends_at,
        }))))
    }
}

/// The earlier trials of the product whose device matches one with these
/// component hashes, k of n (see [`match_sql`]), newest first.
async fn matches(
    tx: &mut WriteTx,
    org_id: &str,
    product: &str,
    components: &[String],
    k: u8,
) -> Result<Vec<MatchRow>> {
    let required = usize::from(k).min(components.len());
    let sql = match_sql(components.len());
    let mut q = sqlx::query(&sql)
        .bind(org_id.to_owned())
        .bind(product.to_owned());
    for c in components {
        q = q.bind(c.clone());
    }
    let rows = tx
        .fetch(q.bind(i(required as u64)), "matching earlier trials")
        .await?;
    rows.iter()
        .map(|r| crate::store::read_row(r, "matching earlier trials"))
        .collect()
}

/// The key of one of the organisation's trial licenses.
async fn trial_key(tx: &mut WriteTx, org_id: &str, license_id: &str) -> Result<String> {
    use sqlx::Row;
    let rows = tx
        .fetch(
            sqlx::query(
                "SELECT l.license_key FROM licenses l JOIN org_licenses o ON o.license_id = l.license_id \
                 WHERE o.org_id = $1 AND l.license_id = $2",
            )
            .bind(org_id.to_owned())
            .bind(license_id.to_owned()),
            "reading the trial license",
        )
        .await?;
    rows.first()
        .map(|r| r.try_get::<String, _>(0))
        .transpose()
        .map_err(|e| Error::db("reading the trial license", e))?
        .ok_or_else(|| corrupt("a trial without its license"))
}

async fn insert_components(
    tx: &mut WriteTx,
    org_id: &str,
    product: &str,
    license_id: &str,
    components: &[String],
) -> Result<()> {
    let mut sql = String::from(
        "INSERT INTO trial_components (org_id, product, component, license_id) VALUES ",
    );
    crate::store::values_rows(&mut sql, tx.backend(), components.len(), 4);
    let mut q = sqlx::query(&sql);
    for c in components {
        q = q
            .bind(org_id.to_owned())
            .bind(product.to_owned())
            .bind(c.clone())
            .bind(license_id.to_owned());
    }
    tx.exec(q, "recording the trial device").await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The k-of-n match reads `trial_components` by its primary key from
    /// the new device's components, and `trials` by id: no scan of the
    /// product's (or anyone's) trials.
    #[tokio::test]
    async fn the_match_is_an_index_look_up() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(&tmp.path().join("t.db"), true)
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let sql = format!("EXPLAIN QUERY PLAN {}", match_sql(3));
        let mut q = sqlx::query(&sql);
        for a in ["org_a", "acme-cad", "c1", "c2", "c3"] {
            q = q.bind(a.to_owned());
        }
        let plan: Vec<String> = q
            .bind(2_i64)
            .fetch_all(store.pool())
            .await
            .unwrap()
            .iter()
            .map(|r| sqlx::Row::get::<String, _>(r, 3))
            .collect();
        let plan = plan.join("\n");
        assert!(
            plan.contains("SEARCH trial_components USING COVERING INDEX"),
            "{plan}"
        );
        assert!(plan.contains("SEARCH t USING INDEX"), "{plan}");
        assert!(
            !plan.contains("SCAN trial_components") && !plan.contains("SCAN t "),
            "{plan}"
        );
    }
}
