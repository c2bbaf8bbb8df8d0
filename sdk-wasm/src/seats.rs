//! The seats entry of the npm package (`keyseal/seats`, cargo feature
//! `seats`): sdk-rust's `seats` module without its transport. The
//! requests, the installation's proofs, the reading of answers, the saved
//! texts, the air-gapped codes, the trial request and every `SeatError`
//! (code, message, customer message, transience) are sdk-rust's;
//! `npm/seats.js` only sends the requests (with `fetch`, or the app's
//! transport) and hands the answers back here, since a JavaScript request
//! cannot block.

use std::cell::RefCell;

use js_sys::{Array, Function, Object, Reflect};
use keyseal::Fingerprint;
use keyseal::seats::{self, SeatError};
use wasm_bindgen::prelude::*;

use crate::{config_error, core_error, millis_to_secs, set};

thread_local! {
    /// The `SeatError` class, registered by the seats entry module.
    static SEAT_ERROR_CLASS: RefCell<Option<Function>> = const { RefCell::new(None) };
}

/// Registers the JavaScript `SeatError` class every seat failure is thrown
/// as: `new SeatError(code, message, customerMessage, isTransient, status,
/// options)`. The seats entry modules call it once, with
/// [`set_error_class`](crate::set_error_class).
#[wasm_bindgen(js_name = __setSeatErrorClass)]
pub fn set_seat_error_class(class: Function) {
    SEAT_ERROR_CLASS.with(|c| *c.borrow_mut() = Some(class));
}

/// `new SeatError(...)` for `e` (with `cause`, the transport's exception,
/// unless undefined), or a plain `Error` with the same properties if no
/// class was registered.
fn seat_error_with(e: &SeatError, cause: &JsValue) -> JsValue {
    let status = match e {
        SeatError::Refused { status, .. } => JsValue::from(*status),
        _ => JsValue::NULL,
    };
    let (code, message, customer) = (
        JsValue::from_str(e.code()),
        JsValue::from_str(&e.to_string()),
        JsValue::from_str(e.customer_message()),
    );
    let transient = JsValue::from_bool(e.is_transient());
    let args = Array::of5(&code, &message, &customer, &transient, &status);
    let options = Object::new();
    if !cause.is_undefined() {
        set(&options, "cause", cause);
    }
    args.push(&options);
    let registered = SEAT_ERROR_CLASS.with(|c| c.borrow().clone());
    if let Some(class) = registered
        && let Ok(error) = Reflect::construct(&class, &args)
    {
        return error;
    }
    let error = js_sys::Error::new(&e.to_string());
    error.set_name("SeatError");
    set(&error, "code", &code);
    set(&error, "customerMessage", &customer);
    set(&error, "isTransient", &transient);
    set(&error, "status", &status);
    if !cause.is_undefined() {
        set(&error, "cause", cause);
    }
    error.into()
}

fn seat_error(e: &SeatError) -> JsValue {
    seat_error_with(e, &JsValue::UNDEFINED)
}

/// The `unreachable` `SeatError` for a request that got no answer:
/// `detail` says why, `cause` is what the transport threw.
#[wasm_bindgen(js_name = __seatUnreachable)]
pub fn seat_unreachable(detail: &str, cause: &JsValue) -> JsValue {
    seat_error_with(&SeatError::Unreachable(detail.to_owned()), cause)
}

/// An `invalid_config` `KeysealError`, for the seats module's own checks
/// of JavaScript values (`npm/seats.js`).
#[wasm_bindgen(js_name = __invalidConfig)]
pub fn invalid_config(detail: &str) -> JsValue {
    config_error(detail)
}

/// A string argument, or an `invalid_config` error saying `what`.
fn text(v: &JsValue, what: &str) -> Result<String, JsValue> {
    v.as_string().ok_or_else(|| config_error(what))
}

/// A `ksfp1.` fingerprint argument: `invalid_config` if not a string,
/// `malformed` (as for a validator's `device`) if not a fingerprint.
fn fingerprint(v: &JsValue, call: &str) -> Result<Fingerprint, JsValue> {
    text(
        v,
        &format!("{call} takes the device fingerprint (a ksfp1. code) as a string"),
    )?
    .parse()
    .map_err(core_error)
}

/// `[path, body]` of a request for `npm/seats.js` to send.
fn request(r: &seats::Request) -> Array {
    Array::of2(&JsValue::from_str(r.path), &JsValue::from_str(&r.body))
}

/// An activation in flight: `SeatClient.activate` makes it, sends its
/// request, and finishes it with the answer (sdk-rust's
/// `seats::Activation`).
#[wasm_bindgen(js_name = __Activation)]
pub struct Activation {
    inner: seats::Activation,
}

