//! Device activations (`keyseal serve`): a device presents its fingerprint
//! for a license; while the license has a free seat (fewer active devices
//! than its `max_devices`) the service signs a device-bound key for it: the
//! same license id and claims, bound to that fingerprint. Deactivating frees
//! the seat. Every query is scoped to one organisation, and the seat count
//! is checked inside the write transaction, so concurrent activations never
//! exceed the limit.

use keyseal_core::device::{DeviceRule, Fingerprint};
use keyseal_core::license::{self, MAX_LICENSE_LEN, UnverifiedLicense};
use serde_json::json;
use sqlx::any::AnyRow;

use crate::Context;
use crate::error::{Error, Result};
use crate::store::{Signed, Store, i, u};
use crate::vault::Signer;

/// An activation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activation {
    /// Its id, `act_` and 16 hex digits.
    pub activation_id: String,
    /// The license.
    pub license_id: String,
    /// The device's `ksfp1.` fingerprint (salted hashes only).
    pub fingerprint: String,
    /// The device-bound license key.
    pub device_key: String,
    /// The signing key that signed it.
    pub key_id: String,
    /// When it was made.
    pub created_at: u64,
    /// When it was deactivated, if it was.
    pub deactivated_at: Option<u64>,
}

/// What an activation request found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Activated {
    /// A new seat was taken.
    New(Activation),
    /// The device already holds a seat; its activation is returned again.
    Existing(Activation),
}

/// Why an activation was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// No such license in the organisation.
    NotFound,
    /// The license is revoked.
    Revoked,
    /// The license is suspended.
    Suspended,
    /// The license expired (its grace included): a device-bound key of it
    /// would not validate anyway, and must not take a seat.
    Expired {
        /// Its expiry.
        expired_at: u64,
    },
    /// Every seat is taken.
    DeviceLimit {
        /// The license's limit.
        max_devices: u64,
    },
}

const SELECT: &str = "SELECT activation_id, license_id, fingerprint, device_key, device_key_id, created_at, deactivated_at FROM activations";

/// A row of [`SELECT`].
#[derive(sqlx::FromRow)]
struct ActivationRow {
    activation_id: String,
    license_id: String,
    fingerprint: String,
    device_key: Option<String>,
    device_key_id: String,
    created_at: i64,
    deactivated_at: Option<i64>,
}

fn from_row(r: &AnyRow) -> Result<Activation> {
    let r: ActivationRow = crate::store::read_row(r, "reading activations")?;
    Ok(Activation {
        activation_id: r.activation_id,
        license_id: r.license_id,
        fingerprint: r.fingerprint,
        device_key: r.device_key.unwrap_or_default(),
        key_id: r.device_key_id,
        created_at: u(r.created_at),
        deactivated_at: r.deactivated_at.map(u),
    })
}

/// Signs the license's claims again, bound to `fp` and issued `now`,
/// through the issuer's one signing step ([`crate::ops::sign_request`]).
fn device_key(
    signer: &Signer,
    license_key: &str,
    fp: &Fingerprint,
    rule: DeviceRule,
    now: u64,
) -> Result<String> {
    let mut buf = [0u8; MAX_LICENSE_LEN];
    let bytes = license::decode_text(license_key, &mut buf)?;
    let lic = UnverifiedLicense::from_bytes(bytes)?;
    // The ledger's own key: its claims are ours (it was signed and stored here).
    let c = lic.dangerous_unverified_claims();
    let req = crate::request::LicenseRequest {
        product: c.product.to_owned(),
        customer: c.customer.to_owned(),
        plan: c.plan.to_owned(),
        not_before: c.not_before,
        expires_at: c.expires_at,
        grace_secs: c.grace_secs,
        device: Some((*fp, rule)),
        entitlements: c
            .entitlements
            .as_slice()
            .iter()
            .map(|e| (*e).to_owned())
            .collect(),
        max_version: c.max_version,
        ext: c
            .extensions
            .as_slice()
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        external_id: None,
    };
    let out = crate::ops::sign_request(signer.key(), c.license_id, &req, now)?;
    Ok(license::to_text(&out))
}

