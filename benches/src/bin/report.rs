//! Prints the bench table from criterion's results (`target/criterion`):
//! each figure with its ratio to the `verify_strict` floor and to each peer,
//! and the text size of each format. Run by `scripts/bench.sh`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use keyseal_benches::{Reference, json_claims, pkcs8_der, seed};

const FLOOR: &str = "verify/floor_verify_strict_64B";
const PEERS: [(&str, &str); 2] = [
    ("jsonwebtoken", "verify/jsonwebtoken_eddsa"),
    ("pasetors", "verify/pasetors_v4_public"),
];

fn mean_ns(dir: &Path, id: &str) -> Option<f64> {
    let text = std::fs::read_to_string(dir.join(id).join("new/estimates.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["mean"]["point_estimate"].as_f64()
}

fn human(ns: f64) -> String {
    if ns >= 1_000.0 {
        format!("{:.2} µs", ns / 1_000.0)
    } else {
        format!("{ns:.1} ns")
    }
}

fn main() {
    let dir = std::env::args()
        .nth(1)
        .map_or_else(|| PathBuf::from("target/criterion"), PathBuf::from);
    let ids = [
        FLOOR,
        "verify/keyseal_text_to_verdict",
        "verify/keyseal_text_to_verdict_precomputed",
        "validate/sdk_warm_validator",
        "validate/sdk_warm_validator_no_precompute",
        "validate/sdk_warm_validate_with_lease",
        "validate/sdk_warm_validate_lease_alone",
        "keyring/precompute_one_key",
        "verify/jsonwebtoken_eddsa",
        "verify/pasetors_v4_public",
        "keyseal/mint_sign_and_encode",
        "keyseal/decode_only",
        "keyseal/revocation_lookup_1000",
        "keyseal/revocation_lookup_1000000",
    ];
    let floor = mean_ns(&dir, FLOOR);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| bench | mean | × floor | × jsonwebtoken | × pasetors |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|");
    for id in ids {
        let Some(ns) = mean_ns(&dir, id) else {
            continue;
        };
        let ratio =
            |base: Option<f64>| base.map_or_else(|| "-".to_owned(), |b| format!("{:.3}", ns / b));
        let _ = writeln!(
            out,
            "| {id} | {} | {} | {} | {} |",
            human(ns),
            ratio(floor),
            ratio(mean_ns(&dir, PEERS[0].1)),
            ratio(mean_ns(&dir, PEERS[1].1)),
        );
    }
    let r = Reference::new();
    let jwt = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA),
        &json_claims(),
        &jsonwebtoken::EncodingKey::from_ed_der(&pkcs8_der(&seed())),
    )
    .map(|t| t.len());
    let _ = writeln!(
        out,
        "\n| format (reference claims) | text size |\n|---|---|"
    );
    let _ = writeln!(out, "| keyseal `ks1.` key | {} |", r.text.len());
    if let Ok(n) = jwt {
        let _ = writeln!(out, "| EdDSA JWT (jsonwebtoken) | {n} |");
    }
    print!("{out}");
}
