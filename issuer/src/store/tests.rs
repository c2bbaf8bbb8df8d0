//! The schema 5 migration on a ledger written before it (schema 4, with
//! organisations, keys and published lists), on SQLite and, when
//! `KEYSEAL_TEST_POSTGRES_URL` is set, on a fresh PostgreSQL database: the
//! existing keys and lists go to the first organisation, which becomes the
//! default; the others have none; sequences then count per organisation.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use keyseal_core::{LicenseId, SigningKey};

use super::Store;
use crate::error::{KeyError, LedgerError, RequestError};
use crate::vault::Signer;
use crate::{Context, KeyStatus};

/// `k` sealed (cheaply) as the ledger keeps keys.
fn sealed(k: &SigningKey) -> crate::keyfile::KeyFile {
    let pass = crate::Passphrase::new(zeroize::Zeroizing::new("test".into())).unwrap();
    let cheap = crate::KdfParams {
        m_cost_kib: 64,
        t_cost: 1,
        p_cost: 1,
    };
    crate::keyfile::KeyFile::seal(k, &pass, cheap).unwrap()
}

fn ctx(now: u64) -> Context {
    Context {
        now,
        actor: "test".into(),
    }
}

async fn exec(store: &Store, sql: &str, args: &[&str]) {
    let mut q = sqlx::query(sql);
    for a in args {
        q = q.bind((*a).to_owned());
    }
    q.execute(store.pool()).await.unwrap();
}

/// A schema-4 ledger: two organisations (`org_first` made first), the
/// vault's two keys (one retired) and two published lists, then migrated.
async fn migrate_old_ledger(store: &Store) {
    store.migrate_to(4).await.unwrap();
    assert!(store.needs_migration().await.unwrap());
    let (k1, k2) = (
        SigningKey::from_seed(&[1; 32]).unwrap(),
        SigningKey::from_seed(&[2; 32]).unwrap(),
    );
    exec(
        store,
        "INSERT INTO meta (name, value) VALUES ('format', 'keyseal-ledger/v1')",
        &[],
    )
    .await;
    exec(
        store,
        "INSERT INTO orgs (org_id, name, created_at) VALUES ('org_second', 'b', 200)",
        &[],
    )
    .await;
    exec(
        store,
        "INSERT INTO orgs (org_id, name, created_at) VALUES ('org_first', 'a', 100)",
        &[],
    )
    .await;
    for (k, status, until) in [(&k1, "retired", "150"), (&k2, "active", "NULL")] {
        exec(
            store,
            &format!(
                "INSERT INTO signing_keys (key_id, public_key, status, created_at, valid_from, valid_until) \
                 VALUES ($1, $2, '{status}', 100, 100, {until})"
            ),
            &[&k.key_id().to_string(), &k.public_key().to_string()],
        )
        .await;
    }
    for seq in ["1", "2"] {
        exec(
            store,
            &format!(
                "INSERT INTO revocation_lists (sequence, issued_at, next_update, signer, license_count, key_count, list_b64) \
                 VALUES ({seq}, 100, 200, $1, 0, 0, 'AAAA')"
            ),
            &[&k2.key_id().to_string()],
        )
        .await;
    }
    store.migrate().await.unwrap();
    assert!(!store.needs_migration().await.unwrap());
}

