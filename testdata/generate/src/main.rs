//! Writes the shared test vectors in `testdata/vectors/` from fixed seeds.
//!
//! Usage: `cargo run -p keyseal-testdata -- [OUT_DIR]` (default `testdata/vectors`).
//! CI runs it into a scratch directory and fails on any difference from the
//! committed files. Every SDK reads the same files; see `testdata/README.md`.

// A developer tool run by CI: any failure must stop it loudly.
#![allow(clippy::panic)]

use std::path::PathBuf;

use keyseal_core::claims::{ComponentDigests, Entitlements, Extensions};
use keyseal_core::keyring::KeyCertificate;
use keyseal_core::revocation::RevocationListBuilder;
use keyseal_core::{
    AllotmentTerms, Claims, DeviceBinding, DeviceRule, Fingerprint, LeaseTerms, LicenseId, SeatId,
    SigningKey, TrustedKey, VersionCap, allotment, lease, license,
};
use keyseal_testdata::{claims_json, hex};
use serde_json::{Value, json};
use sha2::{Digest, Sha512};

/// The time most cases are checked at.
const NOW: u64 = 1_800_000_000;
const PRODUCT: &str = "acme-cad";
/// Key A signs licenses issued in [A_FROM, A_UNTIL]; key B took over at B_FROM.
const A_FROM: u64 = 1_790_000_000;
const A_UNTIL: u64 = 1_797_000_000;
const B_FROM: u64 = 1_794_000_000;

fn seed(label: &str) -> [u8; 32] {
    let d = Sha512::new()
        .chain_update(b"keyseal test vectors\0")
        .chain_update(label)
        .finalize();
    let mut s = [0u8; 32];
    s.copy_from_slice(&d[..32]);
    s
}

fn key(label: &str) -> SigningKey {
    // A weak key from a hashed seed is impossible in practice; fail loudly if so.
    SigningKey::from_seed(&seed(label)).unwrap_or_else(|e| panic!("seed {label}: {e}"))
}

fn license_id(label: &str) -> LicenseId {
    let mut id = [0u8; 16];
    id.copy_from_slice(&seed(label)[..16]);
    LicenseId::from_bytes(id)
}

fn fingerprint(label: &str, n: u8) -> Fingerprint {
    let comps: Vec<_> = (0..n)
        .map(|i| Fingerprint::component(PRODUCT, "test", format!("{label}-{i}").as_bytes()))
        .collect();
    Fingerprint::from_components(&comps).unwrap_or_else(|e| panic!("{e}"))
}

fn reference_claims(id: LicenseId) -> Claims<'static> {
    let mut c = Claims::new(id, PRODUCT, "cus_8f3a2b", "pro", 1_795_000_000);
    c.expires_at = Some(1_826_536_000);
    c.entitlements =
        Entitlements::from_slice(&["cloud-sync", "export-pdf", "plugins"]).unwrap_or_default();
    c.max_version = Some(VersionCap::Major(5));
    c
}

struct Ctx {
    a: SigningKey,
    b: SigningKey,
    stranger: SigningKey,
    root: SigningKey,
    d: SigningKey,
    keyring: String,
    root_keyring: String,
}

impl Ctx {
    fn new() -> Self {
        let a = key("key-a");
        let b = key("key-b");
        let root = key("root");
        let d = key("key-d");
        let keyring = format!(
            "# test keyring: key A retired at {A_UNTIL}, key B current\nkey {} from={A_FROM} until={A_UNTIL}\nkey {} from={B_FROM}\n",
            a.public_key(),
            b.public_key()
        );
        let cert = KeyCertificate::sign(
            &root,
            &TrustedKey::new(d.public_key())
                .valid_from(A_FROM)
                .products(&[PRODUCT])
                .unwrap_or_else(|e| panic!("{e}")),
        );
        let root_keyring = format!("root {}\ncert kscert1.{}\n", root.public_key(), b64(&cert));
        Ctx {
            a,
            b,
            stranger: key("stranger"),
            root,
            d,
            keyring,
            root_keyring,
        }
    }
}

fn b64(bytes: &[u8]) -> String {
    // The license text form minus its prefix is exactly unpadded base64url.
    license::to_text(bytes)
        .trim_start_matches(license::LICENSE_PREFIX)
        .to_owned()
}

/// One license case with default expectations; tweak the returned JSON.
fn case(name: &str, key_text: String, keyring: &str) -> Value {
    json!({
        "name": name,
        "key": key_text,
        "keyring": keyring,
        "now": NOW,
        "product": PRODUCT,
        "app_version": "5.2.0",
        "device": null,
        "leeway": 0,
        "revocation_list_hex": null,
    })
}

fn valid(mut c: Value, claims: &Claims<'_>, status: &str, grace_ends: Option<u64>) -> Value {
    c["expect"] = json!({"valid": true, "status": status, "grace_ends": grace_ends, "claims": claims_json(claims)});
    c
}

fn invalid(mut c: Value, code: &str) -> Value {
    c["expect"] = json!({"valid": false, "error": code});
    c
}

fn issue(key: &SigningKey, c: &Claims<'_>, device: Option<(&Fingerprint, DeviceRule)>) -> Vec<u8> {
    license::issue(key, c, device).unwrap_or_else(|e| panic!("issue: {e}"))
}

/// Signs an arbitrary license body as the format says, for cases the issuer refuses to make.
fn sign_raw_license(key: &SigningKey, version: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![version];
    out.extend_from_slice(&key.key_id().to_bytes());
    out.extend_from_slice(body);
    let mut msg = b"keyseal/license/v1\0".to_vec();
    msg.extend_from_slice(&out);
    let sig = key.sign_raw(&msg);
    out.extend_from_slice(&sig);
    out
}

