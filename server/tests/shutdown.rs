//! Shutdown: a request in flight when the signal comes is answered; one
//! that never completes is cut after the drain timeout, so the process
//! always stops.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use keyseal_server::{Options, Service};

#[test]
fn shutdown_drains_then_cuts_stuck_requests() {
    let dir = tempfile::tempdir().unwrap();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let vault_dir = dir.path().join("vault");
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let opts = Options {
                vault_dir,
                database_url: None,
                passphrase: common::secret(common::PASS),
                kdf: Some(common::kdf()),
                clock: Arc::new(common::now),
                auth_failures_per_minute: None,
                drain_timeout: Some(Duration::from_secs(1)),
                list_refresh: None,
                webhooks: Default::default(),
                network: Default::default(),
            };
            let mut svc = Service::open(opts).await.unwrap();
            let token = svc.take_admin_token().unwrap();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            ready_tx
                .send((listener.local_addr().unwrap(), token))
                .unwrap();
            let shutdown = async move {
                let _ = tokio::time::timeout(Duration::from_secs(60), stop_rx).await;
            };
            svc.serve(listener, shutdown).await.unwrap();
        });
    });
    let (addr, token) = ready_rx.recv_timeout(Duration::from_secs(60)).unwrap();

    // In flight: the headers and half the body are sent when the signal comes.
    let body = br#"{"product":"acme-cad","name":"Acme CAD"}"#;
    let mut slow = TcpStream::connect(addr).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        slow,
        "POST /v1/products HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    slow.write_all(&body[..10]).unwrap();
    // Stuck: this one never sends its body.
    let mut stuck = TcpStream::connect(addr).unwrap();
    write!(
        stuck,
        "POST /v1/products HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{"
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(200));

    let t = Instant::now();
    stop_tx.send(()).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    // The in-flight request completes and is answered.
    slow.write_all(&body[10..]).unwrap();
    let mut resp = String::new();
    let _ = slow.read_to_string(&mut resp);
    assert!(resp.starts_with("HTTP/1.1 201"), "{resp}");
    // The stuck one cannot hold the server past the drain timeout.
    thread.join().unwrap();
    assert!(
        t.elapsed() >= Duration::from_millis(900),
        "the drain ended before its timeout with a request open ({:?})",
        t.elapsed()
    );
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "shutdown took {:?}",
        t.elapsed()
    );
    drop(stuck);
}
