//! Text forms: prefixed unpadded base64url, hex, and the armored file form.

use core::fmt;

use base64ct::{Base64UrlUnpadded, Encoding};

use crate::error::{Error, Malformed};

/// Decodes `prefix` + canonical unpadded base64url into `buf`.
pub(crate) fn decode_prefixed<'b>(
    prefix: &str,
    text: &str,
    buf: &'b mut [u8],
) -> Result<&'b [u8], Error> {
    let body = text.strip_prefix(prefix).ok_or(Malformed::Prefix)?;
    decode_b64(body, buf)
}

/// Decodes `stem` + `"1."` + canonical unpadded base64url into `buf`, where
/// `stem` + other digits + `.` is an unsupported version (`u8::MAX` when
/// the digits do not fit a byte, or spell 1 otherwise, as `01`): the text forms whose prefix carries
/// their version (`kslease1.`, `ksallot1.`).
pub(crate) fn decode_versioned<'b>(
    stem: &str,
    text: &str,
    buf: &'b mut [u8],
) -> Result<&'b [u8], Error> {
    let rest = text.strip_prefix(stem).ok_or(Malformed::Prefix)?;
    match rest.split_once('.') {
        Some(("1", body)) => decode_b64(body, buf),
        Some((digits, _)) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
            Err(Error::UnsupportedVersion(
                digits
                    .parse::<u8>()
                    .ok()
                    .filter(|v| *v != 1)
                    .unwrap_or(u8::MAX),
            ))
        }
        _ => Err(Malformed::Prefix.into()),
    }
}

/// Decodes canonical unpadded base64url into `buf`.
pub(crate) fn decode_b64<'b>(body: &str, buf: &'b mut [u8]) -> Result<&'b [u8], Error> {
    // Unpadded base64 of n bytes is ceil(4n/3) characters; check the size
    // first so an oversized input is reported as such, not as bad base64.
    if body.len().div_ceil(4) * 3 > buf.len() + 2 {
        return Err(Malformed::TooLong.into());
    }
    Base64UrlUnpadded::decode(body, buf).map_err(|e| match e {
        base64ct::Error::InvalidLength => Malformed::TooLong.into(),
        base64ct::Error::InvalidEncoding => Malformed::Base64.into(),
    })
}

/// Writes `prefix` + unpadded base64url of `bytes`, without allocating.
pub(crate) fn write_prefixed(f: &mut dyn fmt::Write, prefix: &str, bytes: &[u8]) -> fmt::Result {
    f.write_str(prefix)?;
    write_b64(f, bytes)
}

/// Writes unpadded base64url of `bytes` in 48-byte chunks (64 characters each),
/// which concatenate to the encoding of the whole.
pub(crate) fn write_b64(f: &mut dyn fmt::Write, bytes: &[u8]) -> fmt::Result {
    let mut out = [0u8; 64];
    for chunk in bytes.chunks(48) {
        let s = Base64UrlUnpadded::encode(chunk, &mut out).map_err(|_| fmt::Error)?;
        f.write_str(s)?;
    }
    Ok(())
}

/// Prefixed base64url as an owned string.
#[cfg(feature = "alloc")]
pub(crate) fn to_prefixed_string(prefix: &str, bytes: &[u8]) -> alloc::string::String {
    let mut s = alloc::string::String::with_capacity(prefix.len() + bytes.len().div_ceil(3) * 4);
    s.push_str(prefix);
    s.push_str(&Base64UrlUnpadded::encode_string(bytes));
    s
}

