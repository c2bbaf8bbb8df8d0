//! Minting: `SigningKey` (keyseal-core's, loaded from a seed, made fresh,
//! or opened from a sealed key file with keyseal-keyfile, the issuer's own
//! key-file code) and `issue` (keyseal-core's `license::issue`).

use std::path::{Path, PathBuf};

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};
use zeroize::Zeroizing;

use keyseal_core::claims::{Entitlements, Extensions};
use keyseal_core::key::SEED_LEN;
use keyseal_core::{Claims, DeviceRule, Fingerprint, LicenseId, VersionCap, license};
use keyseal_keyfile::{KeyFile, Passphrase};

use crate::errors;
use crate::time;

/// An Ed25519 signing key. Its secret never leaves as plain bytes.
#[pyclass(name = "SigningKey", module = "keyseal._keyseal", frozen)]
pub struct PySigningKey {
    inner: keyseal_core::SigningKey,
}

fn random_bytes<const N: usize>() -> PyResult<Zeroizing<[u8; N]>> {
    let mut b = Zeroizing::new([0u8; N]);
    getrandom::fill(b.as_mut()).map_err(|e| {
        pyo3::exceptions::PyOSError::new_err(format!("the OS random generator failed: {e}"))
    })?;
    Ok(b)
}

fn open_key_file(
    path: &Path,
    pass: &Passphrase,
) -> Result<keyseal_core::SigningKey, keyseal_keyfile::Error> {
    KeyFile::read(path)?.open(pass, path)
}

#[pymethods]
impl PySigningKey {
    /// The key of a 32-byte secret seed (RFC 8032).
    #[staticmethod]
    fn from_seed(seed: &Bound<'_, PyAny>) -> PyResult<Self> {
        let bytes = seed.cast::<PyBytes>().map_err(|_| {
            PyTypeError::new_err(format!("seed must be bytes, not {}", time::type_name(seed)))
        })?;
        let seed: Zeroizing<[u8; SEED_LEN]> =
            Zeroizing::new(bytes.as_bytes().try_into().map_err(|_| {
                PyValueError::new_err(format!(
                    "seed must be {SEED_LEN} bytes, got {}",
                    bytes.as_bytes().len()
                ))
            })?);
        let inner = keyseal_core::SigningKey::from_seed(&seed).map_err(errors::core_err)?;
        Ok(PySigningKey { inner })
    }

    /// A fresh key from the OS random generator.
    #[staticmethod]
    fn generate() -> PyResult<Self> {
        loop {
            let seed = random_bytes::<SEED_LEN>()?;
            if let Ok(inner) = keyseal_core::SigningKey::from_seed(&seed) {
                return Ok(PySigningKey { inner });
            }
        }
    }

    /// Opens a sealed key file with the passphrase: one written by
    /// `keyseal keys export-sealed --out FILE` (or `VAULT/keys/<key id>.key`
    /// of a vault from before keys moved into the ledger).
    #[staticmethod]
    fn from_key_file(py: Python<'_>, path: PathBuf, passphrase: &str) -> PyResult<Self> {
        if path.is_dir() {
            return Err(errors::vault_dir_err(&path));
        }
        let pass = Passphrase::new(Zeroizing::new(passphrase.to_owned()))
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        match py.detach(|| open_key_file(&path, &pass)) {
            Ok(inner) => Ok(PySigningKey { inner }),
            Err(e) => Err(errors::vault_err(e)),
        }
    }

    /// [`Self::from_key_file`], under its name from before keys moved into
    /// the ledger.
    #[staticmethod]
    fn from_vault(py: Python<'_>, path: PathBuf, passphrase: &str) -> PyResult<Self> {
        Self::from_key_file(py, path, passphrase)
    }

    /// The public key, as the keyring names it (`kspub1.`).
    #[getter]
    fn public_key(&self) -> String {
        self.inner.public_key().to_string()
    }

    /// The public key's 32 bytes.
    #[getter]
    fn public_key_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.public_key().to_bytes())
    }

    /// The key id (16 hex digits).
    #[getter]
    fn key_id(&self) -> String {
        self.inner.key_id().to_string()
    }

    /// A keyring line trusting this key (`key kspub1....`), for tests and
    /// single-key apps.
    fn keyring_line(&self) -> String {
        format!("key {}", self.inner.public_key())
    }

    /// A plain Ed25519 signature of `message`.
    fn sign<'py>(&self, py: Python<'py>, message: &[u8]) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.sign_raw(message))
    }

    fn __repr__(&self) -> String {
        format!(
            "SigningKey(key_id={:?}, secret redacted)",
            self.inner.key_id().to_string()
        )
    }
}

