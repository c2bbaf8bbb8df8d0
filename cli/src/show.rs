//! Reading license keys from arguments, and showing claims as text or JSON.

use std::io::Read;
use std::path::Path;

use keyseal_core::claims::{Claims, DeviceBinding};
use keyseal_core::license::{self, MAX_LICENSE_LEN};
use keyseal_core::{KeyId, armor};
use keyseal_issuer::time::{format, format_duration};
use serde_json::{Value, json};

use crate::error::CliError;

/// A license argument: the `ks1.` text, a license file, or `-` for stdin.
/// Returns the binary license, or why it is not one (a core error).
pub(crate) fn read_license(arg: &str) -> Result<Result<Vec<u8>, String>, CliError> {
    let text = if arg == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).map_err(|e| {
            CliError::system(
                format!("cannot read standard input: {e}"),
                "pipe the key or the license file in",
            )
        })?;
        s
    } else if !arg.starts_with("ks") && Path::new(arg).is_file() {
        std::fs::read_to_string(arg).map_err(|e| {
            CliError::input(
                format!("cannot read {arg}: {e}"),
                "pass a license file (text) or the ks1. key",
            )
        })?
    } else if !arg.starts_with("ks") && !arg.contains("-----BEGIN") {
        // Neither a key nor a license file's text: a path that is not there
        // (a typo), not a key that failed to verify.
        return Err(CliError::input(
            format!("no such file: {arg}"),
            "pass a license file, the ks1. key, or - to read standard input",
        ));
    } else {
        arg.to_owned()
    };
    Ok(decode(&text))
}

fn decode(text: &str) -> Result<Vec<u8>, String> {
    if text.contains("-----BEGIN KEYSEAL") {
        for block in armor::blocks(text) {
            let block = block.map_err(|e| format!("{e} (the license file is damaged)"))?;
            if block.label() == armor::LICENSE {
                let mut buf = [0u8; MAX_LICENSE_LEN];
                return block
                    .decode(&mut buf)
                    .map(<[u8]>::to_vec)
                    .map_err(|e| e.to_string());
            }
        }
        return Err("the file has no KEYSEAL LICENSE block".into());
    }
    // Mail clients wrap and indent long lines: whitespace is never part of a key.
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let mut buf = [0u8; MAX_LICENSE_LEN];
    license::decode_text(&compact, &mut buf)
        .map(<[u8]>::to_vec)
        .map_err(|e| {
            if compact.starts_with("ks") {
                e.to_string()
            } else {
                format!("{e} (not a ks1. license key, and no such license file)")
            }
        })
}

fn device_text(d: &DeviceBinding) -> String {
    match d {
        DeviceBinding::Exact { .. } => {
            "bound to one device (every fingerprint component must match)".into()
        }
        DeviceBinding::Tolerant { required, digests } => {
            format!(
                "bound to one device ({required} of {} fingerprint components must match)",
                digests.len()
            )
        }
    }
}

/// The claims as aligned text lines.
pub(crate) fn claims_text(c: &Claims<'_>, key_id: KeyId) -> String {
    let mut lines: Vec<(&str, String)> = vec![
        ("license", c.license_id.to_string()),
        ("product", c.product.to_owned()),
        ("customer", c.customer.to_owned()),
        ("plan", c.plan.to_owned()),
        ("issued", format(c.issued_at)),
    ];
    if let Some(nb) = c.not_before {
        lines.push(("not before", format(nb)));
    }
    lines.push((
        "expires",
        match c.expires_at {
            None => "never".into(),
            Some(t) if c.grace_secs > 0 => format!(
                "{} (+{} grace)",
                format(t),
                format_duration(u64::from(c.grace_secs))
            ),
            Some(t) => format(t),
        },
    ));
    if let Some(d) = &c.device {
        lines.push(("device", device_text(d)));
    }
    if !c.entitlements.is_empty() {
        lines.push(("entitlements", c.entitlements.as_slice().join(", ")));
    }
    if let Some(v) = c.max_version {
        lines.push(("max version", v.to_string()));
    }
    for (k, v) in c.extensions.as_slice() {
        lines.push(("ext", format!("{k}={v}")));
    }
    lines.push(("signing key", key_id.to_string()));
    let mut s = String::new();
    for (k, v) in lines {
        s.push_str(&format!("  {k:<13}{v}\n"));
    }
    s
}

/// The claims as a JSON object (times in RFC 3339 UTC).
pub(crate) fn claims_json(c: &Claims<'_>, key_id: KeyId) -> Value {
    let device = c.device.as_ref().map(|d| match d {
        // As the vectors and the other SDKs name them.
        DeviceBinding::Exact { .. } => json!({ "kind": "exact" }),
        DeviceBinding::Tolerant { required, digests } => {
            json!({ "kind": "tolerant", "required": required, "components": digests.len() })
        }
    });
    let ext: serde_json::Map<String, Value> = c
        .extensions
        .as_slice()
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
        .collect();
    json!({
        "license_id": c.license_id.to_string(),
        "product": c.product,
        "customer": c.customer,
        "plan": c.plan,
        "issued_at": format(c.issued_at),
        "not_before": c.not_before.map(format),
        "expires_at": c.expires_at.map(format),
        "grace": (c.grace_secs > 0).then(|| format_duration(u64::from(c.grace_secs))),
        "device": device,
        "entitlements": c.entitlements.as_slice(),
        "max_version": c.max_version.map(|v| v.to_string()),
        "ext": ext,
        "key_id": key_id.to_string(),
    })
}

/// Prints JSON, pretty, to stdout.
pub(crate) fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// An optional time as text.
pub(crate) fn opt_time(t: Option<u64>) -> String {
    t.map_or_else(|| "-".into(), format)
}

/// `n thing(s)`.
pub(crate) fn plural(n: u64, thing: &str) -> String {
    format!("{n} {thing}{}", if n == 1 { "" } else { "s" })
}

/// `a licenses, b keys`.
pub(crate) fn counted(a: u64, a_thing: &str, b: u64, b_thing: &str) -> String {
    format!("{}, {}", plural(a, a_thing), plural(b, b_thing))
}
