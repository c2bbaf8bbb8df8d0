//! Behaviour of the Validator beyond the shared vectors: clock-rollback
//! guard, state file, revocation updates, advisory mode, inputs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use common::{DAY, NOW, PRODUCT, Scratch, Vendor};
use keyseal::keyseal_core::keyring::KeyCertificate;
use keyseal::keyseal_core::license;
use keyseal::keyseal_core::revocation::RevocationListBuilder;
use keyseal::keyseal_core::{DeviceRule, Fingerprint, SigningKey, TrustedKey, armor};
use keyseal::state::{ListMark, State, StateDefect};
use keyseal::{
    Clock, FileStateStore, Keyring, ManualClock, MemoryStateStore, Mode, Policy, Problem,
    Staleness, StateStore, Status, Validator,
};

fn codes(ps: &[Problem]) -> Vec<&'static str> {
    ps.iter().map(Problem::code).collect()
}

#[test]
fn validator_is_send_and_sync() {
    fn shared<T: Send + Sync>() {}
    shared::<Validator>();
}

#[test]
fn valid_license_with_entitlements() {
    let v = Vendor::new();
    let key = v.issue(&v.claims(1));
    let validator = v
        .builder(NOW)
        .app_version("5.2.0".parse().unwrap())
        .build()
        .unwrap();
    let l = validator.validate(&key).unwrap();
    assert!(l.has("export-pdf") && !l.has("cloud-sync"));
    assert_eq!(
        (l.product(), l.plan(), l.status()),
        (PRODUCT, "pro", Status::Active)
    );
    assert!(l.is_clean(), "{:?}", l.warnings());
}

// --- Clock-rollback guard -------------------------------------------------

#[test]
fn clock_rollback_detected_from_a_persisted_mark() {
    let dir = Scratch::new("rollback");
    let v = Vendor::new();
    let mut short = v.claims(2);
    short.expires_at = Some(NOW + 3_600);
    let key = v.issue(&short);

    // Run 1: the clock reads NOW + 2 h; the license has expired.
    let first = v
        .builder(NOW + 7_200)
        .state(FileStateStore::new(dir.path("s.state")))
        .build()
        .unwrap();
    assert_eq!(first.validate(&key).unwrap_err().code(), "expired");
    drop(first);

    // Run 2: the customer set the clock back to NOW. The mark on disk says
    // NOW + 2 h: the clock is suspect, and the license stays expired.
    let second = v
        .builder(NOW)
        .state(FileStateStore::new(dir.path("s.state")))
        .build()
        .unwrap();
    let r = second.validate(&key).unwrap_err();
    assert_eq!(r.code(), "expired");
    assert_eq!(r.warnings(), [Problem::ClockSuspect { behind_by: 7_200 }]);
    // A license that is still valid at the mark is accepted, with the warning.
    let ok = second.validate(&v.issue(&v.claims(3))).unwrap();
    assert_eq!(ok.warnings(), [Problem::ClockSuspect { behind_by: 7_200 }]);
    assert!(
        ok.warnings()[0]
            .customer_message()
            .contains("about 2 hours")
    );

    // Refusal instead of a warning, if the vendor chooses.
    let strict = v
        .builder(NOW)
        .state(FileStateStore::new(dir.path("s.state")))
        .on_clock_suspect(Policy::Refuse)
        .build()
        .unwrap();
    assert_eq!(
        strict.validate(&v.issue(&v.claims(3))).unwrap_err().code(),
        "clock_suspect"
    );

    // Within the tolerance, nothing is reported.
    let tolerant = v
        .builder(NOW)
        .state(FileStateStore::new(dir.path("s.state")))
        .clock_tolerance(7_200)
        .build()
        .unwrap();
    assert!(
        tolerant
            .validate(&v.issue(&v.claims(3)))
            .unwrap()
            .is_clean()
    );
}

#[test]
fn clock_behind_a_license_issue_time_is_suspect() {
    let v = Vendor::new();
    let key = v.issue(&v.claims(4)); // issued NOW - 1 day
    let validator = v.builder(NOW - DAY - 7_200).build().unwrap();
    let l = validator.validate(&key).unwrap();
    assert_eq!(l.warnings(), [Problem::ClockSuspect { behind_by: 7_200 }]);
    // The signed issue time raised the mark: a later, unsigned check sees it.
    assert_eq!(validator.high_water_mark(), NOW - DAY);
    let r = validator.validate("ks1.AQID").unwrap_err();
    assert_eq!(r.code(), "malformed");
    assert_eq!(r.warnings(), [Problem::ClockSuspect { behind_by: 7_200 }]);
}

