//! Problems as Python exceptions, through one table.
//!
//! `KeysealError(Exception)` is the one base class. Each stable code (the
//! same in every keyseal SDK) has its own subclass, named in [`TABLE`]; the
//! classes are built from the table when the module loads, so a code cannot
//! be left without a class. A few also derive from `ValueError`, where the
//! Pythonic meaning is "this argument is a bad value": a malformed key,
//! keyring or fingerprint, claims that break the format's limits, a wrongly
//! configured validator.
//!
//! Seat requests (`SeatClient`, `OfflineRequest`) fail with one class of
//! their own, `SeatError(KeysealError)`, outside the table (see [`seat_err`]).

use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};

use keyseal::{CoreError, Problem};

use crate::time;

/// Which built-in exception a class derives from besides `KeysealError`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Also {
    Nothing,
    ValueError,
}

/// `(code, class name, also, docstring)` for every code: keyseal-core's
/// (`CoreError::CODES`, in order), sdk-rust's (`Problem::SDK_CODES`, in
/// order), then the two of the vault (minting only).
const TABLE: &[(&str, &str, Also, &str)] = &[
    (
        "malformed",
        "Malformed",
        Also::ValueError,
        "The input is not well-formed keyseal text or bytes (a license key, keyring, fingerprint, version or list).",
    ),
    (
        "unsupported_version",
        "UnsupportedVersion",
        Also::Nothing,
        "The key is of a format version this build does not know.",
    ),
    (
        "unknown_key",
        "UnknownKey",
        Also::Nothing,
        "The key was signed by a key id the keyring does not hold.",
    ),
    (
        "bad_signature",
        "InvalidSignature",
        Also::Nothing,
        "The signature does not verify (code ``bad_signature``).",
    ),
    (
        "key_not_valid",
        "KeyNotValid",
        Also::Nothing,
        "The signing key is known but was not allowed to sign this license (time window or product scope).",
    ),
    (
        "key_revoked",
        "KeyRevoked",
        Also::Nothing,
        "The signing key is on the revocation list.",
    ),
    (
        "not_yet_valid",
        "NotYetValid",
        Also::Nothing,
        "The license is not valid yet.",
    ),
    (
        "expired",
        "Expired",
        Also::Nothing,
        "The license expired, grace period included.",
    ),
    (
        "wrong_product",
        "WrongProduct",
        Also::Nothing,
        "The license is for another product.",
    ),
    (
        "wrong_device",
        "WrongDevice",
        Also::Nothing,
        "The license is bound to another device.",
    ),
    (
        "version_not_covered",
        "VersionNotCovered",
        Also::Nothing,
        "The license does not cover this version of the app.",
    ),
    (
        "revoked",
        "Revoked",
        Also::Nothing,
        "The license is on the revocation list.",
    ),
    (
        "stale_revocation_list",
        "StaleRevocationList",
        Also::Nothing,
        "The revocation list is past its next-update time.",
    ),
    (
        "rolled_back_revocation_list",
        "RolledBackRevocationList",
        Also::Nothing,
        "The revocation list is older than one already seen.",
    ),
    (
        "keyring_full",
        "KeyringFull",
        Also::Nothing,
        "The keyring holds as many keys or roots as it can.",
    ),
    (
        "invalid_claims",
        "InvalidClaims",
        Also::ValueError,
        "Claims given to issue() break a limit of the format.",
    ),
    (
        "lease_invalid",
        "LeaseInvalid",
        Also::Nothing,
        "The license holds, but its lease does not hold for it on this device; ``fault`` says why (another device or license, a bad signature, an untrusted key...). Activate this device again.",
    ),
    (
        "lease_expired",
        "LeaseExpired",
        Also::Nothing,
        "The license holds, but its lease ended: check in with the vendor's service, or activate again.",
    ),
    (
        "clock_suspect",
        "ClockSuspect",
        Also::Nothing,
        "The clock is behind the latest time seen by more than the tolerance.",
    ),
    (
        "revocation_list_missing",
        "RevocationListMissing",
        Also::Nothing,
        "A revocation list was seen before, and none is loaded now.",
    ),
    (
        "state_corrupt",
        "StateCorrupt",
        Also::Nothing,
        "The persisted state was edited or damaged (it is reset).",
    ),
    (
        "state_unavailable",
        "StateUnavailable",
        Also::Nothing,
        "The persisted state cannot be read or written.",
    ),
    (
        "license_not_found",
        "LicenseNotFound",
        Also::Nothing,
        "No license key in the file or environment variable named.",
    ),
    (
        "unreadable",
        "Unreadable",
        Also::Nothing,
        "A file exists but cannot be read, or is not text.",
    ),
    (
        "device_unavailable",
        "DeviceUnavailable",
        Also::Nothing,
        "The license is device-bound and this device has no id.",
    ),
    (
        "invalid_config",
        "InvalidConfig",
        Also::ValueError,
        "The validator was configured wrongly (a bug in the app, not the license).",
    ),
    (
        "vault",
        "VaultError",
        Also::Nothing,
        "A signing key could not be loaded from the vault (missing, damaged or unreadable key file).",
    ),
    (
        "wrong_passphrase",
        "WrongPassphrase",
        Also::Nothing,
        "The passphrase does not open the signing key (or its file was altered).",
    ),
];

