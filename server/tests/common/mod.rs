//! A test server on 127.0.0.1 (random port) in its own thread and runtime,
//! and a minimal HTTP/1.1 client over std's TcpStream (so tests can send
//! anything, malformed requests included). Every server stops when its
//! handle drops, and after 120 seconds at the latest.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use keyseal_issuer::service::Scope;
use keyseal_issuer::{Context, KdfParams, Passphrase};
use keyseal_server::{Options, Service, auth};
use serde_json::Value;

pub fn secret(s: &str) -> Passphrase {
    Passphrase::new(zeroize::Zeroizing::new(s.to_owned())).expect("passphrase")
}

pub const PASS: &str = "correct horse battery staple";

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Cheap Argon2 for tests.
pub fn kdf() -> KdfParams {
    "m=256,t=1,p=1".parse().expect("kdf")
}

pub struct TestServer {
    pub backend: Backend,
    pub addr: SocketAddr,
    /// Admin token of organisation A (the one made on first start).
    pub admin: String,
    /// Read-only token of organisation A.
    pub read: String,
    /// Issue-scoped token of organisation A.
    pub issue: String,
    /// Admin token of organisation B.
    pub other: String,
    /// Organisation A's id (the default organisation, made on first start).
    pub org_a: String,
    /// Organisation B's id (its own signing key, made as `keyseal org create` does).
    pub org_b: String,
    pub dir: tempfile::TempDir,
    /// The PostgreSQL database's URL, on that back end.
    pub database_url: Option<String>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Which ledger a test server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The vault's embedded SQLite file.
    Sqlite,
    /// A fresh database on the server `KEYSEAL_TEST_POSTGRES_URL` names.
    Postgres,
}

/// The back ends to run on: SQLite always, PostgreSQL when
/// `KEYSEAL_TEST_POSTGRES_URL` is set (a role that may create databases).
/// The back ends to test on: SQLite, and PostgreSQL when
/// `KEYSEAL_TEST_POSTGRES_URL` is set.
pub fn backend_list() -> Vec<Backend> {
    let mut v = vec![Backend::Sqlite];
    if std::env::var("KEYSEAL_TEST_POSTGRES_URL").is_ok() {
        v.push(Backend::Postgres);
    } else {
        eprintln!("PostgreSQL: skipped (KEYSEAL_TEST_POSTGRES_URL is not set)");
    }
    v
}

pub fn backends() -> impl Iterator<Item = TestServer> {
    backend_list().into_iter().map(start_on)
}

/// Creates an empty database for one test server; returns its URL.
pub async fn fresh_postgres() -> String {
    use sqlx::{Connection, Executor};
    let base = std::env::var("KEYSEAL_TEST_POSTGRES_URL").expect("KEYSEAL_TEST_POSTGRES_URL");
    let mut rnd = [0u8; 8];
    getrandom::fill(&mut rnd).expect("random");
    let name = format!("ks_test_{}", keyseal_core::hex::encode(&rnd));
    let mut c = sqlx::PgConnection::connect(&base)
        .await
        .expect("connect to KEYSEAL_TEST_POSTGRES_URL");
    c.execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("create database");
    c.close().await.expect("close");
    let (head, _) = base.rsplit_once('/').expect("URL with a database name");
    let rest = base
        .split_once('?')
        .map(|(_, q)| format!("?{q}"))
        .unwrap_or_default();
    format!("{head}/{name}{rest}")
}

pub fn start() -> TestServer {
    start_on(Backend::Sqlite)
}

pub fn start_on(backend: Backend) -> TestServer {
    start_with_clock(backend, Arc::new(now))
}

/// A clock at real time plus an offset the test moves (seconds).
pub fn offset_clock() -> (Arc<std::sync::atomic::AtomicU64>, keyseal_server::Clock) {
    let offset = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let o = offset.clone();
    (
        offset,
        Arc::new(move || now() + o.load(std::sync::atomic::Ordering::SeqCst)),
    )
}

