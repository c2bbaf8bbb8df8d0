//! The same ledger on PostgreSQL, as the HTTP service will run it. Skipped
//! unless `KEYSEAL_TEST_POSTGRES_URL` names a database it may wipe, e.g.
//! `postgres://keyseal:keyseal@localhost/keyseal_test`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use keyseal_core::{RevocationList, SigningKey};
use keyseal_issuer::KeyError;
use keyseal_issuer::{
    BatchOptions, Context, Error, LicenseFilter, RequestFields, Signer, Store, batch,
};
use sqlx::Connection;

const T0: u64 = 1_800_000_000;

/// `k` sealed (cheaply) as the ledger keeps keys.
fn sealed(k: &SigningKey) -> keyseal_issuer::keyfile::KeyFile {
    let pass = keyseal_issuer::Passphrase::new(zeroize::Zeroizing::new("test".into())).unwrap();
    let cheap = keyseal_issuer::KdfParams {
        m_cost_kib: 64,
        t_cost: 1,
        p_cost: 1,
    };
    keyseal_issuer::keyfile::KeyFile::seal(k, &pass, cheap).unwrap()
}

fn ctx(now: u64) -> Context {
    Context {
        now,
        actor: "service".into(),
    }
}

fn req(customer: &str) -> RequestFields {
    RequestFields {
        product: Some("acme-cad".into()),
        customer: Some(customer.into()),
        plan: Some("pro".into()),
        expires: Some("365d".into()),
        ..Default::default()
    }
}

#[tokio::test]
async fn the_ledger_runs_on_postgres() {
    let Ok(url) = std::env::var("KEYSEAL_TEST_POSTGRES_URL") else {
        eprintln!("skipped: KEYSEAL_TEST_POSTGRES_URL is not set");
        return;
    };
    {
        use sqlx::Executor;
        let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
        c.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
            .await
            .unwrap();
        c.close().await.unwrap();
    }
    let store = Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    store.migrate().await.unwrap(); // idempotent
    let k1 = SigningKey::from_seed(&[1; 32]).unwrap();
    store
        .initialize(
            &sealed(&k1),
            &["acme-cad".into()],
            serde_json::json!({ "keys": "hsm" }),
            &ctx(T0),
        )
        .await
        .unwrap();
    store.check().await.unwrap();
    assert!(
        store
            .initialize(&sealed(&k1), &[], serde_json::Value::Null, &ctx(T0))
            .await
            .is_err()
    );
    let s1 = Signer::new(k1);
    let org = store.default_org().await.unwrap().unwrap();

    let a = store
        .issue(&org, &s1, req("cus_a").resolve(T0).unwrap(), &ctx(T0))
        .await
        .unwrap();
    let csv = "product,customer,plan,expires\nacme-cad,c1,pro,30d\nacme-cad,c2,pro,30d\nacme-cad,c3,pro,30d\n";
    let out = store
        .issue_batch(
            &org,
            &s1,
            &ctx(T0 + 1),
            batch::csv_rows(csv.as_bytes()),
            &BatchOptions {
                chunk_size: 2,
                start_row: 1,
            },
            |_| Ok(()),
        )
        .await;
    assert!(out.error.is_none(), "{:?}", out.error);
    assert_eq!(out.minted, 3);
    let rows = store
        .licenses(
            &org,
            &LicenseFilter {
                batch_id: Some(out.batch_id),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        rows.iter().map(|r| r.batch_row).collect::<Vec<_>>(),
        [Some(1), Some(2), Some(3)]
    );

    // Rotation, revocations and a published list.
    let k2 = SigningKey::from_seed(&[2; 32]).unwrap();
    assert_eq!(
        store
            .activate_key(&sealed(&k2), &ctx(T0 + 10))
            .await
            .unwrap(),
        Some(s1.key_id())
    );
    assert!(matches!(
        store
            .issue(&org, &s1, req("cus_x").resolve(T0).unwrap(), &ctx(T0 + 11))
            .await,
        Err(Error::Key(KeyError::StaleSigner { key_id })) if key_id == s1.key_id()
    ));
    let s2 = Signer::new(k2);
    store
        .revoke_license(&org, &a.license_id.to_string(), "refund", &ctx(T0 + 20))
        .await
        .unwrap();
    store
        .revoke_key(&s1.key_id().to_string(), "key-leaked", &ctx(T0 + 21))
        .await
        .unwrap();
    let l1 = store
        .publish_revocations(&s2, T0 + 86_400, &ctx(T0 + 30))
        .await
        .unwrap();
    let l2 = store
        .publish_revocations(&s2, T0 + 86_400, &ctx(T0 + 31))
        .await
        .unwrap();
    assert_eq!((l1.sequence, l2.sequence), (1, 2));
    let ring = store.keyring().await.unwrap().keyring;
    let list = RevocationList::verify(&l2.bytes, &ring).unwrap();
    assert_eq!(list.revoked_licenses().count(), 1);
    assert_eq!(list.revoked_keys().next(), Some(s1.key_id()));
    assert_eq!(store.published_lists().await.unwrap().len(), 2);

    assert_eq!(store.license_count().await.unwrap(), 4);
    // One entry more than actions here: the default organisation's `org.create`.
    assert_eq!(store.verify_audit().await.unwrap(), Ok(10));
    store.close().await;
}
