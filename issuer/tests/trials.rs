//! Trials: a device's first request mints a trial license bound to it; a
//! device that matches an earlier trial device k of n is refused; the very
//! same fingerprint gets its trial again while it runs; concurrent requests
//! from one device make one trial, from two handles on one ledger (two
//! replicas) on SQLite and (with `KEYSEAL_TEST_POSTGRES_URL`) PostgreSQL;
//! the ledger keeps keyed hashes only.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use keyseal_core::license::{self as core_license, MAX_LICENSE_LEN, UnverifiedLicense};
use keyseal_core::{Expectations, Fingerprint, Keyring, SigningKey, TrustedKey};
use keyseal_issuer::service::Scope;
use keyseal_issuer::trials::{TRIAL_CUSTOMER, TrialPolicy, TrialRefused, TrialStarted};
use keyseal_issuer::{Context, Error, RequestError, Signed, Signer, Store};
use sqlx::Connection;

const T0: u64 = 1_800_000_000;
const DAY: u64 = 86_400;

fn ctx(now: u64) -> Context {
    Context {
        now,
        actor: "app".into(),
    }
}

fn pass() -> keyseal_issuer::Passphrase {
    keyseal_issuer::Passphrase::new(zeroize::Zeroizing::new("test".into())).unwrap()
}

fn cheap() -> keyseal_issuer::KdfParams {
    keyseal_issuer::KdfParams {
        m_cost_kib: 64,
        t_cost: 1,
        p_cost: 1,
    }
}

fn sealed(k: &SigningKey) -> keyseal_issuer::keyfile::KeyFile {
    keyseal_issuer::keyfile::KeyFile::seal(k, &pass(), cheap()).unwrap()
}

/// One component of a machine: `kind` and a raw id.
fn part(kind: &str, raw: &str) -> [u8; 16] {
    Fingerprint::component("acme-cad", kind, raw.as_bytes())
}

fn fp(parts: &[[u8; 16]]) -> String {
    Fingerprint::from_components(parts).unwrap().to_string()
}

/// A machine of three components (machine id, DMI UUID, MAC address).
fn machine(name: &str) -> [[u8; 16]; 3] {
    [
        part("machine-id", &format!("{name}-mid")),
        part("dmi-product-uuid", &format!("{name}-uuid")),
        part("mac", &format!("{name}-mac")),
    ]
}

fn policy(k: u8) -> TrialPolicy {
    TrialPolicy {
        enabled: true,
        length_secs: 7 * DAY,
        plan: "trial".into(),
        entitlements: vec!["plugins".into(), "export-pdf".into()],
        device_match: k,
    }
}

/// A ledger with one key and product `acme-cad`, its personal-data keys
/// unlocked; its default organisation and signer.
async fn ledger(store: &Store) -> (Signer, String) {
    let k = SigningKey::from_seed(&[1; 32]).unwrap();
    store
        .initialize(
            &sealed(&k),
            &["acme-cad".into()],
            serde_json::Value::Null,
            &ctx(T0),
        )
        .await
        .unwrap();
    store.unlock_personal_data(&pass(), cheap()).await.unwrap();
    let org = store.default_org().await.unwrap().unwrap();
    (Signer::new(k), org)
}

fn done<T: std::fmt::Debug>(s: Signed<T>) -> T {
    match s {
        Signed::Done(t) => t,
        other => panic!("{other:?}"),
    }
}

async fn start(
    store: &Store,
    s: &Signer,
    org: &str,
    device: &str,
    now: u64,
) -> Result<TrialStarted, TrialRefused> {
    done(
        store
            .trial_start(org, s, "acme-cad", device, &ctx(now))
            .await
            .unwrap(),
    )
}

fn new_trial(r: Result<TrialStarted, TrialRefused>) -> keyseal_issuer::trials::Trial {
    match r {
        Ok(TrialStarted::New(t)) => t,
        other => panic!("expected a new trial: {other:?}"),
    }
}

fn verify(key: &str, device: &str, now: u64) -> Result<(), keyseal_core::Error> {
    let mut ring = Keyring::new();
    ring.add(TrustedKey::new(
        SigningKey::from_seed(&[1; 32]).unwrap().public_key(),
    ))
    .unwrap();
    let mut buf = [0u8; MAX_LICENSE_LEN];
    let lic = UnverifiedLicense::from_bytes(core_license::decode_text(key, &mut buf)?)?;
    let dev: Fingerprint = device.parse().unwrap();
    lic.verify(&ring, &Expectations::new("acme-cad", now).device(&dev))
        .map(|_| ())
}

