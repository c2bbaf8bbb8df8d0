//! What a license says: the claims, their limits and their one canonical encoding.
//!
//! Claims borrow their strings from the bytes they were decoded from, and hold
//! their lists in fixed-capacity arrays, so decoding never allocates.

use core::fmt;
use core::str::FromStr;

use serde::de::{self, SeqAccess, Visitor};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Malformed};

/// Length of a [`LicenseId`] in bytes.
pub const LICENSE_ID_LEN: usize = 16;
/// Longest product id, plan, entitlement name or extension key, in bytes.
pub const MAX_NAME_LEN: usize = 32;
/// Longest customer id, in bytes.
pub const MAX_CUSTOMER_LEN: usize = 64;
/// Longest extension value, in bytes.
pub const MAX_EXTENSION_VALUE_LEN: usize = 64;
/// Most entitlements one license carries.
pub const MAX_ENTITLEMENTS: usize = 32;
/// Most vendor extension fields one license carries.
pub const MAX_EXTENSIONS: usize = 8;
/// Most device fingerprint components a tolerant binding carries.
pub const MAX_DEVICE_COMPONENTS: usize = 8;
/// Length of one component digest in a tolerant device binding.
pub const COMPONENT_DIGEST_LEN: usize = 6;
/// Length of the device hint of an exact device binding.
pub const DEVICE_HINT_LEN: usize = 2;
/// Upper bound of the encoded claims, in bytes (checked by a test that
/// encodes claims with every field at its limit).
pub const MAX_CLAIMS_LEN: usize = 2112;
/// Claims up to this size are re-encoded in a small stack buffer.
const SMALL_CLAIMS_LEN: usize = 256;

/// A license's 128-bit id, unique and unguessable. Shown as 32 hex digits.
/// keyseal's issuer makes them 48 bits of milliseconds then 80 random bits,
/// so they sort in issue order.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct LicenseId([u8; LICENSE_ID_LEN]);

impl LicenseId {
    /// Wraps raw bytes. Issuers draw them from a secure random generator.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; LICENSE_ID_LEN]) -> Self {
        LicenseId(bytes)
    }

    /// The raw bytes.
    #[must_use]
    pub const fn to_bytes(self) -> [u8; LICENSE_ID_LEN] {
        self.0
    }

    /// The id as a big-endian integer (the order revocation lists sort by).
    #[must_use]
    pub const fn to_u128(self) -> u128 {
        u128::from_be_bytes(self.0)
    }

    /// The id from its big-endian integer.
    #[must_use]
    pub const fn from_u128(v: u128) -> Self {
        LicenseId(v.to_be_bytes())
    }
}

impl fmt::Display for LicenseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for LicenseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LicenseId({self})")
    }
}

impl FromStr for LicenseId {
    type Err = Error;

    /// Parses 32 hex digits.
    fn from_str(s: &str) -> Result<Self, Error> {
        let mut id = [0u8; LICENSE_ID_LEN];
        crate::text::decode_hex(s, &mut id).map_err(|()| Malformed::Text)?;
        Ok(LicenseId(id))
    }
}

/// A fixed-capacity list, encoded as a postcard sequence (length, then items).
/// Decoding more than `N` items is an error, never an allocation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Bounded<T: Copy + Default, const N: usize> {
    items: [T; N],
    len: usize,
}

impl<T: Copy + Default, const N: usize> Bounded<T, N> {
    /// An empty list.
    #[must_use]
    pub fn new() -> Self {
        Bounded {
            items: [T::default(); N],
            len: 0,
        }
    }

    /// A list of these items; `None` if there are more than `N`.
    #[must_use]
    pub fn from_slice(items: &[T]) -> Option<Self> {
        let mut list = Self::new();
        for item in items {
            list.push(*item).ok()?;
        }
        Some(list)
    }

    /// Appends an item; gives it back if the list is full.
    pub fn push(&mut self, item: T) -> Result<(), T> {
        match self.items.get_mut(self.len) {
            Some(slot) => {
                *slot = item;
                self.len += 1;
                Ok(())
            }
            None => Err(item),
        }
    }

    /// The items.
    #[must_use]
    pub fn as_slice(&self) -> &[T] {
        &self.items[..self.len]
    }