/// Text of `value`, which must be `str`.
fn text(value: &Bound<'_, PyAny>, what: &str) -> PyResult<String> {
    value
        .cast::<PyString>()
        .map_err(|_| {
            PyTypeError::new_err(format!(
                "{what} must be str, not {}",
                time::type_name(value)
            ))
        })?
        .to_cow()
        .map(std::borrow::Cow::into_owned)
}

/// Signs a license and returns its key text (`ks1.`).
#[pyfunction]
#[pyo3(signature = (
    key, *, product, customer, plan, expires = None, entitlements = None, device = None,
    device_match = None, not_before = None, grace = None, max_version = None,
    extensions = None, license_id = None, issued_at = None
))]
#[allow(clippy::too_many_arguments)]
pub fn issue(
    key: &PySigningKey,
    product: &str,
    customer: &str,
    plan: &str,
    expires: Option<Bound<'_, PyAny>>,
    entitlements: Option<Bound<'_, PyAny>>,
    device: Option<&str>,
    device_match: Option<Bound<'_, PyAny>>,
    not_before: Option<Bound<'_, PyAny>>,
    grace: Option<Bound<'_, PyAny>>,
    max_version: Option<&str>,
    extensions: Option<Bound<'_, PyAny>>,
    license_id: Option<&str>,
    issued_at: Option<Bound<'_, PyAny>>,
) -> PyResult<String> {
    let license_id = match license_id {
        Some(s) => s.parse::<LicenseId>().map_err(errors::core_err)?,
        None => LicenseId::from_bytes(*random_bytes::<16>()?),
    };
    let issued_at = match issued_at {
        Some(t) => time::unix_seconds(&t, "issued_at")?,
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    };
    // Python sets and lists have no canonical order: keyseal-core's
    // `sorted_from` puts them in the order the format requires.
    let mut ents: Vec<String> = Vec::new();
    if let Some(e) = entitlements {
        if e.is_instance_of::<PyString>() {
            return Err(PyTypeError::new_err(
                "entitlements must be an iterable of str (a list or set), not a single str",
            ));
        }
        for item in e.try_iter()? {
            ents.push(text(&item?, "each entitlement")?);
        }
    }
    let mut exts: Vec<(String, String)> = Vec::new();
    if let Some(x) = extensions {
        let d = x.cast::<PyDict>().map_err(|_| {
            PyTypeError::new_err(format!(
                "extensions must be a dict of str to str, not {}",
                time::type_name(&x)
            ))
        })?;
        for (k, v) in d.iter() {
            exts.push((
                text(&k, "each extension key")?,
                text(&v, "each extension value")?,
            ));
        }
    }

    let mut claims = Claims::new(license_id, product, customer, plan, issued_at);
    claims.expires_at = expires
        .map(|t| time::unix_seconds(&t, "expires"))
        .transpose()?;
    claims.not_before = not_before
        .map(|t| time::unix_seconds(&t, "not_before"))
        .transpose()?;
    claims.grace_secs = grace
        .map(|g| time::duration_secs(&g, "grace"))
        .transpose()?
        .unwrap_or(0);
    claims.max_version = max_version
        .map(|v| v.parse::<VersionCap>().map_err(errors::core_err))
        .transpose()?;
    claims.entitlements =
        Entitlements::sorted_from(ents.iter().map(String::as_str)).map_err(list_error)?;
    claims.extensions = Extensions::sorted_from(exts.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .map_err(list_error)?;

    let fp = device
        .map(|d| d.parse::<Fingerprint>().map_err(errors::core_err))
        .transpose()?;
    let rule = match (&fp, device_match) {
        (None, None) => None,
        (None, Some(_)) => {
            return Err(PyValueError::new_err(
                "device_match given without a device fingerprint",
            ));
        }
        (Some(_), None) => Some(DeviceRule::Exact),
        (Some(_), Some(m)) => Some(
            if m.is_instance_of::<PyString>() && m.extract::<String>()? == "exact" {
                DeviceRule::Exact
            } else if m.is_instance_of::<pyo3::types::PyInt>()
                && !m.is_instance_of::<pyo3::types::PyBool>()
            {
                DeviceRule::AtLeast(m.extract::<u8>().map_err(|_| {
                    PyValueError::new_err(format!(
                        "device_match must be from 1 to 8, got {}",
                        time::short_repr(&m)
                    ))
                })?)
            } else {
                return Err(PyTypeError::new_err(format!(
                    "device_match must be \"exact\" or a number of components (int), not {}",
                    time::short_repr(&m)
                )));
            },
        ),
    };
    let bound = fp.as_ref().zip(rule);
    let bytes = license::issue(&key.inner, &claims, bound).map_err(errors::core_err)?;
    Ok(license::to_text(&bytes))
}

/// Too many entitlements or extensions: the claims are malformed.
fn list_error(_: keyseal_core::ListError<'_>) -> PyErr {
    errors::core_err(keyseal_core::Error::InvalidClaims(
        keyseal_core::Malformed::List,
    ))
}
