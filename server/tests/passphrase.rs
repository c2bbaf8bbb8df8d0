//! `keyseal serve` with a wrong passphrase on a vault made by `keyseal init`
//! (SQLite) and on a fresh PostgreSQL ledger: start-up fails with a clear
//! error and writes nothing (no organisation, no admin token, no ledger
//! initialisation, no sealed key), so the next start with the right
//! passphrase still prints the one-time admin token.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::sync::Arc;

use keyseal_issuer::{Access, Context, InitOptions, Store, Vault};
use keyseal_server::{Error, Options, Service};

fn options(vault_dir: &Path, database_url: Option<String>, pass: &str) -> Options {
    Options {
        vault_dir: vault_dir.to_owned(),
        database_url,
        passphrase: common::secret(pass),
        kdf: Some(common::kdf()),
        clock: Arc::new(common::now),
        auth_failures_per_minute: None,
        drain_timeout: None,
        list_refresh: None,
        webhooks: Default::default(),
        network: Default::default(),
    }
}

/// The sealed keys the vault's ledger holds, as JSON key files.
async fn sealed_keys(vault_dir: &Path) -> Vec<String> {
    let db = vault_dir.join("ledger.sqlite");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=ro", db.display()))
        .await
        .unwrap();
    let rows = sqlx::query("SELECT sealed FROM signing_keys ORDER BY key_id")
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;
    rows.iter().map(|r| sqlx::Row::get(r, 0)).collect()
}

/// What `keyseal init` leaves: a vault with its key, no organisation.
async fn init_vault(vault_dir: &Path) {
    let ctx = Context {
        now: common::now(),
        actor: "test".into(),
    };
    let init = InitOptions {
        products: Vec::new(),
        kdf: common::kdf(),
    };
    Vault::init(vault_dir, &common::secret(common::PASS), &init, &ctx)
        .await
        .unwrap()
        .close()
        .await;
}

async fn wrong_then_right(database_url: Option<String>) {
    let dir = tempfile::tempdir().unwrap();
    let vault_dir = dir.path().join("vault");
    init_vault(&vault_dir).await;
    let keys = sealed_keys(&vault_dir).await;

    let err = Service::open(options(
        &vault_dir,
        database_url.clone(),
        "not the passphrase",
    ))
    .await
    .expect_err("a wrong passphrase must not start the service");
    assert!(
        matches!(
            err,
            Error::Issuer(keyseal_issuer::Error::KeyFile(
                keyseal_issuer::keyfile::Error::WrongPassphrase { .. }
            ))
        ),
        "{err}"
    );
    assert!(err.to_string().contains("wrong passphrase"), "{err}");
    // Nothing was written.
    assert_eq!(sealed_keys(&vault_dir).await, keys, "no key sealed");
    let vault = Vault::open(&vault_dir, Access::Read).await.unwrap();
    let org = vault.store().default_org().await.unwrap().unwrap();
    assert!(
        vault
            .store()
            .org_tokens(&org, None, 10)
            .await
            .unwrap()
            .is_empty(),
        "no admin token"
    );
    assert_eq!(
        vault.store().org_count().await.unwrap(),
        1,
        "no organisation but the vault's"
    );
    vault.close().await;
    if let Some(url) = &database_url {
        let store = Store::connect(url).await.unwrap();
        assert!(
            store.check().await.is_err(),
            "the PostgreSQL ledger was initialised"
        );
        store.close().await;
    }

    let mut svc = Service::open(options(&vault_dir, database_url, common::PASS))
        .await
        .expect("the right passphrase starts it");
    assert!(
        svc.take_admin_token().is_some(),
        "the first good start still prints the admin token"
    );
    assert_eq!(svc.store().org_count().await.unwrap(), 1);
}

#[test]
fn wrong_passphrase_changes_nothing() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(wrong_then_right(None));
    if std::env::var("KEYSEAL_TEST_POSTGRES_URL").is_ok() {
        let url = rt.block_on(common::fresh_postgres());
        rt.block_on(wrong_then_right(Some(url)));
    } else {
        eprintln!("PostgreSQL: skipped (KEYSEAL_TEST_POSTGRES_URL is not set)");
    }
}

/// Keys and secrets the service seals itself (a new organisation's key, a
/// rotation through the API, the data secret) use the vault's Argon2
/// parameters, not the library defaults.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_sealed_keys_use_the_vault_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let vault_dir = dir.path().join("vault");
    init_vault(&vault_dir).await;
    let mut opts = options(&vault_dir, None, common::PASS);
    opts.kdf = None;
    let mut svc = Service::open(opts).await.unwrap();
    let admin = svc.take_admin_token().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(svc.serve(listener, async {
        let _ = stopped.await;
    }));
    let r =
        tokio::task::spawn_blocking(move || common::post_empty(addr, "/v1/keys/rotate", &admin))
            .await
            .unwrap();
    assert_eq!(r.status, 201, "{}", r.text());
    let _ = stop.send(());
    server.await.unwrap().unwrap();
    let want = common::kdf().to_string();
    let keys = sealed_keys(&vault_dir).await;
    for text in &keys {
        let file: keyseal_issuer::keyfile::KeyFile = serde_json::from_str(text).unwrap();
        assert_eq!(file.kdf_params().to_string(), want);
    }
    assert_eq!(keys.len(), 2, "the vault's key and the rotated one");
    let db = vault_dir.join("ledger.sqlite");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let secret: String = sqlx::Row::get(
        &sqlx::query("SELECT value FROM meta WHERE name = 'data_secret'")
            .fetch_one(&pool)
            .await
            .unwrap(),
        0,
    );
    let file: keyseal_issuer::keyfile::KeyFile = serde_json::from_str(&secret).unwrap();
    assert_eq!(file.kdf_params().to_string(), want);
}
