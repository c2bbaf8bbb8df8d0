//! `Validator`, `License` and `RevocationList`: newtypes over sdk-rust, and
//! sdk-rust's environment traits (clock, state store, fingerprint source)
//! implemented over Python objects.
//!
//! GIL: every call into the Rust validator runs detached from the
//! interpreter (`Python::detach`), so other Python threads run while a key
//! is verified, and a Python clock or state store called back from inside
//! (which attaches again) cannot deadlock against the validator's own locks.

use std::cell::RefCell;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyFrozenSet, PyString, PyTuple};

use keyseal::fingerprint::{self, Fingerprinter};
use keyseal::state::{ListMark, State};
use keyseal::{
    BindingKind, Clock, Fingerprint, Keyring, MemoryStateStore, Mode, Policy, Staleness,
    StateStore, Status, Version,
};

use crate::errors;
use crate::time;

thread_local! {
    /// The first exception a Python callback (clock, device source) raised
    /// during the current call into Rust on this thread. The Rust traits
    /// have no error channel for them, so the call's result is dropped and
    /// this is raised instead.
    static CALLBACK_ERROR: RefCell<Option<PyErr>> = const { RefCell::new(None) };
}

fn stash(e: PyErr) {
    CALLBACK_ERROR.with(|c| {
        let mut c = c.borrow_mut();
        if c.is_none() {
            *c = Some(e);
        }
    });
}

fn take_stashed() -> Option<PyErr> {
    CALLBACK_ERROR.with(|c| c.borrow_mut().take())
}

