//! Ratios to the `verify_strict` floor, measured interleaved: each round
//! times a batch of floor verifications, then a batch of each keyseal path,
//! so drift in machine speed (a shared host, frequency scaling) hits all of
//! them alike. Prints the median of the per-round ratios. Run by
//! `scripts/bench.sh` after the criterion table; `--smoke` for CI.

use std::hint::black_box;
use std::time::Instant;

use ed25519_dalek::{Signer, SigningKey as DalekKey};
use keyseal_benches::{NOW, PRODUCT, Reference, seed};
use keyseal_core::Expectations;
use keyseal_core::license::{self, MAX_LICENSE_LEN};

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn time_batch(n: u32, mut f: impl FnMut()) -> f64 {
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    t.elapsed().as_secs_f64() * 1e9 / f64::from(n)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let smoke = args.iter().any(|a| a == "--smoke");
    // `--only PATH N`: run one path N times and nothing else, for
    // instruction counting under callgrind (scripts/bench.sh).
    let only = args
        .iter()
        .position(|a| a == "--only")
        .map(|i| (args[i + 1].clone(), args[i + 2].parse::<u32>()));
    let (rounds, batch) = if smoke { (3, 10) } else { (2001, 10) };
    let r = Reference::new();
    let dalek = DalekKey::from_bytes(&seed());
    let msg = [7u8; 64];
    let sig = dalek.sign(&msg);
    let vk = dalek.verifying_key();
    let exp = Expectations::new(PRODUCT, NOW).device(&r.device);
    let validator = keyseal::Validator::builder(r.keyring.clone(), PRODUCT)
        .app_version("5.2.0".parse()?)
        .clock(keyseal::ManualClock::new(NOW))
        .state(keyseal::MemoryStateStore::new())
        .device(r.device)
        .precompute(false)
        .build()?;
    // The SDK's default: verification through precomputed tables.
    let fast = keyseal::Validator::builder(r.keyring.clone(), PRODUCT)
        .app_version("5.2.0".parse()?)
        .clock(keyseal::ManualClock::new(NOW))
        .state(keyseal::MemoryStateStore::new())
        .device(r.device)
        .build()?;
    // Every path must succeed before it is timed.
    vk.verify_strict(&msg, &sig)?;
    let mut buf = [0u8; MAX_LICENSE_LEN];
    let _ = license::verify_text(&r.text, &mut buf, &r.keyring, &exp)?;
    let _ = validator.validate(&r.text)?;
    let _ = fast.validate(&r.text)?;
    if let Some((path, n)) = only {
        let n = n?;
        match path.as_str() {
            "floor" => time_batch(n, || {
                vk.verify_strict(black_box(&msg), black_box(&sig))
                    .map_or((), |()| ())
            }),
            "core" => time_batch(n, || {
                let mut buf = [0u8; MAX_LICENSE_LEN];
                black_box(
                    license::verify_text(black_box(&r.text), &mut buf, &r.keyring, &exp).is_ok(),
                );
            }),
            "sdk" => time_batch(n, || {
                black_box(validator.validate(black_box(&r.text)).is_ok());
            }),
            "sdk_precomputed" => time_batch(n, || {
                black_box(fast.validate(black_box(&r.text)).is_ok());
            }),
            other => return Err(format!("unknown path {other}").into()),
        };
        return Ok(());
    }

    let (mut floor, mut core, mut sdk, mut core_ratio, mut sdk_ratio) =
        (vec![], vec![], vec![], vec![], vec![]);
    let (mut pre, mut pre_ratio) = (vec![], vec![]);
    for _ in 0..rounds {
        let f = time_batch(batch, || {
            vk.verify_strict(black_box(&msg), black_box(&sig))
                .map_or((), |()| ())
        });
        let c = time_batch(batch, || {
            let mut buf = [0u8; MAX_LICENSE_LEN];
            black_box(license::verify_text(black_box(&r.text), &mut buf, &r.keyring, &exp).is_ok());
        });
        let s = time_batch(batch, || {
            black_box(validator.validate(black_box(&r.text)).is_ok());
        });
        let p = time_batch(batch, || {
            black_box(fast.validate(black_box(&r.text)).is_ok());
        });
        floor.push(f);
        core.push(c);
        sdk.push(s);
        pre.push(p);
        core_ratio.push(c / f);
        sdk_ratio.push(s / f);
        pre_ratio.push(p / f);
    }
    println!("\ninterleaved, {rounds} rounds of {batch} calls each (median):\n");
    println!("| path | per call | × verify_strict floor |\n|---|---|---|");
    println!(
        "| floor: verify_strict, 64-byte message | {:.2} µs | 1.000 |",
        median(&mut floor) / 1e3
    );
    println!(
        "| keyseal-core: text in, verdict out | {:.2} µs | {:.3} |",
        median(&mut core) / 1e3,
        median(&mut core_ratio)
    );
    println!(
        "| keyseal SDK: warm Validator::validate, precompute(false) | {:.2} µs | {:.3} |",
        median(&mut sdk) / 1e3,
        median(&mut sdk_ratio)
    );
    println!(
        "| keyseal SDK: warm Validator::validate, precomputed (default) | {:.2} µs | {:.3} |",
        median(&mut pre) / 1e3,
        median(&mut pre_ratio)
    );
    Ok(())
}
