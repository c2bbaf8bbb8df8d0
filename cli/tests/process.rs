//! The vault under process-level trouble: a second writer, a batch killed
//! with SIGKILL halfway, a results file on a full disk.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use keyseal_core::Keyring;
use keyseal_core::license::{Expectations, MAX_LICENSE_LEN, UnverifiedLicense, decode_text};
use serde_json::Value;

fn keyseal(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("keyseal").unwrap();
    c.current_dir(dir)
        .env("KEYSEAL_PASSPHRASE", "correct horse")
        .env("KEYSEAL_KDF_PARAMS", "m=64,t=1,p=1")
        .env("KEYSEAL_ACTOR", "test")
        .env_remove("KEYSEAL_NOW")
        .env_remove("KEYSEAL_VAULT");
    c
}

fn run(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = keyseal(dir).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let (code, out, err) = run(dir, args);
    assert_eq!(code, 0, "keyseal {args:?} failed: {err}");
    out
}

fn write_batch(path: &Path, rows: usize) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(f, "product,customer,plan,expires,entitlements").unwrap();
    for i in 0..rows {
        writeln!(f, "acme-cad,cus_{i},pro,365d,export").unwrap();
    }
}

/// license_id -> license key, as the ledger has them.
fn ledger(dir: &Path) -> HashMap<String, String> {
    let v: Value = serde_json::from_str(&ok(dir, &["licenses", "list", "--json"])).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["license_id"].as_str().unwrap().to_owned(),
                l["license_key"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn a_second_writer_is_told_the_vault_is_locked() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    ok(dir, &["init", "--product", "acme-cad"]);
    // Hold the vault open for writing in this process.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let vault = rt
        .block_on(keyseal_issuer::Vault::open(
            &dir.join("keyseal-vault"),
            keyseal_issuer::Access::Write,
        ))
        .unwrap();
    let (code, _, err) = run(dir, &["products", "add", "acme-viewer"]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("is locked by another process"), "{err}");
    assert!(
        err.contains("hint: another keyseal command is changing this vault"),
        "{err}"
    );
    // Readers are not blocked.
    ok(dir, &["products", "list"]);
    rt.block_on(vault.close());
    ok(dir, &["products", "add", "acme-viewer"]);
}

#[test]
fn a_batch_killed_halfway_leaves_every_written_key_in_the_ledger() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    ok(dir, &["init", "--product", "acme-cad"]);
    let rows = 200_000;
    write_batch(&dir.join("big.csv"), rows);
    let out_path = dir.join("out.jsonl");
    let mut child = keyseal(dir)
        .args([
            "issue",
            "--batch",
            "big.csv",
            "--out",
            "out.jsonl",
            "--chunk-size",
            "500",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once some chunks are out, well before the end.
    let start = Instant::now();
    loop {
        let len = std::fs::metadata(&out_path).map(|m| m.len()).unwrap_or(0);
        if len > 2_000 * 250 {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the batch finished before it could be killed"
        );
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no output after two minutes"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let text = std::fs::read_to_string(&out_path).unwrap();
    // Whole lines only count; a line cut by the kill has no newline yet.
    let complete = match text.rfind('\n') {
        Some(i) => &text[..=i],
        None => "",
    };
    let written: Vec<Value> = complete
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        written.len() >= 500 && written.len() < rows,
        "{} rows written",
        written.len()
    );

    // The vault opens, the chain is intact, and the ledger holds whole chunks.
    ok(dir, &["audit", "verify"]);
    let in_ledger = ledger(dir);
    assert_eq!(
        in_ledger.len() % 500,
        0,
        "a chunk was half recorded: {}",
        in_ledger.len()
    );
    assert!(in_ledger.len() >= written.len());

    // Every key written out is in the ledger, identical, and valid.
    let keyring: Keyring = ok(dir, &["keys", "export"]).parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for w in &written {
        let id = w["license_id"].as_str().unwrap();
        let key = w["license_key"].as_str().unwrap();
        assert_eq!(
            in_ledger.get(id).map(String::as_str),
            Some(key),
            "row {} not in the ledger",
            w["row"]
        );
        let mut buf = [0u8; MAX_LICENSE_LEN];
        let lic = UnverifiedLicense::from_bytes(decode_text(key, &mut buf).unwrap()).unwrap();
        let _valid = lic
            .verify(&keyring, &Expectations::new("acme-cad", now))
            .unwrap();
    }

    // The lock died with the process: a resumed batch runs, and repairs the cut line.
    let resume_at = written.last().unwrap()["row"].as_u64().unwrap() + 1;
    write_batch(&dir.join("small.csv"), 10);
    ok(
        dir,
        &[
            "issue",
            "--batch",
            "small.csv",
            "--out",
            "out.jsonl",
            "--start-row",
            "3",
        ],
    );
    let text = std::fs::read_to_string(&out_path).unwrap();
    assert!(
        text.lines()
            .all(|l| serde_json::from_str::<Value>(l).is_ok()),
        "a partial line was left"
    );
    assert!(resume_at > 1);
}

#[test]
fn a_full_disk_for_the_results_keeps_the_ledger_whole_and_says_how_to_recover() {
    if !Path::new("/dev/full").exists() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    ok(dir, &["init", "--product", "acme-cad"]);
    write_batch(&dir.join("b.csv"), 30);
    let (code, _, err) = run(
        dir,
        &[
            "issue",
            "--batch",
            "b.csv",
            "--out",
            "/dev/full",
            "--chunk-size",
            "10",
        ],
    );
    assert_eq!(code, 6, "{err}");
    // The writer fails on the first chunk; a chunk or two more may have
    // committed meanwhile. The message covers them all.
    let recorded = ledger(dir).len();
    assert!([10, 20, 30].contains(&recorded), "{recorded}");
    let rows = format!("rows 1-{recorded} ARE minted and in the ledger but not (all) in the file");
    assert!(err.contains(&rows), "{err}");
    assert!(err.contains("keyseal licenses list --batch b-"), "{err}");
    ok(dir, &["audit", "verify"]);
}

#[test]
fn an_edited_or_deleted_audit_entry_is_found() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    ok(dir, &["init", "--product", "acme-cad"]);
    ok(dir, &["products", "add", "acme-viewer"]);
    ok(dir, &["products", "add", "acme-cloud"]);
    ok(dir, &["audit", "verify"]);
    let tamper = |dir: &Path, sql: &str| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            use sqlx::{Connection, Executor};
            let url = format!(
                "sqlite://{}",
                dir.join("keyseal-vault/ledger.sqlite").display()
            );
            let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
            c.execute(sql).await.unwrap();
            c.close().await.unwrap();
        });
    };
    tamper(dir, "UPDATE audit_log SET actor = 'mallory' WHERE seq = 2");
    let (code, out, _) = run(dir, &["audit", "verify"]);
    assert_eq!(code, 1);
    assert!(
        out.contains("audit log BROKEN at entry 2: its contents do not match its hash"),
        "{out}"
    );
    let (_, json, _) = run(dir, &["audit", "verify", "--json"]);
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["broken_at"], 2);

    let tmp2 = tempfile::tempdir().unwrap();
    let dir = tmp2.path();
    ok(dir, &["init", "--product", "acme-cad"]);
    ok(dir, &["products", "add", "acme-viewer"]);
    ok(dir, &["products", "add", "acme-cloud"]);
    tamper(dir, "DELETE FROM audit_log WHERE seq = 3");
    let (code, out, _) = run(dir, &["audit", "verify"]);
    assert_eq!(code, 1);
    assert!(out.contains("audit log BROKEN at entry 3"), "{out}");
}

