//! The on-premises relay (`keyseal relay serve`): leases a license's seats
//! on a LAN with no internet, under a seat allotment the vendor signed for
//! the relay's key (docs/FORMAT.md, "Seat allotment").
//!
//! Apps talk to it exactly as to the vendor's service (the SDKs' seat
//! clients with the relay's address): `POST /v1/public/leases`,
//! `/v1/public/leases/check-in` and `/v1/public/leases/release`, the same
//! bodies, answers and problems. The leases it signs carry the allotment,
//! so apps verify them with the vendor's keyring alone.
//!
//! **Seats.** The relay keeps at most the allotment's seats in force: a
//! seat counts until [`SEAT_MARGIN_SECS`] after its lease ends, as in the
//! vendor's service, and no lease outlives the allotment. Its state (the
//! seats, their installation keys and last proofs) is a JSON file written
//! and synced before each answer, so a relay killed and restarted holds
//! the same seats. Requests are served one at a time (a LAN's worth).
//!
//! **Renewal.** Online, the relay renews its allotment itself once half of
//! it has run ([`Relay::renew`], [`keep_renewed`]; `keyseal relay serve
//! --renew-from URL`): it signs a request with its key
//! (`POST /v1/public/allotments/renew`) and gets the seats and validity of
//! the vendor's last allotment to it again, so the vendor shrinks it or
//! stops it (revoking its key or the license) at that renewal. Offline,
//! the vendor signs a new allotment before the current one ends
//! (`keyseal allot`, or `POST /v1/licenses/{id}/allotments`) and the file
//! replaces the old one. Either way the relay loads the file at its next
//! request (a file that does not verify, or is older than the one in
//! force, is logged and ignored). A smaller allotment takes effect at once: no new
//! seat while the seats in force fill it, and those beyond it are given up
//! at their next check-in (leases already signed run to their end).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use keyseal_core::allotment::{self, AllotmentTerms, MAX_ALLOTMENT_LEN, UnverifiedAllotment};
use keyseal_core::device::Fingerprint;
use keyseal_core::lease::{self, LeaseTerms, SeatId};
use keyseal_core::license::{self as core_license, MAX_LICENSE_LEN, UnverifiedLicense};
use keyseal_core::{Expectations, Keyring, LicenseId, PublicKey, SigningKey, hex};
use keyseal_issuer::seats::{
    SEAT_MARGIN_SECS, SeatLease, SeatRefused, check_in_message, parse_signature, release_message,
    verify_proof,
};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use tokio::sync::Mutex;
use zeroize::Zeroizing;

use crate::api::leases::{ActivateSeat, CheckIn, Lease, Release, ReleasedSeat, refused};
use crate::problem::Problem;

/// The relay's key file in its directory: the Ed25519 seed, hex, owner-only.
pub const KEY_FILE: &str = "relay.key";
/// The file a running relay holds locked in its directory.
pub const LOCK_FILE: &str = "relay.lock";
/// The relay's state file in its directory.
pub const STATE_FILE: &str = "relay-seats.json";
/// How long the relay remembers a seat after it was released or its lease
/// ended: a day (a repeated release is answered as the first meanwhile).
pub const FORGET_AFTER_SECS: u64 = 86_400;
/// A lease's renew interval unless set: 15 minutes (floating seats).
pub const DEFAULT_RELAY_LEASE_SECS: u64 = 900;
/// A lease's grace for failed check-ins unless set: an hour.
pub const DEFAULT_RELAY_GRACE_SECS: u64 = 3_600;

/// Why the relay cannot start.
#[derive(Debug)]
pub struct RelayError(pub String);

impl std::fmt::Display for RelayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RelayError {}

fn err(what: impl Into<String>) -> RelayError {
    RelayError(what.into())
}