fn license_cases(x: &Ctx) -> Vec<Value> {
    let mut cases = Vec::new();
    let kr = x.keyring.as_str();
    let fp = fingerprint("laptop", 1);
    let fp_text = fp.to_string();

    // Valid.
    let id = license_id("reference");
    let reference = issue(&x.b, &reference_claims(id), Some((&fp, DeviceRule::Exact)));
    let mut expected = reference_claims(id);
    expected.device = Some(DeviceBinding::Exact { hint: [0, 0] });
    let mut c = case("valid_reference", license::to_text(&reference), kr);
    c["device"] = json!(fp_text);
    cases.push(valid(c, &expected, "active", None));

    let mut c = case(
        "valid_reference_armored_file",
        license::to_armored(&reference),
        kr,
    );
    c["device"] = json!(fp_text);
    cases.push(valid(c, &expected, "active", None));

    let minimal = Claims::new(
        license_id("minimal"),
        PRODUCT,
        "cus_1",
        "free",
        1_799_000_000,
    );
    cases.push(valid(
        case(
            "valid_perpetual_minimal",
            license::to_text(&issue(&x.b, &minimal, None)),
            kr,
        ),
        &minimal,
        "active",
        None,
    ));

    let mut full = reference_claims(license_id("full"));
    full.not_before = Some(1_799_500_000);
    full.grace_secs = 86_400;
    full.max_version = Some(VersionCap::Minor(5, 2));
    full.extensions =
        Extensions::from_slice(&[("region", "eu"), ("seats", "5")]).unwrap_or_default();
    let full_key = issue(&x.b, &full, None);
    cases.push(valid(
        case(
            "valid_with_not_before_grace_and_extensions",
            license::to_text(&full_key),
            kr,
        ),
        &full,
        "active",
        None,
    ));

    // Extension text a binding must carry through untouched: a key that is
    // special to JavaScript objects, and a value with quotes and a backslash.
    let mut awkward = reference_claims(license_id("awkward"));
    awkward.extensions = Extensions::from_slice(&[
        ("__proto__", "polluted?"),
        ("constructor", "x"),
        ("note", r#"say "hi" \ back"#),
    ])
    .unwrap_or_default();
    cases.push(valid(
        case(
            "valid_with_awkward_extension_text",
            license::to_text(&issue(&x.b, &awkward, None)),
            kr,
        ),
        &awkward,
        "active",
        None,
    ));

    let mut graced = reference_claims(license_id("graced"));
    graced.expires_at = Some(NOW - 86_400);
    graced.grace_secs = 14 * 86_400;
    cases.push(valid(
        case(
            "valid_in_grace",
            license::to_text(&issue(&x.b, &graced, None)),
            kr,
        ),
        &graced,
        "in_grace",
        Some(NOW - 86_400 + 14 * 86_400),
    ));

    // Expiry at 2^64 - 1 with grace and leeway: the sums saturate, so it
    // never expires (FORMAT.md, step 11). Compared exactly in every runner
    // (in JavaScript, past 2^53, the SDK may show it rounded).
    let mut forever = reference_claims(license_id("u64-max"));
    forever.expires_at = Some(u64::MAX);
    forever.grace_secs = 14 * 86_400;
    let mut c = case(
        "valid_expires_at_u64_max_with_grace_and_leeway",
        license::to_text(&issue(&x.b, &forever, None)),
        kr,
    );
    c["leeway"] = json!(300);
    cases.push(valid(c, &forever, "active", None));

    let mut just_expired = reference_claims(license_id("leeway"));
    just_expired.expires_at = Some(NOW - 100);
    let mut c = case(
        "valid_expired_within_leeway",
        license::to_text(&issue(&x.b, &just_expired, None)),
        kr,
    );
    c["leeway"] = json!(300);
    cases.push(valid(c, &just_expired, "active", None));

    let mut old = reference_claims(license_id("old-key"));
    old.issued_at = A_FROM + 1000;
    cases.push(valid(
        case(
            "valid_signed_by_retired_key_inside_its_window",
            license::to_text(&issue(&x.a, &old, None)),
            kr,
        ),
        &old,
        "active",
        None,
    ));

    let tol_fp = fingerprint("desktop", 4);
    let tol_id = license_id("tolerant");
    let tol_key = issue(
        &x.b,
        &reference_claims(tol_id),
        Some((&tol_fp, DeviceRule::AtLeast(3))),
    );
    let mut tol_claims = reference_claims(tol_id);
    tol_claims.device = Some(DeviceBinding::Tolerant {
        required: 3,
        digests: ComponentDigests::from_slice(&[[0; 6]; 4]).unwrap_or_default(),
    });
    let mut comps = tol_fp.components().to_vec();
    comps[2] = Fingerprint::component(PRODUCT, "test", b"new-disk");
    let one_changed = Fingerprint::from_components(&comps).unwrap_or_else(|e| panic!("{e}"));
    let mut c = case(
        "valid_tolerant_device_one_component_changed",
        license::to_text(&tol_key),
        kr,
    );
    c["device"] = json!(one_changed.to_string());
    cases.push(valid(c, &tol_claims, "active", None));

    let cert_claims = reference_claims(license_id("certified"));
    let cert_key = issue(&x.d, &cert_claims, None);
    cases.push(valid(
        case(
            "valid_certified_key_under_root",
            license::to_text(&cert_key),
            &x.root_keyring,
        ),
        &cert_claims,
        "active",
        None,
    ));

    // A patch cap: covers up to and including that patch.
    let mut patch = reference_claims(license_id("patch-cap"));
    patch.max_version = Some(VersionCap::Patch(5, 2, 3));
    let patch_key = license::to_text(&issue(&x.b, &patch, None));
    let mut c = case("valid_version_cap_patch", patch_key.clone(), kr);
    c["app_version"] = json!("5.2.3");
    cases.push(valid(c, &patch, "active", None));
    let mut c = case("version_not_covered_patch", patch_key, kr);
    c["app_version"] = json!("5.2.4");
    cases.push(invalid(c, "version_not_covered"));

    // Malformed and unsupported.
    let text = license::to_text(&reference);
    let mut c = case(
        "unsupported_version_text_prefix_01",
        text.replacen("ks1.", "ks01.", 1),
        kr,
    );
    c["device"] = json!(fp_text);
    cases.push(invalid(c, "unsupported_version"));
    let mut c = case("malformed_bad_prefix", text.replacen("ks1.", "kx1.", 1), kr);
    c["device"] = json!(fp_text);
    cases.push(invalid(c, "malformed"));
    cases.push(invalid(
        case("malformed_padding", format!("{text}="), kr),
        "malformed",
    ));
    cases.push(invalid(
        case(
            "malformed_whitespace_inside",
            format!("{} {}", &text[..40], &text[40..]),
            kr,
        ),
        "malformed",
    ));
    cases.push(invalid(
        case("malformed_empty", String::new(), kr),
        "malformed",
    ));
    // Flip the unused low bits of the last character of a key whose length is
    // not a multiple of 3 bytes: same bytes under a lenient decoder, refused by a strict one.
    let minimal_key = issue(&x.b, &minimal, None);
    assert_ne!(
        minimal_key.len() % 3,
        0,
        "pick a key with a partial last base64 group"
    );
    let mut nc = license::to_text(&minimal_key).into_bytes();
    let last = nc.len() - 1;
    nc[last] = noncanonical_b64_char(nc[last]);
    cases.push(invalid(
        case(
            "malformed_non_canonical_base64",
            String::from_utf8(nc).unwrap_or_default(),
            kr,
        ),
        "malformed",
    ));
    cases.push(invalid(
        case(
            "malformed_truncated",
            license::to_text(&reference[..reference.len() - 1]),
            kr,
        ),
        "malformed",
    ));
    cases.push(invalid(
        case(
            "malformed_header_only",
            license::to_text(&reference[..9]),
            kr,
        ),
        "malformed",
    ));
    let mut trailing = reference.clone();
    trailing.push(0);
    cases.push(invalid(
        case("malformed_trailing_byte", license::to_text(&trailing), kr),
        "malformed",
    ));

    // A validly signed body whose issued_at varint is over-long: only the
    // canonical re-encoding check catches it.
    let mut buf = [0u8; 256];
    let body = minimal
        .encode(&mut buf)
        .unwrap_or_else(|e| panic!("{e}"))
        .to_vec();
    let at = 16 + 9 + 6 + 5; // id, "acme-cad", "cus_1", "free" (length-prefixed)
    let mut long = body[..at].to_vec();
    let varint_len = body[at..].iter().position(|b| b & 0x80 == 0).unwrap_or(0) + 1;
    long.extend_from_slice(&body[at..at + varint_len]);
    let lastv = long.len() - 1;
    long[lastv] |= 0x80;
    long.push(0);
    long.extend_from_slice(&body[at + varint_len..]);
    cases.push(invalid(
        case(
            "malformed_non_canonical_varint",
            license::to_text(&sign_raw_license(&x.b, 1, &long)),
            kr,
        ),
        "malformed",
    ));

    cases.push(invalid(
        case(
            "unsupported_version_text_prefix",
            text.replacen("ks1.", "ks2.", 1),
            kr,
        ),
        "unsupported_version",
    ));
    cases.push(invalid(
        case(
            "unsupported_version_binary",
            license::to_text(&sign_raw_license(&x.b, 2, &body)),
            kr,
        ),
        "unsupported_version",
    ));

    // Signatures and keys.
    let mut flipped = reference.clone();
    let n = flipped.len();
    flipped[n - 10] ^= 0x01;
    let mut c = case(
        "bad_signature_flipped_bit_in_signature",
        license::to_text(&flipped),
        kr,
    );
    c["device"] = json!(fp_text);
    cases.push(invalid(c, "bad_signature"));
    let mut tampered = issue(&x.b, &minimal, None);
    let plan_at = 1 + 8 + 16 + 9 + 6 + 1; // "free" -> "frea"
    tampered[plan_at + 3] = b'a';
    cases.push(invalid(
        case(
            "bad_signature_tampered_plan",
            license::to_text(&tampered),
            kr,
        ),
        "bad_signature",
    ));
    cases.push(invalid(
        case(
            "unknown_key",
            license::to_text(&issue(&x.stranger, &minimal, None)),
            kr,
        ),
        "unknown_key",
    ));
    let mut late = reference_claims(license_id("late"));
    late.issued_at = A_UNTIL + 1;
    cases.push(invalid(
        case(
            "key_not_valid_issued_after_key_retired",
            license::to_text(&issue(&x.a, &late, None)),
            kr,
        ),
        "key_not_valid",
    ));
    let mut other = reference_claims(license_id("other-product"));
    other.product = "acme-viewer";
    let mut c = case(
        "key_not_valid_product_outside_certificate_scope",
        license::to_text(&issue(&x.d, &other, None)),
        &x.root_keyring,
    );
    c["product"] = json!("acme-viewer");
    cases.push(invalid(c, "key_not_valid"));
    // A key trusted twice is trusted for the narrower of the two, in either
    // order: a plain key line after the certificate cannot widen its scope.
    let mut c = case(
        "key_not_valid_key_line_cannot_widen_a_certificate",
        license::to_text(&issue(&x.d, &other, None)),
        &format!("{}key {}\n", x.root_keyring, x.d.public_key()),
    );
    c["product"] = json!("acme-viewer");
    cases.push(invalid(c, "key_not_valid"));
    let mut c = case(
        "key_not_valid_certificate_narrows_an_earlier_key_line",
        license::to_text(&issue(&x.d, &other, None)),
        &format!("key {}\n{}", x.d.public_key(), x.root_keyring),
    );
    c["product"] = json!("acme-viewer");
    cases.push(invalid(c, "key_not_valid"));
    // Times past 2^53 compare exactly: a key window starting at 2^53 + 1
    // does not hold a license issued at 2^53 (as doubles they are equal).
    let mut far = Claims::new(license_id("past-2-53"), PRODUCT, "cus_1", "free", 1 << 53);
    far.expires_at = None;
    cases.push(invalid(
        case(
            "key_not_valid_issued_at_past_2_53",
            license::to_text(&issue(&x.b, &far, None)),
            &format!("key {} from={}\n", x.b.public_key(), (1u64 << 53) + 1),
        ),
        "key_not_valid",
    ));
    // A certificate's window bounds the issued-at of what the key signs.
    let mut early = reference_claims(license_id("before-certificate"));
    early.issued_at = A_FROM - 1;
    early.expires_at = None;
    cases.push(invalid(
        case(
            "key_not_valid_issued_before_certificate_window",
            license::to_text(&issue(&x.d, &early, None)),
            &x.root_keyring,
        ),
        "key_not_valid",
    ));
    // A certificate whose version byte is 2 (its signature then fails too,
    // but the version is read first): unsupported_version, not malformed or
    // bad_signature (FORMAT.md, "Device fingerprints and binding").
    let mut cert_v2 = KeyCertificate::sign(
        &x.root,
        &TrustedKey::new(x.d.public_key())
            .valid_from(A_FROM)
            .products(&[PRODUCT])
            .unwrap_or_else(|e| panic!("{e}")),
    );
    cert_v2[0] = 2;
    cases.push(invalid(
        case(
            "unsupported_version_certificate_version_2",
            license::to_text(&issue(&x.d, &cert_claims, None)),
            &format!(
                "root {}\ncert kscert1.{}\n",
                x.root.public_key(),
                b64(&cert_v2)
            ),
        ),
        "unsupported_version",
    ));
    // Two scopes with no product in common: the key signs nothing.
    cases.push(invalid(
        case(
            "key_not_valid_scopes_share_no_product",
            license::to_text(&issue(&x.d, &cert_claims, None)),
            &format!(
                "{}key {} products=acme-viewer\n",
                x.root_keyring,
                x.d.public_key()
            ),
        ),
        "key_not_valid",
    ));
    // A root signs licenses only if it is also an issuing key.
    cases.push(valid(
        case(
            "valid_root_also_listed_as_issuing_key",
            license::to_text(&issue(&x.root, &minimal, None)),
            &format!("{}key {}\n", x.root_keyring, x.root.public_key()),
        ),
        &minimal,
        "active",
        None,
    ));
    // At most 16 issuing keys: a seventeenth is keyring_full.
    let fillers: String = (0..15)
        .map(|i| format!("key {}\n", key(&format!("filler-{i}")).public_key()))
        .collect();
    cases.push(invalid(
        case(
            "keyring_full_seventeen_keys",
            license::to_text(&issue(&x.b, &minimal, None)),
            &format!("{fillers}{kr}"),
        ),
        "keyring_full",
    ));
    cases.push(invalid(
        case(
            "keyring_full_a_certified_key_is_the_seventeenth",
            license::to_text(&issue(&x.d, &cert_claims, None)),
            &format!("{fillers}key {}\n{}", x.b.public_key(), x.root_keyring),
        ),
        "keyring_full",
    ));
    // Step 6 looks at the license's own product: a scoped key's license for
    // another product is key_not_valid, not wrong_product.
    cases.push(invalid(
        case(
            "key_not_valid_before_wrong_product",
            license::to_text(&issue(&x.d, &other, None)),
            &x.root_keyring,
        ),
        "key_not_valid",
    ));
    // `until` before `from`: accepted, and the key signs nothing.
    cases.push(invalid(
        case(
            "key_not_valid_until_before_from",
            license::to_text(&issue(&x.b, &minimal, None)),
            &format!(
                "key {} from=1800000000 until=1700000000\n",
                x.b.public_key()
            ),
        ),
        "key_not_valid",
    ));
    // A repeated option counts once (the last); `#` ends a line anywhere;
    // tokens split on tabs too.
    cases.push(valid(
        case(
            "valid_keyring_comment_mid_line_tab_and_repeated_option",
            license::to_text(&issue(&x.b, &minimal, None)),
            &format!(
                "key {}\tfrom=1799000001 from={B_FROM} # from=1799000001\n",
                x.b.public_key()
            ),
        ),
        &minimal,
        "active",
        None,
    ));
    cases.push(invalid(
        case(
            "malformed_keyring_public_key_prefix_kspub2",
            license::to_text(&issue(&x.b, &minimal, None)),
            &format!(
                "key {}\n",
                x.b.public_key()
                    .to_string()
                    .replacen("kspub1.", "kspub2.", 1)
            ),
        ),
        "malformed",
    ));
    cases.push(invalid(
        case(
            "malformed_keyring_unknown_option",
            license::to_text(&issue(&x.b, &minimal, None)),
            &format!("key {} since=1\n", x.b.public_key()),
        ),
        "malformed",
    ));
    cases.push(invalid(
        case(
            "malformed_keyring_time_with_a_leading_zero",
            license::to_text(&issue(&x.b, &minimal, None)),
            &format!("key {} from=0{B_FROM}\n", x.b.public_key()),
        ),
        "malformed",
    ));
    let mut c = case(
        "unknown_key_root_is_not_an_issuing_key",
        license::to_text(&issue(&x.root, &minimal, None)),
        &x.root_keyring,
    );
    c["product"] = json!(PRODUCT);
    cases.push(invalid(c, "unknown_key"));

    // Time.
    let mut expired = reference_claims(license_id("expired"));
    expired.expires_at = Some(NOW - 1000);
    let mut c = case(
        "expired",
        license::to_text(&issue(&x.b, &expired, None)),
        kr,
    );
    c["leeway"] = json!(300);
    cases.push(invalid(c, "expired"));
    let mut past_grace = reference_claims(license_id("past-grace"));
    past_grace.expires_at = Some(NOW - 20 * 86_400);
    past_grace.grace_secs = 14 * 86_400;
    cases.push(invalid(
        case(
            "expired_after_grace",
            license::to_text(&issue(&x.b, &past_grace, None)),
            kr,
        ),
        "expired",
    ));
    let mut early = reference_claims(license_id("early"));
    early.not_before = Some(NOW + 3600);
    cases.push(invalid(
        case(
            "not_yet_valid",
            license::to_text(&issue(&x.b, &early, None)),
            kr,
        ),
        "not_yet_valid",
    ));

    // Product, device, version.
    let mut c = case(
        "wrong_product",
        license::to_text(&issue(&x.b, &minimal, None)),
        kr,
    );
    c["product"] = json!("acme-viewer");
    cases.push(invalid(c, "wrong_product"));
    let mut c = case("wrong_device_other_fingerprint", text.clone(), kr);
    c["device"] = json!(fingerprint("other-laptop", 1).to_string());
    cases.push(invalid(c, "wrong_device"));
    cases.push(invalid(
        case("wrong_device_no_fingerprint_given", text.clone(), kr),
        "wrong_device",
    ));
    let mut comps = tol_fp.components().to_vec();
    comps[0] = Fingerprint::component(PRODUCT, "test", b"new-board");
    comps[1] = Fingerprint::component(PRODUCT, "test", b"new-nic");
    let mut c = case(
        "wrong_device_tolerant_two_components_changed",
        license::to_text(&tol_key),
        kr,
    );
    c["device"] = json!(
        Fingerprint::from_components(&comps)
            .unwrap_or_else(|e| panic!("{e}"))
            .to_string()
    );
    cases.push(invalid(c, "wrong_device"));
    let mut c = case(
        "version_not_covered",
        license::to_text(&issue(&x.b, &reference_claims(license_id("v6")), None)),
        kr,
    );
    c["app_version"] = json!("6.0.0");
    cases.push(invalid(c, "version_not_covered"));

    // Revocation.
    let revoked_id = license_id("revoked");
    let mut rl = RevocationListBuilder::new(3, NOW - 3600, NOW + 7 * 86_400);
    rl.revoke_license(revoked_id)
        .revoke_license(license_id("someone-else"))
        .revoke_key(x.a.key_id());
    let rl = rl.sign(&x.b).unwrap_or_else(|e| panic!("{e}"));
    let mut c = case(
        "revoked",
        license::to_text(&issue(&x.b, &reference_claims(revoked_id), None)),
        kr,
    );
    c["revocation_list_hex"] = json!(hex(&rl));
    cases.push(invalid(c, "revoked"));
    let mut c = case(
        "key_revoked",
        license::to_text(&issue(&x.a, &old, None)),
        kr,
    );
    c["revocation_list_hex"] = json!(hex(&rl));
    cases.push(invalid(c, "key_revoked"));
    let mut c = case(
        "valid_not_on_revocation_list",
        license::to_text(&issue(&x.b, &minimal, None)),
        kr,
    );
    c["revocation_list_hex"] = json!(hex(&rl));
    cases.push(valid(c, &minimal, "active", None));
    // A list given with a license is verified first: its error is the verdict.
    let mut flipped = rl.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    let mut c = case(
        "bad_signature_of_the_revocation_list",
        license::to_text(&issue(&x.b, &minimal, None)),
        kr,
    );
    c["revocation_list_hex"] = json!(hex(&flipped));
    cases.push(invalid(c, "bad_signature"));

    // The app version's grammar: a build or pre-release suffix is ignored.
    let mut c = case(
        "valid_app_version_with_build_suffix",
        license::to_text(&reference),
        kr,
    );
    c["device"] = json!(fp_text);
    c["app_version"] = json!("5.2.0+build.7");
    cases.push(valid(c, &expected, "active", None));

    // An unparsable app version or fingerprint text is malformed.
    let mut c = case("malformed_app_version", license::to_text(&reference), kr);
    c["device"] = json!(fp_text);
    c["app_version"] = json!("5.02");
    cases.push(invalid(c, "malformed"));
    let mut c = case(
        "malformed_device_fingerprint",
        license::to_text(&reference),
        kr,
    );
    c["device"] = json!("ksfp1.AAAA");
    cases.push(invalid(c, "malformed"));

    // The version byte before the length; a text longer than the maximum is
    // malformed whatever its version byte.
    let mut short = vec![2u8];
    short.extend_from_slice(&x.b.key_id().to_bytes());
    short.push(0);
    cases.push(invalid(
        case(
            "unsupported_version_short_binary",
            format!("ks1.{}", b64(&short)),
            kr,
        ),
        "unsupported_version",
    ));
    let mut long = vec![2u8];
    long.extend_from_slice(&[0u8; 2185]);
    cases.push(invalid(
        case(
            "malformed_too_long_with_version_2",
            format!("ks1.{}", b64(&long)),
            kr,
        ),
        "malformed",
    ));

    // Integer widths: a value past its field's width is malformed, even in
    // a well-formed varint of at most that many bytes.
    let body = {
        let bytes = issue(&x.b, &minimal, None);
        bytes[9..bytes.len() - 64].to_vec()
    };
    // license id, product, customer, plan: then issued at.
    let at = 16 + 3 + PRODUCT.len() + minimal.customer.len() + minimal.plan.len(); // three one-byte lengths
    let issued_len = body[at..]
        .iter()
        .position(|b| b & 0x80 == 0)
        .map_or(0, |p| p + 1);
    let grace_at = at + issued_len + 2;
    assert_eq!(body[grace_at], 0, "minimal's grace is 0");
    let mut grace = body[..grace_at].to_vec();
    grace.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x10]); // 2^32
    grace.extend_from_slice(&body[grace_at + 1..]);
    cases.push(invalid(
        case(
            "malformed_grace_past_u32",
            license::to_text(&sign_raw_license(&x.b, 1, &grace)),
            kr,
        ),
        "malformed",
    ));
    let mut issued = body[..at].to_vec();
    issued.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02]); // 2^64
    issued.extend_from_slice(&body[at + issued_len..]);
    cases.push(invalid(
        case(
            "malformed_issued_at_past_u64",
            license::to_text(&sign_raw_license(&x.b, 1, &issued)),
            kr,
        ),
        "malformed",
    ));

    cases
}

