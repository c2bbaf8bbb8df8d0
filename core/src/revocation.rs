//! Signed revocation lists: revoked license ids and key ids, with a sequence
//! number that only grows and a next-update time after which a list is stale.
//!
//! Ids are sorted and delta-coded as canonical LEB128 varints; decoding
//! yields sorted arrays, so a lookup is a binary search (O(log n)).

use alloc::vec::Vec;

use crate::claims::LicenseId;
use crate::envelope;
use crate::error::{Error, Malformed};
use crate::key::KeyId;
use crate::keyring::Keyring;
use crate::license::RevocationCheck;

/// Format version of revocation lists.
pub const REVOCATION_LIST_VERSION: u8 = 1;
/// Largest accepted revocation list (64 MiB: about four million ids).
pub const MAX_REVOCATION_LIST_LEN: usize = 64 << 20;
/// Domain separation of revocation list signatures.
pub(crate) const REVOCATION_DOMAIN: &[u8] = b"keyseal/revocation-list/v1\0";

/// Where a list stands in the order in which lists replace each other:
/// first the rank of its signer (the start of the signer's window in the
/// keyring that verified it, so a key made later outranks every key made
/// before it), then its sequence. A list replaces the one in force only if
/// its order is not lower. So a leaked key's list, whatever its sequence
/// (`u64::MAX` included), gives way to the first list of any newer key;
/// docs/FORMAT.md gives the argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ListOrder {
    /// The start of the signer's window (unix seconds).
    pub rank: u64,
    /// The list's sequence number.
    pub sequence: u64,
}

/// A verified revocation list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationList {
    signer: KeyId,
    rank: u64,
    sequence: u64,
    issued_at: u64,
    next_update: u64,
    keys: Vec<u64>,
    licenses: Vec<u128>,
    /// For long lists: `buckets[p]` is the index of the first id whose top
    /// 16 bits are at least `p`, so a lookup binary-searches one small bucket
    /// (ids are uniformly random) instead of the whole array. Derived from
    /// `licenses`; empty for short lists.
    buckets: Vec<u32>,
}

/// Lists at least this long get a bucket index.
const BUCKET_INDEX_MIN: usize = 4096;
const BUCKET_BITS: u32 = 16;

/// The bucket index of a sorted id list (see [`RevocationList::buckets`]).
fn bucket_index(ids: &[u128]) -> Vec<u32> {
    if ids.len() < BUCKET_INDEX_MIN || u32::try_from(ids.len()).is_err() {
        return Vec::new();
    }
    let mut buckets = Vec::with_capacity((1 << BUCKET_BITS) + 1);
    let mut i = 0usize;
    for p in 0..=(1u32 << BUCKET_BITS) {
        while i < ids.len() && (ids[i] >> (128 - BUCKET_BITS)) < u128::from(p) {
            i += 1;
        }
        // Fits: ids.len() fits in u32 (checked above).
        buckets.push(i as u32);
    }
    buckets
}

