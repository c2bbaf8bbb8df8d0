//! Air-gapped activation codes (docs/FORMAT.md, "Activation codes"): a
//! device with no network shows a **request code** (its license, a proof
//! that it holds the license key, its device binding and an installation
//! public key); the vendor answers with a **response code** that carries
//! the lease. Both are short enough for a QR code in alphanumeric mode
//! (Crockford base32 in upper case, in groups of five) and end in a
//! checksum that catches typos.
//!
//! Crockford base32 is written here (30 lines) rather than taken from a
//! crate: keyseal-core is `no_std` and every byte of it ends up in the
//! WebAssembly SDK.

use sha2::{Digest, Sha512};

use crate::claims::{DEVICE_HINT_LEN, LicenseId};
use crate::device::{BINDING_HASH_LEN, Fingerprint};
use crate::error::{Error, Malformed};
use crate::key::PublicKey;
use crate::lease::MAX_LEASE_LEN;

/// Prefix of a request code.
pub const REQUEST_PREFIX: &str = "KSREQ1.";
/// Prefix of a response code.
pub const RESPONSE_PREFIX: &str = "KSRES1.";
/// Bytes of a request before its checksum.
const REQUEST_LEN: usize = 1 + 16 + PROOF_LEN + BINDING_HASH_LEN + DEVICE_HINT_LEN + 32;
/// Length of the license-key proof.
pub const PROOF_LEN: usize = 8;
/// Length of the checksum that ends a code.
pub const CHECKSUM_LEN: usize = 4;
/// Length of the code text for `n` payload bytes: the prefix, one symbol
/// per 5 bits of payload and checksum, a dash between groups of five.
const fn code_len(prefix: &str, n: usize) -> usize {
    let symbols = ((n + CHECKSUM_LEN) * 8).div_ceil(5);
    prefix.len() + symbols + (symbols - 1) / 5
}
/// Length of every request code.
pub const REQUEST_CODE_LEN: usize = code_len(REQUEST_PREFIX, REQUEST_LEN);
/// Longest code text (a response carrying the longest lease).
pub const MAX_CODE_LEN: usize = code_len(RESPONSE_PREFIX, MAX_LEASE_LEN);

const PROOF_DOMAIN: &[u8] = b"keyseal/activation-request/v1\0";
const CHECKSUM_DOMAIN: &[u8] = b"keyseal/activation-code/v1\0";
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// What a device asks the vendor for, offline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActivationRequest {
    /// The license.
    pub license_id: LicenseId,
    /// `SHA-512("keyseal/activation-request/v1\0" || binary license)[0..8]`:
    /// the device holds the key, not only its id (ids are on revocation lists).
    pub license_proof: [u8; PROOF_LEN],
    /// The device binding hash `D[0..32]` (docs/FORMAT.md) of the license
    /// id and this device's fingerprint.
    pub binding_hash: [u8; BINDING_HASH_LEN],
    /// `D[32..34]`.
    pub device_hint: [u8; DEVICE_HINT_LEN],
    /// The installation's public key (check-ins and releases, when the
    /// device is online later, are signed with it).
    pub public_key: PublicKey,
}

/// The proof that a request's maker holds the binary license `license`.
#[must_use]
pub fn license_proof(license: &[u8]) -> [u8; PROOF_LEN] {
    let d = Sha512::new()
        .chain_update(PROOF_DOMAIN)
        .chain_update(license)
        .finalize();
    let mut p = [0u8; PROOF_LEN];
    p.copy_from_slice(&d[..PROOF_LEN]);
    p
}

fn checksum(payload: &[u8]) -> [u8; CHECKSUM_LEN] {
    let d = Sha512::new()
        .chain_update(CHECKSUM_DOMAIN)
        .chain_update(payload)
        .finalize();
    let mut c = [0u8; CHECKSUM_LEN];
    c.copy_from_slice(&d[..CHECKSUM_LEN]);
    c
}