async fn check(store: &Store) {
    migrate_old_ledger(store).await;
    let k2 = SigningKey::from_seed(&[2; 32]).unwrap();
    assert_eq!(
        store.default_org().await.unwrap().as_deref(),
        Some("org_first")
    );
    let first = store.org_keys("org_first").await.unwrap();
    assert_eq!(first.len(), 2);
    assert_eq!(store.keys().await.unwrap(), first);
    assert_eq!(
        store
            .org_active_key("org_first")
            .await
            .unwrap()
            .unwrap()
            .key_id,
        k2.key_id()
    );
    assert!(store.org_keys("org_second").await.unwrap().is_empty());
    assert_eq!(
        store.org_published_lists("org_first").await.unwrap().len(),
        2
    );
    assert!(
        store
            .org_published_lists("org_second")
            .await
            .unwrap()
            .is_empty()
    );

    // The second organisation gets a key of its own (once); its lists count from 1.
    let k3 = SigningKey::from_seed(&[3; 32]).unwrap();
    assert!(
        store
            .org_add_first_key("org_second", &sealed(&k3), &ctx(300))
            .await
            .unwrap()
    );
    let k4 = SigningKey::from_seed(&[4; 32]).unwrap();
    assert!(
        !store
            .org_add_first_key("org_second", &sealed(&k4), &ctx(300))
            .await
            .unwrap()
    );
    let second = store.org_keys("org_second").await.unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(
        (second[0].key_id, second[0].status),
        (k3.key_id(), KeyStatus::Active)
    );
    let l = store
        .publish_revocations(&Signer::new(k3), 10_000, &ctx(300))
        .await
        .unwrap();
    assert_eq!(l.sequence, 1);
    let l = store
        .publish_revocations(&Signer::new(k2), 10_000, &ctx(301))
        .await
        .unwrap();
    assert_eq!(l.sequence, 3);
    // A key of one organisation is unknown to the other.
    assert!(
        store
            .org_find_key("org_first", &second[0].key_id.to_string())
            .await
            .is_err()
    );
    // A retired key signs no list: another key is the active one now. The
    // service is told to sign again (not an error); the command line, which
    // cannot, gets the error.
    let k1 = SigningKey::from_seed(&[1; 32]).unwrap();
    let k1_id = k1.key_id();
    let k1 = Signer::new(k1);
    assert_eq!(
        store
            .publish_list(&k1, 10_000, crate::Publish::Always, &ctx(302))
            .await
            .unwrap(),
        crate::Signed::KeyRotated { key_id: k1_id }
    );
    assert!(matches!(
        store.publish_revocations(&k1, 10_000, &ctx(302)).await,
        Err(crate::Error::Key(KeyError::StaleSigner { .. }))
    ));
}

#[tokio::test]
async fn schema_5_gives_existing_keys_to_the_first_organisation_sqlite() {
    let (_dir, store) = fresh_sqlite().await;
    check(&store).await;
    store.close().await;
}

#[tokio::test]
async fn schema_5_gives_existing_keys_to_the_first_organisation_postgres() {
    if let Some(store) = fresh_postgres("ks_migrate").await {
        check(&store).await;
        store.close().await;
    }
}

/// A fresh SQLite ledger in a temporary directory (kept while the guard lives).
async fn fresh_sqlite() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(&dir.path().join("ledger.sqlite"), true)
        .await
        .unwrap();
    (dir, store)
}

/// A fresh PostgreSQL database, if `KEYSEAL_TEST_POSTGRES_URL` is set.
async fn fresh_postgres(prefix: &str) -> Option<Store> {
    use sqlx::{Connection, Executor};
    let Ok(base) = std::env::var("KEYSEAL_TEST_POSTGRES_URL") else {
        eprintln!("PostgreSQL: skipped (KEYSEAL_TEST_POSTGRES_URL is not set)");
        return None;
    };
    let mut rnd = [0u8; 8];
    getrandom::fill(&mut rnd).unwrap();
    let name = format!("{prefix}_{}", keyseal_core::hex::encode(&rnd));
    let mut c = sqlx::PgConnection::connect(&base).await.unwrap();
    c.execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .unwrap();
    c.close().await.unwrap();
    let (head, _) = base.rsplit_once('/').unwrap();
    let rest = base
        .split_once('?')
        .map(|(_, q)| format!("?{q}"))
        .unwrap_or_default();
    Some(
        Store::connect(&format!("{head}/{name}{rest}"))
            .await
            .unwrap(),
    )
}

fn active(keys: &[crate::KeyInfo]) -> Vec<keyseal_core::KeyId> {
    keys.iter()
        .filter(|k| k.status == KeyStatus::Active)
        .map(|k| k.key_id)
        .collect()
}

