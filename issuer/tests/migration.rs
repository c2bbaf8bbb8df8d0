//! A ledger written by the keyseal of 2026-12-03 (schema 9, before the
//! command line and the service shared one data model) opens, migrates and
//! keeps every row: `tests/fixtures/ledger-v9` was made by that build's
//! `keyseal init --product acme-cad`, `products add acme-viewer`, one
//! `issue`, a batch of two, a `revoke`, `revocations publish`, `keys
//! rotate` and one more `issue` (see its README.md). Its sealed keys were
//! files in `keys/` then; they are imported into the ledger (schema 11).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use keyseal_issuer::{
    Access, Context, LicenseFilter, Passphrase, RequestFields, Vault, service::OrgLicenseFilter,
};
use serde_json::Value;
use zeroize::Zeroizing;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/ledger-v9");

/// A copy of the fixture vault (the test migrates the copy).
fn copy_fixture() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vault");
    std::fs::create_dir_all(dir.join("keys")).unwrap();
    std::fs::copy(
        format!("{FIXTURE}/ledger.sqlite"),
        dir.join("ledger.sqlite"),
    )
    .unwrap();
    for e in std::fs::read_dir(format!("{FIXTURE}/keys")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.join("keys").join(e.file_name())).unwrap();
    }
    (tmp, dir)
}

fn minted() -> Vec<Value> {
    let mut all = Vec::new();
    for f in ["one.json", "two.json"] {
        let text = std::fs::read_to_string(format!("{FIXTURE}/{f}")).unwrap();
        all.push(serde_json::from_str(&text).unwrap());
    }
    let rows = std::fs::read_to_string(format!("{FIXTURE}/minted.jsonl")).unwrap();
    all.extend(rows.lines().map(|l| serde_json::from_str(l).unwrap()));
    all
}

#[tokio::test]
async fn a_schema_9_ledger_migrates_into_the_default_organisation() {
    let (_tmp, dir) = copy_fixture();
    let vault = Vault::open(&dir, Access::Write).await.unwrap();
    let store = vault.store();
    let org = store
        .default_org()
        .await
        .unwrap()
        .expect("a default organisation");
    let orgs = store.orgs().await.unwrap();
    assert_eq!(orgs.len(), 1);
    assert_eq!(
        (orgs[0].org_id.as_str(), orgs[0].name.as_str()),
        (org.as_str(), "default")
    );

    // Products, keys and the list now belong to it.
    assert_eq!(
        store.all_products(&org).await.unwrap(),
        ["acme-cad", "acme-viewer"]
    );
    let keys = store.org_keys(&org).await.unwrap();
    assert_eq!(keys.len(), 2);
    // Their key files were imported: the ledger keeps the sealed keys.
    for k in &keys {
        assert!(store.sealed_key(k.key_id).await.unwrap().is_some());
    }
    assert_eq!(store.org_published_lists(&org).await.unwrap().len(), 1);

    // Every license the old CLI minted, with the very key it printed, is
    // the organisation's: through the CLI's reads and the service's.
    let minted = minted();
    assert_eq!(minted.len(), 5);
    for m in &minted {
        let id = m["license_id"].as_str().unwrap();
        let rec = store.license(&org, id).await.unwrap();
        assert_eq!(rec.license_key, m["license_key"].as_str().unwrap());
        let api = store
            .org_license(&org, id)
            .await
            .unwrap()
            .expect("in the API");
        assert_eq!(api.record, rec);
        assert_eq!(api.max_devices, 1);
    }
    let revoked = minted[0]["license_id"].as_str().unwrap();
    assert!(
        store
            .license(&org, revoked)
            .await
            .unwrap()
            .revoked
            .is_some()
    );
    assert_eq!(
        store
            .licenses(&org, &LicenseFilter::default())
            .await
            .unwrap()
            .len(),
        5
    );
    let page = store
        .org_licenses(
            &org,
            &OrgLicenseFilter {
                customer: Some("cus_42".into()),
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(page.len(), 2);
    assert!(
        store
            .org_revoked(&org)
            .await
            .unwrap()
            .licenses
            .contains(&revoked.parse().unwrap())
    );

    // The chain holds, one entry longer: the default organisation's creation.
    assert_eq!(store.verify_audit().await.unwrap(), Ok(10));
    let last = store.audit_entries().await.unwrap().pop().unwrap();
    assert_eq!(last.action, "org.create");

    // The old vault's passphrase still opens its key, and a new license
    // lands in the same organisation.
    let pass = Passphrase::new(Zeroizing::new("fixture passphrase, test only".into())).unwrap();
    let signer = vault.unlock_org(&org, &pass).await.unwrap();
    let ctx = Context {
        now: 1_800_000_000,
        actor: "tester".into(),
    };
    let fields = RequestFields {
        product: Some("acme-viewer".into()),
        customer: Some("cus_7".into()),
        plan: Some("basic".into()),
        expires: Some("30d".into()),
        ..Default::default()
    };
    let new = store
        .issue(&org, &signer, fields.resolve(ctx.now).unwrap(), &ctx)
        .await
        .unwrap();
    assert!(
        store
            .org_license(&org, &new.license_id.to_string())
            .await
            .unwrap()
            .is_some()
    );
    vault.close().await;

    // Opening again changes nothing, and the key files are no longer
    // needed.
    std::fs::remove_dir_all(dir.join("keys")).unwrap();
    let again = Vault::open(&dir, Access::Write).await.unwrap();
    again.unlock_org(&org, &pass).await.unwrap();
    assert_eq!(again.store().orgs().await.unwrap().len(), 1);
    assert_eq!(again.store().default_org().await.unwrap(), Some(org));
    assert_eq!(again.store().verify_audit().await.unwrap(), Ok(11));
    again.close().await;
}
