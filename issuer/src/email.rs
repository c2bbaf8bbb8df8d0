//! License keys delivered by email: an organisation's SMTP settings, and
//! the email of a license (text and HTML, the license file attached).
//!
//! An email is queued in the transaction that decided it (a payment's: see
//! [`crate::payments`]), with the recipient's address sealed under the
//! organisation's secret key; the service's workers send it with retries
//! ([`crate::webhooks::RETRY_SCHEDULE`]) and then clear the address from
//! the outbox. The customer keeps it, sealed, until erased.

use serde::Serialize;

use crate::error::{Error, Result};

/// The purpose an SMTP password is sealed under.
pub(crate) const PASSWORD_PURPOSE: &[u8] = b"keyseal/smtp-password/v1\0";
/// The purpose a queued recipient is sealed under.
pub(crate) const RECIPIENT_PURPOSE: &[u8] = b"keyseal/email-recipient/v1\0";

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// STARTTLS on the submission port (587): required, never skipped.
    Starttls,
    /// TLS from the first byte (465).
    Tls,
    /// None: for a relay on the same host or network only (the service
    /// refuses it unless started with `--webhooks-to-private-networks`).
    None,
}

impl Security {
    /// Its name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Security::Starttls => "starttls",
            Security::Tls => "tls",
            Security::None => "none",
        }
    }

    /// From its name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "starttls" => Some(Security::Starttls),
            "tls" => Some(Security::Tls),
            "none" => Some(Security::None),
            _ => None,
        }
    }
}

/// An organisation's SMTP settings (never the password, once set).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Settings {
    /// The SMTP server.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// How the connection is protected.
    pub security: Security,
    /// The user to authenticate as, if any.
    pub username: Option<String>,
    /// The sender (`Acme <licenses@acme.example>`).
    pub from: String,
    /// Where replies go.
    pub reply_to: Option<String>,
    /// When they were set.
    pub updated_at: u64,
}

/// Checks the settings' fields.
pub fn check_settings(s: &Settings, password: Option<&str>) -> Result<()> {
    let host_ok = !s.host.is_empty()
        && s.host.len() <= 253
        && s.host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    if !host_ok {
        return Err(Error::invalid("host", "must be a host name or address"));
    }
    if s.port == 0 {
        return Err(Error::invalid("port", "must be from 1 to 65535"));
    }
    for (field, v) in [("from", Some(&s.from)), ("reply_to", s.reply_to.as_ref())] {
        if let Some(v) = v
            && (v.len() > 320 || !v.contains('@') || v.chars().any(char::is_control))
        {
            return Err(Error::invalid(
                field,
                "must be an address (`licenses@acme.example` or `Acme <licenses@acme.example>`)",
            ));
        }
    }
    if let Some(u) = &s.username
        && (u.is_empty() || u.len() > 320 || u.chars().any(char::is_control))
    {
        return Err(Error::invalid("username", "must be 1 to 320 characters"));
    }
    if password.is_some_and(|p| p.is_empty() || p.len() > 1024) {
        return Err(Error::invalid("password", "must be 1 to 1024 bytes"));
    }
    if s.username.is_some() != password.is_some() {
        return Err(Error::invalid(
            "password",
            "give a username and a password together, or neither",
        ));
    }
    Ok(())
}

/// Checks a recipient address enough to queue it (the SMTP server judges
/// the rest).
#[must_use]
pub fn plausible_address(a: &str) -> bool {
    let Some((local, domain)) = a.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && a.len() <= 320
        && !a
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '<' || c == '>')
}

/// One email to send: what a worker reads from the outbox.
pub struct Job {
    /// Its id (`eml_...`).
    pub email_id: String,
    /// The organisation.
    pub org_id: String,
    /// The settings.
    pub settings: Settings,
    /// The SMTP password, opened.
    pub password: Option<zeroize::Zeroizing<String>>,
    /// The recipient, opened.
    pub to: zeroize::Zeroizing<String>,
    /// Attempts so far.
    pub attempts: u64,
    /// The message.
    pub message: Message,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("email_id", &self.email_id)
            .finish_non_exhaustive()
    }
}

/// A license's email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The subject.
    pub subject: String,
    /// The plain-text body.
    pub text: String,
    /// The HTML body.
    pub html: String,
    /// The attachment's file name.
    pub file_name: String,
    /// The license file (armored).
    pub file: String,
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The email of a license: its key in the text, the license file attached.
#[must_use]
pub fn message(product: &str, plan: &str, expires_at: u64, key: &str, license: &[u8]) -> Message {
    let expires = if expires_at == u64::MAX {
        "never".to_owned()
    } else {
        crate::time::format(expires_at)
    };
    let text = format!(
        "Thank you for your purchase.\n\n\
         Your license key for {product} ({plan} plan, valid until {expires}):\n\n\
         {key}\n\n\
         Paste it into {product} when asked, or open the attached license file with it.\n"
    );
    let html = format!(
        "<!doctype html><html><body>\
         <p>Thank you for your purchase.</p>\
         <p>Your license key for <b>{p}</b> ({pl} plan, valid until {e}):</p>\
         <pre style=\"white-space:pre-wrap;word-break:break-all\">{k}</pre>\
         <p>Paste it into {p} when asked, or open the attached license file with it.</p>\
         </body></html>",
        p = html_escape(product),
        pl = html_escape(plan),
        e = html_escape(&expires),
        k = html_escape(key),
    );
    Message {
        subject: format!("Your {product} license key"),
        text,
        html,
        file_name: format!("{product}.license"),
        file: keyseal_core::license::to_armored(license),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_and_addresses_are_checked() {
        let ok = Settings {
            host: "smtp.example.com".into(),
            port: 587,
            security: Security::Starttls,
            username: Some("u".into()),
            from: "Acme <licenses@acme.example>".into(),
            reply_to: None,
            updated_at: 0,
        };
        check_settings(&ok, Some("pw")).unwrap();
        assert!(check_settings(&ok, None).is_err());
        let bad_host = Settings {
            host: "smtp example".into(),
            ..ok.clone()
        };
        assert!(check_settings(&bad_host, Some("pw")).is_err());
        let bad_from = Settings {
            from: "nobody".into(),
            ..ok
        };
        assert!(check_settings(&bad_from, Some("pw")).is_err());
        assert!(plausible_address("ada@example.com"));
        for bad in [
            "",
            "ada",
            "ada@localhost",
            "a b@example.com",
            "<a@example.com>",
        ] {
            assert!(!plausible_address(bad), "{bad}");
        }
        let m = message("acme-cad", "pro", 2_000_000_000, "ks1.AAAA", &[1, 2, 3]);
        assert!(m.text.contains("ks1.AAAA") && m.html.contains("ks1.AAAA"));
        assert!(m.file.starts_with("-----BEGIN KEYSEAL LICENSE-----"));
        let x = message("a<b", "p", 1, "k", &[1]);
        assert!(x.html.contains("a&lt;b") && !x.html.contains("a<b"));
    }
}