/// Makes the relay's key pair in `dir` (created if missing), owner-only,
/// never over an existing key; returns its public key.
pub fn init(dir: &Path) -> Result<PublicKey, RelayError> {
    std::fs::create_dir_all(dir).map_err(|e| err(format!("{}: {e}", dir.display())))?;
    let path = dir.join(KEY_FILE);
    let mut seed = Zeroizing::new([0u8; 32]);
    getrandom::fill(&mut *seed).map_err(|e| err(format!("no randomness: {e}")))?;
    let key = SigningKey::from_seed(&seed).map_err(|e| err(e.to_string()))?;
    let text = Zeroizing::new(hex::encode(&*seed));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(&path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            let have = load_key(dir)
                .map_or_else(|e| e.0, |k| format!("its public key is {}", k.public_key()));
            err(format!(
                "{} exists: this directory has a relay key already ({have})",
                path.display()
            ))
        } else {
            err(format!("{}: {e}", path.display()))
        }
    })?;
    std::io::Write::write_all(&mut f, text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| err(format!("{}: {e}", path.display())))?;
    #[cfg(unix)]
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| err(format!("{}: {e}", dir.display())))?;
    Ok(key.public_key())
}

/// The relay key in `dir`.
pub fn load_key(dir: &Path) -> Result<SigningKey, RelayError> {
    let path = dir.join(KEY_FILE);
    let text = Zeroizing::new(std::fs::read_to_string(&path).map_err(|e| {
        err(format!(
            "{}: {e} (make the relay's key with `keyseal relay init`)",
            path.display()
        ))
    })?);
    let mut seed = Zeroizing::new([0u8; 32]);
    let ok = hex::decode(text.trim(), &mut *seed).is_ok();
    if !ok {
        return Err(err(format!("{} is not a relay key", path.display())));
    }
    SigningKey::from_seed(&seed).map_err(|e| err(e.to_string()))
}

/// What the relay serves.
pub struct RelayOptions {
    /// Its directory: the key and the state file.
    pub dir: PathBuf,
    /// The vendor's keyring (text), which verifies the license and the
    /// allotment, as apps do.
    pub keyring: String,
    /// The license key (`ks1.`) whose seats the relay leases: apps must
    /// present this exact key.
    pub license_key: String,
    /// The allotment file (`ksallot1.`), re-read when it changes.
    pub allotment: PathBuf,
    /// Renew interval of the leases.
    pub lease_secs: u64,
    /// Grace for failed check-ins.
    pub grace_secs: u64,
    /// The clock (unix seconds); tests inject one.
    pub clock: Arc<dyn Fn() -> u64 + Send + Sync>,
    /// The vendor's service (its base URL, `https://...`), if the relay
    /// renews its allotment online ([`Relay::renew`]).
    pub renew_from: Option<String>,
}

/// How often a relay that renews online ([`keep_renewed`]) looks whether
/// its allotment is due, and retries a renewal that failed: a minute.
pub const RENEW_CHECK_SECS: u64 = 60;

/// A seat the relay leased.
#[derive(Serialize, Deserialize, Clone)]
struct SeatRecord {
    device: String,
    hint: String,
    instance_key: String,
    proof_at: u64,
    expires_at: u64,
    released_at: Option<u64>,
}

#[derive(Serialize, Deserialize, Default)]
struct SeatFile {
    license_id: String,
    seats: BTreeMap<String, SeatRecord>,
}

/// The allotment in force.
struct Allotted {
    bytes: Vec<u8>,
    terms: AllotmentTerms,
}

struct Inner {
    /// The allotment file's text as last read (an allotment is 200
    /// characters: the relay reads it again at every request and looks at
    /// it only when it changed).
    seen: String,
    seats: SeatFile,
    allotted: Allotted,
    /// The time the relay's last renewal request carried: the next must be
    /// later (the service refuses a replay).
    renewed_at: u64,
}

/// A running relay's state.
pub struct Relay {
    /// Held locked while the relay runs (released when it ends, killed or not).
    _lock: std::fs::File,
    opts: RelayOptions,
    key: SigningKey,
    keyring: Keyring,
    license_id: LicenseId,
    product: String,
    inner: Mutex<Inner>,
}

