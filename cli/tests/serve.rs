//! `keyseal serve` as a real process: first start prints the admin token
//! once; an acknowledged mint survives SIGKILL (every key a client received
//! is in the ledger and valid after a restart); SIGTERM drains and exits 0.
//! Every server listens on 127.0.0.1 and is killed when its guard drops.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use keyseal_core::Keyring;
use keyseal_core::license::{self, Expectations, MAX_LICENSE_LEN};
use serde_json::{Value, json};

struct Server {
    child: Child,
    addr: SocketAddr,
    token: Option<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `keyseal serve`; `first` waits (long) for the one-time token.
fn start(vault: &std::path::Path, first: bool) -> Server {
    start_with(vault, first, &[])
}

/// [`start`] with more arguments (`--database-url URL`).
fn start_with(vault: &std::path::Path, first: bool, extra: &[&str]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_keyseal"))
        .args([
            "--vault",
            vault.to_str().unwrap(),
            "serve",
            "--listen",
            "127.0.0.1:0",
        ])
        .args(extra)
        .env("KEYSEAL_PASSPHRASE", "correct horse battery staple")
        .env("KEYSEAL_KDF_PARAMS", "m=256,t=1,p=1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn keyseal serve");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("listening on http://").nth(1) {
                let _ = tx.send(rest.split(' ').next().unwrap_or("").to_owned());
            }
        }
    });
    let addr: SocketAddr = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("server listening")
        .parse()
        .unwrap();
    // A first start prints two lines (a heading, then the token) before
    // the listening line; a later start prints nothing on stdout.
    let stdout = child.stdout.take().unwrap();
    let (ttx, trx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
        let _heading = lines.next();
        let _ = ttx.send(lines.next().unwrap_or_default());
    });
    let token = trx
        .recv_timeout(Duration::from_millis(if first { 30_000 } else { 500 }))
        .ok()
        .filter(|t| t.starts_with("ksk_"));
    Server { child, addr, token }
}

fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&Value>,
) -> std::io::Result<(u16, Value)> {
    let (status, body) = http_text(addr, method, path, token, body)?;
    let v = serde_json::from_str(&body).map_err(|_| std::io::Error::other("truncated body"))?;
    Ok((status, v))
}

/// [`http`], the body as text.
fn http_text(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&Value>,
) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let body = body.map(Value::to_string).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("truncated response"))?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status"))?;
    Ok((status, body.to_owned()))
}

/// Registers the product `acme-cad` through the API.
fn add_product(addr: SocketAddr, token: &str) {
    let (st, v) = http(
        addr,
        "POST",
        "/v1/products",
        token,
        Some(&json!({ "product": "acme-cad" })),
    )
    .unwrap();
    assert_eq!(st, 201, "{v}");
}

