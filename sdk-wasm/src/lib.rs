#![doc = include_str!("../README.md")]
//!
//! # The Rust side
//!
//! This crate is the `wasm-bindgen` adapter under the npm package: every
//! export maps names and types between JavaScript and the `keyseal` crate
//! (sdk-rust) and does nothing else. The hand-written ES modules in `npm/`
//! load the `.wasm`, register [`KeysealError`](set_error_class) and add the
//! storage adapters; the TypeScript types live in `npm/index.d.ts`.
//!
//! Two `.wasm` files come from it (`scripts/build.sh`): the verify-only one
//! of the package's main entry, and with feature `seats` the one of its
//! `keyseal/seats` entry, which adds `seats.rs` (activation, check-in,
//! release, air-gapped codes; types in `npm/seats.d.ts`), so holding seats
//! adds nothing to what validating alone downloads.

use std::cell::RefCell;
use std::io;

use js_sys::{Array, Function, Object, Reflect, Uint8Array};
use keyseal::fingerprint::{self, Fingerprinter};
use keyseal::{
    BindingKind, Clock, CoreError, Fingerprint, Keyring, License, Mode, Policy, Problem, Rejection,
    RevocationList, Staleness, StateStore, Status, Version,
};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;

#[cfg(feature = "seats")]
mod seats;

/// The options `new Validator(options)` reads; any other property is an error.
const OPTIONS: &[&str] = &[
    "keyring",
    "product",
    "appVersion",
    "device",
    "clock",
    "state",
    "mode",
    "leeway",
    "precompute",
    "clockTolerance",
    "staleness",
    "onClockSuspect",
    "onCorruptState",
    "revocationList",
];

/// Largest integer a JavaScript number holds exactly (2^53 - 1).
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

thread_local! {
    /// The `KeysealError` class, registered by the package's entry module.
    static ERROR_CLASS: RefCell<Option<Function>> = const { RefCell::new(None) };
}

/// Registers the JavaScript `KeysealError` class every failure is thrown as:
/// `new KeysealError(code, message, customerMessage, warnings, fault)`. The
/// package's entry modules call it once, right after loading the `.wasm`.
#[wasm_bindgen(js_name = __setErrorClass)]
pub fn set_error_class(class: Function) {
    ERROR_CLASS.with(|c| *c.borrow_mut() = Some(class));
}

/// Every code a `KeysealError` or a warning can carry, the same in every
/// keyseal SDK: keyseal-core's, then sdk-rust's.
#[wasm_bindgen]
pub fn codes() -> Array {
    CoreError::CODES
        .iter()
        .chain(Problem::SDK_CODES)
        .map(|c| JsValue::from_str(c))
        .collect()
}

/// Strict Ed25519 verification through keyseal-core, as a `Validator`
/// verifies: the key is loaded with `PublicKey::from_bytes` (refusing
/// non-canonical and small-order keys), then verified through its
/// precomputed tables (`PrecomputedKey`, what a validator uses for its
/// keyring's keys), or with `{ precompute: false }` by the plain
/// `verify_strict` (what it uses otherwise). The tables are built on every
/// call (as long as a one-key validator's, about 3 ms), so this is for
/// checking signatures and test vectors, not a fast path. A key or signature of the wrong length is `false`;
/// options other than `{ precompute: boolean }` throw `invalid_config`.
#[wasm_bindgen(js_name = verifyEd25519Strict)]
pub fn verify_ed25519_strict(
    public_key: &[u8],
    message: &[u8],
    signature: &[u8],
    options: &JsValue,
) -> Result<bool, JsValue> {
    let precompute = precompute(options)?.unwrap_or(true);
    let (Ok(public_key), Ok(signature)) = (
        <&[u8; 32]>::try_from(public_key),
        <&[u8; 64]>::try_from(signature),
    ) else {
        return Ok(false);
    };
    let verdict = keyseal::keyseal_core::PublicKey::from_bytes(public_key).and_then(|key| {
        if precompute {
            keyseal::keyseal_core::PrecomputedKey::new(&key).verify_strict(message, signature)
        } else {
            key.verify_strict(message, signature)
        }
    });
    Ok(verdict.is_ok())
}

