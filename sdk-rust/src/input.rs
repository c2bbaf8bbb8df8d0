//! Turning what a customer pasted or dropped into bytes: license key text,
//! armored license files, revocation list files.

use keyseal_core::keyring::MAX_CERTIFICATE_LEN;
use keyseal_core::license::{MAX_LICENSE_LEN, MAX_LICENSE_TEXT_LEN};
use keyseal_core::{Error as CoreError, Malformed, armor};

use crate::problem::Problem;

/// What every armored block starts with.
pub(crate) const ARMOR_BEGIN: &str = "-----BEGIN KEYSEAL ";

/// Whether `text` is (or contains) the armored form.
pub(crate) fn is_armored(text: &str) -> bool {
    text.contains(ARMOR_BEGIN)
}

/// The key text without what mail clients and copy-paste add: leading and
/// trailing ASCII whitespace, and inside the key every run of ASCII
/// whitespace that holds a line break (a wrapped line, with any indentation
/// or trailing spaces around the break). A space or tab inside a line is
/// kept, so the decoder refuses it as *malformed*: that is not something a
/// mail client adds, and the shared vectors pin it.
pub(crate) fn clean_key<'b>(
    key: &'b str,
    buf: &'b mut [u8; MAX_LICENSE_TEXT_LEN],
) -> Result<&'b str, CoreError> {
    let key = key.trim_ascii();
    if !key.bytes().any(|b| b == b'\n' || b == b'\r') {
        return Ok(key);
    }
    let bytes = key.as_bytes();
    let mut out = 0;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b.is_ascii_whitespace() {
            let run_end = bytes[i..]
                .iter()
                .position(|c| !c.is_ascii_whitespace())
                .map_or(bytes.len(), |n| i + n);
            let run = &bytes[i..run_end];
            if !run.iter().any(|&c| c == b'\n' || c == b'\r') {
                let dst = buf
                    .get_mut(out..out + run.len())
                    .ok_or(Malformed::TooLong)?;
                dst.copy_from_slice(run);
                out += run.len();
            }
            i = run_end;
        } else {
            *buf.get_mut(out).ok_or(Malformed::TooLong)? = b;
            out += 1;
            i += 1;
        }
    }
    // Only whole ASCII runs were dropped from valid UTF-8, so this cannot fail.
    std::str::from_utf8(&buf[..out]).map_err(|_| Malformed::Encoding.into())
}

