//! `SeatClient`, `Seat`, `OfflineRequest` and `Trial`: newtypes over sdk-rust's
//! `seats` (feature `seats`), with its `Transport` implemented over a
//! Python callable `(url, body) -> (status, body)`. The default transport
//! is Python's own `urllib.request` (`keyseal/_http.py`), so the wheel links
//! no HTTP or TLS code.
//!
//! GIL: each request runs detached from the interpreter (`Python::detach`);
//! the transport attaches again to call the Python callable, so other
//! Python threads run while a request waits on the network, and nothing
//! holds a lock the callable could wait for. A `Seat` is borrowed mutably
//! by `check_in` and `release` for the request's length: another thread
//! using the same seat meanwhile gets pyo3's `RuntimeError` (already
//! borrowed), never a deadlock.

use std::cell::RefCell;

use pyo3::exceptions::{PyException, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyFrozenSet, PyString};

use keyseal::Fingerprint;
use keyseal::seats::{self, SeatError, Transport};

use crate::{errors, time};

/// Where the default transport lives (standard library only).
const DEFAULT_TRANSPORT: (&str, &str) = ("keyseal._http", "post_json");

/// What a Python transport did besides answering, during the current
/// request on this thread (the `Transport` trait carries a message only).
enum Stashed {
    /// It raised an `Exception`: no answer (`unreachable`), and the
    /// exception becomes the `SeatError`'s `__cause__`.
    Cause(PyErr),
    /// It raised a `BaseException` that is not an `Exception`
    /// (`KeyboardInterrupt`, `SystemExit`), or answered something that is not
    /// `(int, str)` (a bug in the app): raised as it is.
    Raise(PyErr),
}

thread_local! {
    static STASHED: RefCell<Option<Stashed>> = const { RefCell::new(None) };
}

fn stash(s: Stashed) {
    STASHED.with(|c| {
        let mut c = c.borrow_mut();
        if c.is_none() {
            *c = Some(s);
        }
    });
}

fn take_stashed() -> Option<Stashed> {
    STASHED.with(|c| c.borrow_mut().take())
}

/// Runs a seat request detached from the interpreter; its error, or what
/// the transport stashed, raised.
fn run<T: Send, F: FnOnce() -> Result<T, SeatError> + Send>(py: Python<'_>, f: F) -> PyResult<T> {
    drop(take_stashed());
    let out = py.detach(f);
    match (out, take_stashed()) {
        (_, Some(Stashed::Raise(e))) => Err(e),
        (Ok(v), _) => Ok(v),
        (Err(e), Some(Stashed::Cause(cause))) => Err(errors::seat_err(py, &e, Some(cause))),
        (Err(e), None) => Err(errors::seat_err(py, &e, None)),
    }
}

/// sdk-rust's `Transport` over a Python callable.
struct PyTransport(Py<PyAny>);

impl Transport for PyTransport {
    fn post_json(&self, url: &str, body: &str) -> Result<(u16, String), String> {
        Python::attach(|py| {
            let answer = match self.0.bind(py).call1((url, body)) {
                Ok(answer) => answer,
                Err(e) if e.is_instance_of::<PyException>(py) => {
                    let why = describe(py, &e);
                    stash(Stashed::Cause(e));
                    return Err(why);
                }
                Err(e) => {
                    stash(Stashed::Raise(e));
                    return Err("interrupted".to_owned());
                }
            };
            match answer.extract::<(u16, String)>() {
                Ok(pair) => Ok(pair),
                Err(_) => {
                    stash(Stashed::Raise(PyTypeError::new_err(format!(
                        "the transport must return (status: int, body: str), not {}",
                        time::short_repr(&answer)
                    ))));
                    Err("not an answer".to_owned())
                }
            }
        })
    }
}

/// `ExceptionType: message`, for the `SeatError`'s own message.
fn describe(py: Python<'_>, e: &PyErr) -> String {
    let value = e.value(py);
    let name = time::type_name(value.as_any());
    match value.str() {
        Ok(s) if !s.to_string().is_empty() => format!("{name}: {s}"),
        _ => name,
    }
}