/// Checks a webhook delivery from the keyseal issuing service with the
/// organisation's public keyring: sdk-rust's `keyseal::webhooks::verify` at
/// `now` (unix seconds). For the package's `verifyWebhook`, which throws
/// the answer `{ code, message, keyId }` as a `WebhookError` and returns
/// `{ keyId }`'s key id. A missing header (`undefined` or `null`) is empty,
/// hence `malformed`; a header or keyring that is no string, or a body that
/// is neither a string nor bytes, throws `invalid_config`; a keyring that
/// is not one throws `malformed`.
#[wasm_bindgen(js_name = __verifyWebhook)]
pub fn verify_webhook(
    keyring: &JsValue,
    id: &JsValue,
    timestamp: &JsValue,
    signature: &JsValue,
    body: &JsValue,
    now: f64,
) -> Result<Object, JsValue> {
    let text = |v: &JsValue| -> Result<String, JsValue> {
        if v.is_undefined() || v.is_null() {
            return Ok(String::new());
        }
        v.as_string()
            .ok_or_else(|| config_error("verifyWebhook(): each header must be a string"))
    };
    let keyring = keyring
        .as_string()
        .ok_or_else(|| config_error("verifyWebhook(): the keyring must be a string"))?;
    let ring: keyseal::Keyring = keyring
        .parse()
        .map_err(|e| problem_error(&Problem::Core(e)))?;
    let (id, timestamp, signature) = (text(id)?, text(timestamp)?, text(signature)?);
    let body = bytes(body).ok_or_else(|| {
        config_error("verifyWebhook(): the body must be a string, a Uint8Array or an ArrayBuffer")
    })?;
    // `now` is checked by the caller: finite, not negative.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let now = now as u64;
    let out = Object::new();
    match keyseal::webhooks::verify(&ring, &id, &timestamp, &signature, &body, now) {
        Ok(key) => set(&out, "keyId", &key.to_string().into()),
        Err(e) => {
            let key = e
                .key_id()
                .map_or(JsValue::NULL, |k| JsValue::from_str(&k.to_string()));
            set(&out, "code", &e.code().into());
            set(&out, "message", &e.to_string().into());
            set(&out, "keyId", &key);
        }
    }
    Ok(out)
}

/// A device fingerprint (`ksfp1.` code) from ids the app supplies, each
/// `{ kind, id }` with `id` a string or bytes, computed by sdk-rust's
/// `Fingerprinter` (salted with the product; surrounding whitespace trimmed,
/// empty ids skipped, at most 8 components).
#[wasm_bindgen(js_name = deviceFingerprint)]
pub fn device_fingerprint(product: &str, ids: &JsValue) -> Result<String, JsValue> {
    let ids = ids
        .dyn_ref::<Array>()
        .ok_or_else(|| config_error("deviceFingerprint() takes an array of { kind, id }"))?;
    let mut fingerprinter = Fingerprinter::new(product);
    for entry in ids.iter() {
        let kind = get(&entry, "kind")
            .and_then(|k| k.as_string())
            .ok_or_else(|| config_error("each device id needs a string `kind`"))?;
        let id = get(&entry, "id")
            .and_then(|v| bytes(&v))
            .ok_or_else(|| config_error("each device id needs an `id`, a string or bytes"))?;
        fingerprinter = fingerprinter.source(fingerprint::from_fn(kind, move || Some(id.clone())));
    }
    fingerprinter
        .fingerprint()
        .map(|f| f.to_string())
        .map_err(|p| problem_error(&p))
}

/// Validates license keys offline; see the package README.
#[wasm_bindgen]
pub struct Validator {
    inner: keyseal::Validator,
}

#[wasm_bindgen]
impl Validator {
    /// Builds a validator from `{ keyring, product, ... }`; throws a
    /// `KeysealError` (`invalid_config`, `malformed`, or the revocation
    /// list's refusal).
    #[wasm_bindgen(constructor)]
    pub fn new(options: &JsValue) -> Result<Validator, JsValue> {
        build(options).map(|inner| Validator { inner })
    }