impl RevocationList {
    /// Decodes `bytes` and verifies the signature, which must be an issuing
    /// key of `keyring` (listed or certified; roots never sign lists). The
    /// list must be issued inside that key's window, and may revoke only
    /// keys that do not outrank it (a known key whose window starts later is
    /// [`Error::KeyNotValid`] of the signer): a leaked old key can neither
    /// sign lists after it was retired nor revoke the keys that replace it.
    pub fn verify(bytes: &[u8], keyring: &Keyring) -> Result<Self, Error> {
        let env = envelope::split(bytes, REVOCATION_LIST_VERSION, MAX_REVOCATION_LIST_LEN)?;
        // Structure first (cheap, and a truncated list is reported as such),
        // then the signature, and only then the ids are stored: a forged
        // list must not make the verifier allocate (up to 16 bytes per
        // 1-byte delta, a gigabyte for a 64 MiB list).
        read_body(env.body, None)?;
        let trusted = keyring.list_signer(env.key_id)?;
        let signer = trusted.public_key();
        match keyring.verify_precomputed(signer, &[REVOCATION_DOMAIN, env.signed], &env.signature) {
            Some(verdict) => verdict?,
            None => {
                // A list can be far larger than the stack buffer licenses use.
                let mut msg = Vec::with_capacity(REVOCATION_DOMAIN.len() + env.signed.len());
                msg.extend_from_slice(REVOCATION_DOMAIN);
                msg.extend_from_slice(env.signed);
                signer.verify_strict(&msg, &env.signature)?;
            }
        }
        let mut ids = Ids::default();
        let (sequence, issued_at, next_update) = read_body(env.body, Some(&mut ids))?;
        let rank = trusted.window_start();
        let outranked = ids.keys.iter().any(|k| {
            keyring
                .get(KeyId::from_bytes(k.to_be_bytes()))
                .is_some_and(|revoked| !revoked.is_void() && revoked.window_start() > rank)
        });
        if !trusted.window_covers(issued_at) || outranked {
            return Err(Error::KeyNotValid(env.key_id));
        }
        Ok(RevocationList {
            signer: env.key_id,
            rank,
            sequence,
            issued_at,
            next_update,
            keys: ids.keys,
            buckets: bucket_index(&ids.licenses),
            licenses: ids.licenses,
        })
    }

    /// The key that signed the list.
    #[must_use]
    pub const fn signer(&self) -> KeyId {
        self.signer
    }

    /// Where the list stands among lists (see [`ListOrder`]).
    #[must_use]
    pub const fn order(&self) -> ListOrder {
        ListOrder {
            rank: self.rank,
            sequence: self.sequence,
        }
    }

    /// The sequence number; a newer list of the same signer always has a
    /// higher one.
    #[must_use]
    pub const fn sequence(&self) -> u64 {
        self.sequence
    }

    /// When the list was issued (unix seconds): a vendor-signed lower bound for "now".
    #[must_use]
    pub const fn issued_at(&self) -> u64 {
        self.issued_at
    }

    /// After this time (unix seconds) the list is stale.
    #[must_use]
    pub const fn next_update(&self) -> u64 {
        self.next_update
    }

    /// Whether the list is past its next-update time at `now`.
    #[must_use]
    pub const fn is_stale(&self, now: u64) -> bool {
        now > self.next_update
    }

    /// [`Error::StaleRevocationList`] if the list is stale at `now`.
    pub const fn check_fresh(&self, now: u64) -> Result<(), Error> {
        if self.is_stale(now) {
            return Err(Error::StaleRevocationList {
                next_update: self.next_update,
            });
        }
        Ok(())
    }

    /// [`Error::RolledBackRevocationList`] if this list does not supersede
    /// the newest list `seen` before: its order ([`ListOrder`]: signer
    /// rank, then sequence) is lower. The same list again is fine.
    pub fn check_not_rolled_back(&self, seen: ListOrder) -> Result<(), Error> {
        if self.order() < seen {
            return Err(Error::RolledBackRevocationList {
                sequence: self.sequence,
                seen: seen.sequence,
            });
        }
        Ok(())
    }

    /// [`Error::KeyRevoked`] if this list (the one in force) revokes the
    /// key that signed `next` and that key does not outrank this list's
    /// signer: a key revoked once (a leaked one, say) must not sign the next
    /// list and so un-revoke itself. A key that outranks this list's signer
    /// was not this list's to revoke ([`RevocationList::verify`] refuses a
    /// list revoking a higher-ranked key it knows; one certified only later
    /// is caught here).
    pub fn check_signer_not_revoked(&self, next: &RevocationList) -> Result<(), Error> {
        if self.is_key_revoked(next.signer) && next.rank <= self.rank {
            return Err(Error::KeyRevoked(next.signer));
        }
        Ok(())
    }