#[wasm_bindgen(js_class = __Activation)]
impl Activation {
    /// The activation of this device on a seat of the license, with a new
    /// installation key pair.
    #[wasm_bindgen(constructor)]
    pub fn new(license_key: &JsValue, fingerprint: &JsValue) -> Result<Activation, JsValue> {
        let key = text(license_key, "activate() takes the license key as a string")?;
        let fp = self::fingerprint(fingerprint, "activate()")?;
        seats::Activation::new(&key, &fp)
            .map(|inner| Activation { inner })
            .map_err(|e| seat_error(&e))
    }

    /// `[path, body]`.
    pub fn request(&self) -> Array {
        request(self.inner.request())
    }

    /// The seat, from the answer's status and body.
    pub fn finish(self, status: u16, answer: &str) -> Result<Seat, JsValue> {
        self.inner
            .finish(status, answer)
            .map(|inner| Seat { inner })
            .map_err(|e| seat_error(&e))
    }
}

/// A trial request in flight: `SeatClient.startTrial` makes it, sends its
/// request, and finishes it with the answer (sdk-rust's
/// `seats::TrialRequest`).
#[wasm_bindgen(js_name = __TrialRequest)]
pub struct TrialRequest {
    inner: seats::TrialRequest,
}

#[wasm_bindgen(js_class = __TrialRequest)]
impl TrialRequest {
    /// The request of this device for the trial of `product`, sold by the
    /// organisation `org_id`.
    #[wasm_bindgen(constructor)]
    pub fn new(
        org_id: &JsValue,
        product: &JsValue,
        fingerprint: &JsValue,
    ) -> Result<TrialRequest, JsValue> {
        let org = text(
            org_id,
            "startTrial() takes the organisation id (org_...) as a string",
        )?;
        let product = text(product, "startTrial() takes the product id as a string")?;
        let fp = self::fingerprint(fingerprint, "startTrial()")?;
        Ok(TrialRequest {
            inner: seats::TrialRequest::new(&org, &product, &fp),
        })
    }

    /// `[path, body]`.
    pub fn request(&self) -> Array {
        request(self.inner.request())
    }

    /// The trial, from the answer's status and body, as a plain object
    /// `{ licenseKey, licenseId, plan, entitlements, startedAt, expiresAt }`
    /// (times in unix seconds).
    pub fn finish(self, status: u16, answer: &str) -> Result<Object, JsValue> {
        let t = self
            .inner
            .finish(status, answer)
            .map_err(|e| seat_error(&e))?;
        // A plain object, built as the license object is (`crate::Json`).
        let mut j = crate::Json(Vec::with_capacity(256 + t.license_key.len()));
        j.push(b"{");
        j.field("licenseKey").string(&t.license_key);
        j.field("licenseId").string(&t.license_id);
        j.field("plan").string(&t.plan);
        j.field("entitlements").push(b"[");
        for e in &t.entitlements {
            j.sep().string(e);
        }
        j.push(b"]");
        j.field("startedAt").number(Some(t.started_at));
        j.field("expiresAt").number(Some(t.expires_at));
        j.push(b"}");
        Ok(j.parse().unchecked_into())
    }
}

/// This device's seat (sdk-rust's `seats::Seat`): its id, its current
/// lease, and the private key of the installation that took it.
#[wasm_bindgen]
pub struct Seat {
    inner: seats::Seat,
}

#[wasm_bindgen]
impl Seat {
    /// The seat's id: 32 hex digits.
    #[wasm_bindgen(getter, js_name = seatId)]
    pub fn seat_id(&self) -> String {
        self.inner.seat_id().to_string()
    }

    /// The current lease (`kslease1.`).
    #[wasm_bindgen(getter)]
    pub fn lease(&self) -> String {
        self.inner.lease().to_owned()
    }

    /// When to check in, unix seconds (as the lease says, unverified).
    #[wasm_bindgen(getter, js_name = renewAt)]
    pub fn renew_at(&self) -> f64 {
        self.inner.renew_at() as f64
    }

    /// When the lease ends, unix seconds (as the lease says, unverified).
    #[wasm_bindgen(getter, js_name = expiresAt)]
    pub fn expires_at(&self) -> f64 {
        self.inner.expires_at() as f64
    }

    /// The seat as text to save (`ksseat1.`, sdk-rust's format); a secret.
    #[wasm_bindgen(js_name = toText)]
    pub fn to_text(&self) -> JsValue {
        // Straight from the wiped buffer into a JavaScript string.
        JsValue::from_str(&self.inner.to_text())
    }