    /// Validates a license key (text or armored file): the license as a
    /// plain object, or a thrown `KeysealError`.
    pub fn validate(&self, key: &JsValue) -> Result<Object, JsValue> {
        let key = key
            .as_string()
            .ok_or_else(|| config_error("validate() takes the license key as a string"))?;
        self.inner
            .validate(&key)
            .map(|l| license_object(&l))
            .map_err(|r| rejection_error(&r))
    }

    /// Validates a license key with its lease (`kslease1.` text) for this
    /// validator's device: the license as a plain object with its `lease`,
    /// or a thrown `KeysealError` (the license's own refusal, else
    /// `lease_invalid` with its `fault`, or `lease_expired`).
    #[wasm_bindgen(js_name = validateWithLease)]
    pub fn validate_with_lease(&self, key: &JsValue, lease: &JsValue) -> Result<Object, JsValue> {
        let (Some(key), Some(lease)) = (key.as_string(), lease.as_string()) else {
            return Err(config_error(
                "validateWithLease() takes the license key and the lease as strings",
            ));
        };
        self.inner
            .validate_with_lease(&key, &lease)
            .map(|l| license_object(&l))
            .map_err(|r| rejection_error(&r))
    }

    /// Verifies a revocation list (binary or armored; `Uint8Array`,
    /// `ArrayBuffer` or string) and puts it in force.
    #[wasm_bindgen(js_name = loadRevocationList)]
    pub fn load_revocation_list(&self, list: &JsValue) -> Result<Object, JsValue> {
        let list = bytes(list).ok_or_else(|| {
            config_error("loadRevocationList() takes a Uint8Array, an ArrayBuffer or a string")
        })?;
        self.inner
            .load_revocation_list(&list)
            .map(|l| list_object(&l))
            .map_err(|p| problem_error(&p))
    }

    /// The revocation list in force, or `null`.
    #[wasm_bindgen(getter, js_name = revocationList)]
    pub fn revocation_list(&self) -> JsValue {
        self.inner
            .revocation_list()
            .map_or(JsValue::NULL, |l| list_object(&l).into())
    }

    /// The product this validator expects.
    #[wasm_bindgen(getter)]
    pub fn product(&self) -> String {
        self.inner.product().to_owned()
    }

    /// Writes the state now.
    #[wasm_bindgen(js_name = saveState)]
    pub fn save_state(&self) -> Result<(), JsValue> {
        self.inner.save_state().map_err(|p| problem_error(&p))
    }

    /// Drops the clock's high-water mark to the latest vendor-signed time.
    #[wasm_bindgen(js_name = resetClockMark)]
    pub fn reset_clock_mark(&self) -> Result<(), JsValue> {
        self.inner.reset_clock_mark().map_err(|p| problem_error(&p))
    }
}

fn build(options: &JsValue) -> Result<keyseal::Validator, JsValue> {
    if !options.is_object() {
        return Err(config_error(
            "new Validator() takes an options object { keyring, product, ... }",
        ));
    }
    for name in Object::keys(options.unchecked_ref::<Object>()).iter() {
        let name = name.as_string().unwrap_or_default();
        if !OPTIONS.contains(&name.as_str()) {
            return Err(config_error(&format!("unknown option `{name}`")));
        }
    }
    let keyring: Keyring = string(options, "keyring")?
        .ok_or_else(|| config_error("`keyring` (the keyring text) is required"))?
        .parse()
        .map_err(core_error)?;
    let product =
        string(options, "product")?.ok_or_else(|| config_error("`product` is required"))?;
    let mut b = keyseal::Validator::builder(keyring, product)
        .clock(DateClock)
        .no_device();
    if let Some(v) = string(options, "appVersion")? {
        b = b.app_version(v.parse::<Version>().map_err(core_error)?);
    }
    if let Some(fp) = string(options, "device")? {
        b = b.device(fp.parse::<Fingerprint>().map_err(core_error)?);
    }
    if let Some(clock) = get(options, "clock") {
        let f = clock
            .dyn_into::<Function>()
            .map_err(|_| config_error("`clock` must be a function returning milliseconds"))?;
        b = b.clock(JsClock(f));
    }
    if let Some(state) = get(options, "state") {
        b = b.state(JsStore::new(state)?);
    }
    if let Some(mode) = string(options, "mode")? {
        b = b.mode(match mode.as_str() {
            "enforce" => Mode::Enforce,
            "advisory" => Mode::Advisory,
            _ => return Err(config_error("`mode` must be 'enforce' or 'advisory'")),
        });
    }
    if let Some(secs) = seconds(options, "leeway")? {
        b = b.leeway(secs);
    }
    if let Some(yes) = precompute(options)? {
        b = b.precompute(yes);
    }
    if let Some(secs) = seconds(options, "clockTolerance")? {
        b = b.clock_tolerance(secs);
    }
    if let Some(s) = get(options, "staleness") {
        b = b.staleness(staleness(&s)?);
    }
    if let Some(p) = policy(options, "onClockSuspect")? {
        b = b.on_clock_suspect(p);
    }
    if let Some(p) = policy(options, "onCorruptState")? {
        b = b.on_corrupt_state(p);
    }
    if let Some(list) = get(options, "revocationList") {
        let list = bytes(&list).ok_or_else(|| {
            config_error("`revocationList` must be a Uint8Array, an ArrayBuffer or a string")
        })?;
        b = b.revocation_list(list);
    }
    b.build().map_err(|p| problem_error(&p))
}

