//! Criterion benches: keyseal against a bare `verify_strict` floor and peer
//! formats on the same reference claims. `scripts/bench.sh` runs them and
//! prints the table (ratios and sizes).

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use ed25519_dalek::{Signer, SigningKey as DalekKey};
use keyseal_benches::{NOW, PRODUCT, Reference, claims, json_claims, pkcs8_der, seed};
use keyseal_core::license::{self, MAX_LICENSE_LEN};
use keyseal_core::revocation::RevocationListBuilder;
use keyseal_core::{
    DeviceRule, Expectations, LicenseId, RevocationCheck, RevocationList, UnverifiedLicense,
};

fn verify(c: &mut Criterion) {
    let r = Reference::new();
    let mut g = c.benchmark_group("verify");

    // The floor: strict Ed25519 verification of a 64-byte message.
    let dalek = DalekKey::from_bytes(&seed());
    let msg = [7u8; 64];
    let sig = dalek.sign(&msg);
    let vk = dalek.verifying_key();
    g.bench_function("floor_verify_strict_64B", |b| {
        b.iter(|| vk.verify_strict(black_box(&msg), black_box(&sig)).unwrap())
    });

    // keyseal: text in, verdict out, with the device binding checked.
    let exp = Expectations::new(PRODUCT, NOW).device(&r.device);
    g.bench_function("keyseal_text_to_verdict", |b| {
        b.iter(|| {
            let mut buf = [0u8; MAX_LICENSE_LEN];
            let v = license::verify_text(black_box(&r.text), &mut buf, &r.keyring, &exp).unwrap();
            black_box(v.status());
        });
    });

    // The same, through a keyring with precomputed tables (what the SDKs use).
    let mut precomputed = r.keyring.clone();
    precomputed.precompute();
    g.bench_function("keyseal_text_to_verdict_precomputed", |b| {
        b.iter(|| {
            let mut buf = [0u8; MAX_LICENSE_LEN];
            let v = license::verify_text(black_box(&r.text), &mut buf, &precomputed, &exp).unwrap();
            black_box(v.status());
        });
    });

    // jsonwebtoken: EdDSA JWT of the same claims (its verify is not strict).
    let jwt_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    let enc = jsonwebtoken::EncodingKey::from_ed_der(&pkcs8_der(&seed()));
    let jwt = jsonwebtoken::encode(&jwt_header, &json_claims(), &enc).unwrap();
    let x = base64_url(vk.as_bytes());
    let dec = jsonwebtoken::DecodingKey::from_ed_components(&x).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_audience(&[PRODUCT]);
    validation.validate_exp = false; // the fixed `exp` lies in the future anyway
    g.bench_function("jsonwebtoken_eddsa", |b| {
        b.iter(|| {
            black_box(
                jsonwebtoken::decode::<keyseal_benches::JsonClaims>(
                    black_box(&jwt),
                    &dec,
                    &validation,
                )
                .unwrap(),
            )
        });
    });

    // pasetors: v4.public token of the same claims, claims parsed and validated.
    let (paseto, ppk) = paseto_token();
    g.bench_function("pasetors_v4_public", |b| {
        b.iter(|| {
            use pasetors::token::UntrustedToken;
            use pasetors::{Public, version4::V4};
            let untrusted =
                UntrustedToken::<Public, V4>::try_from(black_box(paseto.as_str())).unwrap();
            let rules = pasetors::claims::ClaimsValidationRules::new();
            black_box(pasetors::public::verify(&ppk, &untrusted, &rules, None, None).unwrap());
        });
    });
    g.finish();
}

fn base64_url(bytes: &[u8]) -> String {
    // Unpadded base64url through the keyseal text form (same alphabet).
    license::to_text(bytes)
        .trim_start_matches(license::LICENSE_PREFIX)
        .to_owned()
}

/// A PASETO v4.public token of the reference claims and its public key.
pub fn paseto_token() -> (
    String,
    pasetors::keys::AsymmetricPublicKey<pasetors::version4::V4>,
) {
    use pasetors::keys::{AsymmetricKeyPair, AsymmetricPublicKey, AsymmetricSecretKey};
    use pasetors::version4::V4;
    let dalek = DalekKey::from_bytes(&seed());
    let mut sk_bytes = seed().to_vec();
    sk_bytes.extend_from_slice(dalek.verifying_key().as_bytes());
    let sk = AsymmetricSecretKey::<V4>::from(&sk_bytes).unwrap();
    let pk = AsymmetricPublicKey::<V4>::from(dalek.verifying_key().as_bytes()).unwrap();
    let kp = AsymmetricKeyPair {
        public: pk.clone(),
        secret: sk,
    };
    let j = json_claims();
    let mut claims = pasetors::claims::Claims::new().unwrap();
    claims.token_identifier(&j.jti).unwrap();
    claims.audience(&j.aud).unwrap();
    claims.subject(&j.sub).unwrap();
    claims.add_additional("plan", j.plan).unwrap();
    claims.add_additional("device", j.device).unwrap();
    claims
        .add_additional("entitlements", j.entitlements)
        .unwrap();
    claims.add_additional("max_version", j.max_version).unwrap();
    let token = pasetors::public::sign(&kp.secret, &claims, None, None).unwrap();
    (token, pk)
}

