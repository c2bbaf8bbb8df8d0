//! Seats held by leases, online (cargo feature `seats`; `online` adds a
//! default HTTP transport): activate this device on one of the license's
//! seats, check in before the lease ends, release the seat when done.
//! The service is the vendor's `keyseal serve` (server/README.md, "Seats
//! and leases"); the lease it answers is validated offline with
//! [`crate::Validator::validate_with_lease`].
//!
//! Nothing here runs unless the app calls it: validation never touches the
//! network. The transport is a trait ([`Transport`]), so an app brings its
//! own HTTP client (or a test its own fake); an app whose client is
//! asynchronous sends each [`Request`] itself ([`Activation`],
//! [`Seat::check_in_request`], [`Seat::release_request`]).
//!
//! ```no_run
//! # #[cfg(feature = "online")]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use keyseal::seats::{Seat, SeatClient};
//! # let (license_key, this_device, saved) = ("ks1.…", "ksfp1.…".parse()?, None::<String>);
//! let client = SeatClient::new("https://licensing.example.com");
//! let mut seat = match saved {
//!     Some(text) => Seat::from_text(&text)?,
//!     None => client.activate(license_key, &this_device)?,
//! };
//! // Keep `seat.to_text()` (it holds the installation's private key) and
//! // validate `seat.lease()` with the key; check in when the lease says so:
//! client.check_in(license_key, &this_device, &mut seat)?;
//! // Uninstalling: free the seat for another device.
//! client.release(license_key, &mut seat)?;
//! # Ok(()) }
//! # #[cfg(not(feature = "online"))] fn main() {}
//! ```

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use keyseal_core::{Fingerprint, SeatId, SigningKey};
use serde_json::{Value, json};

/// Prefix of a seat's saved text.
pub const SEAT_PREFIX: &str = "ksseat1.";

const CHECK_IN_DOMAIN: &[u8] = b"keyseal/lease-check-in/v1\0";
const RELEASE_DOMAIN: &[u8] = b"keyseal/lease-release/v1\0";

/// How requests reach the service: POST a JSON body to a URL, and give
/// back the answer's status and body, or why there was no answer.
pub trait Transport: crate::MaybeSendSync {
    /// POSTs `body` (`application/json`) to `url`.
    fn post_json(&self, url: &str, body: &str) -> Result<(u16, String), String>;
}

/// Why a seat request failed. [`SeatError::code`] is stable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SeatError {
    /// The service refused (its problem's `type` gives the code).
    #[error("the licensing service refused ({code}): {detail}")]
    Refused {
        /// `revoked`, `expired`, `not_yet_valid`, `suspended`,
        /// `invalid_license_key`, `seat_limit`, `seat_lapsed`,
        /// `seat_released`, `unknown_seat`, `wrong_device`, `bad_proof`,
        /// `rate_limited`, `allotment_ended` (an on-premises relay's), for
        /// trials `trial_used`, `trials_disabled`, `unknown_product`, or
        /// `service_error` for anything else.
        code: &'static str,
        /// The HTTP status.
        status: u16,
        /// The service's words.
        detail: String,
    },
    /// No answer: the transport failed (network, DNS, TLS, timeout).
    #[error("the licensing service could not be reached: {0}")]
    Unreachable(String),
    /// An answer this SDK does not understand, or saved seat text that is
    /// not a seat.
    #[error("not understood: {0}")]
    BadAnswer(String),
}