#[test]
fn a_signed_time_more_than_a_day_past_the_clock_is_no_evidence() {
    let v = Vendor::new();
    let key = v.issue(&v.claims(4)); // issued NOW - 1 day
    // One second more than MAX_SIGNED_LEAD behind: the mark stays with the
    // clock, nothing is suspect, and the license is checked at its own
    // issue time.
    let clock = NOW - DAY - keyseal::MAX_SIGNED_LEAD - 1;
    let validator = v.builder(clock).build().unwrap();
    assert!(validator.validate(&key).unwrap().is_clean());
    assert_eq!(validator.high_water_mark(), clock);
    // Exactly MAX_SIGNED_LEAD behind still counts.
    let validator = v.builder(clock + 1).build().unwrap();
    let l = validator.validate(&key).unwrap();
    assert_eq!(
        l.warnings(),
        [Problem::ClockSuspect {
            behind_by: keyseal::MAX_SIGNED_LEAD
        }]
    );
}

#[test]
fn a_forged_issue_time_does_not_move_the_mark() {
    let v = Vendor::new();
    let mut far = v.claims(5);
    far.issued_at = NOW + 1000 * DAY;
    far.expires_at = None;
    let mut bytes = license::issue(&v.key, &far, None).unwrap();
    let n = bytes.len();
    bytes[n - 1] ^= 1; // break the signature
    // A list fresh at NOW, stale at the forged time.
    let validator = v
        .builder(NOW)
        .revocation_list(v.list(1, NOW - 10, NOW + DAY, &[]))
        .build()
        .unwrap();
    let r = validator.validate(&license::to_text(&bytes)).unwrap_err();
    assert_eq!(r.code(), "bad_signature");
    assert!(r.warnings().is_empty(), "{:?}", r.warnings());
    assert_eq!(validator.high_water_mark(), NOW);
}

#[test]
fn an_issue_time_the_keyring_does_not_trust_does_not_move_the_mark() {
    // A retired key (trusted for licenses issued until 10 days ago) and a
    // revoked one still make good signatures, over any issue time: a leaked
    // key signing "issued in 1000 days" must not push every later check there.
    let v = Vendor::new();
    let retired = SigningKey::from_seed(&[8; 32]).unwrap();
    let revoked = SigningKey::from_seed(&[9; 32]).unwrap();
    let mut keyring = v.keyring.clone();
    keyring
        .add(TrustedKey::new(retired.public_key()).valid_until(NOW - 10 * DAY))
        .unwrap();
    keyring.add(TrustedKey::new(revoked.public_key())).unwrap();
    let mut b = RevocationListBuilder::new(1, NOW - 10, NOW + DAY);
    b.revoke_key(revoked.key_id());
    let list = b.sign(&v.key).unwrap();
    let mut far = v.claims(60);
    far.issued_at = NOW + 1000 * DAY;
    far.expires_at = None;
    for (key, code) in [(&retired, "key_not_valid"), (&revoked, "key_revoked")] {
        let text = license::to_text(&license::issue(key, &far, None).unwrap());
        for mode in [Mode::Enforce, Mode::Advisory] {
            let validator = Validator::builder(keyring.clone(), PRODUCT)
                .clock(ManualClock::new(NOW))
                .state(MemoryStateStore::new())
                .no_device()
                .mode(mode)
                .revocation_list(list.clone())
                .build()
                .unwrap();
            match validator.validate(&text) {
                Err(r) => {
                    assert_eq!((mode, r.code()), (Mode::Enforce, code));
                    assert!(r.warnings().is_empty(), "{:?}", r.warnings());
                }
                Ok(l) => {
                    assert_eq!(mode, Mode::Advisory);
                    assert_eq!(codes(l.warnings()), [code]);
                }
            }
            assert_eq!(validator.high_water_mark(), NOW, "{code} {mode:?}");
            let good = validator.validate(&v.issue(&v.claims(61))).unwrap();
            assert!(good.is_clean(), "{code} {mode:?}: {:?}", good.warnings());
        }
    }
}

#[test]
fn reset_clock_mark_forgets_clock_readings_only() {
    let v = Vendor::new();
    let store = Arc::new(MemoryStateStore::new());
    let ahead = v
        .builder(NOW + 50 * DAY)
        .state(Arc::clone(&store))
        .build()
        .unwrap();
    assert!(ahead.validate(&v.issue(&v.claims(6))).is_ok());
    let back = v.builder(NOW).state(Arc::clone(&store)).build().unwrap();
    assert_eq!(back.high_water_mark(), NOW + 50 * DAY);
    back.reset_clock_mark().unwrap();
    // Down to the clock, never below the signed issue time (NOW - 1 day).
    assert_eq!(back.high_water_mark(), NOW);
    assert!(back.validate(&v.issue(&v.claims(7))).unwrap().is_clean());
    let again = v.builder(NOW).state(Arc::clone(&store)).build().unwrap();
    assert_eq!(again.high_water_mark(), NOW);
}

