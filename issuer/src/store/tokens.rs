//! API tokens (`api_tokens`): stored as hashes, scoped to an organisation.
use serde_json::json;

use super::*;
use crate::error::RequestError;
use crate::service::{MAX_PAGE, MAX_TOKENS, Scope, TokenInfo, TokenRecord};

impl Store {
    /// The default organisation's first admin token, once: `None` (nothing
    /// written) if the organisation has had a token before, revoked or not,
    /// so a restart never hands out another. Returns the token's id.
    pub async fn first_admin_token(
        &self,
        token_hash: &str,
        ctx: &Context,
    ) -> Result<Option<String>> {
        let mut tx = self.begin_write().await?;
        let org = tx
            .fetch(
                sqlx::query("SELECT value FROM meta WHERE name = 'default_org'"),
                "reading the default organisation",
            )
            .await?;
        let Some(org_id) = org
            .first()
            .map(|r| r.try_get::<String, _>(0))
            .transpose()
            .map_err(db_err("reading the default organisation"))?
        else {
            return Err(Error::invalid("ledger", "has no default organisation"));
        };
        let had = tx
            .fetch(
                sqlx::query("SELECT 1 FROM api_tokens WHERE org_id = $1 LIMIT 1")
                    .bind(org_id.clone()),
                "reading API tokens",
            )
            .await?;
        if !had.is_empty() {
            return Ok(None);
        }
        let token_id = format!("tok_{}", random_hex(8)?);
        insert_token(
            &mut tx,
            &org_id,
            &token_id,
            token_hash,
            &[Scope::Admin],
            "initial",
            ctx.now,
        )
        .await?;
        tx.audit(
            ctx,
            "token.create",
            &json!({ "org_id": org_id, "token_id": token_id, "name": "initial", "scopes": "admin" }),
        )
        .await?;
        tx.commit().await?;
        Ok(Some(token_id))
    }

    /// Adds a token to an organisation; returns its id. `label` is its name.
    pub async fn add_token(
        &self,
        org_id: &str,
        token_hash: &str,
        scopes: &[Scope],
        label: &str,
        ctx: &Context,
    ) -> Result<String> {
        check_text("name", label, 200)?;
        if label.trim().is_empty() {
            return Err(Error::invalid("name", "must not be empty"));
        }
        if scopes.is_empty() {
            return Err(Error::invalid(
                "scopes",
                "give at least one of admin, issue, read",
            ));
        }
        let token_id = format!("tok_{}", random_hex(8)?);
        let mut tx = self.begin_write().await?;
        let org = tx
            .fetch(
                sqlx::query("SELECT 1 FROM orgs WHERE org_id = $1").bind(org_id.to_owned()),
                "reading organisations",
            )
            .await?;
        if org.is_empty() {
            return Err(Error::Request(RequestError::UnknownOrg(org_id.to_owned())));
        }
        let count = tx
            .fetch(
                sqlx::query("SELECT COUNT(*) FROM api_tokens WHERE org_id = $1")
                    .bind(org_id.to_owned()),
                "reading API tokens",
            )
            .await?;
        let count: i64 = count
            .first()
            .map(|r| r.try_get(0))
            .transpose()
            .map_err(db_err("reading API tokens"))?
            .unwrap_or(0);
        if u(count) >= MAX_TOKENS {
            return Err(Error::invalid(
                "scopes",
                format!("the organisation has {MAX_TOKENS} tokens, the most it may have"),
            ));
        }
        insert_token(
            &mut tx, org_id, &token_id, token_hash, scopes, label, ctx.now,
        )
        .await?;
        tx.audit(
            ctx,
            "token.create",
            &json!({ "org_id": org_id, "token_id": token_id, "name": label, "scopes": scopes_text(scopes) }),
        )
        .await?;
        tx.commit().await?;
        Ok(token_id)
    }