    /// A seat saved with `toText` (by any keyseal SDK).
    #[wasm_bindgen(js_name = fromText)]
    pub fn from_text(text: &JsValue) -> Result<Seat, JsValue> {
        let text = self::text(text, "Seat.fromText() takes the saved seat as a string")?;
        seats::Seat::from_text(&text)
            .map(|inner| Seat { inner })
            .map_err(|e| seat_error(&e))
    }
}

/// `[path, body]` of the seat's check-in, signed at `now_ms` (milliseconds
/// since 1970, the client's clock).
#[wasm_bindgen(js_name = __checkInRequest)]
pub fn check_in_request(
    seat: &mut Seat,
    license_key: &JsValue,
    fingerprint: &JsValue,
    now_ms: f64,
) -> Result<Array, JsValue> {
    let key = text(license_key, "checkIn() takes the license key as a string")?;
    let fp = self::fingerprint(fingerprint, "checkIn()")?;
    Ok(request(&seat.inner.check_in_request(
        &key,
        &fp,
        millis_to_secs(now_ms),
    )))
}

/// Takes the check-in's answer: the seat then holds the new lease.
#[wasm_bindgen(js_name = __finishCheckIn)]
pub fn finish_check_in(seat: &mut Seat, status: u16, answer: &str) -> Result<(), JsValue> {
    seat.inner
        .finish_check_in(status, answer)
        .map_err(|e| seat_error(&e))
}

/// `[path, body]` of the seat's release, signed at `now_ms`.
#[wasm_bindgen(js_name = __releaseRequest)]
pub fn release_request(
    seat: &mut Seat,
    license_key: &JsValue,
    now_ms: f64,
) -> Result<Array, JsValue> {
    let key = text(license_key, "release() takes the license key as a string")?;
    Ok(request(
        &seat.inner.release_request(&key, millis_to_secs(now_ms)),
    ))
}

/// Takes the release's answer.
#[wasm_bindgen(js_name = __finishRelease)]
pub fn finish_release(seat: &Seat, status: u16, answer: &str) -> Result<(), JsValue> {
    seat.inner
        .finish_release(status, answer)
        .map_err(|e| seat_error(&e))
}

/// An air-gapped activation (sdk-rust's `seats::OfflineRequest`): the
/// request code, and the installation key kept until the response code.
#[wasm_bindgen]
pub struct OfflineRequest {
    inner: seats::OfflineRequest,
}

#[wasm_bindgen]
impl OfflineRequest {
    /// The request of this device (its fingerprint) for the license of
    /// `licenseKey`, with a new installation key pair.
    #[wasm_bindgen(constructor)]
    pub fn new(license_key: &JsValue, fingerprint: &JsValue) -> Result<OfflineRequest, JsValue> {
        let key = text(
            license_key,
            "new OfflineRequest() takes the license key as a string",
        )?;
        let fp = self::fingerprint(fingerprint, "new OfflineRequest()")?;
        seats::OfflineRequest::new(&key, &fp)
            .map(|inner| OfflineRequest { inner })
            .map_err(|e| seat_error(&e))
    }

    /// The request code (`KSREQ1.`).
    #[wasm_bindgen(getter)]
    pub fn code(&self) -> String {
        self.inner.code().to_owned()
    }

    /// Installs the vendor's response code: the seat. The request stays
    /// usable, so a typo can be corrected and installed again.
    pub fn install(&self, response_code: &JsValue) -> Result<Seat, JsValue> {
        let code = text(
            response_code,
            "install() takes the response code as a string",
        )?;
        // sdk-rust's `install` consumes the request (and drops it on a
        // typo); install a copy, made through its saved text.
        seats::OfflineRequest::from_text(&self.inner.to_text())
            .and_then(|copy| copy.install(&code))
            .map(|inner| Seat { inner })
            .map_err(|e| seat_error(&e))
    }

    /// The pending request as text to save (`ksseatreq1.`); a secret.
    #[wasm_bindgen(js_name = toText)]
    pub fn to_text(&self) -> JsValue {
        JsValue::from_str(&self.inner.to_text())
    }

    /// A pending request saved with `toText` (by any keyseal SDK).
    #[wasm_bindgen(js_name = fromText)]
    pub fn from_text(text: &JsValue) -> Result<OfflineRequest, JsValue> {
        let text = self::text(
            text,
            "OfflineRequest.fromText() takes the saved request as a string",
        )?;
        seats::OfflineRequest::from_text(&text)
            .map(|inner| OfflineRequest { inner })
            .map_err(|e| seat_error(&e))
    }
}
