//! The keyring: which public keys an app trusts, for which issue times and products.
//!
//! Rotation: add the new key, stop issuing with the old one, and give the old
//! one an end (`until`) so licenses it signed before then stay valid. A key
//! that leaked is cut off from a point in time with [`Keyring::cut_off`] (or a
//! narrower certificate), and revoked outright through a revocation list.
//!
//! A keyring may pin offline root keys instead: each root signs small key
//! certificates for issuing keys, which travel with revocation lists or
//! license files, so a vendor can rotate issuing keys without shipping a new app.

use core::fmt;
use core::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::claims::{Bounded, MAX_NAME_LEN, check_name};
use crate::envelope;
use crate::error::{Error, Malformed};
use crate::key::{KeyId, PUBLIC_KEY_LEN, PublicKey};
use crate::text;

/// Most issuing keys one keyring holds.
pub const MAX_KEYS: usize = 16;
/// Most root keys one keyring holds.
pub const MAX_ROOTS: usize = 4;
/// Most products one key may be limited to.
pub const MAX_KEY_PRODUCTS: usize = 4;
/// Format version of key certificates.
pub const CERTIFICATE_VERSION: u8 = 1;
/// Prefix of a key certificate's text form.
pub const CERTIFICATE_PREFIX: &str = "kscert1.";
/// Largest encoded key certificate.
pub const MAX_CERTIFICATE_LEN: usize =
    envelope::OVERHEAD + 32 + 10 + 11 + 1 + MAX_KEY_PRODUCTS * (1 + MAX_NAME_LEN);
/// Domain separation of key certificate signatures.
pub(crate) const CERTIFICATE_DOMAIN: &[u8] = b"keyseal/key-certificate/v1\0";

/// A product name held inline (no allocation).
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct ProductName {
    bytes: [u8; MAX_NAME_LEN],
    len: u8,
}

impl ProductName {
    /// A product name; must follow the product id rules.
    pub fn new(name: &str) -> Result<Self, Error> {
        check_name(name, MAX_NAME_LEN)?;
        let mut bytes = [0u8; MAX_NAME_LEN];
        bytes[..name.len()].copy_from_slice(name.as_bytes());
        Ok(ProductName {
            bytes,
            len: name.len() as u8,
        })
    }

    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        // Only ASCII is ever stored (check_name), so this cannot fail.
        core::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }
}

impl fmt::Debug for ProductName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// Products a key may sign for; empty means all.
pub type ProductScope = Bounded<ProductName, MAX_KEY_PRODUCTS>;

/// A trusted issuing key and what it may sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrustedKey {
    key: PublicKey,
    valid_from: u64,
    valid_until: Option<u64>,
    products: ProductScope,
}

impl TrustedKey {
    /// Trust `key` for every issue time and product.
    #[must_use]
    pub fn new(key: PublicKey) -> Self {
        TrustedKey {
            key,
            valid_from: 0,
            valid_until: None,
            products: ProductScope::new(),
        }
    }

    /// Only licenses issued at or after `t` (unix seconds).
    #[must_use]
    pub const fn valid_from(mut self, t: u64) -> Self {
        self.valid_from = t;
        self
    }

    /// Only licenses issued at or before `t` (unix seconds).
    #[must_use]
    pub const fn valid_until(mut self, t: u64) -> Self {
        self.valid_until = Some(t);
        self
    }

    /// Only licenses for these products.
    pub fn products(mut self, products: &[&str]) -> Result<Self, Error> {
        let mut scope = ProductScope::new();
        for p in products {
            scope
                .push(ProductName::new(p)?)
                .map_err(|_| Malformed::List)?;
        }
        self.products = scope;
        Ok(self)
    }

    /// The public key.
    #[must_use]
    pub const fn public_key(&self) -> &PublicKey {
        &self.key
    }

    /// Start of the issue-time window.
    #[must_use]
    pub const fn window_start(&self) -> u64 {
        self.valid_from
    }

    /// End of the issue-time window, if any.
    #[must_use]
    pub const fn window_end(&self) -> Option<u64> {
        self.valid_until
    }

    /// The products the key is limited to; empty means all.
    #[must_use]
    pub fn product_scope(&self) -> &[ProductName] {
        self.products.as_slice()
    }

    /// Whether `t` is inside the issue-time window.
    #[must_use]
    pub fn window_covers(&self, t: u64) -> bool {
        t >= self.valid_from && self.valid_until.is_none_or(|u| t <= u)
    }

    /// Whether the key may sign nothing at all (two scopes of it with no
    /// product in common): such a key outranks no other.
    #[must_use]
    pub fn is_void(&self) -> bool {
        self.valid_until.is_some_and(|u| u < self.valid_from)
    }