    /// Number of items.
    #[must_use]
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether the list is empty.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl<T: Copy + Default, const N: usize> Default for Bounded<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Copy + Default + fmt::Debug, const N: usize> fmt::Debug for Bounded<T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

impl<T: Copy + Default + Serialize, const N: usize> Serialize for Bounded<T, N> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.len))?;
        for item in self.as_slice() {
            seq.serialize_element(item)?;
        }
        seq.end()
    }
}

impl<'de, T: Copy + Default + Deserialize<'de>, const N: usize> Deserialize<'de> for Bounded<T, N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T, const N: usize>(core::marker::PhantomData<T>);
        impl<'de, T: Copy + Default + Deserialize<'de>, const N: usize> Visitor<'de> for V<T, N> {
            type Value = Bounded<T, N>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "at most {N} items")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                if seq.size_hint().is_some_and(|n| n > N) {
                    return Err(de::Error::invalid_length(N + 1, &self));
                }
                let mut list = Bounded::new();
                while let Some(item) = seq.next_element()? {
                    list.push(item)
                        .map_err(|_| de::Error::invalid_length(N + 1, &self))?;
                }
                Ok(list)
            }
        }
        d.deserialize_seq(V::<T, N>(core::marker::PhantomData))
    }
}

/// Entitlement names, sorted and unique.
pub type Entitlements<'a> = Bounded<&'a str, MAX_ENTITLEMENTS>;
/// Vendor extension fields `(key, value)`, sorted by key, keys unique.
pub type Extensions<'a> = Bounded<(&'a str, &'a str), MAX_EXTENSIONS>;

/// Why a list given in any order cannot become a claims list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListError<'a> {
    /// More distinct items than the list holds.
    TooMany {
        /// The most the list holds.
        max: usize,
    },
    /// An extension key given twice (with different values).
    DuplicateKey(&'a str),
}

impl fmt::Display for ListError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListError::TooMany { max } => write!(f, "more than {max} given"),
            ListError::DuplicateKey(k) => write!(f, "key `{k}` given twice"),
        }
    }
}

impl<T: Copy + Default, const N: usize> Bounded<T, N> {
    /// Inserts `item` where `key` orders it. `Ok(Some(existing))` leaves the
    /// list as it was when an item with the same key is there already;
    /// `Err` gives the item back when the list is full.
    fn insert_by<K: Ord>(&mut self, item: T, key: impl Fn(&T) -> K) -> Result<Option<T>, T> {
        let k = key(&item);
        match self.as_slice().binary_search_by(|x| key(x).cmp(&k)) {
            Ok(i) => Ok(Some(self.items[i])),
            Err(_) if self.len == N => Err(item),
            Err(i) => {
                self.items.copy_within(i..self.len, i + 1);
                self.items[i] = item;
                self.len += 1;
                Ok(None)
            }
        }
    }
}

impl<'a> Bounded<&'a str, MAX_ENTITLEMENTS> {
    /// Entitlements in the order the format requires (sorted, unique) from
    /// names in any order; a name given twice counts once. The names' own
    /// rules are [`Claims::validate`]'s.
    pub fn sorted_from(names: impl IntoIterator<Item = &'a str>) -> Result<Self, ListError<'a>> {
        let mut list = Self::new();
        for name in names {
            list.insert_by(name, |n| *n)
                .map_err(|_| ListError::TooMany {
                    max: MAX_ENTITLEMENTS,
                })?;
        }
        Ok(list)
    }
}

impl<'a> Bounded<(&'a str, &'a str), MAX_EXTENSIONS> {
    /// Extension fields in the order the format requires (sorted by key)
    /// from pairs in any order. A pair given twice counts once; one key with
    /// two values is an error.
    pub fn sorted_from(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ListError<'a>> {
        let mut list = Self::new();
        for pair in pairs {
            match list.insert_by(pair, |(k, _)| *k) {
                Ok(None) => {}
                Ok(Some(existing)) if existing == pair => {}
                Ok(Some(_)) => return Err(ListError::DuplicateKey(pair.0)),
                Err(_) => {
                    return Err(ListError::TooMany {
                        max: MAX_EXTENSIONS,
                    });
                }
            }
        }
        Ok(list)
    }
}
/// Component digests of a tolerant device binding.
pub type ComponentDigests = Bounded<[u8; COMPONENT_DIGEST_LEN], MAX_DEVICE_COMPONENTS>;

