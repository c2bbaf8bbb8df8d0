//! What the CLI takes from its environment: the clock, the actor, the
//! passphrase and (for tests) cheap key-derivation parameters.
//!
//! * `KEYSEAL_PASSPHRASE`: the passphrase; otherwise a prompt on the terminal.
//! * `KEYSEAL_ACTOR`: the actor recorded in the audit log; otherwise `$USER`.
//! * `KEYSEAL_NOW` (tests and reproducible demos only): pretend the time is
//!   this (unix seconds or RFC 3339).
//! * `KEYSEAL_KDF_PARAMS` (tests only): Argon2id parameters for new key
//!   files, `m=KIB,t=PASSES,p=LANES`. Weaker than the default is warned about.

use std::io::IsTerminal;
use std::time::{SystemTime, UNIX_EPOCH};

use keyseal_issuer::{Context, KdfParams, Passphrase};
use zeroize::Zeroizing;

use crate::error::CliError;

/// Now, in unix seconds.
pub(crate) fn now() -> Result<u64, CliError> {
    if let Ok(v) = std::env::var("KEYSEAL_NOW") {
        return keyseal_issuer::time::parse_time(&v).map_err(|e| {
            CliError::input(
                format!("KEYSEAL_NOW: {e}"),
                "unset KEYSEAL_NOW (it is for tests only)",
            )
        });
    }
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .map_err(|_| CliError::system("the system clock is before 1970", "fix the system clock"))
}

/// Who is acting.
pub(crate) fn actor() -> String {
    ["KEYSEAL_ACTOR", "USER", "LOGNAME", "USERNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.trim().is_empty()))
        .unwrap_or_else(|| "unknown".into())
}

/// The context of a mutation.
pub(crate) fn context() -> Result<Context, CliError> {
    Ok(Context {
        now: now()?,
        actor: actor(),
    })
}

/// The passphrase: `KEYSEAL_PASSPHRASE`, or a prompt (twice when `confirm`).
pub(crate) fn passphrase(confirm: bool) -> Result<Passphrase, CliError> {
    if let Ok(v) = std::env::var("KEYSEAL_PASSPHRASE") {
        return Ok(Passphrase::new(Zeroizing::new(v))?);
    }
    if !std::io::stderr().is_terminal() {
        return Err(CliError::new(
            "no_passphrase",
            crate::error::exit::INPUT,
            "no passphrase: KEYSEAL_PASSPHRASE is not set and there is no terminal to ask on",
            "set KEYSEAL_PASSPHRASE (from your secret store) or run keyseal in a terminal",
        ));
    }
    let read = |prompt: &str| {
        rpassword::prompt_password(prompt)
            .map(Zeroizing::new)
            .map_err(|e| {
                CliError::system(
                    format!("cannot read the passphrase: {e}"),
                    "set KEYSEAL_PASSPHRASE instead",
                )
            })
    };
    let first = read(if confirm {
        "New vault passphrase: "
    } else {
        "Vault passphrase: "
    })?;
    if confirm {
        let again = read("Repeat the passphrase: ")?;
        if *again != *first {
            return Err(CliError::input(
                "the two passphrases differ",
                "run the command again and type the same passphrase twice",
            ));
        }
    }
    Ok(Passphrase::new(first)?)
}

/// Argon2id parameters for new key files: `KEYSEAL_KDF_PARAMS`, if set.
pub(crate) fn kdf_override() -> Result<Option<KdfParams>, CliError> {
    let Ok(v) = std::env::var("KEYSEAL_KDF_PARAMS") else {
        return Ok(None);
    };
    let p: KdfParams = v.parse()?;
    if p.is_weaker_than_default() {
        eprintln!(
            "warning: KEYSEAL_KDF_PARAMS={p} is weaker than the default ({}); use it for tests only",
            KdfParams::DEFAULT
        );
    }
    Ok(Some(p))
}