    /// Revoked license ids, ascending.
    pub fn revoked_licenses(&self) -> impl ExactSizeIterator<Item = LicenseId> + '_ {
        self.licenses.iter().map(|v| LicenseId::from_u128(*v))
    }

    /// Revoked key ids, ascending.
    pub fn revoked_keys(&self) -> impl ExactSizeIterator<Item = KeyId> + '_ {
        self.keys.iter().map(|v| KeyId::from_bytes(v.to_be_bytes()))
    }
}

impl RevocationCheck for RevocationList {
    fn is_license_revoked(&self, id: LicenseId) -> bool {
        let v = id.to_u128();
        let p = (v >> (128 - BUCKET_BITS)) as usize;
        let ids = match (self.buckets.get(p), self.buckets.get(p + 1)) {
            (Some(&lo), Some(&hi)) => &self.licenses[lo as usize..hi as usize],
            _ => &self.licenses[..],
        };
        ids.binary_search(&v).is_ok()
    }

    fn is_key_revoked(&self, id: KeyId) -> bool {
        self.keys.binary_search(&id.to_u64()).is_ok()
    }
}

/// The revoked ids of a list body.
#[derive(Default)]
struct Ids {
    keys: Vec<u64>,
    licenses: Vec<u128>,
}

/// Checks a list body and returns (sequence, issued at, next update); stores
/// the ids in `ids` if given.
fn read_body(body: &[u8], mut ids: Option<&mut Ids>) -> Result<(u64, u64, u64), Error> {
    let mut r = Reader(body);
    let sequence = r.u64()?;
    let issued_at = r.u64()?;
    let next_update = r.u64()?;
    if next_update < issued_at {
        return Err(Malformed::Field.into());
    }
    r.sorted(
        |v| u64::try_from(v).ok(),
        ids.as_deref_mut().map(|i| &mut i.keys),
    )?;
    r.sorted(Some, ids.map(|i| &mut i.licenses))?;
    if !r.0.is_empty() {
        return Err(Malformed::Encoding.into());
    }
    Ok((sequence, issued_at, next_update))
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    /// A canonical LEB128 varint of at most 128 bits: no over-long forms.
    fn varint(&mut self) -> Result<u128, Error> {
        let mut v: u128 = 0;
        for i in 0..19 {
            let (&b, rest) = self.0.split_first().ok_or(Malformed::Truncated)?;
            self.0 = rest;
            let chunk = u128::from(b & 0x7f);
            let shift = 7 * i;
            if i == 18 && chunk > 0x03 {
                return Err(Malformed::Encoding.into());
            }
            v |= chunk << shift;
            if b & 0x80 == 0 {
                if i > 0 && b == 0 {
                    return Err(Malformed::NonCanonical.into());
                }
                return Ok(v);
            }
        }
        Err(Malformed::Encoding.into())
    }

    fn u64(&mut self) -> Result<u64, Error> {
        u64::try_from(self.varint()?).map_err(|_| Malformed::Encoding.into())
    }

    /// A count, then the first value, then gaps minus one: strictly ascending
    /// by construction. The values go to `out` if given.
    fn sorted<T: Copy>(
        &mut self,
        conv: impl Fn(u128) -> Option<T>,
        mut out: Option<&mut Vec<T>>,
    ) -> Result<(), Error> {
        let n = usize::try_from(self.u64()?).map_err(|_| Malformed::TooLong)?;
        if n > self.0.len() {
            return Err(Malformed::Truncated.into());
        }
        if let Some(out) = out.as_deref_mut() {
            out.reserve_exact(n);
        }
        let mut prev: Option<u128> = None;
        for _ in 0..n {
            let d = self.varint()?;
            let v = match prev {
                None => d,
                Some(p) => p
                    .checked_add(d)
                    .and_then(|x| x.checked_add(1))
                    .ok_or(Malformed::Encoding)?,
            };
            let item = conv(v).ok_or(Malformed::Encoding)?;
            if let Some(out) = out.as_deref_mut() {
                out.push(item);
            }
            prev = Some(v);
        }
        Ok(())
    }
}