impl SeatError {
    /// The stable code: [`SeatError::Refused`]'s, `unreachable` or `bad_answer`.
    #[must_use]
    pub const fn code(&self) -> &'static str {
        match self {
            SeatError::Refused { code, .. } => code,
            SeatError::Unreachable(_) => "unreachable",
            SeatError::BadAnswer(_) => "bad_answer",
        }
    }

    /// What the app can tell its customer: plain language, what happened
    /// and what to do. English; apps that translate map [`SeatError::code`].
    #[must_use]
    pub fn customer_message(&self) -> &'static str {
        let code = self.code();
        match code {
            "seat_limit" => {
                "Every seat of this license is in use. Release one on another device, or try again later."
            }
            "revoked" => "This license was revoked. Contact the vendor.",
            "expired" => "This license expired. Renew it to activate this device.",
            "not_yet_valid" => "This license is not valid yet. Try again when it starts.",
            "suspended" => "This license is suspended. Contact the vendor.",
            "invalid_license_key" => {
                "The licensing service does not know this license key. Check that it was entered in full."
            }
            "wrong_device" => "This seat belongs to another device. Activate this device again.",
            "seat_lapsed" => {
                "This device's seat lapsed and another device took it. Try again when a seat is free."
            }
            "seat_released" | "unknown_seat" | "bad_proof" => {
                "This device no longer holds its seat. Activate this device again."
            }
            "rate_limited" => "The licensing service is busy. Try again in a moment.",
            "allotment_ended" => {
                "The site's license server has no seats to give until the vendor renews them. Contact your administrator."
            }
            "trial_used" => {
                "This device has had its trial of this product. Buy a license to go on using it."
            }
            "trials_disabled" => "This product has no trial. Buy a license to use it.",
            "unknown_product" => "The licensing service does not know this product.",
            "unreachable" => {
                "The licensing service could not be reached. Check the network connection and try again."
            }
            "bad_answer" => {
                "The licensing service's answer could not be read. If you typed an activation code, check it for typos."
            }
            _ => "The licensing service had a problem. Try again later.",
        }
    }

    /// Whether trying again later may succeed (no answer, a full license,
    /// the rate limit, a server error), as opposed to a refusal that stands.
    #[must_use]
    pub const fn is_transient(&self) -> bool {
        match self {
            SeatError::Unreachable(_) => true,
            SeatError::Refused { code, status, .. } => {
                matches!(code.as_bytes(), b"seat_limit" | b"rate_limited") || *status >= 500
            }
            SeatError::BadAnswer(_) => false,
        }
    }
}

/// The code for a problem `type` (`urn:keyseal:problem:<slug>`).
fn code_of(slug: &str) -> &'static str {
    match slug {
        "license-revoked" => "revoked",
        "license-expired" => "expired",
        "license-not-yet-valid" => "not_yet_valid",
        "license-suspended" => "suspended",
        "invalid-license-key" => "invalid_license_key",
        "seat-limit" => "seat_limit",
        "seat-lapsed" => "seat_lapsed",
        "seat-released" => "seat_released",
        "not-found" => "unknown_seat",
        "wrong-device" => "wrong_device",
        "bad-proof" => "bad_proof",
        "rate-limited" => "rate_limited",
        "allotment-ended" => "allotment_ended",
        "trial-used" => "trial_used",
        "trials-disabled" => "trials_disabled",
        _ => "service_error",
    }
}

/// This device's seat: its id, its current lease, and the private key of
/// the installation that took it (check-ins and the release are signed
/// with it). Save it with [`Seat::to_text`] where the app keeps its data.
pub struct Seat {
    seat_id: SeatId,
    lease: String,
    renew_at: u64,
    expires_at: u64,
    key: SigningKey,
    /// The newest signed request's time: the next must be later.
    last_at: u64,
}