/// Four rotations to `keys` at once, at time `at`.
async fn rotate_four(
    store: &Store,
    keys: &[SigningKey],
    at: u64,
) -> [crate::Result<Option<keyseal_core::KeyId>>; 4] {
    let rotate = |k: &SigningKey| {
        let pk = sealed(k);
        async move { store.activate_key(&pk, &ctx(at)).await }
    };
    let (a, b, c, d) = tokio::join!(
        rotate(&keys[0]),
        rotate(&keys[1]),
        rotate(&keys[2]),
        rotate(&keys[3])
    );
    [a, b, c, d]
}

/// Rotations at once (as two replicas may make them) leave exactly one
/// active key, the one the group commit and the services agree on.
async fn check_concurrent_rotations(store: &Store) {
    store.migrate().await.unwrap();
    let k0 = SigningKey::from_seed(&[10; 32]).unwrap();
    store
        .initialize(&sealed(&k0), &[], serde_json::json!({}), &ctx(100))
        .await
        .unwrap();
    // 1 + 3 * 4 = 13 keys, none revoked: a keyring holds 16.
    for round in 0..3u8 {
        let keys: Vec<_> = (0..4u8)
            .map(|n| SigningKey::from_seed(&[20 + round * 4 + n; 32]).unwrap())
            .collect();
        let results = rotate_four(store, &keys, 200).await;
        for r in &results {
            assert!(r.is_ok(), "{r:?}");
        }
        let all = store.keys().await.unwrap();
        let now_active = active(&all);
        assert_eq!(now_active.len(), 1, "round {round}: {all:?}");
        assert_eq!(
            store.active_key().await.unwrap().unwrap().key_id,
            now_active[0]
        );
        // Each rotation retired the key active when it ran: one chain.
        let retired: std::collections::BTreeSet<_> = results
            .iter()
            .map(|r| r.as_ref().unwrap().unwrap())
            .collect();
        assert_eq!(retired.len(), keys.len(), "round {round}: {results:?}");
        // The active key signs; the retired ones do not.
        let signer = keys
            .into_iter()
            .find(|k| k.key_id() == now_active[0])
            .unwrap();
        store
            .publish_revocations(&Signer::new(signer), 10_000, &ctx(201))
            .await
            .unwrap();
    }
    // Four more at once with room for three: three pass, one is refused
    // under the writer's lock, and the keyring holds exactly 16.
    let keys: Vec<_> = (0..4u8)
        .map(|n| SigningKey::from_seed(&[90 + n; 32]).unwrap())
        .collect();
    let results = rotate_four(store, &keys, 300).await;
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        3,
        "{results:?}"
    );
    assert!(
        results.iter().any(|r| matches!(
            r,
            Err(crate::Error::Key(KeyError::KeyringFull { keys: 16, .. }))
        )),
        "{results:?}"
    );
    let all = store.keys().await.unwrap();
    assert_eq!(all.len(), 16);
    assert_eq!(active(&all).len(), 1);
    assert_eq!(store.keyring().await.unwrap().keys.len(), 16);
}

#[tokio::test]
async fn concurrent_rotations_leave_one_active_key_sqlite() {
    let (_dir, store) = fresh_sqlite().await;
    check_concurrent_rotations(&store).await;
    store.close().await;
}

#[tokio::test]
async fn concurrent_rotations_leave_one_active_key_postgres() {
    if let Some(store) = fresh_postgres("ks_rotate").await {
        check_concurrent_rotations(&store).await;
        store.close().await;
    }
}

