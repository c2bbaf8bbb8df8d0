//! Unsealing one organisation's key (Argon2id, made slow here) does not
//! stall another organisation's mints: organisation B's active key changes
//! under the service (as when another replica rotates it), B's next mint
//! loads it from the vault, and meanwhile organisation A mints at once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::post;
use keyseal_issuer::service::Scope;
use keyseal_issuer::{Context, KdfParams};
use keyseal_server::{Options, Service, auth};
use serde_json::json;

/// Argon2id slow enough (well over a second per key) to see a stall.
fn slow_kdf() -> KdfParams {
    "m=131072,t=16,p=1".parse().unwrap()
}

#[test]
fn one_organisations_key_load_does_not_stall_another() {
    let dir = tempfile::tempdir().unwrap();
    let vault_dir = dir.path().join("vault");
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    // Keys to make B's active one (on the server's runtime, whose ledger
    // pool it is), and the answer.
    let (rotate_tx, mut rotate_rx) =
        tokio::sync::mpsc::unbounded_channel::<keyseal_issuer::keyfile::KeyFile>();
    let (rotated_tx, rotated_rx) = std::sync::mpsc::channel();
    let server = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let opts = Options {
                vault_dir: vault_dir.clone(),
                database_url: None,
                passphrase: common::secret(common::PASS),
                kdf: Some(slow_kdf()),
                clock: Arc::new(common::now),
                auth_failures_per_minute: None,
                drain_timeout: None,
                list_refresh: None,
                webhooks: Default::default(),
                network: Default::default(),
            };
            let mut svc = Service::open(opts).await.unwrap();
            let admin_a = svc.take_admin_token().unwrap();
            let ctx = Context {
                now: common::now(),
                actor: "test".into(),
            };
            // Organisation B with its own key, as `keyseal org create` makes it.
            let admin_b = auth::new_token().unwrap();
            let pass = common::secret(common::PASS);
            let (_, key) = keyseal_issuer::vault::seal_new_key(&pass, common::kdf()).unwrap();
            let (org_b, _) = svc
                .store()
                .create_org(
                    "b",
                    &auth::token_hash(&admin_b),
                    &[Scope::Admin],
                    &key,
                    &ctx,
                )
                .await
                .unwrap();
            let store = svc.store().clone();
            let org = org_b.clone();
            tokio::spawn(async move {
                while let Some(pk) = rotate_rx.recv().await {
                    let ctx = Context {
                        now: common::now(),
                        actor: "another replica".into(),
                    };
                    rotated_tx
                        .send(store.org_activate_key(&org, &pk, &ctx).await.is_ok())
                        .unwrap();
                }
            });
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            ready_tx
                .send((
                    listener.local_addr().unwrap(),
                    admin_a,
                    admin_b,
                    org_b,
                    vault_dir,
                ))
                .unwrap();
            let shutdown = async move {
                tokio::select! {
                    _ = stop_rx => {}
                    () = tokio::time::sleep(Duration::from_secs(120)) => {}
                }
            };
            svc.serve(listener, shutdown).await.unwrap();
        });
    });
    let (addr, admin_a, admin_b, _org_b, _vault_dir) =
        ready_rx.recv_timeout(Duration::from_secs(120)).unwrap();

    let customer = |token: &str| {
        let r = post(
            addr,
            "/v1/products",
            token,
            &json!({ "product": "acme-cad" }),
        );
        assert_eq!(r.status, 201, "{}", r.text());
        post(addr, "/v1/customers", token, &json!({})).json()["customer_id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (cus_a, cus_b) = (customer(&admin_a), customer(&admin_b));
    let mint = move |token: &str, cus: &str| {
        let at = Instant::now();
        let r = post(
            addr,
            "/v1/licenses",
            token,
            &json!({ "product": "acme-cad", "customer_id": cus, "plan": "pro", "expires": "30d" }),
        );
        assert_eq!(r.status, 201, "{}", r.text());
        at.elapsed()
    };
    // Both signers loaded (B's key is a cheap one).
    mint(&admin_a, &cus_a);
    mint(&admin_b, &cus_b);

    // B's key changes under the service (another replica rotated it), to a
    // key that takes long to unseal.
    let pass = common::secret(common::PASS);
    let (_, slow) = keyseal_issuer::vault::seal_new_key(&pass, slow_kdf()).unwrap();
    rotate_tx.send(slow).unwrap();
    assert!(rotated_rx.recv().unwrap(), "B's key changed");

    let b = std::thread::spawn(move || mint(&admin_b, &cus_b));
    std::thread::sleep(Duration::from_millis(300));
    let a = mint(&admin_a, &cus_a);
    let b = b.join().unwrap();
    // B's mint waited for its key (it is slow, or this test shows nothing);
    // A's, made while B's key was unsealing, did not.
    assert!(
        b > Duration::from_millis(900),
        "B's key loaded too fast: {b:?}"
    );
    assert!(
        a * 3 < b - Duration::from_millis(300),
        "A's mint waited for B's key: A {a:?}, B {b:?}"
    );
    stop_tx.send(()).unwrap();
    server.join().unwrap();
}