/// Mints one `acme-cad` license expiring after `expires` for a new
/// customer through the API: (customer id, the license as the API gives it).
fn mint_for_new_customer(addr: SocketAddr, token: &str, expires: &str) -> (String, Value) {
    let (st, c) = http(addr, "POST", "/v1/customers", token, Some(&json!({}))).unwrap();
    assert_eq!(st, 201, "{c}");
    let cus = c["customer_id"].as_str().unwrap().to_owned();
    let body =
        json!({ "product": "acme-cad", "customer_id": cus, "plan": "pro", "expires": expires });
    let (st, l) = http(addr, "POST", "/v1/licenses", token, Some(&body)).unwrap();
    assert_eq!(st, 201, "{l}");
    (cus, l)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn wait_exit(child: &mut Child, within: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < within {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// Mints from `threads` clients until `stop`; returns every acknowledged (id, key).
fn mint_stream(
    addr: SocketAddr,
    token: &str,
    cus: &str,
    threads: usize,
    stop: &Arc<AtomicBool>,
) -> Vec<std::thread::JoinHandle<Vec<(String, String)>>> {
    (0..threads)
        .map(|_| {
            let (token, cus, stop) = (token.to_owned(), cus.to_owned(), stop.clone());
            std::thread::spawn(move || {
                let mut got = Vec::new();
                let deadline = Instant::now() + Duration::from_secs(30);
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    let body = json!({ "product": "acme-cad", "customer_id": cus, "plan": "pro", "expires": "365d" });
                    match http(addr, "POST", "/v1/licenses", &token, Some(&body)) {
                        Ok((201, v)) => got.push((
                            v["license_id"].as_str().unwrap().to_owned(),
                            v["license_key"].as_str().unwrap().to_owned(),
                        )),
                        Ok((status, v)) => panic!("mint answered {status}: {v}"),
                        Err(_) => break, // the server is gone
                    }
                }
                got
            })
        })
        .collect()
}

fn check_all_in_ledger(s: &Server, token: &str, acked: &[(String, String)]) {
    let (status, ring) = http(s.addr, "GET", "/v1/public/keyring", token, None).unwrap();
    assert_eq!(status, 200);
    let ring: Keyring = ring["keyring"].as_str().unwrap().parse().unwrap();
    for (id, key) in acked {
        let (status, v) = http(s.addr, "GET", &format!("/v1/licenses/{id}"), token, None).unwrap();
        assert_eq!(
            status, 200,
            "acknowledged license {id} is not in the ledger"
        );
        assert_eq!(v["license_key"].as_str(), Some(key.as_str()));
        let mut buf = [0u8; MAX_LICENSE_LEN];
        let v = license::verify_text(key, &mut buf, &ring, &Expectations::new("acme-cad", now()))
            .expect("acknowledged key verifies");
        assert_eq!(v.claims().license_id.to_string(), *id);
    }
}

#[test]
fn acknowledged_mints_survive_sigkill_and_sigterm_drains() {
    let dir = tempfile::tempdir().unwrap();
    let vault = dir.path().join("vault");
    let s = start(&vault, true);
    let token = s.token.clone().expect("first start prints the admin token");
    assert!(token.starts_with("ksk_") && token.len() == 47);
    add_product(s.addr, &token);
    let (st, c) = http(s.addr, "POST", "/v1/customers", &token, Some(&json!({}))).unwrap();
    assert_eq!(st, 201);
    let cus = c["customer_id"].as_str().unwrap().to_owned();

    // SIGKILL in the middle of a stream of mints.
    let stop = Arc::new(AtomicBool::new(false));
    let clients = mint_stream(s.addr, &token, &cus, 4, &stop);
    let start_t = Instant::now();
    while start_t.elapsed() < Duration::from_millis(1500) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut s = s;
    s.child.kill().unwrap(); // SIGKILL
    let _ = s.child.wait();
    stop.store(true, Ordering::Relaxed);
    let acked: Vec<(String, String)> = clients
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    assert!(
        acked.len() >= 10,
        "only {} mints before the kill",
        acked.len()
    );
    eprintln!("{} mints acknowledged before SIGKILL", acked.len());
    drop(s);

    // Restart on the same vault: no new token, every acknowledged key is there and valid.
    let s2 = start(&vault, false);
    assert!(
        s2.token.is_none(),
        "the admin token is printed only on first start"
    );
    check_all_in_ledger(&s2, &token, &acked);

    // SIGTERM during a stream: it drains and exits 0; what was acknowledged is kept.
    let stop = Arc::new(AtomicBool::new(false));
    let clients = mint_stream(s2.addr, &token, &cus, 2, &stop);
    std::thread::sleep(Duration::from_millis(500));
    let mut s2 = s2;
    let pid = s2.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = wait_exit(&mut s2.child, Duration::from_secs(30))
        .expect("serve stops within 30 s of SIGTERM");
    assert!(status.success(), "serve exited with {status}");
    stop.store(true, Ordering::Relaxed);
    let acked2: Vec<(String, String)> = clients
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    drop(s2);
    let s3 = start(&vault, false);
    check_all_in_ledger(&s3, &token, &acked2);
    let (_, list) = http(s3.addr, "GET", "/v1/licenses?limit=500", &token, None).unwrap();
    assert!(list["items"].as_array().unwrap().len() >= acked.len().min(500));
    drop(s3);
    // The audit chain, written a group of mints at a time, is intact.
    let out = Command::new(env!("CARGO_BIN_EXE_keyseal"))
        .args(["--vault", vault.to_str().unwrap(), "audit", "verify"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_first_admin_token_can_go_to_a_private_file() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let vault = tmp.path().join("vault");
    let file = tmp.path().join("admin.token");
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_keyseal"))
            .args([
                "--vault",
                vault.to_str().unwrap(),
                "serve",
                "--listen",
                "127.0.0.1:0",
            ])
            .args(extra)
            .env("KEYSEAL_PASSPHRASE", "correct horse battery staple")
            .env("KEYSEAL_KDF_PARAMS", "m=256,t=1,p=1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut child = run(&["--admin-token-file", file.to_str().unwrap()]);
    let stderr = child.stderr.take().unwrap();
    let listening = BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
        .any(|l| l.contains("listening on http://"));
    assert!(listening);
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains("ksk_"));
    let token = std::fs::read_to_string(&file).unwrap();
    assert!(
        token.starts_with("ksk_") && token.ends_with('\n'),
        "{token}"
    );
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // An existing file is never overwritten: refused before anything starts.
    let out = run(&["--admin-token-file", file.to_str().unwrap()])
        .wait_with_output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), token);
}

/// `keyseal issue` of one license for `cus_cli`.
const ISSUE: &[&str] = &[
    "issue",
    "--product",
    "acme-cad",
    "--customer",
    "cus_cli",
    "--plan",
    "pro",
    "--expires",
    "365d",
];

/// Runs the keyseal CLI on `vault`: (exit code, stdout as JSON or Null).
fn cli(vault: &std::path::Path, args: &[&str]) -> (i32, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_keyseal"))
        .args(["--vault", vault.to_str().unwrap(), "--json"])
        .args(args)
        .env("KEYSEAL_PASSPHRASE", "correct horse battery staple")
        .env(
            "KEYSEAL_ROOT_PASSPHRASE",
            "an offline root, kept in a drawer",
        )
        .env("KEYSEAL_KDF_PARAMS", "m=256,t=1,p=1")
        .env_remove("KEYSEAL_ORG")
        .env_remove("KEYSEAL_DATABASE_URL")
        .output()
        .unwrap();
    let v = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), v)
}

