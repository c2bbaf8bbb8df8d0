//! Device fingerprints and how a license binds to one.
//!
//! A fingerprint is a list of component hashes (one per hardware or OS id),
//! each already salted with the product id, so the same machine has unrelated
//! fingerprints for unrelated products. Licenses then carry only hashes of
//! these salted again with the license id: nothing in a key identifies a device.

use core::fmt;
use core::str::FromStr;

use sha2::{Digest, Sha512};

use crate::claims::{
    COMPONENT_DIGEST_LEN, ComponentDigests, DEVICE_HINT_LEN, DeviceBinding, LicenseId,
    MAX_DEVICE_COMPONENTS,
};
use crate::error::{Error, Malformed};
use crate::text;

/// Length of one fingerprint component in bytes.
pub const COMPONENT_LEN: usize = 16;
/// Prefix of a fingerprint's text form.
pub const FINGERPRINT_PREFIX: &str = "ksfp1.";
/// Length of the binding hash an exact device binding appends to the signed message.
pub const BINDING_HASH_LEN: usize = 32;

const COMPONENT_DOMAIN: &[u8] = b"keyseal/fingerprint-component/v1\0";
const BINDING_DOMAIN: &[u8] = b"keyseal/device-binding/v1\0";
const DIGEST_DOMAIN: &[u8] = b"keyseal/device-component/v1\0";

/// A device fingerprint: 1 to 8 salted component hashes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint {
    components: [[u8; COMPONENT_LEN]; MAX_DEVICE_COMPONENTS],
    len: usize,
}

impl Fingerprint {
    /// A fingerprint from 1 to [`MAX_DEVICE_COMPONENTS`] components.
    pub fn from_components(components: &[[u8; COMPONENT_LEN]]) -> Result<Self, Error> {
        if components.is_empty() || components.len() > MAX_DEVICE_COMPONENTS {
            return Err(Malformed::Fingerprint.into());
        }
        let mut fp = Fingerprint {
            components: [[0; COMPONENT_LEN]; MAX_DEVICE_COMPONENTS],
            len: components.len(),
        };
        fp.components[..components.len()].copy_from_slice(components);
        Ok(fp)
    }

    /// Hashes one raw machine id (for example `/etc/machine-id`) into a
    /// component, salted with the product id and the id's `kind` (a short
    /// label such as `machine-id`): SHA-512(domain || len(product) || product
    /// || len(kind) || kind || raw)\[..16\], with lengths as 8-byte big-endian integers.
    #[must_use]
    pub fn component(product: &str, kind: &str, raw: &[u8]) -> [u8; COMPONENT_LEN] {
        let digest = Sha512::new()
            .chain_update(COMPONENT_DOMAIN)
            .chain_update((product.len() as u64).to_be_bytes())
            .chain_update(product.as_bytes())
            .chain_update((kind.len() as u64).to_be_bytes())
            .chain_update(kind.as_bytes())
            .chain_update(raw)
            .finalize();
        let mut out = [0u8; COMPONENT_LEN];
        out.copy_from_slice(&digest[..COMPONENT_LEN]);
        out
    }

    /// The components.
    #[must_use]
    pub fn components(&self) -> &[[u8; COMPONENT_LEN]] {
        &self.components[..self.len]
    }

    /// The binding hash and hint of an exact binding of this fingerprint to
    /// `license_id`: SHA-512(domain || license id || count || components);
    /// hash = bytes 0..32, hint = bytes 32..34.
    #[must_use]
    pub fn exact_binding(
        &self,
        license_id: &LicenseId,
    ) -> ([u8; BINDING_HASH_LEN], [u8; DEVICE_HINT_LEN]) {
        let mut h = Sha512::new()
            .chain_update(BINDING_DOMAIN)
            .chain_update(license_id.to_bytes())
            .chain_update([self.len as u8]);
        for c in self.components() {
            h.update(c);
        }
        let d = h.finalize();
        let mut hash = [0u8; BINDING_HASH_LEN];
        hash.copy_from_slice(&d[..BINDING_HASH_LEN]);
        let mut hint = [0u8; DEVICE_HINT_LEN];
        hint.copy_from_slice(&d[BINDING_HASH_LEN..BINDING_HASH_LEN + DEVICE_HINT_LEN]);
        (hash, hint)
    }

    /// Salted digest of one component for a tolerant binding:
    /// SHA-512(domain || license id || component)\[..6\].
    #[must_use]
    pub fn component_digest(
        license_id: &LicenseId,
        component: &[u8; COMPONENT_LEN],
    ) -> [u8; COMPONENT_DIGEST_LEN] {
        let d = Sha512::new()
            .chain_update(DIGEST_DOMAIN)
            .chain_update(license_id.to_bytes())
            .chain_update(component)
            .finalize();
        let mut out = [0u8; COMPONENT_DIGEST_LEN];
        out.copy_from_slice(&d[..COMPONENT_DIGEST_LEN]);
        out
    }