/// A clock that, read once while armed, validates `key` on another thread
/// and gives it time to move the marks before answering.
struct MeddlingClock {
    armed: AtomicBool,
    validator: OnceLock<Arc<Validator>>,
    key: String,
    meddler: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Clock for MeddlingClock {
    fn now(&self) -> u64 {
        if self.armed.swap(false, Ordering::SeqCst) {
            let validator = Arc::clone(self.validator.get().unwrap());
            let key = self.key.clone();
            let t = std::thread::spawn(move || assert!(validator.validate(&key).is_ok()));
            *self.meddler.lock().unwrap() = Some(t);
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
        NOW
    }
}

#[test]
fn a_saved_state_never_has_a_signed_time_above_the_seen_one() {
    // A license issued (genuinely) half a day ahead is validated while the
    // mark is being reset: the state written must still decode.
    let v = Vendor::new();
    let mut ahead = v.claims(62);
    ahead.issued_at = NOW + DAY / 2;
    let clock = Arc::new(MeddlingClock {
        armed: AtomicBool::new(false),
        validator: OnceLock::new(),
        key: v.issue(&ahead),
        meddler: Mutex::new(None),
    });
    let store = Arc::new(MemoryStateStore::new());
    let validator = Arc::new(
        v.builder(NOW)
            .clock(Arc::clone(&clock))
            .state(Arc::clone(&store))
            .build()
            .unwrap(),
    );
    clock.validator.set(Arc::clone(&validator)).ok().unwrap();
    assert!(validator.validate(&v.issue(&v.claims(63))).is_ok());
    clock.armed.store(true, Ordering::SeqCst);
    validator.reset_clock_mark().unwrap();
    clock
        .meddler
        .lock()
        .unwrap()
        .take()
        .unwrap()
        .join()
        .unwrap();
    let saved = State::decode(PRODUCT, &store.contents().unwrap());
    assert!(saved.is_ok(), "{saved:?}");
    let next = v.builder(NOW).state(Arc::clone(&store)).build().unwrap();
    assert_eq!(next.high_water_mark(), NOW + DAY / 2);
}

/// Counts saves: a warm validator must not write on every call.
#[derive(Default)]
struct CountingStore {
    inner: MemoryStateStore,
    saves: AtomicUsize,
}

impl StateStore for CountingStore {
    fn load(&self) -> io::Result<Option<Vec<u8>>> {
        self.inner.load()
    }
    fn save(&self, bytes: &[u8]) -> io::Result<()> {
        self.saves.fetch_add(1, Ordering::Relaxed);
        self.inner.save(bytes)
    }
}

#[test]
fn warm_validator_writes_state_rarely() {
    let v = Vendor::new();
    let key = v.issue(&v.claims(8));
    let store = Arc::new(CountingStore::default());
    let clock = Arc::new(ManualClock::new(NOW));
    let validator = v
        .builder(NOW)
        .clock(Arc::clone(&clock))
        .state(Arc::clone(&store))
        .build()
        .unwrap();
    for _ in 0..100 {
        assert!(validator.validate(&key).is_ok());
    }
    assert_eq!(
        store.saves.load(Ordering::Relaxed),
        1,
        "first sight of the clock and issue time"
    );
    clock.advance(30);
    assert!(validator.validate(&key).is_ok());
    assert_eq!(
        store.saves.load(Ordering::Relaxed),
        1,
        "30 s is below the persist step"
    );
    clock.advance(60);
    assert!(validator.validate(&key).is_ok());
    assert_eq!(store.saves.load(Ordering::Relaxed), 2);
    let saved = State::decode(PRODUCT, &store.inner.contents().unwrap()).unwrap();
    assert_eq!((saved.seen, saved.signed), (NOW + 90, NOW - DAY));
}

struct BrokenStore;

impl StateStore for BrokenStore {
    fn load(&self) -> io::Result<Option<Vec<u8>>> {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "permission denied",
        ))
    }
    fn save(&self, _: &[u8]) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "permission denied",
        ))
    }
}

#[test]
fn unavailable_state_is_a_warning_never_a_refusal() {
    let v = Vendor::new();
    let validator = v
        .builder(NOW)
        .state(BrokenStore)
        .on_corrupt_state(Policy::Refuse)
        .build()
        .unwrap();
    let l = validator.validate(&v.issue(&v.claims(9))).unwrap();
    assert_eq!(codes(l.warnings()), ["state_unavailable"]);
    assert_eq!(
        validator.save_state().unwrap_err().code(),
        "state_unavailable"
    );
}

// --- Corrupted state --------------------------------------------------------