fn staleness(s: &JsValue) -> Result<Staleness, JsValue> {
    const MSG: &str = "`staleness` must be 'ignore', 'warn' or { refuseAfterDays: n }";
    match s.as_string().as_deref() {
        Some("ignore") => return Ok(Staleness::Ignore),
        Some("warn") => return Ok(Staleness::Warn),
        Some(_) => return Err(config_error(MSG)),
        None => {}
    }
    let days = seconds(s, "refuseAfterDays")?.ok_or_else(|| config_error(MSG))?;
    let days = u32::try_from(days).map_err(|_| config_error("`refuseAfterDays` is too large"))?;
    Ok(Staleness::RefuseAfter { days })
}

fn policy(options: &JsValue, name: &str) -> Result<Option<Policy>, JsValue> {
    match string(options, name)?.as_deref() {
        None => Ok(None),
        Some("warn") => Ok(Some(Policy::Warn)),
        Some("refuse") => Ok(Some(Policy::Refuse)),
        Some(_) => Err(config_error(&format!(
            "`{name}` must be 'warn' or 'refuse'"
        ))),
    }
}

/// The `precompute` option, if given: a boolean.
fn precompute(options: &JsValue) -> Result<Option<bool>, JsValue> {
    get(options, "precompute")
        .map(|v| {
            v.as_bool()
                .ok_or_else(|| config_error("`precompute` must be true or false"))
        })
        .transpose()
}

/// A property, `None` if undefined or null.
fn get(target: &JsValue, name: &str) -> Option<JsValue> {
    Reflect::get(target, &JsValue::from_str(name))
        .ok()
        .filter(|v| !v.is_undefined() && !v.is_null())
}

fn string(options: &JsValue, name: &str) -> Result<Option<String>, JsValue> {
    get(options, name)
        .map(|v| {
            v.as_string()
                .ok_or_else(|| config_error(&format!("`{name}` must be a string")))
        })
        .transpose()
}

/// A non-negative whole number (of seconds, or days).
fn seconds(options: &JsValue, name: &str) -> Result<Option<u64>, JsValue> {
    get(options, name)
        .map(|v| match v.as_f64() {
            Some(n) if n >= 0.0 && n.fract() == 0.0 && n <= MAX_SAFE_INTEGER => Ok(n as u64),
            _ => Err(config_error(&format!(
                "`{name}` must be a whole number of at least 0"
            ))),
        })
        .transpose()
}

/// Bytes from a string (UTF-8), a `Uint8Array` or an `ArrayBuffer`.
fn bytes(v: &JsValue) -> Option<Vec<u8>> {
    if let Some(s) = v.as_string() {
        return Some(s.into_bytes());
    }
    if let Some(a) = v.dyn_ref::<Uint8Array>() {
        return Some(a.to_vec());
    }
    if v.is_instance_of::<js_sys::ArrayBuffer>() {
        return Some(Uint8Array::new(v).to_vec());
    }
    None
}

