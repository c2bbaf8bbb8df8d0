//! The vault through the library API: init, issue, batch, rotate, revoke,
//! publish, audit, lock, wrong passphrase.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use keyseal_core::license::{Expectations, UnverifiedLicense, decode_text};
use keyseal_core::{Error as CoreError, RevocationList};
use keyseal_issuer::batch;
use keyseal_issuer::{
    Access, BatchOptions, Context, Error, InitOptions, KdfParams, KeyStatus, LicenseFilter,
    Passphrase, RequestFields, Vault,
};
use keyseal_issuer::{KeyError, LedgerError, RequestError, VaultError};
use zeroize::Zeroizing;

const CHEAP: KdfParams = KdfParams {
    m_cost_kib: 64,
    t_cost: 1,
    p_cost: 1,
};
const T0: u64 = 1_800_000_000;

fn ctx(now: u64) -> Context {
    Context {
        now,
        actor: "tester".into(),
    }
}

fn pass(s: &str) -> Passphrase {
    Passphrase::new(Zeroizing::new(s.into())).unwrap()
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

/// A new vault (passphrase `pw`, product acme-cad, made at `T0`) in a
/// temporary directory: the directory's guard, the vault's path, the vault.
async fn new_vault() -> (tempfile::TempDir, std::path::PathBuf, Vault) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vault");
    let opts = InitOptions {
        products: vec!["acme-cad".into()],
        kdf: CHEAP,
    };
    let vault = Vault::init(&dir, &pass("pw"), &opts, &ctx(T0))
        .await
        .unwrap();
    (tmp, dir, vault)
}

fn check(
    key: &str,
    keyring: &keyseal_core::Keyring,
    now: u64,
    list: Option<&RevocationList>,
) -> Result<(), CoreError> {
    let mut buf = [0u8; keyseal_core::license::MAX_LICENSE_LEN];
    let bytes = decode_text(key, &mut buf)?;
    let lic = UnverifiedLicense::from_bytes(bytes)?;
    let mut exp = Expectations::new("acme-cad", now);
    if let Some(l) = list {
        exp = exp.revocations(l);
    }
    lic.verify(keyring, &exp).map(|_| ())
}