impl Store {
    /// Activates a device for one of the organisation's licenses.
    pub async fn org_activate(
        &self,
        org_id: &str,
        signer: &Signer,
        license_id: &str,
        fingerprint: &str,
        device_match: Option<u8>,
        ctx: &Context,
    ) -> Result<Signed<std::result::Result<Activated, Refused>>> {
        let fp: Fingerprint = fingerprint.trim().parse().map_err(|_| {
            Error::invalid(
                "fingerprint",
                "not a device fingerprint (ksfp1. then base64url, as `keyseal fingerprint` prints)",
            )
        })?;
        let n = fp.components().len();
        let rule = match device_match {
            None => DeviceRule::Exact,
            Some(k) if (1..=n).contains(&usize::from(k)) => DeviceRule::AtLeast(k),
            Some(_) => {
                return Err(Error::invalid(
                    "device_match",
                    format!("must be from 1 to {n} (the fingerprint's components)"),
                ));
            }
        };
        let canonical = fp.to_string();
        let Some(lic) = self.org_license(org_id, license_id).await? else {
            return Ok(Signed::Done(Err(Refused::NotFound)));
        };
        let lid = lic.record.license_id.to_string();
        if lic.record.revoked.is_some() {
            return Ok(Signed::Done(Err(Refused::Revoked)));
        }
        if lic.suspended_at.is_some() {
            return Ok(Signed::Done(Err(Refused::Suspended)));
        }
        {
            let mut buf = [0u8; MAX_LICENSE_LEN];
            let bytes = license::decode_text(&lic.record.license_key, &mut buf)?;
            let c = *UnverifiedLicense::from_bytes(bytes)?.dangerous_unverified_claims();
            if let Some(expired_at) = c.expires_at
                && ctx.now > expired_at.saturating_add(u64::from(c.grace_secs))
            {
                return Ok(Signed::Done(Err(Refused::Expired { expired_at })));
            }
        }
        let key = device_key(signer, &lic.record.license_key, &fp, rule, ctx.now)?;
        let mut tx = self.begin_write().await?;
        let active = tx
            .fetch(
                sqlx::query(&format!("{SELECT} WHERE org_id = $1 AND license_id = $2 AND deactivated_at IS NULL ORDER BY created_at"))
                    .bind(org_id.to_owned())
                    .bind(lid.clone()),
                "reading activations",
            )
            .await?
            .iter()
            .map(from_row)
            .collect::<Result<Vec<_>>>()?;
        if let Some(a) = active.iter().find(|a| a.fingerprint == canonical) {
            return Ok(Signed::Done(Ok(Activated::Existing(a.clone()))));
        }
        if active.len() as u64 >= lic.max_devices {
            return Ok(Signed::Done(Err(Refused::DeviceLimit {
                max_devices: lic.max_devices,
            })));
        }
        if !tx.signer_is_active(org_id, signer.key_id()).await? {
            return Ok(Signed::KeyRotated {
                key_id: signer.key_id(),
            });
        }
        let mut rnd = [0u8; 8];
        getrandom::fill(&mut rnd)?;
        let a = Activation {
            activation_id: format!("act_{}", keyseal_core::hex::encode(&rnd)),
            license_id: lid.clone(),
            fingerprint: canonical,
            device_key: key,
            key_id: signer.key_id().to_string(),
            created_at: ctx.now,
            deactivated_at: None,
        };
        tx.exec(
            sqlx::query(
                "INSERT INTO activations (activation_id, org_id, license_id, fingerprint, device_key_id, created_at, device_key) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(a.activation_id.clone())
            .bind(org_id.to_owned())
            .bind(lid.clone())
            .bind(a.fingerprint.clone())
            .bind(a.key_id.clone())
            .bind(i(ctx.now))
            .bind(a.device_key.clone()),
            "recording the activation",
        )
        .await?;
        tx.audit(
            ctx,
            "license.activate",
            &json!({ "org_id": org_id, "license_id": lid, "activation_id": a.activation_id }),
        )
        .await?;
        tx.commit().await?;
        Ok(Signed::Done(Ok(Activated::New(a))))
    }

    /// The activations of one of the organisation's licenses, by id after
    /// `after`, at most `limit` (`u64::MAX`: all, for exports).
    pub async fn org_activations(
        &self,
        org_id: &str,
        license_id: &str,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Option<Vec<Activation>>> {
        let Some(lic) = self.org_license(org_id, license_id).await? else {
            return Ok(None);
        };
        let cap = if limit == u64::MAX {
            String::new()
        } else {
            format!(" LIMIT {}", limit.clamp(1, crate::service::MAX_PAGE))
        };
        let rows = sqlx::query(&format!(
            "{SELECT} WHERE org_id = $1 AND license_id = $2 AND activation_id > $3 ORDER BY activation_id{cap}"
        ))
        .bind(org_id.to_owned())
        .bind(lic.record.license_id.to_string())
        .bind(after.unwrap_or("").to_owned())
        .fetch_all(self.pool())
        .await
        .map_err(|e| Error::db("reading activations", e))?;
        rows.iter()
            .map(from_row)
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }

    /// Deactivates one activation of one of the organisation's licenses,
    /// freeing its seat (idempotent). `None` if there is no such activation.
    pub async fn org_deactivate(
        &self,
        org_id: &str,
        license_id: &str,
        activation_id: &str,
        ctx: &Context,
    ) -> Result<Option<Activation>> {
        let Some(lic) = self.org_license(org_id, license_id).await? else {
            return Ok(None);
        };
        let lid = lic.record.license_id.to_string();
        let mut tx = self.begin_write().await?;
        let n = tx
            .exec(
                sqlx::query(
                    "UPDATE activations SET deactivated_at = COALESCE(deactivated_at, $1) \
                     WHERE org_id = $2 AND license_id = $3 AND activation_id = $4",
                )
                .bind(i(ctx.now))
                .bind(org_id.to_owned())
                .bind(lid.clone())
                .bind(activation_id.to_owned()),
                "deactivating",
            )
            .await?;
        if n == 0 {
            return Ok(None);
        }
        tx.audit(
            ctx,
            "license.deactivate",
            &json!({ "org_id": org_id, "license_id": lid, "activation_id": activation_id }),
        )
        .await?;
        let rows = tx
            .fetch(
                sqlx::query(&format!(
                    "{SELECT} WHERE org_id = $1 AND activation_id = $2"
                ))
                .bind(org_id.to_owned())
                .bind(activation_id.to_owned()),
                "reading activations",
            )
            .await?;
        let a = rows.first().map(from_row).transpose()?;
        tx.commit().await?;
        Ok(a)
    }
}