/// `Date.now()`, the default clock.
struct DateClock;

impl Clock for DateClock {
    fn now(&self) -> u64 {
        millis_to_secs(js_sys::Date::now())
    }
}

/// A JavaScript function returning milliseconds since 1970 (like
/// `Date.now`) or a `Date`.
struct JsClock(Function);

impl Clock for JsClock {
    fn now(&self) -> u64 {
        // A clock that throws or returns something else reads as 1970: the
        // validator then goes by its high-water mark and reports the clock.
        let ms = match self.0.call0(&JsValue::UNDEFINED) {
            Ok(v) => match v.dyn_ref::<js_sys::Date>() {
                Some(d) => d.get_time(),
                None => v.as_f64().unwrap_or(0.0),
            },
            Err(_) => 0.0,
        };
        millis_to_secs(ms)
    }
}

fn millis_to_secs(ms: f64) -> u64 {
    if ms.is_finite() && ms > 0.0 {
        (ms / 1000.0).floor() as u64
    } else {
        0
    }
}

/// A JavaScript object `{ get(): string | Uint8Array | null, set(text) }`.
struct JsStore {
    target: JsValue,
    get: Function,
    set: Function,
}

impl JsStore {
    fn new(target: JsValue) -> Result<Self, JsValue> {
        let method = |name| get(&target, name).and_then(|f| f.dyn_into::<Function>().ok());
        match (method("get"), method("set")) {
            (Some(get), Some(set)) => Ok(JsStore { target, get, set }),
            _ => Err(config_error(
                "`state` must be an object with get() and set(text) methods",
            )),
        }
    }
}

impl StateStore for JsStore {
    fn load(&self) -> io::Result<Option<Vec<u8>>> {
        let v = self.get.call0(&self.target).map_err(io_error)?;
        if v.is_undefined() || v.is_null() {
            return Ok(None);
        }
        bytes(&v).map(Some).ok_or_else(|| {
            io::Error::other("state get() returned neither a string, bytes nor null")
        })
    }

    fn save(&self, bytes: &[u8]) -> io::Result<()> {
        let text = std::str::from_utf8(bytes).map_err(io::Error::other)?;
        self.set
            .call1(&self.target, &JsValue::from_str(text))
            .map(drop)
            .map_err(io_error)
    }
}

/// What a JavaScript exception says, as an I/O error (a store that throws
/// is a `state_unavailable` warning).
fn io_error(e: JsValue) -> io::Error {
    let message = e
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| "the state store threw".to_owned());
    io::Error::other(message)
}

fn set(target: &Object, name: &str, value: &JsValue) {
    // Defining a property on a fresh plain object cannot fail.
    let _ = Reflect::set(target, &JsValue::from_str(name), value);
}

