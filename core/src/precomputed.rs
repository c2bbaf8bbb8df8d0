//! Strict Ed25519 verification with precomputed tables, for a verifier that
//! checks many signatures with the same few keys.
//!
//! A signature `(R, S)` on `M` by key `A` is valid when `[S]B - [k]A = R`,
//! with `k = SHA-512(R || A || M)`. ed25519-dalek computes the left side
//! with a double-scalar ladder: about 253 point doublings for every call.
//! Both `B` and `A` are fixed once a keyring is loaded, so their multiples
//! can be computed once instead: a table of `d * 64^i * P` for every
//! 6-bit digit position `i` and digit `d` turns each scalar multiplication
//! into at most 43 point additions and no doublings.
//!
//! The tables cost memory (215 KiB per point) and time to build (about
//! 1,400 point additions per point, some 6 plain verifications' worth), so
//! [`Keyring::precompute`](crate::Keyring::precompute) is a choice for
//! verifiers that live long, such as the SDKs' validators.
//!
//! The arithmetic is variable-time, as ed25519-dalek's verification is:
//! every input (key, message, signature) is public.
//!
//! Same answers as [`PublicKey::verify_strict`], input for input:
//! - `S` must be canonical (`S < L`);
//! - the key is never small-order ([`PublicKey::from_bytes`] refuses those);
//! - `R' = [S]B - [k]A` must compress to exactly the 32 bytes of `R`, and
//!   must not be small-order. ed25519-dalek decompresses `R` and refuses a
//!   small-order `R`; when `R'` compresses to `R`'s bytes, `R` decompresses
//!   to `R'`, so refusing a small-order `R'` refuses the same signatures,
//!   and saves a square root.
//!
//! The conformance vectors and a differential property test run both paths.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::Identity;
use sha2::{Digest, Sha512};

use crate::error::Error;
use crate::key::{PUBLIC_KEY_LEN, PublicKey};

/// Bits per digit.
const WINDOW: usize = 6;
/// Table entries per digit position: multiples 1 to 32 (a signed digit lies
/// in -32..=31, and the sign is applied by negating the point).
const HALF: usize = 1 << (WINDOW - 1);
/// Digit positions: reduced scalars are below 2^253, and 43 * 6 = 258 bits
/// leave room for the final carry of the signed recoding.
const DIGITS: usize = 43;

/// Multiples of one point: `rows[i][j] = (j + 1) * 64^i * P`.
struct Comb {
    rows: Vec<[EdwardsPoint; HALF]>,
}

impl Comb {
    fn new(point: EdwardsPoint) -> Self {
        let mut rows = Vec::with_capacity(DIGITS);
        let mut base = point;
        for _ in 0..DIGITS {
            let mut row = [EdwardsPoint::identity(); HALF];
            let mut acc = base;
            for entry in &mut row {
                *entry = acc;
                acc = add(&acc, &base);
            }
            // The last entry is 32 * base; twice that is the next position's.
            let top = row[HALF - 1];
            base = add(&top, &top);
            rows.push(row);
        }
        Comb { rows }
    }

    /// `acc += scalar * P`.
    fn add_multiple(&self, scalar: &Scalar, acc: &mut EdwardsPoint) {
        for (row, digit) in self.rows.iter().zip(recode(&scalar.to_bytes())) {
            let magnitude = usize::from(digit.unsigned_abs());
            if magnitude == 0 {
                continue;
            }
            // magnitude is 1..=32: the mask changes nothing and spares a
            // bounds check.
            let entry = &row[(magnitude - 1) & (HALF - 1)];
            *acc = if digit > 0 {
                add(acc, entry)
            } else {
                add(acc, &-entry)
            };
        }
    }
}

/// The one point addition the tables use: a single copy of the curve
/// arithmetic in the code (it counts in the WebAssembly package's size).
#[inline(never)]
fn add(a: &EdwardsPoint, b: &EdwardsPoint) -> EdwardsPoint {
    a + b
}