    /// Whether this key may sign a license issued at `issued_at` for `product`.
    #[must_use]
    pub fn allows(&self, issued_at: u64, product: &str) -> bool {
        self.window_covers(issued_at)
            && (self.products.is_empty()
                || self
                    .products
                    .as_slice()
                    .iter()
                    .any(|p| p.as_str() == product))
    }

    fn narrow(&mut self, other: &TrustedKey) {
        self.valid_from = self.valid_from.max(other.valid_from);
        self.valid_until = match (self.valid_until, other.valid_until) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if self.products.is_empty() {
            self.products = other.products;
        } else if !other.products.is_empty() {
            let mut both = ProductScope::new();
            for p in self.products.as_slice() {
                if other.products.as_slice().contains(p) {
                    let _ = both.push(*p);
                }
            }
            if both.is_empty() {
                // No product in common: nothing may be signed any more.
                self.valid_until = Some(0);
                self.valid_from = u64::MAX;
            }
            self.products = both;
        }
    }
}

/// The set of trusted keys. Fixed capacity, usable with no std; it
/// allocates only for [`Keyring::precompute`]'s tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyring {
    keys: [Option<TrustedKey>; MAX_KEYS],
    roots: [Option<PublicKey>; MAX_ROOTS],
    #[cfg(feature = "alloc")]
    tables: crate::precomputed::Tables,
}

impl Default for Keyring {
    fn default() -> Self {
        Self::new()
    }
}

impl Keyring {
    /// An empty keyring.
    #[must_use]
    pub const fn new() -> Self {
        Keyring {
            keys: [None; MAX_KEYS],
            roots: [None; MAX_ROOTS],
            #[cfg(feature = "alloc")]
            tables: crate::precomputed::Tables::new(),
        }
    }

    /// Builds verification tables for every issuing key, now and as keys
    /// are added: each license or revocation list they sign then verifies
    /// about twice as fast, with the same answers (see [`crate::precomputed`]).
    ///
    /// Costs 215 KiB per key, plus the same once for the basepoint (built
    /// with the first key); the first key and the basepoint take about
    /// 0.7 ms to build natively (criterion `keyring/precompute_one_key`,
    /// `scripts/bench.sh`), a dozen plain verifications' worth. Worth it
    /// for a verifier that checks more than a few dozen signatures; the
    /// SDKs' validators do it when built. Root keys, which only sign
    /// certificates, are used rarely and get no tables.
    #[cfg(feature = "alloc")]
    pub fn precompute(&mut self) {
        self.tables.grow = true;
        for k in self.keys.iter().flatten() {
            self.tables.add(&k.key);
        }
    }

    /// Keeps the tables built so far but builds none for keys added from
    /// now on: for a short-lived copy that adds a license file's
    /// certificates for one verification, where a table would cost more
    /// than it saves.
    #[cfg(feature = "alloc")]
    pub fn stop_precomputing(&mut self) {
        self.tables.grow = false;
    }

    /// Whether keys added now get tables ([`Keyring::precompute`] was
    /// called, and [`Keyring::stop_precomputing`] was not since).
    #[cfg(feature = "alloc")]
    #[must_use]
    pub fn is_precomputed(&self) -> bool {
        self.tables.grow
    }

    /// Strict verification of `domain || body || extra` by `key`, through
    /// its table when the keyring has one.
    pub(crate) fn verify_domain(
        &self,
        key: &PublicKey,
        domain: &[u8],
        body: &[u8],
        extra: &[u8],
        signature: &[u8; 64],
    ) -> Result<(), Error> {
        #[cfg(feature = "alloc")]
        if let Some(verdict) = self.verify_precomputed(key, &[domain, body, extra], signature) {
            return verdict;
        }
        key.verify_domain(domain, body, extra, signature)
    }

    /// Strict verification of the concatenation of `parts` by `key` through
    /// its table; `None` if the keyring has no table for it.
    #[cfg(feature = "alloc")]
    pub(crate) fn verify_precomputed(
        &self,
        key: &PublicKey,
        parts: &[&[u8]],
        signature: &[u8; 64],
    ) -> Option<Result<(), Error>> {
        let (base, table) = self.tables.find(key)?;
        Some(table.verify_strict(base, parts, signature))
    }

    /// Trusts an issuing key, replacing an entry with the same key id.
    pub fn add(&mut self, key: TrustedKey) -> Result<(), Error> {
        let id = key.key.key_id();
        let slot = match self
            .keys
            .iter()
            .position(|k| k.is_some_and(|k| k.key.key_id() == id))
        {
            Some(i) => i,
            None => self
                .keys
                .iter()
                .position(Option::is_none)
                .ok_or(Error::KeyringFull)?,
        };
        self.keys[slot] = Some(key);
        #[cfg(feature = "alloc")]
        if self.is_precomputed() {
            self.tables.add(&key.key);
        }
        Ok(())
    }

