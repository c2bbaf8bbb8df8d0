//! Slow and idle clients over real TCP on 127.0.0.1: an idle connection is
//! closed once the header timeout passes with no request, so is one that
//! trickles its headers, and a body that stops arriving gets a 408; valid
//! requests are answered meanwhile.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use keyseal_server::{BODY_TIMEOUT, HEADER_TIMEOUT};

/// Reads until the server closes the connection (or 30 s pass); returns
/// what it sent and when it closed, counted from `start`.
fn until_closed(mut c: TcpStream, start: Instant) -> (String, Duration) {
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match c.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    (String::from_utf8_lossy(&got).into_owned(), start.elapsed())
}

#[test]
fn idle_slow_and_stalled_clients_are_cut() {
    let s = common::start();
    let addr = s.addr;
    let start = Instant::now();
    // Idle: connects and sends nothing.
    let idle = TcpStream::connect(addr).unwrap();
    // Idle after one answered request on a keep-alive connection.
    let mut kept = TcpStream::connect(addr).unwrap();
    write!(kept, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    // Slowloris: one header byte a second, never finishing.
    let slow = TcpStream::connect(addr).unwrap();
    let trickle = {
        let mut slow = slow.try_clone().unwrap();
        std::thread::spawn(move || {
            let head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
            for b in head {
                if slow.write_all(&[*b]).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        })
    };
    // Stalled body: headers and 2 of 100 bytes.
    let mut stalled = TcpStream::connect(addr).unwrap();
    write!(
        stalled,
        "POST /v1/products HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"",
        s.admin
    )
    .unwrap();

    let waits: Vec<_> = [idle, kept, slow, stalled]
        .into_iter()
        .map(|c| std::thread::spawn(move || until_closed(c, start)))
        .collect();
    // Meanwhile a valid client is served at once.
    std::thread::sleep(Duration::from_secs(2));
    let t = Instant::now();
    assert_eq!(common::get(addr, "/v1/products", &s.admin).status, 200);
    assert!(t.elapsed() < Duration::from_secs(2));

    let [idle, kept, slow, stalled]: [(String, Duration); 4] = waits
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect::<Vec<_>>()
        .try_into()
        .unwrap();
    trickle.join().unwrap();
    let within = |d: Duration, limit: Duration| {
        d >= limit - Duration::from_millis(500) && d < limit + Duration::from_secs(5)
    };
    assert!(
        within(idle.1, HEADER_TIMEOUT),
        "idle closed after {:?}",
        idle.1
    );
    assert_eq!(idle.0, "");
    assert!(kept.0.starts_with("HTTP/1.1 200"), "{}", kept.0);
    assert!(
        within(kept.1, HEADER_TIMEOUT),
        "keep-alive closed after {:?}",
        kept.1
    );
    assert!(
        within(slow.1, HEADER_TIMEOUT),
        "slowloris closed after {:?}",
        slow.1
    );
    assert!(stalled.0.starts_with("HTTP/1.1 408"), "{}", stalled.0);
    assert!(
        stalled.0.contains("urn:keyseal:problem:request-timeout"),
        "{}",
        stalled.0
    );
    assert!(
        within(stalled.1, BODY_TIMEOUT),
        "stalled body answered after {:?}",
        stalled.1
    );
}

#[test]
fn connections_are_capped_by_the_file_limit() {
    let limits = |soft: &str| {
        format!(
            "Limit                     Soft Limit           Hard Limit           Units\n\
             Max processes             63704                63704                processes\n\
             Max open files            {soft}                 524288               files\n"
        )
    };
    let of = |soft: &str| keyseal_server::connections_for(Some(&limits(soft)));
    // Half the soft limit, within 16 and 4,096.
    assert_eq!(of("128"), 64);
    assert_eq!(of("1024"), 512);
    assert_eq!(of("20"), 16);
    assert_eq!(of("1048576"), 4096);
    // Nothing to read (not Linux): 1,024.
    assert_eq!(keyseal_server::connections_for(None), 1024);
    assert_eq!(keyseal_server::connections_for(Some("garbage")), 1024);
    // This machine's limit is read.
    let here = std::fs::read_to_string("/proc/self/limits").unwrap();
    assert_eq!(
        keyseal_server::max_connections(),
        keyseal_server::connections_for(Some(&here))
    );
    assert!(here.contains("Max open files"));
}
