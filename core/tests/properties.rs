//! Property tests of the license format as a whole: any valid claims survive
//! issue, text form, decode and verify unchanged; any tampering with the
//! binary or the text form is refused (and never panics).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use keyseal_core::claims::{
    Entitlements, Extensions, MAX_CUSTOMER_LEN, MAX_DEVICE_COMPONENTS, MAX_ENTITLEMENTS,
    MAX_EXTENSIONS, MAX_NAME_LEN,
};
use keyseal_core::device::COMPONENT_LEN;
use keyseal_core::license::{self, MAX_LICENSE_LEN};
use keyseal_core::{
    Claims, DeviceRule, Error, Expectations, Fingerprint, Keyring, LicenseId, SigningKey, Status,
    TrustedKey, UnverifiedLicense, VersionCap,
};
use proptest::prelude::*;
use proptest::sample::Index;

/// Cases per property: enough to reach every part of a license many times,
/// few enough for a debug build to run the file in seconds.
const CASES: u32 = 256;

const B64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static KEY: LazyLock<SigningKey> = LazyLock::new(|| SigningKey::from_seed(&[0x5e; 32]).unwrap());

fn keyring() -> Keyring {
    let mut ring = Keyring::new();
    ring.add(TrustedKey::new(KEY.public_key())).unwrap();
    ring
}

/// Owned inputs of one license; [`Spec::claims`] borrows them as claims.
#[derive(Debug, Clone)]
struct Spec {
    license_id: [u8; 16],
    product: String,
    customer: String,
    plan: String,
    issued_at: u64,
    not_before: Option<u64>,
    expires_at: Option<u64>,
    grace_secs: u32,
    entitlements: Vec<String>,
    extensions: Vec<(String, String)>,
    max_version: Option<VersionCap>,
    device: Option<(Vec<[u8; COMPONENT_LEN]>, DeviceRule)>,
    /// Where in the license's validity window to verify it.
    now_pick: u64,
}

impl Spec {
    /// The claims given to the issuer (no device binding: the issuer adds it).
    fn claims(&self) -> Claims<'_> {
        let mut c = Claims::new(
            LicenseId::from_bytes(self.license_id),
            &self.product,
            &self.customer,
            &self.plan,
            self.issued_at,
        );
        c.not_before = self.not_before;
        c.expires_at = self.expires_at;
        c.grace_secs = self.grace_secs;
        let names: Vec<&str> = self.entitlements.iter().map(String::as_str).collect();
        c.entitlements = Entitlements::from_slice(&names).unwrap();
        let fields: Vec<(&str, &str)> = self
            .extensions
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        c.extensions = Extensions::from_slice(&fields).unwrap();
        c.max_version = self.max_version;
        c
    }

    fn fingerprint(&self) -> Option<(Fingerprint, DeviceRule)> {
        self.device
            .as_ref()
            .map(|(components, rule)| (Fingerprint::from_components(components).unwrap(), *rule))
    }

    /// The claims a verifier must give back: the issued ones plus the binding.
    fn expected_claims(&self) -> Claims<'_> {
        let mut c = self.claims();
        if let Some((fp, rule)) = self.fingerprint() {
            c.device = Some(fp.binding(&c.license_id, rule).unwrap());
        }
        c
    }

    fn issue(&self) -> Vec<u8> {
        let fp = self.fingerprint();
        license::issue(
            &KEY,
            &self.claims(),
            fp.as_ref().map(|(fp, rule)| (fp, *rule)),
        )
        .unwrap()
    }

    /// A time inside the validity window, grace included.
    fn now(&self) -> u64 {
        let lo = self.not_before.unwrap_or(0);
        let hi = self
            .expires_at
            .map_or(u64::MAX, |e| e.saturating_add(u64::from(self.grace_secs)));
        let span = u128::from(hi - lo) + 1;
        lo + (u128::from(self.now_pick) % span) as u64
    }

    fn expected_status(&self, now: u64) -> Status {
        match self.expires_at {
            Some(e) if self.grace_secs > 0 && now > e => Status::InGrace {
                grace_ends: e.saturating_add(u64::from(self.grace_secs)),
            },
            _ => Status::Active,
        }
    }
}

