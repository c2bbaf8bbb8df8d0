//! The Rust SDK's own time for the Python bench (`bench/bench.py`): the
//! reference key of `testdata/vectors/issue.json` (its seed, claims and
//! device) validated by a warm `keyseal::Validator`, configured as the
//! Python bench configures its own: a keyring of that key, product
//! acme-cad, app version 5.2.0, the fixed device, a clock fixed at
//! 1800000000 and state in memory.
//!
//! `cargo run --release -p keyseal-python --example rust_validate -- [ROUNDS ITERS]`
//! prints the best round's mean, in microseconds, as `rust_sdk_validate_us <us>`.
//! Times are the thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`, the clock of
//! Python's `time.thread_time` in the bench), so load from other processes
//! does not inflate them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;

use cpu_time::ThreadTime;
use keyseal::{Fingerprint, Keyring, ManualClock, MemoryStateStore, Validator};
use keyseal_core::claims::{Entitlements, Extensions};
use keyseal_core::{Claims, DeviceRule, SigningKey, license};
use serde_json::Value;

const NOW: u64 = 1_800_000_000;

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("a number"))
        .collect();
    let (rounds, iters) = match args[..] {
        [r, i] => (r, i),
        _ => (7, 20_000),
    };
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../testdata/vectors/issue.json"
    );
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let case = doc["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "reference_exact_device")
        .expect("issue.json has the reference case");
    let seed: Vec<u8> = (0..64)
        .step_by(2)
        .map(|i| u8::from_str_radix(&case["seed_hex"].as_str().unwrap()[i..i + 2], 16).unwrap())
        .collect();
    let key = SigningKey::from_seed(&seed.try_into().unwrap()).unwrap();
    let c = &case["claims"];
    let mut claims = Claims::new(
        c["license_id"].as_str().unwrap().parse().unwrap(),
        c["product"].as_str().unwrap(),
        c["customer"].as_str().unwrap(),
        c["plan"].as_str().unwrap(),
        c["issued_at"].as_u64().unwrap(),
    );
    claims.expires_at = c["expires_at"].as_u64();
    let ents: Vec<&str> = c["entitlements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    claims.entitlements = Entitlements::from_slice(&ents).unwrap();
    claims.max_version = c["max_version"].as_str().map(|v| v.parse().unwrap());
    claims.extensions = Extensions::new();
    let device: Fingerprint = case["device"].as_str().unwrap().parse().unwrap();
    let text = license::to_text(
        &license::issue(&key, &claims, Some((&device, DeviceRule::Exact))).unwrap(),
    );
    assert_eq!(text, case["expect_key"].as_str().unwrap());

    let keyring: Keyring = format!("key {}", key.public_key()).parse().unwrap();
    let validator = Validator::builder(keyring, "acme-cad")
        .app_version("5.2.0".parse().unwrap())
        .device(device)
        .clock(ManualClock::new(NOW))
        .state(MemoryStateStore::new())
        .build()
        .unwrap();
    let _ = validator.validate(&text).unwrap();
    let mut best = f64::INFINITY;
    for _ in 0..rounds {
        let start = ThreadTime::now();
        for _ in 0..iters {
            let _ = black_box(validator.validate(black_box(&text)).unwrap());
        }
        #[allow(clippy::cast_precision_loss)]
        let us = start.elapsed().as_secs_f64() * 1e6 / iters as f64;
        best = best.min(us);
    }
    println!("rust_sdk_validate_us {best:.3}");
}