#[tokio::test]
async fn full_lifecycle() {
    let (_tmp, dir, vault) = new_vault().await;

    // Owner-only permissions.
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    // The key is sealed in the ledger (no key file), and only the
    // passphrase opens it.
    let k1 = vault.store().active_key().await.unwrap().unwrap();
    let (sealed, _) = vault.sealed_key(k1.key_id).await.unwrap();
    let here = std::path::Path::new("test");
    assert_eq!(sealed.open(&pass("pw"), here).unwrap().key_id(), k1.key_id);
    assert!(matches!(
        sealed.open(&pass("nope"), here),
        Err(keyseal_issuer::keyfile::Error::WrongPassphrase { .. })
    ));
    assert!(!dir.join("keys").exists());

    // A second writer is refused while the first holds the lock.
    assert!(matches!(
        Vault::open(&dir, Access::Write).await,
        Err(Error::Vault(VaultError::Locked { .. }))
    ));
    // Wrong passphrase.
    assert!(matches!(
        vault.unlock(&pass("nope")).await,
        Err(Error::KeyFile(
            keyseal_issuer::keyfile::Error::WrongPassphrase { .. }
        ))
    ));

    let signer = vault.unlock(&pass("pw")).await.unwrap();
    let store = vault.store();
    let org = store.default_org().await.unwrap().unwrap();
    let a = store
        .issue(&org, &signer, req("cus_a").resolve(T0).unwrap(), &ctx(T0))
        .await
        .unwrap();
    let mut unknown = req("cus_x");
    unknown.product = Some("other".into());
    assert!(matches!(
        store
            .issue(&org, &signer, unknown.resolve(T0).unwrap(), &ctx(T0))
            .await,
        Err(Error::Request(RequestError::UnknownProduct { .. }))
    ));

    // Batch with a bad third row: the two before it are minted.
    let csv = "product,customer,plan,expires\nacme-cad,c1,pro,30d\nacme-cad,c2,pro,30d\nacme-cad,bad@x,pro,30d\nacme-cad,c4,pro,30d\n";
    let mut written = Vec::new();
    let out = store
        .issue_batch(
            &org,
            &signer,
            &ctx(T0 + 1),
            batch::csv_rows(csv.as_bytes()),
            &BatchOptions {
                chunk_size: 1,
                start_row: 1,
            },
            |chunk| {
                written.extend(chunk.iter().map(|i| i.license_key.clone()));
                Ok(())
            },
        )
        .await;
    assert_eq!(out.minted, 2);
    assert_eq!(out.last_row, 2);
    assert!(
        matches!(
            out.error,
            Some(Error::Request(RequestError::BadRow { row: 3, .. }))
        ),
        "{:?}",
        out.error
    );
    assert_eq!(written.len(), 2);
    let in_batch = store
        .licenses(
            &org,
            &LicenseFilter {
                batch_id: Some(out.batch_id.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        in_batch
            .iter()
            .map(|l| l.license_key.clone())
            .collect::<Vec<_>>(),
        written
    );

    // Rotate; the old key signs nothing new, both keys' licenses verify.
    let (k2, old) = vault
        .rotate(&pass("pw"), None, &ctx(T0 + 10))
        .await
        .unwrap();
    assert_eq!(old.unwrap().status, KeyStatus::Retired);
    assert!(
        store
            .issue(
                &org,
                &signer,
                req("cus_b").resolve(T0).unwrap(),
                &ctx(T0 + 11)
            )
            .await
            .is_err()
    );
    let signer2 = vault.unlock(&pass("pw")).await.unwrap();
    assert_eq!(signer2.key_id(), k2.key_id);
    let b = store
        .issue(
            &org,
            &signer2,
            req("cus_b").resolve(T0 + 11).unwrap(),
            &ctx(T0 + 11),
        )
        .await
        .unwrap();
    let ring = store.keyring().await.unwrap().keyring;
    check(&a.license_key, &ring, T0 + 20, None).unwrap();
    check(&b.license_key, &ring, T0 + 20, None).unwrap();

    // Revoke a, publish; a is rejected, b is not.
    store
        .revoke_license(&org, &a.license_id.to_string(), "refund", &ctx(T0 + 30))
        .await
        .unwrap();
    assert!(matches!(
        store
            .revoke_license(&org, &a.license_id.to_string(), "refund", &ctx(T0 + 31))
            .await,
        Err(Error::Request(RequestError::AlreadyRevoked { .. }))
    ));
    let l1 = store
        .publish_revocations(&signer2, T0 + 86_400, &ctx(T0 + 40))
        .await
        .unwrap();
    let l2 = store
        .publish_revocations(&signer2, T0 + 86_400, &ctx(T0 + 41))
        .await
        .unwrap();
    assert_eq!((l1.sequence, l2.sequence), (1, 2));
    let list = RevocationList::verify(&l2.bytes, &ring).unwrap();
    assert_eq!(
        check(&a.license_key, &ring, T0 + 50, Some(&list)),
        Err(CoreError::Revoked)
    );
    check(&b.license_key, &ring, T0 + 50, Some(&list)).unwrap();

    // Audit chain verifies; every action is there.
    assert!(store.verify_audit().await.unwrap().is_ok());
    let actions: Vec<String> = store
        .audit_entries()
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(
        actions,
        [
            "org.create",
            "vault.init",
            "license.issue",
            "license.issue_batch",
            "license.issue_batch",
            "key.rotate",
            "license.issue",
            "license.revoke",
            "revocations.publish",
            "revocations.publish"
        ]
    );
    vault.close().await;

    // Read access works without the lock; a write open works again once closed.
    let again = Vault::open(&dir, Access::Write).await.unwrap();
    assert_eq!(again.store().license_count().await.unwrap(), 4);
    again.close().await;

    // init refuses an existing vault.
    let opts = InitOptions {
        products: vec!["acme-cad".into()],
        kdf: CHEAP,
    };
    assert!(matches!(
        Vault::init(&dir, &pass("pw"), &opts, &ctx(T0)).await,
        Err(Error::Vault(VaultError::VaultExists { .. }))
    ));
}

#[tokio::test]
async fn corrupt_ledger_and_missing_vault_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    assert!(matches!(
        Vault::open(tmp.path(), Access::Read).await,
        Err(Error::Vault(VaultError::NoVault { .. }))
    ));
    std::fs::write(tmp.path().join("ledger.sqlite"), b"this is not a database, just some bytes padding padding padding padding padding padding padding padding padding padding").unwrap();
    let e = Vault::open(tmp.path(), Access::Read).await.unwrap_err();
    assert!(
        matches!(e, Error::Ledger(LedgerError::Corrupt { .. })),
        "{e:?}"
    );
}

#[tokio::test]
async fn rotation_without_an_active_key_still_checks_the_passphrase() {
    let (_tmp, _dir, vault) = new_vault().await;
    let k1 = vault.store().active_key().await.unwrap().unwrap();
    vault
        .store()
        .retire_key(&k1.key_id.to_string(), T0 + 1, &ctx(T0 + 1))
        .await
        .unwrap();
    assert!(matches!(
        vault.unlock(&pass("pw")).await,
        Err(Error::Key(KeyError::NoActiveKey))
    ));
    assert!(matches!(
        vault.rotate(&pass("other"), None, &ctx(T0 + 2)).await,
        Err(Error::KeyFile(
            keyseal_issuer::keyfile::Error::WrongPassphrase { .. }
        ))
    ));
    let (k2, old) = vault.rotate(&pass("pw"), None, &ctx(T0 + 2)).await.unwrap();
    assert!(old.is_none());
    assert_eq!(vault.unlock(&pass("pw")).await.unwrap().key_id(), k2.key_id);
    // The retired key's window stayed where retire put it.
    let keys = vault.store().keys().await.unwrap();
    assert_eq!(keys[0].valid_until, Some(T0 + 1));
    vault.close().await;
}

/// A keyring holds 16 keys: the rotation that would make a 17th key that
/// is not revoked is refused before anything is written (no key file, no
/// audit entry, through the vault and through the store directly); a
/// revoked key makes room; the vault still checks a license of a revoked
/// key among more than 16 keys (`key_revoked`, not an error).
#[tokio::test]
async fn rotations_stop_at_a_full_keyring() {
    let (_tmp, _dir, vault) = new_vault().await;
    let signer = vault.unlock(&pass("pw")).await.unwrap();
    let org = vault.store().default_org().await.unwrap().unwrap();
    let first = vault
        .store()
        .issue(&org, &signer, req("cus_a").resolve(T0).unwrap(), &ctx(T0))
        .await
        .unwrap();
    for n in 1..16 {
        vault.rotate(&pass("pw"), None, &ctx(T0 + n)).await.unwrap();
    }
    let sealed_keys = || async { vault.store().keys().await.unwrap().len() };
    let (before, head) = (
        sealed_keys().await,
        vault.store().audit_head().await.unwrap(),
    );
    assert_eq!(vault.store().keys().await.unwrap().len(), 16);
    match vault.rotate(&pass("pw"), None, &ctx(T0 + 20)).await {
        Err(Error::Key(KeyError::KeyringFull {
            keys: 16,
            max: 16,
            oldest_retired: Some(id),
        })) => assert_eq!(id, first.key_id),
        other => panic!("{other:?}"),
    }
    // The check under the writer's lock, without the vault's early one.
    let stray = keyseal_core::SigningKey::from_seed(&[9; 32]).unwrap();
    assert!(matches!(
        vault
            .store()
            .activate_key(
                &keyseal_issuer::keyfile::KeyFile::seal(&stray, &pass("pw"), CHEAP).unwrap(),
                &ctx(T0 + 20)
            )
            .await,
        Err(Error::Key(KeyError::KeyringFull { .. }))
    ));
    assert_eq!(sealed_keys().await, before);
    assert_eq!(vault.store().audit_head().await.unwrap(), head);
    assert_eq!(vault.store().keyring().await.unwrap().keys.len(), 16);

    // Revoking the oldest key makes room for exactly one more.
    vault
        .store()
        .revoke_key(&first.key_id.to_string(), "retired", &ctx(T0 + 21))
        .await
        .unwrap();
    assert!(matches!(
        vault
            .store()
            .revoke_key(&first.key_id.to_string(), "retired", &ctx(T0 + 21))
            .await,
        Err(Error::Key(KeyError::AlreadyRevoked(_)))
    ));
    vault
        .rotate(&pass("pw"), None, &ctx(T0 + 22))
        .await
        .unwrap();
    assert!(matches!(
        vault.rotate(&pass("pw"), None, &ctx(T0 + 23)).await,
        Err(Error::Key(KeyError::KeyringFull { .. }))
    ));
    let export = vault.store().keyring().await.unwrap();
    assert_eq!(export.keys.len(), 16);
    assert!(export.left_out.is_empty());
    assert!(export.keyring.get(first.key_id).is_none());

    // 17 keys in all: the vault checks the first license against its own key.
    let ring = vault
        .store()
        .verification_keyring(first.key_id)
        .await
        .unwrap();
    let revoked = vault.store().revoked().await.unwrap();
    let mut buf = [0u8; keyseal_core::license::MAX_LICENSE_LEN];
    let bytes = decode_text(&first.license_key, &mut buf).unwrap();
    let lic = UnverifiedLicense::from_bytes(bytes).unwrap();
    assert_eq!(
        lic.verify(
            &ring,
            &Expectations::new("acme-cad", T0 + 30).revocations(&revoked)
        )
        .map(|_| ()),
        Err(CoreError::KeyRevoked(first.key_id))
    );
    vault.close().await;
}

/// Runs a CSV batch; returns the outcome and the rows handed out.
async fn run_batch(
    vault: &Vault,
    org: &str,
    csv: &str,
    chunk_size: usize,
) -> (keyseal_issuer::BatchOutcome, usize) {
    let signer = vault.unlock(&pass("pw")).await.unwrap();
    let mut written = 0;
    let out = vault
        .store()
        .issue_batch(
            org,
            &signer,
            &ctx(T0 + 5),
            batch::csv_rows(std::io::Cursor::new(csv.as_bytes().to_vec())),
            &BatchOptions {
                chunk_size,
                start_row: 1,
            },
            |chunk| {
                written += chunk.len();
                Ok(())
            },
        )
        .await;
    (out, written)
}

/// External ids: a batch run twice mints each row once (the second run
/// skips every row and names the license each was minted as, and so does
/// a row repeating an earlier row's id), and a single issue with a minted
/// id is refused with that license.
#[tokio::test]
async fn a_batch_run_twice_mints_each_row_once() {
    let (_tmp, _dir, vault) = new_vault().await;
    let org = vault.store().default_org().await.unwrap().unwrap();
    let csv = "product,customer,plan,expires,external_id\n\
               acme-cad,c1,pro,30d,order-1\n\
               acme-cad,c2,pro,30d,order-2\n\
               acme-cad,c3,pro,30d,\n\
               acme-cad,c4,pro,30d,order-4\n";
    let (first, written) = run_batch(&vault, &org, csv, 2).await;
    assert!(first.error.is_none(), "{:?}", first.error);
    assert_eq!((first.minted, written, first.skipped.len()), (4, 4, 0));

    // Again: the three rows with an id are skipped, the one without is
    // minted again (nothing tells it apart).
    let (again, written) = run_batch(&vault, &org, csv, 2).await;
    assert!(again.error.is_none(), "{:?}", again.error);
    assert_eq!((again.minted, written), (1, 1));
    assert_eq!(again.last_row, 4);
    let skipped: Vec<(u64, &str)> = again
        .skipped
        .iter()
        .map(|s| (s.row, s.external_id.as_str()))
        .collect();
    assert_eq!(skipped, [(1, "order-1"), (2, "order-2"), (4, "order-4")]);
    let store = vault.store();
    for s in &again.skipped {
        let rec = store.license(&org, &s.license_id).await.unwrap();
        assert_eq!(rec.external_id.as_deref(), Some(s.external_id.as_str()));
        assert_eq!(rec.batch_id.as_deref(), Some(first.batch_id.as_str()));
    }

    // A new id is minted once, even if the file repeats it.
    let more = "product,customer,plan,expires,external_id\n\
                acme-cad,c5,pro,30d,order-5\n\
                acme-cad,c5,pro,30d,order-5\n\
                acme-cad,c1,pro,30d,order-1\n";
    let (out, _) = run_batch(&vault, &org, more, 10).await;
    assert_eq!(out.minted, 1);
    let skipped: Vec<u64> = out.skipped.iter().map(|s| s.row).collect();
    assert_eq!(skipped, [2, 3]);
    let five = store
        .licenses(
            &org,
            &LicenseFilter {
                external_id: Some("order-5".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(five.len(), 1);
    assert_eq!(out.skipped[0].license_id, five[0].license_id.to_string());

    // One at a time: the same id is refused, naming the license.
    let signer = vault.unlock(&pass("pw")).await.unwrap();
    let mut fields = req("c1");
    fields.external_id = Some("order-1".into());
    match store
        .issue(&org, &signer, fields.resolve(T0).unwrap(), &ctx(T0 + 9))
        .await
    {
        Err(Error::Request(RequestError::ExternalIdExists {
            external_id,
            license_id,
        })) => {
            assert_eq!(external_id, "order-1");
            assert_eq!(
                store.license(&org, &license_id).await.unwrap().customer,
                "c1"
            );
        }
        other => panic!("{other:?}"),
    }
    fields.external_id = Some("order 1".into());
    assert!(matches!(
        fields.resolve(T0),
        Err(Error::Request(RequestError::Invalid { ref field, .. })) if field == "external_id"
    ));
    // Every audit entry of the runs holds, chained.
    assert!(store.verify_audit().await.unwrap().is_ok());
}

/// Lists stop carrying a revoked license once it is past its expiry, grace
/// and [`keyseal_issuer::REVOKED_LISTED_AFTER_EXPIRY`] (every app refuses it
/// as expired by then), keep a perpetual one for ever, and the ledger keeps
/// only the newest [`keyseal_issuer::KEPT_LISTS`] lists.
#[tokio::test]
async fn expired_revocations_drop_off_the_lists_and_old_lists_are_not_kept() {
    let (_tmp, _dir, vault) = new_vault().await;
    let store = vault.store();
    let org = store.default_org().await.unwrap().unwrap();
    let signer = vault.unlock(&pass("pw")).await.unwrap();
    let mut month = req("cus_a");
    month.expires = Some("30d".into());
    month.grace = Some("2d".into());
    let mut perpetual = req("cus_b");
    perpetual.expires = Some("never".into());
    let mut ids = Vec::new();
    for fields in [month, perpetual] {
        let issued = store
            .issue(&org, &signer, fields.resolve(T0).unwrap(), &ctx(T0))
            .await
            .unwrap();
        store
            .revoke_license(&org, &issued.license_id.to_string(), "refund", &ctx(T0))
            .await
            .unwrap();
        ids.push(issued.license_id);
    }
    let listed = |t: u64| {
        let store = store.clone();
        let signer = signer.clone();
        async move {
            let l = store
                .publish_revocations(&signer, t + 86_400, &ctx(t))
                .await
                .unwrap();
            let l = RevocationList::verify(&l.bytes, &vault_keyring(&store).await).unwrap();
            l.revoked_licenses().collect::<Vec<_>>()
        }
    };
    let last_day = T0 + 32 * 86_400 + keyseal_issuer::REVOKED_LISTED_AFTER_EXPIRY;
    let mut both = ids.clone();
    both.sort_by_key(|i| i.to_bytes());
    assert_eq!(listed(last_day).await, both, "listed to the last second");
    assert_eq!(
        listed(last_day + 1).await,
        vec![ids[1]],
        "then only the perpetual one"
    );
    // The ledger still knows it was revoked.
    let rec = store.license(&org, &ids[0].to_string()).await.unwrap();
    assert!(rec.revoked.is_some());

    for n in 0..20 {
        listed(last_day + 2 + n).await;
    }
    let kept = store.org_published_lists(&org).await.unwrap();
    assert_eq!(kept.len() as u64, keyseal_issuer::KEPT_LISTS);
    assert_eq!(kept[0].sequence, 22, "the newest first");
}

async fn vault_keyring(store: &keyseal_issuer::Store) -> keyseal_core::Keyring {
    let org = store.default_org().await.unwrap().unwrap();
    store.org_keyring(&org).await.unwrap().keyring
}

/// A list follows revocations, not requests: after a burst of revocations
/// the first `IfChanged` publish carries them all and the next ones sign
/// nothing; a list is refreshed only when due.
#[tokio::test]
async fn a_burst_of_revocations_publishes_one_list() {
    use keyseal_issuer::Publish;
    let (_tmp, _dir, vault) = new_vault().await;
    let store = vault.store();
    let org = store.default_org().await.unwrap().unwrap();
    let signer = vault.unlock(&pass("pw")).await.unwrap();
    let week = 7 * 86_400;
    let first = store
        .publish_revocations(&signer, T0 + week, &ctx(T0))
        .await
        .unwrap();
    let revoke = async |customer: &str, at: u64| {
        let issued = store
            .issue(&org, &signer, req(customer).resolve(at).unwrap(), &ctx(at))
            .await
            .unwrap();
        store
            .revoke_license(&org, &issued.license_id.to_string(), "refund", &ctx(at))
            .await
            .unwrap();
    };
    for c in ["cus_a", "cus_b", "cus_c"] {
        revoke(c, T0 + 1).await;
    }
    let publish = async |when: Publish, at: u64| {
        store
            .publish_list(&signer, at + week, when, &ctx(at))
            .await
            .unwrap()
            .or_stale()
            .unwrap()
    };
    let burst = publish(Publish::IfChanged, T0 + 2).await.expect("changed");
    assert_eq!(
        (burst.sequence, burst.license_count),
        (first.sequence + 1, 3)
    );
    for _ in 0..3 {
        assert!(publish(Publish::IfChanged, T0 + 3).await.is_none());
    }
    // Fresh past the due time: nothing; due: the same revocations again.
    assert!(publish(Publish::IfDueBy(T0 + 3), T0 + 3).await.is_none());
    let refreshed = publish(Publish::IfDueBy(T0 + 2 + week), T0 + 4)
        .await
        .expect("due");
    assert_eq!(
        (refreshed.sequence, refreshed.license_count),
        (burst.sequence + 1, 3)
    );
    revoke("cus_d", T0 + 5).await;
    let next = publish(Publish::IfChanged, T0 + 6).await.expect("changed");
    assert_eq!(next.license_count, 4);
}

/// A replica whose clock lags the one that rotated dates its list no
/// earlier than the new key's window starts: apps would refuse a list dated
/// outside its signer's window.
#[tokio::test]
async fn a_list_is_never_dated_before_its_signers_window() {
    let (_tmp, _dir, vault) = new_vault().await;
    let store = vault.store();
    let org = store.default_org().await.unwrap().unwrap();
    vault
        .rotate_org(&org, &pass("pw"), Some(CHEAP), &ctx(T0 + 100))
        .await
        .unwrap();
    let signer = vault.unlock_org(&org, &pass("pw")).await.unwrap();
    let list = store
        .publish_revocations(&signer, T0 + 86_400, &ctx(T0 + 40))
        .await
        .unwrap();
    assert_eq!(list.issued_at, T0 + 100);
    let ring = vault_keyring(store).await;
    RevocationList::verify(&list.bytes, &ring).expect("inside the signer's window");
}