impl fmt::Debug for Seat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Seat")
            .field("seat_id", &self.seat_id)
            .field("renew_at", &self.renew_at)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl Seat {
    /// The seat's id.
    #[must_use]
    pub const fn seat_id(&self) -> SeatId {
        self.seat_id
    }

    /// The current lease (`kslease1.`), to validate with the license key.
    #[must_use]
    pub fn lease(&self) -> &str {
        &self.lease
    }

    /// When to check in (unix seconds), as the service said.
    #[must_use]
    pub const fn renew_at(&self) -> u64 {
        self.renew_at
    }

    /// When the lease ends (unix seconds).
    #[must_use]
    pub const fn expires_at(&self) -> u64 {
        self.expires_at
    }

    /// The seat as text to save: `ksseat1.` then hex of the seat id and
    /// the installation's private key seed, a line break, then the lease.
    /// It holds a secret: keep it with the app's own data, readable by the
    /// app's user only.
    #[must_use]
    pub fn to_text(&self) -> zeroize::Zeroizing<String> {
        let mut s = zeroize::Zeroizing::new(String::with_capacity(200 + self.lease.len()));
        s.push_str(SEAT_PREFIX);
        for b in self
            .seat_id
            .to_bytes()
            .iter()
            .chain(self.key.to_seed().iter())
        {
            s.push_str(&format!("{b:02x}"));
        }
        s.push('\n');
        s.push_str(&self.lease);
        s.push('\n');
        s
    }

    /// A seat saved with [`Seat::to_text`].
    pub fn from_text(text: &str) -> Result<Seat, SeatError> {
        let bad = || SeatError::BadAnswer("not a saved seat (ksseat1.)".into());
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        let head = lines
            .next()
            .and_then(|l| l.strip_prefix(SEAT_PREFIX))
            .ok_or_else(bad)?;
        let lease = lines.next().ok_or_else(bad)?;
        let mut raw = zeroize::Zeroizing::new([0u8; 48]);
        keyseal_core::hex::decode(head, &mut *raw).map_err(|_| bad())?;
        let mut id = [0u8; 16];
        id.copy_from_slice(&raw[..16]);
        let mut seed = zeroize::Zeroizing::new([0u8; 32]);
        seed.copy_from_slice(&raw[16..]);
        let key = SigningKey::from_seed(&seed).map_err(|_| bad())?;
        let terms = lease_terms(lease).ok_or_else(bad)?;
        Ok(Seat {
            seat_id: SeatId::from_bytes(id),
            lease: lease.to_owned(),
            renew_at: terms.renew_at,
            expires_at: terms.expires_at,
            key,
            last_at: 0,
        })
    }

    /// The time for the next signed request: `now`, or one second after
    /// the last one (the service refuses a time that does not grow).
    fn next_at(&mut self, now: u64) -> u64 {
        self.last_at = now.max(self.last_at + 1);
        self.last_at
    }

    fn sign(&self, domain: &[u8], at: u64) -> String {
        let mut m = Vec::with_capacity(domain.len() + 24);
        m.extend_from_slice(domain);
        m.extend_from_slice(&self.seat_id.to_bytes());
        m.extend_from_slice(&at.to_be_bytes());
        self.key
            .sign_raw(&m)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// The (unverified) terms of a lease text, for the renew and end times a
/// saved seat shows; the validator checks the lease itself.
fn lease_terms(text: &str) -> Option<keyseal_core::LeaseTerms> {
    let mut buf = [0u8; keyseal_core::lease::LEASE_BUF_LEN];
    let l = keyseal_core::UnverifiedLease::from_text(text, &mut buf).ok()?;
    Some(*l.dangerous_unverified_terms())
}

/// Asks the vendor's licensing service for seats and leases.
pub struct SeatClient {
    base: String,
    transport: Box<dyn Transport>,
}

impl fmt::Debug for SeatClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SeatClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl SeatClient {
    /// A client of the service at `base_url` (`https://…`, without
    /// `/v1`), over ureq (feature `online`; timeouts of 30 s).
    #[cfg(feature = "online")]
    #[must_use]
    pub fn new(base_url: impl Into<String>) -> Self {
        Self::with_transport(base_url, UreqTransport::default())
    }

    /// A client of the service at `base_url` over `transport`.
    #[must_use]
    pub fn with_transport(
        base_url: impl Into<String>,
        transport: impl Transport + 'static,
    ) -> Self {
        SeatClient {
            base: base_url.into().trim_end_matches('/').to_owned(),
            transport: Box::new(transport),
        }
    }

    /// POSTs `request` over the transport: the answer's status and body.
    fn send(&self, request: &Request) -> Result<(u16, String), SeatError> {
        self.transport
            .post_json(&format!("{}{}", self.base, request.path), &request.body)
            .map_err(SeatError::Unreachable)
    }

    /// Asks for the product's trial for this device: its first ask gets a
    /// trial license bound to it (the same one again while it runs, if the
    /// answer was lost); a device that had a trial gets `trial_used`, even
    /// after a reinstall or a changed component (the service matches most
    /// of the fingerprint). `org_id` names the vendor's organisation (the
    /// id in its keyring URL; no secret).
    pub fn start_trial(
        &self,
        org_id: &str,
        product: &str,
        fingerprint: &Fingerprint,
    ) -> Result<Trial, SeatError> {
        let trial = TrialRequest::new(org_id, product, fingerprint);
        let (status, answer) = self.send(trial.request())?;
        trial.finish(status, &answer)
    }

    /// Takes a seat of `license_key`'s license for this device (its
    /// fingerprint), with a key pair made here for this installation. The
    /// same device asking again gets its seat back.
    pub fn activate(
        &self,
        license_key: &str,
        fingerprint: &Fingerprint,
    ) -> Result<Seat, SeatError> {
        let activation = Activation::new(license_key, fingerprint)?;
        let (status, answer) = self.send(activation.request())?;
        activation.finish(status, &answer)
    }

    /// Renews the seat's lease (signed by the installation's key); `seat`
    /// then holds the new lease (save it again).
    pub fn check_in(
        &self,
        license_key: &str,
        fingerprint: &Fingerprint,
        seat: &mut Seat,
    ) -> Result<(), SeatError> {
        let request = seat.check_in_request(license_key, fingerprint, unix_now());
        let (status, answer) = self.send(&request)?;
        seat.finish_check_in(status, &answer)
    }

    /// Frees the seat for another device (signed by the installation's
    /// key). The app should then delete the saved seat and its lease.
    pub fn release(&self, license_key: &str, seat: &mut Seat) -> Result<(), SeatError> {
        let request = seat.release_request(license_key, unix_now());
        let (status, answer) = self.send(&request)?;
        seat.finish_release(status, &answer)
    }
}

/// The system clock, in unix seconds.
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A seat request for an HTTP client the app drives itself (an
/// asynchronous one, or JavaScript's `fetch` in the WebAssembly SDK): POST
/// [`Request::body`] (`application/json`) to the service's base URL
/// followed by [`Request::path`], then give the answer's HTTP status and
/// body to the call that goes with the request ([`Activation::finish`],
/// [`Seat::finish_check_in`], [`Seat::finish_release`]); no answer at all
/// is the app's [`SeatError::Unreachable`]. [`SeatClient`] does exactly
/// this over its [`Transport`].
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Request {
    /// `/v1/public/leases`, `/v1/public/leases/check-in` or
    /// `/v1/public/leases/release`.
    pub path: &'static str,
    /// The JSON body (it holds the license key).
    pub body: String,
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// An activation for an HTTP client the app drives itself ([`Request`]):
/// the request, and the installation key pair made for it, kept until the
/// answer arrives ([`Activation::finish`]).
pub struct Activation {
    request: Request,
    key: SigningKey,
}

impl fmt::Debug for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Activation")
            .field("request", &self.request)
            .finish_non_exhaustive()
    }
}

impl Activation {
    /// The activation of this device (its fingerprint) on a seat of
    /// `license_key`'s license, with a new installation key.
    pub fn new(license_key: &str, fingerprint: &Fingerprint) -> Result<Self, SeatError> {
        let key = new_key()?;
        let body = json!({
            "license_key": license_key.trim(),
            "fingerprint": fingerprint.to_string(),
            "public_key": key.public_key().to_string(),
        });
        Ok(Activation {
            request: Request {
                path: "/v1/public/leases",
                body: body.to_string(),
            },
            key,
        })
    }

    /// The request to send.
    #[must_use]
    pub const fn request(&self) -> &Request {
        &self.request
    }

    /// The seat, from the service's answer (its HTTP status and body).
    pub fn finish(self, status: u16, answer: &str) -> Result<Seat, SeatError> {
        let (seat_id, lease) = seat_answer(&parse_answer(status, answer)?)?;
        let terms =
            lease_terms(&lease).ok_or_else(|| SeatError::BadAnswer("not a lease".into()))?;
        Ok(Seat {
            seat_id,
            lease,
            renew_at: terms.renew_at,
            expires_at: terms.expires_at,
            key: self.key,
            last_at: 0,
        })
    }
}

impl Seat {
    /// The check-in request ([`Request`]), signed with the installation's
    /// key at `now` (unix seconds), or one second after this seat's
    /// previous request if that is later.
    pub fn check_in_request(
        &mut self,
        license_key: &str,
        fingerprint: &Fingerprint,
        now: u64,
    ) -> Request {
        let at = self.next_at(now);
        let body = json!({
            "license_key": license_key.trim(),
            "fingerprint": fingerprint.to_string(),
            "seat_id": self.seat_id.to_string(),
            "at": at,
            "signature": self.sign(CHECK_IN_DOMAIN, at),
        });
        Request {
            path: "/v1/public/leases/check-in",
            body: body.to_string(),
        }
    }

    /// Takes the check-in's answer (its HTTP status and body): the seat
    /// then holds the new lease (save it again).
    pub fn finish_check_in(&mut self, status: u16, answer: &str) -> Result<(), SeatError> {
        let (id, lease) = seat_answer(&parse_answer(status, answer)?)?;
        if id != self.seat_id {
            return Err(SeatError::BadAnswer("a lease for another seat".into()));
        }
        let terms =
            lease_terms(&lease).ok_or_else(|| SeatError::BadAnswer("not a lease".into()))?;
        self.lease = lease;
        self.renew_at = terms.renew_at;
        self.expires_at = terms.expires_at;
        Ok(())
    }

    /// The release request ([`Request`]), signed as
    /// [`Seat::check_in_request`] is.
    pub fn release_request(&mut self, license_key: &str, now: u64) -> Request {
        let at = self.next_at(now);
        let body = json!({
            "license_key": license_key.trim(),
            "seat_id": self.seat_id.to_string(),
            "at": at,
            "signature": self.sign(RELEASE_DOMAIN, at),
        });
        Request {
            path: "/v1/public/leases/release",
            body: body.to_string(),
        }
    }

    /// Takes the release's answer (its HTTP status and body): `Ok` once
    /// the seat is free.
    pub fn finish_release(&self, status: u16, answer: &str) -> Result<(), SeatError> {
        parse_answer(status, answer).map(drop)
    }
}

/// The service's answer: its JSON on success, else the refusal its problem
/// `type` names.
fn parse_answer(status: u16, text: &str) -> Result<Value, SeatError> {
    let v: Value = serde_json::from_str(text)
        .map_err(|_| SeatError::BadAnswer(format!("HTTP {status}, not JSON")))?;
    if (200..300).contains(&status) {
        return Ok(v);
    }
    let slug = v["type"]
        .as_str()
        .and_then(|t| t.strip_prefix("urn:keyseal:problem:"))
        .unwrap_or("");
    Err(SeatError::Refused {
        code: code_of(slug),
        status,
        detail: v["detail"].as_str().unwrap_or("").to_owned(),
    })
}

/// A trial license for this device, as the service minted it: validate
/// [`Trial::license_key`] like any key (it is bound to this device and
/// ends at [`Trial::expires_at`]). Its `Debug` leaves the key out.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Trial {
    /// The trial license's key (`ks1.`): keep it with the app's data.
    pub license_key: String,
    /// Its id (32 hex digits).
    pub license_id: String,
    /// Its plan.
    pub plan: String,
    /// Its entitlements.
    pub entitlements: Vec<String>,
    /// When the trial started (unix seconds).
    pub started_at: u64,
    /// When it ends (unix seconds).
    pub expires_at: u64,
}

impl fmt::Debug for Trial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Trial")
            .field("license_id", &self.license_id)
            .field("plan", &self.plan)
            .field("entitlements", &self.entitlements)
            .field("started_at", &self.started_at)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A device's request for the product's trial (`POST /v1/public/trials`),
/// for apps that send requests themselves; [`SeatClient::start_trial`]
/// sends it.
#[derive(Debug, Clone)]
pub struct TrialRequest {
    request: Request,
}

impl TrialRequest {
    /// The request of this device (its fingerprint) for the trial of
    /// `product`, sold by the organisation `org_id` (public: the id in the
    /// organisation's keyring URL).
    #[must_use]
    pub fn new(org_id: &str, product: &str, fingerprint: &Fingerprint) -> Self {
        let body = json!({
            "org_id": org_id.trim(),
            "product": product.trim(),
            "fingerprint": fingerprint.to_string(),
        });
        TrialRequest {
            request: Request {
                path: "/v1/public/trials",
                body: body.to_string(),
            },
        }
    }

    /// The request to send.
    #[must_use]
    pub const fn request(&self) -> &Request {
        &self.request
    }

    /// The trial, from the service's answer (its HTTP status and body). A
    /// device that had a trial is `trial_used`; a product that gives none
    /// `trials_disabled`; an organisation or product the service does not
    /// know `unknown_product`.
    pub fn finish(&self, status: u16, answer: &str) -> Result<Trial, SeatError> {
        let v = parse_answer(status, answer).map_err(|e| match e {
            SeatError::Refused {
                code: "unknown_seat",
                status,
                detail,
            } => SeatError::Refused {
                code: "unknown_product",
                status,
                detail,
            },
            e => e,
        })?;
        let text = |k: &str| {
            v[k].as_str()
                .map(str::to_owned)
                .ok_or_else(|| SeatError::BadAnswer(format!("no {k}")))
        };
        let time = |k: &str| {
            v[k].as_u64()
                .ok_or_else(|| SeatError::BadAnswer(format!("no {k}")))
        };
        Ok(Trial {
            license_key: text("license_key")?,
            license_id: text("license_id")?,
            plan: text("plan")?,
            entitlements: v["entitlements"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|e| e.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
            started_at: time("started_at")?,
            expires_at: time("expires_at")?,
        })
    }
}

/// An air-gapped activation (docs/FORMAT.md, "Activation codes"): the
/// request code this device shows (a QR code, or text to read out), and the
/// installation key the seat will be signed for, kept until the vendor's
/// response code arrives ([`OfflineRequest::install`]). Save it with
/// [`OfflineRequest::to_text`] if the app may be restarted meanwhile.
pub struct OfflineRequest {
    code: String,
    key: SigningKey,
}

impl fmt::Debug for OfflineRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OfflineRequest")
            .field("code", &self.code)
            .finish_non_exhaustive()
    }
}