    /// Pins a root key, whose certificates add issuing keys.
    pub fn add_root(&mut self, root: PublicKey) -> Result<(), Error> {
        if self
            .roots
            .iter()
            .flatten()
            .any(|r| r.key_id() == root.key_id())
        {
            return Ok(());
        }
        let slot = self
            .roots
            .iter_mut()
            .find(|r| r.is_none())
            .ok_or(Error::KeyringFull)?;
        *slot = Some(root);
        Ok(())
    }

    /// Verifies a key certificate against the pinned roots and trusts the key
    /// it certifies. If the key is already trusted, the narrower of the two
    /// windows and scopes wins, so an old certificate can never widen trust.
    pub fn add_certificate(&mut self, bytes: &[u8]) -> Result<KeyId, Error> {
        let cert = KeyCertificate::verify(bytes, self)?;
        let id = cert.key.key.key_id();
        self.add_narrowing(cert.key)?;
        Ok(id)
    }

    /// Trusts `key`, or, if its key id is already trusted, narrows that
    /// entry to the narrower window and scope of the two: what a keyring's
    /// text means by a key listed twice, or listed and certified, in any
    /// order (a later line can never widen an earlier one).
    fn add_narrowing(&mut self, key: TrustedKey) -> Result<(), Error> {
        let id = key.key.key_id();
        match self
            .keys
            .iter_mut()
            .flatten()
            .find(|k| k.key.key_id() == id)
        {
            Some(existing) => {
                existing.narrow(&key);
                Ok(())
            }
            None => self.add(key),
        }
    }

    /// Stops trusting `id` for licenses issued after `at`. Returns whether
    /// the key was in the keyring.
    pub fn cut_off(&mut self, id: KeyId, at: u64) -> bool {
        match self
            .keys
            .iter_mut()
            .flatten()
            .find(|k| k.key.key_id() == id)
        {
            Some(k) => {
                k.valid_until = Some(k.valid_until.map_or(at, |u| u.min(at)));
                true
            }
            None => false,
        }
    }

    /// The trusted issuing key with this id.
    #[must_use]
    pub fn get(&self, id: KeyId) -> Option<&TrustedKey> {
        self.keys.iter().flatten().find(|k| k.key.key_id() == id)
    }

    /// The root key with this id.
    #[must_use]
    pub fn root(&self, id: KeyId) -> Option<&PublicKey> {
        self.roots.iter().flatten().find(|r| r.key_id() == id)
    }

    /// The trusted issuing keys.
    pub fn keys(&self) -> impl Iterator<Item = &TrustedKey> {
        self.keys.iter().flatten()
    }

    /// The pinned root keys.
    pub fn roots(&self) -> impl Iterator<Item = &PublicKey> {
        self.roots.iter().flatten()
    }

    /// The key that may sign revocation lists with this id: an issuing key,
    /// listed or certified. Roots never sign lists (they stay offline and
    /// only certify keys); which of two issuing keys' lists wins is decided
    /// by their rank (see [`crate::revocation::ListOrder`]).
    #[cfg(feature = "alloc")]
    pub(crate) fn list_signer(&self, id: KeyId) -> Result<&TrustedKey, Error> {
        self.get(id).ok_or(Error::UnknownKey(id))
    }
}

impl FromStr for Keyring {
    type Err = Error;

    /// Parses the keyring text form, one entry per line:
    ///
    /// ```text
    /// # comments and blank lines are ignored
    /// key kspub1.<base64url> [from=UNIX] [until=UNIX] [products=a,b]
    /// root kspub1.<base64url>
    /// cert kscert1.<base64url>     (checked against roots listed above it)
    /// ```
    ///
    /// A key listed twice, or listed and certified, is trusted for the
    /// narrower window and scope of the two, whatever the order.
    fn from_str(s: &str) -> Result<Self, Error> {
        let mut ring = Keyring::new();
        for line in s.lines() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let mut words = line.split_ascii_whitespace();
            let kind = words.next().ok_or(Malformed::Keyring)?;
            let value = words.next().ok_or(Malformed::Keyring)?;
            match kind {
                "key" => {
                    let mut key = TrustedKey::new(value.parse()?);
                    for opt in words {
                        let (name, v) = opt.split_once('=').ok_or(Malformed::Keyring)?;
                        match name {
                            "from" => key.valid_from = parse_time(v)?,
                            "until" => key.valid_until = Some(parse_time(v)?),
                            "products" => {
                                let mut names = [""; MAX_KEY_PRODUCTS];
                                let mut n = 0;
                                for p in v.split(',') {
                                    *names.get_mut(n).ok_or(Malformed::Keyring)? = p;
                                    n += 1;
                                }
                                key = key.products(&names[..n])?;
                            }
                            _ => return Err(Malformed::Keyring.into()),
                        }
                    }
                    ring.add_narrowing(key)?;
                }
                "root" | "cert" if words.next().is_some() => return Err(Malformed::Keyring.into()),
                "root" => ring.add_root(value.parse()?)?,
                "cert" => {
                    let mut buf = [0u8; MAX_CERTIFICATE_LEN];
                    let bytes = text::decode_prefixed(CERTIFICATE_PREFIX, value, &mut buf)?;
                    ring.add_certificate(bytes)?;
                }
                _ => return Err(Malformed::Keyring.into()),
            }
        }
        Ok(ring)
    }
}