/// A test server whose clock is `clock` (tests that move time).
pub fn start_with_clock(backend: Backend, clock: keyseal_server::Clock) -> TestServer {
    // Tests read the public endpoints (and ask for trials) far faster than
    // apps: no rate limit (`tests/network.rs` and `tests/trials.rs` check
    // them).
    let network = keyseal_server::Network {
        public_requests_per_second: 0,
        trial_requests_per_client_per_minute: 0,
        ..keyseal_server::Network::default()
    };
    start_full(backend, clock, network, None)
}

/// A test server whose clock is `clock` and whose revocation-list
/// refresher runs every `every`.
pub fn start_with_refresh(
    backend: Backend,
    clock: keyseal_server::Clock,
    every: std::time::Duration,
) -> TestServer {
    let network = keyseal_server::Network {
        public_requests_per_second: 0,
        ..keyseal_server::Network::default()
    };
    start_full(backend, clock, network, Some(every))
}

/// A test server with these timeouts, connection limit and proxies.
pub fn start_with_network(network: keyseal_server::Network) -> TestServer {
    start_full(Backend::Sqlite, Arc::new(now), network, None)
}

fn start_full(
    backend: Backend,
    clock: keyseal_server::Clock,
    network: keyseal_server::Network,
    list_refresh: Option<std::time::Duration>,
) -> TestServer {
    let dir = tempfile::tempdir().expect("tempdir");
    let vault_dir = dir.path().join("vault");
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let database_url = match backend {
                Backend::Sqlite => None,
                Backend::Postgres => Some(fresh_postgres().await),
            };
            let opts = Options {
                vault_dir: vault_dir.clone(),
                database_url: database_url.clone(),
                auth_failures_per_minute: None,
                drain_timeout: None,
                list_refresh,
                network,
                // Receivers on loopback.
                webhooks: keyseal_server::WebhookOptions {
                    private_networks: true,
                    ..Default::default()
                },
                passphrase: secret(PASS),
                kdf: Some(kdf()),
                clock: clock.clone(),
            };
            let mut svc = Service::open(opts).await.expect("open service");
            let admin = svc.take_admin_token().expect("first start prints a token");
            let ctx = Context {
                now: clock(),
                actor: "test".into(),
            };
            let org_a = svc
                .store()
                .token_by_hash(&auth::token_hash(&admin))
                .await
                .expect("lookup")
                .expect("token")
                .org_id;
            let read = auth::new_token().expect("token");
            svc.store()
                .add_token(
                    &org_a,
                    &auth::token_hash(&read),
                    &[Scope::Read],
                    "read",
                    &ctx,
                )
                .await
                .expect("read token");
            let issue = auth::new_token().expect("token");
            svc.store()
                .add_token(
                    &org_a,
                    &auth::token_hash(&issue),
                    &[Scope::Issue],
                    "issue",
                    &ctx,
                )
                .await
                .expect("issue token");
            let other = auth::new_token().expect("token");
            let (_, key_b) =
                keyseal_issuer::vault::seal_new_key(&secret(PASS), kdf()).expect("org b's key");
            let (org_b, _) = svc
                .store()
                .create_org(
                    "other",
                    &auth::token_hash(&other),
                    &[Scope::Admin],
                    &key_b,
                    &ctx,
                )
                .await
                .expect("org b");
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let addr = listener.local_addr().expect("addr");
            ready_tx
                .send((addr, admin, read, issue, other, org_a, org_b, database_url))
                .expect("send");
            let shutdown = async move {
                tokio::select! {
                    _ = stop_rx => {}
                    () = tokio::time::sleep(Duration::from_secs(120)) => {}
                }
            };
            svc.serve(listener, shutdown).await.expect("serve");
        });
    });
    let (addr, admin, read, issue, other, org_a, org_b, database_url) = ready_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("server started");
    TestServer {
        backend,
        addr,
        admin,
        read,
        issue,
        other,
        org_a,
        org_b,
        dir,
        database_url,
        stop: Some(stop_tx),
        thread: Some(thread),
    }
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Asserts a problem+json error with this status and type slug.
    #[track_caller]
    pub fn problem(&self, status: u16, slug: &str) {
        assert_eq!(self.status, status, "body: {}", self.text());
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "body: {}",
            self.text()
        );
        let j = self.json();
        assert_eq!(
            j["type"],
            format!("urn:keyseal:problem:{slug}"),
            "body: {}",
            self.text()
        );
        assert_eq!(j["status"], status);
        // RFC 6750 and RFC 6585: how to authenticate, when to try again.
        match status {
            401 => assert_eq!(
                self.header("www-authenticate"),
                Some("Bearer realm=\"keyseal\"")
            ),
            // Public requests are limited per second, failures per minute.
            429 => assert_eq!(
                self.header("retry-after"),
                Some(if slug == "rate-limited" { "1" } else { "60" })
            ),
            _ => {}
        }
        assert!(j["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }
}

/// Sends raw bytes, reads the whole response (the request says `Connection: close`).
pub fn raw(addr: SocketAddr, request: &[u8]) -> Resp {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    s.set_write_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    // The server may answer (413) before reading everything: ignore write errors.
    let _ = s.write_all(request);
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    parse(&buf)
}

fn parse(buf: &[u8]) -> Resp {
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response: {:?}", String::from_utf8_lossy(buf)));
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = buf[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Resp {
        status,
        headers,
        body,
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(p) = b.windows(2).position(|w| w == b"\r\n") {
        let n = usize::from_str_radix(String::from_utf8_lossy(&b[..p]).trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.extend_from_slice(&b[p + 2..p + 2 + n]);
        b = &b[p + 2 + n + 2..];
    }
    out
}

/// A request with optional token, content type and body, plus extra headers.
pub fn req(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<(&str, &[u8])>,
    extra: &[(&str, &str)],
) -> Resp {
    let mut r = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(t) = token {
        r.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    for (k, v) in extra {
        r.push_str(&format!("{k}: {v}\r\n"));
    }
    let mut bytes = match body {
        Some((ct, b)) => {
            r.push_str(&format!(
                "Content-Type: {ct}\r\nContent-Length: {}\r\n\r\n",
                b.len()
            ));
            let mut v = r.into_bytes();
            v.extend_from_slice(b);
            v
        }
        None => {
            r.push_str("Content-Length: 0\r\n\r\n");
            r.into_bytes()
        }
    };
    bytes.shrink_to_fit();
    raw(addr, &bytes)
}

pub fn get(addr: SocketAddr, path: &str, token: &str) -> Resp {
    req(addr, "GET", path, Some(token), None, &[])
}

pub fn post(addr: SocketAddr, path: &str, token: &str, body: &Value) -> Resp {
    req(
        addr,
        "POST",
        path,
        Some(token),
        Some(("application/json", body.to_string().as_bytes())),
        &[],
    )
}

pub fn post_empty(addr: SocketAddr, path: &str, token: &str) -> Resp {
    req(addr, "POST", path, Some(token), None, &[])
}

/// Uses `token` (`GET /v1/products`, read scope) in a loop from `threads`
/// threads until `stop` is set; each request's start time and status.
pub fn hammer(
    addr: SocketAddr,
    token: &str,
    threads: usize,
    stop: &Arc<std::sync::atomic::AtomicBool>,
) -> Vec<std::thread::JoinHandle<Vec<(std::time::Instant, u16)>>> {
    (0..threads)
        .map(|_| {
            let (token, stop) = (token.to_owned(), stop.clone());
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let at = std::time::Instant::now();
                    seen.push((at, get(addr, "/v1/products", &token).status));
                }
                seen
            })
        })
        .collect()
}

/// An anonymous JSON POST (an app's, a relay's), with extra headers.
pub fn public_post(addr: SocketAddr, path: &str, body: &Value, extra: &[(&str, &str)]) -> Resp {
    req(
        addr,
        "POST",
        path,
        None,
        Some(("application/json", body.to_string().as_bytes())),
        extra,
    )
}

/// Device `n`: one `machine-id` component of product `acme-cad`.
pub fn device(n: u32) -> keyseal_core::Fingerprint {
    keyseal_core::Fingerprint::from_components(&[keyseal_core::Fingerprint::component(
        "acme-cad",
        "machine-id",
        &n.to_be_bytes(),
    )])
    .unwrap()
}

/// Product `acme-cad`, a customer and a license of it with `seats` seats,
/// valid for a year: its key and id.
pub fn seat_license(addr: SocketAddr, token: &str, seats: u64) -> (String, String) {
    let _ = post(
        addr,
        "/v1/products",
        token,
        &serde_json::json!({ "product": "acme-cad" }),
    );
    let cus = post(addr, "/v1/customers", token, &serde_json::json!({})).json()["customer_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = post(
        addr,
        "/v1/licenses",
        token,
        &serde_json::json!({ "product": "acme-cad", "customer_id": cus, "plan": "floating", "expires": "365d", "max_devices": seats }),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let j = r.json();
    (
        j["license_key"].as_str().unwrap().to_owned(),
        j["license_id"].as_str().unwrap().to_owned(),
    )
}

/// Every byte the test server's ledger holds: the SQLite files, or every
/// row of every PostgreSQL table as text.
pub async fn ledger_bytes(s: &TestServer) -> Vec<u8> {
    match s.backend {
        Backend::Sqlite => {
            let vault = s.dir.path().join("vault");
            let mut all = Vec::new();
            for f in ["ledger.sqlite", "ledger.sqlite-wal", "ledger.sqlite-shm"] {
                if let Ok(b) = std::fs::read(vault.join(f)) {
                    all.extend(b);
                }
            }
            assert!(all.len() > 10_000, "the ledger files were read");
            all
        }
        Backend::Postgres => {
            use sqlx::{Connection, Row};
            let mut c = sqlx::PgConnection::connect(s.database_url.as_deref().unwrap())
                .await
                .unwrap();
            let tables: Vec<String> = sqlx::query(
                "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'",
            )
            .fetch_all(&mut c)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
            assert!(tables.iter().any(|t| t == "customers"));
            let mut all = Vec::new();
            for t in tables {
                for r in sqlx::query(&format!("SELECT t::text FROM \"{t}\" t"))
                    .fetch_all(&mut c)
                    .await
                    .unwrap()
                {
                    all.extend(r.get::<String, _>(0).into_bytes());
                    all.push(b'\n');
                }
            }
            all
        }
    }
}

/// Whether `needle` is in `hay`, in any case.
pub fn holds(hay: &[u8], needle: &str) -> bool {
    let n = needle.as_bytes();
    hay.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

/// A webhook receiver on loopback answering `status` (changeable) to every POST,
/// keeping each body it answered 2xx to.
pub struct Receiver {
    pub url: String,
    pub status: Arc<std::sync::atomic::AtomicU16>,
    pub got: Arc<std::sync::Mutex<Vec<Value>>>,
}

pub fn receiver(status: u16) -> Receiver {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hooks", l.local_addr().unwrap());
    let status = Arc::new(std::sync::atomic::AtomicU16::new(status));
    let got = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (s, g) = (status.clone(), got.clone());
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut c) = conn else { continue };
            use std::io::BufRead as _;
            let mut r = std::io::BufReader::new(c.try_clone().unwrap());
            let mut len = 0;
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; len];
            let _ = r.read_exact(&mut body);
            let code = s.load(std::sync::atomic::Ordering::SeqCst);
            if (200..300).contains(&code) {
                g.lock()
                    .unwrap()
                    .push(serde_json::from_slice(&body).unwrap_or(Value::Null));
            }
            let _ = write!(
                c,
                "HTTP/1.1 {code} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
        }
    });
    Receiver { url, status, got }
}