impl OfflineRequest {
    /// The request of this device (its fingerprint) for `license_key`'s
    /// license, with a new installation key.
    pub fn new(license_key: &str, fingerprint: &Fingerprint) -> Result<Self, SeatError> {
        let bad = |e: keyseal_core::Error| SeatError::BadAnswer(format!("not a license key: {e}"));
        let text = keyseal_core::license::without_whitespace(license_key);
        let mut buf = [0u8; keyseal_core::license::MAX_LICENSE_LEN];
        let license = keyseal_core::license::decode_text(&text, &mut buf).map_err(bad)?;
        let key = new_key()?;
        let request = keyseal_core::activation_code::ActivationRequest::new(
            license,
            fingerprint,
            key.public_key(),
        )
        .map_err(bad)?;
        Ok(OfflineRequest {
            code: request.to_code(),
            key,
        })
    }

    /// The request code (`KSREQ1.`, under 200 characters, upper case: QR
    /// alphanumeric mode).
    #[must_use]
    pub fn code(&self) -> &str {
        &self.code
    }

    /// Installs the vendor's response code: the seat with its lease
    /// (validate it with [`crate::Validator::validate_with_lease`]). Case,
    /// dashes and spaces do not matter; a typo is `bad_answer` (the checksum).
    pub fn install(self, response_code: &str) -> Result<Seat, SeatError> {
        let mut buf = [0u8; keyseal_core::lease::MAX_LEASE_LEN
            + keyseal_core::activation_code::CHECKSUM_LEN
            + 4];
        let lease = keyseal_core::activation_code::lease_from_response(response_code, &mut buf)
            .map_err(|e| SeatError::BadAnswer(format!("not a response code: {e}")))?;
        let lease = keyseal_core::lease::to_text(lease);
        let terms =
            lease_terms(&lease).ok_or_else(|| SeatError::BadAnswer("not a lease".into()))?;
        Ok(Seat {
            seat_id: terms.seat_id,
            lease,
            renew_at: terms.renew_at,
            expires_at: terms.expires_at,
            key: self.key,
            last_at: 0,
        })
    }