/// Runs `f` detached from the interpreter; a callback's exception wins
/// over `f`'s result.
fn run<T: Send, F: FnOnce() -> T + Send>(py: Python<'_>, f: F) -> PyResult<T> {
    drop(take_stashed());
    let out = py.detach(f);
    match take_stashed() {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// A clock over a Python callable returning unix seconds (`int` or
/// `float`) or an aware `datetime`.
struct PyClock(Py<PyAny>);

impl Clock for PyClock {
    fn now(&self) -> u64 {
        Python::attach(|py| {
            self.0
                .bind(py)
                .call0()
                .and_then(|v| time::unix_seconds(&v, "the clock's reading"))
                .unwrap_or_else(|e| {
                    stash(e);
                    0
                })
        })
    }
}

/// A state store over a Python object with `load() -> bytes | None` and
/// `save(data: bytes)`. Its exceptions become I/O errors, which the
/// validator reports as `state_unavailable` warnings, as for a file.
struct PyStore(Py<PyAny>);

fn io_error(py: Python<'_>, method: &str, e: &PyErr) -> io::Error {
    io::Error::other(format!(
        "state.{method}() raised {}",
        e.value(py)
            .repr()
            .map_or_else(|_| "an exception".to_owned(), |r| r.to_string())
    ))
}

impl StateStore for PyStore {
    fn load(&self) -> io::Result<Option<Vec<u8>>> {
        Python::attach(|py| {
            let v = self
                .0
                .bind(py)
                .call_method0("load")
                .map_err(|e| io_error(py, "load", &e))?;
            if v.is_none() {
                return Ok(None);
            }
            match v.cast::<PyBytes>() {
                Ok(b) => Ok(Some(b.as_bytes().to_vec())),
                Err(_) => Err(io::Error::other(format!(
                    "state.load() returned {}, expected bytes or None",
                    time::type_name(&v)
                ))),
            }
        })
    }

    fn save(&self, bytes: &[u8]) -> io::Result<()> {
        Python::attach(|py| {
            self.0
                .bind(py)
                .call_method1("save", (PyBytes::new(py, bytes),))
                .map(drop)
                .map_err(|e| io_error(py, "save", &e))
        })
    }
}

/// A raw device id from a Python callable (`bytes`, `str` or `None`).
fn read_source(py: Python<'_>, f: &Py<PyAny>) -> Option<Vec<u8>> {
    let v = match f.bind(py).call0() {
        Ok(v) => v,
        Err(e) => {
            stash(e);
            return None;
        }
    };
    if v.is_none() {
        None
    } else if let Ok(b) = v.cast::<PyBytes>() {
        Some(b.as_bytes().to_vec())
    } else if let Ok(s) = v.cast::<PyString>() {
        match s.to_cow() {
            Ok(s) => Some(s.as_bytes().to_vec()),
            Err(e) => {
                stash(e);
                None
            }
        }
    } else {
        stash(PyTypeError::new_err(format!(
            "the device source returned {}, expected bytes, str or None",
            time::type_name(&v)
        )));
        None
    }
}

/// A fingerprinter reading the app's own id from `f` (kind `app`).
fn callable_fingerprinter(product: &str, f: Py<PyAny>) -> Fingerprinter {
    Fingerprinter::new(product).source(fingerprint::from_fn(fingerprint::APP_KIND, move || {
        Python::attach(|py| read_source(py, &f))
    }))
}

/// `device=`: `"os"`, a `ksfp1.` fingerprint, or a callable.
pub enum DeviceArg {
    Text(String),
    Callable(Py<PyAny>),
}

impl<'a, 'py> FromPyObject<'a, 'py> for DeviceArg {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        if let Ok(s) = obj.cast::<PyString>() {
            return Ok(DeviceArg::Text(s.to_cow()?.into_owned()));
        }
        if obj.is_callable() {
            return Ok(DeviceArg::Callable(obj.to_owned().unbind()));
        }
        Err(PyTypeError::new_err(format!(
            "device must be \"os\", a ksfp1. fingerprint string, a callable or None, not {}",
            time::type_name(&obj.to_owned())
        )))
    }
}

/// `staleness=`: `"ignore"`, `"warn"`, or days (refuse after).
pub enum StalenessArg {
    Name(String),
    Days(u32),
}

impl<'a, 'py> FromPyObject<'a, 'py> for StalenessArg {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        if let Ok(s) = obj.cast::<PyString>() {
            return Ok(StalenessArg::Name(s.to_cow()?.into_owned()));
        }
        if obj.is_instance_of::<pyo3::types::PyInt>()
            && !obj.is_instance_of::<pyo3::types::PyBool>()
        {
            return obj
                .extract::<u32>()
                .map(StalenessArg::Days)
                .map_err(|_| PyValueError::new_err("staleness days must be from 0 to 4294967295"));
        }
        Err(PyTypeError::new_err(format!(
            "staleness must be \"ignore\", \"warn\" or a number of days (int), not {}",
            time::type_name(&obj.to_owned())
        )))
    }
}

fn policy(name: &str, what: &str) -> PyResult<Policy> {
    match name {
        "warn" => Ok(Policy::Warn),
        "refuse" => Ok(Policy::Refuse),
        other => Err(PyValueError::new_err(format!(
            "{what} must be \"warn\" or \"refuse\", not {other:?}"
        ))),
    }
}

/// Validates keyseal license keys offline (sdk-rust's `Validator`).
#[pyclass(name = "Validator", module = "keyseal._keyseal", frozen)]
pub struct PyValidator {
    inner: keyseal::Validator,
}