/// A schema-5 ledger where two rotations at once left two active keys:
/// schema 6 keeps the newest active and retires the other, and from then on
/// a second active key is refused.
async fn check_schema_6(store: &Store) {
    store.migrate_to(5).await.unwrap();
    let keys: Vec<_> = (1..=3u8)
        .map(|n| SigningKey::from_seed(&[n + 40; 32]).unwrap())
        .collect();
    for (k, created, status) in [
        (&keys[0], "100", "retired"),
        (&keys[1], "200", "active"),
        (&keys[2], "300", "active"),
    ] {
        exec(
            store,
            &format!(
                "INSERT INTO signing_keys (key_id, public_key, status, created_at, valid_from, org_id) \
                 VALUES ($1, $2, '{status}', {created}, {created}, 'org_a')"
            ),
            &[&k.key_id().to_string(), &k.public_key().to_string()],
        )
        .await;
    }
    store.migrate().await.unwrap();
    let after = store.org_keys("org_a").await.unwrap();
    assert_eq!(active(&after), vec![keys[2].key_id()], "{after:?}");
    let old = after.iter().find(|k| k.key_id == keys[1].key_id()).unwrap();
    assert_eq!(old.status, KeyStatus::Retired);
    assert_eq!(old.valid_until, Some(300));
    let k4 = SigningKey::from_seed(&[50; 32]).unwrap();
    let second = sqlx::query(
        "INSERT INTO signing_keys (key_id, public_key, status, created_at, valid_from, org_id) \
         VALUES ($1, $2, 'active', 400, 400, 'org_a')",
    )
    .bind(k4.key_id().to_string())
    .bind(k4.public_key().to_string())
    .execute(store.pool())
    .await;
    assert!(second.is_err(), "a second active key was accepted");
}

#[tokio::test]
async fn schema_6_keeps_one_active_key_sqlite() {
    let (_dir, store) = fresh_sqlite().await;
    check_schema_6(&store).await;
    store.close().await;
}

#[tokio::test]
async fn schema_6_keeps_one_active_key_postgres() {
    if let Some(store) = fresh_postgres("ks_migrate6").await {
        check_schema_6(&store).await;
        store.close().await;
    }
}

/// Two organisations, 40,000 licenses of one product for 2,000 customers
/// in the first and 10,000 in the second, written straight in SQL (the same
/// text runs on both back ends).
async fn many_licenses(store: &Store) {
    for sql in [
        "INSERT INTO orgs (org_id, name, created_at) VALUES ('org_a', 'a', 0), ('org_b', 'b', 0)",
        "INSERT INTO signing_keys (key_id, public_key, status, created_at, valid_from, org_id) \
         VALUES ('00000000000000aa', 'pk', 'retired', 0, 0, 'org_a')",
        "INSERT INTO licenses (license_id, key_id, product, customer, plan, issued_at, license_key) \
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50000) \
         SELECT '0000000000000000000000000' || (1000000 + i), '00000000000000aa', 'acme-cad', 'cus_' || (i % 2500), 'pro', 0, 'key' FROM n",
        "INSERT INTO org_licenses (license_id, org_id, max_devices, product, customer) \
         SELECT license_id, CASE WHEN customer < 'cus_2000' OR customer >= 'cus_3' THEN 'org_a' ELSE 'org_b' END, 1, \
         product, customer FROM licenses",
        // 100,000 more of 200 other organisations, whose customers and
        // product ids overlap (a product id many vendors use).
        "INSERT INTO orgs (org_id, name, created_at) \
         WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 199) \
         SELECT 'org_x' || i, 'x', 0 FROM n",
        "INSERT INTO licenses (license_id, key_id, product, customer, plan, issued_at, license_key) \
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000) \
         SELECT '0000000000000000000000000' || (2000000 + i), '00000000000000aa', 'acme-cad', 'cus_' || (i % 2500), 'pro', 0, 'key' FROM n",
        "INSERT INTO org_licenses (license_id, org_id, max_devices, product, customer) \
         SELECT license_id, 'org_x' || (CAST(substr(license_id, 26) AS INTEGER) % 200), 1, product, customer \
         FROM licenses WHERE license_id > '00000000000000000000000002'",
        // The two organisations' audit chains, about customers of each.
        "INSERT INTO audit_log (seq, at, actor, action, details, prev_hash, hash, \
         org_id, subject, org_seq, org_prev_hash, org_hash) \
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50000) \
         SELECT i, 0, 'test', 'license.create', '{}', 'p', 'h', \
         CASE WHEN i % 2 = 0 THEN 'org_a' ELSE 'org_b' END, 'cus_' || (i % 2500), i, 'p', 'h' FROM n",
    ] {
        exec(store, sql, &[]).await;
    }
}