    /// The organisation's API tokens, oldest first (revoked ones included).
    pub async fn org_tokens(
        &self,
        org_id: &str,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<TokenInfo>> {
        let rows = sqlx::query(&format!(
            "{TOKEN_SELECT} WHERE org_id = $1 AND token_id > $2 ORDER BY token_id LIMIT {}",
            limit.clamp(1, MAX_PAGE)
        ))
        .bind(org_id.to_owned())
        .bind(after.unwrap_or("").to_owned())
        .fetch_all(self.pool())
        .await
        .map_err(db_err("reading API tokens"))?;
        rows.iter().map(token_from_row).collect()
    }

    /// One API token of the organisation.
    pub async fn org_token(&self, org_id: &str, token_id: &str) -> Result<Option<TokenInfo>> {
        let row = sqlx::query(&format!(
            "{TOKEN_SELECT} WHERE org_id = $1 AND token_id = $2"
        ))
        .bind(org_id.to_owned())
        .bind(token_id.to_owned())
        .fetch_optional(self.pool())
        .await
        .map_err(db_err("reading API tokens"))?;
        row.as_ref().map(token_from_row).transpose()
    }

    /// Revokes one of the organisation's API tokens (`None` if it has no
    /// such token; idempotent). Refuses ([`RequestError::LastAdminToken`]) to revoke
    /// the organisation's last admin token that is not revoked.
    pub async fn org_revoke_token(
        &self,
        org_id: &str,
        token_id: &str,
        ctx: &Context,
    ) -> Result<Option<TokenInfo>> {
        let mut tx = self.begin_write().await?;
        let rows = tx
            .fetch(
                sqlx::query(
                    "SELECT token_id, scopes, revoked_at FROM api_tokens WHERE org_id = $1",
                )
                .bind(org_id.to_owned()),
                "reading API tokens",
            )
            .await?;
        let g = db_err("reading API tokens");
        let mut target = None;
        let mut live_admins = Vec::new();
        for r in &rows {
            let id: String = r.try_get("token_id").map_err(&g)?;
            let scopes: String = r.try_get("scopes").map_err(&g)?;
            let revoked: Option<i64> = r.try_get("revoked_at").map_err(&g)?;
            if revoked.is_none() && parse_scopes(&scopes).contains(&Scope::Admin) {
                live_admins.push(id.clone());
            }
            if id == token_id {
                target = Some(revoked);
            }
        }
        let Some(revoked) = target else {
            return Ok(None);
        };
        if revoked.is_none() {
            if live_admins == [token_id] {
                return Err(Error::Request(RequestError::LastAdminToken(
                    token_id.to_owned(),
                )));
            }
            tx.exec(
                sqlx::query(
                    "UPDATE api_tokens SET revoked_at = $1 WHERE org_id = $2 AND token_id = $3",
                )
                .bind(i(ctx.now))
                .bind(org_id.to_owned())
                .bind(token_id.to_owned()),
                "revoking the API token",
            )
            .await?;
            tx.audit(
                ctx,
                "token.revoke",
                &json!({ "org_id": org_id, "token_id": token_id }),
            )
            .await?;
            tx.commit().await?;
        } else {
            // Already revoked: nothing to write (and the transaction holds
            // the SQLite ledger's one connection until dropped).
            drop(tx);
        }
        self.org_token(org_id, token_id).await
    }

    /// The token whose secret hashes to `token_hash`, if any and not revoked.
    pub async fn token_by_hash(&self, token_hash: &str) -> Result<Option<TokenRecord>> {
        let row = sqlx::query(
            "SELECT token_id, org_id, token_hash, scopes FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL",
        )
        .bind(token_hash.to_owned())
        .fetch_optional(self.pool())
        .await
        .map_err(db_err("reading API tokens"))?;
        let Some(r) = row else { return Ok(None) };
        #[derive(sqlx::FromRow)]
        struct Row {
            token_id: String,
            org_id: String,
            token_hash: String,
            scopes: String,
        }
        let r: Row = read_row(&r, "reading API tokens")?;
        Ok(Some(TokenRecord {
            token_id: r.token_id,
            org_id: r.org_id,
            token_hash: r.token_hash,
            scopes: parse_scopes(&r.scopes),
        }))
    }
}

pub(crate) fn scopes_text(scopes: &[Scope]) -> String {
    let mut s: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
    s.sort_unstable();
    s.dedup();
    s.join(" ")
}

pub(crate) fn parse_scopes(s: &str) -> Vec<Scope> {
    s.split(' ').filter_map(Scope::parse).collect()
}

pub(crate) const TOKEN_SELECT: &str =
    "SELECT token_id, org_id, label, scopes, created_at, revoked_at FROM api_tokens";

/// A row of [`TOKEN_SELECT`].
#[derive(sqlx::FromRow)]
struct TokenRow {
    token_id: String,
    org_id: String,
    label: String,
    scopes: String,
    created_at: i64,
    revoked_at: Option<i64>,
}

pub(crate) fn token_from_row(r: &AnyRow) -> Result<TokenInfo> {
    let r: TokenRow = read_row(r, "reading API tokens")?;
    Ok(TokenInfo {
        token_id: r.token_id,
        org_id: r.org_id,
        name: r.label,
        scopes: parse_scopes(&r.scopes),
        created_at: u(r.created_at),
        revoked_at: r.revoked_at.map(u),
    })
}

pub(crate) async fn insert_token(
    tx: &mut crate::store::WriteTx,
    org_id: &str,
    token_id: &str,
    token_hash: &str,
    scopes: &[Scope],
    label: &str,
    now: u64,
) -> Result<()> {
    tx.exec(
        sqlx::query(
            "INSERT INTO api_tokens (token_id, org_id, token_hash, scopes, label, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(token_id.to_owned())
        .bind(org_id.to_owned())
        .bind(token_hash.to_owned())
        .bind(scopes_text(scopes))
        .bind(label.to_owned())
        .bind(i(now)),
        "recording the API token",
    )
    .await?;
    Ok(())
}