/// Codes only the minting side raises; not among [`keyseal_codes`].
const VAULT_CODES: usize = 2;

// A code added to keyseal-core or sdk-rust without its row here (or a row
// out of order) fails the build rather than raising the base class.
const _: () = assert!(
    table_follows(CoreError::CODES, Problem::SDK_CODES),
    "errors::TABLE must list CoreError::CODES, then Problem::SDK_CODES, then the vault's codes"
);

const fn table_follows(core: &[&str], sdk: &[&str]) -> bool {
    if TABLE.len() != core.len() + sdk.len() + VAULT_CODES {
        return false;
    }
    let mut i = 0;
    while i < core.len() + sdk.len() {
        let want = if i < core.len() {
            core[i]
        } else {
            sdk[i - core.len()]
        };
        if !str_eq(TABLE[i].0, want) {
            return false;
        }
        i += 1;
    }
    true
}

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

static BASE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static CLASSES: PyOnceLock<Vec<Py<PyType>>> = PyOnceLock::new();
static SEAT_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static WEBHOOK_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// Every code the validator and the core can give, in table order.
pub fn keyseal_codes() -> impl Iterator<Item = &'static str> {
    TABLE[..TABLE.len() - VAULT_CODES].iter().map(|row| row.0)
}

fn new_class<'py>(
    py: Python<'py>,
    name: &str,
    bases: Bound<'py, PyTuple>,
    attrs: &[(&str, Bound<'py, PyAny>)],
) -> PyResult<Bound<'py, PyType>> {
    let dict = PyDict::new(py);
    dict.set_item("__module__", "keyseal")?;
    for (k, v) in attrs {
        dict.set_item(*k, v)?;
    }
    let class = py
        .get_type::<PyType>()
        .call1((name, bases, dict))?
        .cast_into::<PyType>()?;
    Ok(class)
}

