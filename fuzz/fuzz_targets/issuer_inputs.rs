//! The vendor-side parsers: batch files (CSV and JSONL, each row resolved to
//! a license request and its claims checked) and vault key files. Every row
//! gives a numbered result, rows are numbered in order, and a request that
//! resolves always yields claims keyseal-core accepts.
#![no_main]

use keyseal_core::LicenseId;
use keyseal_issuer::batch::{csv_rows, jsonl_rows};
use keyseal_issuer::keyfile::KeyFile;
use libfuzzer_sys::fuzz_target;

const NOW: u64 = 1_800_000_000;

fuzz_target!(|data: &[u8]| {
    for rows in [csv_rows(data), jsonl_rows(data)] {
        let mut last = 0;
        for row in rows.take(64) {
            let Ok((n, fields)) = row else { continue };
            assert!(n > last, "row numbers go up");
            last = n;
            if let Ok(req) = fields.resolve(NOW) {
                req.claims(LicenseId::from_bytes([1; 16]), NOW)
                    .validate()
                    .expect("a resolved request gives valid claims");
            }
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(file) = serde_json::from_str::<KeyFile>(text) {
            let _ = file.kdf_params();
            let _ = file.key_id();
        }
    }
});
