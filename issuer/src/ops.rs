//! What the command line's operations take and give (minted licenses,
//! batch options and outcomes, when to publish a list, key certificates),
//! and the one signing step every mint path calls ([`sign_request`]). The
//! operations themselves are the store's (`store::licenses`, `keys`,
//! `revocations`); each runs in one transaction with its audit entry.

use std::collections::BTreeSet;

use keyseal_core::license;
use keyseal_core::{KeyId, LicenseId};

use crate::error::RequestError;
use crate::error::{Error, Result};
use crate::request::{LicenseRequest, RequestFields};

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

/// When [`crate::Store::publish_list`] signs a new list.
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
pub(crate) fn read_and_sign<I>(
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
                let req = fields.resolve(now).map_err(|e| {
                    Error::Request(RequestError::BadRow {
                        row: n,
                        source: Box::new(e),
                    })
                })?;
                if !products.contains(&req.product) {
                    let known = products.iter().cloned().collect();
                    return Err(Error::Request(RequestError::BadRow {
                        row: n,
                        source: Box::new(Error::Request(RequestError::UnknownProduct {
                            product: req.product,
                            known,
                        })),
                    }));
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

pub(crate) fn sign_chunk(
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
            let bytes = sign_request(key, id, &req, now).map_err(|e| {
                Error::Request(RequestError::BadRow {
                    row,
                    source: Box::new(e),
                })
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