impl Relay {
    /// Loads the key, checks the license and the allotment with the
    /// keyring, and reads the seats the relay holds.
    pub fn open(opts: RelayOptions) -> Result<Arc<Relay>, RelayError> {
        let key = load_key(&opts.dir)?;
        let keyring: Keyring = opts
            .keyring
            .parse()
            .map_err(|e| err(format!("the keyring: {e}")))?;
        let now = (opts.clock)();
        let text = core_license::without_whitespace(&opts.license_key);
        let mut buf = [0u8; MAX_LICENSE_LEN];
        let bytes = core_license::decode_text(&text, &mut buf)
            .map_err(|e| err(format!("the license key: {e}")))?;
        let unverified = UnverifiedLicense::from_bytes(bytes)
            .map_err(|e| err(format!("the license key: {e}")))?;
        let claims = *unverified.dangerous_unverified_claims();
        let product = claims.product.to_owned();
        let _verified = unverified
            .verify(&keyring, &Expectations::new(&product, now))
            .map_err(|e| {
                err(format!(
                    "the license key does not verify with the keyring: {e}"
                ))
            })?;
        let seen = read_text(&opts.allotment)?;
        let allotted = parse_allotment(&seen, &keyring, &product, claims.license_id)
            .map_err(|e| err(format!("{}: {e}", opts.allotment.display())))?;
        if allotted.terms.relay_key != key.public_key().to_bytes() {
            return Err(err(format!(
                "{} allots seats to another relay key, not this relay's {}",
                opts.allotment.display(),
                key.public_key()
            )));
        }
        // One relay a directory: two would each lease the whole allotment.
        let lock_path = opts.dir.join(LOCK_FILE);
        let lock = std::fs::File::create(&lock_path)
            .map_err(|e| err(format!("{}: {e}", lock_path.display())))?;
        lock.try_lock().map_err(|_| {
            err(format!(
                "another relay serves {} (it holds {}): stop it first",
                opts.dir.display(),
                lock_path.display()
            ))
        })?;
        let seats = read_seats(&opts.dir, claims.license_id)?;
        Ok(Arc::new(Relay {
            _lock: lock,
            key,
            keyring,
            license_id: claims.license_id,
            product,
            inner: Mutex::new(Inner {
                seen,
                seats,
                // A renewal request is signed after the last one; the last
                // is not kept across restarts, but it was before the
                // allotment it brought was signed, give or take the
                // request window.
                renewed_at: allotted.terms.issued_at,
                allotted,
            }),
            opts: RelayOptions {
                license_key: text,
                ..opts
            },
        }))
    }