/// The batch bench in smoke mode (1,000 rows), only when asked for:
/// `KEYSEAL_BENCH_SMOKE=1 cargo test -p keyseal-cli --test process bench_smoke`.
#[test]
fn bench_smoke() {
    if std::env::var("KEYSEAL_BENCH_SMOKE").as_deref() != Ok("1") {
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/batch_mint.sh");
    let bin = assert_cmd::cargo::cargo_bin("keyseal");
    let out = Command::new("bash")
        .arg(script)
        .env("KEYSEAL_BIN", bin)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("minted 1000 keys"), "{stdout}");
}

/// A reader that stops early (`keyseal licenses list | head -2`,
/// `keyseal completions bash | head`) ends keyseal quietly with exit 0, not
/// a panic (exit 101).
#[test]
fn a_closed_pipe_ends_quietly() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    ok(dir, &["init", "--product", "acme-cad"]);
    write_batch(&dir.join("rows.csv"), 3000);
    ok(
        dir,
        &["issue", "--batch", "rows.csv", "--out", "rows.jsonl"],
    );
    for args in [&["licenses", "list"][..], &["completions", "bash"][..]] {
        let mut child = keyseal(dir)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Read one line, then close the pipe while keyseal still writes.
        let mut stdout = child.stdout.take().unwrap();
        let mut first = [0u8; 64];
        let _ = std::io::Read::read(&mut stdout, &mut first).unwrap();
        drop(stdout);
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "keyseal {args:?}: {err}");
        assert!(!err.contains("panicked"), "keyseal {args:?}: {err}");
    }
}

/// `init` inside a git working tree whose .gitignore does not name the
/// vault warns that `git add -A` would commit it; once ignored, it does not.
#[test]
fn init_warns_about_a_vault_git_would_commit() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir(dir.join(".git")).unwrap();
    let (code, _, err) = run(dir, &["init", "--product", "acme-cad"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("inside the git working tree"), "{err}");
    std::fs::write(dir.join(".gitignore"), "target/\n/keyseal-vault\n").unwrap();
    let (code, _, err) = run(dir, &["--vault", "keyseal-vault-2", "init"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("inside the git working tree"), "{err}");
    std::fs::remove_dir_all(dir.join("keyseal-vault")).unwrap();
    let (code, _, err) = run(dir, &["init"]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("git working tree"), "{err}");
}
