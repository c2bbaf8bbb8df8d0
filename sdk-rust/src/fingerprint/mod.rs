//! This device's fingerprint: ids read from the operating system or given by
//! the app, each salted with the product and hashed
//! ([`Fingerprint::component`]), so neither a license nor the `ksfp1.` code
//! the customer sends the vendor carries a raw hardware id.
//!
//! A [`Fingerprinter`] reads its [`Source`]s in order and keeps up to
//! [`MAX_DEVICE_COMPONENTS`] distinct components. An exact device binding
//! needs every component to stay the same; a tolerant one (k of n) survives
//! a replaced disk or network card. See the crate docs for containers and
//! cloned virtual machines.

use std::fmt;

use keyseal_core::Fingerprint;
use keyseal_core::claims::MAX_DEVICE_COMPONENTS;
use keyseal_core::device::COMPONENT_LEN;

use crate::MaybeSendSync;
use crate::problem::Problem;

#[cfg(keyseal_os)]
mod linux;
#[cfg(any(test, target_os = "macos"))]
mod macos;
#[cfg(any(test, windows))]
mod windows;

#[cfg(keyseal_os)]
pub use linux::Linux;

/// The kind label of ids the app supplies ([`EnvVar`], [`FileSource`]).
pub const APP_KIND: &str = "app";
/// Longest raw id read from a file or variable; longer values are cut.
pub const MAX_RAW_LEN: usize = 4096;

/// One raw id as a source read it: a kind label (`machine-id`, `mac`, ...)
/// and the value. `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct RawId {
    kind: String,
    value: Vec<u8>,
}

impl RawId {
    /// A raw id of this kind.
    #[must_use]
    pub fn new(kind: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        RawId {
            kind: kind.into(),
            value: value.into(),
        }
    }

    /// Its kind label.
    #[must_use]
    pub fn kind(&self) -> &str {
        &self.kind
    }
}

impl fmt::Debug for RawId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RawId({}, {} bytes redacted)",
            self.kind,
            self.value.len()
        )
    }
}

/// Something that can name this device. Object safe, so bindings implement
/// it over a JavaScript or Python callable.
pub trait Source: MaybeSendSync {
    /// Appends the ids this source can read now; appends nothing if none is
    /// available (a missing file is not an error here).
    fn read(&self, out: &mut Vec<RawId>);
}

impl<T: Source + ?Sized> Source for Box<T> {
    fn read(&self, out: &mut Vec<RawId>) {
        (**self).read(out);
    }
}

/// Reads the value of an environment variable, kind [`APP_KIND`]: for
/// containers where the orchestrator gives each instance its own id.
#[derive(Debug, Clone)]
pub struct EnvVar {
    name: String,
}

impl EnvVar {
    /// The variable `name`.
    #[must_use]
    pub fn new(name: impl Into<String>) -> Self {
        EnvVar { name: name.into() }
    }
}

impl Source for EnvVar {
    fn read(&self, out: &mut Vec<RawId>) {
        if let Some(v) = std::env::var_os(&self.name) {
            push_trimmed(out, APP_KIND, v.as_encoded_bytes());
        }
    }
}

/// Reads a file, kind [`APP_KIND`]: for a mounted secret or a file an
/// installer wrote.
#[cfg(keyseal_os)]
#[derive(Debug, Clone)]
pub struct FileSource {
    path: std::path::PathBuf,
}

#[cfg(keyseal_os)]
impl FileSource {
    /// The file at `path`.
    #[must_use]
    pub fn new(path: impl Into<std::path::PathBuf>) -> Self {
        FileSource { path: path.into() }
    }
}

#[cfg(keyseal_os)]
impl Source for FileSource {
    fn read(&self, out: &mut Vec<RawId>) {
        if let Some(v) = read_small(&self.path) {
            push_trimmed(out, APP_KIND, &v);
        }
    }
}

/// A source over a closure returning one id, under a kind label the app picks.
pub struct FnSource<F> {
    kind: String,
    f: F,
}

/// A source that calls `f`; `None` or an empty value means "not available".
pub fn from_fn<F: Fn() -> Option<Vec<u8>> + MaybeSendSync>(
    kind: impl Into<String>,
    f: F,
) -> FnSource<F> {
    FnSource {
        kind: kind.into(),
        f,
    }
}

impl<F: Fn() -> Option<Vec<u8>> + MaybeSendSync> Source for FnSource<F> {
    fn read(&self, out: &mut Vec<RawId>) {
        if let Some(v) = (self.f)() {
            push_trimmed(out, &self.kind, &v);
        }
    }
}

impl<F> fmt::Debug for FnSource<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FnSource({})", self.kind)
    }
}