/// Builds the classes and adds them to `module`.
pub fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = module.py();
    let empty = pyo3::types::PyString::new(py, "").into_any();
    let base = new_class(
        py,
        "KeysealError",
        PyTuple::new(py, [py.get_type::<PyException>()])?,
        &[
            ("__doc__", pyo3::types::PyString::new(py, "The base class of every keyseal error. ``code`` is the stable code shared by every keyseal SDK, ``customer_message`` plain English for the customer, ``warnings`` the other problems found on the way; ``str(error)`` is for developers.").into_any()),
            ("code", empty.clone()),
            ("customer_message", empty),
            ("warnings", PyTuple::empty(py).into_any()),
        ],
    )?;
    module.add("KeysealError", &base)?;
    let seat_error = new_class(
        py,
        "SeatError",
        PyTuple::new(py, [base.clone()])?,
        &[
            (
                "__doc__",
                pyo3::types::PyString::new(py, SEAT_ERROR_DOC).into_any(),
            ),
            (
                "transient",
                pyo3::types::PyBool::new(py, false).to_owned().into_any(),
            ),
            ("status", py.None().into_bound(py)),
        ],
    )?;
    module.add("SeatError", &seat_error)?;
    let _ = SEAT_ERROR.set(py, seat_error.unbind());
    let webhook_error = new_class(
        py,
        "WebhookError",
        PyTuple::new(py, [base.clone()])?,
        &[
            (
                "__doc__",
                pyo3::types::PyString::new(py, WEBHOOK_ERROR_DOC).into_any(),
            ),
            ("key_id", py.None().into_bound(py)),
        ],
    )?;
    module.add("WebhookError", &webhook_error)?;
    let _ = WEBHOOK_ERROR.set(py, webhook_error.unbind());
    let value_error = py.get_type::<pyo3::exceptions::PyValueError>();
    let mut classes = Vec::with_capacity(TABLE.len());
    let mut vault_base: Option<Bound<'_, PyType>> = None;
    for (code, name, also, doc) in TABLE {
        let parent = match (*code, &vault_base) {
            ("wrong_passphrase", Some(v)) => v.clone(),
            _ => base.clone(),
        };
        let bases = match also {
            Also::Nothing => PyTuple::new(py, [parent])?,
            Also::ValueError => PyTuple::new(py, [parent, value_error.clone()])?,
        };
        let class = new_class(
            py,
            name,
            bases,
            &[
                ("__doc__", pyo3::types::PyString::new(py, doc).into_any()),
                ("code", pyo3::types::PyString::new(py, code).into_any()),
            ],
        )?;
        module.add(*name, &class)?;
        if *code == "vault" {
            vault_base = Some(class.clone());
        }
        classes.push(class.unbind());
    }
    let _ = BASE.set(py, base.unbind());
    let _ = CLASSES.set(py, classes);
    let codes: Vec<&str> = TABLE.iter().map(|r| r.0).collect();
    let names: Vec<&str> = TABLE.iter().map(|r| r.1).collect();
    let table = PyDict::new(py);
    for (c, n) in codes.iter().zip(&names) {
        table.set_item(*c, module.getattr(*n)?)?;
    }
    module.add("ERRORS", table)?;
    Ok(())
}

fn class_for<'py>(py: Python<'py>, code: &str) -> PyResult<Bound<'py, PyType>> {
    let classes = CLASSES
        .get(py)
        .ok_or_else(|| PyException::new_err("keyseal: error classes are not initialised"))?;
    let i = TABLE.iter().position(|r| r.0 == code);
    match i.and_then(|i| classes.get(i)) {
        Some(c) => Ok(c.bind(py).clone()),
        // A code added in Rust but not yet in the table: the base class.
        None => BASE
            .get(py)
            .map(|b| b.bind(py).clone())
            .ok_or_else(|| PyException::new_err("keyseal: error classes are not initialised")),
    }
}

/// An exception instance (raised or not) with its attributes set.
pub fn instance<'py>(
    py: Python<'py>,
    code: &str,
    message: String,
    customer_message: String,
    warnings: &[Problem],
    details: Vec<(&'static str, Bound<'py, PyAny>)>,
) -> PyResult<Bound<'py, PyAny>> {
    let exc = class_for(py, code)?.call1((message,))?;
    exc.setattr("code", code)?;
    exc.setattr("customer_message", customer_message)?;
    let w = warnings
        .iter()
        .map(|p| problem_instance(py, p, &[]))
        .collect::<PyResult<Vec<_>>>()?;
    exc.setattr("warnings", PyTuple::new(py, w)?)?;
    for (k, v) in details {
        exc.setattr(k, v)?;
    }
    Ok(exc)
}

/// The exception for a problem, as a value (warnings are these, unraised).
pub fn problem_instance<'py>(
    py: Python<'py>,
    problem: &Problem,
    warnings: &[Problem],
) -> PyResult<Bound<'py, PyAny>> {
    instance(
        py,
        problem.code(),
        problem.to_string(),
        problem.customer_message(),
        warnings,
        details(py, problem)?,
    )
}