/// Decodes and verifies `bytes` under the expectations `spec` was issued
/// for, returning the verified claims' license id on success.
fn verify_bytes(spec: &Spec, bytes: &[u8]) -> Result<LicenseId, Error> {
    let fp = spec.fingerprint().map(|(fp, _)| fp);
    let mut exp = Expectations::new(&spec.product, spec.now());
    if let Some(fp) = &fp {
        exp = exp.device(fp);
    }
    let verified = UnverifiedLicense::from_bytes(bytes)?.verify(&keyring(), &exp)?;
    Ok(verified.claims().license_id)
}

/// Same as [`verify_bytes`], starting from the text form.
fn verify_text(spec: &Spec, text: &str) -> Result<LicenseId, Error> {
    let mut buf = [0u8; MAX_LICENSE_LEN];
    let bytes = license::decode_text(text, &mut buf)?;
    verify_bytes(spec, bytes)
}

fn name(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[A-Za-z0-9._:-]{{1,{max}}}")).unwrap()
}

fn version_cap() -> impl Strategy<Value = VersionCap> {
    prop_oneof![
        any::<u16>().prop_map(VersionCap::Major),
        any::<(u16, u16)>().prop_map(|(a, b)| VersionCap::Minor(a, b)),
        any::<(u16, u16, u16)>().prop_map(|(a, b, c)| VersionCap::Patch(a, b, c)),
    ]
}

/// Not-before and expiry, each optional; when both are set, not-before < expiry.
fn window() -> impl Strategy<Value = (Option<u64>, Option<u64>)> {
    prop_oneof![
        Just((None, None)),
        any::<u64>().prop_map(|nb| (Some(nb), None)),
        any::<u64>().prop_map(|exp| (None, Some(exp))),
        (any::<u64>(), any::<u64>()).prop_map(|(a, b)| {
            let b = if a == b { a.wrapping_add(1) } else { b };
            (Some(a.min(b)), Some(a.max(b)))
        }),
    ]
}

fn device() -> impl Strategy<Value = (Vec<[u8; COMPONENT_LEN]>, DeviceRule)> {
    proptest::collection::vec(any::<[u8; COMPONENT_LEN]>(), 1..=MAX_DEVICE_COMPONENTS)
        .prop_flat_map(|components| {
            let n = components.len() as u8;
            let rule = prop_oneof![
                Just(DeviceRule::Exact),
                (1..=n).prop_map(DeviceRule::AtLeast)
            ];
            (Just(components), rule)
        })
}

fn spec() -> impl Strategy<Value = Spec> {
    let names = (
        name(MAX_NAME_LEN),
        name(MAX_CUSTOMER_LEN),
        name(MAX_NAME_LEN),
    );
    let times = (any::<u64>(), window(), any::<u32>(), any::<u64>());
    let lists = (
        proptest::collection::btree_set(name(MAX_NAME_LEN), 0..=MAX_ENTITLEMENTS),
        proptest::collection::btree_map(name(MAX_NAME_LEN), "[ -~]{0,64}", 0..=MAX_EXTENSIONS),
    );
    let rest = (
        any::<[u8; 16]>(),
        proptest::option::of(version_cap()),
        proptest::option::of(device()),
    );
    (names, times, lists, rest).prop_map(
        |(
            (product, customer, plan),
            (issued_at, (not_before, expires_at), grace_secs, now_pick),
            (entitlements, extensions),
            (license_id, max_version, device),
        ): (_, _, (BTreeSet<String>, BTreeMap<String, String>), _)| Spec {
            license_id,
            product,
            customer,
            plan,
            issued_at,
            not_before,
            expires_at,
            grace_secs,
            entitlements: entitlements.into_iter().collect(),
            extensions: extensions.into_iter().collect(),
            max_version,
            device,
            now_pick,
        },
    )
}