/// Signed radix-64 digits of a reduced scalar (little-endian bytes, value
/// below 2^253): `sum(d[i] * 64^i)` with every `d[i]` in -32..=31.
fn recode(bytes: &[u8; 32]) -> [i8; DIGITS] {
    let mut digits = [0i8; DIGITS];
    let mut carry = 0u8;
    for (i, d) in digits.iter_mut().enumerate() {
        let bit = i * WINDOW;
        let lo = bytes.get(bit / 8).copied().unwrap_or(0);
        let hi = bytes.get(bit / 8 + 1).copied().unwrap_or(0);
        let pair = u16::from_le_bytes([lo, hi]);
        let window = ((pair >> (bit % 8)) & (2 * HALF as u16 - 1)) as u8 + carry;
        // window is 0..=64; 32 and up become negative with a carry.
        carry = u8::from(usize::from(window) >= HALF);
        *d = (window as i8) - ((carry as i8) << WINDOW);
    }
    // The top position holds bits 252..258; below 2^253 that is at most 1,
    // plus a carry of 1: no carry out.
    debug_assert_eq!(carry, 0);
    digits
}

/// The basepoint's table, shared by every key of a keyring.
#[derive(Clone)]
pub(crate) struct BaseTable(Arc<Comb>);

impl BaseTable {
    pub(crate) fn new() -> Self {
        BaseTable(Arc::new(Comb::new(ED25519_BASEPOINT_POINT)))
    }
}

/// A public key with its table (of `-A`, so verification only adds).
#[derive(Clone)]
pub(crate) struct KeyTable {
    key: [u8; PUBLIC_KEY_LEN],
    minus_a: Arc<Comb>,
}

impl KeyTable {
    pub(crate) fn new(key: &PublicKey) -> Self {
        KeyTable {
            key: key.to_bytes(),
            minus_a: Arc::new(Comb::new(-key.point())),
        }
    }

    pub(crate) fn is_for(&self, key: &PublicKey) -> bool {
        self.key == key.to_bytes()
    }

    /// Strict verification of the concatenation of `parts`.
    pub(crate) fn verify_strict(
        &self,
        base: &BaseTable,
        parts: &[&[u8]],
        signature: &[u8; 64],
    ) -> Result<(), Error> {
        let (r, s) = signature.split_at(32);
        let mut s_bytes = [0u8; 32];
        s_bytes.copy_from_slice(s);
        let s: Option<Scalar> = Scalar::from_canonical_bytes(s_bytes).into();
        let s = s.ok_or(Error::BadSignature)?;
        let mut h = Sha512::new().chain_update(r).chain_update(self.key);
        for part in parts {
            h.update(part);
        }
        let k = Scalar::from_bytes_mod_order_wide(&h.finalize().into());
        let mut expected_r = EdwardsPoint::identity();
        self.minus_a.add_multiple(&k, &mut expected_r);
        base.0.add_multiple(&s, &mut expected_r);
        if expected_r.compress().as_bytes() != r || expected_r.is_small_order() {
            return Err(Error::BadSignature);
        }
        Ok(())
    }
}

/// One public key with its tables and the basepoint's: strict verification
/// of any message, the same answers as [`PublicKey::verify_strict`] gives.
///
/// A keyring shares one basepoint table among its keys; see
/// [`Keyring::precompute`](crate::Keyring::precompute), which is what the
/// SDKs use. Building one costs about as much as 12 plain verifications.
#[derive(Clone)]
pub struct PrecomputedKey {
    base: BaseTable,
    table: KeyTable,
}

impl PrecomputedKey {
    /// Builds the tables for `key`.
    #[must_use]
    pub fn new(key: &PublicKey) -> Self {
        PrecomputedKey {
            base: BaseTable::new(),
            table: KeyTable::new(key),
        }
    }