/// The armored text with each line trimmed of surrounding ASCII whitespace
/// (indentation, trailing spaces, CR) and blank lines dropped, so blocks that
/// went through a mail client still parse. Line lengths stay checked by
/// keyseal-core: a re-wrapped body is *malformed*.
fn normalize_armor(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines().map(str::trim_ascii).filter(|l| !l.is_empty()) {
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The blocks of an armored license file.
#[derive(Debug, Default)]
pub(crate) struct LicenseFile {
    pub license: Vec<u8>,
    pub certificates: Vec<Vec<u8>>,
    pub revocation_lists: Vec<Vec<u8>>,
}

/// Splits an armored license file: exactly one LICENSE block, any number of
/// KEY CERTIFICATE and REVOCATION LIST blocks, nothing else.
pub(crate) fn parse_license_file(text: &str) -> Result<LicenseFile, CoreError> {
    let norm = normalize_armor(text);
    let mut file = LicenseFile::default();
    let mut license = None;
    for block in armor::blocks(&norm) {
        let block = block?;
        match block.label() {
            armor::LICENSE if license.is_none() => {
                let mut buf = [0u8; MAX_LICENSE_LEN];
                license = Some(block.decode(&mut buf)?.to_vec());
            }
            armor::KEY_CERTIFICATE => {
                let mut buf = [0u8; MAX_CERTIFICATE_LEN];
                file.certificates.push(block.decode(&mut buf)?.to_vec());
            }
            armor::REVOCATION_LIST => file.revocation_lists.push(block.decode_to_vec()?),
            _ => return Err(Malformed::Armor.into()),
        }
    }
    file.license = license.ok_or(Malformed::Armor)?;
    Ok(file)
}

/// A revocation list file: binary, or armored with exactly one REVOCATION
/// LIST block and any number of KEY CERTIFICATE blocks.
pub(crate) struct ListFile {
    pub list: Vec<u8>,
    pub certificates: Vec<Vec<u8>>,
}

pub(crate) fn parse_list_file(bytes: &[u8]) -> Result<ListFile, CoreError> {
    let text = match std::str::from_utf8(bytes) {
        Ok(t) if is_armored(t) => t,
        // Binary (the version byte first), or garbage that verification refuses.
        _ => {
            return Ok(ListFile {
                list: bytes.to_vec(),
                certificates: Vec::new(),
            });
        }
    };
    let norm = normalize_armor(text);
    let mut list = None;
    let mut certificates = Vec::new();
    for block in armor::blocks(&norm) {
        let block = block?;
        match block.label() {
            armor::REVOCATION_LIST if list.is_none() => list = Some(block.decode_to_vec()?),
            armor::KEY_CERTIFICATE => {
                let mut buf = [0u8; MAX_CERTIFICATE_LEN];
                certificates.push(block.decode(&mut buf)?.to_vec());
            }
            _ => return Err(Malformed::Armor.into()),
        }
    }
    Ok(ListFile {
        list: list.ok_or(Malformed::Armor)?,
        certificates,
    })
}

/// A license key from a file: text, UTF-8 with or without a byte-order
/// mark (Windows editors add one).
#[cfg(keyseal_os)]
pub(crate) fn read_key_file(path: &std::path::Path) -> Result<String, Problem> {
    /// Far more than any license file with certificates and a short list.
    const MAX_KEY_FILE_LEN: u64 = 16 << 20;
    use std::io::Read;
    let shown = path.display();
    let file = std::fs::File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Problem::LicenseNotFound {
            detail: format!("no file {shown}"),
        },
        _ => Problem::Unreadable {
            detail: format!("{shown}: {e}"),
        },
    })?;
    let mut bytes = Vec::new();
    file.take(MAX_KEY_FILE_LEN + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Problem::Unreadable {
            detail: format!("{shown}: {e}"),
        })?;
    if bytes.len() as u64 > MAX_KEY_FILE_LEN {
        return Err(Problem::Unreadable {
            detail: format!("{shown}: too large for a license file"),
        });
    }
    let text = String::from_utf8(bytes).map_err(|_| Problem::Unreadable {
        detail: format!("{shown}: not a text file"),
    })?;
    let text = text
        .strip_prefix('\u{feff}')
        .map(str::to_owned)
        .unwrap_or(text);
    if text.trim_ascii().is_empty() {
        return Err(Problem::LicenseNotFound {
            detail: format!("{shown} is empty"),
        });
    }
    Ok(text)
}