#[pymethods]
impl PyValidator {
    #[new]
    #[pyo3(signature = (
        keyring, product, *, app_version = None, device = Some(DeviceArg::Text("os".to_owned())),
        clock = None, state = None, revocation_lists = Vec::new(),
        staleness = StalenessArg::Name("warn".to_owned()), mode = "enforce", clock_tolerance = 3600,
        on_clock_suspect = "warn", on_corrupt_state = "warn", leeway = 0, precompute = true
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        keyring: &str,
        product: &str,
        app_version: Option<&str>,
        device: Option<DeviceArg>,
        clock: Option<Bound<'_, PyAny>>,
        state: Option<Bound<'_, PyAny>>,
        revocation_lists: Vec<Vec<u8>>,
        staleness: StalenessArg,
        mode: &str,
        clock_tolerance: u64,
        on_clock_suspect: &str,
        on_corrupt_state: &str,
        leeway: u64,
        precompute: bool,
    ) -> PyResult<Self> {
        let keyring: Keyring = keyring.parse().map_err(errors::core_err)?;
        let mut b = keyseal::Validator::builder(keyring, product);
        if let Some(v) = app_version {
            b = b.app_version(v.parse::<Version>().map_err(errors::core_err)?);
        }
        b = match device {
            None => b.no_device(),
            Some(DeviceArg::Text(t)) if t == "os" => b,
            Some(DeviceArg::Text(t)) => {
                b.device(t.parse::<Fingerprint>().map_err(errors::core_err)?)
            }
            Some(DeviceArg::Callable(f)) => b.fingerprinter(callable_fingerprinter(product, f)),
        };
        if let Some(c) = clock {
            if !c.is_callable() {
                return Err(PyTypeError::new_err(format!(
                    "clock must be a callable returning unix seconds or a datetime, not {}",
                    time::type_name(&c)
                )));
            }
            b = b.clock(PyClock(c.unbind()));
        }
        if let Some(s) = state {
            b = match state_store(&s)? {
                Store::Memory(m) => b.state(m),
                Store::File(p) => b.state(keyseal::FileStateStore::new(p)),
                Store::Object(o) => b.state(o),
            };
        }
        for list in revocation_lists {
            b = b.revocation_list(list);
        }
        b = b.staleness(match staleness {
            StalenessArg::Name(n) if n == "ignore" => Staleness::Ignore,
            StalenessArg::Name(n) if n == "warn" => Staleness::Warn,
            StalenessArg::Name(n) => {
                return Err(PyValueError::new_err(format!(
                    "staleness must be \"ignore\", \"warn\" or a number of days, not {n:?}"
                )));
            }
            StalenessArg::Days(days) => Staleness::RefuseAfter { days },
        });
        b = b.mode(match mode {
            "enforce" => Mode::Enforce,
            "advisory" => Mode::Advisory,
            other => {
                return Err(PyValueError::new_err(format!(
                    "mode must be \"enforce\" or \"advisory\", not {other:?}"
                )));
            }
        });
        b = b
            .clock_tolerance(clock_tolerance)
            .on_clock_suspect(policy(on_clock_suspect, "on_clock_suspect")?)
            .on_corrupt_state(policy(on_corrupt_state, "on_corrupt_state")?)
            .leeway(leeway)
            .precompute(precompute);
        let inner = run(py, move || b.build())?.map_err(|p| errors::problem_err(&p))?;
        Ok(PyValidator { inner })
    }

    /// Validates a license key (text, or an armored license file's text).
    fn validate(&self, py: Python<'_>, key: &str) -> PyResult<PyLicense> {
        match run(py, || self.inner.validate(key))? {
            Ok(inner) => Ok(PyLicense { inner }),
            Err(r) => Err(errors::rejection_err(py, &r)),
        }
    }

    /// Validates a license key with its lease (`kslease1.` text) for this
    /// device: a license that fails raises its own refusal; a license that
    /// holds with a lease that does not raises `LeaseInvalid` (its `fault`
    /// says why) or `LeaseExpired`.
    fn validate_with_lease(&self, py: Python<'_>, key: &str, lease: &str) -> PyResult<PyLicense> {
        match run(py, || self.inner.validate_with_lease(key, lease))? {
            Ok(inner) => Ok(PyLicense { inner }),
            Err(r) => Err(errors::rejection_err(py, &r)),
        }
    }

    /// Validates the license key or license file at `path`.
    fn validate_file(&self, py: Python<'_>, path: PathBuf) -> PyResult<PyLicense> {
        match run(py, || self.inner.validate_file(&path))? {
            Ok(inner) => Ok(PyLicense { inner }),
            Err(r) => Err(errors::rejection_err(py, &r)),
        }
    }

    /// Validates the license key in environment variable `name`.
    fn validate_env(&self, py: Python<'_>, name: &str) -> PyResult<PyLicense> {
        match run(py, || self.inner.validate_env(name))? {
            Ok(inner) => Ok(PyLicense { inner }),
            Err(r) => Err(errors::rejection_err(py, &r)),
        }
    }

    /// Verifies a revocation list (binary or armored) and puts it in force.
    fn load_revocation_list(&self, py: Python<'_>, data: Vec<u8>) -> PyResult<PyRevocationList> {
        match run(py, || self.inner.load_revocation_list(&data))? {
            Ok(inner) => Ok(PyRevocationList { inner }),
            Err(p) => Err(errors::problem_err(&p)),
        }
    }

    /// [`load_revocation_list`] from a file.
    fn load_revocation_list_file(
        &self,
        py: Python<'_>,
        path: PathBuf,
    ) -> PyResult<PyRevocationList> {
        match run(py, || self.inner.load_revocation_list_file(&path))? {
            Ok(inner) => Ok(PyRevocationList { inner }),
            Err(p) => Err(errors::problem_err(&p)),
        }
    }

    /// This device's fingerprint as the validator uses it.
    fn fingerprint(&self, py: Python<'_>) -> PyResult<String> {
        match run(py, || self.inner.fingerprint())? {
            Ok(fp) => Ok(fp.to_string()),
            Err(p) => Err(errors::problem_err(&p)),
        }
    }

    /// Writes the state now.
    fn save_state(&self, py: Python<'_>) -> PyResult<()> {
        run(py, || self.inner.save_state())?.map_err(|p| errors::problem_err(&p))
    }

    /// Drops the clock mark to the latest vendor-signed time and saves it.
    fn reset_clock_mark(&self, py: Python<'_>) -> PyResult<()> {
        run(py, || self.inner.reset_clock_mark())?.map_err(|p| errors::problem_err(&p))
    }

    /// The product this validator expects.
    #[getter]
    fn product(&self) -> &str {
        self.inner.product()
    }

    /// `"enforce"` or `"advisory"`.
    #[getter]
    fn mode(&self) -> &'static str {
        match self.inner.mode() {
            Mode::Advisory => "advisory",
            _ => "enforce",
        }
    }

    /// The latest time the validator has seen.
    #[getter]
    fn high_water_mark<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        time::datetime_or_none(py, self.inner.high_water_mark())
    }

    /// The revocation list in force, if any.
    #[getter]
    fn revocation_list(&self) -> Option<PyRevocationList> {
        self.inner
            .revocation_list()
            .map(|inner| PyRevocationList { inner })
    }

    fn __repr__(&self) -> String {
        format!(
            "Validator(product={:?}, mode={:?})",
            self.inner.product(),
            self.mode()
        )
    }
}

