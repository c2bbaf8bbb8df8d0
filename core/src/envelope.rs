//! The envelope every signed keyseal object shares:
//! `version (1) | signer key id (8) | body | signature (64)`.

use crate::error::{Error, Malformed};
use crate::key::{KEY_ID_LEN, KeyId};

/// Length of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;
/// Bytes of envelope around the body.
pub const OVERHEAD: usize = 1 + KEY_ID_LEN + SIGNATURE_LEN;

/// A split, not yet verified envelope.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Envelope<'a> {
    pub key_id: KeyId,
    pub body: &'a [u8],
    /// Every byte before the signature: what the signature covers after the domain.
    pub signed: &'a [u8],
    pub signature: [u8; SIGNATURE_LEN],
}

/// Splits `bytes`, checking the version byte and the size bounds.
pub(crate) fn split(bytes: &[u8], version: u8, max_len: usize) -> Result<Envelope<'_>, Error> {
    let Some(&v) = bytes.first() else {
        return Err(Malformed::Truncated.into());
    };
    if v != version {
        return Err(Error::UnsupportedVersion(v));
    }
    if bytes.len() <= OVERHEAD {
        return Err(Malformed::Truncated.into());
    }
    if bytes.len() > max_len {
        return Err(Malformed::TooLong.into());
    }
    let (signed, sig) = bytes.split_at(bytes.len() - SIGNATURE_LEN);
    let mut id = [0u8; KEY_ID_LEN];
    id.copy_from_slice(&signed[1..1 + KEY_ID_LEN]);
    let mut signature = [0u8; SIGNATURE_LEN];
    signature.copy_from_slice(sig);
    Ok(Envelope {
        key_id: KeyId::from_bytes(id),
        body: &signed[1 + KEY_ID_LEN..],
        signed,
        signature,
    })
}

/// Builds and signs an envelope around `body`; `extra` is signed but not carried.
#[cfg(feature = "sign")]
pub(crate) fn seal(
    key: &crate::key::SigningKey,
    domain: &[u8],
    version: u8,
    body: &[u8],
    extra: &[u8],
) -> alloc::vec::Vec<u8> {
    let mut out = alloc::vec::Vec::with_capacity(OVERHEAD + body.len());
    out.push(version);
    out.extend_from_slice(&key.key_id().to_bytes());
    out.extend_from_slice(body);
    let sig = key.sign_domain(domain, &out, extra);
    out.extend_from_slice(&sig);
    out
}