/// The ledger at `url`, read directly.
async fn raw(url: &str) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::AnyPool::connect(url).await.unwrap()
}

async fn count(url: &str, sql: &str) -> i64 {
    use sqlx::Row;
    let rows = sqlx::query(sql).fetch_all(&raw(url).await).await.unwrap();
    rows[0].get::<i64, _>(0)
}

/// The whole flow on one ledger (at `url`).
async fn flow(store: Store, url: &str) {
    let (signer, org) = ledger(&store).await;
    let s = &signer;
    let a = machine("a");
    let dev_a = fp(&a);

    // No policy yet, no such product: refused, nothing written.
    assert_eq!(
        start(&store, s, &org, &dev_a, T0).await,
        Err(TrialRefused::Disabled)
    );
    assert_eq!(
        done(
            store
                .trial_start(&org, s, "acme-viewer", &dev_a, &ctx(T0))
                .await
                .unwrap()
        ),
        Err(TrialRefused::UnknownProduct)
    );
    let unset = store
        .org_trial_policy(&org, "acme-cad")
        .await
        .unwrap()
        .unwrap();
    assert!(!unset.policy.enabled && unset.updated_at.is_none());

    // Bad policies are refused by field; an unknown product is None.
    for (bad, field) in [
        (
            TrialPolicy {
                length_secs: 60,
                ..policy(2)
            },
            "length_secs",
        ),
        (
            TrialPolicy {
                length_secs: 400 * DAY,
                ..policy(2)
            },
            "length_secs",
        ),
        (policy(0), "device_match"),
        (policy(9), "device_match"),
        (
            TrialPolicy {
                plan: "two words".into(),
                ..policy(2)
            },
            "plan",
        ),
        (
            TrialPolicy {
                entitlements: vec!["a@b.c".into()],
                ..policy(2)
            },
            "entitlements",
        ),
    ] {
        match store
            .org_set_trial_policy(&org, "acme-cad", &bad, &ctx(T0))
            .await
        {
            Err(Error::Request(RequestError::Invalid { field: f, .. })) => assert_eq!(f, field),
            other => panic!("{field}: {other:?}"),
        }
    }
    assert!(
        store
            .org_set_trial_policy(&org, "acme-viewer", &policy(2), &ctx(T0))
            .await
            .unwrap()
            .is_none()
    );
    let set = store
        .org_set_trial_policy(&org, "acme-cad", &policy(2), &ctx(T0))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(set.policy.entitlements, ["export-pdf", "plugins"]);
    assert_eq!(
        store
            .org_trial_policy(&org, "acme-cad")
            .await
            .unwrap()
            .unwrap(),
        set
    );

    // A bad fingerprint is a typed error on the field.
    for bad in [
        "",
        "ksfp1.",
        "ksfp1.AAAA",
        "not-a-fingerprint",
        "ksfp1.\u{0}",
    ] {
        match store.trial_start(&org, s, "acme-cad", bad, &ctx(T0)).await {
            Err(Error::Request(RequestError::Invalid { field, .. })) => {
                assert_eq!(field, "fingerprint")
            }
            other => panic!("{bad:?}: {other:?}"),
        }
    }

    // The first trial: a license for this device only, ending in 7 days.
    let first = new_trial(start(&store, s, &org, &dev_a, T0 + 10).await);
    assert_eq!(first.started_at, T0 + 10);
    assert_eq!(first.expires_at, T0 + 10 + 7 * DAY);
    assert_eq!(first.plan, "trial");
    assert_eq!(first.entitlements, ["export-pdf", "plugins"]);
    verify(&first.license_key, &dev_a, T0 + 20).unwrap();
    assert_eq!(
        verify(&first.license_key, &fp(&machine("b")), T0 + 20),
        Err(keyseal_core::Error::WrongDevice)
    );
    assert!(matches!(
        verify(&first.license_key, &dev_a, T0 + 8 * DAY),
        Err(keyseal_core::Error::Expired { .. })
    ));
    let lic = store.license(&org, &first.license_id).await.unwrap();
    assert_eq!(lic.customer, TRIAL_CUSTOMER);
    assert_eq!(lic.license_key, first.license_key);

    // The very same fingerprint again (a lost answer): the same trial,
    // nothing minted.
    let licenses = store.license_count().await.unwrap();
    match start(&store, s, &org, &dev_a, T0 + 30).await {
        Ok(TrialStarted::Again(t)) => assert_eq!(t, first),
        other => panic!("{other:?}"),
    }
    assert_eq!(store.license_count().await.unwrap(), licenses);

    // One component changed (a new network card): the same device.
    let used = TrialRefused::Used {
        started_at: T0 + 10,
        ends_at: T0 + 10 + 7 * DAY,
    };
    let nic = fp(&[a[0], a[1], part("mac", "a-new-mac")]);
    assert_eq!(
        start(&store, s, &org, &nic, T0 + 40).await,
        Err(used.clone())
    );
    // The same components in another order: the same device, but not the
    // same fingerprint (its key would not validate there): refused.
    assert_eq!(
        start(&store, s, &org, &fp(&[a[2], a[1], a[0]]), T0 + 41).await,
        Err(used.clone())
    );
    // Two of three left, one new: still k = 2 shared.
    let reinstall = fp(&[a[0], part("machine-id", "a-reinstalled"), a[2]]);
    assert_eq!(
        start(&store, s, &org, &reinstall, T0 + 42).await,
        Err(used.clone())
    );
    // Only one component shared: another device (k = 2).
    let one = fp(&[
        a[0],
        part("dmi-product-uuid", "c-uuid"),
        part("mac", "c-mac"),
    ]);
    let other = new_trial(start(&store, s, &org, &one, T0 + 50).await);
    assert_ne!(other.license_id, first.license_id);
    // A wholly different device.
    new_trial(start(&store, s, &org, &fp(&machine("d")), T0 + 60).await);

    // Fewer components than k: with k = 3, a two-component device's trial
    // is matched by any device holding both of them, and a one-component
    // device by its one.
    store
        .org_set_trial_policy(&org, "acme-cad", &policy(3), &ctx(T0 + 70))
        .await
        .unwrap();
    let f = machine("f");
    let two = new_trial(start(&store, s, &org, &fp(&f[..2]), T0 + 80).await);
    let used_f = Err(TrialRefused::Used {
        started_at: two.started_at,
        ends_at: two.expires_at,
    });
    assert_eq!(start(&store, s, &org, &fp(&f), T0 + 81).await, used_f);
    assert_eq!(start(&store, s, &org, &fp(&f[..1]), T0 + 82).await, used_f);
    assert_eq!(start(&store, s, &org, &fp(&[f[1]]), T0 + 83).await, used_f);
    // Two of three shared with a three-component trial is not enough at k = 3.
    let g = machine("g");
    new_trial(start(&store, s, &org, &fp(&g), T0 + 84).await);
    new_trial(
        start(
            &store,
            s,
            &org,
            &fp(&[g[0], g[1], part("mac", "h-mac")]),
            T0 + 85,
        )
        .await,
    );
    // One shared of two (and k = 3): another device.
    new_trial(start(&store, s, &org, &fp(&[f[0], part("mac", "i-mac")]), T0 + 86).await);

    // After the trial's end, the same fingerprint is refused too, saying
    // when it ended.
    let late = T0 + 10 + 7 * DAY + 1;
    assert_eq!(
        start(&store, s, &org, &dev_a, late).await,
        Err(used.clone())
    );
    // A revoked trial is not handed out again.
    let d = fp(&machine("d"));
    match start(&store, s, &org, &d, T0 + 90).await {
        Ok(TrialStarted::Again(t)) => {
            store
                .org_revoke(&org, &t.license_id, "fraud", &ctx(T0 + 91))
                .await
                .unwrap()
                .unwrap();
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        start(&store, s, &org, &d, T0 + 92).await,
        Err(TrialRefused::Used { .. })
    ));

    // Disabled: nobody gets a trial, a running one is not handed out.
    store
        .org_set_trial_policy(
            &org,
            "acme-cad",
            &TrialPolicy {
                enabled: false,
                ..policy(2)
            },
            &ctx(T0 + 100),
        )
        .await
        .unwrap();
    assert_eq!(
        start(&store, s, &org, &fp(&machine("z")), T0 + 101).await,
        Err(TrialRefused::Disabled)
    );

    // Trials are per organisation: the same device gets one from another
    // organisation (its own key and product).
    let kb = SigningKey::from_seed(&[2; 32]).unwrap();
    let (org_b, _) = store
        .create_org(
            "b",
            &"0".repeat(64),
            &[Scope::Admin],
            &sealed(&kb),
            &ctx(T0),
        )
        .await
        .unwrap();
    store
        .org_add_product(&org_b, "acme-cad", "Acme CAD", None, &ctx(T0))
        .await
        .unwrap();
    store
        .org_set_trial_policy(&org_b, "acme-cad", &policy(2), &ctx(T0))
        .await
        .unwrap();
    let b = done(
        store
            .trial_start(&org_b, &Signer::new(kb), "acme-cad", &dev_a, &ctx(T0 + 110))
            .await
            .unwrap(),
    );
    assert!(matches!(b, Ok(TrialStarted::New(_))), "{b:?}");
    // A signer that is not the organisation's active key writes nothing.
    let rotated = store
        .trial_start(&org_b, s, "acme-cad", &fp(&machine("y")), &ctx(T0 + 111))
        .await
        .unwrap();
    assert!(matches!(rotated, Signed::KeyRotated { .. }), "{rotated:?}");

    // Audited, once per trial, with no fingerprint.
    let audit = store.audit_entries().await.unwrap();
    let starts: Vec<_> = audit.iter().filter(|e| e.action == "trial.start").collect();
    assert_eq!(starts.len(), 8);
    assert!(starts[0].details.contains(&first.license_id));
    assert!(audit.iter().any(|e| e.action == "product.trial_policy"));

    // The ledger holds no component, fingerprint or address: only keyed
    // hashes (32 hex digits each).
    privacy(url, &a, &dev_a).await;
}

