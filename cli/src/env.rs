//! What the CLI takes from its environment: the clock, the actor, the
//! passphrase and (for tests) cheap key-derivation parameters.
//!
//! * `--passphrase-file` / `KEYSEAL_PASSPHRASE_FILE`, `--passphrase-fd`,
//!   then `KEYSEAL_PASSPHRASE`: the passphrase; otherwise a prompt on the
//!   terminal. A new vault's passphrase must score 3 of 4 in zxcvbn.
//! * `KEYSEAL_ROOT_PASSPHRASE`: an offline root's passphrase (`keyseal
//!   root`); otherwise a prompt. A separate secret from the vault's.
//! * `--org` / `KEYSEAL_ORG`: the organisation ledger commands act on;
//!   otherwise the default one.
//! * `--database-url` / `KEYSEAL_DATABASE_URL`: a PostgreSQL ledger instead
//!   of the vault directory's SQLite file.
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

static ORG: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();

/// Remembers `--org` / `KEYSEAL_ORG`. Call first thing in `main`.
pub(crate) fn set_org(org: Option<String>) {
    let _ = ORG.set(org);
}

/// The organisation named by `--org` / `KEYSEAL_ORG`, if any.
pub(crate) fn org() -> Option<&'static str> {
    ORG.get().and_then(Option::as_deref)
}

static DATABASE_URL: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();

/// Remembers `--database-url` / `KEYSEAL_DATABASE_URL`. Call first thing in `main`.
pub(crate) fn set_database_url(url: Option<String>) {
    let _ = DATABASE_URL.set(url);
}

/// The PostgreSQL ledger named by `--database-url` / `KEYSEAL_DATABASE_URL`, if any.
pub(crate) fn database_url() -> Option<&'static str> {
    DATABASE_URL.get().and_then(Option::as_deref)
}

