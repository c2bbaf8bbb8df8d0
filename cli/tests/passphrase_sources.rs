//! Where the passphrase comes from, through the real binary: a file, an
//! inherited descriptor (a shell's `3<file`), or the environment; and a new
//! vault's passphrase must not be guessable.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

fn bin() -> String {
    assert_cmd::cargo::cargo_bin("keyseal")
        .to_string_lossy()
        .into_owned()
}

/// Runs `script` in bash with a clean keyseal environment in `dir`.
fn sh(dir: &std::path::Path, kdf: &str, script: &str) -> std::process::Output {
    Command::new("bash")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .env("KS", bin())
        .env("KEYSEAL_KDF_PARAMS", kdf)
        .env("KEYSEAL_ACTOR", "operator")
        .env_remove("KEYSEAL_PASSPHRASE")
        .env_remove("KEYSEAL_PASSPHRASE_FILE")
        .env_remove("KEYSEAL_VAULT")
        .env_remove("KEYSEAL_NOW")
        .output()
        .unwrap()
}

#[test]
fn a_file_or_a_descriptor_gives_the_passphrase() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("pass"), "violet tractor moonlit harbour\n").unwrap();
    let out = sh(
        dir,
        "m=64,t=1,p=1",
        "chmod 600 pass && \"$KS\" --passphrase-file pass init --product acme-cad && \
         \"$KS\" --passphrase-fd 3 issue --product acme-cad --customer c1 --plan pro --expires 30d 3<pass && \
         KEYSEAL_PASSPHRASE_FILE=pass \"$KS\" keys rotate && \
         printf 'wrong\\n' | \"$KS\" --passphrase-fd 3 keys rotate 3<&0",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("wrong passphrase"), "{err}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("\nks1."), "{text}");
    assert!(text.contains("new active signing key"), "{text}");
    // A file others can read is used, with a warning.
    let out = sh(
        dir,
        "m=64,t=1,p=1",
        "chmod 644 pass && \"$KS\" --passphrase-file pass keys rotate",
    );
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("readable by others"));
}

#[test]
fn a_new_vault_needs_a_strong_passphrase() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // The real key-derivation parameters: refused before any Argon2 run.
    for weak in [
        "password123",
        "keyseal2026",
        "qwertyuiop",
        "aaaaaaaaaaaaaaaa",
    ] {
        let out = sh(
            dir,
            "m=65536,t=3,p=1",
            &format!("KEYSEAL_PASSPHRASE='{weak}' \"$KS\" init --product acme-cad"),
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(5), "{weak}: {err}");
        assert!(err.contains("too weak"), "{weak}: {err}");
        assert!(!dir.join("keyseal-vault").exists());
    }
    // Only a new vault's: an existing vault opens with what it has.
    let out = sh(
        dir,
        "m=64,t=1,p=1",
        "KEYSEAL_PASSPHRASE=password123 \"$KS\" init --product acme-cad && \
         KEYSEAL_KDF_PARAMS= KEYSEAL_PASSPHRASE=password123 \"$KS\" keys list",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
