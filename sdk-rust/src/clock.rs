//! Where "now" comes from: injected, never read from a global.
//!
//! The validator never trusts the clock alone: it checks licenses at
//! `max(clock, high-water mark)` (see [`crate::state`]), so turning the clock
//! back cannot extend a license.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::MaybeSendSync;

/// A source of the current time, in unix seconds.
///
/// Object safe, so bindings implement it over their runtime's clock
/// (`Date.now()` in JavaScript, `time.time()` in Python).
pub trait Clock: MaybeSendSync {
    /// The current time in unix seconds.
    fn now(&self) -> u64;
}

/// The operating system's wall clock. A time before 1970 reads as 0.
#[cfg(keyseal_os)]
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

#[cfg(keyseal_os)]
impl Clock for SystemClock {
    fn now(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }
}

/// A clock that reads whatever it was last set to: for tests, replays and
/// bindings that push the time in.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    /// A clock reading `now`.
    #[must_use]
    pub const fn new(now: u64) -> Self {
        ManualClock(AtomicU64::new(now))
    }

    /// Sets the time.
    pub fn set(&self, now: u64) {
        self.0.store(now, Ordering::Relaxed);
    }

    /// Moves the time forward by `secs` (saturating).
    pub fn advance(&self, secs: u64) {
        let _ = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                Some(t.saturating_add(secs))
            });
    }
}

impl Clock for ManualClock {
    fn now(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A clock over a closure, for example one that asks the host runtime.
pub struct FnClock<F>(F);

/// A clock that calls `f` for the time.
pub fn from_fn<F: Fn() -> u64 + MaybeSendSync>(f: F) -> FnClock<F> {
    FnClock(f)
}

impl<F: Fn() -> u64 + MaybeSendSync> Clock for FnClock<F> {
    fn now(&self) -> u64 {
        (self.0)()
    }
}

impl<F> std::fmt::Debug for FnClock<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FnClock")
    }
}

impl<T: Clock + ?Sized> Clock for Box<T> {
    fn now(&self) -> u64 {
        (**self).now()
    }
}

impl<T: Clock + ?Sized> Clock for Arc<T> {
    fn now(&self) -> u64 {
        (**self).now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(100);
        assert_eq!(c.now(), 100);
        c.advance(5);
        assert_eq!(c.now(), 105);
        c.set(7);
        assert_eq!(c.now(), 7);
        c.advance(u64::MAX);
        assert_eq!(c.now(), u64::MAX);
        let f = from_fn(|| 42);
        assert_eq!(f.now(), 42);
        let shared: Arc<dyn Clock> = Arc::new(ManualClock::new(9));
        assert_eq!(shared.now(), 9);
    }

    #[cfg(keyseal_os)]
    #[test]
    fn system_clock_is_after_2020() {
        assert!(SystemClock.now() > 1_577_836_800);
    }
}