#[test]
fn corrupted_state_file_is_reported_reset_and_rewritten() {
    let dir = Scratch::new("corrupt");
    let v = Vendor::new();
    let key = v.issue(&v.claims(10));
    let path = dir.path("s.state");
    assert!(
        v.builder(NOW + DAY)
            .state(FileStateStore::new(&path))
            .build()
            .unwrap()
            .validate(&key)
            .is_ok()
    );

    // The customer lowers the mark by hand to hide a rollback.
    let text = std::fs::read_to_string(&path).unwrap();
    let edited = text.replace(&format!("seen {}", NOW + DAY), &format!("seen {NOW}"));
    assert_ne!(edited, text);
    let mut damaged: Vec<(Vec<u8>, StateDefect)> = vec![
        (edited.into_bytes(), StateDefect::Checksum),
        (b"\x00\xff garbage \xfe".to_vec(), StateDefect::Unparseable),
        (Vec::new(), StateDefect::Unparseable),
        (vec![b'9'; 100_000], StateDefect::Unparseable),
        (
            State::default().encode("acme-viewer").into_bytes(),
            StateDefect::OtherProduct,
        ),
    ];
    let truncated = text.as_bytes()[..text.len() / 2].to_vec();
    damaged.push((truncated, StateDefect::Unparseable));
    for (bytes, defect) in damaged {
        std::fs::write(&path, &bytes).unwrap();
        let validator = v
            .builder(NOW)
            .state(FileStateStore::new(&path))
            .build()
            .unwrap();
        let l = validator.validate(&key).unwrap();
        assert_eq!(l.warnings(), [Problem::StateCorrupt { defect }]);
        assert!(!l.warnings()[0].customer_message().is_empty());
        // Reset and rewritten: the next run reads a valid state again.
        assert!(State::decode(PRODUCT, &std::fs::read(&path).unwrap()).is_ok());
        let next = v
            .builder(NOW)
            .state(FileStateStore::new(&path))
            .build()
            .unwrap();
        assert!(next.validate(&key).unwrap().is_clean());
    }

    std::fs::write(&path, b"junk").unwrap();
    let strict = v
        .builder(NOW)
        .state(FileStateStore::new(&path))
        .on_corrupt_state(Policy::Refuse)
        .build()
        .unwrap();
    assert_eq!(strict.validate(&key).unwrap_err().code(), "state_corrupt");
}

// --- Revocation -------------------------------------------------------------

#[test]
fn revoked_license_and_list_updates() {
    let v = Vendor::new();
    let key = v.issue(&v.claims(11));
    let validator = v.builder(NOW).build().unwrap();
    assert!(validator.validate(&key).is_ok());
    validator
        .load_revocation_list(&v.list(1, NOW - 100, NOW + DAY, &[11]))
        .unwrap();
    assert_eq!(validator.validate(&key).unwrap_err().code(), "revoked");
    // A newer list that no longer lists it un-revokes it.
    validator
        .load_revocation_list(&v.list(2, NOW - 50, NOW + DAY, &[]))
        .unwrap();
    assert!(validator.validate(&key).is_ok());
}

#[test]
fn rolled_back_list_is_refused_across_restarts() {
    let v = Vendor::new();
    let key = v.issue(&v.claims(12));
    let store = Arc::new(MemoryStateStore::new());
    let old = v.list(5, NOW - 10 * DAY, NOW + DAY, &[12]);
    let new = v.list(6, NOW - DAY, NOW + DAY, &[]);
    let first = v.builder(NOW).state(Arc::clone(&store)).build().unwrap();
    first.load_revocation_list(&old).unwrap();
    first.load_revocation_list(&new).unwrap();
    let e = first.load_revocation_list(&old).unwrap_err();
    assert_eq!(
        e,
        Problem::Core(keyseal::CoreError::RolledBackRevocationList {
            sequence: 5,
            seen: 6
        })
    );
    assert_eq!(
        first.revocation_list().unwrap().sequence(),
        6,
        "the newer list stays in force"
    );
    drop(first);

    // After a restart the sequence is remembered: the old list (which
    // revoked nothing the customer cares about... or did) is still refused.
    let second = v.builder(NOW).state(Arc::clone(&store)).build().unwrap();
    assert_eq!(
        second.load_revocation_list(&old).unwrap_err().code(),
        "rolled_back_revocation_list"
    );
    // A build with the old list fails as a whole.
    let built = v
        .builder(NOW)
        .state(Arc::clone(&store))
        .revocation_list(old.clone())
        .build();
    assert_eq!(built.unwrap_err().code(), "rolled_back_revocation_list");
    // The same list again is fine.
    second.load_revocation_list(&new).unwrap();
    assert!(second.validate(&key).is_ok());
}