/// A base64url character with the same top 4 bits but a non-zero low 2 bits.
fn noncanonical_b64_char(c: u8) -> u8 {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let v = ALPHABET.iter().position(|&a| a == c).unwrap_or(0);
    ALPHABET[(v & !3) | 1]
}

fn revocation_cases(x: &Ctx) -> Vec<Value> {
    let kr = x.keyring.as_str();
    let mut b = RevocationListBuilder::new(10, NOW - 3600, NOW + 86_400);
    b.revoke_license(license_id("revoked"))
        .revoke_license(license_id("r2"))
        .revoke_key(x.a.key_id());
    let good = b.sign(&x.b).unwrap_or_else(|e| panic!("{e}"));
    // `seen`: the sequence of an earlier list of key B (rank B_FROM).
    let list = |name: &str, bytes: &[u8], keyring: &str, now: u64, seen: u64| json!({"name": name, "list_hex": hex(bytes), "keyring": keyring, "now": now, "seen_rank": if seen > 0 { B_FROM } else { 0 }, "seen_sequence": seen});
    let ok = |mut c: Value| {
        let mut revoked = vec![
            license_id("revoked").to_string(),
            license_id("r2").to_string(),
        ];
        revoked.sort();
        c["expect"] = json!({
            "valid": true, "sequence": 10, "issued_at": NOW - 3600, "next_update": NOW + 86_400,
            "revoked_licenses": revoked, "revoked_keys": [x.a.key_id().to_string()],
        });
        c
    };
    let bad = |mut c: Value, code: &str| {
        c["expect"] = json!({"valid": false, "error": code});
        c
    };
    let mut flipped = good.clone();
    let n = flipped.len();
    flipped[n - 5] ^= 0x40;
    let mut trailing = good.clone();
    trailing.push(0);
    let stranger = b.sign(&x.stranger).unwrap_or_else(|e| panic!("{e}"));
    let root_signed = b.sign(&x.root).unwrap_or_else(|e| panic!("{e}"));
    let certified = b.sign(&x.d).unwrap_or_else(|e| panic!("{e}"));
    let empty = RevocationListBuilder::new(1, NOW, NOW + 60)
        .sign(&x.b)
        .unwrap_or_else(|e| panic!("{e}"));
    let certified_ok = ok(list(
        "valid_signed_by_certified_key",
        &certified,
        &x.root_keyring,
        NOW,
        0,
    ));
    let mut empty_ok = list("valid_empty", &empty, kr, NOW, 0);
    empty_ok["expect"] = json!({"valid": true, "sequence": 1, "issued_at": NOW, "next_update": NOW + 60, "revoked_licenses": [], "revoked_keys": []});
    vec![
        ok(list("valid", &good, kr, NOW, 9)),
        ok(list("valid_same_sequence_again", &good, kr, NOW, 10)),
        certified_ok,
        empty_ok,
        bad(
            list("stale_revocation_list", &good, kr, NOW + 86_401, 0),
            "stale_revocation_list",
        ),
        bad(
            list("rolled_back_revocation_list", &good, kr, NOW, 11),
            "rolled_back_revocation_list",
        ),
        bad(list("bad_signature", &flipped, kr, NOW, 0), "bad_signature"),
        bad(list("unknown_key", &stranger, kr, NOW, 0), "unknown_key"),
        bad(
            list(
                "unknown_key_root_does_not_sign_lists",
                &root_signed,
                &x.root_keyring,
                NOW,
                0,
            ),
            "unknown_key",
        ),
        bad(
            list(
                "unknown_key_uncertified_key_when_roots_pinned",
                &good,
                &x.root_keyring,
                NOW,
                0,
            ),
            "unknown_key",
        ),
        bad(
            list("malformed_trailing_byte", &trailing, kr, NOW, 0),
            "malformed",
        ),
        bad(
            list("malformed_truncated", &good[..good.len() - 1], kr, NOW, 0),
            "malformed",
        ),
        bad(
            list(
                "unsupported_version",
                &[&[2u8][..], &good[1..]].concat(),
                kr,
                NOW,
                0,
            ),
            "unsupported_version",
        ),
        // The version byte before the length.
        bad(
            list(
                "unsupported_version_short",
                &[&[2u8][..], &x.b.key_id().to_bytes()[..]].concat(),
                kr,
                NOW,
                0,
            ),
            "unsupported_version",
        ),
        // Stale only after its next update; rolled back before stale.
        ok(list("valid_at_its_next_update", &good, kr, NOW + 86_400, 0)),
        bad(
            list(
                "rolled_back_revocation_list_also_stale",
                &good,
                kr,
                NOW + 86_401,
                11,
            ),
            "rolled_back_revocation_list",
        ),
        // Bodies the builder refuses to make, signed as the format says.
        bad(
            list(
                "malformed_next_update_before_issued_at",
                &sign_raw_list(
                    &x.b,
                    &[
                        varint(1),
                        varint(NOW),
                        varint(NOW - 1),
                        varint(0),
                        varint(0),
                    ]
                    .concat(),
                ),
                kr,
                NOW,
                0,
            ),
            "malformed",
        ),
        bad(
            list(
                "malformed_license_id_past_128_bits",
                &sign_raw_list(
                    &x.b,
                    &[
                        varint(1),
                        varint(NOW),
                        varint(NOW + 60),
                        varint(0),
                        varint(2),
                        varint_u128(u128::MAX),
                        varint(0),
                    ]
                    .concat(),
                ),
                kr,
                NOW,
                0,
            ),
            "malformed",
        ),
        bad(
            list(
                "malformed_key_id_past_64_bits",
                &sign_raw_list(
                    &x.b,
                    &[
                        varint(1),
                        varint(NOW),
                        varint(NOW + 60),
                        varint(2),
                        varint(u64::MAX),
                        varint(0),
                        varint(0),
                    ]
                    .concat(),
                ),
                kr,
                NOW,
                0,
            ),
            "malformed",
        ),
    ]
}