fn sdk_validate(c: &mut Criterion) {
    let r = Reference::new();
    let validator = keyseal::Validator::builder(r.keyring.clone(), PRODUCT)
        .app_version("5.2.0".parse().unwrap())
        .clock(keyseal::ManualClock::new(NOW))
        .state(keyseal::MemoryStateStore::new())
        .device(r.device)
        .build()
        .unwrap();
    // Warm: the first call loads state; every later one is the steady state.
    let _ = validator.validate(&r.text).unwrap();
    let mut g = c.benchmark_group("validate");
    g.bench_function("sdk_warm_validator", |b| {
        b.iter(|| black_box(validator.validate(black_box(&r.text)).unwrap()))
    });
    let plain = keyseal::Validator::builder(r.keyring.clone(), PRODUCT)
        .app_version("5.2.0".parse().unwrap())
        .clock(keyseal::ManualClock::new(NOW))
        .state(keyseal::MemoryStateStore::new())
        .device(r.device)
        .precompute(false)
        .build()
        .unwrap();
    let _ = plain.validate(&r.text).unwrap();
    g.bench_function("sdk_warm_validator_no_precompute", |b| {
        b.iter(|| black_box(plain.validate(black_box(&r.text)).unwrap()))
    });

    // A lease of one seat of the reference license on its device
    // (docs/FORMAT.md "Lease"): the license and its lease together (two
    // signature checks), and the lease alone for a license validated
    // before (one), against the plain validation above.
    let terms = keyseal_core::LeaseTerms {
        license_id: claims().license_id,
        seat_id: keyseal_core::SeatId::from_bytes([0x33; 16]),
        device_hint: [0; 2],
        issued_at: NOW - 3_600,
        renew_at: NOW + 86_400,
        expires_at: NOW + 4 * 86_400,
    };
    let lease = keyseal_core::lease::to_text(
        &keyseal_core::lease::issue(&r.key, &terms, &r.device).unwrap(),
    );
    let license = validator.validate_with_lease(&r.text, &lease).unwrap();
    g.bench_function("sdk_warm_validate_with_lease", |b| {
        b.iter(|| {
            black_box(
                validator
                    .validate_with_lease(black_box(&r.text), black_box(&lease))
                    .unwrap(),
            )
        })
    });
    g.bench_function("sdk_warm_validate_lease_alone", |b| {
        b.iter(|| {
            black_box(
                validator
                    .validate_lease(&license, black_box(&lease))
                    .unwrap(),
            )
        })
    });

    // A revocation list of a million licenses, ids as keyseal's issuer makes
    // them (48-bit milliseconds over two years of issuing, then 80 random
    // bits): its size, and what loading it into a validator costs
    // (decode, strict signature check over all of it, the bucket index).
    let n = 1_000_000u64;
    let mut x = 0x2545_F491_4F6C_DD1D_u64;
    let span_ms = 2 * 365 * 86_400_000u64;
    let mut b = RevocationListBuilder::new(1, NOW, NOW + 7 * 86_400);
    for _ in 0..n {
        let ms = NOW * 1000 - span_ms + splitmix(&mut x) % span_ms;
        let random = (u128::from(splitmix(&mut x)) << 16) | u128::from(splitmix(&mut x) >> 48);
        b.revoke_license(LicenseId::from_u128((u128::from(ms) << 80) | random));
    }
    let list = b.sign(&r.key).unwrap();
    eprintln!(
        "revocation list of {n} licenses issued over two years: {} bytes, {:.2} bytes a license",
        list.len(),
        list.len() as f64 / n as f64
    );
    g.sample_size(10);
    g.bench_function("sdk_load_revocation_list_1000000", |bch| {
        bch.iter(|| black_box(validator.load_revocation_list(black_box(&list)).unwrap()))
    });
    g.finish();

    // What precomputing costs once: the tables of one key and the basepoint.
    let mut g = c.benchmark_group("keyring");
    g.bench_function("precompute_one_key", |b| {
        b.iter(|| {
            let mut k = black_box(&r.keyring).clone();
            k.precompute();
            black_box(k)
        })
    });
    g.finish();
}

fn keyseal_ops(c: &mut Criterion) {
    let r = Reference::new();
    let mut g = c.benchmark_group("keyseal");
    g.bench_function("mint_sign_and_encode", |b| {
        let mut n = 0u128;
        b.iter(|| {
            n += 1;
            let mut cl = claims();
            cl.license_id = LicenseId::from_u128(n);
            let bytes = license::issue(&r.key, &cl, Some((&r.device, DeviceRule::Exact))).unwrap();
            black_box(license::to_text(&bytes))
        });
    });
    g.bench_function("decode_only", |b| {
        b.iter(|| {
            let mut buf = [0u8; MAX_LICENSE_LEN];
            let bytes = license::decode_text(black_box(&r.text), &mut buf).unwrap();
            black_box(UnverifiedLicense::from_bytes(bytes).unwrap().key_id())
        });
    });
    for n in [1_000usize, 1_000_000] {
        let mut b = RevocationListBuilder::new(1, NOW, NOW + 86_400);
        let mut x = 0x9E37_79B9_7F4A_7C15_u64;
        let mut ids = Vec::with_capacity(n);
        for _ in 0..n {
            let hi = splitmix(&mut x);
            let lo = splitmix(&mut x);
            let id = LicenseId::from_u128((u128::from(hi) << 64) | u128::from(lo));
            ids.push(id);
            b.revoke_license(id);
        }
        let list = RevocationList::verify(&b.sign(&r.key).unwrap(), &r.keyring).unwrap();
        let mut i = 0usize;
        g.bench_function(format!("revocation_lookup_{n}"), |bch| {
            bch.iter(|| {
                i = (i + 7919) % n;
                // Half hits, half misses.
                let probe = if i.is_multiple_of(2) {
                    ids[i]
                } else {
                    LicenseId::from_u128(ids[i].to_u128() ^ 1)
                };
                black_box(list.is_license_revoked(black_box(probe)))
            });
        });
    }
    g.finish();
}

fn splitmix(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

criterion_group!(benches, verify, sdk_validate, keyseal_ops);
criterion_main!(benches);