#[test]
fn a_revoked_key_cannot_sign_the_list_that_would_unrevoke_it() {
    // No roots pinned, so any issuing key may sign lists; one of them leaked.
    let v = Vendor::new();
    let leaked = SigningKey::from_seed(&[8; 32]).unwrap();
    let mut keyring = v.keyring.clone();
    keyring.add(TrustedKey::new(leaked.public_key())).unwrap();
    let validator = Validator::builder(keyring, PRODUCT)
        .clock(ManualClock::new(NOW))
        .state(MemoryStateStore::new())
        .no_device()
        .build()
        .unwrap();
    let mut b = RevocationListBuilder::new(1, NOW - 10, NOW + DAY);
    b.revoke_key(leaked.key_id());
    validator
        .load_revocation_list(&b.sign(&v.key).unwrap())
        .unwrap();
    let pirate = license::issue(&leaked, &v.claims(70), None).unwrap();
    let pirate_key = license::to_text(&pirate);
    assert_eq!(
        validator.validate(&pirate_key).unwrap_err().code(),
        "key_revoked"
    );

    // The leaked key signs a newer, empty list: loaded directly, or shipped
    // in the license file next to the license it signed.
    let unrevoke = RevocationListBuilder::new(2, NOW, NOW + DAY)
        .sign(&leaked)
        .unwrap();
    assert_eq!(
        validator.load_revocation_list(&unrevoke).unwrap_err(),
        Problem::Core(keyseal::CoreError::KeyRevoked(leaked.key_id()))
    );
    let mut file = license::to_armored(&pirate);
    armor::write_block(&mut file, armor::REVOCATION_LIST, &unrevoke).unwrap();
    assert_eq!(validator.validate(&file).unwrap_err().code(), "key_revoked");
    assert_eq!(validator.revocation_list().unwrap().sequence(), 1);
    assert_eq!(
        validator.validate(&pirate_key).unwrap_err().code(),
        "key_revoked"
    );
    // The vendor's next list loads as usual.
    validator
        .load_revocation_list(&v.list(2, NOW, NOW + DAY, &[]))
        .unwrap();
}

#[test]
fn stale_list_under_each_policy() {
    let v = Vendor::new();
    let key = v.issue(&v.claims(13));
    let list = v.list(1, NOW - 10 * DAY, NOW - 3 * DAY, &[]); // stale for 3 days
    let with = |s: Staleness| {
        v.builder(NOW)
            .staleness(s)
            .revocation_list(list.clone())
            .build()
    };

    assert!(
        with(Staleness::Ignore)
            .unwrap()
            .validate(&key)
            .unwrap()
            .is_clean()
    );
    let warned = with(Staleness::Warn).unwrap().validate(&key).unwrap();
    assert_eq!(
        warned.warnings(),
        [Problem::Core(keyseal::CoreError::StaleRevocationList {
            next_update: NOW - 3 * DAY
        })]
    );
    let lenient = with(Staleness::RefuseAfter { days: 5 }).unwrap();
    assert_eq!(
        codes(lenient.validate(&key).unwrap().warnings()),
        ["stale_revocation_list"]
    );
    // Too stale to load at all under a strict policy...
    assert_eq!(
        with(Staleness::RefuseAfter { days: 2 }).unwrap_err().code(),
        "stale_revocation_list"
    );
    // ...and a list that goes stale while loaded refuses validations.
    let fresh = v.list(2, NOW - DAY, NOW + DAY, &[]);
    let clock = Arc::new(ManualClock::new(NOW));
    let validator = v
        .builder(NOW)
        .clock(Arc::clone(&clock))
        .staleness(Staleness::RefuseAfter { days: 1 })
        .revocation_list(fresh)
        .build()
        .unwrap();
    assert!(validator.validate(&key).unwrap().is_clean());
    clock.set(NOW + DAY + 3_600);
    assert_eq!(
        codes(validator.validate(&key).unwrap().warnings()),
        ["stale_revocation_list"]
    );
    clock.set(NOW + 2 * DAY + 1);
    let r = validator.validate(&key).unwrap_err();
    assert_eq!(r.code(), "stale_revocation_list");
    assert!(r.customer_message().contains("internet"));
}

#[test]
fn a_list_seen_before_must_not_go_missing() {
    let v = Vendor::new();
    let key = v.issue(&v.claims(14));
    let seen = State {
        seen: NOW,
        signed: NOW,
        list: Some(ListMark {
            rank: 0,
            sequence: 9,
            next_update: NOW + DAY,
        }),
    };
    let store = || MemoryStateStore::with_state(PRODUCT, &seen);
    let warn = v.builder(NOW).state(store()).build().unwrap();
    assert_eq!(
        warn.validate(&key).unwrap().warnings(),
        [Problem::RevocationListMissing {
            sequence: 9,
            next_update: NOW + DAY
        }]
    );
    let strict = v
        .builder(NOW + 3 * DAY)
        .state(store())
        .staleness(Staleness::RefuseAfter { days: 1 })
        .build()
        .unwrap();
    assert_eq!(
        strict.validate(&key).unwrap_err().code(),
        "revocation_list_missing"
    );
    let ignore = v
        .builder(NOW)
        .state(store())
        .staleness(Staleness::Ignore)
        .build()
        .unwrap();
    assert!(ignore.validate(&key).unwrap().is_clean());
}

