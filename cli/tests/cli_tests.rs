//! Snapshot tests of real invocations: every `tests/cmd/*.md` and
//! `tests/env/*.md` is a terminal session (commands, output, exit codes) run
//! against the built `keyseal` in a sandbox copy of `NAME.in/`.
//!
//! The environment makes them deterministic: a fixed clock (`KEYSEAL_NOW`),
//! a fixed actor, a known passphrase and cheap Argon2 parameters. Random ids
//! and keys are matched with `[..]`. Update with
//! `TRYCMD=overwrite cargo test -p keyseal-cli --test cli_tests`, then review the diff.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

fn cases() -> trycmd::TestCases {
    let t = trycmd::TestCases::new();
    t.env("KEYSEAL_ACTOR", "release-bot")
        .env("KEYSEAL_KDF_PARAMS", "m=64,t=1,p=1")
        .env("NO_COLOR", "1");
    t
}

/// Everyday use: the clock and passphrase are fixed for every command.
#[test]
fn commands() {
    cases()
        .env("KEYSEAL_NOW", "2027-01-15T10:00:00Z")
        .env("KEYSEAL_PASSPHRASE", "correct horse")
        .case("tests/cmd/*.md");
}

/// Wrong, missing and malformed environment: each command sets its own
/// (a default would override what a command sets).
#[test]
fn environment() {
    cases().case("tests/env/*.md");
}