/// Signs an arbitrary list body as the format says, for cases the builder
/// refuses to make.
fn sign_raw_list(key: &SigningKey, body: &[u8]) -> Vec<u8> {
    let mut out = vec![1u8];
    out.extend_from_slice(&key.key_id().to_bytes());
    out.extend_from_slice(body);
    let mut msg = b"keyseal/revocation-list/v1\0".to_vec();
    msg.extend_from_slice(&out);
    let sig = key.sign_raw(&msg);
    out.extend_from_slice(&sig);
    out
}

/// Armored blocks, one after another (a list or license file).
fn armored(blocks: &[(&str, &[u8])]) -> String {
    let mut out = String::new();
    for (label, bytes) in blocks {
        keyseal_core::armor::write_block(&mut out, label, bytes).unwrap_or_else(|e| panic!("{e}"));
    }
    out
}

fn list_bytes(
    key: &SigningKey,
    (sequence, issued_at, next_update): (u64, u64, u64),
    keys: &[&SigningKey],
    licenses: &[&str],
) -> Vec<u8> {
    let mut b = RevocationListBuilder::new(sequence, issued_at, next_update);
    for k in keys {
        b.revoke_key(k.key_id());
    }
    for l in licenses {
        b.revoke_license(license_id(l));
    }
    b.sign(key).unwrap_or_else(|e| panic!("{e}"))
}

fn certify(root: &SigningKey, key: &SigningKey, from: u64) -> Vec<u8> {
    KeyCertificate::sign(root, &TrustedKey::new(key.public_key()).valid_from(from))
}

/// A license of `key` issued at `issued_at`, expiring at `expires_at`.
fn trust_license(
    key: &SigningKey,
    label: &str,
    issued_at: u64,
    expires_at: Option<u64>,
) -> Vec<u8> {
    let mut c = Claims::new(license_id(label), PRODUCT, "cus_1", "pro", issued_at);
    c.expires_at = expires_at;
    issue(key, &c, None)
}

fn load(now: u64, list: String, expect: Value) -> Value {
    json!({"now": now, "action": "load_list", "list": list, "expect": expect})
}

fn check(now: u64, key: String, expect: Value) -> Value {
    json!({"now": now, "action": "validate", "key": key, "expect": expect})
}

fn loaded(sequence: u64) -> Value {
    json!({"ok": true, "sequence": sequence})
}

fn active(warnings: &[&str]) -> Value {
    json!({"ok": true, "status": "active", "warnings": warnings})
}

fn refused(code: &str) -> Value {
    json!({"ok": false, "error": code})
}

