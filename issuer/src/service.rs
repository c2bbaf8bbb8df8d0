//! The issuing service's objects (`keyseal serve`): organisations (tenants),
//! API tokens, products, customers, licenses and their suspension.
//!
//! Every read and write here takes the organisation's id and puts it in the
//! `WHERE` clause, so one tenant's token can never reach another's objects;
//! an object of another organisation looks exactly like one that does not
//! exist. Every mutation appends its audit entry in the same transaction,
//! with the actor `org:<org id>/token:<token id>`.
//!
//! Every organisation has its own signing keys (their sealed halves are in
//! the vault) and its own revocation lists. The first organisation is the
//! default one: it owns the vault's keys, which the CLI signs with.

use keyseal_core::LicenseId;
use keyseal_core::license;
use serde_json::json;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::Context;
use crate::audit::AuditEntry;
use crate::error::{Error, Result};
use crate::privacy::PersonalFields;
use crate::request::{RequestFields, check_product};
use crate::store::{Backend, LicenseRecord, NewLicense, Store, WriteTx, i, u, unpack_page};
use crate::vault::Signer;

/// Page size when none is asked for, and the most a page holds.
pub const MAX_PAGE: u64 = 500;

/// Most products one organisation may register. Every product request is
/// an index look-up whatever the number, and lists are paged; the bound
/// keeps a registration's count (under the writer lock, shared by every
/// tenant) small, and is far beyond any real catalogue.
pub const MAX_PRODUCTS: u64 = 10_000;

/// An API token's scope.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Everything, including signing keys and customers' personal data.
    Admin,
    /// Mint, revoke, suspend, activate; manage products and customers.
    Issue,
    /// Read only, customers' personal data left out.
    Read,
    /// Read, and customers' personal data too (names, emails, metadata,
    /// exports).
    #[serde(rename = "read:pii")]
    ReadPii,
}

impl Scope {
    /// The scope's name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Admin => "admin",
            Scope::Issue => "issue",
            Scope::Read => "read",
            Scope::ReadPii => "read:pii",
        }
    }

    /// The scope named `s` (`admin`, `issue`, `read` or `read:pii`).
    #[must_use]
    pub fn parse(s: &str) -> Option<Scope> {
        match s {
            "admin" => Some(Scope::Admin),
            "issue" => Some(Scope::Issue),
            "read" => Some(Scope::Read),
            "read:pii" => Some(Scope::ReadPii),
            _ => None,
        }
    }
}

/// A stored API token (its hash, never the secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// Public id of the token (appears in the audit log).
    pub token_id: String,
    /// The organisation it acts for.
    pub org_id: String,
    /// Lower-case hex SHA-256 of the secret token.
    pub token_hash: String,
    /// What it may do.
    pub scopes: Vec<Scope>,
}

impl TokenRecord {
    /// Whether the token may do what `need` allows (admin may do everything,
    /// issue also reads; personal data needs admin or `read:pii`).
    #[must_use]
    pub fn allows(&self, need: Scope) -> bool {
        self.scopes.iter().any(|s| match need {
            Scope::Admin => *s == Scope::Admin,
            Scope::Issue => matches!(s, Scope::Admin | Scope::Issue),
            Scope::Read => true,
            Scope::ReadPii => matches!(s, Scope::Admin | Scope::ReadPii),
        })
    }

    /// The audit actor for this token.
    #[must_use]
    pub fn actor(&self) -> String {
        format!("org:{}/token:{}", self.org_id, self.token_id)
    }
}

/// An API token as an admin sees it: never the secret, never its hash.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TokenInfo {
    /// Public id (appears in the audit log).
    pub token_id: String,
    /// The organisation it acts for.
    pub org_id: String,
    /// What it is for (free text).
    pub name: String,
    /// What it may do.
    pub scopes: Vec<Scope>,
    /// When it was created.
    pub created_at: u64,
    /// When it was revoked, if it was.
    pub revoked_at: Option<u64>,
}

/// An organisation (a tenant of the service).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OrgInfo {
    /// Its id.
    pub org_id: String,
    /// Its name.
    pub name: String,
    /// When it was created.
    pub created_at: u64,
}

/// Most API tokens an organisation may have (revoked ones included).
pub const MAX_TOKENS: u64 = 1000;

fn scopes_text(scopes: &[Scope]) -> String {
    let mut s: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
    s.sort_unstable();
    s.dedup();
    s.join(" ")
}

fn parse_scopes(s: &str) -> Vec<Scope> {
    s.split(' ').filter_map(Scope::parse).collect()
}

const TOKEN_SELECT: &str =
    "SELECT token_id, org_id, label, scopes, created_at, revoked_at FROM api_tokens";

fn token_from_row(r: &AnyRow) -> Result<TokenInfo> {
    let g = db("reading API tokens");
    let scopes: String = r.try_get(3).map_err(&g)?;
    Ok(TokenInfo {
        token_id: r.try_get(0).map_err(&g)?,
        org_id: r.try_get(1).map_err(&g)?,
        name: r.try_get(2).map_err(&g)?,
        scopes: parse_scopes(&scopes),
        created_at: u(r.try_get(4).map_err(&g)?),
        revoked_at: r.try_get::<Option<i64>, _>(5).map_err(&g)?.map(u),
    })
}

/// A product of an organisation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Product {
    /// The product id written into keys.
    pub product: String,
    /// Display name.
    pub name: String,
    /// When it was registered.
    pub created_at: u64,
}

