//! What to mint: license requests as users write them (flags, CSV columns,
//! JSONL fields, all with the same names) and as the issuer signs them.

use keyseal_core::claims::{
    Claims, Entitlements, Extensions, LicenseId, MAX_CUSTOMER_LEN, MAX_EXTENSION_VALUE_LEN,
    MAX_NAME_LEN, VersionCap,
};
use keyseal_core::device::{DeviceRule, Fingerprint};

use crate::error::{Error, Result};
use crate::time::{MAX_TIME, When, parse_duration};

/// The field names of a request, shared by the CLI flags (`--not-before`
/// for `not_before`), CSV headers and JSONL keys.
pub const FIELDS: &[&str] = &[
    "product",
    "customer",
    "plan",
    "expires",
    "not_before",
    "grace",
    "device",
    "device_match",
    "entitlements",
    "max_version",
    "ext",
    "external_id",
];

/// Longest external id, in bytes.
pub const MAX_EXTERNAL_ID_LEN: usize = 128;

/// A license request as written: every field is still text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestFields {
    /// Product id (must be registered in the vault).
    pub product: Option<String>,
    /// Opaque customer id.
    pub customer: Option<String>,
    /// Plan name.
    pub plan: Option<String>,
    /// Expiry: a time, a duration from now, or `never`. Required.
    pub expires: Option<String>,
    /// Not valid before: a time or a duration from now.
    pub not_before: Option<String>,
    /// Grace period after expiry, as a duration (`14d`).
    pub grace: Option<String>,
    /// A `ksfp1.` device fingerprint to bind to.
    pub device: Option<String>,
    /// How many fingerprint components must match (k of n); exact if unset.
    pub device_match: Option<String>,
    /// Entitlement names, in any order.
    pub entitlements: Vec<String>,
    /// Newest covered app version: `5.x`, `5.2.x` or `5.2.3`.
    pub max_version: Option<String>,
    /// Vendor extension fields `key=value`.
    pub ext: Vec<(String, String)>,
    /// The vendor's own id for the license (an order number), unique in
    /// the organisation: a request with an id already minted is refused
    /// (a batch row is skipped). Kept in the ledger, never in the key.
    pub external_id: Option<String>,
}

/// A validated request: every field checked against the format's limits,
/// lists sorted. What the issuer signs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicenseRequest {
    /// Product id.
    pub product: String,
    /// Opaque customer id.
    pub customer: String,
    /// Plan name.
    pub plan: String,
    /// Not valid before (unix seconds).
    pub not_before: Option<u64>,
    /// Expiry (unix seconds); `None` is perpetual.
    pub expires_at: Option<u64>,
    /// Grace period after expiry, in seconds.
    pub grace_secs: u32,
    /// Device binding.
    pub device: Option<(Fingerprint, DeviceRule)>,
    /// Entitlements, sorted and unique.
    pub entitlements: Vec<String>,
    /// Newest covered app version.
    pub max_version: Option<VersionCap>,
    /// Extension fields, sorted by key.
    pub ext: Vec<(String, String)>,
    /// The vendor's own id for the license (not signed into it).
    pub external_id: Option<String>,
}

/// An external id: 1 to [`MAX_EXTERNAL_ID_LEN`] visible ASCII characters
/// (no spaces), so it reads the same in a CSV cell, a JSON body and a URL.
fn check_external_id(v: Option<&str>) -> Result<Option<String>> {
    let Some(v) = v else { return Ok(None) };
    if v.len() > MAX_EXTERNAL_ID_LEN || !v.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::invalid(
            "external_id",
            format!(
                "give 1 to {MAX_EXTERNAL_ID_LEN} visible ASCII characters, no spaces (an order number)"
            ),
        ));
    }
    Ok(Some(v.to_owned()))
}

const NAME_RULE: &str = "letters, digits and . _ : - only";

fn check_name(field: &str, value: &str, max: usize, hint: &str) -> Result<()> {
    if value.is_empty() {
        return Err(Error::invalid(field, format!("is empty ({hint})")));
    }
    if value.len() > max {
        return Err(Error::invalid(
            field,
            format!("`{value}` is longer than {max} bytes"),
        ));
    }
    if let Some(c) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')))
    {
        return Err(Error::invalid(
            field,
            format!("`{value}` contains {c:?}: {NAME_RULE} ({hint})"),
        ));
    }
    Ok(())
}