enum Store {
    Memory(Arc<MemoryStateStore>),
    File(PathBuf),
    Object(PyStore),
}

fn state_store(s: &Bound<'_, PyAny>) -> PyResult<Store> {
    if let Ok(m) = s.cast::<PyMemoryStateStore>() {
        return Ok(Store::Memory(Arc::clone(&m.get().inner)));
    }
    if s.is_instance_of::<PyString>() || s.hasattr("__fspath__")? {
        return Ok(Store::File(s.extract::<PathBuf>()?));
    }
    if s.hasattr("load")? && s.hasattr("save")? {
        return Ok(Store::Object(PyStore(s.clone().unbind())));
    }
    Err(PyTypeError::new_err(format!(
        "state must be a path, a MemoryStateStore or an object with load() and save(data), not {}",
        time::type_name(s)
    )))
}

/// A verified license (sdk-rust's `License`).
#[pyclass(name = "License", module = "keyseal._keyseal", frozen)]
pub struct PyLicense {
    inner: keyseal::License,
}

#[pymethods]
impl PyLicense {
    /// The license id: 32 hex digits.
    #[getter]
    fn id(&self) -> String {
        self.inner.id().to_string()
    }

    /// The product it is for.
    #[getter]
    fn product(&self) -> &str {
        self.inner.product()
    }

