//! API tokens: `ksk_` and 43 base64url characters (256 random bits). The
//! service stores only the SHA-256 of a token, finds it by that hash and
//! compares the hashes again in constant time. Failed attempts are counted
//! per client (by a salted hash of its IP address, never the address) and
//! a client with too many is refused for a while.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use base64ct::{Base64UrlUnpadded, Encoding};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Every token starts with this, so secret scanners recognise it.
pub const TOKEN_PREFIX: &str = "ksk_";
/// Random bytes in a token.
pub const TOKEN_BYTES: usize = 32;
/// Failed authentications a client may make per window, by default.
pub const MAX_FAILURES: u32 = 20;
/// The window, in seconds.
pub const FAILURE_WINDOW_SECS: u64 = 60;

/// A new random token (the secret, shown once).
pub fn new_token() -> Result<String, getrandom::Error> {
    let mut b = [0u8; TOKEN_BYTES];
    getrandom::fill(&mut b)?;
    Ok(format!(
        "{TOKEN_PREFIX}{}",
        Base64UrlUnpadded::encode_string(&b)
    ))
}

/// Lower-case hex SHA-256 of a token: what the ledger stores.
#[must_use]
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// Whether a token has the right shape (checked before any lookup).
#[must_use]
pub fn well_formed(token: &str) -> bool {
    token.len() == TOKEN_PREFIX.len() + 43
        && token.starts_with(TOKEN_PREFIX)
        && token[TOKEN_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Constant-time equality of two hashes.
#[must_use]
pub fn same_hash(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// Lower-case hex.
#[must_use]
pub fn hex_string(bytes: &[u8]) -> String {
    hex(bytes)
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Failed-authentication counter per client.
#[derive(Debug)]
pub struct FailureLimiter {
    salt: [u8; 16],
    max: u32,
    clients: Mutex<HashMap<[u8; 32], (u64, u32)>>,
}

impl FailureLimiter {
    /// A limiter with a fresh random salt.
    pub fn new() -> Result<Self, getrandom::Error> {
        Self::with_limit(MAX_FAILURES)
    }

    /// A limiter allowing `max` failures per window.
    pub fn with_limit(max: u32) -> Result<Self, getrandom::Error> {
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt)?;
        Ok(FailureLimiter {
            salt,
            max,
            clients: Mutex::new(HashMap::new()),
        })
    }

    /// The salted hash a client's address is kept as.
    #[must_use]
    pub fn client_key(&self, ip: IpAddr) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.salt);
        h.update(ip.to_string().as_bytes());
        h.finalize().into()
    }

    /// Whether the client is refused right now.
    pub fn blocked(&self, ip: IpAddr, now: u64) -> bool {
        let key = self.client_key(ip);
        let map = self
            .clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(&key)
            .is_some_and(|(start, n)| now < start + FAILURE_WINDOW_SECS && *n >= self.max)
    }

    /// Counts a failure.
    pub fn fail(&self, ip: IpAddr, now: u64) {
        let key = self.client_key(ip);
        let mut map = self
            .clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() > 100_000 {
            map.retain(|_, (start, _)| now < *start + FAILURE_WINDOW_SECS);
        }
        let e = map.entry(key).or_insert((now, 0));
        if now >= e.0 + FAILURE_WINDOW_SECS {
            *e = (now, 0);
        }
        e.1 = e.1.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_well_formed_and_distinct() -> Result<(), getrandom::Error> {
        let a = new_token()?;
        let b = new_token()?;
        assert!(well_formed(&a) && well_formed(&b));
        assert_ne!(a, b);
        assert!(!well_formed("ksk_short"));
        assert!(!well_formed(&a.replace("ksk_", "xyz_")));
        assert_eq!(token_hash(&a).len(), 64);
        assert!(same_hash(&token_hash(&a), &token_hash(&a)));
        assert!(!same_hash(&token_hash(&a), &token_hash(&b)));
        Ok(())
    }

    #[test]
    fn limiter_blocks_after_too_many_failures_then_forgets() -> Result<(), getrandom::Error> {
        let l = FailureLimiter::new()?;
        let ip: IpAddr = [127, 0, 0, 9].into();
        for _ in 0..MAX_FAILURES {
            assert!(!l.blocked(ip, 1000));
            l.fail(ip, 1000);
        }
        assert!(l.blocked(ip, 1000));
        assert!(!l.blocked([127, 0, 0, 8].into(), 1000));
        assert!(!l.blocked(ip, 1000 + FAILURE_WINDOW_SECS));
        Ok(())
    }
}