/// How a license is bound to a device. Never the raw fingerprint: see
/// `docs/FORMAT.md` for the salted hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeviceBinding {
    /// The signature covers a salted hash of the whole fingerprint (implicit
    /// assertion); the key carries only a 2-byte hint to tell a wrong device
    /// from a forged key.
    Exact {
        /// Two bytes of the salted binding hash.
        hint: [u8; DEVICE_HINT_LEN],
    },
    /// At least `required` of the device's fingerprint components must match
    /// one of these salted, truncated component digests.
    Tolerant {
        /// How many components must match.
        required: u8,
        /// Salted digests of the components seen at issue.
        digests: ComponentDigests,
    },
}

/// An app version `major.minor.patch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Version {
    /// Major version.
    pub major: u16,
    /// Minor version.
    pub minor: u16,
    /// Patch version.
    pub patch: u16,
}

impl Version {
    /// A version from its three parts.
    #[must_use]
    pub const fn new(major: u16, minor: u16, patch: u16) -> Self {
        Version {
            major,
            minor,
            patch,
        }
    }
}

impl FromStr for Version {
    type Err = Error;

    /// Parses `1`, `1.2` or `1.2.3`; a pre-release or build suffix
    /// (`-beta.1`, `+sha`) is ignored.
    fn from_str(s: &str) -> Result<Self, Error> {
        let core = s.split(['-', '+']).next().unwrap_or(s);
        let mut parts = [0u16; 3];
        for (n, part) in core.split('.').enumerate() {
            let slot = parts.get_mut(n).ok_or(Malformed::Text)?;
            *slot = parse_u16(part)?;
        }
        let [major, minor, patch] = parts;
        Ok(Version {
            major,
            minor,
            patch,
        })
    }
}

fn parse_u16(s: &str) -> Result<u16, Error> {
    if s.is_empty() || (s.len() > 1 && s.starts_with('0')) || !s.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(Malformed::Text.into());
    }
    s.parse().map_err(|_| Malformed::Text.into())
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The newest app version a license covers: `5.x`, `5.2.x` or `5.2.3`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum VersionCap {
    /// Every version with this major number or lower (`5.x`).
    Major(u16),
    /// Up to this minor version (`5.2.x`).
    Minor(u16, u16),
    /// Up to this exact version (`5.2.3`).
    Patch(u16, u16, u16),
}

impl VersionCap {
    /// Whether the app version `v` is covered.
    #[must_use]
    pub fn covers(&self, v: Version) -> bool {
        match *self {
            VersionCap::Major(m) => v.major <= m,
            VersionCap::Minor(m, n) => (v.major, v.minor) <= (m, n),
            VersionCap::Patch(m, n, p) => (v.major, v.minor, v.patch) <= (m, n, p),
        }
    }
}

impl FromStr for VersionCap {
    type Err = Error;

    /// Parses `5.x`, `5.2.x` or `5.2.3` (`*` works as `x`; `5` means `5.x`).
    fn from_str(s: &str) -> Result<Self, Error> {
        let mut it = s.split('.');
        let major = parse_u16(it.next().ok_or(Malformed::Text)?)?;
        let wild = |p: &str| p == "x" || p == "X" || p == "*";
        let cap = match (it.next(), it.next(), it.next()) {
            (None, None, None) => VersionCap::Major(major),
            (Some(m), None, None) if wild(m) => VersionCap::Major(major),
            (Some(m), Some(p), None) if wild(p) => VersionCap::Minor(major, parse_u16(m)?),
            (Some(m), Some(p), None) => VersionCap::Patch(major, parse_u16(m)?, parse_u16(p)?),
            _ => return Err(Malformed::Text.into()),
        };
        Ok(cap)
    }
}

impl fmt::Display for VersionCap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VersionCap::Major(m) => write!(f, "{m}.x"),
            VersionCap::Minor(m, n) => write!(f, "{m}.{n}.x"),
            VersionCap::Patch(m, n, p) => write!(f, "{m}.{n}.{p}"),
        }
    }
}