/// A customer: an opaque id (what keys carry) and personal fields kept here only.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Customer {
    /// Opaque id, `cus_` and 16 hex digits.
    pub customer_id: String,
    /// Name, if the vendor stores one (erased on request).
    pub name: Option<String>,
    /// Email, if the vendor stores one (erased on request).
    pub email: Option<String>,
    /// The vendor's key-value data about the customer (erased on request).
    pub metadata: std::collections::BTreeMap<String, String>,
    /// When it was created.
    pub created_at: u64,
    /// When its personal fields were erased.
    pub erased_at: Option<u64>,
}

/// A license as the service shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgLicense {
    /// The ledger's record.
    pub record: LicenseRecord,
    /// Most devices that may be active at once.
    pub max_devices: u64,
    /// When it was suspended, if it is.
    pub suspended_at: Option<u64>,
    /// The vendor's key-value references about it (at most
    /// [`MAX_METADATA`] entries; never in the key; erased with the
    /// customer). Not for personal data: that goes on the customer, whose
    /// fields are sealed.
    pub metadata: std::collections::BTreeMap<String, String>,
}

/// Filters of [`Store::org_licenses`].
#[derive(Debug, Clone, Default)]
pub struct OrgLicenseFilter {
    /// Only this product.
    pub product: Option<String>,
    /// Only this customer.
    pub customer: Option<String>,
    /// Only licenses with an id after this one (the cursor).
    pub after: Option<String>,
    /// At most this many (capped at [`MAX_PAGE`]).
    pub limit: u64,
}

/// One mint request (see [`sign_mint`] and [`Store::org_record_mints`]).
#[derive(Debug, Clone)]
pub struct MintJob {
    /// The organisation.
    pub org_id: String,
    /// What to mint.
    pub fields: RequestFields,
    /// Device seats.
    pub max_devices: u64,
    /// The license's metadata (see [`OrgLicense::metadata`]).
    pub metadata: std::collections::BTreeMap<String, String>,
    /// When and by whom.
    pub ctx: Context,
}

/// A mint request and its signed license, ready for [`Store::org_record_mints`].
#[derive(Debug, Clone)]
pub struct SignedMint {
    /// The request.
    pub job: MintJob,
    /// The license signed for it (not yet in the ledger).
    pub license: OrgLicense,
    /// The response to record for the request's idempotency key, in the
    /// transaction that records the license.
    pub record: Option<crate::idempotency::Recorded>,
}

/// Resolves a mint request and signs its license, with no database access
/// (so a service can sign many in parallel, outside its commit). The result
/// is not a license until [`Store::org_record_mints`] has committed it: that
/// checks the product, the customer and that `signer` is still the active key.
pub fn sign_mint(signer: &Signer, job: &MintJob) -> Result<OrgLicense> {
    let req = job.fields.resolve(job.ctx.now)?;
    if !(1..=1000).contains(&job.max_devices) {
        return Err(Error::invalid("max_devices", "must be from 1 to 1000"));
    }
    check_metadata(&job.metadata)?;
    if let Some((k, _)) = job
        .metadata
        .iter()
        .find(|(_, v)| crate::request::looks_like_email(v))
    {
        return Err(Error::invalid(
            "metadata",
            format!(
                "`{k}` looks like an email address: personal data goes on the customer \
                 (POST /v1/customers), whose fields are sealed"
            ),
        ));
    }
    let id = crate::ops::license_ids(1)?[0];
    let key_text = license::to_text(&crate::ops::sign_request(
        signer.key(),
        id,
        &req,
        job.ctx.now,
    )?);
    Ok(OrgLicense {
        record: LicenseRecord {
            license_id: id,
            key_id: signer.key_id(),
            product: req.product,
            customer: req.customer,
            plan: req.plan,
            issued_at: job.ctx.now,
            expires_at: req.expires_at,
            license_key: key_text,
            batch_id: None,
            batch_row: None,
            revoked: None,
            external_id: req.external_id,
        },
        max_devices: job.max_devices,
        suspended_at: None,
        metadata: job.metadata.clone(),
    })
}

/// One customer's records, for a data export.
#[derive(Debug, Clone)]
pub struct CustomerExport {
    /// The customer.
    pub customer: Customer,
    /// Every license minted for them.
    pub licenses: Vec<OrgLicense>,
    /// Every device activation of those licenses.
    pub activations: Vec<crate::activation::Activation>,
    /// The audit entries about them or their licenses.
    pub audit: Vec<AuditEntry>,
}

impl crate::store::WriteTx {
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

fn random_hex(n: usize) -> Result<String> {
    let mut b = vec![0u8; n];
    getrandom::fill(&mut b)?;
    Ok(crate::fsutil::hex(&b))
}

fn check_text(field: &str, v: &str, max: usize) -> Result<()> {
    if v.len() > max {
        return Err(Error::invalid(field, format!("is longer than {max} bytes")));
    }
    if let Some(c) = v.chars().find(|&c| crate::request::hidden_char(c)) {
        return Err(Error::invalid(
            field,
            format!(
                "contains U+{:04X}, a control, bidi or invisible character",
                u32::from(c)
            ),
        ));
    }
    Ok(())
}

const ORG_LICENSE_SELECT: &str = "SELECT l.license_id, l.key_id, l.product, l.customer, l.plan, l.issued_at, l.expires_at, \
     l.license_key, l.batch_id, l.batch_row, r.revoked_at, r.reason, o.max_devices, o.suspended_at, \
     o.external_id, o.metadata \
     FROM org_licenses o JOIN licenses l ON l.license_id = o.license_id \
     LEFT JOIN revocations r ON r.license_id = l.license_id";

/// Whether `sql` (`SELECT 1 ... WHERE org_id = $1 AND ... = $2`, bound to
/// `key`) finds a row, asked once per key and group: the answer is kept in
/// `seen`.
async fn exists_once<'k>(
    tx: &mut WriteTx,
    seen: &mut std::collections::HashMap<(&'k str, &'k str), bool>,
    key: (&'k str, &'k str),
    sql: &'static str,
    doing: &str,
) -> Result<bool> {
    if let Some(b) = seen.get(&key) {
        return Ok(*b);
    }
    let found = !tx
        .fetch(
            sqlx::query(sql)
                .bind(key.0.to_owned())
                .bind(key.1.to_owned()),
            doing,
        )
        .await?
        .is_empty();
    seen.insert(key, found);
    Ok(found)
}

