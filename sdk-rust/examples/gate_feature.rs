//! A minimal vendor app: PDF export is unlocked by the `export-pdf`
//! entitlement of a license key.
//!
//! ```text
//! cargo run -p keyseal --example gate_feature -- --demo        # mint a demo key and use it
//! cargo run -p keyseal --example gate_feature -- license.lic   # a license file
//! cargo run -p keyseal --example gate_feature -- ks1.ASFW...   # a key typed in
//! ACME_DEMO_LICENSE=ks1.... cargo run -p keyseal --example gate_feature
//! ```

use keyseal::{Keyring, License, Problem, Status, Validator};

/// The vendor's public keyring, exported with the CLI and embedded in the
/// app. It holds no secret.
const KEYRING: &str = "\
# acme-demo keyring (public keys only)
key kspub1.yaQ0qFiIqHm2owbWhAvtJKx8E0L3qHaVcNDuyW356Ys
";
const PRODUCT: &str = "acme-demo";
const LICENSE_VAR: &str = "ACME_DEMO_LICENSE";

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), Problem> {
    let keyring: Keyring = KEYRING.parse()?;
    // The common case: system clock, state file in the per-user data
    // directory, this machine's OS fingerprint. Only the product and the
    // app version are the vendor's to fill in.
    let validator = Validator::builder(keyring, PRODUCT)
        .app_version(env!("CARGO_PKG_VERSION").parse()?)
        .build()?;

    let arg = std::env::args().nth(1);
    let verdict = match arg.as_deref() {
        Some("--demo") => validator.validate(&demo::mint()),
        Some(a) if std::path::Path::new(a).exists() => validator.validate_file(a),
        Some(key) => validator.validate(key),
        None => validator.validate_env(LICENSE_VAR),
    };

    match verdict {
        Ok(license) => {
            greet(&license);
            export_pdf(&license);
        }
        Err(rejection) => {
            // The customer sees the plain message; the log gets the code.
            println!("{}", rejection.customer_message());
            eprintln!("[license check: {}]", rejection.code());
            export_pdf_locked();
        }
    }
    Ok(())
}

fn greet(license: &License) {
    println!(
        "Licensed to {} ({} plan).",
        license.customer(),
        license.plan()
    );
    if let Status::InGrace { .. } = license.status() {
        println!("Your license has expired; renew it soon to keep your features.");
    }
    for warning in license.warnings() {
        println!("Note: {}", warning.customer_message());
    }
}

fn export_pdf(license: &License) {
    if license.has("export-pdf") {
        println!("PDF export: enabled.");
    } else {
        println!("PDF export needs the Pro plan.");
    }
}

fn export_pdf_locked() {
    println!("PDF export: locked (no valid license).");
}

/// What the vendor's CLI does, here so the example runs on its own. A real
/// app never holds a signing key.
mod demo {
    use keyseal::keyseal_core::claims::Entitlements;
    use keyseal::keyseal_core::{Claims, LicenseId, SigningKey, license};

    pub fn mint() -> String {
        let Ok(key) = SigningKey::from_seed(b"keyseal-example-DO-NOT-USE-12345") else {
            return String::new();
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut claims = Claims::new(
            LicenseId::from_u128(1),
            super::PRODUCT,
            "cus_demo",
            "pro",
            now,
        );
        claims.expires_at = Some(now + 30 * 86_400);
        claims.entitlements = Entitlements::from_slice(&["export-pdf"]).unwrap_or_default();
        let key_text = license::issue(&key, &claims, None)
            .map(|b| license::to_text(&b))
            .unwrap_or_default();
        println!("Demo license key: {key_text}");
        key_text
    }
}