/// The plan of `sql` (with `args`, all text) on SQLite (`EXPLAIN QUERY
/// PLAN`) or PostgreSQL: with `generic`, the generic plan (what a prepared
/// statement gets after five runs), else the plan for these values (a
/// statement not kept prepared).
async fn plan_of(
    store: &Store,
    postgres: bool,
    generic: bool,
    sql: &str,
    args: &[String],
) -> String {
    use sqlx::Row;
    let plan: Vec<String> = if postgres {
        let mut c = store.pool().acquire().await.unwrap();
        // Untyped parameters: PostgreSQL infers each from its column.
        let values = args
            .iter()
            .map(|a| format!("'{a}'"))
            .collect::<Vec<_>>()
            .join(", ");
        sqlx::raw_sql(&format!("PREPARE q AS {sql}"))
            .execute(&mut *c)
            .await
            .unwrap();
        let mode = if generic {
            "force_generic_plan"
        } else {
            "force_custom_plan"
        };
        sqlx::raw_sql(&format!("SET plan_cache_mode = {mode}"))
            .execute(&mut *c)
            .await
            .unwrap();
        let rows = sqlx::query(&format!("EXPLAIN EXECUTE q ({values})"))
            .fetch_all(&mut *c)
            .await
            .unwrap();
        sqlx::raw_sql("DEALLOCATE q; RESET plan_cache_mode")
            .execute(&mut *c)
            .await
            .unwrap();
        rows.iter().map(|r| r.get::<String, _>(0)).collect()
    } else {
        let explain = format!("EXPLAIN QUERY PLAN {sql}");
        let mut q = sqlx::query(&explain);
        for a in args {
            q = q.bind(a.clone());
        }
        q.fetch_all(store.pool())
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<String, _>(3))
            .collect()
    };
    plan.join("\n")
}