fn fingerprint(text: &str) -> PyResult<Fingerprint> {
    text.parse().map_err(errors::core_err)
}

/// Asks the vendor's licensing service for seats and leases (sdk-rust's
/// `seats::SeatClient`).
#[pyclass(name = "SeatClient", module = "keyseal._keyseal", frozen)]
pub struct PySeatClient {
    inner: seats::SeatClient,
    base_url: String,
}

#[pymethods]
impl PySeatClient {
    #[new]
    #[pyo3(signature = (base_url, transport = None))]
    fn new(
        py: Python<'_>,
        base_url: String,
        transport: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let transport = match transport {
            Some(t) if t.is_callable() => t,
            Some(t) => {
                return Err(PyTypeError::new_err(format!(
                    "transport must be a callable (url, body) -> (status, body), or None, not {}",
                    time::type_name(&t)
                )));
            }
            None => py
                .import(DEFAULT_TRANSPORT.0)?
                .getattr(DEFAULT_TRANSPORT.1)?,
        };
        Ok(PySeatClient {
            inner: seats::SeatClient::with_transport(
                base_url.as_str(),
                PyTransport(transport.unbind()),
            ),
            base_url,
        })
    }

    /// Asks for the product's trial for this device: a trial license bound
    /// to it (the same one again while it runs).
    fn start_trial(
        &self,
        py: Python<'_>,
        org_id: &str,
        product: &str,
        fingerprint: &str,
    ) -> PyResult<PyTrial> {
        let fp = self::fingerprint(fingerprint)?;
        let inner = run(py, || self.inner.start_trial(org_id, product, &fp))?;
        Ok(PyTrial { inner })
    }

    /// Takes a seat of the license for this device.
    fn activate(&self, py: Python<'_>, license_key: &str, fingerprint: &str) -> PyResult<PySeat> {
        let fp = self::fingerprint(fingerprint)?;
        let inner = run(py, || self.inner.activate(license_key, &fp))?;
        Ok(PySeat { inner })
    }

    /// Renews the seat's lease; `seat` then holds the new one.
    fn check_in(
        &self,
        py: Python<'_>,
        license_key: &str,
        fingerprint: &str,
        mut seat: PyRefMut<'_, PySeat>,
    ) -> PyResult<()> {
        let fp = self::fingerprint(fingerprint)?;
        let seat = &mut seat.inner;
        run(py, || self.inner.check_in(license_key, &fp, seat))
    }

    /// Frees the seat for another device.
    fn release(
        &self,
        py: Python<'_>,
        license_key: &str,
        mut seat: PyRefMut<'_, PySeat>,
    ) -> PyResult<()> {
        let seat = &mut seat.inner;
        run(py, || self.inner.release(license_key, seat))
    }

    fn __repr__(&self) -> String {
        format!("SeatClient({:?})", self.base_url)
    }
}

/// This device's seat (sdk-rust's `seats::Seat`): its id, its current
/// lease, and the installation's private key.
#[pyclass(name = "Seat", module = "keyseal._keyseal")]
pub struct PySeat {
    inner: seats::Seat,
}

#[pymethods]
impl PySeat {
    /// The seat's id: 32 hex digits.
    #[getter]
    fn seat_id(&self) -> String {
        self.inner.seat_id().to_string()
    }

    /// The current lease (`kslease1.`).
    #[getter]
    fn lease(&self) -> &str {
        self.inner.lease()
    }

    /// When to check in (UTC).
    #[getter]
    fn renew_at<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(time::datetime(py, self.inner.renew_at())?.into_any())
    }

    /// When the lease ends (UTC).
    #[getter]
    fn expires_at<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(time::datetime(py, self.inner.expires_at())?.into_any())
    }

    /// The seat as text to save (`ksseat1.`); it holds a secret.
    fn to_text<'py>(&self, py: Python<'py>) -> Bound<'py, PyString> {
        PyString::new(py, &self.inner.to_text())
    }

    /// A seat saved with `to_text`.
    #[staticmethod]
    fn from_text(py: Python<'_>, text: &str) -> PyResult<Self> {
        seats::Seat::from_text(text)
            .map(|inner| PySeat { inner })
            .map_err(|e| errors::seat_err(py, &e, None))
    }

    fn __repr__(&self) -> String {
        format!("Seat(seat_id={:?})", self.inner.seat_id().to_string())
    }
}