    /// The vendor's opaque customer id.
    #[getter]
    fn customer(&self) -> &str {
        self.inner.customer()
    }

    /// The plan.
    #[getter]
    fn plan(&self) -> &str {
        self.inner.plan()
    }

    /// When it was issued (UTC).
    #[getter]
    fn issued_at<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(time::datetime(py, self.inner.issued_at())?.into_any())
    }

    /// Not valid before (UTC), if set.
    #[getter]
    fn not_before<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.inner
            .not_before()
            .map(|t| Ok(time::datetime(py, t)?.into_any()))
            .transpose()
    }

    /// Expiry (UTC); `None` is perpetual.
    #[getter]
    fn expires_at<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.inner
            .expires_at()
            .map(|t| Ok(time::datetime(py, t)?.into_any()))
            .transpose()
    }

    /// The grace period after expiry.
    #[getter]
    fn grace<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(time::timedelta(py, self.inner.grace_secs())?.into_any())
    }

    /// `"active"`, `"in_grace"`, or (advisory mode only) `"expired"` or `"not_yet_valid"`.
    #[getter]
    fn status(&self) -> &'static str {
        match self.inner.status() {
            Status::Active => "active",
            Status::InGrace { .. } => "in_grace",
            Status::Expired { .. } => "expired",
            Status::NotYetValid { .. } => "not_yet_valid",
            _ => "unknown",
        }
    }

    /// Whether the license is living on its grace period.
    #[getter]
    fn in_grace(&self) -> bool {
        self.inner.is_in_grace()
    }

    /// When the grace period ends (UTC), while in grace.
    #[getter]
    fn grace_ends<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        match self.inner.status() {
            Status::InGrace { grace_ends } => Ok(Some(time::datetime(py, grace_ends)?.into_any())),
            _ => Ok(None),
        }
    }

    /// The entitlements.
    #[getter]
    fn entitlements<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyFrozenSet>> {
        PyFrozenSet::new(py, self.inner.entitlements())
    }

    /// Whether the license grants entitlement `name`.
    fn has(&self, name: &str) -> bool {
        self.inner.has(name)
    }

    /// The newest app version covered (`"5.x"`, `"5.2.x"`, `"5.2.3"`), if limited.
    #[getter]
    fn max_version(&self) -> Option<String> {
        self.inner.max_version().map(|v| v.to_string())
    }

    /// The vendor extension fields (a new dict each time).
    #[getter]
    fn extensions<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (k, v) in self.inner.extensions() {
            d.set_item(k, v)?;
        }
        Ok(d)
    }

    /// The value of extension field `key`.
    fn extension(&self, key: &str) -> Option<&str> {
        self.inner.extension(key)
    }

    /// The id of the key that signed it (16 hex digits).
    #[getter]
    fn key_id(&self) -> String {
        self.inner.key_id().to_string()
    }

    /// `None`, `"exact"` or `"tolerant"`.
    #[getter]
    fn device_binding(&self) -> Option<&'static str> {
        match self.inner.binding() {
            None => None,
            Some(BindingKind::Exact) => Some("exact"),
            Some(_) => Some("tolerant"),
        }
    }

    /// For a tolerant binding, `(required, components)`: k of n.
    #[getter]
    fn device_match(&self) -> Option<(u8, u8)> {
        match self.inner.binding() {
            Some(BindingKind::Tolerant {
                required,
                components,
            }) => Some((required, components)),
            _ => None,
        }
    }

    /// Problems that did not refuse the license.
    #[getter]
    fn warnings<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let w = self
            .inner
            .warnings()
            .iter()
            .map(|p| errors::problem_instance(py, p, &[]))
            .collect::<PyResult<Vec<_>>>()?;
        PyTuple::new(py, w)
    }

    /// Whether there is nothing to warn about.
    #[getter]
    fn is_clean(&self) -> bool {
        self.inner.is_clean()
    }

    /// The lease it was validated with (`Validator.validate_with_lease`), else `None`.
    #[getter]
    fn lease(&self) -> Option<PyLease> {
        self.inner.lease().map(|inner| PyLease { inner: *inner })
    }

    fn __repr__(&self) -> String {
        format!(
            "License(id={:?}, product={:?}, customer={:?}, plan={:?}, status={:?})",
            self.inner.id().to_string(),
            self.inner.product(),
            self.inner.customer(),
            self.inner.plan(),
            self.status()
        )
    }
}