/// The operating system's ids of this machine.
///
/// - [`Os::ids`]: the machine's own ids. Linux: `/etc/machine-id` (or
///   `/var/lib/dbus/machine-id`) and the DMI product UUID
///   (`/sys/class/dmi/id/product_uuid`, usually readable by root only).
///   macOS: the IOPlatformUUID. Windows: the MachineGuid in the registry.
/// - [`Os::hardware`]: network cards' permanent addresses and fixed disks'
///   serial numbers (Linux), the hardware ports' addresses and the platform
///   serial number (macOS), the network adapters' addresses (Windows). They
///   change when hardware is replaced, so use them with a tolerant binding.
///
/// Other operating systems give no ids: supply your own source.
#[cfg(keyseal_os)]
#[derive(Debug, Clone, Copy)]
pub struct Os {
    hardware: bool,
}

#[cfg(keyseal_os)]
impl Os {
    /// The machine ids.
    #[must_use]
    pub const fn ids() -> Self {
        Os { hardware: false }
    }

    /// Network and disk ids.
    #[must_use]
    pub const fn hardware() -> Self {
        Os { hardware: true }
    }
}

#[cfg(keyseal_os)]
impl Source for Os {
    fn read(&self, out: &mut Vec<RawId>) {
        #[cfg(target_os = "linux")]
        {
            let l = if self.hardware {
                Linux::hardware()
            } else {
                Linux::ids()
            };
            l.read(out);
        }
        #[cfg(target_os = "macos")]
        macos::read(self.hardware, out);
        #[cfg(windows)]
        windows::read(self.hardware, out);
        #[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
        let _ = (self.hardware, out);
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum When {
    Always,
    IfNothingYet,
}

/// Builds this device's [`Fingerprint`] for one product from sources.
pub struct Fingerprinter {
    product: String,
    sources: Vec<(Box<dyn Source>, When)>,
}

impl fmt::Debug for Fingerprinter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fingerprinter")
            .field("product", &self.product)
            .field("sources", &self.sources.len())
            .finish()
    }
}

impl Fingerprinter {
    /// No sources yet, for `product` (the salt of every component).
    #[must_use]
    pub fn new(product: impl Into<String>) -> Self {
        Fingerprinter {
            product: product.into(),
            sources: Vec::new(),
        }
    }

    /// Reads `source` too.
    #[must_use]
    pub fn source(mut self, source: impl Source + 'static) -> Self {
        self.sources.push((Box::new(source), When::Always));
        self
    }

    /// Reads `source` only if the sources before it gave no id: for an app
    /// id that stands in where the OS has none.
    #[must_use]
    pub fn fallback(mut self, source: impl Source + 'static) -> Self {
        self.sources.push((Box::new(source), When::IfNothingYet));
        self
    }

    /// Reads the OS machine ids ([`Os::ids`]).
    #[cfg(keyseal_os)]
    #[must_use]
    pub fn os(self) -> Self {
        self.source(Os::ids())
    }

    /// Reads network and disk ids too ([`Os::hardware`]), for tolerant bindings.
    #[cfg(keyseal_os)]
    #[must_use]
    pub fn hardware(self) -> Self {
        self.source(Os::hardware())
    }

    /// The raw ids, in source order (diagnostics: look at their kinds).
    #[must_use]
    pub fn raw_ids(&self) -> Vec<RawId> {
        let mut out = Vec::new();
        for (source, when) in &self.sources {
            if *when == When::IfNothingYet && !out.is_empty() {
                continue;
            }
            source.read(&mut out);
        }
        out
    }

    /// This device's fingerprint: each raw id salted and hashed into a
    /// component, duplicates dropped, at most [`MAX_DEVICE_COMPONENTS`] in
    /// source order. [`Problem::DeviceUnavailable`] if no source gave an id.
    pub fn fingerprint(&self) -> Result<Fingerprint, Problem> {
        let mut comps: Vec<[u8; COMPONENT_LEN]> = Vec::with_capacity(MAX_DEVICE_COMPONENTS);
        for id in self.raw_ids() {
            let c = Fingerprint::component(&self.product, &id.kind, &id.value);
            if !comps.contains(&c) && comps.len() < MAX_DEVICE_COMPONENTS {
                comps.push(c);
            }
        }
        if comps.is_empty() {
            return Err(Problem::DeviceUnavailable {
                detail: format!(
                    "none of {} fingerprint sources gave an id",
                    self.sources.len()
                ),
            });
        }
        Fingerprint::from_components(&comps).map_err(Problem::Core)
    }
}

/// This machine's fingerprint for `product` from the OS machine ids, in one
/// call: `Fingerprinter::new(product).os().fingerprint()`.
#[cfg(keyseal_os)]
pub fn this_machine(product: &str) -> Result<Fingerprint, Problem> {
    Fingerprinter::new(product).os().fingerprint()
}

/// Pushes `value` trimmed of ASCII whitespace, if anything is left.
fn push_trimmed(out: &mut Vec<RawId>, kind: &str, value: &[u8]) {
    let v = value.trim_ascii();
    if !v.is_empty() {
        out.push(RawId::new(kind, &v[..v.len().min(MAX_RAW_LEN)]));
    }
}