#[test]
fn list_issue_time_raises_the_mark() {
    let v = Vendor::new();
    let validator = v.builder(NOW - DAY / 2).build().unwrap();
    validator
        .load_revocation_list(&v.list(1, NOW, NOW + DAY, &[]))
        .unwrap();
    assert_eq!(validator.high_water_mark(), NOW);
    let l = validator.validate(&v.issue(&v.claims(15))).unwrap();
    assert_eq!(l.warnings(), [Problem::ClockSuspect { behind_by: DAY / 2 }]);
    // A list dated more than a day past the clock is loaded, but its time
    // is no evidence: the mark stays.
    validator
        .load_revocation_list(&v.list(2, NOW + 5 * DAY, NOW + 6 * DAY, &[]))
        .unwrap();
    assert_eq!(validator.high_water_mark(), NOW);
}

#[test]
fn list_files_binary_and_armored() {
    let dir = Scratch::new("lists");
    let v = Vendor::new();
    let key = v.issue(&v.claims(16));
    let bin = dir.write("l.bin", v.list(1, NOW - 10, NOW + DAY, &[16]));
    let validator = v.builder(NOW).revocation_list_file(&bin).build().unwrap();
    assert_eq!(validator.validate(&key).unwrap_err().code(), "revoked");
    let mut armored = String::new();
    armor::write_block(
        &mut armored,
        armor::REVOCATION_LIST,
        &v.list(2, NOW - 5, NOW + DAY, &[]),
    )
    .unwrap();
    let file = dir.write("l.txt", armored.replace('\n', "\r\n"));
    validator.load_revocation_list_file(&file).unwrap();
    assert!(validator.validate(&key).is_ok());
    assert_eq!(
        validator
            .load_revocation_list_file(dir.path("none"))
            .unwrap_err()
            .code(),
        "unreadable"
    );
    let mut forged = v.list(3, NOW, NOW + DAY, &[]);
    let n = forged.len();
    forged[n - 1] ^= 1;
    assert_eq!(
        validator.load_revocation_list(&forged).unwrap_err().code(),
        "bad_signature"
    );
    assert_eq!(validator.revocation_list().unwrap().sequence(), 2);
}

// --- Advisory mode ----------------------------------------------------------

#[test]
fn advisory_mode_reports_instead_of_refusing() {
    let v = Vendor::new();
    let advisory = |now| v.builder(now).mode(Mode::Advisory).build().unwrap();

    let mut expired = v.claims(20);
    expired.expires_at = Some(NOW - DAY);
    let l = advisory(NOW).validate(&v.issue(&expired)).unwrap();
    assert_eq!(
        l.status(),
        Status::Expired {
            expired_at: NOW - DAY
        }
    );
    assert_eq!(codes(l.warnings()), ["expired"]);
    assert!(l.has("export-pdf"));

    let mut other = v.claims(21);
    other.product = "acme-viewer";
    assert_eq!(
        codes(advisory(NOW).validate(&v.issue(&other)).unwrap().warnings()),
        ["wrong_product"]
    );

    let revoking = v
        .builder(NOW)
        .mode(Mode::Advisory)
        .revocation_list(v.list(1, NOW, NOW + DAY, &[22]))
        .build()
        .unwrap();
    assert_eq!(
        codes(
            revoking
                .validate(&v.issue(&v.claims(22)))
                .unwrap()
                .warnings()
        ),
        ["revoked"]
    );

    let mut capped = v.claims(23);
    capped.max_version = Some("4.x".parse().unwrap());
    let versioned = v
        .builder(NOW)
        .mode(Mode::Advisory)
        .app_version("5.0.0".parse().unwrap())
        .build()
        .unwrap();
    assert_eq!(
        codes(versioned.validate(&v.issue(&capped)).unwrap().warnings()),
        ["version_not_covered"]
    );

    // Clock and stale-list refusals become warnings too, after the core one.
    let store = MemoryStateStore::with_state(
        PRODUCT,
        &State {
            seen: NOW + 2 * DAY,
            signed: 0,
            list: None,
        },
    );
    let soft = v
        .builder(NOW)
        .mode(Mode::Advisory)
        .state(store)
        .on_clock_suspect(Policy::Refuse)
        .staleness(Staleness::RefuseAfter { days: 0 })
        .revocation_list(v.list(1, NOW - 9 * DAY, NOW - 8 * DAY, &[]))
        .build()
        .unwrap();
    let l = soft.validate(&v.issue(&expired)).unwrap();
    assert_eq!(
        codes(l.warnings()),
        ["expired", "clock_suspect", "stale_revocation_list"]
    );

    // Still refused: anything whose signature did not verify.
    let a = advisory(NOW);
    assert_eq!(a.validate("ks1.AQID").unwrap_err().code(), "malformed");
    assert_eq!(
        a.validate("ks2.AAAA").unwrap_err().code(),
        "unsupported_version"
    );
    let stranger = SigningKey::from_seed(&[99; 32]).unwrap();
    let foreign = license::to_text(&license::issue(&stranger, &expired, None).unwrap());
    assert_eq!(a.validate(&foreign).unwrap_err().code(), "unknown_key");
    let mut bytes = license::issue(&v.key, &expired, None).unwrap();
    let n = bytes.len();
    bytes[n - 5] ^= 1;
    assert_eq!(
        a.validate(&license::to_text(&bytes)).unwrap_err().code(),
        "bad_signature"
    );
    // An exact binding to another device cannot be verified here at all.
    let fp = Fingerprint::from_components(&[[1; 16]]).unwrap();
    let bound = v.issue_bound(&v.claims(24), &fp, DeviceRule::Exact);
    assert_eq!(a.validate(&bound).unwrap_err().code(), "wrong_device");
}