/// The claims of a license. Field order is the wire order (see `docs/FORMAT.md`).
///
/// Obtain verified claims only through [`crate::license::VerifiedLicense`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims<'a> {
    /// 128-bit license id, unique and unguessable.
    pub license_id: LicenseId,
    /// Product id, for example `acme-cad`.
    pub product: &'a str,
    /// Opaque customer id from the vendor's systems, never an email or a name
    /// (the alphabet has no `@` or space).
    pub customer: &'a str,
    /// Plan name, for example `pro`.
    pub plan: &'a str,
    /// When the license was issued (unix seconds).
    pub issued_at: u64,
    /// Not valid before this time (unix seconds), if set.
    pub not_before: Option<u64>,
    /// Expiry (unix seconds); `None` is perpetual.
    pub expires_at: Option<u64>,
    /// Seconds after expiry during which the license still validates, marked
    /// as in grace. 0 means none.
    pub grace_secs: u32,
    /// Device binding, if any. Set by the issuer from a fingerprint.
    pub device: Option<DeviceBinding>,
    /// Feature names the license grants, sorted, unique.
    #[serde(borrow)]
    pub entitlements: Entitlements<'a>,
    /// Newest app version covered, if limited.
    pub max_version: Option<VersionCap>,
    /// Vendor extension fields, sorted by key.
    #[serde(borrow)]
    pub extensions: Extensions<'a>,
}

impl<'a> Claims<'a> {
    /// Claims with the required fields and every optional one empty.
    #[must_use]
    pub fn new(
        license_id: LicenseId,
        product: &'a str,
        customer: &'a str,
        plan: &'a str,
        issued_at: u64,
    ) -> Self {
        Claims {
            license_id,
            product,
            customer,
            plan,
            issued_at,
            not_before: None,
            expires_at: None,
            grace_secs: 0,
            device: None,
            entitlements: Entitlements::new(),
            max_version: None,
            extensions: Extensions::new(),
        }
    }

    /// Whether the license grants `name` (binary search: the list is sorted).
    #[must_use]
    pub fn has_entitlement(&self, name: &str) -> bool {
        self.entitlements.as_slice().binary_search(&name).is_ok()
    }

    /// The value of extension field `key`.
    #[must_use]
    pub fn extension(&self, key: &str) -> Option<&'a str> {
        let ext = self.extensions.as_slice();
        ext.binary_search_by(|(k, _)| (*k).cmp(key))
            .ok()
            .map(|i| ext[i].1)
    }

    /// Checks every documented limit: alphabets, lengths, sorted unique
    /// lists, and times that make sense together.
    pub fn validate(&self) -> Result<(), Malformed> {
        check_name(self.product, MAX_NAME_LEN)?;
        check_name(self.customer, MAX_CUSTOMER_LEN)?;
        check_name(self.plan, MAX_NAME_LEN)?;
        for name in self.entitlements.as_slice() {
            check_name(name, MAX_NAME_LEN)?;
        }
        if !strictly_sorted(self.entitlements.as_slice().iter().copied()) {
            return Err(Malformed::List);
        }
        for (k, v) in self.extensions.as_slice() {
            check_name(k, MAX_NAME_LEN)?;
            if v.len() > MAX_EXTENSION_VALUE_LEN || !v.bytes().all(|b| (0x20..0x7f).contains(&b)) {
                return Err(Malformed::Text);
            }
        }
        if !strictly_sorted(self.extensions.as_slice().iter().map(|(k, _)| *k)) {
            return Err(Malformed::List);
        }
        if let (Some(nb), Some(exp)) = (self.not_before, self.expires_at)
            && nb >= exp
        {
            return Err(Malformed::Field);
        }
        if let Some(DeviceBinding::Tolerant { required, digests }) = &self.device
            && (*required == 0 || usize::from(*required) > digests.len())
        {
            return Err(Malformed::Field);
        }
        Ok(())
    }

    /// Decodes claims from exactly these bytes, refusing anything but the
    /// canonical encoding of valid claims.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, Error> {
        if bytes.len() > MAX_CLAIMS_LEN {
            return Err(Malformed::TooLong.into());
        }
        let (claims, rest): (Claims<'a>, _) =
            postcard::take_from_bytes(bytes).map_err(|_| Malformed::Encoding)?;
        if !rest.is_empty() {
            return Err(Malformed::Encoding.into());
        }
        claims.validate()?;
        // postcard accepts over-long varints; the one canonical form is the
        // re-encoding, byte for byte.
        // Typical claims fit a small buffer; only large ones pay for zeroing
        // the full one (this is on the verify path).
        let canonical = if bytes.len() <= SMALL_CLAIMS_LEN {
            reencodes_to::<SMALL_CLAIMS_LEN>(&claims, bytes)
        } else {
            reencodes_to::<MAX_CLAIMS_LEN>(&claims, bytes)
        };
        if !canonical {
            return Err(Malformed::NonCanonical.into());
        }
        Ok(claims)
    }

    /// Encodes valid claims into `buf`, returning the bytes written.
    pub fn encode<'b>(&self, buf: &'b mut [u8]) -> Result<&'b mut [u8], Error> {
        self.validate().map_err(Error::InvalidClaims)?;
        postcard::to_slice(self, buf).map_err(|_| Error::InvalidClaims(Malformed::TooLong))
    }
}

