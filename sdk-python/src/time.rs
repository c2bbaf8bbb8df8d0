//! Times across the boundary: unix seconds in Rust, timezone-aware
//! `datetime` (UTC) and `timedelta` in Python.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDateTime, PyDelta, PyFloat, PyInt, PyTzInfo};

/// The last whole second a `datetime` holds: 9999-12-31T23:59:59Z.
pub const DATETIME_END: u64 = 253_402_300_799;

/// `secs` as an aware `datetime` in UTC. A time past the year 9999 (a
/// license expiring at 2^64 - 1, say), which `datetime` cannot hold, is
/// shown as its last whole second, 9999-12-31T23:59:59 UTC, as a
/// JavaScript Number shows such a time rounded:
/// the verdict was computed on the exact value (docs/FORMAT.md, "Integers
/// past 2^53"), and a valid license's fields never raise.
///
/// Made as the epoch plus a `timedelta`, exact to the second and on every
/// platform (`fromtimestamp` follows the platform's `time_t`, which on
/// Windows stops at the year 3000).
pub fn datetime(py: Python<'_>, secs: u64) -> PyResult<Bound<'_, PyDateTime>> {
    let utc = PyTzInfo::utc(py)?;
    let secs = secs.min(DATETIME_END);
    let epoch = PyDateTime::new(py, 1970, 1, 1, 0, 0, 0, 0, Some(&utc))?;
    // At most 2,932,896 days: an i32.
    let days = i32::try_from(secs / 86_400).unwrap_or(i32::MAX);
    let rest = i32::try_from(secs % 86_400).unwrap_or(0);
    let delta = PyDelta::new(py, days, rest, 0, false)?;
    Ok(epoch.add(delta)?.cast_into::<PyDateTime>()?)
}

/// [`datetime`] as `Any`; a time `datetime` cannot hold gives `None`
/// (used for error details, which must never fail to build).
pub fn datetime_or_none(py: Python<'_>, secs: u64) -> PyResult<Bound<'_, PyAny>> {
    Ok(match datetime(py, secs) {
        Ok(d) => d.into_any(),
        Err(_) => py.None().into_bound(py),
    })
}

/// `secs` as a `timedelta`.
pub fn timedelta(py: Python<'_>, secs: u32) -> PyResult<Bound<'_, PyDelta>> {
    let days = i32::try_from(secs / 86_400).unwrap_or(i32::MAX);
    let rest = i32::try_from(secs % 86_400).unwrap_or(0);
    PyDelta::new(py, days, rest, 0, true)
}

/// Unix seconds from an `int`, a `float` (rounded down) or an aware
/// `datetime`. `what` names the argument in errors.
pub fn unix_seconds(value: &Bound<'_, PyAny>, what: &str) -> PyResult<u64> {
    if value.is_instance_of::<PyBool>() {
        return Err(PyTypeError::new_err(format!(
            "{what} must be a datetime or unix seconds, not bool"
        )));
    }
    if value.is_instance_of::<PyInt>() {
        return value.extract::<u64>().map_err(|_| {
            PyValueError::new_err(format!(
                "{what} must be unix seconds from 0 to 2**64-1, got {}",
                short_repr(value)
            ))
        });
    }
    if value.is_instance_of::<PyFloat>() {
        return float_seconds(value.extract::<f64>()?, what);
    }
    if value.is_instance_of::<PyDateTime>() {
        if value.getattr("tzinfo")?.is_none() {
            return Err(PyValueError::new_err(format!(
                "{what} is a naive datetime: give it a timezone (for example datetime.timezone.utc)"
            )));
        }
        return float_seconds(value.call_method0("timestamp")?.extract::<f64>()?, what);
    }
    Err(PyTypeError::new_err(format!(
        "{what} must be a datetime or unix seconds (int or float), not {}",
        type_name(value)
    )))
}

#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn float_seconds(f: f64, what: &str) -> PyResult<u64> {
    // 2^64 as f64; anything at or above it does not fit.
    if !f.is_finite() || !(0.0..18_446_744_073_709_551_616.0).contains(&f) {
        return Err(PyValueError::new_err(format!(
            "{what} must be a time from 1970 on, got {f}"
        )));
    }
    Ok(f.floor() as u64)
}

/// Seconds of a duration: a `timedelta` or an `int` of seconds, from 0 to
/// 2**32-1.
pub fn duration_secs(value: &Bound<'_, PyAny>, what: &str) -> PyResult<u32> {
    let secs: i128 = if value.is_instance_of::<PyDelta>() {
        let f: f64 = value.call_method0("total_seconds")?.extract()?;
        if !f.is_finite() {
            return Err(PyValueError::new_err(format!("{what} is not finite")));
        }
        #[allow(clippy::cast_possible_truncation)]
        let s = f.floor() as i128;
        s
    } else if value.is_instance_of::<PyInt>() && !value.is_instance_of::<PyBool>() {
        value.extract::<i128>().map_err(|_| {
            PyValueError::new_err(format!("{what} is out of range: {}", short_repr(value)))
        })?
    } else {
        return Err(PyTypeError::new_err(format!(
            "{what} must be a timedelta or seconds (int), not {}",
            type_name(value)
        )));
    };
    u32::try_from(secs).map_err(|_| {
        PyValueError::new_err(format!(
            "{what} must be from 0 to 4294967295 seconds (about 136 years), got {secs}"
        ))
    })
}

/// The name of a value's type, for messages.
pub fn type_name(value: &Bound<'_, PyAny>) -> String {
    value
        .get_type()
        .name()
        .map_or_else(|_| "?".to_owned(), |n| n.to_string())
}

/// A repr cut to 40 characters, for messages (never a whole huge input).
pub fn short_repr(value: &Bound<'_, PyAny>) -> String {
    let r = value
        .repr()
        .map_or_else(|_| "?".to_owned(), |r| r.to_string());
    if r.chars().count() > 40 {
        format!("{}...", r.chars().take(37).collect::<String>())
    } else {
        r
    }
}
