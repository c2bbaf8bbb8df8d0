//! The vendor's side of the npm package's air-gapped seat test
//! (`tests/seats.test.mjs`), signed by keyseal-core's own code as
//! `keyseal activate --request` signs (license proof checked, lease bound
//! to the request's device binding, response code). The vendor key is the
//! test key of seed `[7; 32]`. `scripts/test.sh` builds it and gives the
//! tests its path (`KEYSEAL_TEST_VENDOR`):
//!
//! - `test_vendor license PRODUCT NOW`: the keyring line, then a license key
//!   of PRODUCT issued at NOW (unix seconds), one line each;
//! - `test_vendor respond LICENSE_KEY REQUEST_CODE NOW`: for a request code
//!   made for that license, the response code, the seat id and the lease
//!   text it carries (issued at NOW, renew an hour later, ending an hour
//!   after that), one line each; a request that does not prove the license
//!   key fails (exit status 1).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use keyseal_core::activation_code::{ActivationRequest, response_code};
use keyseal_core::license::{self, MAX_LICENSE_LEN};
use keyseal_core::{Claims, LeaseTerms, LicenseId, SeatId, SigningKey, lease};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let key = SigningKey::from_seed(&[7; 32]).unwrap();
    let now = |s: &str| s.parse::<u64>().expect("NOW: unix seconds");
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["license", product, at] => {
            let claims = Claims::new(
                LicenseId::from_bytes([0x42; 16]),
                product,
                "cus_airgap",
                "pro",
                now(at),
            );
            let bytes = license::issue(&key, &claims, None).unwrap();
            println!("key {}", key.public_key());
            println!("{}", license::to_text(&bytes));
        }
        ["respond", license_key, request_code, at] => {
            let mut buf = [0u8; MAX_LICENSE_LEN];
            let binary = license::decode_text(license_key, &mut buf).unwrap();
            let request = ActivationRequest::from_code(request_code).unwrap();
            if !request.proves(binary) {
                eprintln!("the request does not prove this license key");
                std::process::exit(1);
            }
            let mut seat = [0u8; 16];
            seat.copy_from_slice(&request.public_key.to_bytes()[..16]);
            let at = now(at);
            let terms = LeaseTerms {
                license_id: request.license_id,
                seat_id: SeatId::from_bytes(seat),
                device_hint: request.device_hint,
                issued_at: at,
                renew_at: at + 3600,
                expires_at: at + 7200,
            };
            let bytes = lease::issue_bound(&key, &terms, &request.binding_hash).unwrap();
            println!("{}", response_code(&bytes));
            println!("{}", terms.seat_id);
            println!("{}", lease::to_text(&bytes));
        }
        _ => {
            eprintln!(
                "usage: test_vendor license PRODUCT NOW | respond LICENSE_KEY REQUEST_CODE NOW"
            );
            std::process::exit(2);
        }
    }
}