/// The lease a license was validated with (sdk-rust's `Lease`): this
/// device's hold on one seat of the license.
#[pyclass(name = "Lease", module = "keyseal._keyseal", frozen)]
pub struct PyLease {
    inner: keyseal::Lease,
}

#[pymethods]
impl PyLease {
    /// The seat this device holds: 32 hex digits.
    #[getter]
    fn seat_id(&self) -> String {
        self.inner.seat_id().to_string()
    }

    /// The id of the key that signed the lease (16 hex digits).
    #[getter]
    fn key_id(&self) -> String {
        self.inner.key_id().to_string()
    }

    /// When the service signed it (UTC).
    #[getter]
    fn issued_at<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(time::datetime(py, self.inner.issued_at())?.into_any())
    }

    /// When the app should check in (UTC).
    #[getter]
    fn renew_at<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(time::datetime(py, self.inner.renew_at())?.into_any())
    }

    /// When the lease ends (UTC).
    #[getter]
    fn expires_at<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(time::datetime(py, self.inner.expires_at())?.into_any())
    }

    /// Whether the renew time has passed: the app should check in now.
    #[getter]
    fn check_in_due(&self) -> bool {
        self.inner.check_in_due()
    }

    fn __repr__(&self) -> String {
        format!(
            "Lease(seat_id={:?}, key_id={:?}, check_in_due={})",
            self.inner.seat_id().to_string(),
            self.inner.key_id().to_string(),
            if self.inner.check_in_due() {
                "True"
            } else {
                "False"
            }
        )
    }
}

/// A verified revocation list.
#[pyclass(name = "RevocationList", module = "keyseal._keyseal", frozen)]
pub struct PyRevocationList {
    inner: Arc<keyseal::RevocationList>,
}

#[pymethods]
impl PyRevocationList {
    /// Its sequence number.
    #[getter]
    fn sequence(&self) -> u64 {
        self.inner.sequence()
    }

    /// When it was issued (UTC).
    #[getter]
    fn issued_at<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(time::datetime(py, self.inner.issued_at())?.into_any())
    }

    /// When it says it will be replaced (UTC).
    #[getter]
    fn next_update<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(time::datetime(py, self.inner.next_update())?.into_any())
    }

    /// The revoked license ids, sorted.
    #[getter]
    fn revoked_licenses<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.inner.revoked_licenses().map(|i| i.to_string()))
    }

    /// The revoked signing key ids, sorted.
    #[getter]
    fn revoked_keys<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.inner.revoked_keys().map(|i| i.to_string()))
    }

    /// The id of the key that signed it.
    #[getter]
    fn signer(&self) -> String {
        self.inner.signer().to_string()
    }

    fn __repr__(&self) -> String {
        format!(
            "RevocationList(sequence={}, revoked_licenses={}, revoked_keys={})",
            self.inner.sequence(),
            self.inner.revoked_licenses().len(),
            self.inner.revoked_keys().len()
        )
    }
}

/// sdk-rust's `MemoryStateStore`: state kept in memory.
#[pyclass(name = "MemoryStateStore", module = "keyseal._keyseal", frozen)]
pub struct PyMemoryStateStore {
    inner: Arc<MemoryStateStore>,
}

#[pymethods]
impl PyMemoryStateStore {
    #[new]
    #[pyo3(signature = (data = None))]
    fn new(data: Option<Vec<u8>>) -> Self {
        let inner = match data {
            Some(d) => MemoryStateStore::from_bytes(d),
            None => MemoryStateStore::new(),
        };
        PyMemoryStateStore {
            inner: Arc::new(inner),
        }
    }