/// Whether `c` is a character no name may hold: a control character, a
/// bidirectional override, embedding, isolate or mark (which make text read
/// differently from what it holds, the "Trojan Source" trick), or an
/// invisible format character (zero-width spaces and joiners, the word
/// joiner, the byte-order mark).
#[must_use]
pub fn hidden_char(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{061C}'                 // Arabic letter mark
            | '\u{180E}'               // Mongolian vowel separator
            | '\u{200B}'..='\u{200F}' // zero-width space/joiners, LRM, RLM
            | '\u{2028}'..='\u{202E}' // separators, embeddings, overrides
            | '\u{2060}'..='\u{206F}' // word joiner, isolates, deprecated format
            | '\u{FEFF}'               // byte-order mark
            | '\u{FFF9}'..='\u{FFFB}' // interlinear annotation
        )
}

/// Whether an extension value looks like an email address (`x@y.z`): keys
/// carry no personal data, and an address in a key can be read by anyone
/// who holds it, and never erased.
#[must_use]
pub fn looks_like_email(v: &str) -> bool {
    v.split_once('@').is_some_and(|(local, domain)| {
        !local.trim().is_empty()
            && domain
                .rsplit_once('.')
                .is_some_and(|(host, tld)| !host.trim().is_empty() && !tld.trim().is_empty())
    })
}

/// Checks a product id (also used when registering products).
pub fn check_product(name: &str) -> Result<()> {
    check_name(
        "product",
        name,
        MAX_NAME_LEN,
        "a short product id such as acme-cad",
    )
}

/// Splits a list written as text: items separated by commas, semicolons or spaces.
#[must_use]
pub fn split_list(s: &str) -> Vec<String> {
    s.split([',', ';', ' ', '\t'])
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Parses one `key=value` extension.
pub fn parse_ext(s: &str) -> Result<(String, String)> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| Error::invalid("ext", format!("`{s}` is not key=value")))?;
    Ok((k.to_owned(), v.to_owned()))
}

fn required<'a>(field: &str, v: &'a Option<String>, hint: &str) -> Result<&'a str> {
    match v.as_deref().map(str::trim) {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(Error::invalid(field, format!("missing ({hint})"))),
    }
}