/// Every license filter and audit query the API and exports run starts
/// from its own index and walks no range beyond the organisation's, on
/// SQLite before and after `ANALYZE`, and on PostgreSQL as the service
/// runs it: license pages planned for their values (not kept prepared),
/// audit queries in their generic plan. A customer's and a product's
/// licenses, and all of a small organisation's (one of 200 that share the
/// product id, beside a large one), a page of an organisation's audit
/// chain, and a customer's audit entries.
async fn check_customer_plan(store: &Store, postgres: bool) {
    store.migrate().await.unwrap();
    many_licenses(store).await;
    let filter = crate::service::OrgLicenseFilter {
        customer: Some("cus_42".into()),
        limit: 100,
        ..Default::default()
    };
    let by_product = crate::service::OrgLicenseFilter {
        product: Some("acme-cad".into()),
        limit: 100,
        ..Default::default()
    };
    let all = crate::service::OrgLicenseFilter {
        limit: 100,
        ..Default::default()
    };
    // A walk in id order over every organisation's licenses (looking one
    // up by id is fine).
    let licenses_bad = [
        "org_licenses_pkey",
        "Index Cond: (license_id >",
        "(license_id>?)",
        "Seq Scan on licenses",
        "Seq Scan on org_licenses",
        "SCAN o",
        "SCAN l",
    ];
    let audit_bad = ["Seq Scan on audit_log", "SCAN audit_log"];
    let q = super::licenses::org_licenses_query;
    let page = format!("{} LIMIT 100", super::audit_log::AUDIT_PAGE);
    // Where the product is all of the organisation's licenses, its walk in
    // id order is as good as the product's.
    let org_range = ["org_licenses_by_product", "org_licenses_by_org"];
    // (query and arguments, acceptable indexes, forbidden steps, generic plan)
    type Case<'a> = ((String, Vec<String>), &'a [&'a str], &'a [&'a str], bool);
    let cases: Vec<Case<'_>> = vec![
        (
            q("org_a", &filter),
            &["org_licenses_by_customer"],
            &licenses_bad,
            false,
        ),
        (q("org_x7", &by_product), &org_range, &licenses_bad, false),
        (
            q("org_x7", &all),
            &["org_licenses_by_org"],
            &licenses_bad,
            false,
        ),
        (
            (page, vec!["org_a".into(), "10".into()]),
            &["audit_org_seq"],
            &audit_bad,
            true,
        ),
        (
            (
                super::audit_log::AUDIT_OF_SUBJECT.to_owned(),
                vec!["org_a".into(), "cus_42".into()],
            ),
            &["audit_by_subject"],
            &audit_bad,
            true,
        ),
    ];
    for analyzed in [false, true] {
        if analyzed {
            exec(store, "ANALYZE", &[]).await;
        }
        for ((sql, args), indexes, bad, generic) in &cases {
            let text = plan_of(store, postgres, *generic, sql, args).await;
            assert!(
                indexes.iter().any(|i| text.contains(i)),
                "analyzed {analyzed}, {indexes:?}:\n{text}"
            );
            // (PostgreSQL may sort what the index found: the customer's
            // licenses, never the organisation's.)
            for b in *bad {
                assert!(!text.contains(b), "analyzed {analyzed}: {b}\n{text}");
            }
        }
    }
    // And it answers: the customer's licenses in the organisation, in order.
    let got = store.org_licenses("org_a", &filter).await.unwrap();
    assert_eq!(got.len(), 20);
    assert!(got.iter().all(|l| l.record.customer == "cus_42"));
    let other = crate::service::OrgLicenseFilter {
        customer: Some("cus_2042".into()),
        ..filter
    };
    assert!(
        store
            .org_licenses("org_a", &other)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.org_licenses("org_b", &other).await.unwrap().len(), 20);
}

#[tokio::test]
async fn a_customers_licenses_come_from_its_index_sqlite() {
    let (_dir, store) = fresh_sqlite().await;
    check_customer_plan(&store, false).await;
    store.close().await;
}

#[tokio::test]
async fn a_customers_licenses_come_from_its_index_postgres() {
    if let Some(store) = fresh_postgres("ks_plan").await {
        check_customer_plan(&store, true).await;
        store.close().await;
    }
}

/// Customers written in plaintext before schema 9 are sealed when the
/// ledger is unlocked, and read back the same; the data secret is made
/// once and opens only with the passphrase.
async fn check_sealing_old_customers(store: &Store) {
    use crate::Passphrase;
    store.migrate_to(8).await.unwrap();
    exec(
        store,
        "INSERT INTO orgs (org_id, name, created_at) VALUES ('org_a', 'a', 0)",
        &[],
    )
    .await;
    exec(
        store,
        "INSERT INTO customers (customer_id, org_id, name, email, created_at) VALUES \
         ('cus_0000000000000001', 'org_a', 'Ada Lovelace', 'ada@example.com', 5), \
         ('cus_0000000000000002', 'org_a', NULL, NULL, 6)",
        &[],
    )
    .await;
    exec(
        store,
        "INSERT INTO audit_log (seq, at, actor, action, details, prev_hash, hash) VALUES \
         (1, 5, 'org:org_00000000000000aa/token:t', 'customer.create', \
          '{\"customer_id\":\"cus_0000000000000001\"}', 'p', 'h'), \
         (2, 6, 'alice', 'token.create', '{\"org_id\":\"org_a\",\"token_id\":\"t\"}', 'h', 'i')",
        &[],
    )
    .await;
    store.migrate().await.unwrap();
    // The audit entries from before schema 9 got their organisation and
    // customer (the actor's or the details' organisation).
    let chained = sqlx::query("SELECT org_seq, org_prev_hash FROM audit_log ORDER BY seq")
        .fetch_all(store.pool())
        .await
        .unwrap();
    for r in &chained {
        // Each of the two is the first of its organisation's chain.
        assert_eq!(sqlx::Row::get::<i64, _>(r, 0), 1);
        assert_eq!(sqlx::Row::get::<String, _>(r, 1), crate::audit::GENESIS);
    }
    let rows = sqlx::query("SELECT org_id, subject FROM audit_log ORDER BY seq")
        .fetch_all(store.pool())
        .await
        .unwrap();
    let got: Vec<(Option<String>, Option<String>)> = rows
        .iter()
        .map(|r| (sqlx::Row::get(r, 0), sqlx::Row::get(r, 1)))
        .collect();
    assert_eq!(
        got,
        [
            (
                Some("org_00000000000000aa".to_owned()),
                Some("cus_0000000000000001".to_owned())
            ),
            (Some("org_a".to_owned()), None),
        ]
    );
    // Locked, nothing personal is written.
    let ctx = crate::Context {
        now: 10,
        actor: "test".into(),
    };
    assert!(matches!(
        store
            .org_add_customer("org_a", crate::privacy::PersonalFields::default(), &ctx)
            .await,
        Err(crate::Error::Request(RequestError::PersonalDataLocked))
    ));
    let pass = |s: &str| Passphrase::new(zeroize::Zeroizing::new(s.to_owned())).unwrap();
    let kdf = crate::KdfParams {
        m_cost_kib: 64,
        t_cost: 1,
        p_cost: 1,
    };
    store
        .unlock_personal_data(&pass("correct horse battery"), kdf)
        .await
        .unwrap();
    let rows =
        sqlx::query("SELECT COUNT(*) FROM customers WHERE name IS NOT NULL OR email IS NOT NULL")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(sqlx::Row::get::<i64, _>(&rows, 0), 0, "plaintext left");
    // Done once: later starts skip the scan.
    let done = sqlx::query("SELECT value FROM meta WHERE name = 'customers_sealed'")
        .fetch_optional(store.pool())
        .await
        .unwrap();
    assert!(done.is_some(), "the sealing is not marked done");
    let c = store
        .org_customer("org_a", "cus_0000000000000001")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.name.as_deref(), Some("Ada Lovelace"));
    assert_eq!(c.email.as_deref(), Some("ada@example.com"));
    let found = store
        .org_customers("org_a", None, Some("ADA@example.com"), 10)
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    let c2 = store
        .org_customer("org_a", "cus_0000000000000002")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c2.name, None);
    // Another store on the same ledger: the wrong passphrase opens nothing.
    let again = Store {
        personal: std::sync::Arc::default(),
        key_orgs: std::sync::Arc::default(),
        ..store.clone()
    };
    assert!(
        again
            .unlock_personal_data(&pass("wrong horse battery"), kdf)
            .await
            .is_err()
    );
    again
        .unlock_personal_data(&pass("correct horse battery"), kdf)
        .await
        .unwrap();
    let c = again
        .org_customer("org_a", "cus_0000000000000001")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.name.as_deref(), Some("Ada Lovelace"));
}

