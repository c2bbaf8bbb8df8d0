//! Writes the key-file fixture of the Python tests
//! (`tests/data/test.key`) with keyseal-keyfile (the issuer's own key-file code): the
//! key of seed `[7; 32]`, sealed under the passphrase
//! `correct horse battery staple` with cheap Argon2id parameters (m=64 KiB,
//! t=1, p=1) so the tests stay fast. Regenerate after a key-file format change:
//!
//! `cargo run -p keyseal-python --example seal_test_key -- sdk-python/tests/data/test.key`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use keyseal_core::SigningKey;
use keyseal_keyfile::KeyFile;
use keyseal_keyfile::{KdfParams, Passphrase};
use zeroize::Zeroizing;

fn main() {
    let path = std::env::args().nth(1).expect("usage: seal_test_key PATH");
    let key = SigningKey::from_seed(&[7; 32]).unwrap();
    let pass = Passphrase::new(Zeroizing::new("correct horse battery staple".to_owned())).unwrap();
    let params = KdfParams {
        m_cost_kib: 64,
        t_cost: 1,
        p_cost: 1,
    };
    KeyFile::seal(&key, &pass, params)
        .unwrap()
        .write(std::path::Path::new(&path))
        .unwrap();
    println!("{path}: key {}", key.key_id());
}