/// One ledger: what the CLI mints the API gets, suspends and lists, and
/// what the API mints the CLI shows and revokes, in the default
/// organisation; another organisation's license is out of the CLI's reach
/// unless it names that organisation with --org.
#[test]
fn the_cli_and_the_api_share_one_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let vault = dir.path().join("vault");
    let (code, _) = cli(&vault, &["init", "--product", "acme-cad"]);
    assert_eq!(code, 0);
    let (code, minted) = cli(&vault, ISSUE);
    assert_eq!(code, 0);
    let by_cli = minted["license_id"].as_str().unwrap().to_owned();

    // The service's first start on a vault the CLI made: the default
    // organisation's admin token, its products and the CLI's license.
    let s = start(&vault, true);
    let token = s.token.clone().expect("first start prints the admin token");
    let (st, products) = http(s.addr, "GET", "/v1/products", &token, None).unwrap();
    assert_eq!(st, 200);
    assert_eq!(products["items"][0]["product"], "acme-cad");
    let (st, got) = http(
        s.addr,
        "GET",
        &format!("/v1/licenses/{by_cli}"),
        &token,
        None,
    )
    .unwrap();
    assert_eq!(st, 200, "{got}");
    assert_eq!(got["license_key"], minted["license_key"]);
    for action in ["suspend", "resume"] {
        let path = format!("/v1/licenses/{by_cli}/{action}");
        let (st, v) = http(s.addr, "POST", &path, &token, Some(&json!({}))).unwrap();
        assert_eq!(st, 200, "{action}: {v}");
    }
    let (_, list) = http(s.addr, "GET", "/v1/licenses?product=acme-cad", &token, None).unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);

    let (cus, by_api) = mint_for_new_customer(s.addr, &token, "30d");
    let by_api = by_api["license_id"].as_str().unwrap().to_owned();
    // Reads need no lock: the CLI sees it while the service runs.
    let (code, shown) = cli(&vault, &["licenses", "show", &by_api]);
    assert_eq!((code, shown["customer"].as_str()), (0, Some(cus.as_str())));
    let (code, _) = cli(&vault, &["licenses", "show", &by_cli]);
    assert_eq!(code, 0);
    drop(s);

    // The CLI revokes the API's license; another organisation's stays out
    // of reach without --org.
    let (code, _) = cli(&vault, &["revoke", &by_api, "--reason", "refund"]);
    assert_eq!(code, 0);
    let (code, other) = cli(&vault, &["org", "create", "Other"]);
    assert_eq!(code, 0);
    let (other_org, other_token) = (
        other["org_id"].as_str().unwrap().to_owned(),
        other["token"].as_str().unwrap().to_owned(),
    );
    let s = start(&vault, false);
    let (st, v) = http(
        s.addr,
        "GET",
        &format!("/v1/licenses/{by_api}"),
        &token,
        None,
    )
    .unwrap();
    assert_eq!(st, 200);
    assert_eq!(
        (v["status"].as_str(), v["revoke_reason"].as_str()),
        (Some("revoked"), Some("refund")),
        "{v}"
    );
    let (st, _) = http(
        s.addr,
        "GET",
        &format!("/v1/licenses/{by_cli}"),
        &other_token,
        None,
    )
    .unwrap();
    assert_eq!(st, 404, "another organisation's token sees no CLI license");
    add_product(s.addr, &other_token);
    let (_, theirs) = mint_for_new_customer(s.addr, &other_token, "30d");
    let theirs = theirs["license_id"].as_str().unwrap().to_owned();
    drop(s);
    let (code, _) = cli(&vault, &["revoke", &theirs, "--reason", "refund"]);
    assert_eq!(code, 5, "the default organisation has no such license");
    let (code, listed) = cli(&vault, &["licenses", "list"]);
    assert_eq!((code, listed.as_array().unwrap().len()), (0, 2));
    let (code, _) = cli(
        &vault,
        &["--org", &other_org, "revoke", &theirs, "--reason", "refund"],
    );
    assert_eq!(code, 0);
    let (code, listed) = cli(&vault, &["--org", &other_org, "licenses", "list"]);
    assert_eq!((code, listed.as_array().unwrap().len()), (0, 1));
    assert_eq!(listed[0]["revoke_reason"], "refund", "{listed}");
    let (code, _) = cli(
        &vault,
        &["--org", "org_0000000000000000", "licenses", "list"],
    );
    assert_ne!(code, 0, "an unknown --org is refused");
}