/// The query [`Store::org_licenses`] runs, and its arguments: the
/// organisation's licenses in id order, unfiltered from
/// `org_licenses_by_org`, by customer from `org_licenses_by_customer` (a
/// product too: checked on each of the customer's), by product from
/// `org_licenses_by_product` (schema 17). Each walk starts at the
/// organisation and the cursor and stops after the page, whatever the
/// statistics say (SQLite's, and PostgreSQL's generic plan).
pub(crate) fn org_licenses_query(org_id: &str, filter: &OrgLicenseFilter) -> (String, Vec<String>) {
    let after = filter.after.clone().unwrap_or_default();
    let limit = filter.limit.clamp(1, MAX_PAGE);
    let mut sql = format!("{ORG_LICENSE_SELECT} WHERE o.org_id = $1 AND o.license_id > $2");
    let mut args = vec![org_id.to_owned(), after];
    for (col, v) in [
        ("o.customer", &filter.customer),
        ("o.product", &filter.product),
    ] {
        if let Some(v) = v {
            args.push(v.clone());
            sql.push_str(&format!(" AND {col} = ${}", args.len()));
        }
    }
    // The order is the index's whole key (the same order, as the leading
    // columns are fixed): only that index gives it without a sort, so no
    // planner walks the licenses of every organisation in id order instead.
    let order = match (&filter.customer, &filter.product) {
        (Some(_), _) => "o.org_id, o.customer, o.license_id",
        (None, Some(_)) => "o.org_id, o.product, o.license_id",
        (None, None) => "o.org_id, o.license_id",
    };
    sql.push_str(&format!(" ORDER BY {order} LIMIT {limit}"));
    (sql, args)
}

fn db(doing: &'static str) -> impl Fn(sqlx::Error) -> Error {
    move |e| Error::db(doing, e)
}

fn org_license_from_row(r: &AnyRow) -> Result<OrgLicense> {
    let g = db("reading licenses");
    let id: String = r.try_get(0).map_err(&g)?;
    let key_id: String = r.try_get(1).map_err(&g)?;
    let revoked_at: Option<i64> = r.try_get(10).map_err(&g)?;
    let reason: Option<String> = r.try_get(11).map_err(&g)?;
    let bad = |w: &str| Error::CorruptLedger {
        detail: format!("bad {w}"),
    };
    Ok(OrgLicense {
        record: LicenseRecord {
            license_id: id.parse().map_err(|_| bad("license id"))?,
            key_id: key_id.parse().map_err(|_| bad("key id"))?,
            product: r.try_get(2).map_err(&g)?,
            customer: r.try_get(3).map_err(&g)?,
            plan: r.try_get(4).map_err(&g)?,
            issued_at: u(r.try_get(5).map_err(&g)?),
            expires_at: r.try_get::<Option<i64>, _>(6).map_err(&g)?.map(u),
            license_key: r.try_get(7).map_err(&g)?,
            batch_id: r.try_get(8).map_err(&g)?,
            batch_row: r.try_get::<Option<i64>, _>(9).map_err(&g)?.map(u),
            revoked: revoked_at.map(|t| (u(t), reason.unwrap_or_default())),
            external_id: r.try_get(14).map_err(&g)?,
        },
        max_devices: u(r.try_get(12).map_err(&g)?),
        suspended_at: r.try_get::<Option<i64>, _>(13).map_err(&g)?.map(u),
        metadata: match r.try_get::<Option<String>, _>(15).map_err(&g)? {
            Some(text) => serde_json::from_str(&text).map_err(|_| bad("license metadata"))?,
            None => std::collections::BTreeMap::new(),
        },
    })
}

const CUSTOMER_SELECT: &str =
    "SELECT customer_id, data_key, sealed, created_at, erased_at FROM customers";

fn audit_from_row(r: &AnyRow) -> Result<AuditEntry> {
    let g = db("reading the audit log");
    Ok(AuditEntry {
        seq: u(r.try_get(0).map_err(&g)?),
        at: u(r.try_get(1).map_err(&g)?),
        actor: r.try_get(2).map_err(&g)?,
        action: r.try_get(3).map_err(&g)?,
        details: r.try_get(4).map_err(&g)?,
        prev_hash: r.try_get(5).map_err(&g)?,
        hash: r.try_get(6).map_err(&g)?,
    })
}

/// Most metadata entries on one customer or license.
pub const MAX_METADATA: usize = 20;
/// The longest metadata value (bytes).
pub const MAX_METADATA_VALUE: usize = 500;

fn check_personal_fields(f: &PersonalFields) -> Result<()> {
    if let Some(n) = &f.name {
        check_text("name", n, 200)?;
    }
    if let Some(e) = &f.email {
        check_text("email", e, 254)?;
    }
    check_metadata(&f.metadata)
}

