//! A mint carries the response to its idempotency key into the group
//! commit: the license and the recorded response are one transaction, so no
//! crash between them can leave a claimed key whose retry (after the claim
//! is abandoned) mints a second license. A refused mint records nothing:
//! its claim stays the request's, for the service to record the 4xx.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use keyseal_issuer::idempotency::{Claim, Recorded, StoredResponse};
use keyseal_issuer::privacy::PersonalFields;
use keyseal_issuer::service::{MintJob, SignedMint, sign_mint};
use keyseal_issuer::{Context, InitOptions, KdfParams, Passphrase, RequestFields, Vault};
use zeroize::Zeroizing;

const T0: u64 = 1_800_000_000;

fn ctx() -> Context {
    Context {
        now: T0,
        actor: "tester".into(),
    }
}

/// A fresh vault (product `acme-cad`, personal data unlocked), its
/// passphrase and its default organisation.
async fn vault() -> (tempfile::TempDir, Vault, Passphrase, String) {
    let tmp = tempfile::tempdir().unwrap();
    let pass = Passphrase::new(Zeroizing::new("pw".into())).unwrap();
    let cheap = KdfParams {
        m_cost_kib: 64,
        t_cost: 1,
        p_cost: 1,
    };
    let opts = InitOptions {
        products: vec!["acme-cad".into()],
        kdf: cheap,
    };
    let vault = Vault::init(&tmp.path().join("v"), &pass, &opts, &ctx())
        .await
        .unwrap();
    vault
        .store()
        .unlock_personal_data(&pass, cheap)
        .await
        .unwrap();
    let org = vault.store().default_org().await.unwrap().unwrap();
    (tmp, vault, pass, org)
}

#[tokio::test]
async fn a_mint_records_its_idempotent_response_in_its_own_transaction() {
    let (_tmp, vault, pass, org) = vault().await;
    let store = vault.store();
    let cus = store
        .org_add_customer(&org, PersonalFields::default(), &ctx())
        .await
        .unwrap();
    let signer = vault.unlock(&pass).await.unwrap();

    let job = |product: &str| MintJob {
        org_id: org.clone(),
        fields: RequestFields {
            product: Some(product.into()),
            customer: Some(cus.customer_id.clone()),
            plan: Some("pro".into()),
            expires: Some("30d".into()),
            ..Default::default()
        },
        max_devices: 1,
        metadata: Default::default(),
        ctx: ctx(),
    };
    let response = |body: &str| StoredResponse {
        status: 201,
        content_type: "application/json".into(),
        body: body.into(),
    };
    let claim = |key: &'static str| {
        let org = org.clone();
        async move {
            store
                .idempotency_claim(&org, key, "hash", T0)
                .await
                .unwrap()
        }
    };

    // Claimed, minted: the response is there with nothing else written.
    assert_eq!(claim("evt_1").await, Claim::New);
    let good = job("acme-cad");
    let license = sign_mint(&signer, &good).unwrap();
    let body = format!("{{\"license_id\":\"{}\"}}", license.record.license_id);
    let mint = SignedMint {
        job: good,
        license,
        record: Some(Recorded {
            key: "evt_1".into(),
            response: response(&body),
        }),
    };
    let verdicts = store.org_record_mints(&[mint]).await;
    assert!(
        matches!(verdicts[0], Ok(keyseal_issuer::Signed::Done(()))),
        "{verdicts:?}"
    );
    assert_eq!(claim("evt_1").await, Claim::Replay(response(&body)));

    // Refused (unknown product) in the same group as a good one: only the
    // good one's response is recorded.
    assert_eq!(claim("evt_2").await, Claim::New);
    assert_eq!(claim("evt_3").await, Claim::New);
    let bad = job("no-such-product");
    let bad = SignedMint {
        license: sign_mint(&signer, &bad).unwrap(),
        job: bad,
        record: Some(Recorded {
            key: "evt_2".into(),
            response: response("{}"),
        }),
    };
    let ok = job("acme-cad");
    let ok = SignedMint {
        license: sign_mint(&signer, &ok).unwrap(),
        job: ok,
        record: Some(Recorded {
            key: "evt_3".into(),
            response: response("{\"third\":true}"),
        }),
    };
    let verdicts = store.org_record_mints(&[bad, ok]).await;
    assert!(
        verdicts[0].is_err() && matches!(verdicts[1], Ok(keyseal_issuer::Signed::Done(()))),
        "{verdicts:?}"
    );
    assert_eq!(claim("evt_2").await, Claim::Pending);
    assert_eq!(
        claim("evt_3").await,
        Claim::Replay(response("{\"third\":true}"))
    );
    vault.close().await;
}

/// Any other request runs inside `with_claim`: a write it commits notes the
/// effect on its claim in the same transaction, so a claim abandoned after
/// its effect is `Unanswered` (a retry would repeat the effect), while one
/// abandoned before any effect is taken over (`New`). A 5xx's release keeps
/// a claim whose effect committed.
#[tokio::test]
async fn a_claim_abandoned_after_its_effect_is_never_run_again() {
    use keyseal_issuer::idempotency::{ABANDONED_AFTER, Claimed, with_claim};
    let (_tmp, vault, _, org) = vault().await;
    let store = vault.store();
    let claimed = |key: &str| Claimed {
        org_id: org.clone(),
        key: key.into(),
    };
    let later = T0 + ABANDONED_AFTER;

    // A customer made under the claim, then the process "dies" before the
    // response is recorded.
    assert_eq!(
        store.idempotency_claim(&org, "k1", "h", T0).await.unwrap(),
        Claim::New
    );
    with_claim(claimed("k1"), async {
        store
            .org_add_customer(&org, PersonalFields::default(), &ctx())
            .await
            .unwrap()
    })
    .await;
    assert_eq!(
        store
            .idempotency_claim(&org, "k1", "h", T0 + 1)
            .await
            .unwrap(),
        Claim::Pending
    );
    assert_eq!(
        store
            .idempotency_claim(&org, "k1", "h", later)
            .await
            .unwrap(),
        Claim::Unanswered
    );
    // Its 5xx's release does not free it either.
    store.idempotency_release(&org, "k1").await.unwrap();
    assert_eq!(
        store
            .idempotency_claim(&org, "k1", "h", later)
            .await
            .unwrap(),
        Claim::Unanswered
    );

    // A write outside the claim's task (another request) notes nothing on
    // it; a claim with no effect is taken over once abandoned, and a 5xx's
    // release frees it at once.
    assert_eq!(
        store.idempotency_claim(&org, "k2", "h", T0).await.unwrap(),
        Claim::New
    );
    store
        .org_add_customer(&org, PersonalFields::default(), &ctx())
        .await
        .unwrap();
    assert_eq!(
        store
            .idempotency_claim(&org, "k2", "h", later)
            .await
            .unwrap(),
        Claim::New
    );
    store.idempotency_release(&org, "k2").await.unwrap();
    assert_eq!(
        store
            .idempotency_claim(&org, "k2", "h", later)
            .await
            .unwrap(),
        Claim::New
    );
    vault.close().await;
}