/// A new, empty database on the server of `KEYSEAL_TEST_POSTGRES_URL`,
/// named after `test` (tests run at once in one process).
fn fresh_postgres(base: &str, test: &str) -> String {
    use sqlx::{Connection, Executor};
    let name = format!("ks_cli_{test}_{}", std::process::id());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut c = sqlx::PgConnection::connect(base).await.unwrap();
        c.execute(format!("DROP DATABASE IF EXISTS {name}").as_str())
            .await
            .unwrap();
        c.execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .unwrap();
        c.close().await.unwrap();
    });
    let (head, _) = base.rsplit_once('/').unwrap();
    format!("{head}/{name}")
}

/// On PostgreSQL the database is the whole vault: replicas started with
/// only `--database-url` and the passphrase write no file (no stray SQLite
/// ledger, no key file), and every ledger command of the CLI works on it
/// beside them: it lists and revokes what the API minted, mints what the
/// API then serves from either replica, and checks the audit chain.
#[test]
fn replicas_and_the_cli_share_a_postgres_ledger() {
    let Ok(base) = std::env::var("KEYSEAL_TEST_POSTGRES_URL") else {
        eprintln!("PostgreSQL: skipped (KEYSEAL_TEST_POSTGRES_URL is not set)");
        return;
    };
    let url = fresh_postgres(&base, "share");
    let dir = tempfile::tempdir().unwrap();
    let (vault_a, vault_b) = (dir.path().join("a"), dir.path().join("b"));
    let a = start_with(&vault_a, true, &["--database-url", &url]);
    let token = a.token.clone().expect("first start prints the admin token");
    let b = start_with(&vault_b, false, &["--database-url", &url]);
    assert!(b.token.is_none(), "one admin token for all replicas");

    add_product(a.addr, &token);
    let (_, by_api) = mint_for_new_customer(a.addr, &token, "30d");
    let by_api = by_api["license_id"].as_str().unwrap().to_owned();

    let db = ["--database-url", url.as_str()];
    let cli_db = |args: &[&str]| cli(&vault_a, &[&db[..], args].concat());
    let (code, listed) = cli_db(&["licenses", "list"]);
    assert_eq!(
        (code, listed[0]["license_id"].as_str()),
        (0, Some(by_api.as_str()))
    );
    let (code, minted) = cli_db(ISSUE);
    assert_eq!(code, 0, "{minted}");
    let by_cli = minted["license_id"].as_str().unwrap();
    let (st, got) = http(
        b.addr,
        "GET",
        &format!("/v1/licenses/{by_cli}"),
        &token,
        None,
    )
    .unwrap();
    assert_eq!((st, &got["license_key"]), (200, &minted["license_key"]));
    let (code, _) = cli_db(&["revoke", &by_api, "--reason", "refund"]);
    assert_eq!(code, 0);
    let (_, got) = http(
        b.addr,
        "GET",
        &format!("/v1/licenses/{by_api}"),
        &token,
        None,
    )
    .unwrap();
    assert_eq!(got["status"], "revoked");
    let (code, audit) = cli_db(&["audit", "verify"]);
    assert_eq!((code, &audit["intact"]), (0, &json!(true)), "{audit}");
    let (code, rotated) = cli_db(&["keys", "rotate"]);
    assert_eq!(code, 0, "{rotated}");
    drop((a, b));
    assert!(
        !vault_a.exists() && !vault_b.exists(),
        "a PostgreSQL deployment writes no vault directory"
    );
}