    /// The stored bytes, or `None` before the first save.
    fn load<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.inner.contents().map(|b| PyBytes::new(py, &b))
    }

    /// Replaces the stored bytes.
    fn save(&self, data: Vec<u8>) {
        self.inner.set_contents(Some(data));
    }

    fn __repr__(&self) -> String {
        "MemoryStateStore()".to_owned()
    }
}

/// sdk-rust's `State`: what the validator persists, and its text form.
#[pyclass(name = "State", module = "keyseal._keyseal", frozen)]
pub struct PyState {
    inner: State,
}

#[pymethods]
impl PyState {
    #[new]
    #[pyo3(signature = (*, seen = 0, signed = 0, list_sequence = None, list_next_update = 0, list_rank = 0))]
    fn new(
        seen: u64,
        signed: u64,
        list_sequence: Option<u64>,
        list_next_update: u64,
        list_rank: u64,
    ) -> Self {
        PyState {
            inner: State {
                seen,
                signed,
                list: list_sequence.map(|sequence| ListMark {
                    rank: list_rank,
                    sequence,
                    next_update: list_next_update,
                }),
            },
        }
    }

    /// The text form for `product`, checksum included.
    fn encode<'py>(&self, py: Python<'py>, product: &str) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.encode(product).as_bytes())
    }

    /// Parses and checks the text form; raises `StateCorrupt`.
    #[staticmethod]
    fn decode(product: &str, data: Vec<u8>) -> PyResult<Self> {
        State::decode(product, &data)
            .map(|inner| PyState { inner })
            .map_err(|defect| errors::problem_err(&keyseal::Problem::StateCorrupt { defect }))
    }

    /// The high-water mark (unix seconds).
    #[getter]
    fn seen(&self) -> u64 {
        self.inner.seen
    }

    /// The latest vendor-signed time (unix seconds).
    #[getter]
    fn signed(&self) -> u64 {
        self.inner.signed
    }

    /// The sequence of the newest revocation list seen, if any.
    #[getter]
    fn list_sequence(&self) -> Option<u64> {
        self.inner.list.map(|l| l.sequence)
    }

    /// Its next-update time (unix seconds; 0 if none seen).
    #[getter]
    fn list_next_update(&self) -> u64 {
        self.inner.list.map_or(0, |l| l.next_update)
    }

    /// Its signer's rank, the start of the signer's window (unix seconds; 0
    /// if none seen): a list of a lower-ranked signer is refused.
    #[getter]
    fn list_rank(&self) -> u64 {
        self.inner.list.map_or(0, |l| l.rank)
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<PyState>()
            .is_ok_and(|o| o.get().inner == self.inner)
    }

    fn __repr__(&self) -> String {
        format!(
            "State(seen={}, signed={}, list_sequence={:?}, list_next_update={}, list_rank={})",
            self.seen(),
            self.signed(),
            self.list_sequence(),
            self.list_next_update(),
            self.list_rank()
        )
    }
}

/// This machine's fingerprint for `product`, or from `source` (a callable
/// returning the app's own id).
#[pyfunction(name = "fingerprint")]
#[pyo3(signature = (product, *, source = None))]
pub fn this_fingerprint(
    py: Python<'_>,
    product: &str,
    source: Option<Bound<'_, PyAny>>,
) -> PyResult<String> {
    if keyseal_core::keyring::ProductName::new(product).is_err() {
        return Err(errors::problem_err(&keyseal::Problem::InvalidConfig {
            detail: "the product id is not a valid keyseal product id",
        }));
    }
    let f = match source {
        None => Fingerprinter::new(product).os(),
        Some(s) if s.is_callable() => callable_fingerprinter(product, s.unbind()),
        Some(s) => {
            return Err(PyTypeError::new_err(format!(
                "source must be a callable returning bytes, str or None, not {}",
                time::type_name(&s)
            )));
        }
    };
    match run(py, move || f.fingerprint())? {
        Ok(fp) => Ok(fp.to_string()),
        Err(p) => Err(errors::problem_err(&p)),
    }
}