#[tokio::test]
async fn old_customers_are_sealed_on_unlock_sqlite() {
    let (_dir, store) = fresh_sqlite().await;
    check_sealing_old_customers(&store).await;
    store.close().await;
}

#[tokio::test]
async fn old_customers_are_sealed_on_unlock_postgres() {
    if let Some(store) = fresh_postgres("ks_seal").await {
        check_sealing_old_customers(&store).await;
        store.close().await;
    }
}

/// Rows a replica on an older schema writes during an upgrade (no copy of
/// the license's product and customer, no organisation on a revocation):
/// the revocation is on the organisation's list at once (found through its
/// key), and `fill_upgrade_gaps` fills both, so the filters find the
/// license; with nothing left it writes nothing.
async fn check_upgrade_gaps(store: &Store) {
    store.migrate().await.unwrap();
    for sql in [
        "INSERT INTO orgs (org_id, name, created_at) VALUES ('org_a', 'a', 0)",
        "INSERT INTO signing_keys (key_id, public_key, status, created_at, valid_from, org_id) \
         VALUES ('00000000000000aa', 'pk', 'active', 0, 0, 'org_a')",
        "INSERT INTO licenses (license_id, key_id, product, customer, plan, issued_at, license_key) \
         VALUES ('000000000000000000000000000000a1', '00000000000000aa', 'acme-cad', 'cus_1', 'pro', 0, 'key')",
        "INSERT INTO org_licenses (license_id, org_id, max_devices) \
         VALUES ('000000000000000000000000000000a1', 'org_a', 1)",
        "INSERT INTO revocations (license_id, revoked_at, reason) \
         VALUES ('000000000000000000000000000000a1', 5, 'refund')",
    ] {
        exec(store, sql, &[]).await;
    }
    let id: LicenseId = "000000000000000000000000000000a1".parse().unwrap();
    assert!(
        store
            .org_revoked("org_a")
            .await
            .unwrap()
            .licenses
            .contains(&id)
    );
    let by_customer = crate::service::OrgLicenseFilter {
        customer: Some("cus_1".into()),
        limit: 10,
        ..Default::default()
    };
    assert!(
        store
            .org_licenses("org_a", &by_customer)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.fill_upgrade_gaps().await.unwrap());
    assert_eq!(
        store
            .org_licenses("org_a", &by_customer)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        store
            .org_revoked("org_a")
            .await
            .unwrap()
            .licenses
            .contains(&id)
    );
    let org: Option<String> = sqlx::Row::get(
        &sqlx::query("SELECT org_id FROM revocations")
            .fetch_one(store.pool())
            .await
            .unwrap(),
        0,
    );
    assert_eq!(org.as_deref(), Some("org_a"));
    assert!(!store.fill_upgrade_gaps().await.unwrap(), "nothing left");
}