#[test]
fn advisory_and_enforce_agree_on_clean_licenses() {
    let v = Vendor::new();
    let key = v.issue(&v.claims(25));
    let a = v
        .builder(NOW)
        .mode(Mode::Advisory)
        .build()
        .unwrap()
        .validate(&key)
        .unwrap();
    let e = v.builder(NOW).build().unwrap().validate(&key).unwrap();
    assert_eq!(a, e);
}

// --- Inputs -----------------------------------------------------------------

#[test]
fn armored_file_with_certificate_and_list() {
    let root = SigningKey::from_seed(&[1; 32]).unwrap();
    let issuing = SigningKey::from_seed(&[2; 32]).unwrap();
    let mut keyring = Keyring::new();
    keyring.add_root(root.public_key()).unwrap();
    let cert = KeyCertificate::sign(
        &root,
        &TrustedKey::new(issuing.public_key())
            .products(&[PRODUCT])
            .unwrap(),
    );
    let v = Vendor {
        key: issuing,
        keyring,
    };
    let lic = license::issue(&v.key, &v.claims(30), None).unwrap();

    let mut file = String::from("Dear customer,\r\n\r\nyour license is below.\r\n\r\n");
    armor::write_block(&mut file, armor::LICENSE, &lic).unwrap();
    let without_cert = file.clone();
    armor::write_block(&mut file, armor::KEY_CERTIFICATE, &cert).unwrap();

    let validator = v.builder(NOW).build().unwrap();
    assert_eq!(
        validator.validate(&without_cert).unwrap_err().code(),
        "unknown_key"
    );
    let l = validator.validate(&file).unwrap();
    assert_eq!(l.key_id(), v.key.key_id());
    // The certificate was trusted for that validation only.
    assert_eq!(
        validator
            .validate(&license::to_text(&lic))
            .unwrap_err()
            .code(),
        "unknown_key"
    );

    // A list signed by the root refuses the file: roots only certify keys.
    let mut by_root = file.clone();
    armor::write_block(
        &mut by_root,
        armor::REVOCATION_LIST,
        &keyseal::keyseal_core::revocation::RevocationListBuilder::new(4, NOW - 10, NOW + DAY)
            .sign(&root)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        validator.validate(&by_root).unwrap_err().code(),
        "unknown_key"
    );
    assert!(validator.revocation_list().is_none());

    // A list in the file, signed by the key the file's certificate
    // certifies, is loaded (and the certificate with it).
    let mut b =
        keyseal::keyseal_core::revocation::RevocationListBuilder::new(4, NOW - 10, NOW + DAY);
    b.revoke_license(keyseal::LicenseId::from_u128(30));
    let mut with_list = file.clone();
    armor::write_block(
        &mut with_list,
        armor::REVOCATION_LIST,
        &b.sign(&v.key).unwrap(),
    )
    .unwrap();
    assert_eq!(
        validator.validate(&with_list).unwrap_err().code(),
        "revoked"
    );
    assert_eq!(validator.revocation_list().unwrap().sequence(), 4);
    // An older list in a file is ignored, not a refusal of the license.
    let old = keyseal::keyseal_core::revocation::RevocationListBuilder::new(3, NOW - 20, NOW + DAY)
        .sign(&v.key)
        .unwrap();
    let mut with_old = String::new();
    armor::write_block(
        &mut with_old,
        armor::LICENSE,
        &license::issue(&v.key, &v.claims(31), None).unwrap(),
    )
    .unwrap();
    armor::write_block(&mut with_old, armor::KEY_CERTIFICATE, &cert).unwrap();
    armor::write_block(&mut with_old, armor::REVOCATION_LIST, &old).unwrap();
    assert!(validator.validate(&with_old).is_ok());
    assert_eq!(validator.revocation_list().unwrap().sequence(), 4);
    // A forged certificate refuses the file.
    let mut bad_cert = cert.clone();
    bad_cert[12] ^= 1;
    let mut forged = String::new();
    armor::write_block(&mut forged, armor::LICENSE, &lic).unwrap();
    armor::write_block(&mut forged, armor::KEY_CERTIFICATE, &bad_cert).unwrap();
    assert_eq!(
        validator.validate(&forged).unwrap_err().code(),
        "bad_signature"
    );
}