/// Every row of the trial tables is keyed hashes and times: no component
/// of `parts` in hex or base64, nor the fingerprint `text`.
async fn privacy(url: &str, parts: &[[u8; 16]], text: &str) {
    use base64ct::{Base64UrlUnpadded, Encoding};
    use sqlx::Row;
    let pool = raw(url).await;
    let mut dump = String::new();
    for sql in [
        "SELECT license_id || ' ' || org_id || ' ' || product || ' ' || device FROM trials",
        "SELECT org_id || ' ' || product || ' ' || component || ' ' || license_id FROM trial_components",
        "SELECT details FROM audit_log",
    ] {
        for r in sqlx::query(sql).fetch_all(&pool).await.unwrap() {
            dump.push_str(&r.get::<String, _>(0));
            dump.push('\n');
        }
    }
    let components: Vec<String> = sqlx::query("SELECT component FROM trial_components")
        .fetch_all(&pool)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<String, _>(0))
        .collect();
    assert!(components.len() > 10);
    assert!(components.iter().all(|c| c.len() == 32));
    for p in parts {
        let hex: String = p.iter().map(|b| format!("{b:02x}")).collect();
        assert!(!dump.contains(&hex), "{hex} in the ledger");
        assert!(!dump.contains(&Base64UrlUnpadded::encode_string(p)));
    }
    assert!(!dump.contains(text.trim_start_matches("ksfp1.")));
}

