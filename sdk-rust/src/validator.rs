//! The [`Validator`]: a license key in, a [`License`] or a [`Rejection`] out.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

use keyseal_core::lease::LEASE_BUF_LEN;
use keyseal_core::license::{self as core_license, MAX_LICENSE_LEN, MAX_LICENSE_TEXT_LEN};
use keyseal_core::{
    Claims, Error as CoreError, Expectations, Fingerprint, Keyring, LeaseFault, Malformed,
    RevocationList, Timing, UnverifiedLease, UnverifiedLicense, Version,
};

use crate::clock::Clock;
use crate::fingerprint::Fingerprinter;
use crate::input;
use crate::license::{Lease, License, Status};
use crate::problem::{Problem, Rejection};
use crate::state::{ListMark, MemoryStateStore, State, StateStore};

/// Default clock tolerance: how far behind the high-water mark the clock may
/// be before it is suspect (1 hour).
pub const DEFAULT_CLOCK_TOLERANCE: u64 = 3_600;
/// How far past the clock a vendor-signed time (a license's issue time, a
/// revocation list's) may be and still raise the high-water mark: one day.
/// A later one is no evidence of the time (the vendor's clock, a typo, or a
/// leaked key could have put it there), so one license or list dated in the
/// future can never expire the other licenses on the machine; the mark is
/// never more than this ahead of the clock's own readings.
pub const MAX_SIGNED_LEAD: u64 = 86_400;
/// The high-water mark is written when the clock has moved it this far since
/// the last write (vendor-signed times are written at once), so a warm
/// validator does no I/O on almost every call.
pub const PERSIST_STEP: u64 = 60;
const DAY: u64 = 86_400;

/// Enforce licenses, or only report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Mode {
    /// Refuse licenses with problems (the default).
    #[default]
    Enforce,
    /// Soft enforcement: accept a license whose signature verified despite
    /// later problems (expired, wrong device on a tolerant binding, wrong
    /// product, version, revoked, key not valid, suspect clock, stale list,
    /// corrupt state), reporting them in [`License::warnings`]. A key that
    /// does not verify (malformed, unsupported version, unknown key, bad
    /// signature, or an exact device binding to another device, whose
    /// signature cannot be checked without that device) is still refused.
    Advisory,
}

/// Whether an environment problem is a warning or a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Policy {
    /// Accept the license and list the problem in [`License::warnings`].
    #[default]
    Warn,
    /// Refuse the license.
    Refuse,
}

/// What to do when the revocation list is past its next-update time (or,
/// having been seen before, is not loaded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Staleness {
    /// Use it as it is.
    Ignore,
    /// Use it, and warn (the default).
    #[default]
    Warn,
    /// Warn while it is at most `days` past its next-update time, then refuse
    /// (`stale_revocation_list`, or `revocation_list_missing`). `days: 0`
    /// refuses as soon as it is stale. A stale list offered to
    /// [`Validator::load_revocation_list`] is refused too.
    RefuseAfter {
        /// Days of tolerance past the next-update time.
        days: u32,
    },
}

enum Device {
    None,
    Fixed(Fingerprint),
    Lazy(Fingerprinter, OnceLock<Result<Fingerprint, Problem>>),
}

/// Builds a [`Validator`]; from [`Validator::builder`].
#[must_use]
pub struct ValidatorBuilder {
    keyring: Keyring,
    product: String,
    app_version: Option<Version>,
    device: Device,
    clock: Option<Box<dyn Clock>>,
    store: Option<Box<dyn StateStore>>,
    lists: Vec<ListInput>,
    staleness: Staleness,
    mode: Mode,
    tolerance: u64,
    on_clock_suspect: Policy,
    on_corrupt_state: Policy,
    leeway: u64,
    precompute: bool,
}

enum ListInput {
    Bytes(Vec<u8>),
    #[cfg(keyseal_os)]
    File(std::path::PathBuf),
}