    /// The routes apps call.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/v1/public/leases", post(activate))
            .route("/v1/public/leases/check-in", post(check_in))
            .route("/v1/public/leases/release", post(release))
            .fallback(|| async { Problem::not_found("route") })
            .with_state(self.clone())
    }

    /// The allotment's terms now in force.
    pub async fn allotment(&self) -> AllotmentTerms {
        self.inner.lock().await.allotted.terms
    }

    /// `text` as an allotment this relay may put in force: it verifies with
    /// the keyring for this license, allots to this relay's key, and is not
    /// older than `in_force` (the same checks for a file and a renewal).
    fn checked(&self, text: &str, in_force: &AllotmentTerms) -> Result<Allotted, RelayError> {
        let a = parse_allotment(text, &self.keyring, &self.product, self.license_id)?;
        if a.terms.relay_key != self.key.public_key().to_bytes() {
            return Err(err(format!(
                "it allots seats to another relay key, not this relay's {}",
                self.key.public_key()
            )));
        }
        if a.terms.issued_at < in_force.issued_at {
            return Err(err("it is older than the allotment in force"));
        }
        Ok(a)
    }

    /// Whether the allotment in force is due for renewal: half of its
    /// validity has run.
    pub async fn renewal_due(&self) -> bool {
        let t = self.inner.lock().await.allotted.terms;
        let half = t.issued_at + (t.expires_at.saturating_sub(t.issued_at)) / 2;
        (self.opts.clock)() >= half
    }

    /// Renews the allotment online: asks the vendor's service
    /// ([`RelayOptions::renew_from`]) for the next one with a request
    /// signed by the relay's key, checks it as a file's, writes it to the
    /// allotment file (atomically: a new file renamed over the old) and
    /// puts it in force. The vendor's refusal (`relay-revoked`,
    /// `license-revoked`, `seat-limit`...) or an unreachable service is an
    /// error, and the allotment in force stays until its end.
    pub async fn renew(&self) -> Result<AllotmentTerms, RelayError> {
        let Some(base) = self.opts.renew_from.clone() else {
            return Err(err("the relay has no service to renew from (--renew-from)"));
        };
        let at = {
            let mut inner = self.inner.lock().await;
            let at = (self.opts.clock)().max(inner.renewed_at.saturating_add(1));
            inner.renewed_at = at;
            at
        };
        let relay_key = self.key.public_key();
        let sig = self
            .key
            .sign_raw(&keyseal_issuer::allotments::renewal_message(
                self.license_id,
                &relay_key,
                at,
            ));
        let body = serde_json::json!({
            "license_key": self.opts.license_key,
            "relay_key": relay_key.to_string(),
            "at": at,
            "signature": hex::encode(&sig),
        })
        .to_string();
        let url = format!("{}/v1/public/allotments/renew", base.trim_end_matches('/'));
        let (status, answer) = tokio::task::spawn_blocking(move || {
            use keyseal::seats::Transport as _;
            keyseal::seats::UreqTransport::default().post_json(&url, &body)
        })
        .await
        .map_err(|e| err(format!("the renewal request: {e}")))?
        .map_err(|e| err(format!("the vendor's service at {base}: {e}")))?;
        let answer: serde_json::Value = serde_json::from_str(&answer).unwrap_or_default();
        if status != 201 {
            return Err(err(format!(
                "the vendor's service refused the renewal ({status} {}): {}",
                answer["type"]
                    .as_str()
                    .map_or("", |t| t.rsplit(':').next().unwrap_or(t)),
                answer["detail"].as_str().unwrap_or("no detail")
            )));
        }
        let text = answer["allotment"]
            .as_str()
            .ok_or_else(|| err("the vendor's service answered no allotment"))?;
        let path = &self.opts.allotment;
        let tmp = path.with_extension("renewing");
        let mut inner = self.inner.lock().await;
        let a = self
            .checked(text, &inner.allotted.terms)
            .map_err(|e| err(format!("the renewed allotment: {e}")))?;
        let text = format!("{}\n", text.trim());
        match replace_synced(path, &tmp, text.as_bytes()) {
            Ok(()) => inner.seen = text,
            // The vendor counted the renewal: put it in force all the same
            // (a restart goes back to the file's, until the next renewal).
            Err(e) => tracing::error!(
                error = %e,
                file = %path.display(),
                "relay: cannot write the renewed allotment; it is in force until the relay stops"
            ),
        }
        let terms = a.terms;
        inner.allotted = a;
        Ok(terms)
    }

    /// Loads the allotment file again if its text changed, and puts it in
    /// force if it verifies and is not older than the one in force.
    fn refresh(&self, inner: &mut Inner) {
        let Ok(text) = read_text(&self.opts.allotment) else {
            return;
        };
        if text == inner.seen {
            return;
        }
        let parsed = self.checked(&text, &inner.allotted.terms);
        inner.seen = text;
        match parsed {
            Ok(a) => {
                tracing::info!(
                    seats = a.terms.seats,
                    expires_at = a.terms.expires_at,
                    "relay: new allotment"
                );
                inner.allotted = a;
            }
            Err(e) => {
                tracing::warn!(error = %e, "relay: the new allotment file is refused; kept the one in force");
            }
        }
    }

    /// The allotment file loaded again if it changed; 503 `allotment-ended`
    /// past the allotment's end.
    fn in_force(&self, inner: &mut Inner, now: u64) -> Result<(), Problem> {
        self.refresh(inner);
        if now >= inner.allotted.terms.expires_at {
            return Err(Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "allotment-ended",
                format!(
                    "the relay's seat allotment ended at {}; the vendor signs a new one",
                    inner.allotted.terms.expires_at
                ),
            ));
        }
        Ok(())
    }

    fn license_ok(&self, license_key: &str) -> bool {
        let text = core_license::without_whitespace(license_key);
        bool::from(text.as_bytes().ct_eq(self.opts.license_key.as_bytes()))
    }

    fn sign(
        &self,
        a: &Allotted,
        seat: SeatId,
        hint: [u8; 2],
        hash: &[u8; 32],
        now: u64,
    ) -> Result<SeatLease, Problem> {
        // Never before the allotment (apps would refuse the lease): this
        // machine's clock may be behind the vendor's.
        let now = now.max(a.terms.issued_at);
        let end = now
            .saturating_add(self.opts.lease_secs)
            .saturating_add(self.opts.grace_secs)
            .min(a.terms.expires_at);
        let terms = LeaseTerms {
            license_id: self.license_id,
            seat_id: seat,
            device_hint: hint,
            issued_at: now,
            renew_at: now.saturating_add(self.opts.lease_secs).min(end),
            expires_at: end,
        };
        let bytes = lease::issue_bound(&self.key, &terms, hash).map_err(|_| Problem::internal())?;
        Ok(SeatLease {
            seat_id: seat.to_string(),
            license_id: self.license_id.to_string(),
            lease: lease::to_relayed_text(&bytes, &a.bytes),
            issued_at: terms.issued_at,
            renew_at: terms.renew_at,
            expires_at: terms.expires_at,
        })
    }

    /// Writes the seats, forgetting those released or ended more than
    /// [`FORGET_AFTER_SECS`] ago (their check-ins and releases are then
    /// 404: the app activates again), so the file stays the size of the
    /// LAN, not of its history.
    fn save(&self, seats: &mut SeatFile, now: u64) -> Result<(), Problem> {
        let floor = now.saturating_sub(FORGET_AFTER_SECS);
        seats
            .seats
            .retain(|_, s| s.released_at.map_or(s.expires_at, |r| r.min(s.expires_at)) >= floor);
        write_seats(&self.opts.dir, seats).map_err(|e| {
            tracing::error!(error = %e, "relay: cannot write its seats");
            Problem::internal()
        })
    }
}

