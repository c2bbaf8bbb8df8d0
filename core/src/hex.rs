//! Hex, as keyseal's texts use it: key ids, license ids, seat ids, and the
//! service's signatures and seeds. One decoder for every crate of the
//! project (hand-written: a dozen lines, no_std, no allocation, instead of
//! a dependency in the core every app links).

/// Not exactly the expected number of hex digits (`0-9`, `a-f`, `A-F`;
/// no sign, no prefix, no whitespace).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidHex;

impl core::fmt::Display for InvalidHex {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("not the expected number of hex digits")
    }
}

impl core::error::Error for InvalidHex {}

/// Decodes `text`, exactly `2 * out.len()` hex digits of either case, into
/// `out`. On error `out` may hold part of the input: callers decoding a
/// secret pass a buffer they wipe.
pub fn decode(text: &str, out: &mut [u8]) -> Result<(), InvalidHex> {
    crate::text::decode_hex(text, out).map_err(|()| InvalidHex)
}

/// `bytes` as lower-case hex.
#[cfg(feature = "alloc")]
#[must_use]
pub fn encode(bytes: &[u8]) -> alloc::string::String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = alloc::string::String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_exactly_and_refuses_the_rest() {
        let mut out = [0u8; 2];
        assert_eq!(decode("0aFf", &mut out), Ok(()));
        assert_eq!(out, [0x0a, 0xff]);
        for bad in ["", "0a", "0aff00", "+aff", "0a f", "0x0a", "zzzz", "0aé"] {
            assert_eq!(decode(bad, &mut out), Err(InvalidHex), "{bad:?}");
        }
    }

    #[cfg(feature = "alloc")]
    #[test]
    fn encodes_lower_case_and_round_trips() {
        let bytes: alloc::vec::Vec<u8> = (0..=255).collect();
        let text = encode(&bytes);
        assert_eq!(&text[..6], "000102");
        assert_eq!(&text[text.len() - 4..], "feff");
        let mut back = [0u8; 256];
        decode(&text, &mut back).unwrap();
        assert_eq!(&back[..], &bytes[..]);
    }
}