fn optional(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl RequestFields {
    /// Checks every field and resolves relative times against `now`.
    pub fn resolve(&self, now: u64) -> Result<LicenseRequest> {
        let product = required(
            "product",
            &self.product,
            "the product id the license is for",
        )?;
        check_product(product)?;
        let customer = required(
            "customer",
            &self.customer,
            "an opaque customer id from your systems",
        )?;
        check_name(
            "customer",
            customer,
            MAX_CUSTOMER_LEN,
            "use an opaque id from your systems, never an email address or a name",
        )?;
        let plan = required("plan", &self.plan, "a plan name such as pro")?;
        check_name("plan", plan, MAX_NAME_LEN, "a plan name such as pro")?;

        let expires = required(
            "expires",
            &self.expires,
            "a date, a duration such as 365d, or `never`",
        )?;
        let expires_at = expires
            .parse::<When>()
            .map_err(|e| Error::invalid("expires", e))?
            .resolve(now);
        if let Some(t) = expires_at
            && t > MAX_TIME
        {
            return Err(Error::invalid(
                "expires",
                format!(
                    "is after {}, the latest time keyseal takes (use `never` for a perpetual license)",
                    crate::time::format(MAX_TIME)
                ),
            ));
        }
        if let Some(t) = expires_at
            && t <= now
        {
            return Err(Error::invalid(
                "expires",
                format!("{} is not in the future", crate::time::format(t)),
            ));
        }
        let not_before = match optional(&self.not_before) {
            None => None,
            Some(s) => match s
                .parse::<When>()
                .map_err(|e| Error::invalid("not_before", e))?
            {
                When::Never => {
                    return Err(Error::invalid(
                        "not_before",
                        "`never` makes no sense here; leave it out",
                    ));
                }
                w => match w.resolve(now) {
                    Some(t) if t > MAX_TIME => {
                        return Err(Error::invalid(
                            "not_before",
                            format!(
                                "is after {}, the latest time keyseal takes",
                                crate::time::format(MAX_TIME)
                            ),
                        ));
                    }
                    t => t,
                },
            },
        };
        if let (Some(nb), Some(exp)) = (not_before, expires_at)
            && nb >= exp
        {
            return Err(Error::invalid("not_before", "must be before the expiry"));
        }
        let grace_secs = match optional(&self.grace) {
            None => 0,
            Some(s) => {
                let d = parse_duration(s).map_err(|e| Error::invalid("grace", e))?;
                u32::try_from(d).map_err(|_| {
                    Error::invalid("grace", format!("`{s}` is too long (at most 136 years)"))
                })?
            }
        };
        if grace_secs > 0 && expires_at.is_none() {
            return Err(Error::invalid(
                "grace",
                "a perpetual license (expires never) has no grace period",
            ));
        }

        let device = match optional(&self.device) {
            None => {
                if optional(&self.device_match).is_some() {
                    return Err(Error::invalid(
                        "device_match",
                        "given without a device fingerprint",
                    ));
                }
                None
            }
            Some(s) => {
                let fp: Fingerprint = s.parse().map_err(|_| {
                    Error::invalid(
                        "device",
                        format!("`{}` is not a device fingerprint (ksfp1. then base64url, as `keyseal fingerprint` prints)", shorten(s)),
                    )
                })?;
                let n = fp.components().len();
                let rule = match optional(&self.device_match) {
                    None => DeviceRule::Exact,
                    Some(k) => {
                        let k: u8 = k.parse().ok().filter(|k| (1..=n).contains(&usize::from(*k))).ok_or_else(|| {
                            Error::invalid("device_match", format!("`{k}` must be a number from 1 to {n} (the fingerprint has {n} component{})", if n == 1 { "" } else { "s" }))
                        })?;
                        DeviceRule::AtLeast(k)
                    }
                };
                Some((fp, rule))
            }
        };

        for e in &self.entitlements {
            check_name(
                "entitlements",
                e,
                MAX_NAME_LEN,
                "feature names such as export or sso",
            )?;
        }
        // Any order, repeats allowed: keyseal-core makes the format's order.
        let entitlements: Vec<String> =
            Entitlements::sorted_from(self.entitlements.iter().map(String::as_str))
                .map_err(|e| Error::invalid("entitlements", e.to_string()))?
                .as_slice()
                .iter()
                .map(|e| (*e).to_owned())
                .collect();

        let max_version = match optional(&self.max_version) {
            None => None,
            Some(s) => Some(s.parse::<VersionCap>().map_err(|_| {
                Error::invalid(
                    "max_version",
                    format!("`{s}` is not a version cap such as 5.x, 5.2.x or 5.2.3"),
                )
            })?),
        };

        for (k, v) in &self.ext {
            check_name(
                "ext",
                k,
                MAX_NAME_LEN,
                "extension keys follow the name rules",
            )?;
            if v.len() > MAX_EXTENSION_VALUE_LEN || !v.bytes().all(|b| (0x20..0x7f).contains(&b)) {
                return Err(Error::invalid(
                    "ext",
                    format!(
                        "value of `{k}` must be at most {MAX_EXTENSION_VALUE_LEN} printable ASCII characters"
                    ),
                ));
            }
        }
        if let Some((k, _)) = self.ext.iter().find(|(_, v)| looks_like_email(v)) {
            return Err(Error::invalid(
                "ext",
                format!(
                    "the value of `{k}` looks like an email address: keys carry no personal \
                     data (anyone holding the key can read it, and it can never be erased); \
                     keep personal data on the customer record and put its opaque id in the key"
                ),
            ));
        }
        let ext: Vec<(String, String)> =
            Extensions::sorted_from(self.ext.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .map_err(|e| Error::invalid("ext", e.to_string()))?
                .as_slice()
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();

        let req = LicenseRequest {
            product: product.to_owned(),
            customer: customer.to_owned(),
            plan: plan.to_owned(),
            not_before,
            expires_at,
            grace_secs,
            device,
            entitlements,
            max_version,
            ext,
            external_id: check_external_id(optional(&self.external_id))?,
        };
        // The core's own check is the last word.
        req.claims(LicenseId::default(), now)
            .validate()
            .map_err(|m| {
                Error::invalid("license", format!("the claims break a format rule: {m}"))
            })?;
        Ok(req)
    }
}

fn shorten(s: &str) -> String {
    if s.chars().count() > 24 {
        format!("{}...", s.chars().take(21).collect::<String>())
    } else {
        s.to_owned()
    }
}

impl LicenseRequest {
    /// The claims of this request with a license id and issue time.
    /// The device binding is left out: [`keyseal_core::license::issue`] adds it.
    #[must_use]
    pub fn claims(&self, license_id: LicenseId, issued_at: u64) -> Claims<'_> {
        let mut c = Claims::new(
            license_id,
            &self.product,
            &self.customer,
            &self.plan,
            issued_at,
        );
        c.not_before = self.not_before;
        c.expires_at = self.expires_at;
        c.grace_secs = self.grace_secs;
        let mut ents = Entitlements::new();
        for e in &self.entitlements {
            // Bounded by the check in `resolve`.
            let _ = ents.push(e.as_str());
        }
        c.entitlements = ents;
        c.max_version = self.max_version;
        let mut ext = Extensions::new();
        for (k, v) in &self.ext {
            let _ = ext.push((k.as_str(), v.as_str()));
        }
        c.extensions = ext;
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::RequestError;

    fn base() -> RequestFields {
        RequestFields {
            product: Some("acme-cad".into()),
            customer: Some("cus_42".into()),
            plan: Some("pro".into()),
            expires: Some("365d".into()),
            ..Default::default()
        }
    }

    #[test]
    fn resolves_and_sorts() {
        let mut f = base();
        f.entitlements = vec!["sso".into(), "export".into(), "sso".into()];
        f.ext = vec![
            ("seats".into(), "10".into()),
            ("region".into(), "eu".into()),
        ];
        f.grace = Some("14d".into());
        let r = f.resolve(1000).unwrap();
        assert_eq!(r.expires_at, Some(1000 + 365 * 86_400));
        assert_eq!(r.entitlements, ["export", "sso"]);
        assert_eq!(r.ext[0].0, "region");
        assert_eq!(r.grace_secs, 14 * 86_400);

        // One key with two values is refused; the same pair twice is one.
        f.ext.push(("seats".into(), "11".into()));
        let e = f.resolve(1000).unwrap_err().to_string();
        assert!(e.contains("key `seats` given twice"), "{e}");
        f.ext.pop();
        f.ext.push(("seats".into(), "10".into()));
        assert_eq!(f.resolve(1000).unwrap().ext.len(), 2);
        f.entitlements = (0..33).map(|i| format!("f{i}")).collect();
        let e = f.resolve(1000).unwrap_err().to_string();
        assert!(e.contains("more than 32 given"), "{e}");
    }

    #[test]
    fn names_the_bad_field() {
        type Change = fn(&mut RequestFields);
        let cases: [(Change, &str); 13] = [
            (
                |f| f.expires = Some("18446744073709551615".into()),
                "expires",
            ),
            (|f| f.expires = Some("9999-12-31".into()), "expires"),
            (|f| f.expires = Some("999999999999w".into()), "expires"),
            (|f| f.not_before = Some("253402207201".into()), "not_before"),
            (
                |f| f.ext = vec![("contact".into(), "jane.doe@example.com".into())],
                "ext",
            ),
            (|f| f.customer = Some("jane@example.com".into()), "customer"),
            (|f| f.expires = None, "expires"),
            (|f| f.expires = Some("2027-31-01".into()), "expires"),
            (|f| f.expires = Some("1999-01-01".into()), "expires"),
            (|f| f.device = Some("ksfp1.nope".into()), "device"),
            (|f| f.device_match = Some("2".into()), "device_match"),
            (|f| f.max_version = Some("five".into()), "max_version"),
            (
                |f| f.ext = vec![("a".into(), "1".into()), ("a".into(), "2".into())],
                "ext",
            ),
        ];
        for (change, field) in cases {
            let mut f = base();
            change(&mut f);
            match f.resolve(1_900_000_000) {
                Err(Error::Request(RequestError::Invalid { field: got, .. })) => {
                    assert_eq!(got, field)
                }
                other => panic!("{field}: {other:?}"),
            }
        }
    }

    #[test]
    fn spots_email_addresses_and_hidden_characters() {
        for v in ["a@b.co", "jane.doe+x@mail.example.org", " j @ x.y "] {
            assert!(looks_like_email(v), "{v}");
        }
        for v in ["@b.co", "a@b", "a@.co", "a@b.", "eu-west", "x@", "10"] {
            assert!(!looks_like_email(v), "{v}");
        }
        for c in [
            '\0', '\n', '\u{7f}', '\u{202E}', '\u{2066}', '\u{200B}', '\u{FEFF}',
        ] {
            assert!(hidden_char(c), "{c:?}");
        }
        for c in ['a', 'é', 'ß', '漢', ' ', '-'] {
            assert!(!hidden_char(c), "{c:?}");
        }
        // A time at the limit is taken; one past it is not.
        let mut f = base();
        f.expires = Some(MAX_TIME.to_string());
        assert_eq!(f.resolve(1000).unwrap().expires_at, Some(MAX_TIME));
    }
}