#[test]
fn license_files() {
    let dir = Scratch::new("files");
    let v = Vendor::new();
    let key = v.issue(&v.claims(32));
    let validator = v.builder(NOW).build().unwrap();
    // Notepad: a byte-order mark and CRLF, the key wrapped.
    let wrapped = format!("\u{feff}{}\r\n{}\r\n", &key[..50], &key[50..]);
    assert!(validator.validate_file(dir.write("k.txt", wrapped)).is_ok());
    let armored = license::to_armored(&license::issue(&v.key, &v.claims(33), None).unwrap());
    assert!(validator.validate_file(dir.write("k.lic", armored)).is_ok());
    assert_eq!(
        validator
            .validate_file(dir.path("missing.lic"))
            .unwrap_err()
            .code(),
        "license_not_found"
    );
    assert_eq!(
        validator
            .validate_file(dir.write("e.lic", " \n"))
            .unwrap_err()
            .code(),
        "license_not_found"
    );
    assert_eq!(
        validator
            .validate_file(dir.write("b.lic", [0xff, 0xfe, 0]))
            .unwrap_err()
            .code(),
        "unreadable"
    );
    assert_eq!(
        validator
            .validate_file(dir.write("x.lic", "Your key is ks1.AAAA"))
            .unwrap_err()
            .code(),
        "malformed"
    );
}

const ENV_CHILD: &str = "KEYSEAL_SDK_TEST_LICENSE";

/// Runs in a child process (below) with the variable set; a no-op otherwise.
#[test]
fn validate_env_child() {
    let Ok(expect) = std::env::var("KEYSEAL_SDK_TEST_EXPECT") else {
        return;
    };
    let v = Vendor::new();
    let got = match v.builder(NOW).build().unwrap().validate_env(ENV_CHILD) {
        Ok(l) => l.plan().to_owned(),
        Err(r) => r.code().to_owned(),
    };
    assert_eq!(got, expect);
}

#[test]
fn validate_env() {
    let v = Vendor::new();
    let key = v.issue(&v.claims(34));
    let validator = v.builder(NOW).build().unwrap();
    let r = validator
        .validate_env("KEYSEAL_SDK_TEST_SURELY_UNSET")
        .unwrap_err();
    assert_eq!(r.code(), "license_not_found");
    // Setting a variable in this process needs `unsafe`: run a child instead.
    let exe = std::env::current_exe().unwrap();
    for (value, expect) in [
        (format!("{key}\n"), "pro"),
        (String::new(), "license_not_found"),
        ("ks1.A".into(), "malformed"),
    ] {
        let out = std::process::Command::new(&exe)
            .args([
                "--exact",
                "validate_env_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(ENV_CHILD, &value)
            .env("KEYSEAL_SDK_TEST_EXPECT", expect)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "{expect}: {stdout}"
        );
    }
}

#[test]
fn messages_never_echo_the_key_or_ids() {
    let v = Vendor::new();
    let validator = v.builder(NOW).build().unwrap();
    let secretish = "ks1.c2VjcmV0LWxvb2tpbmctcGF5bG9hZA";
    let r = validator.validate(secretish).unwrap_err();
    for text in [r.to_string(), r.customer_message(), format!("{r:?}")] {
        assert!(!text.contains("c2VjcmV0"), "{text}");
    }
}

#[test]
fn invalid_product_is_a_config_error() {
    let v = Vendor::new();
    let e = Validator::builder(v.keyring.clone(), "acme cad")
        .clock(ManualClock::new(NOW))
        .state(MemoryStateStore::new())
        .build();
    assert_eq!(e.unwrap_err().code(), "invalid_config");
}

#[test]
fn concurrent_validation_while_lists_load() {
    let v = Vendor::new();
    let key = v.issue(&v.claims(50));
    let store = Arc::new(MemoryStateStore::new());
    let clock = Arc::new(ManualClock::new(NOW));
    let validator = Arc::new(
        v.builder(NOW)
            .clock(Arc::clone(&clock))
            .state(Arc::clone(&store))
            .build()
            .unwrap(),
    );
    let lists: Vec<Vec<u8>> = (1..=20)
        .map(|seq| v.list(seq, NOW - 100 + seq, NOW + DAY, &[]))
        .collect();
    std::thread::scope(|s| {
        for _ in 0..4 {
            let (validator, key) = (Arc::clone(&validator), key.clone());
            s.spawn(move || {
                for _ in 0..200 {
                    let l = validator.validate(&key).unwrap();
                    assert!(l.is_clean(), "{:?}", l.warnings());
                }
            });
        }
        for list in &lists {
            validator.load_revocation_list(list).unwrap();
            clock.advance(61);
        }
    });
    assert_eq!(validator.revocation_list().unwrap().sequence(), 20);
    let saved = State::decode(PRODUCT, &store.contents().unwrap()).unwrap();
    assert_eq!(saved.list.map(|l| l.sequence), Some(20));
    // Written by the last list load; the threads may or may not have seen the final advance.
    assert!(saved.seen >= NOW + 19 * 61, "{saved:?}");
}
