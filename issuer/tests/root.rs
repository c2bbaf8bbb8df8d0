//! Offline roots: a root file is made once, certifies the organisation's
//! keys from their window's start (their rank), and its certificates are
//! served with every revocation list file; a revoked key, a root that is a
//! signing key, a window ending before it starts and too many products are
//! refused.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use keyseal_core::{KeyCertificate, Keyring};
use keyseal_issuer::{Context, Error, InitOptions, KdfParams, Passphrase, Vault, root};
use keyseal_issuer::{KeyError, RequestError};
use zeroize::Zeroizing;

const T0: u64 = 1_800_000_000;
const CHEAP: KdfParams = KdfParams {
    m_cost_kib: 64,
    t_cost: 1,
    p_cost: 1,
};

fn at(now: u64) -> Context {
    Context {
        now,
        actor: "tester".into(),
    }
}

#[tokio::test]
async fn a_root_certifies_keys_and_its_certificates_come_with_the_lists() {
    let tmp = tempfile::tempdir().unwrap();
    let pass = Passphrase::new(Zeroizing::new("pw".into())).unwrap();
    let root_pass = Passphrase::new(Zeroizing::new("root pw".into())).unwrap();
    let opts = InitOptions {
        products: vec!["acme-cad".into()],
        kdf: CHEAP,
    };
    let vault = Vault::init(&tmp.path().join("v"), &pass, &opts, &at(T0))
        .await
        .unwrap();
    let store = vault.store();
    let org = store.default_org().await.unwrap().unwrap();

    let file = tmp.path().join("root.key");
    let pk = root::create(&file, &root_pass, CHEAP).unwrap();
    assert!(matches!(
        root::create(&file, &root_pass, CHEAP),
        Err(Error::Request(RequestError::Invalid { .. }))
    ));
    assert_eq!(root::public_key(&file).unwrap(), pk);
    assert!(
        root::open(&file, &pass).is_err(),
        "the vault's passphrase is not the root's"
    );
    let root_key = root::open(&file, &root_pass).unwrap();
    let keyring: Keyring = root::keyring_text(&pk).parse().unwrap();

    let first = vault.unlock(&pass).await.unwrap().key_id().to_string();
    let cert = store
        .org_certify_key(&org, &first, &root_key, None, &[], &at(T0 + 5))
        .await
        .unwrap();
    let checked = KeyCertificate::verify(&cert.bytes, &keyring).unwrap();
    assert_eq!(checked.key().window_start(), T0, "from the key's own start");
    assert_eq!((cert.valid_from, cert.valid_until), (T0, None));

    // A rotation retires the first key at T0 + 10: certifying it again ends
    // the certificate there too (the earlier of --until and the key's end).
    vault
        .rotate_org(&org, &pass, Some(CHEAP), &at(T0 + 10))
        .await
        .unwrap();
    let again = store
        .org_certify_key(&org, &first, &root_key, Some(T0 + 20), &[], &at(T0 + 11))
        .await
        .unwrap();
    assert_eq!(again.valid_until, Some(T0 + 10));

    // Refusals.
    let signer = vault.unlock_org(&org, &pass).await.unwrap();
    let active = signer.key_id().to_string();
    let own_key = store.sealed_key(signer.key_id()).await.unwrap().unwrap();
    let own_key = own_key.open(&pass, std::path::Path::new("k")).unwrap();
    assert!(matches!(
        store.org_certify_key(&org, &active, &own_key, None, &[], &at(T0 + 12)).await,
        Err(Error::Request(RequestError::Invalid { field, .. })) if field == "root"
    ));
    assert!(matches!(
        store.org_certify_key(&org, &active, &root_key, Some(T0), &[], &at(T0 + 12)).await,
        Err(Error::Request(RequestError::Invalid { field, .. })) if field == "until"
    ));
    let five: Vec<String> = (0..5).map(|i| format!("p{i}")).collect();
    assert!(matches!(
        store.org_certify_key(&org, &active, &root_key, None, &five, &at(T0 + 12)).await,
        Err(Error::Request(RequestError::Invalid { field, .. })) if field == "products"
    ));
    store
        .org_revoke_key(&org, &first, "key-leaked", &at(T0 + 13))
        .await
        .unwrap();
    assert!(matches!(
        store
            .org_certify_key(&org, &first, &root_key, None, &[], &at(T0 + 14))
            .await,
        Err(Error::Key(KeyError::AlreadyRevoked(_)))
    ));

    // The list file carries the certificates of the keys not revoked: the
    // active key's once certified, never the revoked one's.
    store
        .org_certify_key(
            &org,
            &active,
            &root_key,
            None,
            &["acme-cad".into()],
            &at(T0 + 15),
        )
        .await
        .unwrap();
    let list = store
        .publish_revocations(&signer, T0 + 86_400, &at(T0 + 16))
        .await
        .unwrap();
    let text = store.org_list_file(&org, &list).await.unwrap();
    let certs: Vec<Vec<u8>> = keyseal_core::armor::blocks(&text)
        .map(Result::unwrap)
        .filter(|b| b.label() == keyseal_core::armor::KEY_CERTIFICATE)
        .map(|b| b.decode_to_vec().unwrap())
        .collect();
    assert_eq!(certs.len(), 1);
    let mut app = keyring.clone();
    assert_eq!(app.add_certificate(&certs[0]).unwrap(), signer.key_id());
    keyseal_core::RevocationList::verify(&list.bytes, &app).unwrap();
    let audit = store.audit_entries().await.unwrap();
    assert_eq!(
        audit.iter().filter(|e| e.action == "key.certify").count(),
        3
    );
}