/// A metadata map: at most [`MAX_METADATA`] entries, keys of 1 to 40
/// letters, digits or `. _ -`, values text of at most
/// [`MAX_METADATA_VALUE`] bytes.
fn check_metadata(m: &std::collections::BTreeMap<String, String>) -> Result<()> {
    if m.len() > MAX_METADATA {
        return Err(Error::invalid(
            "metadata",
            format!("has more than {MAX_METADATA} entries"),
        ));
    }
    for (k, v) in m {
        if k.is_empty()
            || k.len() > 40
            || !k
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        {
            return Err(Error::invalid(
                "metadata",
                format!(
                    "key `{}` must be 1 to 40 letters, digits or . _ -",
                    k.escape_debug()
                ),
            ));
        }
        check_text("metadata", v, MAX_METADATA_VALUE)?;
    }
    Ok(())
}

/// Normalises a license id given in a URL (32 hex digits); anything else is
/// simply not found.
fn license_id(id: &str) -> Option<String> {
    id.parse::<LicenseId>().ok().map(|l| l.to_string())
}

impl Store {
    // ---- organisations and tokens ------------------------------------------

    /// Number of organisations (0 on a vault the service has never set up).
    pub async fn org_count(&self) -> Result<u64> {
        let row = sqlx::query("SELECT COUNT(*) FROM orgs")
            .fetch_one(self.pool())
            .await
            .map_err(db("counting organisations"))?;
        Ok(u(row
            .try_get::<i64, _>(0)
            .map_err(db("counting organisations"))?))
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
        crate::ops::insert_key(&mut tx, &org_id, key, ctx.now).await?;
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
            .map_err(db("reading the default organisation"))?
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

    /// Gives an organisation that has no signing key at all (one created
    /// before keys were per organisation) `key` as its active key. Returns
    /// `false`, changing nothing, if it has a key by now (another replica
    /// gave it one): the caller then discards `key`'s sealed file.
    pub async fn org_add_first_key(
        &self,
        org_id: &str,
        key: &crate::keyfile::KeyFile,
        ctx: &Context,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let has = tx
            .fetch(
                sqlx::query("SELECT 1 FROM signing_keys WHERE org_id = $1").bind(org_id.to_owned()),
                "reading signing keys",
            )
            .await?;
        if !has.is_empty() {
            return Ok(false);
        }
        crate::ops::insert_key(&mut tx, org_id, key, ctx.now).await?;
        tx.audit(
            ctx,
            "key.create",
            &json!({ "org_id": org_id, "key_id": key.key_id() }),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
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
            return Err(Error::UnknownOrg(org_id.to_owned()));
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
            .map_err(db("reading API tokens"))?
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
        .map_err(db("reading API tokens"))?;
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
        .map_err(db("reading API tokens"))?;
        row.as_ref().map(token_from_row).transpose()
    }

    /// Revokes one of the organisation's API tokens (`None` if it has no
    /// such token; idempotent). Refuses ([`Error::LastAdminToken`]) to revoke
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
        let g = db("reading API tokens");
        let mut target = None;
        let mut live_admins = Vec::new();
        for r in &rows {
            let id: String = r.try_get(0).map_err(&g)?;
            let scopes: String = r.try_get(1).map_err(&g)?;
            let revoked: Option<i64> = r.try_get(2).map_err(&g)?;
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
                return Err(Error::LastAdminToken(token_id.to_owned()));
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

    /// Every organisation: the default one first, then oldest first.
    pub async fn orgs(&self) -> Result<Vec<OrgInfo>> {
        let rows =
            sqlx::query("SELECT org_id, name, created_at FROM orgs ORDER BY \
                 CASE WHEN org_id = (SELECT value FROM meta WHERE name = 'default_org') THEN 0 ELSE 1 END, \
                 created_at, org_id")
                .fetch_all(self.pool())
                .await
                .map_err(db("reading organisations"))?;
        rows.iter()
            .map(|r| {
                let g = db("reading organisations");
                Ok(OrgInfo {
                    org_id: r.try_get(0).map_err(&g)?,
                    name: r.try_get(1).map_err(&g)?,
                    created_at: u(r.try_get(2).map_err(&g)?),
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
            .map_err(db("reading organisations"))?;
        Ok(row.is_some())
    }

    /// The token whose secret hashes to `token_hash`, if any and not revoked.
    pub async fn token_by_hash(&self, token_hash: &str) -> Result<Option<TokenRecord>> {
        let row = sqlx::query(
            "SELECT token_id, org_id, token_hash, scopes FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL",
        )
        .bind(token_hash.to_owned())
        .fetch_optional(self.pool())
        .await
        .map_err(db("reading API tokens"))?;
        let Some(r) = row else { return Ok(None) };
        let g = db("reading API tokens");
        let scopes: String = r.try_get(3).map_err(&g)?;
        Ok(Some(TokenRecord {
            token_id: r.try_get(0).map_err(&g)?,
            org_id: r.try_get(1).map_err(&g)?,
            token_hash: r.try_get(2).map_err(&g)?,
            scopes: parse_scopes(&scopes),
        }))
    }

    // ---- products -------------------------------------------------------------

    /// A page of the organisation's products, by id after `after`.
    pub async fn org_products(
        &self,
        org_id: &str,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<Product>> {
        let sql = self.packed_page(
            "product, name, created_at",
            "product",
            &format!(
                "SELECT product, name, created_at FROM org_products \
                 WHERE org_id = $1 AND product > $2 ORDER BY product LIMIT {}",
                limit.clamp(1, MAX_PAGE)
            ),
        );
        let row = sqlx::query(&sql)
            .bind(org_id.to_owned())
            .bind(after.unwrap_or("").to_owned())
            .fetch_one(self.pool())
            .await
            .map_err(db("reading products"))?;
        Ok(
            unpack_page::<(String, String, i64)>(&row, "reading products")?
                .into_iter()
                .map(|(product, name, created_at)| Product {
                    product,
                    name,
                    created_at: u(created_at),
                })
                .collect(),
        )
    }

    /// One product of the organisation.
    pub async fn org_product(&self, org_id: &str, product: &str) -> Result<Option<Product>> {
        let row = sqlx::query(
            "SELECT product, name, created_at FROM org_products WHERE org_id = $1 AND product = $2",
        )
        .bind(org_id.to_owned())
        .bind(product.to_owned())
        .fetch_optional(self.pool())
        .await
        .map_err(db("reading products"))?;
        row.as_ref().map(product_from_row).transpose()
    }

    /// Registers a product for the organisation.
    pub async fn org_add_product(
        &self,
        org_id: &str,
        product: &str,
        name: &str,
        ctx: &Context,
    ) -> Result<Product> {
        check_product(product)?;
        check_text("name", name, 200)?;
        let mut tx = self.begin_write().await?;
        let exists = tx
            .fetch(
                sqlx::query("SELECT 1 FROM org_products WHERE org_id = $1 AND product = $2")
                    .bind(org_id.to_owned())
                    .bind(product.to_owned()),
                "reading products",
            )
            .await?;
        if !exists.is_empty() {
            return Err(Error::ProductExists(product.to_owned()));
        }
        let count = tx
            .fetch(
                sqlx::query("SELECT COUNT(*) FROM org_products WHERE org_id = $1")
                    .bind(org_id.to_owned()),
                "counting products",
            )
            .await?;
        let count: i64 = count
            .first()
            .map(|r| r.try_get(0))
            .transpose()
            .map_err(db("counting products"))?
            .unwrap_or(0);
        if u64::try_from(count).unwrap_or(0) >= MAX_PRODUCTS {
            return Err(Error::LimitReached {
                what: "products",
                max: MAX_PRODUCTS,
            });
        }
        tx.exec(
            sqlx::query("INSERT INTO org_products (org_id, product, name, created_at) VALUES ($1, $2, $3, $4)")
                .bind(org_id.to_owned())
                .bind(product.to_owned())
                .bind(name.to_owned())
                .bind(i(ctx.now)),
            "registering the product",
        )
        .await?;
        tx.audit(
            ctx,
            "product.add",
            &json!({ "org_id": org_id, "product": product }),
        )
        .await?;
        tx.commit().await?;
        Ok(Product {
            product: product.to_owned(),
            name: name.to_owned(),
            created_at: ctx.now,
        })
    }

    // ---- customers ------------------------------------------------------------

    /// Creates a customer with an opaque id. Its personal fields are sealed
    /// (see [`crate::privacy`]): the ledger never holds them in plaintext.
    pub async fn org_add_customer(
        &self,
        org_id: &str,
        fields: PersonalFields,
        ctx: &Context,
    ) -> Result<Customer> {
        check_personal_fields(&fields)?;
        let keys = self.data_keys()?;
        let customer_id = format!("cus_{}", random_hex(8)?);
        let empty = fields == PersonalFields::default();
        let (data_key, sealed) = if empty {
            (None, None)
        } else {
            let (key, wrapped) = keys.new_customer_key(org_id, &customer_id)?;
            (
                Some(wrapped),
                Some(key.seal(org_id, &customer_id, &fields)?),
            )
        };
        let email_hash = fields.email.as_deref().map(|e| keys.email_hash(org_id, e));
        let mut tx = self.begin_write().await?;
        tx.exec(
            sqlx::query(
                "INSERT INTO customers (customer_id, org_id, created_at, data_key, sealed, email_hash) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(customer_id.clone())
            .bind(org_id.to_owned())
            .bind(i(ctx.now))
            .bind(data_key)
            .bind(sealed)
            .bind(email_hash),
            "creating the customer",
        )
        .await?;
        // The audit log records the opaque id only, never personal fields.
        tx.audit(
            ctx,
            "customer.create",
            &json!({ "org_id": org_id, "customer_id": customer_id }),
        )
        .await?;
        tx.commit().await?;
        Ok(Customer {
            customer_id,
            name: fields.name,
            email: fields.email,
            metadata: fields.metadata,
            created_at: ctx.now,
            erased_at: None,
        })
    }

    /// One customer of the organisation.
    pub async fn org_customer(&self, org_id: &str, customer_id: &str) -> Result<Option<Customer>> {
        let row = sqlx::query(&format!(
            "{CUSTOMER_SELECT} WHERE org_id = $1 AND customer_id = $2"
        ))
        .bind(org_id.to_owned())
        .bind(customer_id.to_owned())
        .fetch_optional(self.pool())
        .await
        .map_err(db("reading customers"))?;
        row.as_ref()
            .map(|r| self.customer_from_row(org_id, r))
            .transpose()
    }

    /// The organisation's customers after the cursor, by id; or those with
    /// this email address (found by its keyed hash).
    pub async fn org_customers(
        &self,
        org_id: &str,
        after: Option<&str>,
        email: Option<&str>,
        limit: u64,
    ) -> Result<Vec<Customer>> {
        let limit = limit.clamp(1, MAX_PAGE);
        let rows = match email {
            None => sqlx::query(&format!(
                "{CUSTOMER_SELECT} WHERE org_id = $1 AND customer_id > $2 ORDER BY customer_id LIMIT {limit}"
            ))
            .bind(org_id.to_owned())
            .bind(after.unwrap_or("").to_owned())
            .fetch_all(self.pool())
            .await,
            Some(e) => sqlx::query(&format!(
                "{CUSTOMER_SELECT} WHERE org_id = $1 AND email_hash = $2 AND customer_id > $3 \
                 ORDER BY customer_id LIMIT {limit}"
            ))
            .bind(org_id.to_owned())
            .bind(self.data_keys()?.email_hash(org_id, e))
            .bind(after.unwrap_or("").to_owned())
            .fetch_all(self.pool())
            .await,
        }
        .map_err(db("reading customers"))?;
        rows.iter()
            .map(|r| self.customer_from_row(org_id, r))
            .collect()
    }

    /// A customer row, its fields opened.
    fn customer_from_row(&self, org_id: &str, r: &AnyRow) -> Result<Customer> {
        let g = db("reading customers");
        let customer_id: String = r.try_get(0).map_err(&g)?;
        let data_key: Option<String> = r.try_get(1).map_err(&g)?;
        let sealed: Option<String> = r.try_get(2).map_err(&g)?;
        let fields = match (data_key, sealed) {
            (Some(k), Some(s)) => self
                .data_keys()?
                .open_customer_key(org_id, &customer_id, &k)?
                .open(org_id, &customer_id, &s)?,
            _ => PersonalFields::default(),
        };
        Ok(Customer {
            customer_id,
            name: fields.name,
            email: fields.email,
            metadata: fields.metadata,
            created_at: u(r.try_get(3).map_err(&g)?),
            erased_at: r.try_get::<Option<i64>, _>(4).map_err(&g)?.map(u),
        })
    }

    /// Everything the service holds about one customer: its fields, its
    /// licenses, their device activations, and the audit entries about it
    /// or its licenses.
    pub async fn org_export_customer(
        &self,
        org_id: &str,
        customer_id: &str,
    ) -> Result<Option<CustomerExport>> {
        let Some(customer) = self.org_customer(org_id, customer_id).await? else {
            return Ok(None);
        };
        let rows = sqlx::query(&format!(
            "{ORG_LICENSE_SELECT} WHERE l.customer = $1 AND o.org_id || '' = $2 ORDER BY l.license_id"
        ))
        .bind(customer_id.to_owned())
        .bind(org_id.to_owned())
        .fetch_all(self.pool())
        .await
        .map_err(db("reading licenses"))?;
        let licenses: Vec<OrgLicense> = rows
            .iter()
            .map(org_license_from_row)
            .collect::<Result<_>>()?;
        let mut activations = Vec::new();
        for l in &licenses {
            activations.extend(
                self.org_activations(org_id, &l.record.license_id.to_string(), None, u64::MAX)
                    .await?
                    .into_iter()
                    .flatten(),
            );
        }
        let rows = sqlx::query(AUDIT_OF_SUBJECT)
            .bind(org_id.to_owned())
            .bind(customer_id.to_owned())
            .fetch_all(self.pool())
            .await
            .map_err(db("reading the audit log"))?;
        let audit = rows.iter().map(audit_from_row).collect::<Result<_>>()?;
        Ok(Some(CustomerExport {
            customer,
            licenses,
            activations,
            audit,
        }))
    }

    /// Erases a customer's personal data (the opaque id and the licenses
    /// stay): its sealed fields, its data key (so copies of the ciphertext
    /// anywhere open under no key) and its email hash; its activations'
    /// device fingerprints are replaced by `erased`. Then, on SQLite, the
    /// WAL is checkpointed and truncated, so the old row images leave the
    /// disk (deleted content is zeroed: `secure_delete`).
    pub async fn org_erase_customer(
        &self,
        org_id: &str,
        customer_id: &str,
        ctx: &Context,
    ) -> Result<Option<Customer>> {
        let mut tx = self.begin_write().await?;
        let n = tx
            .exec(
                sqlx::query(
                    "UPDATE customers SET name = NULL, email = NULL, data_key = NULL, sealed = NULL, \
                     email_hash = NULL, erased_at = COALESCE(erased_at, $1) \
                     WHERE org_id = $2 AND customer_id = $3",
                )
                .bind(i(ctx.now))
                .bind(org_id.to_owned())
                .bind(customer_id.to_owned()),
                "erasing the customer",
            )
            .await?;
        if n == 0 {
            return Ok(None);
        }
        tx.exec(
            sqlx::query(
                "UPDATE activations SET fingerprint = 'erased' WHERE org_id = $1 AND license_id IN \
                 (SELECT license_id FROM licenses WHERE customer = $2)",
            )
            .bind(org_id.to_owned())
            .bind(customer_id.to_owned()),
            "erasing the customer's activations",
        )
        .await?;
        tx.exec(
            sqlx::query(
                "UPDATE org_licenses SET metadata = NULL WHERE org_id = $1 AND license_id IN \
                 (SELECT license_id FROM licenses WHERE customer = $2)",
            )
            .bind(org_id.to_owned())
            .bind(customer_id.to_owned()),
            "erasing the customer's license metadata",
        )
        .await?;
        tx.audit(
            ctx,
            "customer.erase",
            &json!({ "org_id": org_id, "customer_id": customer_id }),
        )
        .await?;
        tx.commit().await?;
        self.truncate_wal().await;
        self.org_customer(org_id, customer_id).await
    }

    // ---- licenses -------------------------------------------------------------

    /// Records mints signed with [`sign_mint`] (possibly for several
    /// organisations) in one transaction: group commit for a service under
    /// load. Inside the transaction each is checked on its own (its product
    /// and customer exist in its organisation, and the key that signed it is
    /// still the active key: otherwise [`Error::NoActiveKey`], and the caller
    /// re-signs); the good ones commit together. A result is `Ok` only after
    /// the commit. If the shared transaction fails, each is retried alone.
    pub async fn org_record_mints(&self, mints: &[SignedMint]) -> Vec<Result<()>> {
        let all: Vec<&SignedMint> = mints.iter().collect();
        match self.record_group(&all).await {
            Ok(results) => results,
            Err(e) if mints.len() == 1 => vec![Err(e)],
            Err(_) => {
                let mut out = Vec::with_capacity(mints.len());
                for m in mints {
                    out.push(match self.record_group(&[m]).await {
                        Ok(mut r) => r.pop().unwrap_or(Err(Error::NoActiveKey)),
                        Err(e) => Err(e),
                    });
                }
                out
            }
        }
    }

    /// One transaction for a group: checks, inserts and commits; the
    /// per-mint verdicts, or the error that rolled the whole group back.
    async fn record_group(&self, mints: &[&SignedMint]) -> Result<Vec<Result<()>>> {
        use std::collections::HashMap;
        let mut tx = self.begin_write().await?;
        // Each organisation's active key: a mint signed by anything else
        // (a key rotated since, or another organisation's) is refused.
        let rows = tx
            .fetch(
                sqlx::query("SELECT org_id, key_id FROM signing_keys WHERE status = 'active'"),
                "reading signing keys",
            )
            .await?;
        let mut active: HashMap<String, String> = HashMap::with_capacity(rows.len());
        for r in &rows {
            let g = db("reading signing keys");
            active.insert(r.try_get(0).map_err(&g)?, r.try_get(1).map_err(&g)?);
        }
        let mut products: HashMap<(&str, &str), bool> = HashMap::new();
        let mut customers: HashMap<(&str, &str), bool> = HashMap::new();
        // External ids minted earlier in this group.
        let mut in_group: HashMap<(&str, &str), String> = HashMap::new();
        let mut verdicts: Vec<Result<()>> = Vec::with_capacity(mints.len());
        let mut ready: Vec<&SignedMint> = Vec::with_capacity(mints.len());
        for m in mints {
            let org = m.job.org_id.as_str();
            let rec = &m.license.record;
            match active.get(org) {
                Some(k) if *k == rec.key_id.to_string() => {}
                Some(_) => {
                    verdicts.push(Err(Error::StaleSigner { key_id: rec.key_id }));
                    continue;
                }
                None => {
                    verdicts.push(Err(Error::NoActiveKey));
                    continue;
                }
            }
            let has_product = exists_once(
                &mut tx,
                &mut products,
                (org, rec.product.as_str()),
                "SELECT 1 FROM org_products WHERE org_id = $1 AND product = $2",
                "reading products",
            )
            .await?;
            if !has_product {
                // No list of the known products here: it would be work the
                // size of the tenant inside the shared commit (the API
                // points to GET /v1/products instead).
                verdicts.push(Err(Error::UnknownProduct {
                    product: rec.product.clone(),
                    known: Vec::new(),
                }));
                continue;
            }
            let has_customer = exists_once(
                &mut tx,
                &mut customers,
                (org, rec.customer.as_str()),
                "SELECT 1 FROM customers WHERE org_id = $1 AND customer_id = $2",
                "reading customers",
            )
            .await?;
            if !has_customer {
                verdicts.push(Err(Error::invalid(
                    "customer",
                    format!(
                        "no customer `{}` (create it with POST /v1/customers)",
                        rec.customer
                    ),
                )));
                continue;
            }
            if let Some(ext) = &rec.external_id {
                let owner = match in_group.get(&(org, ext.as_str())) {
                    Some(l) => Some(l.clone()),
                    None => tx.external_id_owner(org, ext).await?,
                };
                if let Some(license_id) = owner {
                    verdicts.push(Err(Error::ExternalIdExists {
                        external_id: ext.clone(),
                        license_id,
                    }));
                    continue;
                }
                in_group.insert((org, ext.as_str()), rec.license_id.to_string());
            }
            verdicts.push(Ok(()));
            ready.push(m);
        }
        if ready.is_empty() {
            return Ok(verdicts);
        }
        let rows: Vec<NewLicense<'_>> = ready
            .iter()
            .map(|m| {
                let l = &m.license.record;
                NewLicense {
                    org_id: &m.job.org_id,
                    max_devices: m.license.max_devices,
                    external_id: l.external_id.as_deref(),
                    metadata: (!m.license.metadata.is_empty())
                        .then(|| serde_json::to_string(&m.license.metadata).unwrap_or_default()),
                    license_id: l.license_id,
                    key_id: l.key_id,
                    product: &l.product,
                    customer: &l.customer,
                    plan: &l.plan,
                    issued_at: l.issued_at,
                    expires_at: l.expires_at,
                    license_key: &l.license_key,
                    batch_id: None,
                    batch_row: None,
                }
            })
            .collect();
        tx.insert_licenses(&rows).await?;
        // One audit entry per license (written at commit, many per
        // statement).
        for m in &ready {
            let (job, l) = (&m.job, &m.license);
            let mut details = json!({
                "org_id": job.org_id,
                "license_id": l.record.license_id.to_string(),
                "key_id": l.record.key_id.to_string(),
                "product": l.record.product,
                "plan": l.record.plan,
                "customer": l.record.customer,
                "expires_at": l.record.expires_at,
                "max_devices": l.max_devices,
            });
            if let Some(x) = &l.record.external_id {
                details["external_id"] = json!(x);
            }
            tx.audit(&job.ctx, "license.issue", &details).await?;
        }
        for m in &ready {
            if let Some(r) = &m.record {
                tx.exec(
                    sqlx::query(
                        "UPDATE idempotency_keys SET status = $1, content_type = $2, body = $3 \
                         WHERE org_id = $4 AND idem_key = $5",
                    )
                    .bind(i64::from(r.response.status))
                    .bind(r.response.content_type.clone())
                    .bind(r.response.body.clone())
                    .bind(m.job.org_id.clone())
                    .bind(r.key.clone()),
                    "recording the idempotent response",
                )
                .await?;
            }
        }
        tx.commit().await?;
        Ok(verdicts)
    }

    /// One license of the organisation (`None` for a malformed id, an
    /// unknown one, or another organisation's).
    pub async fn org_license(&self, org_id: &str, id: &str) -> Result<Option<OrgLicense>> {
        let Some(id) = license_id(id) else {
            return Ok(None);
        };
        let row = sqlx::query(&format!(
            "{ORG_LICENSE_SELECT} WHERE o.org_id = $1 AND o.license_id = $2"
        ))
        .bind(org_id.to_owned())
        .bind(id)
        .fetch_optional(self.pool())
        .await
        .map_err(db("reading a license"))?;
        row.as_ref().map(org_license_from_row).transpose()
    }

    /// The organisation's licenses matching `filter`, by id after the cursor.
    pub async fn org_licenses(
        &self,
        org_id: &str,
        filter: &OrgLicenseFilter,
    ) -> Result<Vec<OrgLicense>> {
        let (sql, args) = org_licenses_query(org_id, filter);
        // Not a prepared statement PostgreSQL keeps: its generic plan
        // (chosen after five runs) knows only how many organisations there
        // are, and for a small one among large ones it may walk every
        // license in id order to fill a page. Planned for these values, the
        // organisation's own index range is read.
        let mut q = sqlx::query(&sql).persistent(self.backend() == Backend::Sqlite);
        for a in args {
            q = q.bind(a);
        }
        let rows = q
            .fetch_all(self.pool())
            .await
            .map_err(db("reading licenses"))?;
        rows.iter().map(org_license_from_row).collect()
    }

    /// Revokes one of the organisation's licenses (`None` if it has no such license).
    pub async fn org_revoke(
        &self,
        org_id: &str,
        id: &str,
        reason: &str,
        ctx: &Context,
    ) -> Result<Option<OrgLicense>> {
        let Some(lic) = self.org_license(org_id, id).await? else {
            return Ok(None);
        };
        self.revoke_license(org_id, &lic.record.license_id.to_string(), reason, ctx)
            .await?;
        self.org_license(org_id, id).await
    }

    /// Suspends (`true`) or resumes (`false`) one of the organisation's
    /// licenses: a suspended license gets no new activations. Idempotent.
    /// A revoked license is neither: [`Error::AlreadyRevoked`], nothing
    /// written (revocation is final).
    pub async fn org_set_suspended(
        &self,
        org_id: &str,
        id: &str,
        suspend: bool,
        ctx: &Context,
    ) -> Result<Option<OrgLicense>> {
        let Some(lid) = license_id(id) else {
            return Ok(None);
        };
        let mut tx = self.begin_write().await?;
        let sql = if suspend {
            "UPDATE org_licenses SET suspended_at = COALESCE(suspended_at, $1) WHERE org_id = $2 AND license_id = $3"
        } else {
            "UPDATE org_licenses SET suspended_at = NULL WHERE org_id = $2 AND license_id = $3 AND $1 >= 0"
        };
        let n = tx
            .exec(
                sqlx::query(sql)
                    .bind(i(ctx.now))
                    .bind(org_id.to_owned())
                    .bind(lid.clone()),
                "suspending the license",
            )
            .await?;
        if n == 0 {
            return Ok(None);
        }
        // Dropping `tx` on a revoked license rolls the update back.
        let parsed = lid.parse().map_err(|_| Error::CorruptLedger {
            detail: "bad license id".to_owned(),
        })?;
        tx.require_not_revoked(parsed).await?;
        let action = if suspend {
            "license.suspend"
        } else {
            "license.resume"
        };
        tx.audit(ctx, action, &json!({ "org_id": org_id, "license_id": lid }))
            .await?;
        tx.commit().await?;
        self.org_license(org_id, &lid).await
    }

    // ---- audit ----------------------------------------------------------------

    /// The organisation's audit entries with seq above `after`, oldest first.
    pub async fn org_audit(&self, org_id: &str, after: u64, limit: u64) -> Result<Vec<AuditEntry>> {
        let rows = sqlx::query(&format!("{AUDIT_PAGE} LIMIT {}", limit.clamp(1, MAX_PAGE)))
            .bind(org_id.to_owned())
            .bind(i(after))
            .fetch_all(self.pool())
            .await
            .map_err(db("reading the audit log"))?;
        rows.iter().map(audit_from_row).collect()
    }
}

/// A page of the organisation's audit chain (`audit_org_seq`): bind the
/// organisation and the last `org_seq` seen, add a `LIMIT`.
pub(crate) const AUDIT_PAGE: &str = "SELECT org_seq, at, actor, action, details, org_prev_hash, org_hash \
     FROM audit_log WHERE org_id = $1 AND org_seq > $2 ORDER BY org_seq";

/// A customer's audit entries (`audit_by_subject`): bind the organisation
/// and the customer.
pub(crate) const AUDIT_OF_SUBJECT: &str = "SELECT org_seq, at, actor, action, details, org_prev_hash, org_hash \
     FROM audit_log WHERE org_id = $1 AND subject = $2 ORDER BY org_seq";

fn product_from_row(r: &AnyRow) -> Result<Product> {
    let g = db("reading products");
    Ok(Product {
        product: r.try_get(0).map_err(&g)?,
        name: r.try_get(1).map_err(&g)?,
        created_at: u(r.try_get(2).map_err(&g)?),
    })
}

async fn insert_token(
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