/// Attacks on the trust rules (docs/FORMAT.md, "Who may sign a list" and
/// "Signed times and the app's clock"), each a sequence of steps against one
/// validator with the memory state it keeps across a restart.
fn trust_cases() -> Vec<Value> {
    const WEEK: u64 = 7 * 86_400;
    const YEAR_2100: u64 = 4_102_444_800;
    let old = key("trust-old");
    let new = key("trust-new");
    let plain = format!(
        "key {} from={A_FROM} until={B_FROM}\nkey {} from={B_FROM}\n",
        old.public_key(),
        new.public_key()
    );
    let list_text = |bytes: &[u8]| armored(&[(keyseal_core::armor::REVOCATION_LIST, bytes)]);
    let text = |bytes: &[u8]| license::to_text(bytes);
    let genuine = text(&trust_license(
        &new,
        "genuine",
        NOW - 1000,
        Some(NOW + 30 * 86_400),
    ));
    let soon = text(&trust_license(&new, "soon", NOW - 1000, Some(NOW + 3600)));
    let backdated = text(&trust_license(&old, "backdated", B_FROM - 100, None));
    let frozen = list_bytes(&old, (u64::MAX, B_FROM - 10, NOW + 520 * WEEK), &[], &[]);
    let response = list_bytes(
        &new,
        (5, NOW - 3600, NOW + WEEK),
        &[&old],
        &["leaked-refund"],
    );
    let scenario = |name: &str, keyring: &str, about: &str, steps: Vec<Value>| json!({"name": name, "about": about, "keyring": keyring, "product": PRODUCT, "steps": steps});
    let restart = json!({"action": "restart"});

    let mut out = vec![
        scenario(
            "leaked_key_list_with_max_sequence_gives_way_to_a_newer_key",
            &plain,
            "A retired key leaks and signs a back-dated list with sequence u64::MAX. The vendor's next list, signed by the newer key, supersedes it and revokes the leaked key; the leaked list never comes back, not after a restart either.",
            vec![
                load(NOW, list_text(&frozen), loaded(u64::MAX)),
                load(NOW, list_text(&response), loaded(5)),
                check(NOW, genuine.clone(), active(&[])),
                check(NOW, backdated.clone(), refused("key_revoked")),
                load(
                    NOW,
                    list_text(&frozen),
                    refused("rolled_back_revocation_list"),
                ),
                restart.clone(),
                load(
                    NOW,
                    list_text(&frozen),
                    refused("rolled_back_revocation_list"),
                ),
                load(NOW, list_text(&response), loaded(5)),
                check(NOW, backdated.clone(), refused("key_revoked")),
                check(NOW, genuine.clone(), active(&[])),
            ],
        ),
        scenario(
            "an_older_key_cannot_revoke_a_newer_one",
            &plain,
            "A list signed by the older key that revokes the newer key is refused.",
            vec![load(
                NOW,
                list_text(&list_bytes(
                    &old,
                    (9, B_FROM - 10, NOW + WEEK),
                    &[&new],
                    &[],
                )),
                refused("key_not_valid"),
            )],
        ),
        scenario(
            "a_retired_key_cannot_date_a_list_after_its_window",
            &plain,
            "Key `old` was retired at its window's end; a list it dates later is refused.",
            vec![load(
                NOW,
                list_text(&list_bytes(&old, (9, B_FROM + 1, NOW + WEEK), &[], &[])),
                refused("key_not_valid"),
            )],
        ),
        scenario(
            "same_signer_lower_sequence_is_a_rollback",
            &plain,
            "At equal rank the higher sequence wins; the same list again is fine.",
            vec![
                load(NOW, list_text(&response), loaded(5)),
                load(
                    NOW,
                    list_text(&list_bytes(&new, (4, NOW - 7200, NOW + WEEK), &[], &[])),
                    refused("rolled_back_revocation_list"),
                ),
                load(NOW, list_text(&response), loaded(5)),
                load(
                    NOW,
                    list_text(&list_bytes(&new, (6, NOW - 60, NOW + WEEK), &[], &[])),
                    loaded(6),
                ),
            ],
        ),
        scenario(
            "a_future_dated_license_does_not_expire_other_licenses",
            &plain,
            "A license dated in 2100 by a trusted key (a vendor's wrong clock, a typo, or a leaked key) validates on its own terms but does not move the clock: a license expiring in an hour stays active, also after a restart.",
            vec![
                check(
                    NOW,
                    text(&trust_license(&new, "dated-2100", YEAR_2100, None)),
                    active(&[]),
                ),
                check(NOW, soon.clone(), active(&[])),
                restart.clone(),
                check(NOW, soon.clone(), active(&[])),
            ],
        ),
        scenario(
            "a_future_dated_list_does_not_move_the_clock",
            &plain,
            "A list dated in 2100 is loaded, but its issue time is no evidence of the time.",
            vec![
                load(
                    NOW,
                    list_text(&list_bytes(
                        &new,
                        (7, YEAR_2100, YEAR_2100 + WEEK),
                        &[],
                        &[],
                    )),
                    loaded(7),
                ),
                check(NOW, soon.clone(), active(&[])),
            ],
        ),
        scenario(
            "a_signed_time_one_day_ahead_still_counts",
            &plain,
            "A license issued exactly one day past the clock raises the mark: the clock is then suspect and a license that expires within the day is expired.",
            vec![
                check(
                    NOW,
                    text(&trust_license(&new, "day-ahead", NOW + 86_400, None)),
                    active(&["clock_suspect"]),
                ),
                check(NOW, soon.clone(), refused("expired")),
            ],
        ),
        scenario(
            "a_signed_time_more_than_one_day_ahead_does_not_count",
            &plain,
            "One second more than a day past the clock: no evidence, the mark stays.",
            vec![
                check(
                    NOW,
                    text(&trust_license(&new, "day-and-a-second", NOW + 86_401, None)),
                    active(&[]),
                ),
                check(NOW, soon.clone(), active(&[])),
            ],
        ),
    ];

    // Same-rank keys: a revocation between them holds.
    let (x, y) = (key("trust-x"), key("trust-y"));
    let twins = format!(
        "key {} from={B_FROM}\nkey {} from={B_FROM}\n",
        x.public_key(),
        y.public_key()
    );
    out.push(scenario(
        "a_revoked_key_cannot_sign_the_next_list",
        &twins,
        "Two keys of equal rank: once a list in force revokes one, its lists are refused, whatever their sequence.",
        vec![
            load(NOW, list_text(&list_bytes(&x, (3, NOW - 60, NOW + WEEK), &[&y], &[])), loaded(3)),
            load(NOW, list_text(&list_bytes(&y, (4, NOW - 30, NOW + WEEK), &[], &[])), refused("key_revoked")),
        ],
    ));

    // An app that pins only the root: rotations and a compromise, no app update.
    let root = key("trust-root");
    let k: Vec<SigningKey> = (1..=4).map(|i| key(&format!("trust-k{i}"))).collect();
    let from = [A_FROM, B_FROM, NOW - 30 * 86_400, NOW - 600];
    let cert: Vec<Vec<u8>> = k
        .iter()
        .zip(from)
        .map(|(k, f)| certify(&root, k, f))
        .collect();
    let root_only = format!("root {}\n", root.public_key());
    let list_file = |i: usize, bytes: &[u8]| {
        armored(&[
            (keyseal_core::armor::KEY_CERTIFICATE, &cert[i]),
            (keyseal_core::armor::REVOCATION_LIST, bytes),
        ])
    };
    let license_file = |i: usize, label: &str, issued_at: u64| {
        armored(&[
            (keyseal_core::armor::KEY_CERTIFICATE, &cert[i]),
            (
                keyseal_core::armor::LICENSE,
                &trust_license(&k[i], label, issued_at, Some(NOW + 365 * 86_400)),
            ),
        ])
    };
    let g1 = license_file(0, "root-g1", A_FROM + 100);
    let g2 = license_file(1, "root-g2", B_FROM + 100);
    let g3 = license_file(2, "root-g3", NOW - 20 * 86_400);
    let g4 = license_file(3, "root-g4", NOW - 60);
    let forged_2100 = armored(&[
        (keyseal_core::armor::KEY_CERTIFICATE, &cert[2]),
        (
            keyseal_core::armor::LICENSE,
            &trust_license(&k[2], "forged-2100", YEAR_2100, None),
        ),
    ]);
    let frozen3 = list_file(
        2,
        &list_bytes(&k[2], (u64::MAX, NOW - 100, NOW + 520 * WEEK), &[], &[]),
    );
    out.push(scenario(
        "root_pinned_app_survives_three_rotations_and_a_compromise",
        &root_only,
        "The app pins only the root; keys arrive certified in list and license files. Keys 1 to 4 take over in turn; key 3 leaks, signs a list with sequence u64::MAX and a license dated 2100. Key 4's list revokes key 3: the forged list and license stop working, every genuine license keeps validating.",
        vec![
            load(NOW, list_file(0, &list_bytes(&k[0], (1, B_FROM - 100, NOW + WEEK), &[], &[])), loaded(1)),
            check(NOW, g1.clone(), active(&[])),
            load(NOW, list_file(1, &list_bytes(&k[1], (2, NOW - 40 * 86_400, NOW + WEEK), &[], &[])), loaded(2)),
            load(NOW, list_file(2, &list_bytes(&k[2], (3, NOW - 10 * 86_400, NOW + WEEK), &[], &[])), loaded(3)),
            check(NOW, g2.clone(), active(&[])),
            check(NOW, g3.clone(), active(&[])),
            load(NOW, frozen3.clone(), loaded(u64::MAX)),
            check(NOW, forged_2100.clone(), active(&[])),
            check(NOW, g1.clone(), active(&[])),
            load(NOW, list_file(3, &list_bytes(&k[3], (4, NOW - 300, NOW + WEEK), &[&k[2]], &[])), loaded(4)),
            check(NOW, forged_2100.clone(), refused("key_revoked")),
            check(NOW, g3.clone(), refused("key_revoked")),
            load(NOW, frozen3.clone(), refused("rolled_back_revocation_list")),
            check(NOW, g1.clone(), active(&[])),
            check(NOW, g2.clone(), active(&[])),
            check(NOW, g4.clone(), active(&[])),
            restart.clone(),
            load(NOW, frozen3, refused("rolled_back_revocation_list")),
        ],
    ));
    out.push(scenario(
        "a_newer_key_learned_later_is_not_kept_out_by_an_older_keys_revocation",
        &root_only,
        "Key 1 revokes key 2 before the app knows key 2 (so the list loads); key 2's list, certified in its file, still supersedes it.",
        vec![
            load(NOW, list_file(0, &list_bytes(&k[0], (9, B_FROM - 100, NOW + WEEK), &[&k[1]], &[])), loaded(9)),
            load(NOW, list_file(1, &list_bytes(&k[1], (1, NOW - 60, NOW + WEEK), &[], &[])), loaded(1)),
            check(NOW, g2, active(&[])),
        ],
    ));
    let mut foreign = armored(&[(keyseal_core::armor::KEY_CERTIFICATE, &cert[0])]);
    foreign.push_str(&list_text(&list_bytes(
        &new,
        (2, NOW - 60, NOW + WEEK),
        &[],
        &[],
    )));
    out.push(scenario(
        "certificates_of_a_root_the_app_does_not_pin_are_ignored",
        &plain,
        "A list file carries a key certificate of a root this app does not pin (the vendor serves one file to every app): the certificate is skipped, the list loads.",
        vec![load(NOW, foreign, loaded(2))],
    ));
    out.push(scenario(
        "roots_do_not_sign_lists",
        &root_only,
        "A list signed by the pinned root itself is refused: roots only certify keys.",
        vec![load(
            NOW,
            list_text(&list_bytes(&root, (1, NOW - 60, NOW + WEEK), &[], &[])),
            refused("unknown_key"),
        )],
    ));

    // Keys and license files as people paste them (docs/FORMAT.md, "Text
    // forms"): what an app may clean, and what stays malformed.
    let wrapped = {
        let chars: Vec<char> = genuine.chars().collect();
        let lines: Vec<String> = chars.chunks(60).map(|c| c.iter().collect()).collect();
        format!("\n  {}\r\n", lines.join("\r\n  "))
    };
    let mut tabbed = genuine.clone();
    tabbed.insert(40, '\t');
    let genuine_bytes = trust_license(&new, "genuine", NOW - 1000, Some(NOW + 30 * 86_400));
    let file = license::to_armored(&genuine_bytes);
    let indented = {
        let mut lines: Vec<String> = file.lines().map(|l| format!("  {l}  ")).collect();
        lines.insert(1, String::new());
        lines.join("\n")
    };
    let two = format!("{file}{file}");
    let refunded = trust_license(&new, "pasted-refund", NOW - 1000, Some(NOW + 30 * 86_400));
    let refund_list = list_bytes(&new, (7, NOW - 600, NOW + WEEK), &[], &["pasted-refund"]);
    let with_list = armored(&[
        (keyseal_core::armor::LICENSE, &refunded),
        (keyseal_core::armor::REVOCATION_LIST, &refund_list),
    ]);
    out.push(scenario(
        "pasted_keys_and_license_files",
        &plain,
        "A key wrapped by a mail client (line breaks and indentation) validates; a tab inside a line is malformed. A license file indented with a blank line validates; two LICENSE blocks are malformed. A license file that carries a revocation list naming its own license is revoked: the file's list is loaded first.",
        vec![
            check(NOW, wrapped, active(&[])),
            check(NOW, tabbed, refused("malformed")),
            check(NOW, indented, active(&[])),
            check(NOW, two, refused("malformed")),
            check(NOW, with_list, refused("revoked")),
        ],
    ));
    out
}

fn issue_cases(x: &Ctx) -> Vec<Value> {
    let fp = fingerprint("laptop", 1);
    let id = license_id("reference");
    let reference = issue(&x.b, &reference_claims(id), Some((&fp, DeviceRule::Exact)));
    let minimal = Claims::new(
        license_id("minimal"),
        PRODUCT,
        "cus_1",
        "free",
        1_799_000_000,
    );
    let mut claims = reference_claims(id);
    claims.device = None;
    vec![
        json!({
            "name": "reference_exact_device",
            "seed_hex": hex(&seed("key-b")),
            "claims": claims_json(&claims),
            "device": fp.to_string(),
            "device_rule": "exact",
            "expect_key": license::to_text(&reference),
            "expect_len": license::to_text(&reference).len(),
        }),
        json!({
            "name": "minimal",
            "seed_hex": hex(&seed("key-b")),
            "claims": claims_json(&minimal),
            "device": null,
            "device_rule": null,
            "expect_key": license::to_text(&issue(&x.b, &minimal, None)),
            "expect_len": license::to_text(&issue(&x.b, &minimal, None)).len(),
        }),
    ]
}

/// Lease terms for the lease cases: issued `issued` seconds from NOW,
/// renew and end that many seconds after it.
fn lease_terms(label: &str, issued: i64, renew: u64, end: u64) -> LeaseTerms {
    let issued_at = NOW.saturating_add_signed(issued);
    let mut seat = [0u8; 16];
    seat.copy_from_slice(&seed(&format!("seat {label}"))[..16]);
    LeaseTerms {
        license_id: license_id(label),
        seat_id: SeatId::from_bytes(seat),
        device_hint: [0; 2],
        issued_at,
        renew_at: issued_at + renew,
        expires_at: issued_at + end,
    }
}

fn sign_lease(key: &SigningKey, t: &LeaseTerms, fp: &Fingerprint) -> String {
    lease::to_text(&lease::issue(key, t, fp).unwrap_or_else(|e| panic!("lease: {e}")))
}

/// Signs an arbitrary lease body under `domain`, with the device binding
/// hash of `fp` as EXTRA, for cases the issuer refuses to make.
fn sign_raw_lease(
    key: &SigningKey,
    domain: &[u8],
    body: &[u8],
    lid: LicenseId,
    fp: &Fingerprint,
) -> String {
    let mut out = vec![1u8];
    out.extend_from_slice(&key.key_id().to_bytes());
    out.extend_from_slice(body);
    let mut msg = domain.to_vec();
    msg.extend_from_slice(&out);
    msg.extend_from_slice(&fp.exact_binding(&lid).0);
    out.extend_from_slice(&key.sign_raw(&msg));
    lease::to_text(&out)
}

/// A lease body as the format spells it, fields given one by one.
fn raw_lease_body(t: &LeaseTerms, hint: [u8; 2], times: &[&[u8]]) -> Vec<u8> {
    let mut b = t.license_id.to_bytes().to_vec();
    b.extend_from_slice(&t.seat_id.to_bytes());
    b.extend_from_slice(&hint);
    for v in times {
        b.extend_from_slice(v);
    }
    b
}

/// The varint of a u128 (a license id on a list; [`varint`] for the rest).
fn varint_u128(mut v: u128) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

fn varint(v: u64) -> Vec<u8> {
    varint_u128(u128::from(v))
}