    /// The pending request as text to save: `ksseatreq1.` and the
    /// installation's private key seed in hex, a line break, the code. It
    /// holds a secret, like [`Seat::to_text`].
    #[must_use]
    pub fn to_text(&self) -> zeroize::Zeroizing<String> {
        let mut s = zeroize::Zeroizing::new(String::with_capacity(300));
        s.push_str("ksseatreq1.");
        for b in self.key.to_seed().iter() {
            s.push_str(&format!("{b:02x}"));
        }
        s.push('\n');
        s.push_str(&self.code);
        s.push('\n');
        s
    }

    /// A pending request saved with [`OfflineRequest::to_text`].
    pub fn from_text(text: &str) -> Result<Self, SeatError> {
        let bad = || SeatError::BadAnswer("not a saved request (ksseatreq1.)".into());
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        let head = lines
            .next()
            .and_then(|l| l.strip_prefix("ksseatreq1."))
            .ok_or_else(bad)?;
        let code = lines.next().ok_or_else(bad)?;
        let mut seed = zeroize::Zeroizing::new([0u8; 32]);
        keyseal_core::hex::decode(head, &mut *seed).map_err(|_| bad())?;
        let key = SigningKey::from_seed(&seed).map_err(|_| bad())?;
        let request =
            keyseal_core::activation_code::ActivationRequest::from_code(code).map_err(|_| bad())?;
        if request.public_key != key.public_key() {
            return Err(bad());
        }
        Ok(OfflineRequest {
            code: code.to_owned(),
            key,
        })
    }
}

