//! The small persisted state behind the clock-rollback guard and the
//! revocation-list rollback check, and where it is stored.
//!
//! The state holds the latest time the app has seen (from the clock, from
//! license issue times and from revocation lists), the latest of those that
//! the vendor signed, and the newest revocation list seen. Its text form
//! ([`State::encode`]) ends in a checksum, so an edited or damaged file is
//! detected and reported, never trusted and never a crash.

use std::fmt;
use std::io;
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha512};

use crate::MaybeSendSync;

/// Version in the first line of the state text. Version 1 (no signer rank
/// on the list line) is still read, as rank 0.
pub const STATE_FORMAT_VERSION: u32 = 2;
/// Largest state text accepted (a valid one is about 250 bytes).
pub const MAX_STATE_LEN: usize = 1024;
const MAGIC: &str = "keyseal-state";
const CHECKSUM_DOMAIN: &[u8] = b"keyseal/state/v1\0";

/// The newest revocation list seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListMark {
    /// Its signer's rank ([`keyseal_core::ListOrder`]): a list of a
    /// lower-ranked signer is refused.
    pub rank: u64,
    /// Its sequence number; a list of the same rank with a lower one is
    /// refused.
    pub sequence: u64,
    /// Its next-update time (unix seconds).
    pub next_update: u64,
}

/// What the validator persists between runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct State {
    /// Latest time seen from any source (unix seconds): the high-water mark.
    pub seen: u64,
    /// Latest vendor-signed time seen: license issue times and revocation
    /// list issue times. Never above `seen`.
    pub signed: u64,
    /// The newest revocation list seen, if any.
    pub list: Option<ListMark>,
}

/// Why a state text was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StateDefect {
    /// Not the state format (not text, wrong lines, bad numbers, too long).
    Unparseable,
    /// A newer state format version.
    UnknownVersion,
    /// The state of another product.
    OtherProduct,
    /// The checksum does not match: the text was edited or damaged.
    Checksum,
    /// The fields contradict each other (signed time above the seen time).
    Inconsistent,
}

impl fmt::Display for StateDefect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StateDefect::Unparseable => "not a keyseal state",
            StateDefect::UnknownVersion => "unknown state format version",
            StateDefect::OtherProduct => "state of another product",
            StateDefect::Checksum => "checksum mismatch (edited or damaged)",
            StateDefect::Inconsistent => "inconsistent fields",
        })
    }
}

impl ListMark {
    /// Where the list stands among lists.
    #[must_use]
    pub const fn order(&self) -> keyseal_core::ListOrder {
        keyseal_core::ListOrder {
            rank: self.rank,
            sequence: self.sequence,
        }
    }

    /// The one of two marks that supersedes the other (higher signer rank,
    /// then higher sequence; `a` on a tie), or the one there is.
    #[must_use]
    pub fn newest(a: Option<ListMark>, b: Option<ListMark>) -> Option<ListMark> {
        match (a, b) {
            (Some(a), Some(b)) => Some(if b.order() > a.order() { b } else { a }),
            (a, b) => a.or(b),
        }
    }
}

impl State {
    /// The field-wise newest of two states: the later times, the list that
    /// supersedes the other (higher signer rank, then higher sequence).
    #[must_use]
    pub fn merge(&self, other: &State) -> State {
        State {
            seen: self.seen.max(other.seen),
            signed: self.signed.max(other.signed),
            list: ListMark::newest(self.list, other.list),
        }
    }

    /// The text form, for `product`:
    ///
    /// ```text
    /// keyseal-state 2
    /// product acme-cad
    /// seen 1800000000
    /// signed 1799996400
    /// list 1794000000 10 1800086400
    /// checksum <128 hex digits>
    /// ```
    ///
    /// The list line holds the signer's rank, the sequence and the next
    /// update; `list none` if no list was seen (version 1 had no rank). Each line ends in `\n`. The checksum
    /// is the hex SHA-512 of `"keyseal/state/v1\0" || u64be(len(product)) ||
    /// product || every byte before the checksum line`.
    #[must_use]
    pub fn encode(&self, product: &str) -> String {
        let list = match self.list {
            Some(l) => format!("{} {} {}", l.rank, l.sequence, l.next_update),
            None => "none".to_owned(),
        };
        let mut s = format!(
            "{MAGIC} {STATE_FORMAT_VERSION}\nproduct {product}\nseen {}\nsigned {}\nlist {list}\n",
            self.seen, self.signed
        );
        let sum = checksum(product, s.as_bytes());
        s.push_str("checksum ");
        s.push_str(&sum);
        s.push('\n');
        s
    }