/// Whether `claims` encode back to exactly `bytes`, in an `N`-byte stack buffer.
fn reencodes_to<const N: usize>(claims: &Claims<'_>, bytes: &[u8]) -> bool {
    let mut buf = [0u8; N];
    postcard::to_slice(claims, &mut buf).is_ok_and(|again| again == bytes)
}

/// Product ids, plans, entitlements, extension keys and customer ids: 1 to
/// `max` bytes of `A-Z a-z 0-9 . _ : -`.
pub(crate) fn check_name(s: &str, max: usize) -> Result<(), Malformed> {
    let ok = !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
    if ok { Ok(()) } else { Err(Malformed::Text) }
}

fn strictly_sorted<'x>(mut it: impl Iterator<Item = &'x str>) -> bool {
    let Some(mut prev) = it.next() else {
        return true;
    };
    for cur in it {
        if cur <= prev {
            return false;
        }
        prev = cur;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_in_any_order_become_canonical() {
        let e =
            Entitlements::sorted_from(["plugins", "export-pdf", "cloud-sync", "plugins"]).unwrap();
        assert_eq!(e.as_slice(), ["cloud-sync", "export-pdf", "plugins"]);
        // MAX_ENTITLEMENTS + 1 distinct names, in order: a0, a1, ... d2.
        let mut buf = [0u8; 2 * (MAX_ENTITLEMENTS + 1)];
        for (i, c) in buf.chunks_mut(2).enumerate() {
            c[0] = b'a' + u8::try_from(i / 10).unwrap();
            c[1] = b'0' + u8::try_from(i % 10).unwrap();
        }
        let names: [&str; MAX_ENTITLEMENTS + 1] =
            core::array::from_fn(|i| core::str::from_utf8(&buf[2 * i..2 * i + 2]).unwrap());
        let full = &names[..MAX_ENTITLEMENTS];
        let e_full = Entitlements::sorted_from(full.iter().rev().copied()).unwrap();
        assert_eq!(e_full.as_slice(), full);
        assert_eq!(
            Entitlements::sorted_from(names),
            Err(ListError::TooMany {
                max: MAX_ENTITLEMENTS
            })
        );
        // A repeat does not count against the limit.
        assert!(Entitlements::sorted_from(full.iter().chain(full).copied()).is_ok());

        let x =
            Extensions::sorted_from([("tier", "gold"), ("seat", "7"), ("tier", "gold")]).unwrap();
        assert_eq!(x.as_slice(), [("seat", "7"), ("tier", "gold")]);
        assert_eq!(
            Extensions::sorted_from([("tier", "gold"), ("tier", "silver")]),
            Err(ListError::DuplicateKey("tier"))
        );

        // What comes out passes the format's own check.
        let mut c = Claims::new(LicenseId::from_bytes([1; 16]), "p", "c", "pro", 1);
        c.entitlements = e;
        c.extensions = x;
        assert_eq!(c.validate(), Ok(()));
    }

    fn max_claims<'a>(
        names: &'a [alloc::string::String],
        long: &'a str,
        customer: &'a str,
    ) -> Claims<'a> {
        let mut c = Claims::new(
            LicenseId::from_bytes([0xff; 16]),
            long,
            customer,
            long,
            u64::MAX,
        );
        c.not_before = Some(u64::MAX - 1);
        c.expires_at = Some(u64::MAX);
        c.grace_secs = u32::MAX;
        c.device = Some(DeviceBinding::Tolerant {
            required: 8,
            digests: ComponentDigests::from_slice(&[[0xff; 6]; 8]).unwrap(),
        });
        for n in names.iter().take(MAX_ENTITLEMENTS) {
            c.entitlements.push(n).unwrap();
        }
        let value = &"~".repeat(MAX_EXTENSION_VALUE_LEN);
        let value: &'static str = alloc::boxed::Box::leak(value.clone().into_boxed_str());
        for n in names.iter().take(MAX_EXTENSIONS) {
            c.extensions.push((n, value)).unwrap();
        }
        c.max_version = Some(VersionCap::Patch(u16::MAX, u16::MAX, u16::MAX));
        c
    }

    #[test]
    fn largest_claims_fit_max_claims_len() {
        let names: alloc::vec::Vec<_> = (0..MAX_ENTITLEMENTS)
            .map(|i| alloc::format!("{i:0>32}"))
            .collect();
        let long = "z".repeat(MAX_NAME_LEN);
        let customer = "c".repeat(MAX_CUSTOMER_LEN);
        let c = max_claims(&names, &long, &customer);
        let mut buf = [0u8; MAX_CLAIMS_LEN];
        let bytes = c.encode(&mut buf).unwrap().to_vec();
        assert!(bytes.len() <= MAX_CLAIMS_LEN);
        assert!(
            bytes.len() + 32 > MAX_CLAIMS_LEN,
            "bound is loose: {}",
            bytes.len()
        );
        assert_eq!(Claims::decode(&bytes).unwrap(), c);
    }

    #[test]
    fn rejects_bad_text_and_unsorted_lists() {
        let id = LicenseId::default();
        let mut c = Claims::new(id, "acme-cad", "jane@example.com", "pro", 1);
        assert_eq!(c.validate(), Err(Malformed::Text));
        c.customer = "cus_1";
        c.entitlements = Entitlements::from_slice(&["b", "a"]).unwrap();
        assert_eq!(c.validate(), Err(Malformed::List));
        c.entitlements = Entitlements::from_slice(&["a", "a"]).unwrap();
        assert_eq!(c.validate(), Err(Malformed::List));
        c.entitlements = Entitlements::from_slice(&["a", "b"]).unwrap();
        assert_eq!(c.validate(), Ok(()));
        assert!(c.has_entitlement("b") && !c.has_entitlement("c"));
        c.not_before = Some(10);
        c.expires_at = Some(10);
        assert_eq!(c.validate(), Err(Malformed::Field));
    }

    #[test]
    fn overlong_varint_is_non_canonical() {
        let c = Claims::new(LicenseId::default(), "p", "c", "x", 5);
        let mut buf = [0u8; 64];
        let bytes = c.encode(&mut buf).unwrap().to_vec();
        // issued_at (5) sits right after id (16), product, customer, plan (2 bytes each).
        let at = 16 + 2 + 2 + 2;
        assert_eq!(bytes[at], 5);
        let mut long = bytes[..at].to_vec();
        long.extend_from_slice(&[0x85, 0x00]);
        long.extend_from_slice(&bytes[at + 1..]);
        assert_eq!(
            Claims::decode(&long),
            Err(Error::Malformed(Malformed::NonCanonical))
        );
    }

    #[test]
    fn version_parsing_and_caps() {
        let v: Version = "5.2.1-beta+abc".parse().unwrap();
        assert_eq!(v, Version::new(5, 2, 1));
        assert_eq!("7".parse::<Version>().unwrap(), Version::new(7, 0, 0));
        for bad in ["", "1..2", "1.2.3.4", "01.2", "a.b", "70000"] {
            assert!(bad.parse::<Version>().is_err(), "{bad}");
        }
        let cap: VersionCap = "5.x".parse().unwrap();
        assert!(cap.covers(Version::new(5, 99, 9)) && !cap.covers(Version::new(6, 0, 0)));
        let cap: VersionCap = "5.2.x".parse().unwrap();
        assert!(cap.covers(Version::new(5, 2, 9)) && !cap.covers(Version::new(5, 3, 0)));
        let cap: VersionCap = "5.2.3".parse().unwrap();
        assert!(cap.covers(Version::new(5, 2, 3)) && !cap.covers(Version::new(5, 2, 4)));
        for s in ["5.x", "5.2.x", "5.2.3"] {
            assert_eq!(alloc::format!("{}", s.parse::<VersionCap>().unwrap()), s);
        }
    }
}
