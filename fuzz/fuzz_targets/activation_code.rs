//! Activation request and response codes: decoding never panics, an
//! accepted request encodes back to a code that decodes to it, and a
//! response's lease bytes are what the code carries.
#![no_main]

use keyseal_core::activation_code::{
    ActivationRequest, CHECKSUM_LEN, lease_from_response, response_code,
};
use keyseal_core::lease::MAX_LEASE_LEN;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(r) = ActivationRequest::from_code(text) {
        assert_eq!(ActivationRequest::from_code(&r.to_code()), Ok(r));
    }
    let mut buf = [0u8; MAX_LEASE_LEN + CHECKSUM_LEN + 4];
    if let Ok(lease) = lease_from_response(text, &mut buf) {
        let lease = lease.to_vec();
        let again = response_code(&lease);
        let mut buf2 = [0u8; MAX_LEASE_LEN + CHECKSUM_LEN + 4];
        assert_eq!(lease_from_response(&again, &mut buf2).map(<[u8]>::to_vec), Ok(lease));
    }
});