fn lease_cases(x: &Ctx) -> Vec<Value> {
    const LABEL: &str = "leased";
    let kr = x.keyring.as_str();
    let fp = fingerprint("laptop", 2);
    let other_fp = fingerprint("desktop", 2);
    let mut claims = reference_claims(license_id(LABEL));
    claims.max_version = None;
    let key_text = license::to_text(&issue(&x.b, &claims, None));
    // Renew in an hour, end an hour later: a floating seat's lease.
    let terms = lease_terms(LABEL, -3_600, 7_200, 10_800);
    let good = sign_lease(&x.b, &terms, &fp);
    let case = |name: &str, lease: String, now: u64| {
        json!({
            "name": name,
            "key": key_text,
            "lease": lease,
            "keyring": kr,
            "now": now,
            "product": PRODUCT,
            "device": fp.to_string(),
            "leeway": 0,
            "revocation_list_hex": null,
        })
    };
    let holds = |mut c: Value, t: &LeaseTerms, due: bool| {
        c["expect"] = json!({
            "valid": true,
            "license_id": t.license_id.to_string(),
            "status": "active",
            "lease": {
                "seat_id": t.seat_id.to_string(),
                "issued_at": t.issued_at,
                "renew_at": t.renew_at,
                "expires_at": t.expires_at,
                "check_in_due": due,
            },
        });
        c
    };
    let fails = |mut c: Value, code: &str, fault: Option<&str>| {
        c["expect"] = json!({"valid": false, "error": code, "fault": fault});
        c
    };
    let t = &terms;
    let mut cases = vec![
        holds(case("lease_active", good.clone(), NOW), t, false),
        holds(
            case("lease_at_its_renew_time", good.clone(), t.renew_at),
            t,
            false,
        ),
        holds(
            case("lease_in_check_in_grace", good.clone(), t.renew_at + 1),
            t,
            true,
        ),
        holds(
            case("lease_at_its_end", good.clone(), t.expires_at),
            t,
            true,
        ),
        fails(
            case("lease_expired", good.clone(), t.expires_at + 1),
            "lease_expired",
            None,
        ),
    ];
    let mut c = case(
        "lease_expired_within_leeway",
        good.clone(),
        t.expires_at + 60,
    );
    c["leeway"] = json!(60);
    cases.push(holds(c, t, true));
    let mut c = case("lease_wrong_device", good.clone(), NOW);
    c["device"] = json!(other_fp.to_string());
    cases.push(fails(c, "lease_invalid", Some("wrong_device")));
    let mut c = case("lease_no_device", good.clone(), NOW);
    c["device"] = Value::Null;
    cases.push(fails(c, "lease_invalid", Some("wrong_device")));
    // A device with the first component of the right one only: leases bind
    // the exact fingerprint.
    let mut c = case("lease_one_component_changed", good.clone(), NOW);
    let half = Fingerprint::from_components(&[fp.components()[0], other_fp.components()[1]])
        .unwrap_or_else(|e| panic!("{e}"));
    c["device"] = json!(half.to_string());
    cases.push(fails(c, "lease_invalid", Some("wrong_device")));
    let other = lease_terms("another-license", -3_600, 7_200, 10_800);
    cases.push(fails(
        case(
            "lease_for_another_license",
            sign_lease(&x.b, &other, &fp),
            NOW,
        ),
        "lease_invalid",
        Some("other_license"),
    ));
    let mut bad = lease::decode_text(&good, &mut [0u8; lease::MAX_LEASE_LEN])
        .unwrap_or_else(|e| panic!("{e}"))
        .to_vec();
    let n = bad.len();
    bad[n - 40] ^= 0x10;
    cases.push(fails(
        case("lease_bad_signature", lease::to_text(&bad), NOW),
        "lease_invalid",
        Some("bad_signature"),
    ));
    let body = raw_lease_body(
        t,
        fp.exact_binding(&t.license_id).1,
        &[
            &varint(t.issued_at),
            &varint(t.renew_at),
            &varint(t.expires_at),
        ],
    );
    cases.push(fails(
        case(
            "lease_signed_as_a_license",
            sign_raw_lease(&x.b, b"keyseal/license/v1\0", &body, t.license_id, &fp),
            NOW,
        ),
        "lease_invalid",
        Some("bad_signature"),
    ));
    // The same body under the lease domain verifies: the case above differs only in the domain.
    cases.push(holds(
        case(
            "lease_signed_raw",
            sign_raw_lease(&x.b, b"keyseal/lease/v1\0", &body, t.license_id, &fp),
            NOW,
        ),
        t,
        false,
    ));
    cases.push(fails(
        case("lease_unknown_key", sign_lease(&x.stranger, t, &fp), NOW),
        "lease_invalid",
        Some("unknown_key"),
    ));
    // Key A's window ended at A_UNTIL, long before the lease was signed.
    cases.push(fails(
        case("lease_key_not_valid", sign_lease(&x.a, t, &fp), NOW),
        "lease_invalid",
        Some("key_not_valid"),
    ));
    // Key A signed a lease inside its window (and long) ; B's list revokes A.
    let mut old = lease_terms(LABEL, 0, 1_000, 2_000);
    old.issued_at = A_UNTIL - 10;
    old.renew_at = NOW + 1_000;
    old.expires_at = NOW + 2_000;
    let mut c = case("lease_key_revoked", sign_lease(&x.a, &old, &fp), NOW);
    c["revocation_list_hex"] = json!(hex(&list_bytes(
        &x.b,
        (1, NOW - 60, NOW + 86_400),
        &[&x.a],
        &[]
    )));
    cases.push(fails(c, "lease_invalid", Some("key_revoked")));
    let mut c = case("lease_key_a_unrevoked", sign_lease(&x.a, &old, &fp), NOW);
    c["revocation_list_hex"] = json!(hex(&list_bytes(
        &x.b,
        (1, NOW - 60, NOW + 86_400),
        &[],
        &[]
    )));
    cases.push(holds(c, &old, false));
    // The service's clock an hour ahead: checked at the lease's issue time.
    let ahead = lease_terms(LABEL, 3_600, 7_200, 10_800);
    cases.push(holds(
        case(
            "lease_issued_an_hour_ahead",
            sign_lease(&x.b, &ahead, &fp),
            NOW,
        ),
        &ahead,
        false,
    ));
    let ahead = lease_terms(LABEL, 86_400, 7_200, 10_800);
    cases.push(holds(
        case(
            "lease_issued_a_day_ahead",
            sign_lease(&x.b, &ahead, &fp),
            NOW,
        ),
        &ahead,
        false,
    ));
    let far = lease_terms(LABEL, 86_401, 7_200, 10_800);
    cases.push(fails(
        case(
            "lease_issued_past_a_day_ahead",
            sign_lease(&x.b, &far, &fp),
            NOW,
        ),
        "lease_invalid",
        Some("not_yet_valid"),
    ));
    let hint = fp.exact_binding(&t.license_id).1;
    let mut long = varint(t.issued_at);
    let last = long.len() - 1;
    long[last] |= 0x80;
    long.push(0);
    let body = raw_lease_body(
        t,
        hint,
        &[&long, &varint(t.renew_at), &varint(t.expires_at)],
    );
    cases.push(fails(
        case(
            "lease_overlong_varint",
            sign_raw_lease(&x.b, b"keyseal/lease/v1\0", &body, t.license_id, &fp),
            NOW,
        ),
        "lease_invalid",
        Some("malformed"),
    ));
    let body = raw_lease_body(
        t,
        hint,
        &[
            &varint(t.issued_at),
            &varint(t.expires_at + 1),
            &varint(t.expires_at),
        ],
    );
    cases.push(fails(
        case(
            "lease_renew_after_end",
            sign_raw_lease(&x.b, b"keyseal/lease/v1\0", &body, t.license_id, &fp),
            NOW,
        ),
        "lease_invalid",
        Some("malformed"),
    ));
    let mut body = raw_lease_body(
        t,
        hint,
        &[
            &varint(t.issued_at),
            &varint(t.renew_at),
            &varint(t.expires_at),
        ],
    );
    body.push(0);
    cases.push(fails(
        case(
            "lease_trailing_byte",
            sign_raw_lease(&x.b, b"keyseal/lease/v1\0", &body, t.license_id, &fp),
            NOW,
        ),
        "lease_invalid",
        Some("malformed"),
    ));
    cases.push(fails(
        case("lease_not_a_lease", key_text.clone(), NOW),
        "lease_invalid",
        Some("malformed"),
    ));
    cases.push(fails(
        case("lease_padded_base64", format!("{good}="), NOW),
        "lease_invalid",
        Some("malformed"),
    ));
    cases.push(fails(
        case(
            "lease_version_2",
            good.replacen("kslease1.", "kslease2.", 1),
            NOW,
        ),
        "lease_invalid",
        Some("unsupported_version"),
    ));
    cases.extend(relayed_lease_cases(x, &case, &holds, &fails, t, &fp));
    // The license is checked first: an expired license is `expired`, whatever its lease.
    let mut c = case("license_expired_before_its_lease", good.clone(), NOW);
    let mut short = claims;
    short.expires_at = Some(NOW - 1);
    c["key"] = json!(license::to_text(&issue(&x.b, &short, None)));
    cases.push(fails(c, "expired", None));
    let mut c = case("license_revoked_with_a_good_lease", good, NOW);
    c["revocation_list_hex"] = json!(hex(&list_bytes(
        &x.b,
        (1, NOW - 60, NOW + 86_400),
        &[],
        &[LABEL]
    )));
    cases.push(fails(c, "revoked", None));
    cases
}

/// Crockford base32 of `bytes` (no checksum, no groups): for cases the
/// encoder refuses to make.
fn base32(bytes: &[u8], pad_bits: u32) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let (mut acc, mut bits, mut out) = (0u32, 0u32, String::new());
    for &b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((acc >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(
            ALPHABET[(((acc << (5 - bits)) | pad_bits) & 31) as usize],
        ));
    }
    out
}

fn code_checksum(payload: &[u8]) -> Vec<u8> {
    Sha512::new()
        .chain_update(b"keyseal/activation-code/v1\0")
        .chain_update(payload)
        .finalize()[..4]
        .to_vec()
}