impl fmt::Debug for ValidatorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValidatorBuilder")
            .field("product", &self.product)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl ValidatorBuilder {
    /// The app's version, checked against the license's version cap.
    pub fn app_version(mut self, version: Version) -> Self {
        self.app_version = Some(version);
        self
    }

    /// This device's fingerprint, computed by the app.
    pub fn device(mut self, fingerprint: Fingerprint) -> Self {
        self.device = Device::Fixed(fingerprint);
        self
    }

    /// Computes this device's fingerprint with `fingerprinter`, once, when a
    /// device-bound license is first validated.
    pub fn fingerprinter(mut self, fingerprinter: Fingerprinter) -> Self {
        self.device = Device::Lazy(fingerprinter, OnceLock::new());
        self
    }

    /// No device fingerprint: device-bound licenses are refused (`wrong_device`).
    pub fn no_device(mut self) -> Self {
        self.device = Device::None;
        self
    }

    /// The clock (default: [`crate::SystemClock`]; on WebAssembly there is
    /// no default and [`ValidatorBuilder::build`] fails without one).
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Some(Box::new(clock));
        self
    }

    /// Where the state is kept (default: a [`crate::FileStateStore`] at
    /// [`crate::state::default_path`], else in memory with a
    /// `state_unavailable` warning; on WebAssembly, in memory).
    pub fn state(mut self, store: impl StateStore + 'static) -> Self {
        self.store = Some(Box::new(store));
        self
    }

    /// A revocation list to load at build (binary or armored); see
    /// [`Validator::load_revocation_list`].
    pub fn revocation_list(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.lists.push(ListInput::Bytes(bytes.into()));
        self
    }

    /// A revocation list file to load at build.
    #[cfg(keyseal_os)]
    pub fn revocation_list_file(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.lists.push(ListInput::File(path.into()));
        self
    }

    /// What to do with a stale revocation list (default [`Staleness::Warn`]).
    pub fn staleness(mut self, staleness: Staleness) -> Self {
        self.staleness = staleness;
        self
    }

    /// Enforce (default) or advisory.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// How far (seconds) the clock may be behind the high-water mark before
    /// it is suspect (default [`DEFAULT_CLOCK_TOLERANCE`]).
    pub fn clock_tolerance(mut self, secs: u64) -> Self {
        self.tolerance = secs;
        self
    }

    /// Warn (default) or refuse (`clock_suspect`) when the clock is suspect.
    pub fn on_clock_suspect(mut self, policy: Policy) -> Self {
        self.on_clock_suspect = policy;
        self
    }

    /// Warn (default) or refuse (`state_corrupt`) when the persisted state
    /// was edited or damaged. Either way it is reset: deleting the state
    /// cannot be told from a first run, so refusing only deters casual edits.
    pub fn on_corrupt_state(mut self, policy: Policy) -> Self {
        self.on_corrupt_state = policy;
        self
    }

    /// Seconds of clock difference tolerated on a license's start and expiry
    /// (default 0).
    pub fn leeway(mut self, secs: u64) -> Self {
        self.leeway = secs;
        self
    }

    /// Whether [`build`](Self::build) computes verification tables for the
    /// keyring's issuing keys ([`Keyring::precompute`]; default `true`).
    /// A validation of a license signed by one of the keyring's keys (or by
    /// a key certified in a revocation list file the validator loads; not
    /// one certified only in the license's own file) then takes about half
    /// as long, with the same answers
    /// (`scripts/bench.sh`, interleaved: 26.2 µs against 47.0 µs; in
    /// WebAssembly about 100 µs against 210, sdk-wasm's bench). The tables
    /// cost 215 KiB per key plus 215 KiB for the basepoint, and `build`
    /// takes about 0.7 ms longer for a one-key keyring (2.7 ms in
    /// WebAssembly). Turn it off for a validator that checks one license
    /// and exits, or on a device short of memory.
    pub fn precompute(mut self, yes: bool) -> Self {
        self.precompute = yes;
        self
    }

    /// Loads the state and the revocation lists, and returns the validator.
    ///
    /// Fails if the product id is invalid, no clock is available, or a
    /// revocation list is refused (bad signature, rolled back, stale under
    /// [`Staleness::RefuseAfter`]). Problems with the state are not errors:
    /// they become warnings of every validation.
    pub fn build(self) -> Result<Validator, Problem> {
        if keyseal_core::keyring::ProductName::new(&self.product).is_err() {
            return Err(Problem::InvalidConfig {
                detail: "the product id is not a valid keyseal product id",
            });
        }
        let clock = match self.clock {
            Some(c) => c,
            None => default_clock()?,
        };
        let mut state_problem = None;
        let store = match self.store {
            Some(s) => s,
            None => default_store(&self.product, &mut state_problem),
        };
        let state = match store.load() {
            Ok(None) => State::default(),
            Ok(Some(bytes)) => State::decode(&self.product, &bytes).unwrap_or_else(|defect| {
                state_problem = Some(Problem::StateCorrupt { defect });
                State::default()
            }),
            Err(e) => {
                state_problem = Some(Problem::StateUnavailable {
                    detail: e.to_string(),
                });
                State::default()
            }
        };
        let mut keyring = self.keyring;
        if self.precompute {
            keyring.precompute();
        } else {
            // Tables the caller built stay; none are added.
            keyring.stop_precomputing();
        }
        let v = Validator {
            product: self.product,
            app_version: self.app_version,
            device: self.device,
            clock,
            store,
            mode: self.mode,
            staleness: self.staleness,
            tolerance: self.tolerance,
            on_clock_suspect: self.on_clock_suspect,
            on_corrupt_state: self.on_corrupt_state,
            leeway: self.leeway,
            seen: AtomicU64::new(state.seen),
            signed: AtomicU64::new(state.signed),
            persisted_seen: AtomicU64::new(state.seen),
            persisted_signed: AtomicU64::new(state.signed),
            trust: RwLock::new(Trust {
                keyring,
                list: None,
                list_mark: state.list,
                state_problem,
            }),
            persist_lock: Mutex::new(()),
        };
        for list in self.lists {
            match list {
                ListInput::Bytes(b) => v.load_revocation_list(&b)?,
                #[cfg(keyseal_os)]
                ListInput::File(p) => v.load_revocation_list_file(&p)?,
            };
        }
        Ok(v)
    }
}