/// At most [`MAX_RAW_LEN`] bytes of a file; `None` if it cannot be read.
#[cfg(keyseal_os)]
fn read_small(path: &std::path::Path) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut v = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(MAX_RAW_LEN as u64)
        .read_to_end(&mut v)
        .ok()?;
    Some(v)
}

/// Normalizes a UUID or serial: trimmed, lower case; `None` for values
/// firmware ships as placeholders (all zeros, all `f`, "To Be Filled By
/// O.E.M." and friends), which would make unrelated machines look alike.
#[cfg(any(keyseal_os, test))]
fn real_id(raw: &str) -> Option<String> {
    let v = raw.trim().to_ascii_lowercase();
    let hex: String = v.chars().filter(char::is_ascii_hexdigit).collect();
    let placeholder = v.is_empty()
        || (!hex.is_empty()
            && hex.len() == v.chars().filter(|c| *c != '-' && *c != ':').count()
            && (hex.bytes().all(|b| b == b'0') || hex.bytes().all(|b| b == b'f')))
        || v == "03000200-0400-0500-0006-000700080009"
        || [
            "to be filled",
            "not specified",
            "not settable",
            "not applicable",
            "default string",
            "system serial",
            "none",
            "n/a",
            "unknown",
            "0123456789",
        ]
        .iter()
        .any(|p| v.starts_with(p));
    (!placeholder).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_not_ids() {
        for p in [
            "",
            "  ",
            "00000000-0000-0000-0000-000000000000",
            "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF",
            "To Be Filled By O.E.M.",
            "Default string",
            "03000200-0400-0500-0006-000700080009",
            "00:00:00:00:00:00",
        ] {
            assert_eq!(real_id(p), None, "{p}");
        }
        assert_eq!(
            real_id(" 4C4C4544-0042-3010-8048-B4C04F4E3332\n").as_deref(),
            Some("4c4c4544-0042-3010-8048-b4c04f4e3332")
        );
        assert_eq!(
            real_id("WD-WCC4N1234567").as_deref(),
            Some("wd-wcc4n1234567")
        );
    }

    #[test]
    fn fallback_only_when_nothing_before() {
        let a = || from_fn("a", || Some(b"one".to_vec()));
        let none = || from_fn("n", || None);
        let b = || from_fn("b", || Some(b"two".to_vec()));
        let kinds = |f: &Fingerprinter| {
            f.raw_ids()
                .iter()
                .map(|r| r.kind().to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            kinds(&Fingerprinter::new("p").source(a()).fallback(b())),
            ["a"]
        );
        assert_eq!(
            kinds(&Fingerprinter::new("p").source(none()).fallback(b())),
            ["b"]
        );
        assert_eq!(
            kinds(&Fingerprinter::new("p").source(a()).source(b())),
            ["a", "b"]
        );
    }

    #[test]
    fn components_are_salted_deduplicated_and_capped() {
        let mut f = Fingerprinter::new("acme-cad");
        for i in 0..12u8 {
            f = f.source(from_fn("k", move || Some(vec![b'a' + i / 2])));
        }
        let fp = f.fingerprint().unwrap();
        assert_eq!(fp.components().len(), 6);
        assert_eq!(
            fp.components()[0],
            Fingerprint::component("acme-cad", "k", b"a")
        );
        let other = Fingerprinter::new("acme-viewer")
            .source(from_fn("k", || Some(b"a".to_vec())))
            .fingerprint()
            .unwrap();
        assert_ne!(other.components()[0], fp.components()[0]);
        let mut many = Fingerprinter::new("p");
        for i in 0..20u8 {
            many = many.source(from_fn("k", move || Some(vec![i])));
        }
        assert_eq!(
            many.fingerprint().unwrap().components().len(),
            MAX_DEVICE_COMPONENTS
        );
    }

    #[test]
    fn no_id_is_device_unavailable() {
        let e = Fingerprinter::new("p")
            .source(from_fn("k", || Some(b" \n".to_vec())))
            .fingerprint()
            .unwrap_err();
        assert_eq!(e.code(), "device_unavailable");
    }

    #[test]
    fn raw_values_are_redacted_in_debug() {
        let r = RawId::new("machine-id", "0123456789abcdef");
        assert!(!format!("{r:?}").contains("0123"));
    }

    #[test]
    fn env_var_source() {
        let mut out = Vec::new();
        EnvVar::new("KEYSEAL_FP_TEST_UNSET_VARIABLE").read(&mut out);
        assert!(out.is_empty());
        // Setting a variable needs `unsafe` in edition 2024; PATH is set
        // wherever tests run.
        if let Some(path) =
            std::env::var_os("PATH").filter(|p| !p.as_encoded_bytes().trim_ascii().is_empty())
        {
            EnvVar::new("PATH").read(&mut out);
            let v = path.as_encoded_bytes().trim_ascii();
            assert_eq!(out, [RawId::new(APP_KIND, &v[..v.len().min(MAX_RAW_LEN)])]);
        }
    }
}