/// Decodes exactly `out.len()` bytes of hex.
pub(crate) fn decode_hex(s: &str, out: &mut [u8]) -> Result<(), ()> {
    let s = s.as_bytes();
    if s.len() != out.len() * 2 {
        return Err(());
    }
    for (o, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
        let hi = hex_val(pair[0]).ok_or(())?;
        let lo = hex_val(pair[1]).ok_or(())?;
        *o = (hi << 4) | lo;
    }
    Ok(())
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// The armored form: labelled blocks of base64url, 64 characters a line,
/// between `-----BEGIN KEYSEAL <LABEL>-----` and `-----END KEYSEAL <LABEL>-----`.
/// Text outside blocks (a greeting in an email, say) is ignored.
pub mod armor {
    use super::*;

    /// Characters per full line of an armored body.
    pub const LINE_LEN: usize = 64;
    /// Label of a license block.
    pub const LICENSE: &str = "LICENSE";
    /// Label of a key certificate block.
    pub const KEY_CERTIFICATE: &str = "KEY CERTIFICATE";
    /// Label of a revocation list block.
    pub const REVOCATION_LIST: &str = "REVOCATION LIST";

    const BEGIN: &str = "-----BEGIN KEYSEAL ";
    const END: &str = "-----END KEYSEAL ";
    const DASHES: &str = "-----";

    /// One armored block, not yet decoded.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Block<'a> {
        label: &'a str,
        body: &'a str,
    }

    impl<'a> Block<'a> {
        /// The block's label, for example [`LICENSE`].
        #[must_use]
        pub const fn label(&self) -> &'a str {
            self.label
        }

        /// Decodes the body into `buf`. Every line but the last must hold
        /// exactly [`LINE_LEN`] characters; a trailing `\r` is tolerated.
        pub fn decode<'b>(&self, buf: &'b mut [u8]) -> Result<&'b [u8], Error> {
            let mut written = 0;
            let mut lines = self
                .body
                .lines()
                .map(|l| l.strip_suffix('\r').unwrap_or(l))
                .peekable();
            while let Some(line) = lines.next() {
                let last = lines.peek().is_none();
                if line.is_empty() || line.len() > LINE_LEN || (!last && line.len() != LINE_LEN) {
                    return Err(Malformed::Armor.into());
                }
                let rest = buf.get_mut(written..).ok_or(Malformed::TooLong)?;
                written += decode_b64(line, rest)?.len();
            }
            if written == 0 {
                return Err(Malformed::Armor.into());
            }
            Ok(&buf[..written])
        }

        /// Decodes the body into a buffer sized to this block (not to the
        /// text around it), for blocks with no fixed bound such as
        /// revocation lists.
        #[cfg(feature = "alloc")]
        pub fn decode_to_vec(&self) -> Result<alloc::vec::Vec<u8>, Error> {
            // At most 3 bytes per 4 characters, line breaks included.
            let mut buf = alloc::vec![0u8; self.body.len() / 4 * 3 + 3];
            let n = self.decode(&mut buf)?.len();
            buf.truncate(n);
            Ok(buf)
        }
    }

    /// Iterates over the armored blocks of `text`.
    pub fn blocks(text: &str) -> Blocks<'_> {
        Blocks { rest: text }
    }

    /// Iterator returned by [`blocks`].
    #[derive(Debug, Clone)]
    pub struct Blocks<'a> {
        rest: &'a str,
    }

    impl<'a> Iterator for Blocks<'a> {
        type Item = Result<Block<'a>, Error>;

        fn next(&mut self) -> Option<Self::Item> {
            let start = self.rest.find(BEGIN)?;
            let after_begin = &self.rest[start + BEGIN.len()..];
            let Some(eol) = after_begin.find('\n') else {
                self.rest = "";
                return Some(Err(Malformed::Armor.into()));
            };
            let header = after_begin[..eol].trim_end_matches('\r');
            let Some(label) = header.strip_suffix(DASHES) else {
                self.rest = "";
                return Some(Err(Malformed::Armor.into()));
            };
            let body_and_rest = &after_begin[eol + 1..];
            let Some(end) = body_and_rest.find(END) else {
                self.rest = "";
                return Some(Err(Malformed::Armor.into()));
            };
            let body = body_and_rest[..end].trim_end_matches(['\r', '\n']);
            let after_end = &body_and_rest[end + END.len()..];
            let end_label_ok = after_end
                .strip_prefix(label)
                .and_then(|r| r.strip_prefix(DASHES))
                .filter(|r| r.is_empty() || r.starts_with('\n') || r.starts_with("\r\n"));
            match end_label_ok {
                Some(r) => {
                    self.rest = r;
                    Some(Ok(Block { label, body }))
                }
                None => {
                    self.rest = "";
                    Some(Err(Malformed::Armor.into()))
                }
            }
        }
    }

    /// Writes one armored block.
    pub fn write_block(f: &mut dyn fmt::Write, label: &str, bytes: &[u8]) -> fmt::Result {
        writeln!(f, "{BEGIN}{label}{DASHES}")?;
        for chunk in bytes.chunks(LINE_LEN / 4 * 3) {
            write_b64(f, chunk)?;
            f.write_char('\n')?;
        }
        writeln!(f, "{END}{label}{DASHES}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;

    #[test]
    fn base64_is_strict() {
        let mut buf = [0u8; 8];
        assert_eq!(decode_b64("AQI", &mut buf).unwrap(), &[1, 2]);
        // Non-canonical: unused low bits set in the last character.
        assert_eq!(decode_b64("AQJ", &mut buf), Err(Malformed::Base64.into()));
        // Padding, standard-alphabet characters and whitespace are refused.
        for bad in ["AQI=", "+/8", "AQ I", "A"] {
            assert!(decode_b64(bad, &mut buf).is_err(), "{bad}");
        }
        assert_eq!(
            decode_b64("AAAAAAAAAAAAAAAA", &mut buf),
            Err(Malformed::TooLong.into())
        );
    }

    #[test]
    fn armor_round_trip_with_surrounding_text_and_crlf() {
        let data: [u8; 100] = core::array::from_fn(|i| i as u8);
        let mut s = String::from("Hello, here is your license:\n\n");
        armor::write_block(&mut s, armor::LICENSE, &data).unwrap();
        s.push_str("Thanks!\n");
        for text in [s.clone(), s.replace('\n', "\r\n")] {
            let blocks: alloc::vec::Vec<_> = armor::blocks(&text).collect();
            assert_eq!(blocks.len(), 1);
            let block = blocks[0].unwrap();
            assert_eq!(block.label(), armor::LICENSE);
            let mut buf = [0u8; 200];
            assert_eq!(block.decode(&mut buf).unwrap(), &data[..]);
            assert_eq!(block.decode_to_vec().unwrap(), &data[..]);
        }
    }

    #[test]
    fn armor_refuses_broken_blocks() {
        let mut buf = [0u8; 64];
        let mismatched =
            "-----BEGIN KEYSEAL LICENSE-----\nAQI\n-----END KEYSEAL REVOCATION LIST-----\n";
        assert!(armor::blocks(mismatched).next().unwrap().is_err());
        let unterminated = "-----BEGIN KEYSEAL LICENSE-----\nAQI\n";
        assert!(armor::blocks(unterminated).next().unwrap().is_err());
        let short_line =
            "-----BEGIN KEYSEAL LICENSE-----\nAQI\nAQI\n-----END KEYSEAL LICENSE-----\n";
        let block = armor::blocks(short_line).next().unwrap().unwrap();
        assert!(block.decode(&mut buf).is_err());
        let empty = "-----BEGIN KEYSEAL LICENSE-----\n-----END KEYSEAL LICENSE-----\n";
        let block = armor::blocks(empty).next().unwrap().unwrap();
        assert!(block.decode(&mut buf).is_err());
    }
}