fn activation_code_cases(x: &Ctx) -> Vec<Value> {
    use keyseal_core::activation_code::{ActivationRequest, response_code};
    let lid = license_id("air-gapped");
    let mut claims = reference_claims(lid);
    claims.max_version = None;
    let lic = issue(&x.b, &claims, None);
    let key_text = license::to_text(&lic);
    let fp = fingerprint("air-gapped device", 3);
    let install = key("installation");
    let request = ActivationRequest::new(&lic, &fp, install.public_key())
        .unwrap_or_else(|e| panic!("request: {e}"));
    let code = request.to_code();
    let fields = json!({
        "valid": true,
        "license_id": request.license_id.to_string(),
        "license_proof_hex": hex(&request.license_proof),
        "binding_hash_hex": hex(&request.binding_hash),
        "device_hint_hex": hex(&request.device_hint),
        "public_key": request.public_key.to_string(),
    });
    let fails = |code: &str| json!({"valid": false, "error": code});
    let decode = |name: &str, code: String, expect: Value| json!({"name": name, "kind": "decode_request", "code": code, "expect": expect});
    let (head, body) = code.split_at("KSREQ1.".len());
    let mut payload = vec![1u8];
    payload.extend_from_slice(&request.license_id.to_bytes());
    payload.extend_from_slice(&request.license_proof);
    payload.extend_from_slice(&request.binding_hash);
    payload.extend_from_slice(&request.device_hint);
    payload.extend_from_slice(&request.public_key.to_bytes());
    let spell = |payload: &[u8], pad: u32| {
        let mut all = payload.to_vec();
        all.extend(code_checksum(payload));
        format!("KSREQ1.{}", base32(&all, pad))
    };
    assert_eq!(spell(&payload, 0), code.replace('-', ""));
    let mut typo = code.clone().into_bytes();
    let at = typo.len() - 10;
    typo[at] = if typo[at] == b'Q' { b'R' } else { b'Q' };
    let mut v2 = payload.clone();
    v2[0] = 2;
    let mut cases = vec![
        json!({
            "name": "request_encodes_exactly",
            "kind": "request",
            "license_key": key_text,
            "device": fp.to_string(),
            "public_key": install.public_key().to_string(),
            "expect_code": code,
        }),
        decode("request_as_written", code.clone(), fields.clone()),
        decode(
            "request_lower_case_spaces_and_line_breaks",
            format!(
                "{}{}",
                head.to_lowercase(),
                body.to_lowercase().replace('-', " ").replacen(' ', "\n", 3)
            ),
            fields.clone(),
        ),
        decode(
            "request_without_dashes",
            code.replace('-', ""),
            fields.clone(),
        ),
        decode(
            "request_with_o_i_and_l",
            format!(
                "{head}{}",
                body.replace('0', "O")
                    .replacen('1', "I", 2)
                    .replace('1', "l")
            ),
            fields.clone(),
        ),
        decode(
            "request_one_symbol_changed",
            String::from_utf8(typo).unwrap_or_default(),
            fails("malformed"),
        ),
        decode(
            "request_symbol_outside_the_alphabet",
            format!("{head}U{}", &body[1..]),
            fails("malformed"),
        ),
        // 95 bytes are 152 symbols exactly: one more is never a byte.
        decode(
            "request_one_symbol_more",
            format!("{code}0"),
            fails("malformed"),
        ),
        decode(
            "request_one_group_missing",
            format!("{head}{}", &body[6..]),
            fails("malformed"),
        ),
        decode(
            "request_wrong_prefix",
            code.replacen("KSREQ1.", "KSRES1.", 1),
            fails("malformed"),
        ),
        decode(
            "request_version_2",
            spell(&v2, 0),
            fails("unsupported_version"),
        ),
        decode(
            "request_trailing_byte",
            spell(&[payload.as_slice(), &[0]].concat(), 0),
            fails("malformed"),
        ),
    ];
    // Responses: the lease of the request's seat, and broken spellings.
    let terms = lease_terms("air-gapped", 0, 86_400, 4 * 86_400);
    let terms = LeaseTerms {
        license_id: lid,
        ..terms
    };
    let lease_bytes = lease::issue(&x.b, &terms, &fp).unwrap_or_else(|e| panic!("lease: {e}"));
    let response = response_code(&lease_bytes);
    let mut typo = response.clone().into_bytes();
    let at = typo.len() - 3;
    typo[at] = if typo[at] == b'Q' { b'R' } else { b'Q' };
    let resp = |name: &str, code: String, expect: Value| json!({"name": name, "kind": "decode_response", "code": code, "expect": expect});
    cases.extend([
        resp(
            "response_as_written",
            response.clone(),
            json!({"valid": true, "lease": lease::to_text(&lease_bytes)}),
        ),
        resp(
            "response_lower_case",
            response.to_lowercase(),
            json!({"valid": true, "lease": lease::to_text(&lease_bytes)}),
        ),
        resp(
            "response_one_symbol_changed",
            String::from_utf8(typo).unwrap_or_default(),
            fails("malformed"),
        ),
        resp("response_given_a_request", code.clone(), fails("malformed")),
        resp(
            "response_unused_bits_set",
            {
                let mut all = lease_bytes.clone();
                all.extend(code_checksum(&lease_bytes));
                // The last symbol carries unused bits for this length.
                assert_ne!(all.len() * 8 % 5, 0);
                format!("KSRES1.{}", base32(&all, 1))
            },
            fails("malformed"),
        ),
        resp("response_empty", "KSRES1.".to_owned(), fails("malformed")),
    ]);
    cases
}

/// An allotment body as the format spells it.
fn raw_allotment_body(a: &AllotmentTerms, seats: &[u8]) -> Vec<u8> {
    let mut b = a.license_id.to_bytes().to_vec();
    b.extend_from_slice(&a.relay_key);
    b.extend_from_slice(seats);
    b.extend_from_slice(&varint(a.issued_at));
    b.extend_from_slice(&varint(a.expires_at));
    b
}

/// Signs an arbitrary allotment body under `domain`, for cases the issuer
/// refuses to make.
fn sign_raw_allotment(key: &SigningKey, domain: &[u8], body: &[u8]) -> Vec<u8> {
    sign_raw_allotment_version(key, domain, body, 1)
}

fn sign_raw_allotment_version(
    key: &SigningKey,
    domain: &[u8],
    body: &[u8],
    version: u8,
) -> Vec<u8> {
    let mut out = vec![version];
    out.extend_from_slice(&key.key_id().to_bytes());
    out.extend_from_slice(body);
    let mut msg = domain.to_vec();
    msg.extend_from_slice(&out);
    out.extend_from_slice(&key.sign_raw(&msg));
    out
}

/// Leases an on-premises relay signed, each carrying its allotment.
fn relayed_lease_cases(
    x: &Ctx,
    case: &dyn Fn(&str, String, u64) -> Value,
    holds: &dyn Fn(Value, &LeaseTerms, bool) -> Value,
    fails: &dyn Fn(Value, &str, Option<&str>) -> Value,
    t: &LeaseTerms,
    fp: &Fingerprint,
) -> Vec<Value> {
    let relay = key("relay");
    let other_relay = key("another relay");
    let grant = |signer: &SigningKey, relay: &SigningKey, lid: LicenseId, from: u64, to: u64| {
        let terms = AllotmentTerms {
            license_id: lid,
            relay_key: relay.public_key().to_bytes(),
            seats: 20,
            issued_at: from,
            expires_at: to,
        };
        (
            terms,
            allotment::issue(signer, &terms).unwrap_or_else(|e| panic!("allotment: {e}")),
        )
    };
    let lease_bytes = |signer: &SigningKey, terms: &LeaseTerms| {
        lease::issue(signer, terms, fp).unwrap_or_else(|e| panic!("lease: {e}"))
    };
    let relayed = |l: &[u8], a: &[u8]| lease::to_relayed_text(l, a);
    // The allotment: a week from a day before the lease.
    let (from, to) = (t.issued_at - 86_400, t.issued_at + 6 * 86_400);
    let (good_terms, good) = grant(&x.b, &relay, t.license_id, from, to);
    let leased = lease_bytes(&relay, t);
    let mut cases = vec![
        holds(
            case("relayed_lease_active", relayed(&leased, &good), NOW),
            t,
            false,
        ),
        holds(
            case(
                "relayed_lease_in_check_in_grace",
                relayed(&leased, &good),
                t.renew_at + 1,
            ),
            t,
            true,
        ),
        fails(
            case(
                "relayed_lease_expired",
                relayed(&leased, &good),
                t.expires_at + 1,
            ),
            "lease_expired",
            None,
        ),
        fails(
            case(
                "relayed_lease_without_its_allotment",
                lease::to_text(&leased),
                NOW,
            ),
            "lease_invalid",
            Some("unknown_key"),
        ),
        fails(
            case(
                "relayed_lease_with_another_relays_allotment",
                relayed(
                    &leased,
                    &grant(&x.b, &other_relay, t.license_id, from, to).1,
                ),
                NOW,
            ),
            "lease_invalid",
            Some("unknown_key"),
        ),
        fails(
            case(
                "relayed_lease_allotment_by_an_unknown_key",
                relayed(
                    &leased,
                    &grant(&x.stranger, &relay, t.license_id, from, to).1,
                ),
                NOW,
            ),
            "lease_invalid",
            Some("unknown_key"),
        ),
        // Key A's window ended long before.
        fails(
            case(
                "relayed_lease_allotment_key_not_valid",
                relayed(&leased, &grant(&x.a, &relay, t.license_id, from, to).1),
                NOW,
            ),
            "lease_invalid",
            Some("key_not_valid"),
        ),
        fails(
            case(
                "relayed_lease_outlives_its_allotment",
                relayed(
                    &leased,
                    &grant(&x.b, &relay, t.license_id, from, t.expires_at - 1).1,
                ),
                NOW,
            ),
            "lease_invalid",
            Some("key_not_valid"),
        ),
        fails(
            case(
                "relayed_lease_signed_before_its_allotment",
                relayed(
                    &leased,
                    &grant(&x.b, &relay, t.license_id, t.issued_at + 1, to).1,
                ),
                NOW,
            ),
            "lease_invalid",
            Some("key_not_valid"),
        ),
        fails(
            case(
                "relayed_lease_allotment_of_another_license",
                relayed(
                    &leased,
                    &grant(&x.b, &relay, license_id("another-license"), from, to).1,
                ),
                NOW,
            ),
            "lease_invalid",
            Some("other_license"),
        ),
        fails(
            case(
                "relayed_lease_signed_by_the_vendor_key_with_an_allotment",
                relayed(&lease_bytes(&x.b, t), &good),
                NOW,
            ),
            "lease_invalid",
            Some("unknown_key"),
        ),
        fails(
            case(
                "relayed_lease_empty_allotment",
                format!("{}.", lease::to_text(&leased)),
                NOW,
            ),
            "lease_invalid",
            Some("malformed"),
        ),
    ];
    // Seats 20 -> 21: the vendor's signature no longer holds.
    let mut more = good.clone();
    let at = 1 + 8 + 16 + 32;
    assert_eq!(more[at], 20);
    more[at] = 21;
    cases.push(fails(
        case(
            "relayed_lease_allotment_changed",
            relayed(&leased, &more),
            NOW,
        ),
        "lease_invalid",
        Some("bad_signature"),
    ));
    let body = raw_allotment_body(&good_terms, &varint(20));
    let as_lease = sign_raw_allotment(&x.b, b"keyseal/lease/v1\0", &body);
    cases.push(fails(
        case(
            "relayed_lease_allotment_signed_as_a_lease",
            relayed(&leased, &as_lease),
            NOW,
        ),
        "lease_invalid",
        Some("bad_signature"),
    ));
    // The same body under the allotment domain holds: the case above differs only in the domain.
    let raw = sign_raw_allotment(&x.b, b"keyseal/seat-allotment/v1\0", &body);
    assert_eq!(raw, good);
    let zero = raw_allotment_body(&good_terms, &varint(0));
    cases.push(fails(
        case(
            "relayed_lease_allotment_of_no_seats",
            relayed(
                &leased,
                &sign_raw_allotment(&x.b, b"keyseal/seat-allotment/v1\0", &zero),
            ),
            NOW,
        ),
        "lease_invalid",
        Some("malformed"),
    ));
    // The allotment's body rules, each broken once (signed as the vendor
    // would, so that only the rule decides).
    let allot_domain: &[u8] = b"keyseal/seat-allotment/v1\0";
    let spelled = |relay_key: &[u8], seats: &[u8], issued: &[u8], expires: &[u8], tail: &[u8]| {
        let mut b = good_terms.license_id.to_bytes().to_vec();
        b.extend_from_slice(relay_key);
        b.extend_from_slice(seats);
        b.extend_from_slice(issued);
        b.extend_from_slice(expires);
        b.extend_from_slice(tail);
        sign_raw_allotment(&x.b, allot_domain, &b)
    };
    let rk = good_terms.relay_key;
    let (from_v, to_v) = (varint(good_terms.issued_at), varint(good_terms.expires_at));
    let mut long_from = from_v.clone();
    let last = long_from.len() - 1;
    long_from[last] |= 0x80;
    long_from.push(0);
    let mut past_64_bits = vec![0xffu8; 9];
    past_64_bits.push(0x02);
    let identity = {
        let mut k = [0u8; 32];
        k[0] = 1;
        k
    };
    // y = p + 3: ed25519-dalek would read it as y = 3, a point of large order.
    let mut non_canonical = [0xffu8; 32];
    non_canonical[0] = 0xf0;
    non_canonical[31] = 0x7f;
    assert_eq!(spelled(&rk, &varint(20), &from_v, &to_v, &[]), good);
    for (name, allotment) in [
        (
            "relayed_lease_allotment_overlong_varint",
            spelled(&rk, &varint(20), &long_from, &to_v, &[]),
        ),
        (
            "relayed_lease_allotment_trailing_byte",
            spelled(&rk, &varint(20), &from_v, &to_v, &[0]),
        ),
        (
            "relayed_lease_allotment_seats_past_u32",
            spelled(&rk, &varint(1 << 32), &from_v, &to_v, &[]),
        ),
        (
            "relayed_lease_allotment_time_past_64_bits",
            spelled(&rk, &varint(20), &from_v, &past_64_bits, &[]),
        ),
        (
            "relayed_lease_allotment_ends_before_it_starts",
            spelled(&rk, &varint(20), &to_v, &from_v, &[]),
        ),
        (
            "relayed_lease_allotment_weak_relay_key",
            spelled(&identity, &varint(20), &from_v, &to_v, &[]),
        ),
        (
            "relayed_lease_allotment_non_canonical_relay_key",
            spelled(&non_canonical, &varint(20), &from_v, &to_v, &[]),
        ),
    ] {
        cases.push(fails(
            case(name, relayed(&leased, &allotment), NOW),
            "lease_invalid",
            Some("malformed"),
        ));
    }
    let v2 = sign_raw_allotment_version(
        &x.b,
        allot_domain,
        &raw_allotment_body(&good_terms, &varint(20)),
        2,
    );
    cases.push(fails(
        case(
            "relayed_lease_allotment_version_2",
            relayed(&leased, &v2),
            NOW,
        ),
        "lease_invalid",
        Some("unsupported_version"),
    ));
    let mut c = case(
        "relayed_lease_relay_key_revoked",
        relayed(&leased, &good),
        NOW,
    );
    c["revocation_list_hex"] = json!(hex(&list_bytes(
        &x.b,
        (1, NOW - 60, NOW + 86_400),
        &[&relay],
        &[]
    )));
    cases.push(fails(c, "lease_invalid", Some("key_revoked")));
    cases
}