#[tokio::test]
async fn trials_sqlite() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("t.db");
    let store = Store::open_sqlite(&path, true).await.unwrap();
    store.migrate().await.unwrap();
    flow(store, &format!("sqlite://{}", path.display())).await;
}

#[tokio::test]
async fn trials_postgres() {
    let Ok(url) = std::env::var("KEYSEAL_TEST_POSTGRES_URL") else {
        eprintln!("skipped: KEYSEAL_TEST_POSTGRES_URL is not set");
        return;
    };
    let url = fresh_database(&url, "keyseal_trials").await;
    let store = Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    flow(store, &url).await;
}

/// A store whose personal-data keys are locked starts no trial.
#[tokio::test]
async fn a_locked_store_starts_no_trial() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("l.db");
    let store = Store::open_sqlite(&path, true).await.unwrap();
    store.migrate().await.unwrap();
    let (signer, org) = ledger(&store).await;
    store
        .org_set_trial_policy(&org, "acme-cad", &policy(2), &ctx(T0))
        .await
        .unwrap();
    let locked = Store::open_sqlite(&path, false).await.unwrap();
    let r = locked
        .trial_start(&org, &signer, "acme-cad", &fp(&machine("a")), &ctx(T0))
        .await;
    assert!(
        matches!(r, Err(Error::Request(RequestError::PersonalDataLocked))),
        "{r:?}"
    );
}