    /// Strict Ed25519 verification of `message`; see [`PublicKey::verify_strict`].
    pub fn verify_strict(&self, message: &[u8], signature: &[u8; 64]) -> Result<(), Error> {
        self.table.verify_strict(&self.base, &[message], signature)
    }
}

impl fmt::Debug for PrecomputedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PrecomputedKey")
            .field(&crate::key::KeyId::derive(&self.table.key))
            .finish()
    }
}

/// The tables a keyring has built; see [`Keyring::precompute`](crate::Keyring::precompute).
#[derive(Clone, Default)]
pub(crate) struct Tables {
    pub(crate) base: Option<BaseTable>,
    pub(crate) keys: Vec<KeyTable>,
    /// Whether keys added to the keyring get a table.
    pub(crate) grow: bool,
}

impl Tables {
    pub(crate) const fn new() -> Self {
        Tables {
            base: None,
            keys: Vec::new(),
            grow: false,
        }
    }

    /// The table for `key`, if built.
    pub(crate) fn find(&self, key: &PublicKey) -> Option<(&BaseTable, &KeyTable)> {
        let base = self.base.as_ref()?;
        self.keys.iter().find(|t| t.is_for(key)).map(|t| (base, t))
    }

    /// Builds `key`'s table unless it has one (and the basepoint's, with
    /// the first key).
    pub(crate) fn add(&mut self, key: &PublicKey) {
        if self.base.is_none() {
            self.base = Some(BaseTable::new());
        }
        if !self.keys.iter().any(|t| t.is_for(key)) {
            self.keys.push(KeyTable::new(key));
        }
    }
}

/// A cache: two keyrings that trust the same keys are equal whether or not
/// either has built its tables.
impl PartialEq for Tables {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Tables {}

impl fmt::Debug for Tables {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tables")
            .field("keys", &self.keys.len())
            .field("basepoint", &self.base.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(digits: &[i8; DIGITS]) -> Scalar {
        let mut sum = Scalar::ZERO;
        let mut weight = Scalar::ONE;
        for &d in digits {
            let m = Scalar::from(u64::from(d.unsigned_abs()));
            sum = if d < 0 {
                sum - weight * m
            } else {
                sum + weight * m
            };
            weight *= Scalar::from(64u64);
        }
        sum
    }

    #[test]
    fn recoding_gives_back_the_scalar_with_digits_in_range() {
        let minus_one = -Scalar::ONE;
        let mut all_ones_below_l = [0xffu8; 32];
        all_ones_below_l[31] = 0x0f;
        let edge = [
            Scalar::ZERO,
            Scalar::ONE,
            minus_one,
            Scalar::from(31u64),
            Scalar::from(32u64),
            Scalar::from(63u64),
            Scalar::from(64u64),
            Scalar::from_bytes_mod_order(all_ones_below_l),
        ];
        let mut x = Scalar::from(0x0123_4567_89ab_cdefu64);
        let random = (0..500).map(|_| {
            x = x * x + Scalar::from(7u64);
            x
        });
        for s in edge.into_iter().chain(random) {
            let digits = recode(&s.to_bytes());
            assert!(digits.iter().all(|d| (-32..=31).contains(d)), "{digits:?}");
            assert_eq!(value(&digits), s);
        }
    }

    #[test]
    fn a_table_multiplies_like_the_ladder() {
        let comb = Comb::new(ED25519_BASEPOINT_POINT);
        let mut x = Scalar::from(3u64);
        for _ in 0..50 {
            x = x * x + Scalar::from(11u64);
            let mut acc = EdwardsPoint::identity();
            comb.add_multiple(&x, &mut acc);
            assert_eq!(acc, EdwardsPoint::mul_base(&x));
        }
        let mut acc = EdwardsPoint::identity();
        comb.add_multiple(&-Scalar::ONE, &mut acc);
        assert_eq!(acc, -ED25519_BASEPOINT_POINT);
    }
}