    /// How many of `digests` this fingerprint matches, each digest at most once.
    #[must_use]
    pub fn count_matches(&self, license_id: &LicenseId, digests: &ComponentDigests) -> usize {
        let mut used = [false; MAX_DEVICE_COMPONENTS];
        let mut matches = 0;
        for c in self.components() {
            let d = Self::component_digest(license_id, c);
            if let Some(i) = digests
                .as_slice()
                .iter()
                .enumerate()
                .position(|(i, x)| !used[i] && *x == d)
            {
                used[i] = true;
                matches += 1;
            }
        }
        matches
    }

    /// The binding an issuer puts in a license for this fingerprint.
    pub fn binding(
        &self,
        license_id: &LicenseId,
        rule: DeviceRule,
    ) -> Result<DeviceBinding, Error> {
        Ok(match rule {
            DeviceRule::Exact => DeviceBinding::Exact {
                hint: self.exact_binding(license_id).1,
            },
            DeviceRule::AtLeast(required) => {
                if required == 0 || usize::from(required) > self.len {
                    return Err(Error::InvalidClaims(Malformed::Field));
                }
                let mut digests = ComponentDigests::new();
                for c in self.components() {
                    // Cannot fail: at most MAX_DEVICE_COMPONENTS components.
                    let _ = digests.push(Self::component_digest(license_id, c));
                }
                DeviceBinding::Tolerant { required, digests }
            }
        })
    }
}

/// How strictly an issued license binds to the fingerprint it was issued for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceRule {
    /// Every component must match (signature covers the fingerprint hash).
    Exact,
    /// At least this many components must match (k of n).
    AtLeast(u8),
}

impl fmt::Display for Fingerprint {
    /// `ksfp1.` followed by the components in unpadded base64url.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(FINGERPRINT_PREFIX)?;
        let mut flat = [0u8; COMPONENT_LEN * MAX_DEVICE_COMPONENTS];
        for (dst, c) in flat.chunks_exact_mut(COMPONENT_LEN).zip(self.components()) {
            dst.copy_from_slice(c);
        }
        text::write_b64(f, &flat[..self.len * COMPONENT_LEN])
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

impl FromStr for Fingerprint {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let mut buf = [0u8; COMPONENT_LEN * MAX_DEVICE_COMPONENTS];
        let bytes = text::decode_prefixed(FINGERPRINT_PREFIX, s, &mut buf)
            .map_err(|_| Malformed::Fingerprint)?;
        if bytes.is_empty() || bytes.len() % COMPONENT_LEN != 0 {
            return Err(Malformed::Fingerprint.into());
        }
        let mut comps = [[0u8; COMPONENT_LEN]; MAX_DEVICE_COMPONENTS];
        for (dst, src) in comps.iter_mut().zip(bytes.chunks_exact(COMPONENT_LEN)) {
            dst.copy_from_slice(src);
        }
        Fingerprint::from_components(&comps[..bytes.len() / COMPONENT_LEN])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(n: u8) -> Fingerprint {
        let comps: alloc::vec::Vec<_> = (0..n)
            .map(|i| Fingerprint::component("p", "k", &[i]))
            .collect();
        Fingerprint::from_components(&comps).unwrap()
    }

    #[test]
    fn text_round_trip() {
        let f = fp(3);
        let s = alloc::format!("{f}");
        assert_eq!(s.parse::<Fingerprint>().unwrap(), f);
        assert!("ksfp1.".parse::<Fingerprint>().is_err());
        assert!("ksfp1.AAAA".parse::<Fingerprint>().is_err());
    }

    #[test]
    fn component_is_salted_by_product() {
        assert_ne!(
            Fingerprint::component("a", "k", b"id"),
            Fingerprint::component("b", "k", b"id")
        );
    }

    #[test]
    fn k_of_n_counts_each_digest_once() {
        let id = LicenseId::from_bytes([7; 16]);
        let f = fp(4);
        let DeviceBinding::Tolerant { digests, .. } =
            f.binding(&id, DeviceRule::AtLeast(3)).unwrap()
        else {
            panic!()
        };
        assert_eq!(f.count_matches(&id, &digests), 4);
        let mut comps = f.components().to_vec();
        comps[0] = [0xAA; 16];
        let one_changed = Fingerprint::from_components(&comps).unwrap();
        assert_eq!(one_changed.count_matches(&id, &digests), 3);
        let dup = Fingerprint::from_components(&[f.components()[1]; 4]).unwrap();
        assert_eq!(dup.count_matches(&id, &digests), 1);
        assert!(f.binding(&id, DeviceRule::AtLeast(5)).is_err());
    }
}
