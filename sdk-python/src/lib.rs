//! `keyseal._keyseal`: the private native module behind the `keyseal`
//! Python package. A thin adapter: names change at the boundary (unix
//! seconds become aware datetimes, problems become exceptions), the logic
//! stays in sdk-rust, keyseal-core and keyseal-keyfile. The typed facade
//! and the stubs are in `python/keyseal/`.

mod errors;
mod mint;
mod seats;
mod time;
mod validator;

use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// Strict Ed25519 verification as a `Validator` verifies: the key loaded
/// by keyseal-core's `PublicKey::from_bytes` (refusing invalid,
/// non-canonical and weak keys), then verified through its precomputed
/// tables (`PrecomputedKey`, what a validator uses for its keyring's keys),
/// or with `precompute=False` by the plain `verify_strict` (what it uses
/// otherwise); both give the same answers. The tables are built on every
/// call (about 0.7 ms), so this is for checking signatures and test
/// vectors, not a fast path. Wrong lengths are `False`, not errors.
#[pyfunction]
#[pyo3(signature = (public_key, message, signature, *, precompute = true))]
fn verify_ed25519_strict(
    py: Python<'_>,
    public_key: &Bound<'_, PyBytes>,
    message: &Bound<'_, PyBytes>,
    signature: &Bound<'_, PyBytes>,
    precompute: bool,
) -> bool {
    let (pk, msg, sig) = (
        public_key.as_bytes(),
        message.as_bytes(),
        signature.as_bytes(),
    );
    let (Ok(pk), Ok(sig)) = (<&[u8; 32]>::try_from(pk), <&[u8; 64]>::try_from(sig)) else {
        return false;
    };
    py.detach(|| {
        keyseal_core::PublicKey::from_bytes(pk).is_ok_and(|k| {
            if precompute {
                keyseal_core::PrecomputedKey::new(&k)
                    .verify_strict(msg, sig)
                    .is_ok()
            } else {
                k.verify_strict(msg, sig).is_ok()
            }
        })
    })
}

/// Checks a webhook delivery from the keyseal issuing service with the
/// organisation's public keyring (its `keyseal-signature` header; sdk-rust's
/// `keyseal::webhooks::verify`): the `webhook-id`, `webhook-timestamp` and
/// `keyseal-signature` headers as text, the raw body as bytes, at `now`
/// (unix seconds or an aware datetime; the system clock by default).
/// Returns the id of the key that signed; raises `WebhookError`, or
/// `Malformed` for a keyring that is not one.
#[pyfunction]
#[pyo3(signature = (keyring, webhook_id, timestamp, signature, body, *, now = None))]
fn verify_webhook(
    py: Python<'_>,
    keyring: &str,
    webhook_id: &str,
    timestamp: &str,
    signature: &str,
    body: &Bound<'_, PyBytes>,
    now: Option<Bound<'_, PyAny>>,
) -> PyResult<String> {
    let ring: keyseal::Keyring = keyring.parse().map_err(errors::core_err)?;
    let now = match now {
        Some(v) => time::unix_seconds(&v, "now")?,
        None => keyseal::Clock::now(&keyseal::SystemClock),
    };
    let body = body.as_bytes();
    keyseal::webhooks::verify(&ring, webhook_id, timestamp, signature, body, now)
        .map(|k| k.to_string())
        .map_err(|e| errors::webhook_err(py, &e))
}

#[pymodule(gil_used = false)]
fn _keyseal(m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(m)?;
    m.add(
        "CODES",
        pyo3::types::PyTuple::new(m.py(), errors::keyseal_codes().collect::<Vec<_>>())?,
    )?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<validator::PyValidator>()?;
    m.add_class::<validator::PyLicense>()?;
    m.add_class::<validator::PyLease>()?;
    m.add_class::<validator::PyRevocationList>()?;
    m.add_class::<validator::PyMemoryStateStore>()?;
    m.add_class::<validator::PyState>()?;
    m.add_class::<mint::PySigningKey>()?;
    m.add_class::<seats::PySeatClient>()?;
    m.add_class::<seats::PySeat>()?;
    m.add_class::<seats::PyOfflineRequest>()?;
    m.add_class::<seats::PyTrial>()?;
    m.add_function(wrap_pyfunction!(validator::this_fingerprint, m)?)?;
    m.add_function(wrap_pyfunction!(mint::issue, m)?)?;
    m.add_function(wrap_pyfunction!(verify_ed25519_strict, m)?)?;
    m.add_function(wrap_pyfunction!(verify_webhook, m)?)?;
    Ok(())
}