/// 24 requests at once through two handles: 12 from one fingerprint, 12
/// from the same machine with its network card changed. One trial is
/// minted, for the fingerprint whose request came first; its other
/// requests get that trial again, the other fingerprint's are refused.
async fn storm(a: Store, b: Store, url: &str) {
    let (signer, org) = ledger(&a).await;
    b.unlock_personal_data(&pass(), cheap()).await.unwrap();
    a.org_set_trial_policy(&org, "acme-cad", &policy(2), &ctx(T0))
        .await
        .unwrap();
    let m = machine("storm");
    let exact = fp(&m);
    let changed = fp(&[m[0], m[1], part("mac", "storm-new-mac")]);
    let stores = [Arc::new(a), Arc::new(b)];
    let signer = Arc::new(signer);
    let org = Arc::new(org);
    let mut tasks = Vec::new();
    for n in 0..24u32 {
        let store = Arc::clone(&stores[(n % 2) as usize]);
        let (signer, org) = (Arc::clone(&signer), Arc::clone(&org));
        let device = if n % 4 < 2 {
            exact.clone()
        } else {
            changed.clone()
        };
        tasks.push(tokio::spawn(async move {
            let r = start(&store, &signer, &org, &device, T0 + 1).await;
            (device, r)
        }));
    }
    let mut new = Vec::new();
    let (mut again, mut used) = (Vec::new(), Vec::new());
    for t in tasks {
        match t.await.unwrap() {
            (d, Ok(TrialStarted::New(t))) => new.push((d, t)),
            (d, Ok(TrialStarted::Again(t))) => again.push((d, t)),
            (d, Err(TrialRefused::Used { .. })) => used.push(d),
            (_, other) => panic!("{other:?}"),
        }
    }
    assert_eq!(new.len(), 1, "{} trials minted", new.len());
    // Whichever fingerprint came first: its other requests get its trial
    // again, the other fingerprint's are refused.
    let (winner, trial) = &new[0];
    assert_eq!((again.len(), used.len()), (11, 12));
    assert!(again.iter().all(|(d, t)| d == winner && t == trial));
    assert!(used.iter().all(|d| d != winner));
    assert_eq!(count(url, "SELECT COUNT(*) FROM trials").await, 1);
    assert_eq!(
        count(
            url,
            "SELECT COUNT(*) FROM licenses WHERE customer = 'trial'"
        )
        .await,
        1
    );
    assert_eq!(count(url, "SELECT COUNT(*) FROM trial_components").await, 3);
    let audit = stores[0].audit_entries().await.unwrap();
    let starts: Vec<_> = audit.iter().filter(|e| e.action == "trial.start").collect();
    assert_eq!(starts.len(), 1);
    assert!(starts[0].details.contains(&trial.license_id));
}

#[tokio::test]
async fn concurrent_trials_from_one_device_make_one_sqlite() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("c.db");
    let a = Store::open_sqlite(&path, true).await.unwrap();
    a.migrate().await.unwrap();
    let b = Store::open_sqlite(&path, false).await.unwrap();
    storm(a, b, &format!("sqlite://{}", path.display())).await;
}

#[tokio::test]
async fn concurrent_trials_from_one_device_make_one_postgres() {
    let Ok(url) = std::env::var("KEYSEAL_TEST_POSTGRES_URL") else {
        eprintln!("skipped: KEYSEAL_TEST_POSTGRES_URL is not set");
        return;
    };
    let url = fresh_database(&url, "keyseal_trials_storm").await;
    let a = Store::connect(&url).await.unwrap();
    a.migrate().await.unwrap();
    let b = Store::connect(&url).await.unwrap();
    storm(a, b, &url).await;
}

/// A database of its own on the server `url` names, so tests run in parallel.
async fn fresh_database(url: &str, name: &str) -> String {
    use sqlx::Executor;
    let mut c = sqlx::PgConnection::connect(url).await.unwrap();
    c.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
        .await
        .unwrap();
    c.execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .unwrap();
    c.close().await.unwrap();
    let (base, _) = url.rsplit_once('/').unwrap();
    format!("{base}/{name}")
}