/// An app that embeds only the keyring `keyseal root keyring` prints (one
/// pinned root, no issuing key) follows the vendor through three rotations
/// and a key compromise with no update (docs/FORMAT.md, "Who may sign a
/// list"): it learns each key the root certifies from the revocation list
/// file the service serves. The leaked key's list (sequence u64::MAX) and
/// license (dated 2100) work until the vendor revokes the key, rotates and
/// certifies; from the next list on they are refused, also by a restarted
/// app, and every genuine license of the other keys keeps validating.
/// `db`: the PostgreSQL database two replicas share (None: one service on
/// the vault's SQLite ledger).
fn a_root_pinned_app_follows_the_vendor(db: Option<&str>) {
    use keyseal::{MemoryStateStore, Validator};
    use keyseal_core::armor;
    use keyseal_core::revocation::RevocationListBuilder;

    let dir = tempfile::tempdir().unwrap();
    let vault = dir.path().join("vault");
    let root_file = dir.path().join("root.key");
    let db_args: Vec<&str> = db.map(|u| vec!["--database-url", u]).unwrap_or_default();
    let run = |args: &[&str]| cli(&vault, &[&db_args[..], args].concat());
    let (code, made) = run(&["root", "create", "--out", root_file.to_str().unwrap()]);
    assert_eq!(code, 0, "{made}");
    let (code, again) = run(&["root", "create", "--out", root_file.to_str().unwrap()]);
    assert_ne!(code, 0, "a root is made once: {again}");
    let (servers, token) = match db {
        None => {
            assert_eq!(run(&["init", "--product", "acme-cad"]).0, 0);
            let s = start(&vault, true);
            let token = s.token.clone().unwrap();
            (vec![s], token)
        }
        Some(url) => {
            let a = start_with(&dir.path().join("a"), true, &["--database-url", url]);
            let token = a.token.clone().unwrap();
            let b = start_with(&dir.path().join("b"), false, &["--database-url", url]);
            add_product(a.addr, &token);
            (vec![a, b], token)
        }
    };
    // Requests alternate between the replicas.
    let mut turn = 0;
    let mut addr = || {
        turn += 1;
        servers[turn % servers.len()].addr
    };
    let (code, ring) = run(&["root", "keyring", "--root", root_file.to_str().unwrap()]);
    assert_eq!(code, 0);
    let keyring: Keyring = ring["keyring"].as_str().unwrap().parse().unwrap();
    assert_eq!((keyring.keys().count(), keyring.roots().count()), (0, 1));
    let store = Arc::new(MemoryStateStore::new());
    let app = |store: &Arc<MemoryStateStore>| {
        Validator::builder(keyring.clone(), "acme-cad")
            .state(Arc::clone(store))
            .no_device()
            .build()
            .unwrap()
    };
    let mut validator = app(&store);
    let active_key = || -> String {
        let (code, keys) = run(&["keys", "list"]);
        assert_eq!(code, 0);
        keys.as_array()
            .unwrap()
            .iter()
            .find(|k| k["status"] == "active")
            .unwrap()["key_id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let certify = |key: &str| {
        let (code, c) = run(&[
            "root",
            "certify",
            "--root",
            root_file.to_str().unwrap(),
            key,
        ]);
        assert_eq!(code, 0, "{c}");
    };
    let fetch = |addr: SocketAddr| {
        let (st, text) = http_text(addr, "GET", "/v1/public/revocations", "", None).unwrap();
        assert_eq!(st, 200, "{text}");
        text
    };
    let mint = |addr: SocketAddr| {
        let (_, l) = mint_for_new_customer(addr, &token, "365d");
        l["license_key"].as_str().unwrap().to_owned()
    };
    let rotate = |addr: SocketAddr| {
        // Ranks have one-second resolution: a replacement made in the same
        // second as the key it replaces would tie with it (never so outside
        // a test, where a leak is found long after the key was made).
        std::thread::sleep(Duration::from_millis(1100));
        let (st, k) = http(addr, "POST", "/v1/keys/rotate", &token, Some(&json!({}))).unwrap();
        assert_eq!(st, 201, "{k}");
        k["key_id"].as_str().unwrap().to_owned()
    };
    let valid = |v: &Validator, key: &str| v.validate(key).map(|_| ()).map_err(|r| r.code());

    // Key 1, certified; then three rotations, each certified.
    certify(&active_key());
    validator
        .load_revocation_list(fetch(addr()).as_bytes())
        .unwrap();
    let mut genuine = vec![mint(addr())];
    let mut keys = vec![active_key()];
    for _ in 0..3 {
        let k = rotate(addr());
        certify(&k);
        // The list in force (signed by the previous key) now comes with the
        // new key's certificate: the app knows the key before it signs.
        validator
            .load_revocation_list(fetch(addr()).as_bytes())
            .unwrap();
        genuine.push(mint(addr()));
        keys.push(k);
    }
    for key in &genuine {
        assert_eq!(valid(&validator, key), Ok(()));
    }

    // Key 4 (keys[3], the active one) leaks.
    let leaked = {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let store = match db {
                Some(url) => keyseal_issuer::Store::connect(url).await.unwrap(),
                None => keyseal_issuer::Vault::open(&vault, keyseal_issuer::Access::Read)
                    .await
                    .unwrap()
                    .store()
                    .clone(),
            };
            let pass =
                keyseal_issuer::Passphrase::new("correct horse battery staple".to_owned().into())
                    .unwrap();
            store
                .sealed_key(keys[3].parse().unwrap())
                .await
                .unwrap()
                .unwrap()
                .open(&pass, std::path::Path::new("ledger"))
                .unwrap()
        })
    };
    // The certificates the service publishes (the leaked key's among them).
    let served = fetch(addr());
    let certificates =
        served[..served.find("-----BEGIN KEYSEAL REVOCATION LIST").unwrap()].to_owned();
    assert_eq!(
        certificates
            .matches("BEGIN KEYSEAL KEY CERTIFICATE")
            .count(),
        4
    );
    let mut frozen = certificates.clone();
    let list = RevocationListBuilder::new(u64::MAX, now(), now() + 3650 * 86_400)
        .sign(&leaked)
        .unwrap();
    armor::write_block(&mut frozen, armor::REVOCATION_LIST, &list).unwrap();
    let mut claims = keyseal_core::Claims::new(
        keyseal_core::LicenseId::from_u128(2100),
        "acme-cad",
        "cus_pirate",
        "pro",
        4_102_444_800,
    );
    claims.expires_at = None;
    let forged = license::to_text(&license::issue(&leaked, &claims, None).unwrap());
    validator.load_revocation_list(frozen.as_bytes()).unwrap();
    assert_eq!(valid(&validator, &forged), Ok(()));
    assert_eq!(
        valid(&validator, &genuine[0]),
        Ok(()),
        "the forged date moved no clock"
    );

    // The vendor's response: rotate, certify the new key, revoke the leaked
    // one (the list that revocation publishes is the new key's).
    let fresh = rotate(addr());
    certify(&fresh);
    let (st, v) = http(
        addr(),
        "POST",
        &format!("/v1/keys/{}/revoke", keys[3]),
        &token,
        Some(&json!({ "reason": "key-leaked" })),
    )
    .unwrap();
    assert_eq!(st, 200, "{v}");
    genuine.push(mint(addr()));
    for restarted in [false, true] {
        if restarted {
            validator = app(&store);
            assert_eq!(
                validator
                    .load_revocation_list(frozen.as_bytes())
                    .unwrap_err()
                    .code(),
                "rolled_back_revocation_list"
            );
        }
        validator
            .load_revocation_list(fetch(addr()).as_bytes())
            .unwrap();
        // A restarted app no longer even knows the leaked key: its
        // certificate is not served any more.
        let gone = if restarted {
            "unknown_key"
        } else {
            "key_revoked"
        };
        assert_eq!(valid(&validator, &forged), Err(gone));
        assert_eq!(
            validator
                .load_revocation_list(frozen.as_bytes())
                .unwrap_err()
                .code(),
            "rolled_back_revocation_list"
        );
        // Genuine licenses of the leaked key go with it (the vendor reissues
        // them); every other one validates.
        assert_eq!(valid(&validator, &genuine[3]), Err(gone));
        for (i, key) in genuine.iter().enumerate().filter(|(i, _)| *i != 3) {
            assert_eq!(valid(&validator, key), Ok(()), "license {i}");
        }
    }
}

#[test]
fn a_root_pinned_app_follows_the_vendor_on_sqlite() {
    a_root_pinned_app_follows_the_vendor(None);
}

#[test]
fn a_root_pinned_app_follows_the_vendor_on_postgres_replicas() {
    let Ok(base) = std::env::var("KEYSEAL_TEST_POSTGRES_URL") else {
        eprintln!("PostgreSQL: skipped (KEYSEAL_TEST_POSTGRES_URL is not set)");
        return;
    };
    a_root_pinned_app_follows_the_vendor(Some(&fresh_postgres(&base, "root")));
}