/// `keyseal-signature` of webhook deliveries (docs/FORMAT.md, "Webhook
/// signature"): `v1,<key id>,<hex signature>` values by the keyring's keys.
fn webhook_cases(x: &Ctx) -> Vec<Value> {
    let body = r#"{"type":"license.revoked","timestamp":"2027-01-15T08:00:00Z","data":{"license_id":"01a2"}}"#;
    let t = NOW;
    let sign = |k: &SigningKey, id: &str, ts: &str, body: &str| {
        let m = keyseal_core::webhook::signed_message(id, ts, body.as_bytes());
        format!("v1,{},{}", k.key_id(), hex(&k.sign_raw(&m)))
    };
    let case = |name: &str,
                id: &str,
                ts: &str,
                sig: String,
                body: &str,
                now: u64,
                expect: Value| {
        json!({"name": name, "keyring": x.keyring, "id": id, "timestamp": ts, "signature": sig, "body": body, "now": now, "expect": expect})
    };
    let ok = |k: &SigningKey| json!({"valid": true, "key_id": k.key_id().to_string()});
    let err = |code: &str| json!({"valid": false, "error": code});
    let ts = t.to_string();
    let good = sign(&x.b, "evt_1", &ts, body);
    let mut plain = format!("evt_1.{ts}.").into_bytes();
    plain.extend_from_slice(body.as_bytes());
    vec![
        case("valid", "evt_1", &ts, good.clone(), body, t, ok(&x.b)),
        case(
            "valid_at_the_tolerance",
            "evt_1",
            &ts,
            good.clone(),
            body,
            t + 300,
            ok(&x.b),
        ),
        case(
            "valid_a_little_ahead",
            "evt_1",
            &ts,
            good.clone(),
            body,
            t - 300,
            ok(&x.b),
        ),
        case(
            "valid_second_of_two",
            "evt_1",
            &ts,
            format!("{} {good}", sign(&x.stranger, "evt_1", &ts, body)),
            body,
            t,
            ok(&x.b),
        ),
        case(
            "stale",
            "evt_1",
            &ts,
            good.clone(),
            body,
            t + 301,
            err("stale"),
        ),
        case(
            "too_far_ahead",
            "evt_1",
            &ts,
            good.clone(),
            body,
            t - 301,
            err("stale"),
        ),
        case(
            "body_changed",
            "evt_1",
            &ts,
            good.clone(),
            &body.replace("revoked", "created"),
            t,
            err("bad_signature"),
        ),
        case(
            "id_changed",
            "evt_2",
            &ts,
            good.clone(),
            body,
            t,
            err("bad_signature"),
        ),
        case(
            "timestamp_changed",
            "evt_1",
            &(t + 1).to_string(),
            good.clone(),
            body,
            t,
            err("bad_signature"),
        ),
        case(
            "no_domain",
            "evt_1",
            &ts,
            format!("v1,{},{}", x.b.key_id(), hex(&x.b.sign_raw(&plain))),
            body,
            t,
            err("bad_signature"),
        ),
        {
            // Inside both keys' windows: B's signature under A's id.
            let at = A_UNTIL.to_string();
            let by_b = sign(&x.b, "evt_1", &at, body);
            let named_a = by_b.replacen(&x.b.key_id().to_string(), &x.a.key_id().to_string(), 1);
            case(
                "other_key_named",
                "evt_1",
                &at,
                named_a,
                body,
                A_UNTIL,
                err("bad_signature"),
            )
        },
        case(
            "unknown_key",
            "evt_1",
            &ts,
            sign(&x.stranger, "evt_1", &ts, body),
            body,
            t,
            err("unknown_key"),
        ),
        case(
            "retired_key",
            "evt_1",
            &ts,
            sign(&x.a, "evt_1", &ts, body),
            body,
            t,
            err("key_not_valid"),
        ),
        case(
            "retired_key_in_its_window",
            "evt_1",
            &A_UNTIL.to_string(),
            sign(&x.a, "evt_1", &A_UNTIL.to_string(), body),
            body,
            A_UNTIL,
            ok(&x.a),
        ),
        case(
            "timestamp_signed_plus",
            "evt_1",
            &format!("+{ts}"),
            sign(&x.b, "evt_1", &format!("+{ts}"), body),
            body,
            t,
            err("malformed"),
        ),
        case(
            "timestamp_empty",
            "evt_1",
            "",
            good.clone(),
            body,
            t,
            err("malformed"),
        ),
        case(
            "id_empty",
            "",
            &ts,
            sign(&x.b, "", &ts, body),
            body,
            t,
            err("malformed"),
        ),
        case(
            "no_signature",
            "evt_1",
            &ts,
            String::new(),
            body,
            t,
            err("malformed"),
        ),
        case(
            "version_2",
            "evt_1",
            &ts,
            good.replacen("v1,", "v2,", 1),
            body,
            t,
            err("malformed"),
        ),
        case(
            "short_signature",
            "evt_1",
            &ts,
            good[..good.len() - 2].to_owned(),
            body,
            t,
            err("malformed"),
        ),
    ]
}

fn write(
    dir: &std::path::Path,
    name: &str,
    description: &str,
    cases: Vec<Value>,
) -> std::io::Result<()> {
    let doc = json!({"description": description, "generator": "cargo run -p keyseal-testdata", "cases": cases});
    let mut text = serde_json::to_string_pretty(&doc).map_err(std::io::Error::other)?;
    text.push('\n');
    std::fs::write(dir.join(name), text)
}

fn main() -> std::io::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .map_or_else(|| PathBuf::from("testdata/vectors"), PathBuf::from);
    std::fs::create_dir_all(&dir)?;
    let x = Ctx::new();
    write(
        &dir,
        "licenses.json",
        "License keys and the verdict each must give: validate `key` (text or armored) against `keyring` at `now` for `product`, with `app_version`, `device` fingerprint, `leeway` seconds and the optional revocation list. A valid case gives its claims and status; an invalid one the error code.",
        license_cases(&x),
    )?;
    write(
        &dir,
        "revocation_lists.json",
        "Signed revocation lists: verify `list_hex` with `keyring`, refuse it if it does not supersede a list seen before with signer rank `seen_rank` and sequence `seen_sequence` (rolled back: lower rank, or equal rank and lower sequence) or it is stale at `now`; a valid case gives its contents, an invalid one the error code.",
        revocation_cases(&x),
    )?;
    write(
        &dir,
        "trust.json",
        "Attacks on the trust rules, as steps against one validator for `product` that trusts `keyring` (enforce mode, no device, no app version, leeway 0, staleness warned only), with its clock set to each step's `now` and a state kept in memory. `load_list` loads the armored `list` file (it may carry key certificates): `expect` gives ok and the list's sequence, or the error code. `validate` validates `key` (a key or an armored license file): ok, the status and the warning codes in order, or the error code. `restart` builds a new validator with the same state and no list loaded.",
        trust_cases(),
    )?;
    write(
        &dir,
        "leases.json",
        "A license key with the lease of one of its seats (`relayed_*` cases: a lease an on-premises relay signed, carrying its seat allotment): validate `key` as in licenses.json (no app version), then `lease` for it on the device with fingerprint `device`, against `keyring` at `now` for `product`, with `leeway` seconds and the optional revocation list. A valid case gives the license id and the lease's terms and whether a check-in is due; an invalid one the error code and, for `lease_invalid`, the fault.",
        lease_cases(&x),
    )?;
    write(
        &dir,
        "webhooks.json",
        "The keyseal-signature of webhook deliveries (docs/FORMAT.md, \"Webhook signature\"): check `signature` for the delivery with headers `id` (webhook-id) and `timestamp` (webhook-timestamp, as text) and the raw `body` against `keyring` at `now`. A valid case gives the id of the key that signed; an invalid one the error: malformed, unknown_key, key_not_valid, bad_signature or stale.",
        webhook_cases(&x),
    )?;
    write(
        &dir,
        "activation_codes.json",
        "Air-gapped activation codes (docs/FORMAT.md, \"Activation codes\"). A `request` case: the device's request for `license_key` on the device with fingerprint `device` with the installation key `public_key` encodes exactly as `expect_code`. A `decode_request` case: reading `code` gives the fields (hex) or the error code. A `decode_response` case: reading `code` gives the binary lease as its `kslease1.` text, or the error code.",
        activation_code_cases(&x),
    )?;
    write(
        &dir,
        "issue.json",
        "Issuing is deterministic: signing `claims` with the key of seed `seed_hex` (and binding `device` by `device_rule`) gives exactly `expect_key`.",
        issue_cases(&x),
    )?;
    Ok(())
}