/// Issues the license of `spec` and checks that it verifies as issued, so
/// that a rejection of a tampered copy is due to the tampering alone.
fn issue_verified(spec: &Spec) -> Result<Vec<u8>, TestCaseError> {
    let bytes = spec.issue();
    let result = verify_bytes(spec, &bytes);
    prop_assert_eq!(result, Ok(LicenseId::from_bytes(spec.license_id)));
    Ok(bytes)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn valid_claims_round_trip(spec in spec()) {
        let bytes = spec.issue();
        let text = license::to_text(&bytes);
        prop_assert!(text.starts_with(license::LICENSE_PREFIX));

        let mut buf = [0u8; MAX_LICENSE_LEN];
        let decoded = license::decode_text(&text, &mut buf).unwrap();
        prop_assert_eq!(decoded, &bytes[..]);
        let unverified = UnverifiedLicense::from_bytes(decoded).unwrap();
        prop_assert_eq!(unverified.key_id(), KEY.key_id());
        let expected = spec.expected_claims();
        prop_assert_eq!(unverified.dangerous_unverified_claims(), &expected);

        let fp = spec.fingerprint().map(|(fp, _)| fp);
        let now = spec.now();
        let mut exp = Expectations::new(&spec.product, now);
        if let Some(fp) = &fp {
            exp = exp.device(fp);
        }
        let verified = unverified.verify(&keyring(), &exp).unwrap();
        prop_assert_eq!(verified.claims(), &expected);
        prop_assert_eq!(verified.key_id(), KEY.key_id());
        prop_assert_eq!(verified.status(), spec.expected_status(now));
        for e in &spec.entitlements {
            prop_assert!(verified.has_entitlement(e));
        }
    }

    /// Single bit flips anywhere, truncation to any shorter length and
    /// trailing bytes, all on one issued license (issuing dominates the cost).
    #[test]
    fn binary_tampering_is_rejected(
        spec in spec(),
        flips in proptest::collection::vec((any::<Index>(), 0..8u8), 1..=2),
        cut in any::<Index>(),
        extra in proptest::collection::vec(any::<u8>(), 1..=80),
    ) {
        let bytes = issue_verified(&spec)?;
        for (at, bit) in &flips {
            let mut tampered = bytes.clone();
            let i = at.index(tampered.len());
            tampered[i] ^= 1 << bit;
            let result = verify_bytes(&spec, &tampered);
            prop_assert!(result.is_err(), "flipping bit {} of byte {} verified: {:?}", bit, i, result);
        }

        let len = cut.index(bytes.len());
        let result = verify_bytes(&spec, &bytes[..len]);
        prop_assert!(result.is_err(), "truncated to {} bytes verified: {:?}", len, result);

        let mut longer = bytes.clone();
        longer.extend_from_slice(&extra);
        let result = verify_bytes(&spec, &longer);
        prop_assert!(result.is_err(), "{} trailing bytes verified: {:?}", extra.len(), result);
    }

    /// The same for the text form: any character changed to another
    /// base64url character, truncation, and appended characters (base64url,
    /// any printable Unicode, whitespace and padding).
    #[test]
    fn text_tampering_is_rejected(
        spec in spec(),
        changes in proptest::collection::vec((any::<Index>(), any::<Index>()), 1..=2),
        cut in any::<Index>(),
        extra in prop_oneof!["[A-Za-z0-9_-]{1,8}", "\\PC{1,8}", "[ \t\r\n=.]{1,4}"],
    ) {
        let bytes = issue_verified(&spec)?;
        let text = license::to_text(&bytes);
        for (at, to) in &changes {
            let mut chars = text.clone().into_bytes();
            let i = at.index(chars.len());
            let mut c = *to.get(B64URL);
            if c == chars[i] {
                c = B64URL[(to.index(B64URL.len()) + 1) % B64URL.len()];
            }
            chars[i] = c;
            let tampered = String::from_utf8(chars).unwrap();
            prop_assert_ne!(&tampered, &text);
            let result = verify_text(&spec, &tampered);
            prop_assert!(result.is_err(), "changing character {} to {:?} verified: {:?}", i, c as char, result);
        }

        let len = cut.index(text.len());
        let result = verify_text(&spec, &text[..len]);
        prop_assert!(result.is_err(), "truncated to {} characters verified: {:?}", len, result);

        let longer = text.clone() + &extra;
        let result = verify_text(&spec, &longer);
        prop_assert!(result.is_err(), "appending {:?} verified: {:?}", extra, result);
    }
}