    /// Parses and checks the text form for `product`. Anything but exactly
    /// what [`State::encode`] writes is refused.
    pub fn decode(product: &str, bytes: &[u8]) -> Result<State, StateDefect> {
        if bytes.len() > MAX_STATE_LEN {
            return Err(StateDefect::Unparseable);
        }
        let text = std::str::from_utf8(bytes).map_err(|_| StateDefect::Unparseable)?;
        let body_end = text.rfind("\nchecksum ").ok_or(StateDefect::Unparseable)? + 1;
        let (body, sum_line) = text.split_at(body_end);
        let sum = sum_line
            .strip_prefix("checksum ")
            .and_then(|s| s.strip_suffix('\n'))
            .ok_or(StateDefect::Unparseable)?;
        let mut lines = body.split_terminator('\n');
        let mut field = |name: &str| -> Result<&str, StateDefect> {
            lines
                .next()
                .and_then(|l| l.strip_prefix(name))
                .and_then(|l| l.strip_prefix(' '))
                .ok_or(StateDefect::Unparseable)
        };
        let version = field(MAGIC)?;
        let ranked = match version {
            "1" => false,
            "2" => true,
            v => {
                return Err(if number(v).is_ok() {
                    StateDefect::UnknownVersion
                } else {
                    StateDefect::Unparseable
                });
            }
        };
        if field("product")? != product {
            return Err(StateDefect::OtherProduct);
        }
        let seen = number(field("seen")?)?;
        let signed = number(field("signed")?)?;
        let list = match field("list")? {
            "none" => None,
            l => {
                let (rank, l) = if ranked {
                    let (rank, rest) = l.split_once(' ').ok_or(StateDefect::Unparseable)?;
                    (number(rank)?, rest)
                } else {
                    (0, l)
                };
                let (seq, next) = l.split_once(' ').ok_or(StateDefect::Unparseable)?;
                Some(ListMark {
                    rank,
                    sequence: number(seq)?,
                    next_update: number(next)?,
                })
            }
        };
        if lines.next().is_some() {
            return Err(StateDefect::Unparseable);
        }
        if sum != checksum(product, body.as_bytes()) {
            return Err(StateDefect::Checksum);
        }
        if signed > seen {
            return Err(StateDefect::Inconsistent);
        }
        Ok(State { seen, signed, list })
    }
}

fn number(s: &str) -> Result<u64, StateDefect> {
    if s.is_empty() || (s.len() > 1 && s.starts_with('0')) || !s.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(StateDefect::Unparseable);
    }
    s.parse().map_err(|_| StateDefect::Unparseable)
}