/// Typed attributes of some problems: the times and numbers their messages
/// mention, so apps need not parse text.
fn details<'py>(
    py: Python<'py>,
    problem: &Problem,
) -> PyResult<Vec<(&'static str, Bound<'py, PyAny>)>> {
    let int = |v: u64| -> PyResult<Bound<'py, PyAny>> { Ok(v.into_pyobject(py)?.into_any()) };
    let text = |v: String| -> Bound<'py, PyAny> { pyo3::types::PyString::new(py, &v).into_any() };
    Ok(match problem {
        Problem::Core(CoreError::NotYetValid { not_before }) => {
            vec![("not_before", time::datetime_or_none(py, *not_before)?)]
        }
        Problem::Core(CoreError::Expired { expired_at }) => {
            vec![("expired_at", time::datetime_or_none(py, *expired_at)?)]
        }
        Problem::Core(
            CoreError::UnknownKey(id) | CoreError::KeyNotValid(id) | CoreError::KeyRevoked(id),
        ) => vec![("key_id", text(id.to_string()))],
        Problem::Core(CoreError::LeaseInvalid(fault)) => vec![("fault", text(fault.code().into()))],
        Problem::Core(CoreError::LeaseExpired { expired_at }) => {
            vec![("expired_at", time::datetime_or_none(py, *expired_at)?)]
        }
        Problem::Core(CoreError::StaleRevocationList { next_update }) => {
            vec![("next_update", time::datetime_or_none(py, *next_update)?)]
        }
        Problem::Core(CoreError::RolledBackRevocationList { sequence, seen }) => {
            vec![("sequence", int(*sequence)?), ("seen", int(*seen)?)]
        }
        Problem::ClockSuspect { behind_by } => vec![("behind_by", int(*behind_by)?)],
        Problem::RevocationListMissing {
            sequence,
            next_update,
        } => vec![
            ("sequence", int(*sequence)?),
            ("next_update", time::datetime_or_none(py, *next_update)?),
        ],
        _ => Vec::new(),
    })
}

/// A problem, raised.
pub fn problem_err(problem: &Problem) -> PyErr {
    Python::attach(|py| match problem_instance(py, problem, &[]) {
        Ok(exc) => PyErr::from_value(exc),
        Err(e) => e,
    })
}

/// A refusal, raised: its problem, with the warnings found on the way.
pub fn rejection_err(py: Python<'_>, rejection: &keyseal::Rejection) -> PyErr {
    match problem_instance(py, rejection.problem(), rejection.warnings()) {
        Ok(exc) => PyErr::from_value(exc),
        Err(e) => e,
    }
}

/// A keyseal-core error, raised.
pub fn core_err(e: CoreError) -> PyErr {
    problem_err(&Problem::Core(e))
}

/// A `VaultError` for a vault directory given where a key file belongs:
/// the wheel reads no ledger, so the key must be exported first.
pub fn vault_dir_err(path: &std::path::Path) -> PyErr {
    Python::attach(|py| {
        match instance(
            py,
            "vault",
            format!(
                "{} is a directory: the wheel opens sealed key files, not a vault's ledger; \
                 export the key first (`keyseal --vault DIR keys export-sealed --out FILE`), \
                 then SigningKey.from_key_file(FILE, passphrase)",
                path.display()
            ),
            "The signing key could not be loaded from the vault.".into(),
            &[],
            Vec::new(),
        ) {
            Ok(exc) => PyErr::from_value(exc),
            Err(err) => err,
        }
    })
}

/// An error of a sealed key file, raised: `WrongPassphrase`, an `OSError`
/// for a file that cannot be read, else `VaultError`.
pub fn vault_err(e: keyseal_keyfile::Error) -> PyErr {
    use keyseal_keyfile::Error as E;
    match e {
        E::Io {
            doing,
            path,
            source,
        } if source.kind() != std::io::ErrorKind::Other => {
            // Keep the OS error's class (FileNotFoundError, PermissionError)
            // and errno; the message says what was being done to which file.
            let message = format!("cannot {doing} {}: {source}", path.display());
            let os = PyErr::from(source);
            Python::attach(|py| {
                let _ = os.value(py).setattr("strerror", message);
            });
            os
        }
        E::WrongPassphrase { .. } => Python::attach(|py| {
            match instance(
                py,
                "wrong_passphrase",
                e.to_string(),
                "The passphrase does not open the signing key.".into(),
                &[],
                Vec::new(),
            ) {
                Ok(exc) => PyErr::from_value(exc),
                Err(err) => err,
            }
        }),
        other => Python::attach(|py| {
            match instance(
                py,
                "vault",
                other.to_string(),
                "The signing key could not be loaded from the vault.".into(),
                &[],
                Vec::new(),
            ) {
                Ok(exc) => PyErr::from_value(exc),
                Err(err) => err,
            }
        }),
    }
}