fn parse_time(s: &str) -> Result<u64, Error> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return Err(Malformed::Keyring.into());
    }
    s.parse().map_err(|_| Malformed::Keyring.into())
}

impl fmt::Display for Keyring {
    /// Writes the text form [`Keyring::from_str`] reads. Keys added through
    /// certificates are written as plain `key` lines with their windows.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for r in self.roots() {
            writeln!(f, "root {r}")?;
        }
        for k in self.keys() {
            write!(f, "key {}", k.key)?;
            if k.valid_from != 0 {
                write!(f, " from={}", k.valid_from)?;
            }
            if let Some(u) = k.valid_until {
                write!(f, " until={u}")?;
            }
            for (i, p) in k.products.as_slice().iter().enumerate() {
                f.write_str(if i == 0 { " products=" } else { "," })?;
                f.write_str(p.as_str())?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

#[derive(Serialize, Deserialize)]
struct CertBody<'a> {
    public_key: [u8; PUBLIC_KEY_LEN],
    valid_from: u64,
    valid_until: Option<u64>,
    #[serde(borrow)]
    products: Bounded<&'a str, MAX_KEY_PRODUCTS>,
}

/// A root's signed statement that an issuing key may sign licenses issued
/// within a window, for some products.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyCertificate {
    root: KeyId,
    key: TrustedKey,
}

impl KeyCertificate {
    /// Decodes and verifies a certificate against the roots of `keyring`.
    pub fn verify(bytes: &[u8], keyring: &Keyring) -> Result<Self, Error> {
        let env = envelope::split(bytes, CERTIFICATE_VERSION, MAX_CERTIFICATE_LEN)?;
        let (body, rest): (CertBody<'_>, _) =
            postcard::take_from_bytes(env.body).map_err(|_| Malformed::Encoding)?;
        if !rest.is_empty() {
            return Err(Malformed::Encoding.into());
        }
        let root = keyring
            .root(env.key_id)
            .ok_or(Error::UnknownKey(env.key_id))?;
        keyring.verify_domain(root, CERTIFICATE_DOMAIN, env.signed, &[], &env.signature)?;
        let mut buf = [0u8; MAX_CERTIFICATE_LEN];
        let again = postcard::to_slice(&body, &mut buf).map_err(|_| Malformed::Encoding)?;
        if again != env.body {
            return Err(Malformed::NonCanonical.into());
        }
        let mut key =
            TrustedKey::new(PublicKey::from_bytes(&body.public_key)?).valid_from(body.valid_from);
        key.valid_until = body.valid_until;
        let key = key.products(body.products.as_slice())?;
        Ok(KeyCertificate {
            root: env.key_id,
            key,
        })
    }

    /// The root that signed it.
    #[must_use]
    pub const fn root(&self) -> KeyId {
        self.root
    }

    /// The key it certifies, with its window and scope.
    #[must_use]
    pub const fn key(&self) -> &TrustedKey {
        &self.key
    }

    /// Signs a certificate for `key` with an offline `root`.
    #[cfg(feature = "sign")]
    pub fn sign(root: &crate::key::SigningKey, key: &TrustedKey) -> alloc::vec::Vec<u8> {
        let mut products = Bounded::<&str, MAX_KEY_PRODUCTS>::new();
        for p in key.product_scope() {
            let _ = products.push(p.as_str());
        }
        let body = CertBody {
            public_key: key.key.to_bytes(),
            valid_from: key.valid_from,
            valid_until: key.valid_until,
            products,
        };
        let mut buf = [0u8; MAX_CERTIFICATE_LEN];
        // Cannot fail: the body is bounded by MAX_CERTIFICATE_LEN by construction.
        let body = postcard::to_slice(&body, &mut buf)
            .map(|b| &*b)
            .unwrap_or(&[]);
        envelope::seal(root, CERTIFICATE_DOMAIN, CERTIFICATE_VERSION, body, &[])
    }
}
