//! Shared fixtures of the keyseal benches: the reference claims of the
//! format issue, issued as a keyseal key, an EdDSA JWT and a PASETO v4.public
//! token, so every format is measured on the same content.

use keyseal_core::claims::Entitlements;
use keyseal_core::{
    Claims, DeviceRule, Fingerprint, Keyring, LicenseId, SigningKey, TrustedKey, VersionCap,
    license,
};

/// Product of the reference claims.
pub const PRODUCT: &str = "acme-cad";
/// When the reference key is checked.
pub const NOW: u64 = 1_800_000_000;
const SEED: [u8; 32] = [42; 32];

/// The reference license: product acme-cad, customer cus_8f3a2b, plan pro,
/// issued 1795000000, expires 1826536000, exact device binding, three
/// entitlements, max version 5.x.
pub struct Reference {
    /// The vendor's signing key.
    pub key: SigningKey,
    /// A keyring trusting it.
    pub keyring: Keyring,
    /// The device the license is bound to.
    pub device: Fingerprint,
    /// The license key text.
    pub text: String,
}

impl Reference {
    /// Builds the reference license.
    ///
    /// # Panics
    /// Never for these fixed inputs (checked by the bench run itself).
    #[must_use]
    #[allow(clippy::expect_used)]
    pub fn new() -> Self {
        let key = SigningKey::from_seed(&SEED).expect("fixed seed is a valid key");
        let mut keyring = Keyring::new();
        keyring
            .add(TrustedKey::new(key.public_key()))
            .expect("empty keyring has room");
        let device = Fingerprint::from_components(&[Fingerprint::component(
            PRODUCT,
            "machine-id",
            b"bench-machine",
        )])
        .expect("one component");
        let bytes = license::issue(&key, &claims(), Some((&device, DeviceRule::Exact)))
            .expect("reference claims are valid");
        Reference {
            key,
            keyring,
            device,
            text: license::to_text(&bytes),
        }
    }
}

impl Default for Reference {
    fn default() -> Self {
        Self::new()
    }
}

/// The reference claims (without the device binding, which issuing adds).
#[must_use]
pub fn claims() -> Claims<'static> {
    let mut c = Claims::new(
        LicenseId::from_bytes([0x5a; 16]),
        PRODUCT,
        "cus_8f3a2b",
        "pro",
        1_795_000_000,
    );
    c.expires_at = Some(1_826_536_000);
    c.entitlements =
        Entitlements::from_slice(&["cloud-sync", "export-pdf", "plugins"]).unwrap_or_default();
    c.max_version = Some(VersionCap::Major(5));
    c
}

/// The same claims as JSON, for the JWT and PASETO peers. The device binding
/// is a salted hash there too (43 characters of base64url, as a peer would carry it).
#[derive(serde::Serialize, serde::Deserialize)]
pub struct JsonClaims {
    /// License id.
    pub jti: String,
    /// Product.
    pub aud: String,
    /// Customer.
    pub sub: String,
    /// Plan.
    pub plan: String,
    /// Issued at.
    pub iat: u64,
    /// Expiry.
    pub exp: u64,
    /// Salted device hash.
    pub device: String,
    /// Entitlements.
    pub entitlements: Vec<String>,
    /// Max version.
    pub max_version: String,
}

/// The reference claims as [`JsonClaims`].
#[must_use]
pub fn json_claims() -> JsonClaims {
    JsonClaims {
        jti: "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a".into(),
        aud: PRODUCT.into(),
        sub: "cus_8f3a2b".into(),
        plan: "pro".into(),
        iat: 1_795_000_000,
        exp: 1_826_536_000,
        device: "q3YpAlbNMJAQ1Hy3IZMtKEnf9GYgLQpZEutqrhAh9bE".into(),
        entitlements: vec!["cloud-sync".into(), "export-pdf".into(), "plugins".into()],
        max_version: "5.x".into(),
    }
}

/// PKCS#8 v1 DER of an Ed25519 seed (RFC 8410), as jsonwebtoken reads it.
#[must_use]
pub fn pkcs8_der(seed: &[u8; 32]) -> Vec<u8> {
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend_from_slice(seed);
    der
}

/// The seed of the reference signing key.
#[must_use]
pub const fn seed() -> [u8; 32] {
    SEED
}