/// The license as a plain object. Built as JSON text and parsed by
/// `JSON.parse` in one call: a property set across the boundary costs a
/// string conversion per name and value, and setting them one by one made a
/// validation 11 to 14% slower (sdk-wasm/README.md, Size and speed).
fn license_object(l: &License) -> Object {
    let (status, grace_ends) = match l.status() {
        Status::Active => ("active", None),
        Status::InGrace { grace_ends } => ("in_grace", Some(grace_ends)),
        Status::Expired { .. } => ("expired", None),
        Status::NotYetValid { .. } => ("not_yet_valid", None),
        _ => ("unknown", None),
    };
    let mut j = Json(Vec::with_capacity(512));
    j.push(b"{");
    j.field("licenseId").string(&l.id().to_string());
    j.field("product").string(l.product());
    j.field("customer").string(l.customer());
    j.field("plan").string(l.plan());
    j.field("issuedAt").number(Some(l.issued_at()));
    j.field("notBefore").number(l.not_before());
    j.field("expiresAt").number(l.expires_at());
    j.field("graceSecs").number(Some(u64::from(l.grace_secs())));
    j.field("status").string(status);
    j.field("graceEnds").number(grace_ends);
    j.field("entitlements").push(b"[");
    for e in l.entitlements() {
        j.sep().string(e);
    }
    j.push(b"]");
    match l.max_version() {
        Some(v) => j.field("maxVersion").string(&v.to_string()),
        None => j.field("maxVersion").number(None),
    };
    j.field("extensions").push(b"{");
    for (k, v) in l.extensions() {
        j.field(k).string(v);
    }
    j.push(b"}");
    j.field("keyId").string(&l.key_id().to_string());
    j.field("device");
    match l.binding() {
        None => j.push(b"null"),
        Some(BindingKind::Exact) => j.push(br#"{"kind":"exact"}"#),
        Some(BindingKind::Tolerant {
            required,
            components,
        }) => {
            j.push(br#"{"kind":"tolerant""#);
            j.field("required").number(Some(u64::from(required)));
            j.field("components").number(Some(u64::from(components)));
            j.push(b"}")
        }
        Some(_) => j.push(br#"{"kind":"unknown"}"#),
    };
    j.field("lease");
    match l.lease() {
        None => j.push(b"null"),
        Some(lease) => {
            j.push(b"{");
            j.field("seatId").string(&lease.seat_id().to_string());
            j.field("keyId").string(&lease.key_id().to_string());
            j.field("issuedAt").number(Some(lease.issued_at()));
            j.field("renewAt").number(Some(lease.renew_at()));
            j.field("expiresAt").number(Some(lease.expires_at()));
            j.field("checkInDue").push(if lease.check_in_due() {
                b"true"
            } else {
                b"false"
            });
            j.push(b"}")
        }
    };
    j.field("warnings");
    write_warnings(&mut j, l.warnings());
    j.push(b"}");
    j.parse().unchecked_into()
}

/// A JSON text being written (as bytes: keyseal's strings are UTF-8 and
/// only `"`, `\\` and control characters need escapes).
struct Json(Vec<u8>);

impl Json {
    /// A comma, unless this is the first member of an object or array.
    fn sep(&mut self) -> &mut Self {
        if !matches!(self.0.last(), Some(b'{' | b'[')) {
            self.0.push(b',');
        }
        self
    }

    /// `"name":`, after a comma unless it is the object's first member.
    fn field(&mut self, name: &str) -> &mut Self {
        self.sep().string(name).push(b":")
    }

    fn string(&mut self, s: &str) -> &mut Self {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        self.0.push(b'"');
        for &b in s.as_bytes() {
            match b {
                b'"' | b'\\' => self.0.extend_from_slice(&[b'\\', b]),
                0..=0x1f => self.0.extend_from_slice(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[usize::from(b >> 4)],
                    HEX[usize::from(b & 0xf)],
                ]),
                _ => self.0.push(b),
            }
        }
        self.0.push(b'"');
        self
    }

    /// A number, or `null`. Past 2^53 it rounds as a JavaScript number does.
    fn number(&mut self, n: Option<u64>) -> &mut Self {
        match n {
            Some(n) => self.push(n.to_string().as_bytes()),
            None => self.push(b"null"),
        }
    }

    fn push(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.extend_from_slice(bytes);
        self
    }

    /// `JSON.parse` of the text. It is valid JSON by construction (the
    /// strings come from `&str`, escaped); if parsing ever failed, the
    /// `SyntaxError` is thrown rather than a wrong object returned.
    fn parse(&self) -> JsValue {
        let text = std::str::from_utf8(&self.0).unwrap_or_default();
        js_sys::JSON::parse(text).unwrap_or_else(|e| wasm_bindgen::throw_val(e))
    }
}

/// The list as a plain object. Its JSON text takes 35 bytes per revoked
/// license (a 100,000-license list: 3.5 MB of WebAssembly memory while the
/// object is made, then free for reuse).
fn list_object(l: &RevocationList) -> Object {
    let capacity = 128 + 35 * l.revoked_licenses().len() + 19 * l.revoked_keys().len();
    let mut j = Json(Vec::with_capacity(capacity));
    j.push(b"{");
    j.field("sequence").number(Some(l.sequence()));
    j.field("issuedAt").number(Some(l.issued_at()));
    j.field("nextUpdate").number(Some(l.next_update()));
    j.field("signer").string(&l.signer().to_string());
    j.field("revokedLicenses").push(b"[");
    for id in l.revoked_licenses() {
        j.sep().string(&id.to_string());
    }
    j.push(b"]");
    j.field("revokedKeys").push(b"[");
    for id in l.revoked_keys() {
        j.sep().string(&id.to_string());
    }
    j.push(b"]}");
    j.parse().unchecked_into()
}

/// `[{ code, message, customerMessage, fault }]`, written into `j`.
fn write_warnings(j: &mut Json, problems: &[Problem]) {
    j.push(b"[");
    for p in problems {
        j.sep().push(b"{");
        j.field("code").string(p.code());
        j.field("message").string(&p.to_string());
        j.field("customerMessage").string(&p.customer_message());
        match fault(p) {
            Some(f) => j.field("fault").string(f),
            None => j.field("fault").push(b"null"),
        };
        j.push(b"}");
    }
    j.push(b"]");
}

/// Why a lease does not hold, for `lease_invalid` (its `fault`); else `None`.
fn fault(p: &Problem) -> Option<&'static str> {
    match p.core_error() {
        Some(CoreError::LeaseInvalid(f)) => Some(f.code()),
        _ => None,
    }
}

/// `[{ code, message, customerMessage, fault }]`.
fn warnings(problems: &[Problem]) -> Array {
    let mut j = Json(Vec::new());
    write_warnings(&mut j, problems);
    j.parse().unchecked_into()
}

/// `new KeysealError(code, message, customerMessage, warnings, fault)`, or
/// a plain `Error` with the same properties if no class was registered.
fn js_error(
    code: &str,
    message: &str,
    customer_message: &str,
    warnings: &Array,
    fault: Option<&str>,
) -> JsValue {
    let fault = fault.map_or(JsValue::NULL, JsValue::from_str);
    let args = Array::of5(
        &code.into(),
        &message.into(),
        &customer_message.into(),
        warnings,
        &fault,
    );
    let registered = ERROR_CLASS.with(|c| c.borrow().clone());
    if let Some(class) = registered
        && let Ok(e) = Reflect::construct(&class, &args)
    {
        return e;
    }
    let e = js_sys::Error::new(message);
    e.set_name("KeysealError");
    set(&e, "code", &code.into());
    set(&e, "customerMessage", &customer_message.into());
    set(&e, "warnings", warnings);
    set(&e, "fault", &fault);
    e.into()
}

fn problem_error(p: &Problem) -> JsValue {
    js_error(
        p.code(),
        &p.to_string(),
        &p.customer_message(),
        &Array::new(),
        fault(p),
    )
}

fn rejection_error(r: &Rejection) -> JsValue {
    js_error(
        r.code(),
        &r.to_string(),
        &r.customer_message(),
        &warnings(r.warnings()),
        fault(r.problem()),
    )
}

fn core_error(e: CoreError) -> JsValue {
    problem_error(&Problem::Core(e))
}

/// An `invalid_config` error naming what the app got wrong (the binding's
/// own checks of JavaScript values; sdk-rust's are `&'static str`).
fn config_error(detail: &str) -> JsValue {
    let p = Problem::InvalidConfig { detail: "" };
    js_error(
        p.code(),
        &format!("invalid configuration: {detail}"),
        &p.customer_message(),
        &Array::new(),
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::Json;

    fn text(f: impl FnOnce(&mut Json)) -> String {
        let mut j = Json(Vec::new());
        f(&mut j);
        String::from_utf8(j.0).unwrap_or_default()
    }

    #[test]
    fn json_strings_escape_quotes_backslashes_and_control_characters() {
        let s = text(|j| {
            j.string("a\"b\\c\u{1}\n\u{1f} é€");
        });
        assert_eq!(s, r#""a\"b\\c\u0001\u000a\u001f é€""#);
    }

    #[test]
    fn json_members_are_separated_and_numbers_written_in_full() {
        let s = text(|j| {
            j.push(b"{");
            j.field("a").number(Some(0));
            j.field("b").number(Some(u64::MAX));
            j.field("c").number(None);
            j.field("d").push(b"[");
            for e in ["x", "y"] {
                j.sep().string(e);
            }
            j.push(b"]}");
        });
        assert_eq!(
            s,
            r#"{"a":0,"b":18446744073709551615,"c":null,"d":["x","y"]}"#
        );
    }
}