// Seats: a family of its own. Their codes (sdk-rust's `seats::SeatError`)
// are the licensing service's answers, not verdicts on a key: some share a
// name with a validation code (`expired`, `revoked`, `wrong_device`) and
// mean something else, so they are not rows of `TABLE` nor in `ERRORS`.
// One class, `SeatError(KeysealError)`, carries the code.

const SEAT_ERROR_DOC: &str = "A seat or trial request failed (``SeatClient``, ``OfflineRequest``, ``Seat.from_text``). \
``code`` is the stable code (``seat_limit``, ``revoked``, ``expired``, ``not_yet_valid``, ``suspended``, \
``invalid_license_key``, ``wrong_device``, ``seat_lapsed``, ``seat_released``, ``unknown_seat``, ``bad_proof``, \
``rate_limited``, ``allotment_ended``, ``trial_used``, ``trials_disabled``, ``unknown_product``, ``service_error``, \
``unreachable`` or ``bad_answer``), ``transient`` whether trying again later \
may succeed, ``status`` the HTTP status of a refusal (else ``None``). Not one of ``ERRORS``: these are the \
licensing service's answers, not verdicts on a key.";

/// A seat error, raised; `cause` (the transport's exception) becomes its
/// `__cause__`.
pub fn seat_err(py: Python<'_>, e: &keyseal::seats::SeatError, cause: Option<PyErr>) -> PyErr {
    let build = || -> PyResult<Bound<'_, PyAny>> {
        let class = SEAT_ERROR
            .get(py)
            .ok_or_else(|| PyException::new_err("keyseal: error classes are not initialised"))?;
        let exc = class.bind(py).call1((e.to_string(),))?;
        let status = match e {
            keyseal::seats::SeatError::Refused { status, .. } => Some(*status),
            _ => None,
        };
        exc.setattr("code", e.code())?;
        exc.setattr("transient", e.is_transient())?;
        exc.setattr("status", status)?;
        exc.setattr("customer_message", e.customer_message())?;
        exc.setattr("warnings", PyTuple::empty(py))?;
        Ok(exc)
    };
    match build() {
        Ok(exc) => {
            let err = PyErr::from_value(exc);
            if cause.is_some() {
                err.set_cause(py, cause);
            }
            err
        }
        Err(err) => err,
    }
}

// Webhooks: a family of its own too. Their codes (sdk-rust's
// `webhooks::WebhookError::code`) are verdicts on a delivery from the
// issuing service, not on a license key, so they are not rows of `TABLE`.

const WEBHOOK_ERROR_DOC: &str = "A webhook delivery was refused (``verify_webhook``). \
``code`` is the stable code, the same in every keyseal SDK: ``malformed`` (a header missing or not as the format says), \
``unknown_key`` (signed by a key the keyring does not hold), ``key_not_valid`` (the key's window does not cover the \
delivery's time), ``bad_signature`` (it does not match the id, timestamp and body) or ``stale`` (the timestamp is more \
than 5 minutes from now). ``key_id`` is the signing key's id for ``unknown_key`` and ``key_not_valid`` (else ``None``). \
Not one of ``ERRORS``: these are verdicts on a delivery, not on a key.";

/// A refused webhook delivery, raised.
pub fn webhook_err(py: Python<'_>, e: &keyseal::webhooks::WebhookError) -> PyErr {
    let build = || -> PyResult<Bound<'_, PyAny>> {
        let class = WEBHOOK_ERROR
            .get(py)
            .ok_or_else(|| PyException::new_err("keyseal: error classes are not initialised"))?;
        let exc = class.bind(py).call1((e.to_string(),))?;
        exc.setattr("code", e.code())?;
        exc.setattr("key_id", e.key_id().map(|k| k.to_string()))?;
        exc.setattr("customer_message", "")?;
        exc.setattr("warnings", PyTuple::empty(py))?;
        Ok(exc)
    };
    match build() {
        Ok(exc) => PyErr::from_value(exc),
        Err(err) => err,
    }
}
