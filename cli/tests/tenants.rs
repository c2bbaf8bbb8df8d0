//! `keyseal org create` and `keyseal token create` through the real binary:
//! the printed secrets are the ones the service accepts (looked up in the
//! ledger exactly as the service does), with their organisation and scopes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;
use keyseal_issuer::service::Scope;
use keyseal_issuer::{Access, Vault};
use keyseal_server::auth;
use serde_json::Value;

fn keyseal(dir: &Path, args: &[&str]) -> Value {
    let out = Command::cargo_bin("keyseal")
        .unwrap()
        .current_dir(dir)
        .env("KEYSEAL_PASSPHRASE", "correct horse battery staple")
        .env("KEYSEAL_KDF_PARAMS", "m=64,t=1,p=1")
        .env("KEYSEAL_ACTOR", "operator")
        .env_remove("KEYSEAL_NOW")
        .env_remove("KEYSEAL_VAULT")
        .env_remove("KEYSEAL_DATABASE_URL")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "keyseal {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

#[tokio::test]
async fn created_orgs_and_tokens_authenticate_with_their_scopes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    keyseal(dir, &["init", "--product", "acme-cad"]);
    let org = keyseal(dir, &["--json", "org", "create", "Acme Corp"]);
    let org_id = org["org_id"].as_str().unwrap().to_owned();
    let admin = org["token"].as_str().unwrap().to_owned();
    assert!(auth::well_formed(&admin));
    let tok = keyseal(
        dir,
        &[
            "--json",
            "token",
            "create",
            "--org",
            &org_id,
            "--scopes",
            "issue,read",
            "--name",
            "store backend",
        ],
    );
    let issue = tok["token"].as_str().unwrap().to_owned();
    // The default organisation (made with the vault) first, then Acme.
    let list = keyseal(dir, &["--json", "org", "list"]);
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(list[0]["name"], "default");
    assert_eq!(list[1]["org_id"], org_id.as_str());

    let vault = Vault::open(&dir.join("keyseal-vault"), Access::Read)
        .await
        .unwrap();
    let a = vault
        .store()
        .token_by_hash(&auth::token_hash(&admin))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (a.org_id.as_str(), a.scopes.as_slice()),
        (org_id.as_str(), &[Scope::Admin][..])
    );
    let i = vault
        .store()
        .token_by_hash(&auth::token_hash(&issue))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(i.org_id, org_id);
    assert_eq!(i.scopes, [Scope::Issue, Scope::Read]);
    assert_eq!(i.token_id, tok["token_id"].as_str().unwrap());
    let actions: Vec<String> = vault
        .store()
        .audit_entries()
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert!(
        actions.contains(&"org.create".to_owned()) && actions.contains(&"token.create".to_owned())
    );
    vault.close().await;
}
