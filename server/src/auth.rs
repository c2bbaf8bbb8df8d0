//! API tokens (their format is `keyseal_issuer::token`'s, re-exported
//! here): the service stores only the SHA-256 of a token, finds it by that
//! hash and compares the hashes again in constant time. Failed attempts are counted
//! per client (by a salted hash of its IP address, never the address) and
//! a client with too many is refused for a while.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

pub use keyseal_issuer::token::{
    TOKEN_BYTES, TOKEN_PREFIX, new_token, same_hash, token_hash, well_formed,
};

/// Failed authentications a client may make per window, by default.
pub const MAX_FAILURES: u32 = 20;
/// The window, in seconds.
pub const FAILURE_WINDOW_SECS: u64 = 60;

/// Clients tracked at once before expired windows are swept (at most once
/// a second, so a flood of new clients does not rescan the table on every
/// failure).
const SWEEP_AT: usize = 100_000;
/// Most clients tracked at once: past this (after a sweep), a new client's
/// failures are not counted until windows expire, and memory stays bounded.
pub const MAX_CLIENTS: usize = 1_000_000;

/// Failed-authentication counter per client. A client is an IPv4 address
/// or an IPv6 /64 (one host usually holds a whole /64, so rotating the low
/// bits does not escape the limit).
#[derive(Debug)]
pub struct FailureLimiter {
    salt: [u8; 16],
    max: u32,
    clients: Mutex<Clients>,
}

#[derive(Debug, Default)]
struct Clients {
    /// Client key -> (window start, failures in it).
    windows: HashMap<[u8; 32], (u64, u32)>,
    last_sweep: u64,
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
            clients: Mutex::new(Clients::default()),
        })
    }

    /// The salted hash a client is kept as: of its IPv4 address (an
    /// IPv4-mapped IPv6 address counts as IPv4), or of its IPv6 /64.
    #[must_use]
    pub fn client_key(&self, ip: IpAddr) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.salt);
        match ip {
            IpAddr::V4(a) => h.update(a.octets()),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => h.update(v4.octets()),
                None => {
                    h.update(b"v6/64");
                    h.update(&a.octets()[..8]);
                }
            },
        }
        h.finalize().into()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Clients> {
        self.clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether the client is refused right now.
    pub fn blocked(&self, ip: IpAddr, now: u64) -> bool {
        let key = self.client_key(ip);
        self.lock()
            .windows
            .get(&key)
            .is_some_and(|(start, n)| now < start + FAILURE_WINDOW_SECS && *n >= self.max)
    }

    /// Counts a failure.
    pub fn fail(&self, ip: IpAddr, now: u64) {
        let key = self.client_key(ip);
        let mut c = self.lock();
        if c.windows.len() >= SWEEP_AT && c.last_sweep != now {
            c.windows
                .retain(|_, (start, _)| now < *start + FAILURE_WINDOW_SECS);
            c.last_sweep = now;
        }
        if c.windows.len() >= MAX_CLIENTS && !c.windows.contains_key(&key) {
            return;
        }
        let e = c.windows.entry(key).or_insert((now, 0));
        if now >= e.0 + FAILURE_WINDOW_SECS {
            *e = (now, 0);
        }
        e.1 = e.1.saturating_add(1);
    }

    /// Clients tracked now (for tests and metrics).
    #[must_use]
    pub fn tracked(&self) -> usize {
        self.lock().windows.len()
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

    #[test]
    fn an_ipv6_client_is_its_64() -> Result<(), getrandom::Error> {
        let l = FailureLimiter::new()?;
        let a = IpAddr::from([0x2001, 0xdb8, 1, 2, 0, 0, 0, 1]);
        let b = IpAddr::from([0x2001, 0xdb8, 1, 2, 0xffff, 1, 2, 3]);
        let other = IpAddr::from([0x2001, 0xdb8, 1, 3, 0, 0, 0, 1]);
        assert_eq!(l.client_key(a), l.client_key(b));
        assert_ne!(l.client_key(a), l.client_key(other));
        // Rotating the low 64 bits does not escape the limit.
        for n in 0..MAX_FAILURES {
            let ip = IpAddr::from([0x2001, 0xdb8, 1, 2, 0, 0, 7, u16::try_from(n).unwrap_or(0)]);
            l.fail(ip, 1000);
        }
        assert!(l.blocked(a, 1000));
        assert!(!l.blocked(other, 1000));
        // An IPv4-mapped address is its IPv4 client.
        let v4 = std::net::Ipv4Addr::new(192, 0, 2, 1);
        let mapped = IpAddr::from(v4.to_ipv6_mapped());
        let v4 = IpAddr::from(v4);
        assert_eq!(l.client_key(v4), l.client_key(mapped));
        Ok(())
    }

    #[test]
    fn many_clients_are_swept_and_bounded() -> Result<(), getrandom::Error> {
        let l = FailureLimiter::new()?;
        let ip = |n: u32| IpAddr::from(n.to_be_bytes());
        for n in 0..(SWEEP_AT as u32 + 10) {
            l.fail(ip(n), 1000);
        }
        assert_eq!(l.tracked(), SWEEP_AT + 10);
        // A minute later the expired windows go at the next failure.
        l.fail(ip(u32::MAX), 1000 + FAILURE_WINDOW_SECS);
        assert_eq!(l.tracked(), 1);
        Ok(())
    }
}
