//! The issuing service's JSON request bodies (products, customers, mints,
//! revocations, activations), parsed as the API parses them; a mint body
//! that resolves always yields claims keyseal-core accepts.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    keyseal_server::fuzz_request_bodies(data, 1_800_000_000);
});