/// A trial license for this device, as the service minted it (sdk-rust's
/// `seats::Trial`).
#[pyclass(name = "Trial", module = "keyseal._keyseal", frozen)]
pub struct PyTrial {
    inner: seats::Trial,
}

#[pymethods]
impl PyTrial {
    /// The trial license's key (`ks1.`).
    #[getter]
    fn license_key(&self) -> &str {
        &self.inner.license_key
    }

    /// Its id: 32 hex digits.
    #[getter]
    fn license_id(&self) -> &str {
        &self.inner.license_id
    }

    /// Its plan.
    #[getter]
    fn plan(&self) -> &str {
        &self.inner.plan
    }

    /// Its entitlements, as `License.entitlements` gives them.
    #[getter]
    fn entitlements<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyFrozenSet>> {
        PyFrozenSet::new(py, &self.inner.entitlements)
    }

    /// When the trial started (UTC).
    #[getter]
    fn started_at<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(time::datetime(py, self.inner.started_at)?.into_any())
    }

    /// When it ends (UTC).
    #[getter]
    fn expires_at<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(time::datetime(py, self.inner.expires_at)?.into_any())
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<PyTrial>()
            .is_ok_and(|o| o.get().inner == self.inner)
    }

    /// Without the key (the app's to keep, not to log): the trial's id,
    /// plan and end.
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let ends = time::datetime(py, self.inner.expires_at)?.call_method0("isoformat")?;
        Ok(format!(
            "Trial(license_id={:?}, plan={:?}, expires_at={:?})",
            self.inner.license_id,
            self.inner.plan,
            ends.extract::<String>()?
        ))
    }
}

/// An air-gapped activation (sdk-rust's `seats::OfflineRequest`).
#[pyclass(name = "OfflineRequest", module = "keyseal._keyseal", frozen)]
pub struct PyOfflineRequest {
    inner: seats::OfflineRequest,
}

#[pymethods]
impl PyOfflineRequest {
    #[new]
    fn new(py: Python<'_>, license_key: &str, fingerprint: &str) -> PyResult<Self> {
        let fp = self::fingerprint(fingerprint)?;
        seats::OfflineRequest::new(license_key, &fp)
            .map(|inner| PyOfflineRequest { inner })
            .map_err(|e| errors::seat_err(py, &e, None))
    }

    /// The request code (`KSREQ1.`).
    #[getter]
    fn code(&self) -> &str {
        self.inner.code()
    }

    /// Installs the vendor's response code: the seat. The request stays
    /// usable, so a typo can be corrected and installed again.
    fn install(&self, py: Python<'_>, response_code: &str) -> PyResult<PySeat> {
        // sdk-rust's `install` consumes the request (and drops it on a
        // typo); install a copy, made through its saved text.
        seats::OfflineRequest::from_text(&self.inner.to_text())
            .and_then(|copy| copy.install(response_code))
            .map(|inner| PySeat { inner })
            .map_err(|e| errors::seat_err(py, &e, None))
    }

    /// The pending request as text to save (`ksseatreq1.`); it holds a secret.
    fn to_text<'py>(&self, py: Python<'py>) -> Bound<'py, PyString> {
        PyString::new(py, &self.inner.to_text())
    }

    /// A pending request saved with `to_text`.
    #[staticmethod]
    fn from_text(py: Python<'_>, text: &str) -> PyResult<Self> {
        seats::OfflineRequest::from_text(text)
            .map(|inner| PyOfflineRequest { inner })
            .map_err(|e| errors::seat_err(py, &e, None))
    }

    fn __repr__(&self) -> String {
        format!("OfflineRequest(code={:?})", self.inner.code())
    }
}
