//! Organisations (`orgs`): the tenants every row belongs to, and the
//! default one the command line acts on.

use serde_json::json;

use super::keys::insert_key;
use super::tokens::insert_token;
use super::*;
use crate::service::{OrgInfo, Scope};

impl Store {
    /// The default organisation: the first one, which owns the vault's own
    /// keys (what the CLI signs with and the unscoped public endpoints
    /// serve). `None` before any organisation exists.
    pub async fn default_org(&self) -> Result<Option<String>> {
        let row = self
            .fetch_all(
                sqlx::query("SELECT value FROM meta WHERE name = 'default_org'"),
                "reading the default organisation",
            )
            .await?;
        row.first()
            .map(|r| r.try_get::<String, _>(0))
            .transpose()
            .map_err(|e| Error::db("reading the default organisation", e))
    }

    /// Who owns the vault's own keys: the default organisation, or `""`
    /// while none exists (the first one created takes them over).
    pub(crate) async fn default_owner(&self) -> Result<String> {
        Ok(self.default_org().await?.unwrap_or_default())
    }

    /// Number of organisations (0 on a vault the service has never set up).
    pub async fn org_count(&self) -> Result<u64> {
        let row = sqlx::query("SELECT COUNT(*) FROM orgs")
            .fetch_one(self.pool())
            .await
            .map_err(db_err("counting organisations"))?;
        Ok(u(row
            .try_get::<i64, _>(0)
            .map_err(db_err("counting organisations"))?))
    }

    /// Creates an organisation with a first token whose secret hashes to
    /// `token_hash` and `key` (the public half of a fresh key whose sealed
    /// file the caller wrote) as its active key; returns (org id, token id).
    /// The default organisation is not made here: every ledger has it from
    /// [`Store::initialize`] (or its migration) on.
    pub async fn create_org(
        &self,
        name: &str,
        token_hash: &str,
        scopes: &[Scope],
        key: &crate::keyfile::KeyFile,
        ctx: &Context,
    ) -> Result<(String, String)> {
        check_text("name", name, 200)?;
        if name.trim().is_empty() {
            return Err(Error::invalid("name", "must not be empty"));
        }
        let org_id = format!("org_{}", random_hex(8)?);
        let token_id = format!("tok_{}", random_hex(8)?);
        let mut tx = self.begin_write().await?;
        tx.exec(
            sqlx::query("INSERT INTO orgs (org_id, name, created_at) VALUES ($1, $2, $3)")
                .bind(org_id.clone())
                .bind(name.to_owned())
                .bind(i(ctx.now)),
            "creating the organisation",
        )
        .await?;
        insert_key(&mut tx, &org_id, key, ctx.now).await?;
        insert_token(
            &mut tx, &org_id, &token_id, token_hash, scopes, "initial", ctx.now,
        )
        .await?;
        tx.audit(
            ctx,
            "org.create",
            &json!({
                "org_id": org_id,
                "token_id": token_id,
                "key_id": key.key_id(),
                "default": false,
            }),
        )
        .await?;
        tx.commit().await?;
        Ok((org_id, token_id))
    }

    /// Every organisation: the default one first, then oldest first.
    pub async fn orgs(&self) -> Result<Vec<OrgInfo>> {
        let rows =
            sqlx::query("SELECT org_id, name, created_at FROM orgs ORDER BY \
                 CASE WHEN org_id = (SELECT value FROM meta WHERE name = 'default_org') THEN 0 ELSE 1 END, \
                 created_at, org_id")
                .fetch_all(self.pool())
                .await
                .map_err(db_err("reading organisations"))?;
        rows.iter()
            .map(|r| {
                #[derive(sqlx::FromRow)]
                struct Row {
                    org_id: String,
                    name: String,
                    created_at: i64,
                }
                let r: Row = read_row(r, "reading organisations")?;
                Ok(OrgInfo {
                    org_id: r.org_id,
                    name: r.name,
                    created_at: u(r.created_at),
                })
            })
            .collect()
    }

    /// Whether an organisation with this id exists.
    pub async fn org_exists(&self, org_id: &str) -> Result<bool> {
        let row = sqlx::query("SELECT 1 FROM orgs WHERE org_id = $1")
            .bind(org_id.to_owned())
            .fetch_optional(self.pool())
            .await
            .map_err(db_err("reading organisations"))?;
        Ok(row.is_some())
    }
}

impl WriteTx {
    /// Creates the default organisation (named `default`): it takes over
    /// the keys and lists written before any organisation existed. Returns
    /// its id.
    pub(crate) async fn insert_default_org(&mut self, ctx: &Context) -> Result<String> {
        let org_id = format!("org_{}", random_hex(8)?);
        self.exec(
            sqlx::query("INSERT INTO orgs (org_id, name, created_at) VALUES ($1, 'default', $2)")
                .bind(org_id.clone())
                .bind(i(ctx.now)),
            "creating the default organisation",
        )
        .await?;
        self.set_meta("default_org", &org_id).await?;
        for table in ["signing_keys", "revocation_lists"] {
            self.exec(
                sqlx::query(&format!("UPDATE {table} SET org_id = $1 WHERE org_id = ''"))
                    .bind(org_id.clone()),
                "giving the vault's keys to the default organisation",
            )
            .await?;
        }
        self.audit(
            ctx,
            "org.create",
            &json!({ "org_id": org_id, "name": "default", "default": true }),
        )
        .await?;
        Ok(org_id)
    }
}
