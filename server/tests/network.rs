//! The network options over real TCP: trusted proxies (their
//! `X-Forwarded-For` names the client the failure limit counts; anyone
//! else's is ignored), and a configured header timeout and connection
//! limit, and the public endpoints' per-client rate limit.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, TcpStream};
use std::time::{Duration, Instant};

use common::req;
use keyseal_server::Network;

fn net(proxies: &[&str]) -> Network {
    Network {
        trusted_proxies: proxies.iter().map(|p| p.parse().unwrap()).collect(),
        ..Network::default()
    }
}

#[test]
fn the_client_is_the_rightmost_untrusted_hop() {
    let n = net(&["10.0.0.0/8", "::1/128"]);
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    let proxy = ip("10.1.2.3");
    // Not from a proxy: the header is the client's claim, ignored.
    assert_eq!(
        n.client(ip("203.0.113.9"), Some("198.51.100.1")),
        ip("203.0.113.9")
    );
    // From a proxy: the address it saw.
    assert_eq!(n.client(proxy, Some("198.51.100.1")), ip("198.51.100.1"));
    // A client that forges hops on the left gains nothing.
    assert_eq!(
        n.client(proxy, Some("1.1.1.1, 198.51.100.1, 10.9.9.9")),
        ip("198.51.100.1")
    );
    // No header, or only proxies: the leftmost known.
    assert_eq!(n.client(proxy, None), proxy);
    assert_eq!(n.client(proxy, Some("10.0.0.1, 10.0.0.2")), ip("10.0.0.1"));
    // Garbage stops the walk where it is.
    assert_eq!(n.client(proxy, Some("198.51.100.1, nonsense")), proxy);
    // IPv4-mapped IPv6 peers match IPv4 ranges; IPv6 proxies work.
    assert_eq!(
        n.client(ip("::ffff:10.1.2.3"), Some("2001:db8::7")),
        ip("2001:db8::7")
    );
    assert_eq!(n.client(ip("::1"), Some("2001:db8::7")), ip("2001:db8::7"));
    // No trusted proxies: never believed.
    assert_eq!(
        Network::default().client(proxy, Some("198.51.100.1")),
        proxy
    );
}

fn bad_auth(addr: std::net::SocketAddr, forwarded: &str) -> u16 {
    req(
        addr,
        "GET",
        "/v1/licenses",
        Some("ksk_0000000000000000000000000000000000000000000"),
        None,
        &[("X-Forwarded-For", forwarded)],
    )
    .status
}

#[test]
fn behind_a_trusted_proxy_each_client_has_its_own_limit() {
    let s = common::start_with_network(net(&["127.0.0.1/32"]));
    // One client fails until it is limited...
    let mut limited = false;
    for _ in 0..40 {
        if bad_auth(s.addr, "198.51.100.1") == 429 {
            limited = true;
            break;
        }
    }
    assert!(limited, "the failing client was never limited");
    // ...another client behind the same proxy is not,
    assert_eq!(bad_auth(s.addr, "198.51.100.2"), 401);
    // and the first stays limited however it rewrites its own header.
    assert_eq!(bad_auth(s.addr, "9.9.9.9, 198.51.100.1"), 429);
}

#[test]
fn without_trusted_proxies_a_forged_header_escapes_nothing() {
    let s = common::start();
    let mut limited = false;
    for i in 0..40 {
        if bad_auth(s.addr, &format!("198.51.100.{i}")) == 429 {
            limited = true;
            break;
        }
    }
    assert!(limited, "rotating X-Forwarded-For escaped the limit");
}