#[cfg(feature = "sign")]
pub use builder::RevocationListBuilder;

#[cfg(feature = "sign")]
mod builder {
    use super::*;
    use crate::key::SigningKey;

    /// Builds and signs a revocation list.
    #[derive(Debug, Clone, Default)]
    pub struct RevocationListBuilder {
        sequence: u64,
        issued_at: u64,
        next_update: u64,
        keys: Vec<u64>,
        licenses: Vec<u128>,
    }

    impl RevocationListBuilder {
        /// A list with this sequence number, issued at `issued_at`, stale after `next_update`.
        #[must_use]
        pub fn new(sequence: u64, issued_at: u64, next_update: u64) -> Self {
            RevocationListBuilder {
                sequence,
                issued_at,
                next_update,
                ..Default::default()
            }
        }

        /// Revokes a license.
        pub fn revoke_license(&mut self, id: LicenseId) -> &mut Self {
            self.licenses.push(id.to_u128());
            self
        }

        /// Revokes a signing key: every license it signed is rejected.
        pub fn revoke_key(&mut self, id: KeyId) -> &mut Self {
            self.keys.push(id.to_u64());
            self
        }

        /// Signs the list. Ids are sorted and deduplicated here.
        pub fn sign(&self, key: &SigningKey) -> Result<Vec<u8>, Error> {
            if self.next_update < self.issued_at {
                return Err(Error::InvalidClaims(Malformed::Field));
            }
            let mut body = Vec::with_capacity(32 + self.keys.len() * 9 + self.licenses.len() * 17);
            put(&mut body, self.sequence.into());
            put(&mut body, self.issued_at.into());
            put(&mut body, self.next_update.into());
            put_sorted(
                &mut body,
                self.keys.iter().map(|k| u128::from(*k)).collect(),
            );
            put_sorted(&mut body, self.licenses.clone());
            if body.len() + envelope::OVERHEAD > MAX_REVOCATION_LIST_LEN {
                return Err(Error::InvalidClaims(Malformed::TooLong));
            }
            Ok(envelope::seal(
                key,
                REVOCATION_DOMAIN,
                REVOCATION_LIST_VERSION,
                &body,
                &[],
            ))
        }
    }

    fn put(out: &mut Vec<u8>, mut v: u128) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    fn put_sorted(out: &mut Vec<u8>, mut vs: Vec<u128>) {
        vs.sort_unstable();
        vs.dedup();
        put(out, vs.len() as u128);
        let mut prev = None;
        for v in vs {
            put(out, prev.map_or(v, |p| v - p - 1));
            prev = Some(v);
        }
    }
}

