//! The audit log: one entry per mutating action, each chained to the one
//! before it by a SHA-256 hash over a canonical encoding, so an edited,
//! inserted or deleted entry breaks the chain at that point.
//!
//! `hash = SHA-256("keyseal/audit/v1\0" || seq || at || len(actor) || actor
//! || len(action) || action || len(details) || details || prev_hash)` with
//! integers as 8-byte big-endian numbers and `prev_hash` as 32 raw bytes;
//! the first entry's `prev_hash` is all zeros. The ledger also keeps the
//! head (last seq and hash) in `meta`, so dropping entries off the end is
//! detected too.

use serde::Serialize;
use sha2::{Digest, Sha256};

const DOMAIN: &[u8] = b"keyseal/audit/v1\0";
/// The `prev_hash` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One audit entry. `details` is JSON with opaque ids only: never secrets,
/// never personal data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    /// Position in the log, from 1, without gaps.
    pub seq: u64,
    /// When (unix seconds).
    pub at: u64,
    /// Who: the OS user or `KEYSEAL_ACTOR`.
    pub actor: String,
    /// What, for example `license.issue`.
    pub action: String,
    /// JSON details of the action.
    pub details: String,
    /// The previous entry's hash (hex).
    pub prev_hash: String,
    /// This entry's hash (hex).
    pub hash: String,
}

/// The hash of an entry with these fields.
#[must_use]
pub fn entry_hash(
    seq: u64,
    at: u64,
    actor: &str,
    action: &str,
    details: &str,
    prev_hash: &str,
) -> String {
    let mut prev = [0u8; 32];
    if keyseal_core::hex::decode(prev_hash, &mut prev).is_err() {
        prev = [0u8; 32];
    }
    let mut h = Sha256::new();
    h.update(DOMAIN);
    h.update(seq.to_be_bytes());
    h.update(at.to_be_bytes());
    for s in [actor, action, details] {
        h.update((s.len() as u64).to_be_bytes());
        h.update(s.as_bytes());
    }
    h.update(prev);
    keyseal_core::hex::encode(&h.finalize())
}

/// The organisation an entry belongs to (its actor's, `org:ID/...`, or the
/// `org_id` its details name) and the customer it names (`customer_id` or
/// `customer` in its details): the indexed columns beside the chain.
#[must_use]
pub fn refs(actor: &str, details: &serde_json::Value) -> (Option<String>, Option<String>) {
    let text = |k: &str| details.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    let org = actor
        .strip_prefix("org:")
        .and_then(|a| a.split_once('/'))
        .map(|(o, _)| o.to_owned())
        .or_else(|| text("org_id"));
    (org, text("customer_id").or_else(|| text("customer")))
}

/// Where and how the chain is broken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainBreak {
    /// The first entry that does not check out (or the seq where one is missing).
    pub seq: u64,
    /// What is wrong.
    pub problem: String,
}

/// Checks entries given in seq order, and the recorded head, if any.
/// Returns the number of entries checked.
pub fn verify_chain<'a>(
    entries: impl IntoIterator<Item = &'a AuditEntry>,
    head: Option<(u64, &str)>,
) -> Result<u64, ChainBreak> {
    let mut expected_seq = 1;
    let mut prev = GENESIS.to_owned();
    for e in entries {
        if e.seq != expected_seq {
            return Err(ChainBreak {
                seq: expected_seq,
                problem: if e.seq > expected_seq {
                    format!("entries {expected_seq} to {} are missing", e.seq - 1)
                } else {
                    format!("entry {} appears out of order", e.seq)
                },
            });
        }
        if e.prev_hash != prev {
            return Err(ChainBreak {
                seq: e.seq,
                problem: "its prev_hash does not match the previous entry (an entry before it was changed or removed)".into(),
            });
        }
        let h = entry_hash(e.seq, e.at, &e.actor, &e.action, &e.details, &e.prev_hash);
        if h != e.hash {
            return Err(ChainBreak {
                seq: e.seq,
                problem: "its contents do not match its hash (the entry was edited)".into(),
            });
        }
        prev.clone_from(&e.hash);
        expected_seq += 1;
    }
    let last = expected_seq - 1;
    if let Some((head_seq, head_hash)) = head
        && (head_seq != last || (last > 0 && head_hash != prev))
    {
        return Err(ChainBreak {
            seq: last + 1,
            problem: format!(
                "the log ends at entry {last} but the ledger recorded entry {head_seq} as the last (entries were removed from the end)"
            ),
        });
    }
    Ok(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: u64) -> Vec<AuditEntry> {
        let mut prev = GENESIS.to_owned();
        (1..=n)
            .map(|seq| {
                let details = format!("{{\"n\":{seq}}}");
                let hash = entry_hash(seq, 100 + seq, "alice", "test.do", &details, &prev);
                let e = AuditEntry {
                    seq,
                    at: 100 + seq,
                    actor: "alice".into(),
                    action: "test.do".into(),
                    details,
                    prev_hash: prev.clone(),
                    hash: hash.clone(),
                };
                prev = hash;
                e
            })
            .collect()
    }

    #[test]
    fn detects_edit_delete_and_truncation() {
        let c = chain(5);
        let head = (5, c[4].hash.as_str());
        assert_eq!(verify_chain(&c, Some(head)), Ok(5));
        let mut edited = c.clone();
        edited[2].actor = "mallory".into();
        assert_eq!(verify_chain(&edited, Some(head)).unwrap_err().seq, 3);
        let mut deleted = c.clone();
        deleted.remove(1);
        assert_eq!(verify_chain(&deleted, Some(head)).unwrap_err().seq, 2);
        let truncated = &c[..4];
        assert_eq!(verify_chain(truncated, Some(head)).unwrap_err().seq, 5);
        // Renumbered after a deletion: the prev_hash link is what breaks.
        let mut renumbered = deleted.clone();
        for (i, e) in renumbered.iter_mut().enumerate() {
            e.seq = i as u64 + 1;
        }
        assert_eq!(verify_chain(&renumbered, None).unwrap_err().seq, 2);
    }
}