impl ActivationRequest {
    /// The request of the device with fingerprint `fp` for the license
    /// whose binary form is `license` (decoded from its key text), with
    /// the installation key `public_key`.
    pub fn new(license: &[u8], fp: &Fingerprint, public_key: PublicKey) -> Result<Self, Error> {
        let lic = crate::license::UnverifiedLicense::from_bytes(license)?;
        let license_id = lic.dangerous_unverified_claims().license_id;
        let (binding_hash, device_hint) = fp.exact_binding(&license_id);
        Ok(ActivationRequest {
            license_id,
            license_proof: license_proof(license),
            binding_hash,
            device_hint,
            public_key,
        })
    }

    /// Whether the request's proof is that of `license` (compared without
    /// an early exit).
    #[must_use]
    pub fn proves(&self, license: &[u8]) -> bool {
        let want = license_proof(license);
        want.iter()
            .zip(self.license_proof.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }

    #[cfg(feature = "alloc")]
    fn to_bytes(self) -> [u8; REQUEST_LEN] {
        let mut b = [0u8; REQUEST_LEN];
        b[0] = 1;
        let mut at = 1;
        for part in [
            &self.license_id.to_bytes()[..],
            &self.license_proof,
            &self.binding_hash,
            &self.device_hint,
            &self.public_key.to_bytes(),
        ] {
            b[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
        b
    }

    /// Decodes a request code: prefix, base32 (case, `-`, spaces and line
    /// breaks ignored; `O` read as `0`, `I` and `L` as `1`), checksum.
    pub fn from_code(text: &str) -> Result<Self, Error> {
        let mut buf = [0u8; REQUEST_LEN + CHECKSUM_LEN + 4];
        let b = decode_code(text, REQUEST_PREFIX, &mut buf)?;
        if b.len() != REQUEST_LEN {
            return Err(Malformed::Truncated.into());
        }
        if b[0] != 1 {
            return Err(Error::UnsupportedVersion(b[0]));
        }
        let take = |from: usize, to: usize| &b[from..to];
        let mut id = [0u8; 16];
        id.copy_from_slice(take(1, 17));
        let mut license_proof = [0u8; PROOF_LEN];
        license_proof.copy_from_slice(take(17, 25));
        let mut binding_hash = [0u8; BINDING_HASH_LEN];
        binding_hash.copy_from_slice(take(25, 57));
        let mut device_hint = [0u8; DEVICE_HINT_LEN];
        device_hint.copy_from_slice(take(57, 59));
        let mut pk = [0u8; 32];
        pk.copy_from_slice(take(59, 91));
        Ok(ActivationRequest {
            license_id: LicenseId::from_bytes(id),
            license_proof,
            binding_hash,
            device_hint,
            public_key: PublicKey::from_bytes(&pk)?,
        })
    }

    /// The request code (`KSREQ1.` then groups of five).
    #[cfg(feature = "alloc")]
    #[must_use]
    pub fn to_code(&self) -> alloc::string::String {
        encode_code(REQUEST_PREFIX, &self.to_bytes())
    }
}

/// The response code that carries the binary `lease`.
#[cfg(feature = "alloc")]
#[must_use]
pub fn response_code(lease: &[u8]) -> alloc::string::String {
    encode_code(RESPONSE_PREFIX, lease)
}

/// The binary lease a response code carries (into `buf`); the lease itself
/// is verified as any lease is.
pub fn lease_from_response<'b>(
    text: &str,
    buf: &'b mut [u8; MAX_LEASE_LEN + CHECKSUM_LEN + 4],
) -> Result<&'b [u8], Error> {
    decode_code(text, RESPONSE_PREFIX, buf)
}

#[cfg(feature = "alloc")]
fn encode_code(prefix: &str, payload: &[u8]) -> alloc::string::String {
    let sum = checksum(payload);
    let mut s = alloc::string::String::with_capacity(MAX_CODE_LEN);
    s.push_str(prefix);
    let mut acc: u32 = 0;
    let mut bits = 0;
    let mut n = 0;
    let mut push = |s: &mut alloc::string::String, v: u32| {
        if n > 0 && n % 5 == 0 {
            s.push('-');
        }
        s.push(char::from(ALPHABET[(v & 31) as usize]));
        n += 1;
    };
    for &byte in payload.iter().chain(sum.iter()) {
        acc = (acc << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            push(&mut s, acc >> bits);
        }
    }
    if bits > 0 {
        push(&mut s, acc << (5 - bits));
    }
    s
}

fn symbol(c: u8) -> Option<u32> {
    let c = match c.to_ascii_uppercase() {
        b'O' => b'0',
        b'I' | b'L' => b'1',
        c => c,
    };
    ALPHABET.iter().position(|&a| a == c).map(|p| p as u32)
}

/// Decodes `prefix` (any case) and base32 into `buf`, checks and strips the
/// checksum.
fn decode_code<'b>(text: &str, prefix: &str, buf: &'b mut [u8]) -> Result<&'b [u8], Error> {
    let text = text.trim();
    let head = text.get(..prefix.len()).ok_or(Malformed::Prefix)?;
    if !head.eq_ignore_ascii_case(prefix) {
        return Err(Malformed::Prefix.into());
    }
    let mut acc: u32 = 0;
    let mut bits = 0;
    let mut len = 0;
    for &c in &text.as_bytes()[prefix.len()..] {
        if c == b'-' || c.is_ascii_whitespace() {
            continue;
        }
        let v = symbol(c).ok_or(Malformed::Base64)?;
        acc = ((acc << 5) | v) & 0xffff;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            *buf.get_mut(len).ok_or(Malformed::TooLong)? = (acc >> bits) as u8;
            len += 1;
        }
    }
    // Unused bits of the last symbol must be zero (one spelling per code).
    if bits >= 5 || acc & ((1 << bits) - 1) != 0 {
        return Err(Malformed::Base64.into());
    }
    if len < CHECKSUM_LEN {
        return Err(Malformed::Truncated.into());
    }
    let (payload, sum) = buf[..len].split_at(len - CHECKSUM_LEN);
    if checksum(payload) != sum {
        return Err(Malformed::Checksum.into());
    }
    Ok(&buf[..len - CHECKSUM_LEN])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::SigningKey;

    #[test]
    fn codes_round_trip_fit_a_qr_code_and_catch_typos() {
        let key = SigningKey::from_seed(&[3; 32]).unwrap();
        let claims = crate::Claims::new(LicenseId::from_bytes([1; 16]), "app", "cus_1", "pro", 1);
        let lic = crate::license::issue(&key, &claims, None).unwrap();
        let fp = Fingerprint::from_components(&[[5; 16], [6; 16]]).unwrap();
        let r = ActivationRequest::new(&lic, &fp, key.public_key()).unwrap();
        let code = r.to_code();
        // docs/FORMAT.md: 189 characters for a request, at most 278 for a response.
        assert_eq!(
            (code.len(), REQUEST_CODE_LEN, MAX_CODE_LEN),
            (189, 189, 278)
        );
        assert!(
            code.bytes()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || b".-".contains(&c))
        );
        let back = ActivationRequest::from_code(&code).unwrap();
        assert_eq!(back, r);
        assert!(back.proves(&lic));
        assert_eq!(back.binding_hash, fp.exact_binding(&claims.license_id).0);
        // Lower case, spaces, O for 0 and L for 1 read the same.
        let (head, body) = code.split_at(REQUEST_PREFIX.len());
        let sloppy = alloc::format!(
            "{}{}",
            head.to_lowercase(),
            body.to_lowercase()
                .replace('-', " ")
                .replace('0', "o")
                .replace('1', "l")
        );
        assert_eq!(ActivationRequest::from_code(&sloppy).unwrap(), r);
        // Any one symbol changed is caught.
        let body = REQUEST_PREFIX.len();
        for i in (body..code.len()).filter(|&i| code.as_bytes()[i] != b'-') {
            let mut typo = code.clone().into_bytes();
            typo[i] = if typo[i] == b'2' { b'3' } else { b'2' };
            let typo = alloc::string::String::from_utf8(typo).unwrap();
            assert!(ActivationRequest::from_code(&typo).is_err(), "{typo}");
        }
        // Responses: the longest lease fits.
        let long = [0xffu8; MAX_LEASE_LEN];
        let resp = response_code(&long);
        assert_eq!(resp.len(), MAX_CODE_LEN);
        let mut buf = [0u8; MAX_LEASE_LEN + CHECKSUM_LEN + 4];
        assert_eq!(lease_from_response(&resp, &mut buf).unwrap(), &long[..]);
        assert_eq!(
            lease_from_response(&code, &mut buf),
            Err(Malformed::Prefix.into())
        );
    }
}