#[cfg(all(test, feature = "sign"))]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::key::SigningKey;
    use crate::keyring::TrustedKey;

    fn setup() -> (SigningKey, Keyring) {
        let key = SigningKey::from_seed(&[9; 32]).unwrap();
        let mut ring = Keyring::new();
        ring.add(TrustedKey::new(key.public_key())).unwrap();
        (key, ring)
    }

    #[test]
    fn round_trip_and_lookup() {
        let (key, ring) = setup();
        let mut b = RevocationListBuilder::new(7, 100, 200);
        for i in [5u128, 1, 1 << 100, 3, 5] {
            b.revoke_license(LicenseId::from_u128(i));
        }
        b.revoke_key(KeyId::from_bytes([1; 8]));
        let bytes = b.sign(&key).unwrap();
        let list = RevocationList::verify(&bytes, &ring).unwrap();
        assert_eq!(list.sequence(), 7);
        assert_eq!(list.revoked_licenses().len(), 4);
        assert!(list.is_license_revoked(LicenseId::from_u128(1 << 100)));
        assert!(!list.is_license_revoked(LicenseId::from_u128(2)));
        assert!(list.is_key_revoked(KeyId::from_bytes([1; 8])));
        assert!(list.is_stale(201) && !list.is_stale(200));
        let at = |rank, sequence| ListOrder { rank, sequence };
        assert!(list.check_not_rolled_back(at(0, 8)).is_err());
        assert!(list.check_not_rolled_back(at(0, 7)).is_ok());
        // A list of a higher-ranked signer wins whatever its sequence.
        assert!(list.check_not_rolled_back(at(1, 0)).is_err());
    }

    /// Keys A (from 100) and B (from 200, so B outranks A).
    fn ranked() -> (SigningKey, SigningKey, Keyring) {
        let a = SigningKey::from_seed(&[11; 32]).unwrap();
        let b = SigningKey::from_seed(&[12; 32]).unwrap();
        let mut ring = Keyring::new();
        ring.add(
            TrustedKey::new(a.public_key())
                .valid_from(100)
                .valid_until(300),
        )
        .unwrap();
        ring.add(TrustedKey::new(b.public_key()).valid_from(200))
            .unwrap();
        (a, b, ring)
    }

    #[test]
    fn a_newer_key_supersedes_a_leaked_key_whatever_its_sequence() {
        let (a, b, ring) = ranked();
        let forged = RevocationListBuilder::new(u64::MAX, 250, 400)
            .sign(&a)
            .unwrap();
        let forged = RevocationList::verify(&forged, &ring).unwrap();
        let mut genuine = RevocationListBuilder::new(5, 260, 400);
        genuine.revoke_key(a.key_id());
        let genuine = RevocationList::verify(&genuine.sign(&b).unwrap(), &ring).unwrap();
        assert_eq!(
            genuine.order(),
            ListOrder {
                rank: 200,
                sequence: 5
            }
        );
        assert_eq!(genuine.check_not_rolled_back(forged.order()), Ok(()));
        assert!(forged.check_not_rolled_back(genuine.order()).is_err());
        // A's list in force cannot keep B out, and B's revocation of A holds.
        assert_eq!(forged.check_signer_not_revoked(&genuine), Ok(()));
        assert_eq!(
            genuine.check_signer_not_revoked(&forged),
            Err(Error::KeyRevoked(a.key_id()))
        );
    }

    #[test]
    fn a_key_cannot_revoke_a_newer_key_nor_sign_outside_its_window() {
        let (a, b, ring) = ranked();
        let mut revokes_b = RevocationListBuilder::new(9, 250, 400);
        revokes_b.revoke_key(b.key_id());
        assert_eq!(
            RevocationList::verify(&revokes_b.sign(&a).unwrap(), &ring),
            Err(Error::KeyNotValid(a.key_id()))
        );
        // B may revoke itself (a vendor's own choice) and A.
        assert!(RevocationList::verify(&revokes_b.sign(&b).unwrap(), &ring).is_ok());
        // A was retired at 300: a list it dates later is refused, and so is
        // one B dates before its window.
        let late = RevocationListBuilder::new(9, 301, 400);
        assert_eq!(
            RevocationList::verify(&late.sign(&a).unwrap(), &ring),
            Err(Error::KeyNotValid(a.key_id()))
        );
        let early = RevocationListBuilder::new(9, 199, 400);
        assert_eq!(
            RevocationList::verify(&early.sign(&b).unwrap(), &ring),
            Err(Error::KeyNotValid(b.key_id()))
        );
    }

    #[test]
    fn a_void_key_outranks_no_one() {
        // Two scopes of key B with no product in common leave it unable to
        // sign anything: a list revoking it is not blocked by its rank.
        let (a, b, mut ring) = ranked();
        ring.add(
            TrustedKey::new(b.public_key())
                .valid_from(200)
                .products(&["one"])
                .unwrap(),
        )
        .unwrap();
        let root = SigningKey::from_seed(&[14; 32]).unwrap();
        ring.add_root(root.public_key()).unwrap();
        let other = crate::keyring::KeyCertificate::sign(
            &root,
            &TrustedKey::new(b.public_key())
                .valid_from(200)
                .products(&["two"])
                .unwrap(),
        );
        ring.add_certificate(&other).unwrap();
        assert!(ring.get(b.key_id()).unwrap().is_void());
        let mut revokes_b = RevocationListBuilder::new(9, 250, 400);
        revokes_b.revoke_key(b.key_id());
        assert!(RevocationList::verify(&revokes_b.sign(&a).unwrap(), &ring).is_ok());
    }

    #[test]
    fn roots_do_not_sign_lists() {
        let root = SigningKey::from_seed(&[13; 32]).unwrap();
        let mut ring = Keyring::new();
        ring.add_root(root.public_key()).unwrap();
        let list = RevocationListBuilder::new(1, 100, 200).sign(&root).unwrap();
        assert_eq!(
            RevocationList::verify(&list, &ring),
            Err(Error::UnknownKey(root.key_id()))
        );
    }

    #[test]
    fn a_revoked_signer_cannot_sign_the_next_list() {
        let (key, mut ring) = setup();
        let leaked = SigningKey::from_seed(&[10; 32]).unwrap();
        ring.add(TrustedKey::new(leaked.public_key())).unwrap();
        let mut b = RevocationListBuilder::new(1, 100, 200);
        b.revoke_key(leaked.key_id());
        let current = RevocationList::verify(&b.sign(&key).unwrap(), &ring).unwrap();
        let next = RevocationListBuilder::new(2, 150, 250);
        let by_leaked = RevocationList::verify(&next.sign(&leaked).unwrap(), &ring).unwrap();
        assert_eq!(
            current.check_signer_not_revoked(&by_leaked),
            Err(Error::KeyRevoked(leaked.key_id()))
        );
        let by_vendor = RevocationList::verify(&next.sign(&key).unwrap(), &ring).unwrap();
        assert_eq!(current.check_signer_not_revoked(&by_vendor), Ok(()));
    }

    #[test]
    fn long_lists_use_the_bucket_index_and_find_every_id() {
        let (key, ring) = setup();
        let mut b = RevocationListBuilder::new(1, 0, 1);
        let mut x = 0x1234_5678_9abc_def0_u128;
        let mut ids = alloc::vec::Vec::new();
        for _ in 0..(BUCKET_INDEX_MIN * 2) {
            x = x
                .wrapping_mul(0x2545_F491_4F6C_DD1D_0000_0000_0000_0001)
                .wrapping_add(0x9E37_79B9);
            ids.push(x);
            b.revoke_license(LicenseId::from_u128(x));
        }
        // Edge buckets: the smallest and largest ids there are.
        for edge in [0, u128::MAX] {
            ids.push(edge);
            b.revoke_license(LicenseId::from_u128(edge));
        }
        let list = RevocationList::verify(&b.sign(&key).unwrap(), &ring).unwrap();
        assert_eq!(list.buckets.len(), (1 << BUCKET_BITS) + 1);
        for id in &ids {
            assert!(list.is_license_revoked(LicenseId::from_u128(*id)));
            assert!(
                !list.is_license_revoked(LicenseId::from_u128(id ^ 1)) || ids.contains(&(id ^ 1))
            );
        }
    }

    #[test]
    fn overlong_varint_rejected() {
        let mut r = Reader(&[0x81, 0x00]);
        assert_eq!(r.varint(), Err(Error::Malformed(Malformed::NonCanonical)));
        let mut r = Reader(&[0xff; 20]);
        assert!(r.varint().is_err());
        let mut r = Reader(&[0x80]);
        assert!(r.varint().is_err());
    }

    #[test]
    fn huge_count_does_not_allocate() {
        // count = 2^60 with nothing behind it.
        let mut r = Reader(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10]);
        let mut out: Vec<u128> = Vec::new();
        assert!(r.sorted(Some, Some(&mut out)).is_err());
        assert_eq!(out.capacity(), 0);
    }
}