fn new_key() -> Result<SigningKey, SeatError> {
    let mut seed = zeroize::Zeroizing::new([0u8; 32]);
    getrandom::fill(&mut *seed)
        .map_err(|e| SeatError::Unreachable(format!("no randomness: {e}")))?;
    SigningKey::from_seed(&seed).map_err(|_| SeatError::Unreachable("no usable randomness".into()))
}

fn seat_answer(v: &Value) -> Result<(SeatId, String), SeatError> {
    let id = v["seat_id"]
        .as_str()
        .and_then(|s| s.parse::<SeatId>().ok())
        .ok_or_else(|| SeatError::BadAnswer("no seat_id".into()))?;
    let lease = v["lease"]
        .as_str()
        .ok_or_else(|| SeatError::BadAnswer("no lease".into()))?;
    Ok((id, lease.to_owned()))
}

/// The default transport: ureq, blocking, 30 s timeouts, TLS by rustls.
#[cfg(feature = "online")]
#[derive(Debug)]
pub struct UreqTransport {
    agent: ureq::Agent,
}

#[cfg(feature = "online")]
impl Default for UreqTransport {
    fn default() -> Self {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(std::time::Duration::from_secs(30)))
            .http_status_as_error(false)
            .build();
        UreqTransport {
            agent: config.into(),
        }
    }
}