/// A license key from an environment variable. Its value never appears in
/// a message.
pub(crate) fn read_key_env(name: &str) -> Result<String, Problem> {
    match std::env::var(name) {
        Ok(v) if !v.trim_ascii().is_empty() => Ok(v),
        Ok(_) => Err(Problem::LicenseNotFound {
            detail: format!("environment variable {name} is empty"),
        }),
        Err(std::env::VarError::NotPresent) => Err(Problem::LicenseNotFound {
            detail: format!("environment variable {name} is not set"),
        }),
        Err(std::env::VarError::NotUnicode(_)) => Err(Problem::Unreadable {
            detail: format!("environment variable {name}: not text"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(s: &str) -> Result<String, CoreError> {
        let mut buf = [0u8; MAX_LICENSE_TEXT_LEN];
        clean_key(s, &mut buf).map(str::to_owned)
    }

    #[test]
    fn mail_client_line_breaks_are_removed() {
        assert_eq!(clean("  ks1.abc\n").unwrap(), "ks1.abc");
        assert_eq!(clean("ks1.ab\r\ncd\n  ef \n\tgh").unwrap(), "ks1.abcdefgh");
        assert_eq!(clean("ks1.ab \r\n cd").unwrap(), "ks1.abcd");
    }

    #[test]
    fn spaces_inside_a_line_are_kept_for_the_decoder_to_refuse() {
        assert_eq!(clean("ks1.ab cd").unwrap(), "ks1.ab cd");
        assert_eq!(clean("ks1.ab\ncd ef").unwrap(), "ks1.abcd ef");
        // Non-ASCII whitespace is not stripped.
        assert_eq!(clean("ks1.ab\u{a0}\ncd").unwrap(), "ks1.ab\u{a0}cd");
    }

    #[test]
    fn oversized_text_is_too_long_not_a_panic() {
        let long = format!("ks1.{}\n", "A".repeat(MAX_LICENSE_TEXT_LEN + 10));
        let long = long.replace("AAAA", "AAAA\n");
        assert_eq!(clean(&long), Err(CoreError::Malformed(Malformed::TooLong)));
    }

    #[test]
    fn license_file_blocks() {
        let mut text = String::from("Hello,\n\n  here is your license:\n");
        armor::write_block(&mut text, armor::LICENSE, &[1, 2, 3]).unwrap();
        armor::write_block(&mut text, armor::KEY_CERTIFICATE, &[4, 5]).unwrap();
        armor::write_block(&mut text, armor::REVOCATION_LIST, &[6; 100]).unwrap();
        // A mail client indented it and added CRLF and trailing spaces.
        let mangled: String = text.lines().map(|l| format!("  {l} \r\n\r\n")).collect();
        for t in [&text, &mangled] {
            let f = parse_license_file(t).unwrap();
            assert_eq!(f.license, [1, 2, 3]);
            assert_eq!(f.certificates, [vec![4, 5]]);
            assert_eq!(f.revocation_lists, [vec![6; 100]]);
        }
        let mut two = text.clone();
        armor::write_block(&mut two, armor::LICENSE, &[1]).unwrap();
        assert_eq!(
            parse_license_file(&two).unwrap_err(),
            CoreError::Malformed(Malformed::Armor)
        );
        let mut none = String::new();
        armor::write_block(&mut none, armor::KEY_CERTIFICATE, &[1]).unwrap();
        assert_eq!(
            parse_license_file(&none).unwrap_err(),
            CoreError::Malformed(Malformed::Armor)
        );
        let mut odd = String::new();
        armor::write_block(&mut odd, "SECRET KEY", &[1]).unwrap();
        armor::write_block(&mut odd, armor::LICENSE, &[1]).unwrap();
        assert_eq!(
            parse_license_file(&odd).unwrap_err(),
            CoreError::Malformed(Malformed::Armor)
        );
    }

    #[test]
    fn list_files_binary_or_armored() {
        assert_eq!(parse_list_file(&[1, 2, 3]).unwrap().list, [1, 2, 3]);
        let mut text = String::new();
        armor::write_block(&mut text, armor::REVOCATION_LIST, &[9; 70]).unwrap();
        armor::write_block(&mut text, armor::KEY_CERTIFICATE, &[4]).unwrap();
        let f = parse_list_file(text.as_bytes()).unwrap();
        assert_eq!((f.list, f.certificates), (vec![9; 70], vec![vec![4]]));
        let mut lic = String::new();
        armor::write_block(&mut lic, armor::LICENSE, &[1]).unwrap();
        assert!(parse_list_file(lic.as_bytes()).is_err());
    }

    #[test]
    fn env_var_value_never_in_messages() {
        let name = "KEYSEAL_INPUT_TEST_UNSET_VARIABLE";
        let e = read_key_env(name).unwrap_err();
        assert_eq!(e.code(), "license_not_found");
        assert!(e.to_string().contains(name));
    }
}