#[tokio::test]
async fn rows_an_older_replica_writes_are_found_and_filled_sqlite() {
    let (_dir, store) = fresh_sqlite().await;
    check_upgrade_gaps(&store).await;
    store.close().await;
}

#[tokio::test]
async fn rows_an_older_replica_writes_are_found_and_filled_postgres() {
    if let Some(store) = fresh_postgres("ks_gaps").await {
        check_upgrade_gaps(&store).await;
        store.close().await;
    }
}

/// A ledger a newer version migrated (a schema this binary does not know)
/// is refused, naming the version: an older replica cannot go on writing
/// beside a newer one's schema after it restarts.
#[tokio::test]
async fn a_ledger_from_a_newer_version_is_refused() {
    let (_dir, store) = fresh_sqlite().await;
    store.migrate().await.unwrap();
    exec(
        &store,
        "INSERT INTO _sqlx_migrations (version, description, installed_on, success, checksum, execution_time) \
         VALUES (999, 'from the future', CURRENT_TIMESTAMP, 1, x'00', 0)",
        &[],
    )
    .await;
    let e = store
        .migrate()
        .await
        .expect_err("a newer ledger is refused");
    assert!(
        matches!(e, crate::Error::Ledger(LedgerError::Corrupt { .. })),
        "{e}"
    );
    assert!(e.to_string().contains("999"), "{e}");
    store.close().await;
}

/// The checkpointer reads SQLite's `PRAGMA wal_checkpoint` row by its
/// column names (busy, log, checkpointed).
#[tokio::test]
async fn a_separate_checkpoint_reports_the_log() {
    let (_dir, store) = fresh_sqlite().await;
    store.migrate().await.unwrap();
    let mut cp = store.checkpoint_separately().await.unwrap().unwrap();
    let p = cp.passive().await.unwrap();
    assert!(!p.busy, "{p:?}");
    assert!(p.checkpointed_pages <= p.log_pages, "{p:?}");
    cp.close().await;
}