#[cfg(feature = "online")]
impl Transport for UreqTransport {
    fn post_json(&self, url: &str, body: &str) -> Result<(u16, String), String> {
        let mut r = self
            .agent
            .post(url)
            .header("Content-Type", "application/json")
            .send(body)
            .map_err(|e| e.to_string())?;
        let status = r.status().as_u16();
        let text = r
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_string()
            .map_err(|e| e.to_string())?;
        Ok((status, text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake service that answers from a closure.
    struct Fake<F>(F);
    impl<F: Fn(&str, &Value) -> (u16, Value) + Send + Sync> Transport for Fake<F> {
        fn post_json(&self, url: &str, body: &str) -> Result<(u16, String), String> {
            let (s, v) = (self.0)(url, &serde_json::from_str(body).map_err(|e| e.to_string())?);
            Ok((s, v.to_string()))
        }
    }

    #[test]
    fn refusals_map_to_codes_and_a_dead_transport_is_unreachable() {
        let fp: Fingerprint = Fingerprint::from_components(&[[1; 16]]).unwrap();
        let c = SeatClient::with_transport(
            "https://x/",
            Fake(|url: &str, body: &Value| {
                assert_eq!(url, "https://x/v1/public/leases");
                assert!(body["public_key"].as_str().unwrap().starts_with("kspub1."));
                (
                    409,
                    json!({"type": "urn:keyseal:problem:seat-limit", "detail": "all 3 seats"}),
                )
            }),
        );
        let e = c.activate(" ks1.x ", &fp).unwrap_err();
        assert_eq!(e.code(), "seat_limit");
        assert!(e.is_transient());
        struct Down;
        impl Transport for Down {
            fn post_json(&self, _: &str, _: &str) -> Result<(u16, String), String> {
                Err("connection refused".into())
            }
        }
        let e = SeatClient::with_transport("https://x", Down)
            .activate("ks1.x", &fp)
            .unwrap_err();
        assert_eq!(e.code(), "unreachable");
        let e = SeatClient::with_transport(
            "https://x",
            Fake(|_: &str, _: &Value| {
                (
                    403,
                    json!({"type": "urn:keyseal:problem:invalid-license-key"}),
                )
            }),
        )
        .activate("ks1.x", &fp)
        .unwrap_err();
        assert_eq!((e.code(), e.is_transient()), ("invalid_license_key", false));
        // Every code has a plain message for the customer, not the code.
        for slug in [
            "seat-limit",
            "license-revoked",
            "bad-proof",
            "not-found",
            "teapot",
        ] {
            let e = SeatError::Refused {
                code: code_of(slug),
                status: 409,
                detail: String::new(),
            };
            let m = e.customer_message();
            assert!(m.ends_with('.') && !m.contains('_'), "{m}");
        }
        assert!(
            SeatError::Unreachable(String::new())
                .customer_message()
                .contains("network")
        );
    }

    #[test]
    fn a_saved_seat_reads_back_and_hides_its_key() {
        let key = SigningKey::from_seed(&[4; 32]).unwrap();
        let fp = Fingerprint::from_components(&[[1; 16]]).unwrap();
        let terms = keyseal_core::LeaseTerms {
            license_id: keyseal_core::LicenseId::from_bytes([2; 16]),
            seat_id: SeatId::from_bytes([3; 16]),
            device_hint: [0; 2],
            issued_at: 10,
            renew_at: 20,
            expires_at: 30,
        };
        let lease =
            keyseal_core::lease::to_text(&keyseal_core::lease::issue(&key, &terms, &fp).unwrap());
        let seat = Seat {
            seat_id: terms.seat_id,
            lease: lease.clone(),
            renew_at: 20,
            expires_at: 30,
            key: SigningKey::from_seed(&[9; 32]).unwrap(),
            last_at: 0,
        };
        let text = seat.to_text();
        let back = Seat::from_text(&text).unwrap();
        assert_eq!(
            (
                back.seat_id(),
                back.lease(),
                back.renew_at(),
                back.expires_at()
            ),
            (terms.seat_id, lease.as_str(), 20, 30)
        );
        assert_eq!(back.sign(CHECK_IN_DOMAIN, 5), seat.sign(CHECK_IN_DOMAIN, 5));
        assert!(!format!("{seat:?}").contains(&text[40..104]));
        assert_eq!(
            Seat::from_text("ksseat1.00").unwrap_err().code(),
            "bad_answer"
        );
    }

    #[test]
    fn prepared_requests_are_signed_at_growing_times_and_answers_map_as_the_clients() {
        let fp = Fingerprint::from_components(&[[1; 16]]).unwrap();
        let vendor = SigningKey::from_seed(&[4; 32]).unwrap();
        let terms = keyseal_core::LeaseTerms {
            license_id: keyseal_core::LicenseId::from_bytes([2; 16]),
            seat_id: SeatId::from_bytes([3; 16]),
            device_hint: [0; 2],
            issued_at: 10,
            renew_at: 20,
            expires_at: 30,
        };
        let lease = |t: &keyseal_core::LeaseTerms| {
            keyseal_core::lease::to_text(&keyseal_core::lease::issue(&vendor, t, &fp).unwrap())
        };
        let activation = Activation::new(" ks1.x\n", &fp).unwrap();
        let sent: Value = serde_json::from_str(&activation.request().body).unwrap();
        assert_eq!(activation.request().path, "/v1/public/leases");
        assert_eq!(sent["license_key"], "ks1.x");
        assert_eq!(sent["fingerprint"], fp.to_string());
        let answer = json!({"seat_id": terms.seat_id.to_string(), "lease": lease(&terms)});
        let mut seat = activation.finish(201, &answer.to_string()).unwrap();
        assert_eq!((seat.seat_id(), seat.renew_at()), (terms.seat_id, 20));
        assert_eq!(sent["public_key"], seat.key.public_key().to_string());

        // The same second twice: the second request is signed a second later.
        let first = seat.check_in_request("ks1.x", &fp, 100);
        let second: Value =
            serde_json::from_str(&seat.check_in_request("ks1.x", &fp, 100).body).unwrap();
        let first: Value = serde_json::from_str(&first.body).unwrap();
        assert_eq!(
            (first["at"].as_u64(), second["at"].as_u64()),
            (Some(100), Some(101))
        );
        let signature = <[u8; 64]>::try_from(unhex(second["signature"].as_str().unwrap())).unwrap();
        let mut message = CHECK_IN_DOMAIN.to_vec();
        message.extend_from_slice(&terms.seat_id.to_bytes());
        message.extend_from_slice(&101u64.to_be_bytes());
        seat.key
            .public_key()
            .verify_strict(&message, &signature)
            .unwrap();

        let renewed = keyseal_core::LeaseTerms {
            renew_at: 40,
            expires_at: 50,
            ..terms
        };
        let answer = json!({"seat_id": terms.seat_id.to_string(), "lease": lease(&renewed)});
        seat.finish_check_in(200, &answer.to_string()).unwrap();
        assert_eq!((seat.renew_at(), seat.expires_at()), (40, 50));
        let release: Value = serde_json::from_str(&seat.release_request("ks1.x", 50).body).unwrap();
        assert_eq!(release["at"].as_u64(), Some(102));
        assert!(release.get("fingerprint").is_none());
        let e = seat
            .finish_release(404, r#"{"type":"urn:keyseal:problem:not-found"}"#)
            .unwrap_err();
        assert_eq!((e.code(), e.is_transient()), ("unknown_seat", false));
        assert!(seat.finish_release(200, "{}").is_ok());
    }

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }
}