/// A passphrase given by `--passphrase-file` / `KEYSEAL_PASSPHRASE_FILE`
/// or `--passphrase-fd`, read at start (before the process opens any
/// descriptor of its own, so `--passphrase-fd` cannot name one), or why it
/// could not be read (what, hint).
type Given = Result<Zeroizing<String>, (String, &'static str)>;

static GIVEN: std::sync::OnceLock<Given> = std::sync::OnceLock::new();

/// Reads the passphrase file or descriptor named on the command line.
/// Call first thing in `main`.
pub(crate) fn passphrase_from(file: Option<std::path::PathBuf>, fd: Option<i32>) {
    let given = match (file, fd) {
        (Some(f), _) => read_file(&f),
        (None, Some(fd)) => read_fd(fd),
        (None, None) => return,
    };
    let _ = GIVEN.set(given);
}

fn read_file(p: &std::path::Path) -> Given {
    let hint = "check --passphrase-file / KEYSEAL_PASSPHRASE_FILE";
    let f = std::fs::File::open(p).map_err(|e| {
        (
            format!("cannot read the passphrase file {}: {e}", p.display()),
            hint,
        )
    })?;
    #[cfg(unix)]
    if let Ok(m) = f.metadata() {
        use std::os::unix::fs::PermissionsExt;
        if m.permissions().mode() & 0o077 != 0 {
            eprintln!(
                "warning: the passphrase file {} is readable by others; chmod 600 it",
                p.display()
            );
        }
    }
    first_line(f, &p.display().to_string(), hint)
}

fn read_fd(fd: i32) -> Given {
    let hint = "open it in the shell, as in `keyseal --passphrase-fd 3 serve 3<secret`";
    if fd < 3 {
        return Err((format!("--passphrase-fd {fd} is a standard stream"), hint));
    }
    // The descriptor through /dev/fd (a pipe or a file the shell opened):
    // no unsafe code, and a descriptor that is not open is simply missing.
    let f = std::fs::File::open(format!("/dev/fd/{fd}"))
        .map_err(|e| (format!("--passphrase-fd {fd} cannot be read: {e}"), hint))?;
    first_line(f, &format!("descriptor {fd}"), hint)
}

/// The first line of `r` (at most 64 KiB read), without its line end.
fn first_line(r: impl std::io::Read, what: &str, hint: &'static str) -> Given {
    use std::io::Read;
    let mut buf = Zeroizing::new(Vec::with_capacity(256));
    r.take(64 * 1024)
        .read_to_end(&mut buf)
        .map_err(|e| (format!("cannot read the passphrase from {what}: {e}"), hint))?;
    let text = std::str::from_utf8(&buf)
        .map_err(|_| (format!("the passphrase in {what} is not UTF-8"), hint))?;
    let line = text.split(['\n', '\r']).next().unwrap_or("");
    Ok(Zeroizing::new(line.to_owned()))
}

/// Refuses a new vault (or root) passphrase that zxcvbn scores below 3 of 4 ("safely
/// unguessable": about 10^10 guesses or more), unless the key-derivation
/// parameters are test ones (`KEYSEAL_KDF_PARAMS` weaker than the
/// default), where it warns.
fn check_strength(p: &str, what: &str) -> Result<(), CliError> {
    let estimate = zxcvbn::zxcvbn(p, &["keyseal", "vault", "root", "license"]);
    if u8::from(estimate.score()) >= 3 {
        return Ok(());
    }
    let hint = estimate
        .feedback()
        .and_then(|f| f.warning().map(|w| w.to_string()))
        .unwrap_or_else(|| "it is too easy to guess".to_owned());
    let testing = std::env::var("KEYSEAL_KDF_PARAMS")
        .ok()
        .and_then(|v| v.parse::<KdfParams>().ok())
        .is_some_and(|k| k.is_weaker_than_default());
    if testing {
        eprintln!(
            "warning: a weak {what} passphrase ({hint}); allowed with test KEYSEAL_KDF_PARAMS only"
        );
        return Ok(());
    }
    Err(CliError::input(
        format!("the new {what} passphrase is too weak: {hint}"),
        "use four or more random words, or a long phrase of your own; it protects every signing key",
    ))
}

/// The passphrase: `--passphrase-file` (or `KEYSEAL_PASSPHRASE_FILE`),
/// `--passphrase-fd`, `KEYSEAL_PASSPHRASE`, or a prompt (twice when
/// `confirm`). A new vault's (`confirm`) must be strong enough.
pub(crate) fn passphrase(confirm: bool) -> Result<Passphrase, CliError> {
    let given = match GIVEN.get() {
        Some(Ok(p)) => Some(p.clone()),
        Some(Err((what, hint))) => return Err(CliError::input(what.clone(), *hint)),
        None => std::env::var("KEYSEAL_PASSPHRASE").ok().map(Zeroizing::new),
    };
    given_or_prompt(given, "KEYSEAL_PASSPHRASE", "vault", confirm)
}

/// An offline root's passphrase: `KEYSEAL_ROOT_PASSPHRASE` or a prompt
/// (twice when `confirm`, for a new root, which must be strong enough). A
/// separate secret from the vault's: the root outranks every vault key.
pub(crate) fn root_passphrase(confirm: bool) -> Result<Passphrase, CliError> {
    let given = std::env::var("KEYSEAL_ROOT_PASSPHRASE")
        .ok()
        .map(Zeroizing::new);
    given_or_prompt(given, "KEYSEAL_ROOT_PASSPHRASE", "root", confirm)
}

fn given_or_prompt(
    given: Option<Zeroizing<String>>,
    var: &str,
    what: &str,
    confirm: bool,
) -> Result<Passphrase, CliError> {
    if let Some(v) = given {
        let p = Passphrase::new(v.clone())?;
        if confirm {
            check_strength(&v, what)?;
        }
        return Ok(p);
    }
    if !std::io::stderr().is_terminal() {
        return Err(CliError::new(
            "no_passphrase",
            crate::error::exit::INPUT,
            format!("no passphrase: {var} is not set and there is no terminal to ask on"),
            format!("set {var} (from your secret store) or run keyseal in a terminal"),
        ));
    }
    let read = |prompt: &str| {
        rpassword::prompt_password(prompt)
            .map(Zeroizing::new)
            .map_err(|e| {
                CliError::system(
                    format!("cannot read the passphrase: {e}"),
                    format!("set {var} instead"),
                )
            })
    };
    let first = read(&if confirm {
        format!("New {what} passphrase: ")
    } else {
        format!("{} passphrase: ", capitalised(what))
    })?;
    if confirm {
        check_strength(&first, what)?;
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

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
        .unwrap_or_default()
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