#[test]
fn the_header_timeout_and_connection_limit_are_configurable() {
    let s = common::start_with_network(Network {
        header_timeout: Duration::from_secs(1),
        max_connections: Some(4),
        ..Network::default()
    });
    // Four idle connections take every slot; a fifth client waits...
    let start = Instant::now();
    let idle: Vec<TcpStream> = (0..4)
        .map(|_| TcpStream::connect(s.addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut c = TcpStream::connect(s.addr).unwrap();
    write!(
        c,
        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut got = String::new();
    let _ = c.read_to_string(&mut got);
    // ...until the 1 s header timeout closes the idle ones: answered after
    // about a second, not the default 10.
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(8),
        "{waited:?}"
    );
    drop(idle);
}

#[test]
fn random_methods_do_not_grow_the_metrics() {
    let s = common::start();
    // Warm every label the flood will touch: the unmatched route and "other".
    req(s.addr, "BREW", "/v1/nope", None, None, &[]);
    let size = || req(s.addr, "GET", "/metrics", None, None, &[]).body.len();
    size();
    let before = size();
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    for _ in 0..3_000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let method: String = (0..8)
            .map(|i| char::from(b'A' + ((seed >> (i * 5)) % 26) as u8))
            .collect();
        let mut c = TcpStream::connect(s.addr).unwrap();
        write!(
            c,
            "{method} /v1/nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut sink = Vec::new();
        let _ = c.read_to_end(&mut sink);
    }
    let after = size();
    // Counters grow by digits, never by labels.
    assert!(after < before + 64, "{before} -> {after}");
    let text = req(s.addr, "GET", "/metrics", None, None, &[]).text();
    assert!(text.contains("method=\"other\""), "{text}");
}

#[test]
fn one_hundred_fifty_idle_connections_leave_valid_requests_answered() {
    // The default limit (half the open-file limit): the idle ones do not
    // reach it. (Below it, they wait their header timeout out in turn.)
    let s = common::start();
    let idle: Vec<TcpStream> = (0..150)
        .map(|_| TcpStream::connect(s.addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let start = Instant::now();
    let r = req(s.addr, "GET", "/v1/products", Some(&s.read), None, &[]);
    assert_eq!(r.status, 200);
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    drop(idle);
}

/// The public endpoints are limited per client: past its burst a client
/// is slowed to its rate (a request waits for the allowance, up to a
/// second), and what cannot be answered within a second gets 429
/// `rate-limited` with `Retry-After: 1`; another client (behind a trusted
/// proxy, by its forwarded address) is not held up, authenticated requests
/// are not counted, and the allowance comes back with time.
#[test]
fn public_endpoints_are_rate_limited_per_client() {
    let network = Network {
        public_requests_per_second: 2,
        ..net(&["127.0.0.1/32"])
    };
    let s = common::start_with_network(network);
    let public = |client: &str| {
        req(
            s.addr,
            "GET",
            "/v1/public/keyring",
            None,
            None,
            &[("X-Forwarded-For", client)],
        )
    };
    // A burst of five times the rate (10) at once.
    let t = Instant::now();
    for _ in 0..10 {
        assert_eq!(public("198.51.100.7").status, 200);
    }
    assert!(t.elapsed() < Duration::from_millis(500), "the burst waited");
    // Then one request every half second (2 a second): the next three
    // wait for their turn and are answered.
    let t = Instant::now();
    for _ in 0..3 {
        assert_eq!(public("198.51.100.7").status, 200);
    }
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_millis(1300) && waited < Duration::from_millis(2500),
        "three requests over the rate took {waited:?}"
    );
    // Eight at once: two fit in the next second, the rest are refused
    // once a second's wait would not do.
    let answers: Vec<common::Resp> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..8)
            .map(|_| sc.spawn(|| public("198.51.100.7")))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let served = answers.iter().filter(|r| r.status == 200).count();
    assert!((1..=3).contains(&served), "{served} of 8 served");
    for r in answers.iter().filter(|r| r.status != 200) {
        r.problem(429, "rate-limited");
        assert_eq!(r.header("retry-after"), Some("1"));
    }
    // Another client is not held up.
    let t = Instant::now();
    assert_eq!(public("198.51.100.8").status, 200, "another client");
    assert!(
        t.elapsed() < Duration::from_millis(300),
        "another client waited"
    );
    for _ in 0..20 {
        assert_eq!(
            common::get(s.addr, "/v1/keys", &s.admin).status,
            200,
            "authenticated requests are not counted"
        );
    }
    std::thread::sleep(Duration::from_millis(3000));
    let t = Instant::now();
    assert_eq!(public("198.51.100.7").status, 200, "allowance back");
    assert!(t.elapsed() < Duration::from_millis(300), "allowance back");
}

/// Full downloads of revocation lists share the replica's byte budget,
/// whoever asks: past it a download waits up to a second, then gets 429
/// `rate-limited` with `Retry-After: 1`; a conditional request (what apps
/// send) is answered at once whatever the budget.
#[test]
fn full_list_downloads_share_a_budget() {
    let network = Network {
        public_requests_per_second: 0,
        // One KiB a second: each list file here is under a KiB.
        public_list_bytes_per_second: 1024,
        ..net(&[])
    };
    let s = common::start_with_network(network);
    let list = |etag: Option<&str>| {
        let headers: Vec<(&str, &str)> = etag.map(|e| ("If-None-Match", e)).into_iter().collect();
        req(
            s.addr,
            "GET",
            "/v1/public/revocations",
            None,
            None,
            &headers,
        )
    };
    let first = list(None);
    assert_eq!(first.status, 200, "{}", first.text());
    assert!(first.text().len() < 1024, "{} bytes", first.text().len());
    let etag = first.header("etag").unwrap().to_owned();
    // Six more at once: at most one more fits in the next second.
    let t = Instant::now();
    let answers: Vec<common::Resp> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..6).map(|_| sc.spawn(|| list(None))).collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let served = answers.iter().filter(|r| r.status == 200).count();
    assert!(served <= 2, "{served} of 6 served");
    for r in answers.iter().filter(|r| r.status != 200) {
        r.problem(429, "rate-limited");
        assert_eq!(r.header("retry-after"), Some("1"));
    }
    assert!(
        t.elapsed() < Duration::from_millis(1800),
        "{:?}",
        t.elapsed()
    );
    // Conditional requests are not held up.
    let t = Instant::now();
    for _ in 0..20 {
        assert_eq!(list(Some(&etag)).status, 304);
    }
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );
    // And the budget comes back with time.
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(list(None).status, 200);
}