#[cfg(keyseal_os)]
fn default_clock() -> Result<Box<dyn Clock>, Problem> {
    Ok(Box::new(crate::clock::SystemClock))
}

#[cfg(not(keyseal_os))]
fn default_clock() -> Result<Box<dyn Clock>, Problem> {
    Err(Problem::InvalidConfig {
        detail: "no clock: this target has no system clock, pass one with .clock()",
    })
}

#[cfg(keyseal_os)]
fn default_store(product: &str, problem: &mut Option<Problem>) -> Box<dyn StateStore> {
    match crate::state::FileStateStore::default_for(product) {
        Some(f) => Box::new(f),
        None => {
            *problem = Some(Problem::StateUnavailable {
                detail: "no per-user directory for the state file".into(),
            });
            Box::new(MemoryStateStore::new())
        }
    }
}

#[cfg(not(keyseal_os))]
fn default_store(_product: &str, _problem: &mut Option<Problem>) -> Box<dyn StateStore> {
    Box::new(MemoryStateStore::new())
}

/// What validation trusts, changed only by loading lists.
struct Trust {
    keyring: Keyring,
    list: Option<Arc<RevocationList>>,
    /// The newest list seen, loaded now or in an earlier run.
    list_mark: Option<ListMark>,
    /// A problem with the persisted state, reported with every validation.
    state_problem: Option<Problem>,
}

/// Validates license keys offline. Build one per app with
/// [`Validator::builder`], keep it, and call [`Validator::validate`] as
/// often as needed: it is `Send + Sync` (off WebAssembly) and a warm
/// validator does no I/O and almost no allocation per call.
pub struct Validator {
    product: String,
    app_version: Option<Version>,
    device: Device,
    clock: Box<dyn Clock>,
    store: Box<dyn StateStore>,
    mode: Mode,
    staleness: Staleness,
    tolerance: u64,
    on_clock_suspect: Policy,
    on_corrupt_state: Policy,
    leeway: u64,
    /// High-water mark: latest time seen from any source.
    seen: AtomicU64,
    /// Latest vendor-signed time seen.
    signed: AtomicU64,
    persisted_seen: AtomicU64,
    persisted_signed: AtomicU64,
    trust: RwLock<Trust>,
    persist_lock: Mutex<()>,
}