fn checksum(product: &str, body: &[u8]) -> String {
    let d = Sha512::new()
        .chain_update(CHECKSUM_DOMAIN)
        .chain_update((product.len() as u64).to_be_bytes())
        .chain_update(product.as_bytes())
        .chain_update(body)
        .finalize();
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Where the state lives. Object safe and byte-oriented, so bindings
/// implement it over `localStorage`, a Python object or a keychain; the
/// validator encodes and checks the bytes ([`State::encode`]).
///
/// A store should write atomically: a crash mid-write must leave the old
/// bytes or the new ones (a torn write is reported as corrupt, nothing worse).
pub trait StateStore: MaybeSendSync {
    /// The saved bytes, or `None` if nothing was ever saved.
    fn load(&self) -> io::Result<Option<Vec<u8>>>;
    /// Replaces the saved bytes.
    fn save(&self, bytes: &[u8]) -> io::Result<()>;
    /// Reads the saved bytes (`None` if there are none or they cannot be
    /// read), has `merge` make the new bytes from them, and saves those, as
    /// one step that other writers of the same store cannot interleave with.
    /// The validator saves its state this way, so that two processes
    /// sharing a store cannot lose each other's marks.
    ///
    /// The default is [`load`](Self::load) then [`save`](Self::save): right
    /// for a store only one process writes. [`FileStateStore`] holds an
    /// advisory lock meanwhile.
    fn update(&self, merge: &mut dyn FnMut(Option<Vec<u8>>) -> Vec<u8>) -> io::Result<()> {
        let stored = self.load().unwrap_or(None);
        self.save(&merge(stored))
    }
}

impl<T: StateStore + ?Sized> StateStore for Box<T> {
    fn load(&self) -> io::Result<Option<Vec<u8>>> {
        (**self).load()
    }
    fn save(&self, bytes: &[u8]) -> io::Result<()> {
        (**self).save(bytes)
    }
    fn update(&self, merge: &mut dyn FnMut(Option<Vec<u8>>) -> Vec<u8>) -> io::Result<()> {
        (**self).update(merge)
    }
}

impl<T: StateStore + ?Sized> StateStore for Arc<T> {
    fn load(&self) -> io::Result<Option<Vec<u8>>> {
        (**self).load()
    }
    fn save(&self, bytes: &[u8]) -> io::Result<()> {
        (**self).save(bytes)
    }
    fn update(&self, merge: &mut dyn FnMut(Option<Vec<u8>>) -> Vec<u8>) -> io::Result<()> {
        (**self).update(merge)
    }
}

/// A store in memory: state lasts as long as the process. For tests, and
/// for apps that persist the bytes themselves ([`MemoryStateStore::contents`]).
#[derive(Debug, Default)]
pub struct MemoryStateStore {
    bytes: Mutex<Option<Vec<u8>>>,
}

impl MemoryStateStore {
    /// An empty store (nothing saved yet).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A store holding these bytes, as if saved before.
    #[must_use]
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        MemoryStateStore {
            bytes: Mutex::new(Some(bytes)),
        }
    }

    /// A store holding `state` for `product`.
    #[must_use]
    pub fn with_state(product: &str, state: &State) -> Self {
        Self::from_bytes(state.encode(product).into_bytes())
    }

    /// The bytes saved last, if any.
    #[must_use]
    pub fn contents(&self) -> Option<Vec<u8>> {
        self.bytes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Replaces the saved bytes (tests use it to damage the state).
    pub fn set_contents(&self, bytes: Option<Vec<u8>>) {
        *self
            .bytes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = bytes;
    }
}

impl StateStore for MemoryStateStore {
    fn load(&self) -> io::Result<Option<Vec<u8>>> {
        Ok(self.contents())
    }
    fn save(&self, bytes: &[u8]) -> io::Result<()> {
        self.set_contents(Some(bytes.to_vec()));
        Ok(())
    }
}

#[cfg(keyseal_os)]
pub use file::{FileStateStore, LOCK_WAIT, default_path};

#[cfg(keyseal_os)]
mod file {
    use std::fs;
    use std::io::{self, Read, Write};
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{Duration, Instant};

    use super::{MAX_STATE_LEN, StateStore};

    /// A store in one file, written atomically (a temporary file in the
    /// same directory, flushed, then renamed over the old one). Missing
    /// parent directories are created on the first save.
    #[derive(Debug, Clone)]
    pub struct FileStateStore {
        path: PathBuf,
        /// How long to wait for another process's lock: [`LOCK_WAIT`]
        /// (longer only in tests, which must not depend on the disk's
        /// speed under load).
        pub(super) wait: Duration,
    }

    impl FileStateStore {
        /// A store at `path`, a file the app chooses.
        #[must_use]
        pub fn new(path: impl Into<PathBuf>) -> Self {
            FileStateStore {
                path: path.into(),
                wait: LOCK_WAIT,
            }
        }

        /// A store at [`default_path`] for `product`, if the platform has a
        /// per-user data directory.
        #[must_use]
        pub fn default_for(product: &str) -> Option<Self> {
            default_path(product).map(Self::new)
        }

        /// The file.
        #[must_use]
        pub fn path(&self) -> &Path {
            &self.path
        }
    }

    impl StateStore for FileStateStore {
        fn load(&self) -> io::Result<Option<Vec<u8>>> {
            let file = match fs::File::open(&self.path) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e),
            };
            // One byte more than accepted, so an oversized file is seen as such.
            let mut bytes = Vec::new();
            file.take(MAX_STATE_LEN as u64 + 1)
                .read_to_end(&mut bytes)?;
            Ok(Some(bytes))
        }

        fn save(&self, bytes: &[u8]) -> io::Result<()> {
            static COUNTER: AtomicU64 = AtomicU64::new(0);
            if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                fs::create_dir_all(dir)?;
            }
            let name = self
                .path
                .file_name()
                .ok_or_else(|| io::Error::other("state path has no file name"))?;
            let mut tmp_name = name.to_os_string();
            tmp_name.push(format!(
                ".tmp.{}.{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            let tmp = self.path.with_file_name(tmp_name);
            let written = (|| {
                let mut f = fs::File::create(&tmp)?;
                f.write_all(bytes)?;
                f.sync_all()?;
                fs::rename(&tmp, &self.path)
            })();
            if written.is_err() {
                let _ = fs::remove_file(&tmp);
            }
            written
        }

        /// Under an exclusive advisory lock on `<file>.lock` beside the
        /// state file (created once, never removed: removing it would let
        /// two processes lock two different files). The lock is waited for
        /// at most [`LOCK_WAIT`]; a process that holds it longer (stopped in
        /// a debugger, say) cannot hang validation, which then goes ahead
        /// unlocked as a store without locking would.
        fn update(&self, merge: &mut dyn FnMut(Option<Vec<u8>>) -> Vec<u8>) -> io::Result<()> {
            let lock = self.lock();
            let stored = self.load().unwrap_or(None);
            let written = self.save(&merge(stored));
            drop(lock);
            written
        }
    }

    /// How long [`FileStateStore`] waits for another process's lock.
    pub const LOCK_WAIT: Duration = Duration::from_millis(500);

    impl FileStateStore {
        /// The lock file, locked; `None` if it cannot be had in time.
        fn lock(&self) -> Option<fs::File> {
            if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                fs::create_dir_all(dir).ok()?;
            }
            let mut name = self.path.file_name()?.to_os_string();
            name.push(".lock");
            let file = fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(self.path.with_file_name(name))
                .ok()?;
            let deadline = Instant::now() + self.wait;
            loop {
                match file.try_lock() {
                    Ok(()) => return Some(file),
                    Err(fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    Err(_) => return None,
                }
            }
        }
    }

    /// The default state file of `product` in the per-user data directory:
    ///
    /// - Linux and other Unix: `$XDG_STATE_HOME/keyseal/<product>.state`,
    ///   else `~/.local/state/keyseal/<product>.state`;
    /// - macOS: `~/Library/Application Support/keyseal/<product>.state`;
    /// - Windows: `%LOCALAPPDATA%\keyseal\<product>.state`.
    ///
    /// `:` in a product id becomes `_` (Windows file names cannot hold it).
    /// `None` if the directory cannot be found (no home directory).
    #[must_use]
    pub fn default_path(product: &str) -> Option<PathBuf> {
        path_in(product, |name| std::env::var_os(name))
    }

    /// [`default_path`] with the environment read through `env`.
    pub(super) fn path_in(
        product: &str,
        env: impl Fn(&str) -> Option<std::ffi::OsString>,
    ) -> Option<PathBuf> {
        let var = |name: &str| env(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        let base = if cfg!(windows) {
            var("LOCALAPPDATA")?
        } else if cfg!(target_os = "macos") {
            var("HOME")?.join("Library").join("Application Support")
        } else {
            var("XDG_STATE_HOME")
                .filter(|p| p.is_absolute())
                .or_else(|| var("HOME").map(|h| h.join(".local").join("state")))?
        };
        Some(
            base.join("keyseal")
                .join(format!("{}.state", product.replace(':', "_"))),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> State {
        State {
            seen: 1_800_000_000,
            signed: 1_799_996_400,
            list: Some(ListMark {
                rank: 1_794_000_000,
                sequence: 10,
                next_update: 1_800_086_400,
            }),
        }
    }

    #[test]
    fn version_1_states_are_read_with_rank_0() {
        let body = "keyseal-state 1\nproduct acme-cad\nseen 1800000000\nsigned 1799996400\nlist 10 1800086400\n";
        let text = format!("{body}checksum {}\n", checksum("acme-cad", body.as_bytes()));
        let mut want = sample();
        want.list = want.list.map(|l| ListMark { rank: 0, ..l });
        assert_eq!(State::decode("acme-cad", text.as_bytes()), Ok(want));
        // Found by fuzzing (fuzz target sdk_state): a version 1 state is
        // written back as version 2, which reads as the same state.
        let body = "keyseal-state 1\nproduct acme-cad\nseen 0\nsigned 0\nlist none\n";
        let text = format!("{body}checksum {}\n", checksum("acme-cad", body.as_bytes()));
        let state = State::decode("acme-cad", text.as_bytes()).unwrap();
        let again = state.encode("acme-cad");
        assert!(again.starts_with("keyseal-state 2\n"));
        assert_eq!(State::decode("acme-cad", again.as_bytes()), Ok(state));
        // A version 2 list line in a version 1 state is refused.
        let v2 = sample().encode("acme-cad");
        let body = v2[..v2.rfind("checksum").unwrap()].replace("state 2", "state 1");
        let text = format!("{body}checksum {}\n", checksum("acme-cad", body.as_bytes()));
        assert_eq!(
            State::decode("acme-cad", text.as_bytes()),
            Err(StateDefect::Unparseable)
        );
    }

    #[test]
    fn round_trip() {
        for s in [sample(), State::default()] {
            let text = s.encode("acme-cad");
            assert!(text.len() < MAX_STATE_LEN);
            assert_eq!(State::decode("acme-cad", text.as_bytes()), Ok(s));
        }
        assert!(State::default().encode("p").contains("\nlist none\n"));
    }

    #[test]
    fn any_edit_is_detected() {
        let text = sample().encode("acme-cad");
        // Lowering the clock mark by hand is the edit that matters.
        let edited = text.replace("seen 1800000000", "seen 1700000000");
        assert_eq!(
            State::decode("acme-cad", edited.as_bytes()),
            Err(StateDefect::Checksum)
        );
        assert_eq!(
            State::decode("acme-viewer", text.as_bytes()),
            Err(StateDefect::OtherProduct)
        );
        assert_eq!(
            State::decode("acme-cad", text.replace("state 2", "state 3").as_bytes()),
            Err(StateDefect::UnknownVersion)
        );
        // Every single-byte change and every truncation is refused, never a panic.
        let bytes = text.as_bytes();
        for i in 0..bytes.len() {
            let mut b = bytes.to_vec();
            b[i] ^= 0x01;
            assert!(State::decode("acme-cad", &b).is_err(), "flip at {i}");
            assert!(
                State::decode("acme-cad", &bytes[..i]).is_err(),
                "truncated at {i}"
            );
        }
        for junk in [
            &b""[..],
            b"\xff\xfe",
            b"checksum \n",
            &[b'x'; 5000][..],
            b"\nchecksum 00\n",
        ] {
            assert_eq!(
                State::decode("acme-cad", junk),
                Err(StateDefect::Unparseable)
            );
        }
    }

    #[test]
    fn inconsistent_fields_are_refused_even_with_a_valid_checksum() {
        let s = State {
            seen: 5,
            signed: 6,
            list: None,
        };
        assert_eq!(
            State::decode("p", s.encode("p").as_bytes()),
            Err(StateDefect::Inconsistent)
        );
    }

    #[test]
    fn merge_takes_the_newest() {
        let a = State {
            seen: 10,
            signed: 3,
            list: Some(ListMark {
                rank: 7,
                sequence: 2,
                next_update: 50,
            }),
        };
        let b = State {
            seen: 8,
            signed: 5,
            list: Some(ListMark {
                rank: 7,
                sequence: 3,
                next_update: 40,
            }),
        };
        assert_eq!(
            a.merge(&b),
            State {
                seen: 10,
                signed: 5,
                list: b.list
            }
        );
        assert_eq!(State::default().merge(&a), a);
        // A list of a higher-ranked signer supersedes whatever the sequence.
        let newer_key = State {
            seen: 0,
            signed: 0,
            list: Some(ListMark {
                rank: 8,
                sequence: 1,
                next_update: 60,
            }),
        };
        assert_eq!(b.merge(&newer_key).list, newer_key.list);
        assert_eq!(newer_key.merge(&b).list, newer_key.list);
    }

    #[cfg(keyseal_os)]
    #[test]
    fn file_store_round_trip_and_missing_file() {
        let dir = std::env::temp_dir().join(format!("keyseal-state-unit-{}", std::process::id()));
        let store = FileStateStore::new(dir.join("sub").join("x.state"));
        assert_eq!(store.load().unwrap(), None);
        store.save(b"one").unwrap();
        store.save(b"two").unwrap();
        assert_eq!(store.load().unwrap(), Some(b"two".to_vec()));
        // No temporary files left behind.
        assert_eq!(std::fs::read_dir(dir.join("sub")).unwrap().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(keyseal_os)]
    #[test]
    fn file_store_updates_do_not_interleave() {
        // Two stores on one file, as two processes would have: each adds
        // one to a counter, 100 times. With the lock no update is lost.
        let dir = std::env::temp_dir().join(format!(
            "keyseal-state-lock-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("counter.state");
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let mut store = FileStateStore::new(&path);
                // What is tested is the lock, not how long an fsync takes
                // on a loaded machine: with LOCK_WAIT a worker could give
                // up waiting behind a slow write and go ahead unlocked.
                store.wait = std::time::Duration::from_secs(60);
                std::thread::spawn(move || {
                    for _ in 0..100 {
                        store
                            .update(&mut |stored| {
                                let n: u64 = stored
                                    .and_then(|b| String::from_utf8(b).ok())
                                    .and_then(|t| t.parse().ok())
                                    .unwrap_or(0);
                                // Widen the window between read and write.
                                std::thread::yield_now();
                                (n + 1).to_string().into_bytes()
                            })
                            .unwrap();
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        let total = FileStateStore::new(&path).load().unwrap().unwrap();
        assert_eq!(String::from_utf8(total).unwrap(), "200");
        assert!(dir.join("counter.state.lock").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(keyseal_os)]
    #[test]
    fn default_path_is_per_product() {
        use std::ffi::OsString;
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| OsString::from(v))
            }
        };
        let path =
            |pairs| file::path_in("acme:cad", env(pairs)).map(|p| p.to_string_lossy().into_owned());
        if cfg!(windows) {
            assert_eq!(
                path(&[("LOCALAPPDATA", r"C:\Users\u\AppData\Local")]).as_deref(),
                Some(r"C:\Users\u\AppData\Local\keyseal\acme_cad.state")
            );
            assert_eq!(path(&[("HOME", r"C:\Users\u")]), None);
        } else if cfg!(target_os = "macos") {
            assert_eq!(
                path(&[("HOME", "/Users/u")]).as_deref(),
                Some("/Users/u/Library/Application Support/keyseal/acme_cad.state")
            );
            assert_eq!(path(&[]), None);
        } else {
            assert_eq!(
                path(&[("HOME", "/home/u")]).as_deref(),
                Some("/home/u/.local/state/keyseal/acme_cad.state")
            );
            assert_eq!(
                path(&[("HOME", "/home/u"), ("XDG_STATE_HOME", "/var/st")]).as_deref(),
                Some("/var/st/keyseal/acme_cad.state")
            );
            // A relative XDG_STATE_HOME is ignored, as the XDG spec says.
            assert_eq!(
                path(&[("HOME", "/home/u"), ("XDG_STATE_HOME", "st")]).as_deref(),
                Some("/home/u/.local/state/keyseal/acme_cad.state")
            );
            assert_eq!(path(&[("HOME", "")]), None);
            assert_eq!(path(&[]), None);
        }
    }
}
