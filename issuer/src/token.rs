//! API tokens: `ksk_` and 43 base64url characters (256 random bits). The
//! ledger stores only the SHA-256 of a token; the service finds a token by
//! that hash and compares the hashes again in constant time. The format
//! lives here, beside the tokens' table, so the service and the command
//! line (`keyseal org create`, `keyseal token create`) make the same ones.

use base64ct::{Base64UrlUnpadded, Encoding};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Every token starts with this, so secret scanners recognise it.
pub const TOKEN_PREFIX: &str = "ksk_";
/// Random bytes in a token.
pub const TOKEN_BYTES: usize = 32;

/// A new random token (the secret, shown once).
pub fn new_token() -> Result<String, getrandom::Error> {
    let mut b = [0u8; TOKEN_BYTES];
    getrandom::fill(&mut b)?;
    Ok(format!(
        "{TOKEN_PREFIX}{}",
        Base64UrlUnpadded::encode_string(&b)
    ))
}

/// Lower-case hex SHA-256 of a token: what the ledger stores.
#[must_use]
pub fn token_hash(token: &str) -> String {
    keyseal_core::hex::encode(&Sha256::digest(token.as_bytes()))
}

/// Whether a token has the right shape (checked before any lookup).
#[must_use]
pub fn well_formed(token: &str) -> bool {
    token.len() == TOKEN_PREFIX.len() + 43
        && token.starts_with(TOKEN_PREFIX)
        && token[TOKEN_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Constant-time equality of two hashes.
#[must_use]
pub fn same_hash(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_well_formed_and_hashed() {
        let t = new_token().unwrap();
        assert!(well_formed(&t), "{t}");
        assert!(!well_formed(&t[1..]) && !well_formed(&format!("{t}x")));
        assert!(!well_formed(&format!("ksk_{}", "+".repeat(43))));
        let h = token_hash(&t);
        assert_eq!(h.len(), 64);
        assert!(same_hash(&h, &token_hash(&t)));
        assert!(!same_hash(&h, &token_hash(&new_token().unwrap())));
    }
}