impl fmt::Debug for Validator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Validator")
            .field("product", &self.product)
            .field("app_version", &self.app_version)
            .field("mode", &self.mode)
            .field("staleness", &self.staleness)
            .field("high_water_mark", &self.seen.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// A problem and whether it refuses the license (in enforce mode).
type Finding = (Problem, bool);

impl Validator {
    /// A builder trusting `keyring` (the text the CLI exports, parsed with
    /// `str::parse`) for licenses of `product`.
    pub fn builder(keyring: Keyring, product: impl Into<String>) -> ValidatorBuilder {
        ValidatorBuilder {
            keyring,
            product: product.into(),
            app_version: None,
            device: Device::None,
            clock: None,
            store: None,
            lists: Vec::new(),
            staleness: Staleness::default(),
            mode: Mode::default(),
            tolerance: DEFAULT_CLOCK_TOLERANCE,
            on_clock_suspect: Policy::default(),
            on_corrupt_state: Policy::default(),
            leeway: 0,
            precompute: true,
        }
        .default_device()
    }

    /// The product this validator expects.
    #[must_use]
    pub fn product(&self) -> &str {
        &self.product
    }

    /// The mode.
    #[must_use]
    pub const fn mode(&self) -> Mode {
        self.mode
    }

    /// This device's fingerprint as the validator uses it: what the app
    /// shows the customer (`to_string()`, a `ksfp1.` code) to send the vendor
    /// for a device-bound license.
    pub fn fingerprint(&self) -> Result<Fingerprint, Problem> {
        match &self.device {
            Device::None => Err(Problem::DeviceUnavailable {
                detail: "the validator has no device source".into(),
            }),
            Device::Fixed(fp) => Ok(*fp),
            Device::Lazy(f, cell) => cell.get_or_init(|| f.fingerprint()).clone(),
        }
    }

    /// The latest time the validator has seen (unix seconds).
    #[must_use]
    pub fn high_water_mark(&self) -> u64 {
        self.seen.load(Ordering::Acquire)
    }

    /// The revocation list in force, if any.
    #[must_use]
    pub fn revocation_list(&self) -> Option<Arc<RevocationList>> {
        self.read_trust().list.clone()
    }

    /// Validates a license key: the text form (`ks1.…`, line breaks and
    /// surrounding whitespace that mail clients add are removed) or an
    /// armored license file (`-----BEGIN KEYSEAL LICENSE-----`).
    ///
    /// Key certificates in a license file are trusted for that validation
    /// only (they are checked against the keyring's roots; those of a root
    /// it does not pin are skipped), unless the file's revocation list is
    /// loaded, which keeps them in the keyring; a revocation
    /// list in it is loaded like [`Validator::load_revocation_list`], with
    /// the file's certificates, if it supersedes the one in force, and
    /// otherwise ignored.
    pub fn validate(&self, key: &str) -> Result<License, Rejection> {
        let clock_now = self.clock.now();
        if input::is_armored(key) {
            return self.validate_armored(key, clock_now);
        }
        let mut text = [0u8; MAX_LICENSE_TEXT_LEN];
        let mut bin = [0u8; MAX_LICENSE_LEN];
        let decoded =
            input::clean_key(key, &mut text).and_then(|t| core_license::decode_text(t, &mut bin));
        match decoded {
            Ok(bytes) => self.check(bytes, None, clock_now),
            Err(e) => Err(self.refuse_undecodable(e, clock_now)),
        }
    }

    /// Validates the license key or armored license file at `path` (UTF-8,
    /// a byte-order mark is ignored). A missing or empty file is
    /// `license_not_found`.
    #[cfg(keyseal_os)]
    pub fn validate_file(&self, path: impl AsRef<std::path::Path>) -> Result<License, Rejection> {
        let text = input::read_key_file(path.as_ref()).map_err(|p| self.refuse_input(p))?;
        self.validate(&text)
    }

    /// Validates the license key in environment variable `name`. An unset
    /// or empty variable is `license_not_found`; its value never appears in
    /// a message.
    pub fn validate_env(&self, name: &str) -> Result<License, Rejection> {
        let text = input::read_key_env(name).map_err(|p| self.refuse_input(p))?;
        self.validate(&text)
    }

    /// Validates a license key (as [`Validator::validate`]) together with the
    /// lease (`kslease1.` text) that the vendor's service signed for this
    /// device's seat at activation or at the last check-in; the license's
    /// [`License::lease`] then says when to check in and when the lease ends.
    ///
    /// A license that fails is refused with its own code, as by
    /// [`Validator::validate`]; a license that holds with a lease that does
    /// not is refused with `lease_expired` (check in, or activate again) or
    /// `lease_invalid` (the [`LeaseFault`] in
    /// [`CoreError::LeaseInvalid`] says why: another device, another
    /// license, a key the keyring does not trust, a bad signature...). The
    /// lease's signer must be an issuing key of the validator's keyring
    /// (certificates in a license file count for the license only). The
    /// device is this validator's fingerprint; a lease is always bound to
    /// one. In [advisory mode](Mode::Advisory) a lease whose signature
    /// verified but that fails a later check is a warning instead.
    pub fn validate_with_lease(&self, key: &str, lease: &str) -> Result<License, Rejection> {
        let license = self.validate(key)?;
        self.check_lease(license, lease)
    }

    /// Checks only the lease (`kslease1.`) of a license this validator
    /// already validated, as [`Validator::validate_with_lease`] does after
    /// the license: for an app that validated its key at start and checks
    /// the lease it renews at every check-in, or on a timer. It costs one
    /// signature check, as [`Validator::validate`] does. A failure is a
    /// [`Rejection`] whatever the [mode](Mode) (`lease_invalid`,
    /// `lease_expired`, or this device's fingerprint problem).
    pub fn validate_lease(&self, license: &License, lease: &str) -> Result<Lease, Rejection> {
        match self.lease_verdict(license, lease) {
            (Ok(l), _) => Ok(l),
            (Err(p), _) => Err(Rejection::new(p, Vec::new())),
        }
    }

    fn check_lease(&self, license: License, lease: &str) -> Result<License, Rejection> {
        match self.lease_verdict(&license, lease) {
            (Ok(l), _) => Ok(license.with_lease(l)),
            (Err(p), true) if self.mode == Mode::Advisory => Ok(license.warn_first(p)),
            (Err(p), _) => Err(Rejection::new(p, license.into_warnings())),
        }
    }

    /// The lease's verdict for `license`, and whether its signature
    /// verified (an advisory validator then warns instead of refusing).
    fn lease_verdict(&self, license: &License, lease: &str) -> (Result<Lease, Problem>, bool) {
        let clock_now = self.clock.now();
        let mut text = [0u8; MAX_LICENSE_TEXT_LEN];
        let mut bin = [0u8; LEASE_BUF_LEN];
        let unverified = input::clean_key(lease, &mut text)
            .map_err(|e| match e {
                CoreError::Malformed(m) => CoreError::LeaseInvalid(LeaseFault::Malformed(m)),
                e => e,
            })
            .and_then(|t| UnverifiedLease::from_text(t, &mut bin));
        let unverified = match unverified {
            Ok(u) => u,
            Err(e) => return (Err(Problem::Core(e)), false),
        };
        let device = match self.fingerprint() {
            Ok(fp) => Some(fp),
            Err(_) if matches!(self.device, Device::None) => None,
            Err(p) => return (Err(p), false),
        };
        let mark = self.seen.load(Ordering::Acquire);
        let now = clock_now.max(mark);
        let trust = self.read_trust();
        let mut exp = Expectations::new(&self.product, now).leeway(self.leeway);
        if let Some(fp) = &device {
            exp = exp.device(fp);
        }
        if let Some(list) = &trust.list {
            exp = exp.revocations(&**list);
        }
        let verdict = unverified.verify(&trust.keyring, license.id(), &exp);
        drop(trust);
        // As for licenses: the issue time is the vendor's only once the
        // signature verified and the key may sign for it.
        let verified = match verdict {
            Ok(_)
            | Err(
                CoreError::LeaseExpired { .. }
                | CoreError::LeaseInvalid(LeaseFault::OtherLicense | LeaseFault::NotYetValid { .. }),
            ) => true,
            Err(_) => false,
        };
        // A relay's lease is dated by the relay's clock: the vendor's time
        // is its allotment's (docs/FORMAT.md, "Verifying a lease").
        let issued_at = unverified
            .allotment()
            .map_or(unverified.dangerous_unverified_terms().issued_at, |a| {
                a.dangerous_unverified_terms().issued_at
            });
        self.raise(
            clock_now,
            verified
                .then(|| signed_evidence(issued_at, clock_now))
                .flatten(),
        );
        (
            verdict.map(|v| Lease::new(&v)).map_err(Problem::Core),
            verified,
        )
    }

    /// Verifies a revocation list (binary or armored) with the keyring and
    /// puts it in force.
    ///
    /// The signer must be an issuing key of the keyring, or one that a key
    /// certificate in an armored list file certifies (such certificates are
    /// added to the keyring); roots never sign lists.
    ///
    /// Refused: anything that does not verify; a list dated outside its
    /// signer's window, or revoking a key that outranks its signer
    /// (`key_not_valid`); a list that does not supersede the newest seen
    /// (`rolled_back_revocation_list`: its signer's rank, the start of its
    /// window, is lower, or the rank is the same and the sequence lower;
    /// both are persisted), so a leaked key's list gives way to the first
    /// list of any newer key whatever its sequence; a list signed by a key
    /// the list in force revokes, unless that key outranks the list in
    /// force's signer (`key_revoked`); a stale one under
    /// [`Staleness::RefuseAfter`] in enforce mode. The list's issue time
    /// raises the high-water mark if it is at most [`MAX_SIGNED_LEAD`] past
    /// the clock.
    pub fn load_revocation_list(&self, bytes: &[u8]) -> Result<Arc<RevocationList>, Problem> {
        let file = input::parse_list_file(bytes)?;
        self.install_list(&file.list, &file.certificates, self.clock.now())
    }

    /// [`Validator::load_revocation_list`] from a file.
    #[cfg(keyseal_os)]
    pub fn load_revocation_list_file(
        &self,
        path: impl AsRef<std::path::Path>,
    ) -> Result<Arc<RevocationList>, Problem> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| Problem::Unreadable {
            detail: format!("{}: {e}", path.display()),
        })?;
        self.load_revocation_list(&bytes)
    }

    /// Writes the state now (the validator otherwise writes when the mark
    /// has moved [`PERSIST_STEP`] seconds, or on vendor-signed news). Apps
    /// may call it on exit.
    pub fn save_state(&self) -> Result<(), Problem> {
        self.persist(true)
    }

    /// Forgets clock readings: the high-water mark drops to the latest
    /// vendor-signed time (or the clock, if later) and is saved. For a
    /// support action after the clock was once set far ahead, which would
    /// otherwise keep every later reading suspect.
    pub fn reset_clock_mark(&self) -> Result<(), Problem> {
        let _guard = self
            .persist_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mark = self.signed.load(Ordering::Acquire).max(self.clock.now());
        self.seen.store(mark, Ordering::Release);
        self.write_state(false)
    }

    fn read_trust(&self) -> RwLockReadGuard<'_, Trust> {
        self.trust
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write_trust(&self) -> RwLockWriteGuard<'_, Trust> {
        self.trust
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn validate_armored(&self, text: &str, clock_now: u64) -> Result<License, Rejection> {
        let file = match input::parse_license_file(text) {
            Ok(f) => f,
            Err(e) => return Err(self.refuse_undecodable(e, clock_now)),
        };
        for list in &file.revocation_lists {
            // The file's certificates may be what certifies the list's signer.
            match self.install_list(list, &file.certificates, clock_now) {
                Ok(_) => {}
                // An older or stale list next to a license is harmless: the
                // one in force stays.
                Err(Problem::Core(
                    CoreError::RolledBackRevocationList { .. }
                    | CoreError::StaleRevocationList { .. },
                )) => {}
                Err(p) => return Err(self.refuse_input(p)),
            }
        }
        if file.certificates.is_empty() {
            return self.check(&file.license, None, clock_now);
        }
        let mut keyring = self.read_trust().keyring.clone();
        // Used for this one license: a table would cost more than it saves.
        keyring.stop_precomputing();
        for cert in &file.certificates {
            if let Err(e) = add_pinned_certificate(&mut keyring, cert) {
                return Err(self.refuse_input(Problem::Core(e)));
            }
        }
        self.check(&file.license, Some(&keyring), clock_now)
    }

    /// Decodes and verifies binary license bytes; the heart of validation.
    fn check(
        &self,
        bytes: &[u8],
        keyring: Option<&Keyring>,
        clock_now: u64,
    ) -> Result<License, Rejection> {
        let unverified = match UnverifiedLicense::from_bytes(bytes) {
            Ok(u) => u,
            Err(e) => return Err(self.refuse_undecodable(e, clock_now)),
        };
        // Unverified until verify() below; used only to pick the time (a
        // forged issue time cannot pass the signature check) and the device.
        let claimed = *unverified.dangerous_unverified_claims();
        let device = match claimed.device {
            Some(_) => self.fingerprint().ok(),
            None => None,
        };
        let mark = self.seen.load(Ordering::Acquire);
        let now = clock_now.max(mark).max(claimed.issued_at);

        let trust = self.read_trust();
        let mut exp = Expectations::new(&self.product, now).leeway(self.leeway);
        if let Some(v) = self.app_version {
            exp = exp.app_version(v);
        }
        if let Some(fp) = &device {
            exp = exp.device(fp);
        }
        if let Some(list) = &trust.list {
            exp = exp.revocations(&**list);
        }
        let verdict = unverified.verify(keyring.unwrap_or(&trust.keyring), &exp);
        // The signature verified for every verdict but the last arm below.
        // The issue time is the vendor's only if the keyring trusts the key
        // for it: a revoked key, or one used outside its window (a retired or
        // leaked key), can sign any time at all, and that must not drag the
        // mark (and with it every later check) into the future.
        // A time far past the clock is no evidence either ([`MAX_SIGNED_LEAD`]).
        let vendor_time = match verdict {
            Err(CoreError::KeyRevoked(_) | CoreError::KeyNotValid(_)) => None,
            _ => signed_evidence(claimed.issued_at, clock_now),
        };
        let signed_mark = vendor_time.map_or(mark, |t| mark.max(t));
        let now = clock_now.max(signed_mark);
        let verified_claims: Result<(Claims<'_>, Status), CoreError> = match verdict {
            Ok(v) => Ok((*v.claims(), core_status(v.status()))),
            Err(e) if unverified.signature_checked_before(&e) => {
                // The signature verified (docs/FORMAT.md, verification
                // order), so the claims are the vendor's.
                if self.mode == Mode::Advisory {
                    // At no earlier than its own issue time, as the verdict was.
                    let at = now.max(claimed.issued_at);
                    Ok((claimed, status_at(&claimed, at, self.leeway)))
                } else {
                    Err(e)
                }
            }
            Err(e) => {
                // Not verified: the claimed issue time is not evidence of anything.
                let problem = self.device_problem(e, claimed.device.is_some(), device.is_some());
                let findings = self.environment(clock_now, mark, clock_now.max(mark), &trust);
                drop(trust);
                self.raise(clock_now, None);
                return Err(Rejection::new(
                    problem,
                    findings.into_iter().map(|(p, _)| p).collect(),
                ));
            }
        };
        let mut findings = self.environment(clock_now, signed_mark, now, &trust);
        drop(trust);
        self.raise(clock_now, vendor_time);

        let (claims, status) = match verified_claims {
            Ok(c) => c,
            Err(e) => {
                let problem = self.device_problem(e, true, device.is_some());
                return Err(Rejection::new(
                    problem,
                    findings.into_iter().map(|(p, _)| p).collect(),
                ));
            }
        };
        if let Err(e) = &verdict {
            // Advisory mode: the core refusal leads the warnings.
            findings.insert(0, (self.device_problem(*e, true, device.is_some()), true));
        }
        if self.mode == Mode::Enforce
            && let Some(i) = findings.iter().position(|(_, refuses)| *refuses)
        {
            let (problem, _) = findings.remove(i);
            return Err(Rejection::new(
                problem,
                findings.into_iter().map(|(p, _)| p).collect(),
            ));
        }
        let warnings = findings.into_iter().map(|(p, _)| p).collect();
        Ok(License::new(&claims, unverified.key_id(), status, warnings))
    }

    /// `wrong_device` becomes `device_unavailable` when the license is bound
    /// but this device could not be identified.
    fn device_problem(&self, e: CoreError, bound: bool, have_device: bool) -> Problem {
        if e == CoreError::WrongDevice
            && bound
            && !have_device
            && !matches!(self.device, Device::None)
            && let Err(p) = self.fingerprint()
        {
            return p;
        }
        Problem::Core(e)
    }

    /// A refusal before any signature was checked (the mark is raised from
    /// the clock only, never from an unverified license).
    fn refuse_undecodable(&self, e: CoreError, clock_now: u64) -> Rejection {
        self.refuse_at(Problem::Core(e), clock_now)
    }

    fn refuse_input(&self, problem: Problem) -> Rejection {
        self.refuse_at(problem, self.clock.now())
    }

    fn refuse_at(&self, problem: Problem, clock_now: u64) -> Rejection {
        let mark = self.seen.load(Ordering::Acquire);
        let trust = self.read_trust();
        let findings = self.environment(clock_now, mark, clock_now.max(mark), &trust);
        drop(trust);
        self.raise(clock_now, None);
        Rejection::new(problem, findings.into_iter().map(|(p, _)| p).collect())
    }

    /// Problems of the environment at effective time `now`: the clock
    /// against `mark`, the revocation list, the state.
    fn environment(&self, clock_now: u64, mark: u64, now: u64, trust: &Trust) -> Vec<Finding> {
        let mut findings = Vec::new();
        let behind_by = mark.saturating_sub(clock_now);
        if behind_by > self.tolerance {
            findings.push((
                Problem::ClockSuspect { behind_by },
                self.on_clock_suspect == Policy::Refuse,
            ));
        }
        let refuse_after = |next_update: u64| match self.staleness {
            Staleness::RefuseAfter { days } => {
                now > next_update.saturating_add(u64::from(days) * DAY)
            }
            _ => false,
        };
        match (&trust.list, trust.list_mark) {
            (Some(list), _) if list.is_stale(now) && self.staleness != Staleness::Ignore => {
                let next_update = list.next_update();
                findings.push((
                    Problem::Core(CoreError::StaleRevocationList { next_update }),
                    refuse_after(next_update),
                ));
            }
            (None, Some(seen)) if self.staleness != Staleness::Ignore => {
                let p = Problem::RevocationListMissing {
                    sequence: seen.sequence,
                    next_update: seen.next_update,
                };
                findings.push((p, refuse_after(seen.next_update)));
            }
            _ => {}
        }
        if let Some(p) = &trust.state_problem {
            let refuses = matches!(p, Problem::StateCorrupt { .. })
                && self.on_corrupt_state == Policy::Refuse;
            findings.push((p.clone(), refuses));
        }
        findings
    }

    fn install_list(
        &self,
        bytes: &[u8],
        certificates: &[Vec<u8>],
        clock_now: u64,
    ) -> Result<Arc<RevocationList>, Problem> {
        let mut trust = self.write_trust();
        let mut keyring = trust.keyring.clone();
        // Certified keys get their tables once the list is accepted.
        let precompute = keyring.is_precomputed();
        keyring.stop_precomputing();
        for cert in certificates {
            add_pinned_certificate(&mut keyring, cert)?;
        }
        let list = RevocationList::verify(bytes, &keyring)?;
        let seen = trust
            .list_mark
            .map(|m| m.order())
            .unwrap_or_default()
            .max(trust.list.as_ref().map(|l| l.order()).unwrap_or_default());
        list.check_not_rolled_back(seen)?;
        if let Some(current) = &trust.list {
            current.check_signer_not_revoked(&list)?;
        }
        let now = clock_now.max(self.seen.load(Ordering::Acquire));
        if let (Staleness::RefuseAfter { days }, Mode::Enforce) = (self.staleness, self.mode)
            && now > list.next_update().saturating_add(u64::from(days) * DAY)
        {
            return Err(CoreError::StaleRevocationList {
                next_update: list.next_update(),
            }
            .into());
        }
        let issued_at = list.issued_at();
        let list = Arc::new(list);
        if precompute {
            keyring.precompute();
        }
        trust.keyring = keyring;
        trust.list_mark = Some(ListMark {
            rank: list.order().rank,
            sequence: list.sequence(),
            next_update: list.next_update(),
        });
        trust.list = Some(Arc::clone(&list));
        drop(trust);
        self.raise(clock_now, signed_evidence(issued_at, clock_now));
        // The sequence must survive a restart even if the clock did not move.
        let _ = self.persist(true);
        Ok(list)
    }

    /// Raises the marks; writes the state when they moved enough.
    fn raise(&self, clock_now: u64, signed: Option<u64>) {
        let signed = signed.unwrap_or(0);
        let seen = self
            .seen
            .fetch_max(clock_now.max(signed), Ordering::AcqRel)
            .max(clock_now.max(signed));
        let signed = self.signed.fetch_max(signed, Ordering::AcqRel).max(signed);
        if seen
            >= self
                .persisted_seen
                .load(Ordering::Acquire)
                .saturating_add(PERSIST_STEP)
            || signed > self.persisted_signed.load(Ordering::Acquire)
        {
            let _ = self.persist(false);
        }
    }

    /// Writes the state, merged with what is stored (another process may
    /// have moved it on). `force` writes even if nothing moved.
    fn persist(&self, force: bool) -> Result<(), Problem> {
        let _guard = self
            .persist_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let moved = self.seen.load(Ordering::Acquire)
            >= self
                .persisted_seen
                .load(Ordering::Acquire)
                .saturating_add(PERSIST_STEP)
            || self.signed.load(Ordering::Acquire) > self.persisted_signed.load(Ordering::Acquire);
        if !force && !moved {
            return Ok(());
        }
        self.write_state(true)
    }

    /// Writes the in-memory state; with `merge`, first takes the newest of
    /// it and the stored state. Call with `persist_lock` held.
    fn write_state(&self, merge: bool) -> Result<(), Problem> {
        let list_mark = self.read_trust().list_mark;
        // The two marks move without a common lock (`raise`, a concurrent
        // `reset_clock_mark`): a signed time read above the seen one would
        // be saved as a state that the next run refuses as corrupt
        // (resetting the revocation sequence with it).
        let signed = self.signed.load(Ordering::Acquire);
        let mut state = State {
            seen: self.seen.load(Ordering::Acquire).max(signed),
            signed,
            list: list_mark,
        };
        let result = if merge {
            // Another process may have moved the stored marks on: keep the
            // newest of both, read and written under the store's lock.
            self.store.update(&mut |stored| {
                if let Some(bytes) = stored
                    && let Ok(stored) = State::decode(&self.product, &bytes)
                {
                    state = state.merge(&stored);
                }
                state.encode(&self.product).into_bytes()
            })
        } else {
            self.store.save(state.encode(&self.product).as_bytes())
        };
        self.seen.fetch_max(state.seen, Ordering::AcqRel);
        self.signed.fetch_max(state.signed, Ordering::AcqRel);
        if state.list != list_mark {
            // Keep the newest: `install_list` may have moved it on since it
            // was read above.
            let mut trust = self.write_trust();
            trust.list_mark = ListMark::newest(trust.list_mark, state.list);
        }
        // Recorded even on failure, so a broken disk is not retried every call.
        self.persisted_seen.store(state.seen, Ordering::Release);
        self.persisted_signed.store(state.signed, Ordering::Release);
        match result {
            Ok(()) => Ok(()),
            Err(e) => {
                let p = Problem::StateUnavailable {
                    detail: e.to_string(),
                };
                let mut trust = self.write_trust();
                if !matches!(trust.state_problem, Some(Problem::StateCorrupt { .. })) {
                    trust.state_problem = Some(p.clone());
                }
                Err(p)
            }
        }
    }
}