/// Serves the relay's routes on `listener` until `shutdown` completes
/// (requests in flight finish).
pub async fn serve(
    relay: &Arc<Relay>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, relay.router())
        .with_graceful_shutdown(shutdown)
        .await
}

/// Renews `relay`'s allotment online whenever it is due
/// ([`Relay::renewal_due`]), looking every `every` (and at once), until the
/// future is dropped. A failed renewal is logged and tried again, after
/// twice as long each time it fails again (up to [`RENEW_BACKOFF_MAX_SECS`]),
/// so a relay the vendor refuses does not ask every minute for days.
pub async fn keep_renewed(relay: Arc<Relay>, every: std::time::Duration) {
    let mut wait = every;
    loop {
        if relay.renewal_due().await {
            match relay.renew().await {
                Ok(t) => {
                    tracing::info!(
                        seats = t.seats,
                        expires_at = t.expires_at,
                        "relay: allotment renewed"
                    );
                    wait = every;
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in_secs = wait.as_secs(), "relay: renewal failed");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2)
                        .min(std::time::Duration::from_secs(RENEW_BACKOFF_MAX_SECS).max(every));
                    continue;
                }
            }
        }
        tokio::time::sleep(every).await;
    }
}

/// The longest wait between two failed renewals: an hour.
pub const RENEW_BACKOFF_MAX_SECS: u64 = 3_600;

/// Replaces the file at `path` with `bytes` whole or not at all: written
/// to `tmp` (in the same directory) and synced, renamed over `path`, the
/// directory synced.
fn replace_synced(path: &Path, tmp: &Path, bytes: &[u8]) -> std::io::Result<()> {
    {
        let mut f = std::fs::File::create(tmp)?;
        std::io::Write::write_all(&mut f, bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(tmp, path)?;
    #[cfg(unix)]
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// The allotment file's text (at most 4 KiB read: an allotment is about
/// 200 characters).
fn read_text(path: &Path) -> Result<String, RelayError> {
    use std::io::Read as _;
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(4096).read_to_string(&mut text))
        .map_err(|e| err(format!("{}: {e}", path.display())))?;
    Ok(text)
}

fn parse_allotment(
    text: &str,
    keyring: &Keyring,
    product: &str,
    license_id: LicenseId,
) -> Result<Allotted, RelayError> {
    let mut buf = [0u8; MAX_ALLOTMENT_LEN];
    let bytes = allotment::decode_text(text.trim(), &mut buf)
        .map_err(|e| err(format!("not an allotment: {e}")))?
        .to_vec();
    let terms = UnverifiedAllotment::from_bytes(&bytes)
        .and_then(|a| a.verify(keyring, product, |_| false))
        .map_err(|e| err(e.to_string()))?;
    if terms.license_id != license_id {
        return Err(err(format!(
            "it allots seats of license {}, not of this license {license_id}",
            terms.license_id
        )));
    }
    Ok(Allotted { bytes, terms })
}

fn read_seats(dir: &Path, license_id: LicenseId) -> Result<SeatFile, RelayError> {
    let path = dir.join(STATE_FILE);
    match std::fs::read(&path) {
        Ok(b) => {
            let f: SeatFile =
                serde_json::from_slice(&b).map_err(|e| err(format!("{}: {e}", path.display())))?;
            if f.license_id != license_id.to_string() {
                return Err(err(format!(
                    "{} holds seats of license {}: give this relay its own directory per license",
                    path.display(),
                    f.license_id
                )));
            }
            Ok(f)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(SeatFile {
            license_id: license_id.to_string(),
            seats: BTreeMap::new(),
        }),
        Err(e) => Err(err(format!("{}: {e}", path.display()))),
    }
}

/// Writes the seats to a temporary file, syncs it, renames it over the
/// state file and syncs the directory: a crash leaves the old or the new.
fn write_seats(dir: &Path, seats: &SeatFile) -> std::io::Result<()> {
    let tmp = dir.join(format!("{STATE_FILE}.tmp"));
    let body = serde_json::to_vec(seats).map_err(std::io::Error::other)?;
    replace_synced(&dir.join(STATE_FILE), &tmp, &body)
}

fn body<T: serde::de::DeserializeOwned>(b: &Bytes) -> Result<T, Problem> {
    serde_json::from_slice(b).map_err(|e| Problem::invalid(format!("body: {e}")))
}

fn lease_response(l: SeatLease, status: StatusCode) -> Response {
    (status, axum::Json(Lease::from(l))).into_response()
}

fn fingerprint(text: &str) -> Result<Fingerprint, Problem> {
    text.trim()
        .parse()
        .map_err(|_| Problem::invalid("fingerprint: not a device fingerprint (ksfp1.)"))
}

async fn activate(State(r): State<Arc<Relay>>, b: Bytes) -> Result<Response, Problem> {
    let req: ActivateSeat = body(&b)?;
    let now = (r.opts.clock)();
    if !r.license_ok(&req.license_key) {
        return Err(refused(SeatRefused::UnknownLicense, now));
    }
    let fp = fingerprint(&req.fingerprint)?;
    let instance: PublicKey = req
        .public_key
        .trim()
        .parse()
        .map_err(|_| Problem::invalid("public_key: not an Ed25519 public key (kspub1.)"))?;
    let mut inner = r.inner.lock().await;
    r.in_force(&mut inner, now)?;
    let (hash, hint) = fp.exact_binding(&r.license_id);
    let device = hex::encode(&hash);
    let floor = now.saturating_sub(SEAT_MARGIN_SECS);
    let held: Vec<(&String, &SeatRecord)> = inner
        .seats
        .seats
        .iter()
        .filter(|(_, s)| s.released_at.is_none() && s.expires_at >= floor)
        .collect();
    let mine = held
        .iter()
        .find(|(_, s)| s.device == device)
        .map(|(id, _)| (*id).clone());
    let limit = u64::from(inner.allotted.terms.seats);
    // The other seats in force: under a smaller allotment, a device's own
    // seat is not renewed while they fill it (it is released instead).
    let others = held.len() as u64 - u64::from(mine.is_some());
    if others >= limit {
        let free_at = held
            .iter()
            .filter(|(id, _)| Some(*id) != mine.as_ref())
            .map(|(_, s)| s.expires_at)
            .min()
            .unwrap_or(now)
            + SEAT_MARGIN_SECS;
        if let Some(id) = mine {
            if let Some(s) = inner.seats.seats.get_mut(&id) {
                s.released_at = Some(now);
            }
            r.save(&mut inner.seats, now)?;
        }
        return Err(refused(
            SeatRefused::SeatLimit {
                seats: limit,
                free_at,
            },
            now,
        ));
    }
    let seat = match &mine {
        Some(id) => id.parse::<SeatId>().map_err(|_| Problem::internal())?,
        None => {
            let mut b = [0u8; 16];
            getrandom::fill(&mut b).map_err(|_| Problem::internal())?;
            SeatId::from_bytes(b)
        }
    };
    let out = r.sign(&inner.allotted, seat, hint, &hash, now)?;
    inner.seats.seats.insert(
        out.seat_id.clone(),
        SeatRecord {
            device,
            hint: hex::encode(&hint),
            instance_key: instance.to_string(),
            proof_at: 0,
            expires_at: out.expires_at,
            released_at: None,
        },
    );
    r.save(&mut inner.seats, now)?;
    Ok(lease_response(out, StatusCode::CREATED))
}

fn parse_seat(text: &str) -> Result<SeatId, Problem> {
    text.parse()
        .map_err(|_| Problem::invalid("seat_id: not a seat id (32 hex digits)"))
}

fn proof_sig(text: &str) -> Result<[u8; 64], Problem> {
    parse_signature(text)
        .map_err(|_| Problem::invalid("signature: not an Ed25519 signature (128 hex digits)"))
}

async fn check_in(State(r): State<Arc<Relay>>, b: Bytes) -> Result<Response, Problem> {
    let req: CheckIn = body(&b)?;
    let now = (r.opts.clock)();
    if !r.license_ok(&req.license_key) {
        return Err(refused(SeatRefused::UnknownLicense, now));
    }
    let fp = fingerprint(&req.fingerprint)?;
    let seat = parse_seat(&req.seat_id)?;
    let sig = proof_sig(&req.signature)?;
    let mut inner = r.inner.lock().await;
    r.in_force(&mut inner, now)?;
    let id = seat.to_string();
    let Some(row) = inner.seats.seats.get(&id).cloned() else {
        return Err(refused(SeatRefused::UnknownSeat, now));
    };
    if row.released_at.is_some() {
        return Err(refused(SeatRefused::SeatReleased, now));
    }
    let key: PublicKey = row.instance_key.parse().map_err(|_| Problem::internal())?;
    verify_proof(
        &key,
        row.proof_at,
        &check_in_message(seat, req.at),
        &sig,
        req.at,
        now,
    )
    .map_err(|e| refused(e, now))?;
    let (hash, hint) = fp.exact_binding(&r.license_id);
    if row.device != hex::encode(&hash) {
        return Err(refused(SeatRefused::WrongDevice, now));
    }
    // The other seats in force fill the allotment (another device took a
    // lapsed seat, or the allotment shrank): this seat is given up.
    let floor = now.saturating_sub(SEAT_MARGIN_SECS);
    let others = inner
        .seats
        .seats
        .iter()
        .filter(|(k, s)| **k != id && s.released_at.is_none() && s.expires_at >= floor)
        .count() as u64;
    let limit = u64::from(inner.allotted.terms.seats);
    if others >= limit {
        if let Some(s) = inner.seats.seats.get_mut(&id) {
            s.released_at = Some(now);
            s.proof_at = req.at;
        }
        r.save(&mut inner.seats, now)?;
        return Err(refused(SeatRefused::SeatLapsed { seats: limit }, now));
    }
    let out = r.sign(&inner.allotted, seat, hint, &hash, now)?;
    if let Some(s) = inner.seats.seats.get_mut(&id) {
        s.proof_at = req.at;
        s.expires_at = out.expires_at;
    }
    r.save(&mut inner.seats, now)?;
    Ok(lease_response(out, StatusCode::OK))
}

async fn release(State(r): State<Arc<Relay>>, b: Bytes) -> Result<Response, Problem> {
    let req: Release = body(&b)?;
    let now = (r.opts.clock)();
    if !r.license_ok(&req.license_key) {
        return Err(refused(SeatRefused::UnknownLicense, now));
    }
    let seat = parse_seat(&req.seat_id)?;
    let sig = proof_sig(&req.signature)?;
    let mut inner = r.inner.lock().await;
    let id = seat.to_string();
    let Some(row) = inner.seats.seats.get(&id).cloned() else {
        return Err(refused(SeatRefused::UnknownSeat, now));
    };
    let key: PublicKey = row.instance_key.parse().map_err(|_| Problem::internal())?;
    if let Some(at) = row.released_at {
        return Ok((StatusCode::OK, axum::Json(ReleasedSeat::new(id, at))).into_response());
    }
    verify_proof(
        &key,
        row.proof_at,
        &release_message(seat, req.at),
        &sig,
        req.at,
        now,
    )
    .map_err(|e| refused(e, now))?;
    if let Some(s) = inner.seats.seats.get_mut(&id) {
        s.proof_at = req.at;
        s.released_at = Some(now);
    }
    r.save(&mut inner.seats, now)?;
    Ok((StatusCode::OK, axum::Json(ReleasedSeat::new(id, now))).into_response())
}