impl ValidatorBuilder {
    #[cfg(keyseal_os)]
    fn default_device(self) -> Self {
        let f = Fingerprinter::new(self.product.clone()).os();
        self.fingerprinter(f)
    }

    #[cfg(not(keyseal_os))]
    fn default_device(self) -> Self {
        self
    }
}

/// Trusts the key a certificate certifies if the keyring pins its root. A
/// certificate of a root the app does not pin is skipped (an app with a
/// plain keyring, or one pinning another root, reads the same list files);
/// a forged or malformed one is an error.
fn add_pinned_certificate(keyring: &mut Keyring, cert: &[u8]) -> Result<(), CoreError> {
    match keyring.add_certificate(cert) {
        Ok(_) | Err(CoreError::UnknownKey(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// A vendor-signed time as evidence of the time: only if it is at most
/// [`MAX_SIGNED_LEAD`] past the clock.
fn signed_evidence(t: u64, clock_now: u64) -> Option<u64> {
    (t <= clock_now.saturating_add(MAX_SIGNED_LEAD)).then_some(t)
}

fn core_status(s: keyseal_core::Status) -> Status {
    match s {
        keyseal_core::Status::Active => Status::Active,
        keyseal_core::Status::InGrace { grace_ends } => Status::InGrace { grace_ends },
    }
}

/// The status at `now` by keyseal-core's time rule, including the time
/// problems an advisory validator reports instead of refusing.
fn status_at(c: &Claims<'_>, now: u64, leeway: u64) -> Status {
    match c.timing(now, leeway) {
        Timing::Active => Status::Active,
        Timing::InGrace { grace_ends } => Status::InGrace { grace_ends },
        Timing::NotYetValid { not_before } => Status::NotYetValid { not_before },
        Timing::Expired { expired_at } => Status::Expired { expired_at },
    }
}

// Keep the one error conversion explicit: Malformed is re-exported by core.
impl From<Malformed> for Problem {
    fn from(m: Malformed) -> Self {
        Problem::Core(CoreError::Malformed(m))
    }
}
